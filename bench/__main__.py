"""`python -m bench` (`make bench`): the real-time benchmarks S1, S2, S3 against a real
production-mode stack on loopback (PostgreSQL, Redis, a Tansu Kafka broker, one daphne
gateway, one run_logic, one Celery worker) and against the embedded default (one
runserver process), then bench/fanout.py when it is there.

Knobs (environment):
  BENCH_SCALE     multiplies every size (pairs, message counts, group, sockets); default 1
  BENCH_MODES     comma list of production,embedded; default both
  BENCH_PROFILE   "logic" or "gateway": py-spy records that process during S1 (production)
  BENCH_OUTPUT    also write the JSON document to this path
  BENCH_DATABASE  PostgreSQL database created and dropped by the run; default gochat_bench
  BENCH_PG_URL    server of that database; default postgres://postgres@127.0.0.1:5432
  BENCH_REDIS_URL Redis database flushed before and after; default redis://127.0.0.1:6379/11
  BENCH_KEEP_LOGS keep the processes' logs directory (always kept after a failure)
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from bench import realtime
from bench.report import Report

ROOT = Path(__file__).resolve().parents[1]
S1_TIME_LIMIT_S = 30.0


@dataclass(frozen=True)
class Sizes:
    pairs: int
    in_flight: int
    load_messages: int
    unloaded_messages: int
    group_size: int
    group_rounds: int
    socket_steps: tuple[int, ...]

    @classmethod
    def scaled(cls, scale: float) -> Sizes:
        def n(full: int, least: int) -> int:
            return max(least, round(full * scale))

        return cls(
            pairs=n(20, 1),
            in_flight=10,
            load_messages=n(3000, 100),
            unloaded_messages=n(1000, 50),
            group_size=n(1000, 10),
            group_rounds=5,
            socket_steps=(n(1000, 20), n(3000, 60)),
        )

    @property
    def pool(self) -> int:
        return max(self.group_size, self.socket_steps[-1] + 1)


def raise_fd_limit(needed: int) -> None:
    """Sockets are file descriptors, in this process and in the gateway (which inherits
    the limit): lift the soft limit as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        print(f"warning: file-descriptor limit {want} is below the {needed} sockets asked for", file=sys.stderr)


def seed(env: dict[str, str], sizes: Sizes) -> dict[str, Any]:
    spec = {"pairs": sizes.pairs + 1, "pool": sizes.pool, "group_size": sizes.group_size}
    result = subprocess.run(
        [sys.executable, "-m", "bench.seed", json.dumps(spec)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def run_scenarios(
    report: Report,
    mode: str,
    ws_url: str,
    gateway_pid: int,
    data: dict[str, Any],
    sizes: Sizes,
    *,
    pids: dict[str, int],
    profile: Profile | None = None,
    settle: Callable[[], dict[str, Any]] | None = None,
) -> None:
    pool = data["pool"]
    steps = [s for s in sizes.socket_steps]
    # S3 first: the gateway has served nothing yet, so earlier traffic cannot hide growth.
    try:
        s3 = await realtime.idle_sockets(ws_url, pool, steps=steps, gateway_pid=gateway_pid)
        s3["kib_per_socket"] = s3["steps"][-1]["kib_per_socket"]
        report.add(mode, "s3_idle", s3, params={"steps": steps})
    except Exception as exc:  # noqa: BLE001 - one failed scenario must not hide the others
        report.add_error(mode, "s3_idle", _describe(exc))

    load_pairs, unloaded_pair = data["pairs"][: sizes.pairs], data["pairs"][sizes.pairs :]
    try:
        if profile is not None:
            profile.start()
        meter = realtime.CpuMeter(pids, own={"bench client": os.getpid()})
        s1 = await realtime.one_to_one(
            ws_url, load_pairs, in_flight=sizes.in_flight, total=sizes.load_messages, time_limit_s=S1_TIME_LIMIT_S
        )
        # Includes the warm-up and drain; enough to see which process is saturated.
        s1["cpu_cores"] = meter.cores()
        report.add(mode, "s1_load", s1, params={"messages": sizes.load_messages, "time_limit_s": S1_TIME_LIMIT_S})
    except Exception as exc:  # noqa: BLE001
        report.add_error(mode, "s1_load", _describe(exc))
    finally:
        if profile is not None:
            report.extra.setdefault("profiles", []).append(profile.finish())
    try:
        s1u = await realtime.one_to_one(
            ws_url, unloaded_pair, in_flight=1, total=sizes.unloaded_messages, time_limit_s=S1_TIME_LIMIT_S
        )
        report.add(mode, "s1_unloaded", s1u, params={"messages": sizes.unloaded_messages, "time_limit_s": S1_TIME_LIMIT_S})
    except Exception as exc:  # noqa: BLE001
        report.add_error(mode, "s1_unloaded", _describe(exc))

    group = data["group"]
    try:
        # S1 leaves a backlog of search-index tasks; the group fan-out task would queue
        # behind it on the one worker. S2 measures delivery on a settled stack.
        backlog = settle() if settle is not None else {}
        s2 = await realtime.group_delivery(
            ws_url,
            owner=group["owner"],
            members=pool[: group["member_count"] - 1],
            conversation_id=group["conversation_id"],
            rounds=sizes.group_rounds,
        )
        report.add(mode, "s2_group", s2, params={"group_size": group["member_count"], "before": backlog})
    except Exception as exc:  # noqa: BLE001
        report.add_error(mode, "s2_group", _describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip() or traceback.format_exc(limit=2)


class Profile:
    """py-spy recording of one process while S1 runs (flame graph + collapsed stacks)."""

    def __init__(self, role: str, pid: int, outdir: Path, seconds: int) -> None:
        self.role, self.pid, self.outdir, self.seconds = role, pid, outdir, seconds
        self.process: subprocess.Popen | None = None

    def _py_spy(self) -> str | None:
        return shutil.which("py-spy") or (str(Path(sys.executable).parent / "py-spy") if (Path(sys.executable).parent / "py-spy").exists() else None)

    def start(self) -> None:
        binary = self._py_spy()
        if binary is None:
            print("warning: BENCH_PROFILE set but py-spy is not installed", file=sys.stderr)
            return
        # --idle: the loop is bound by waiting on PostgreSQL, Redis and Kafka, so wall time
        # (not only CPU time) is what to look at.
        common = ["--pid", str(self.pid), "--duration", str(self.seconds), "--rate", "100", "--idle", "--nonblocking"]
        self.process = subprocess.Popen(
            [binary, "record", "--format", "raw", "-o", str(self.outdir / f"profile-{self.role}.txt"), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def finish(self) -> dict[str, Any]:
        if self.process is None:
            return {"role": self.role, "error": "py-spy not installed"}
        try:
            self.process.wait(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=10)
        raw = self.outdir / f"profile-{self.role}.txt"
        return {"role": self.role, "pid": self.pid, "collapsed_stacks": str(raw), "top": top_frames(raw)}


def top_frames(raw: Path, limit: int = 15) -> list[dict[str, Any]]:
    """Functions by inclusive share of samples, from py-spy's collapsed-stack output."""
    try:
        lines = raw.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    total = 0
    inclusive: dict[str, int] = {}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    return [{"frame": f, "share": round(c / total, 3)} for f, c in ranked[:limit]] if total else []


CELERY_QUEUES = ("fanout", "push", "index", "default")


def celery_backlog(client: Any) -> int:
    """Tasks waiting in the Redis broker's queues (priority sub-queues included)."""
    waiting = 0
    for key in client.scan_iter(count=1000):
        name = key.decode("latin-1")
        if name.split("\x06\x16")[0] in CELERY_QUEUES and client.type(key) == b"list":
            waiting += client.llen(key)
    return waiting


def wait_for_celery(redis_url: str, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until the worker has taken every queued task; say how many and how long."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        started = time.monotonic()
        first = celery_backlog(client)
        waiting = first
        while waiting and time.monotonic() - started < timeout:
            time.sleep(0.5)
            waiting = celery_backlog(client)
        return {"celery_backlog": first, "drained_in_s": round(time.monotonic() - started, 1), "left": waiting}
    finally:
        client.close()


# --- modes ---------------------------------------------------------------------------------------


def production(report: Report, sizes: Sizes, logs: Path) -> None:
    import psycopg
    import redis

    from tests.harness.kafka import start_tansu
    from tests.harness.stack import Stack, embedded_env

    pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    database = os.environ.get("BENCH_DATABASE", "gochat_bench")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")

    def admin(sql: str) -> None:
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def flush_redis() -> None:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()

    admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{database}"')
    flush_redis()
    broker = start_tansu()
    env = embedded_env(
        DATABASE_URL=f"{pg_url}/{database}",
        REDIS_URL=redis_url,
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        CELERY_BROKER_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="0",
        # Tansu forms consumer groups in seconds only with short session timeouts, and
        # answers a fetch only after fetch.wait.max.ms (tests use the same values).
        KAFKA_SESSION_TIMEOUT_MS=3000,
        KAFKA_HEARTBEAT_INTERVAL_MS=500,
        KAFKA_FETCH_WAIT_MAX_MS=5,
        # The per-user flood limit (50 frames/s) is not under test: S1 senders run at
        # ~50 msg/s each at the 1,000 msg/s target.
        WS_RATE_LIMIT=1_000_000,
        # 1,000-3,000 sockets each authenticate and register; the default pool is small.
        DB_POOL_MAX_SIZE=20,
    )
    stack = Stack(env, logs / "production")
    try:
        stack.manage("migrate", "--noinput")
        data = seed(env, sizes)
        gateway = stack.gateway("gw-bench-1")
        logic = stack.logic("logic-1")
        # Groups over LARGE_GROUP_THRESHOLD (2,000) fan out through Celery, and every
        # message is indexed by a task: production mode needs the worker.
        worker = stack.worker(concurrency=1, name="worker-1")
        profile = None
        role = os.environ.get("BENCH_PROFILE", "")
        if role in ("logic", "gateway"):
            pid = logic.pid if role == "logic" else gateway.pid
            profile = Profile(role, pid, logs, seconds=15)
        pids = {"gateway": gateway.pid, "logic": logic.pid, "worker": worker.pid, "kafka (tansu)": broker.process.pid}
        asyncio.run(
            run_scenarios(
                report,
                "production",
                gateway.ws_url,
                gateway.pid,
                data,
                sizes,
                pids=pids,
                profile=profile,
                settle=lambda: wait_for_celery(redis_url),
            )
        )
    finally:
        stack.stop()
        broker.stop()
        flush_redis()
        admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def embedded(report: Report, sizes: Sizes, logs: Path) -> None:
    from tests.harness.stack import Stack, embedded_env

    workdir = logs / "embedded"
    env = embedded_env(SQLITE_PATH=str(workdir / "bench.sqlite3"), WS_RATE_LIMIT=1_000_000, GATEWAY_ID="gw-bench-embedded")
    stack = Stack(env, workdir)
    try:
        stack.manage("migrate", "--noinput")
        data = seed(env, sizes)
        server = stack.runserver()
        asyncio.run(run_scenarios(report, "embedded", server.ws_url, server.pid, data, sizes, pids={"server": server.pid}))
    finally:
        stack.stop()


def fanout(report: Report) -> None:
    """bench/fanout.py (the 10,000-member group fan-out) when present; its output is kept."""
    if not (ROOT / "bench" / "fanout.py").exists():
        report.extra["fanout"] = {"skipped": "bench/fanout.py not present"}
        return
    print("running bench/fanout.py ...", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "bench.fanout"], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    print(result.stdout, end="", flush=True)
    entry: dict[str, Any] = {"returncode": result.returncode, "stdout": result.stdout[-20000:]}
    if result.returncode != 0:
        entry["stderr"] = result.stderr[-4000:]
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"fanout     FAILED (exit {result.returncode}): {last}", flush=True)
    for line in reversed(result.stdout.splitlines()):
        try:
            entry["result"] = json.loads(line)
            break
        except ValueError:
            continue
    report.extra["fanout"] = entry


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    modes = [m.strip() for m in os.environ.get("BENCH_MODES", "production,embedded").split(",") if m.strip()]
    sizes = Sizes.scaled(scale)
    raise_fd_limit(sizes.pool * 2 + 256)
    logs = Path(tempfile.mkdtemp(prefix="gochat-bench-"))
    report = Report()
    report.extra["scale"] = scale
    report.extra["sizes"] = sizes.__dict__
    print(f"GoChat bench: scale {scale}, modes {modes}, logs in {logs}", flush=True)
    failed = False
    for mode in modes:
        started = time.monotonic()
        try:
            {"production": production, "embedded": embedded}[mode](report, sizes, logs)
        except Exception as exc:  # noqa: BLE001 - report it, go on with the next mode
            failed = True
            report.add_error(mode, "setup", _describe(exc))
            traceback.print_exc()
        print(f"{mode}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    if os.environ.get("BENCH_FANOUT", "1") != "0":
        fanout(report)
    document = report.document()
    print(json.dumps(document, indent=2))
    if os.environ.get("BENCH_OUTPUT"):
        Path(os.environ["BENCH_OUTPUT"]).write_text(json.dumps(document, indent=2), encoding="utf-8")
    failed_scenario = any("error" in r for r in report.results)
    if failed or failed_scenario or os.environ.get("BENCH_KEEP_LOGS") or report.extra.get("profiles"):
        print(f"logs kept in {logs}", file=sys.stderr)
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
