"""Launch GoChat roles as real processes for end-to-end tests and benchmarks.

`Stack(env, tmpdir)` starts daphne gateways, `run_logic` processes, Celery workers and an
embedded-default `runserver`, each in its own process group with its log in `tmpdir`
(kept after the run, so a failure can be read). `env` is the environment every child
starts from; `env_from_settings()` builds one that points children at the services and
per-test topic names of the running pytest-django test (the test database included).

    stack = Stack(env_from_settings(), tmp_path)
    gw = stack.gateway("gw-a")          # returns once GET /healthz answers 200
    stack.logic("logic-1")              # returns once its Kafka consumer has started
    gw.kill(signal.SIGKILL)             # a crash; stack.stop() ends whatever is left
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]

# Variables that switch a piece to a real service; without them a child is the embedded default.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL", "BUS_BACKEND")

# Settings a child must share with the test process: services, topic and group names,
# the short Kafka timeouts the Tansu test broker needs, presence and gateway limits.
SHARED_SETTINGS = (
    "REDIS_URL",
    "PRESENCE_BACKEND",
    "BUS_BACKEND",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_UPSTREAM_TOPIC",
    "KAFKA_DOWNSTREAM_TOPIC",
    "KAFKA_TASK_TOPIC",
    "KAFKA_TASK_DLQ_TOPIC",
    "KAFKA_UPSTREAM_DLQ_TOPIC",
    "KAFKA_LOGIC_GROUP",
    "KAFKA_TASK_BRIDGE_GROUP",
    "KAFKA_UPSTREAM_PARTITIONS",
    "KAFKA_SESSION_TIMEOUT_MS",
    "KAFKA_HEARTBEAT_INTERVAL_MS",
    "KAFKA_FETCH_WAIT_MAX_MS",
    "PRESENCE_TTL_SECONDS",
    "PRESENCE_BATCH_SIZE",
    "LARGE_GROUP_THRESHOLD",
    "FANOUT_BATCH_SIZE",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """URL of the PostgreSQL database this (pytest-django) process is using right now."""
    from django.db import connection

    db = connection.settings_dict
    if not db["ENGINE"].endswith(".postgresql"):
        raise RuntimeError("child processes share the test database only on PostgreSQL: mark the test postgres")
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def embedded_env(**overrides: object) -> dict[str, str]:
    """This process's environment without any service variable: the embedded default."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES and k != "TEST_DATABASE_NAME"}
    env["DJANGO_SETTINGS_MODULE"] = "gochat_site.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def env_from_settings(*, celery_broker_url: str = "", **overrides: object) -> dict[str, str]:
    """A child environment sharing the running test's database, Redis, Kafka and names.

    Celery runs eagerly in the child unless `celery_broker_url` is given (then tasks go
    to that broker and need a worker: Stack.worker()).
    """
    from django.conf import settings

    env = embedded_env()
    env["DATABASE_URL"] = test_database_url()
    # A few connections per child: several children share one PostgreSQL with other tests.
    env["DB_POOL_MAX_SIZE"] = "6"
    for name in SHARED_SETTINGS:
        value = getattr(settings, name, None)
        if value not in (None, ""):
            env[name] = str(value)
    if celery_broker_url:
        env["CELERY_BROKER_URL"] = celery_broker_url
        env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    else:
        env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    env.update({name: str(value) for name, value in overrides.items()})
    return env


class Proc:
    """One child process (its own process group) with its log file."""

    def __init__(
        self, name: str, process: subprocess.Popen, log_path: Path, port: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.port = port
        self.host = host

    def __repr__(self) -> str:
        return f"Proc({self.name!r}, pid={self.pid}, port={self.port})"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def count(self, needle: str) -> int:
        """How many log lines contain `needle`."""
        return sum(1 for line in self.log().splitlines() if needle in line)

    def wait_for_log(self, needle: str, timeout: float = 60.0, *, occurrences: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(needle) >= occurrences:
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: {needle!r} not logged within {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Send `sig` to the whole process group and wait for the exit (SIGKILL: a crash)."""
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a graceful stop), SIGKILL after `timeout` seconds."""
        return self.kill(signal.SIGTERM, timeout=timeout)

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group without waiting (SIGSTOP / SIGCONT: a frozen process)."""
        if self.alive():
            os.killpg(self.process.pid, sig)


def _wait_http_ok(proc: Proc, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(f"{proc.url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name}: {path} did not answer 200 within {timeout}s:\n{proc.log_tail()}")


class Stack:
    """The processes of one test or benchmark run; stop() ends all that are left."""

    def __init__(self, env: dict[str, str], tmpdir: str | os.PathLike[str]) -> None:
        self.env = dict(env)
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _env(self, extra: dict[str, object] | None) -> dict[str, str]:
        env = dict(self.env)
        env.update({name: str(value) for name, value in (extra or {}).items()})
        return env

    def spawn(
        self,
        name: str,
        command: list[str],
        *,
        env: dict[str, object] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        wrap: list[str] | None = None,
    ) -> Proc:
        """Start `command` from the project root; its output goes to tmpdir/<name>.log.

        `wrap` prefixes the command (e.g. `ip netns exec <ns>`: the process runs in a
        network namespace, reachable at `host`).
        """
        log_path = self.tmpdir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [*(wrap or []), *command],
                cwd=ROOT,
                env=self._env(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: kill() takes the children (prefork pool) down too.
                start_new_session=True,
            )
        proc = Proc(name, process, log_path, port, host)
        self.procs.append(proc)
        return proc

    def manage(self, *args: str, env: dict[str, object] | None = None, timeout: float = 300.0) -> str:
        """Run `python manage.py <args>` to completion; return its output (raises on failure)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self._env(env), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout

    def gateway(
        self,
        gateway_id: str,
        port: int | None = None,
        *,
        env: dict[str, object] | None = None,
        timeout: float = 60.0,
        host: str = "127.0.0.1",
        wrap: list[str] | None = None,
    ) -> Proc:
        """`daphne gochat_site.asgi:application` on `host` (127.0.0.1) as GATEWAY_ID=gateway_id.

        Returns once /healthz answers. Its downstream consumer starts with its first
        WebSocket (messaging.gateway.loops), so a test's first round trip also waits for it.
        `host` and `wrap` run it elsewhere, e.g. inside a network namespace (Stack.spawn).
        """
        port = port or free_port()
        command = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "gochat_site.asgi:application"]
        proc = self.spawn(
            gateway_id, command, env={"GATEWAY_ID": gateway_id, **(env or {})}, port=port, host=host, wrap=wrap
        )
        self._ready_or_stop(proc, lambda: _wait_http_ok(proc, "/healthz", timeout))
        return proc

    def runserver(self, port: int | None = None, *, env: dict[str, object] | None = None, timeout: float = 60.0) -> Proc:
        """`manage.py runserver 127.0.0.1:<port> --noreload` (daphne's); returns once /healthz answers."""
        port = port or free_port()
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        proc = self.spawn(f"runserver-{port}", command, env=env, port=port)
        self._ready_or_stop(proc, lambda: _wait_http_ok(proc, "/healthz", timeout))
        return proc

    def logic(self, name: str = "logic", *, env: dict[str, object] | None = None, timeout: float = 60.0) -> Proc:
        """`manage.py run_logic`; returns once its consumer subscribed (log event consumer_started).

        The group's partitions are assigned a moment later; records produced meanwhile
        are not lost (a new group starts at the earliest offset, a rebalance resumes
        from the last commit).
        """
        proc = self.spawn(name, [sys.executable, "manage.py", "run_logic"], env=env)
        self._ready_or_stop(proc, lambda: proc.wait_for_log('"event": "consumer_started"', timeout))
        return proc

    def worker(
        self,
        queues: str = "fanout,push,index,default",
        *,
        name: str | None = None,
        concurrency: int = 1,
        env: dict[str, object] | None = None,
        timeout: float = 60.0,
    ) -> Proc:
        """`celery -A gochat_site worker -Q <queues>`; needs CELERY_BROKER_URL in the env."""
        name = name or f"worker-{len(self.procs)}"
        command = [
            sys.executable, "-m", "celery", "-A", "gochat_site", "worker", "-Q", queues,
            "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h",
        ]  # fmt: skip
        proc = self.spawn(name, command, env=env)
        self._ready_or_stop(proc, lambda: proc.wait_for_log(" ready.", timeout))
        return proc

    def _ready_or_stop(self, proc: Proc, wait) -> None:  # noqa: ANN001 - a no-argument callable
        try:
            wait()
        except BaseException:
            proc.kill()
            raise

    def stop(self) -> None:
        """Stop every process still running (SIGTERM to all at once, SIGKILL after 20 s)."""
        running = [proc for proc in reversed(self.procs) if proc.alive()]
        for proc in running:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in running:
            proc.stop()
