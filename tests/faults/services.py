"""Private PostgreSQL, Redis and Tansu instances for the fault-injection suite.

Each one lives in a temporary directory on a free 127.0.0.1 port, so a fault run may
kill or restart it without touching the machine's own services on 5432 / 6379.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from glob import glob
from pathlib import Path

from tests.harness.kafka import TansuBroker, start_tansu
from tests.harness.rabbitmq import PrivateRabbitVhost
from tests.harness.stack import free_port


def _wait_port(port: int, timeout: float, what: str, alive=None) -> None:  # noqa: ANN001 - callable or None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb and pg_ctl."""
    candidates = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return Path(candidates[-1]).parent


class PrivatePostgres:
    """initdb into a temp dir and run it on a free port; restart(immediate=True) is a crash."""

    def __init__(self, root: Path) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.datadir = root / "pgdata"
        self.logfile = root / "postgres.log"
        # initdb and postgres refuse to run as root: run them as the postgres account then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.datadir.mkdir(parents=True)
        if self._as:
            shutil.chown(root, "postgres")
            shutil.chown(self.datadir, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.logfile.touch()
        if self._as:
            shutil.chown(self.logfile, "postgres")

    def _run(self, tool: str, *args: str, timeout: float = 120.0) -> str:
        result = subprocess.run(
            [*self._as, str(self.bindir / tool), *args], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/gochat"

    def start(self) -> None:
        # fsync off: an immediate stop is a crash of the server process, not of the OS,
        # so the WAL in the page cache is still replayed; it only saves disk flushes.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c fsync=off "
            "-c synchronous_commit=on -c max_connections=300 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options, "-w", "-t", "60", "start")

    def stop(self, *, immediate: bool = False) -> None:
        mode = "immediate" if immediate else "fast"
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")
        except RuntimeError:
            pass  # already stopped

    def restart(self, *, immediate: bool = True, down_seconds: float = 0.0) -> None:
        self.stop(immediate=immediate)
        time.sleep(down_seconds)
        self.start()

    def create_database(self) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "gochat")

    def alive(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return result.returncode == 0


class PrivateRedis:
    """redis-server on a free port, no persistence: a restart loses every key, as a crash does."""

    def __init__(self, root: Path, name: str = "redis") -> None:
        self.name = name
        self.port = free_port()
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.logfile = self.dir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.logfile),
            "--maxclients", "10000",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_port(self.port, 30, self.name, alive=self.alive)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, down_seconds: float = 0.0) -> None:
        """SIGKILL (no save), then a fresh empty server on the same port."""
        self.kill()
        time.sleep(down_seconds)
        self.start()


class PrivateTansu:
    """The Tansu test broker (memory storage) on a port that survives its restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        # Kept across restarts: a restarted broker is the same cluster (clients that see
        # another cluster id at the same address refuse to mix them).
        self.cluster_id = f"gochat-faults-{uuid.uuid4().hex[:8]}"
        self.broker: TansuBroker | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.broker = start_tansu(self.port, cluster_id=self.cluster_id)

    def alive(self) -> bool:
        return self.broker is not None and self.broker.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.broker.process.send_signal(signal.SIGKILL)
            self.broker.process.wait(timeout=30)
        if self.broker is not None:
            self.broker.stop()

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()

    def restart(self, down_seconds: float = 0.0) -> None:
        """SIGKILL and start again: memory storage, so every topic, record and offset is gone."""
        self.kill()
        time.sleep(down_seconds)
        self.start()


class PrivateServices:
    """PostgreSQL, Redis (presence, cache, channel layer), a RabbitMQ vhost as the Celery
    broker, and Tansu, all private to one test session."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gochat-faults-"))
        os.chmod(self.root, 0o755)
        self.postgres = PrivatePostgres(self.root / "pg")
        self.redis = PrivateRedis(self.root, "redis")
        self.celery_broker = PrivateRabbitVhost("gochat-faults")
        self.tansu = PrivateTansu()

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database()
        self.redis.start()
        self.celery_broker.start()
        self.tansu.start()

    def ensure_up(self) -> None:
        """Bring back whatever an earlier run left down."""
        if not self.postgres.alive():
            self.postgres.start()
        if not self.redis.alive():
            self.redis.start()
        if not self.tansu.alive():
            self.tansu.start()

    def stop(self) -> None:
        for stop in (self.tansu.stop, self.celery_broker.stop, self.redis.stop, self.postgres.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - tear down the rest anyway
                pass
        if os.environ.get("FAULTS_KEEP_DIR") != "1":
            shutil.rmtree(self.root, ignore_errors=True)
