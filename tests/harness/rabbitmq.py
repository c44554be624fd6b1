"""A RabbitMQ virtual host of a test's own on the machine's RabbitMQ, so a test's Celery
queues never share messages with another test or another user of that server."""
from __future__ import annotations

import os
import subprocess
import urllib.parse
import uuid


class PrivateRabbitVhost:
    """A RabbitMQ virtual host of its own on the machine's RabbitMQ (RABBITMQ_URL), the
    Celery broker of the production configuration (docs/tasks.md): a dead worker's
    unacknowledged task is re-queued as soon as its connection drops. The server itself
    is never restarted by a fault, so sharing it does not break the runs' isolation."""

    def __init__(self, prefix: str = "gochat-test") -> None:
        base = urllib.parse.urlsplit(os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"))
        self.netloc = base.netloc
        self.port = base.port or 5672
        self.user = base.username or "guest"
        self.vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.created = False

    @property
    def url(self) -> str:
        return f"amqp://{self.netloc}/{urllib.parse.quote(self.vhost, safe='')}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._ctl("add_vhost", self.vhost)
        self._ctl("set_permissions", "-p", self.vhost, self.user, ".*", ".*", ".*")
        self.created = True

    def stop(self) -> None:
        if self.created:
            self._ctl("delete_vhost", self.vhost)
            self.created = False
