"""Run GoChat processes (a Celery worker, the task bridge) as subprocesses for tests.

The child gets an environment that points it at the same services as the test: the
pytest-django test database (DATABASE_URL), Redis, the Tansu Kafka broker and topic names
of the `kafka_bus` fixture, and a Celery broker. Each child runs in its own process group,
so kill() takes the prefork pool children down with it, as a crashed host would.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.stack import test_database_url

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEST_BROKER = "redis://127.0.0.1:6379/6"

# Settings a child must share with the test process (read by the child from its env).
_SHARED_SETTINGS = (
    "REDIS_URL",
    "PRESENCE_BACKEND",
    "BUS_BACKEND",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_UPSTREAM_TOPIC",
    "KAFKA_DOWNSTREAM_TOPIC",
    "KAFKA_TASK_TOPIC",
    "KAFKA_TASK_DLQ_TOPIC",
    "KAFKA_TASK_BRIDGE_GROUP",
    "KAFKA_SESSION_TIMEOUT_MS",
    "KAFKA_HEARTBEAT_INTERVAL_MS",
    "KAFKA_FETCH_WAIT_MAX_MS",
    "PRESENCE_TTL_SECONDS",
    "PRESENCE_BATCH_SIZE",
    "FANOUT_BATCH_SIZE",
    "FANOUT_MAX_BATCHES_PER_SECOND",
    "MESSAGE_RETENTION_DAYS",
    "ARCHIVE_DIR",
)


def test_broker_url() -> str:
    return os.environ.get("CELERY_TEST_BROKER_URL", DEFAULT_TEST_BROKER)


def child_env(broker_url: str, **overrides: object) -> dict[str, str]:
    """Environment of a child process that shares this test's services and settings."""
    from django.conf import settings

    env = dict(os.environ)
    env.pop("TEST_DATABASE_NAME", None)
    env["DJANGO_SETTINGS_MODULE"] = "gochat_site.settings"
    env["DATABASE_URL"] = test_database_url()
    env["CELERY_BROKER_URL"] = broker_url
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    for name in _SHARED_SETTINGS:
        value = getattr(settings, name, None)
        if value not in (None, ""):
            env[name] = str(value)
    for name, value in overrides.items():
        env[name] = str(value)
    return env


@dataclass
class ChildProcess:
    name: str
    process: subprocess.Popen
    log_path: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: no {needle!r} in its log within {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs, as in a crash."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def start_child(name: str, command: list[str], env: dict[str, str]) -> ChildProcess:
    log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    return ChildProcess(name=name, process=process, log_path=log.name)


def start_worker(
    *, queues: str = "fanout,push,index,default", broker_url: str | None = None, concurrency: int = 1, **overrides: object
) -> ChildProcess:
    """`celery -A gochat_site worker` on the given queues; returns once it is ready."""
    env = child_env(broker_url or test_broker_url(), **overrides)
    command = [
        sys.executable, "-m", "celery", "-A", "gochat_site", "worker",
        "-Q", queues, "--pool=prefork", f"--concurrency={concurrency}",
        "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]  # fmt: skip
    worker = start_child("celery-worker", command, env)
    try:
        worker.wait_for_log(" ready.", timeout=60)
    except BaseException:
        worker.stop()
        raise
    return worker


def start_task_bridge(*, broker_url: str | None = None, **overrides: object) -> ChildProcess:
    """`python manage.py run_task_bridge`; returns once its consumer has started."""
    env = child_env(broker_url or test_broker_url(), **overrides)
    bridge = start_child("task-bridge", [sys.executable, "manage.py", "run_task_bridge"], env)
    try:
        bridge.wait_for_log("consumer_started", timeout=60)
    except BaseException:
        bridge.stop()
        raise
    return bridge
