"""Liveness (/healthz: the process answers) and readiness (/readyz) of every role.

The gateway's /readyz checks the database, the cache and that the bus producer reaches
its broker (bounded by READYZ_BUS_TIMEOUT_SECONDS). Roles without Django HTTP
(run_logic, run_task_bridge) serve /healthz, /readyz and /metrics from
serve_consumer_health(): a stdlib HTTP server thread whose liveness is the consumer
loop still turning (HEALTH_LOOP_TIMEOUT_SECONDS) and whose readiness is the loop's own
view of its group (assignment, lag, stall), see messaging.consumers_registry.ConsumerHealth.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

if TYPE_CHECKING:
    from messaging.consumers_registry import ConsumerHealth

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_bus() -> str:
    from messaging.bus import get_producer

    try:
        get_producer().check(timeout=settings.READYZ_BUS_TIMEOUT_SECONDS)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"error: {exc.__class__.__name__}"


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("readyz", "1", 5)
        checks["cache"] = "ok" if cache.get("readyz") == "1" else "error: readback"
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = f"error: {exc.__class__.__name__}"
    # A gateway that cannot produce upstream accepts sockets whose sends never get an ack.
    checks["bus"] = _check_bus()
    # A draining gateway (SIGTERM, messaging/gateway/drain.py) takes no new clients.
    from messaging.gateway import drain

    if drain.is_draining():
        checks["draining"] = "error: draining"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


def serve_consumer_health(health: ConsumerHealth, *, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve /healthz, /readyz and /metrics for a consumer process on host:port from a
    daemon thread; returns the server (server_address holds the bound port)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from gochat_site import metrics

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                if health.alive(settings.HEALTH_LOOP_TIMEOUT_SECONDS):
                    self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
                else:
                    body = {"status": "wedged", "consumer": health.name, "max_age_seconds": settings.HEALTH_LOOP_TIMEOUT_SECONDS}
                    self._send(503, "application/json", json.dumps(body).encode())
            elif path == "/readyz":
                state = health.snapshot()
                body = {"status": "ready" if state["ready"] else "not ready", **state}
                self._send(200 if state["ready"] else 503, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry()))
            else:
                self._send(404, "application/json", json.dumps({"code": 1003, "message": "not found", "details": {}}).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - probes every few seconds: no access log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    logger.info("health_server_started", extra={"host": host, "port": server.server_address[1]})
    return server
