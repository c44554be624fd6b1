"""`python manage.py run_grpc [--port N]`: serve LogicService and RepoService (the grpc role)."""
from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from grpc_health.v1 import health_pb2

from gochat_site import ids, metrics
from messaging.grpc.server import build_server

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the gRPC LogicService and RepoService with health checking and reflection."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - argparse parser
        parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
        parser.add_argument("--port", type=int, default=None, help="port (default GRPC_PORT)")
        parser.add_argument("--grace", type=float, default=10.0, help="seconds in-flight calls get on shutdown")

    def handle(self, *args, **options) -> None:
        # Refuse to start without a unique snowflake worker id (gochat_site/ids.py).
        ids.ensure_worker_id()
        port = settings.GRPC_PORT if options["port"] is None else options["port"]
        server, bound, health_servicer = build_server(
            address=f"{options['host']}:{port}", max_workers=settings.GRPC_MAX_WORKERS
        )
        stopping = threading.Event()

        def stop(signum, frame) -> None:  # noqa: ANN001 - signal handler signature
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.start()
        # METRICS_PORT: /metrics of this process (DB errors, Redis errors, ...); 0 = off.
        metrics.start_metrics_server()
        logger.info("grpc_server_started", extra={"port": bound, "workers": settings.GRPC_MAX_WORKERS})
        self.stdout.write(f"gRPC listening on {options['host']}:{bound}")
        stopping.wait()
        # Load balancers see NOT_SERVING first, then in-flight calls get the grace period.
        health_servicer.enter_graceful_shutdown()
        server.stop(options["grace"]).wait()
        logger.info("grpc_server_stopped", extra={"port": bound})
