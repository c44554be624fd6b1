"""Fan-out benchmark: one message to a 10,000-member group with 2,000 members online over
two gateways, delivered by a real Celery worker (prefork, one process) through the Tansu
Kafka broker, with PostgreSQL and Redis (presence, cache, Celery broker).

Measured per round, from the enqueue of tasks.large_group_fanout:
- last_member_ms: until the envelope carrying the last online member is read back from
  its gateway's downstream topic (what a gateway would see; read by this process);
- worker_cpu_s: CPU seconds (user + system) the worker's pool process spent on the round.
A first, uncounted round warms the worker up. Prints one human line per round, a summary
line and, last, one JSON object.

Run alone: `.venv/bin/python -m bench.fanout`. Knobs (environment):
  BENCH_FANOUT_MEMBERS (10000), BENCH_FANOUT_ONLINE (2000), BENCH_FANOUT_ROUNDS (3),
  BENCH_PG_URL (postgres://postgres@127.0.0.1:5432), BENCH_FANOUT_DATABASE
  (gochat_bench_fanout, created and dropped), BENCH_REDIS_URL (redis://127.0.0.1:6379/11,
  flushed before and after).
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAYS = ("gw-bench-a", "gw-bench-b")


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pool_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def _worker_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p) for p in [pid, *_pool_pids(pid)])


class Collector:
    """Reads both gateways' downstream topics and notes when each recipient first arrived."""

    def __init__(self, topics: list[str]) -> None:
        from messaging.bus import get_consumer

        self.consumer = get_consumer(topics, f"bench-fanout-{uuid.uuid4().hex[:8]}")
        self.arrived: dict[tuple[int, int], float] = {}  # (message id, user id) -> time
        self.envelopes: dict[int, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def join_group(self, timeout: float = 30.0) -> None:
        """Poll until the reader owns its partitions, so the clock starts with it ready
        (before the reading thread starts: the consumer is used by one thread at a time)."""
        deadline = time.monotonic() + timeout
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("the bench reader did not join its consumer group")
            self.consumer.consume(1, 0.2)

    def _run(self) -> None:
        from protos.gochat.v1 import envelopes_pb2 as pb

        while not self.stop.is_set():
            records = self.consumer.consume(500, 0.1)
            now = time.perf_counter()
            with self.lock:
                for record in records:
                    envelope = pb.DownstreamMessage()
                    envelope.ParseFromString(record.value)
                    message_id = envelope.message.id
                    self.envelopes[message_id] = self.envelopes.get(message_id, 0) + 1
                    for user_id in envelope.recipient_user_ids:
                        self.arrived.setdefault((message_id, user_id), now)
        self.consumer.close()

    def times_for(self, message_id: int, users: set[int]) -> list[float]:
        with self.lock:
            return [t for (m, u), t in self.arrived.items() if m == message_id and u in users]


def main() -> int:
    members = int(os.environ.get("BENCH_FANOUT_MEMBERS", "10000"))
    online_count = int(os.environ.get("BENCH_FANOUT_ONLINE", "2000"))
    rounds = int(os.environ.get("BENCH_FANOUT_ROUNDS", "3"))
    pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    database = os.environ.get("BENCH_FANOUT_DATABASE", "gochat_bench_fanout")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")

    import psycopg
    import redis

    sys.path.insert(0, str(ROOT))
    from tests.harness.celery_worker import start_child
    from tests.harness.kafka import start_tansu

    def admin(sql: str) -> None:
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def flush_redis() -> None:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()

    # SIGTERM (e.g. from `timeout`) unwinds through the finally below like Ctrl-C does,
    # so the worker and the broker never outlive the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{database}"')
    flush_redis()
    broker = start_tansu()
    run = uuid.uuid4().hex[:6]
    env = {
        "DJANGO_SETTINGS_MODULE": "gochat_site.settings",
        "DATABASE_URL": f"{pg_url}/{database}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_DOWNSTREAM_TOPIC": f"bench-downstream-{run}-{{gateway_id}}",
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "KAFKA_FETCH_WAIT_MAX_MS": "5",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    worker = collector = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        from accounts.models import User
        from gochat_site.tasks_client import enqueue_task
        from groups.services import create_group
        from messaging.bus import downstream_topic, ensure_topics
        from messaging.presence import get_presence
        from messaging.services import send_message

        owner = User.objects.create(username=f"bench_owner_{run}", password="!")
        users = User.objects.bulk_create(
            [User(username=f"bench_{run}_{i}", password="!") for i in range(members - 1)], batch_size=2000
        )
        group = create_group(
            owner_id=owner.id, name="bench fanout", member_ids=[u.id for u in users], max_members=members
        )
        member_ids = sorted([owner.id, *(u.id for u in users)])
        # Online members spread over the whole id range, so every batch has some.
        step = max(1, members // online_count)
        online = {uid: GATEWAYS[i % 2] for i, uid in enumerate(member_ids[::step][:online_count])}
        presence = get_presence()
        for user_id, gateway in online.items():
            presence.connect(user_id, f"bench-{user_id}", gateway)
        topics = [downstream_topic(g) for g in GATEWAYS]
        ensure_topics(topics, 1)

        worker = start_child(
            "bench-worker",
            [sys.executable, "-m", "celery", "-A", "gochat_site", "worker", "-Q", "fanout", "--pool=prefork",
             "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            {**os.environ, "LOG_LEVEL": "INFO"},
        )  # fmt: skip
        worker.wait_for_log(" ready.", timeout=60)
        collector = Collector(topics)
        collector.join_group()
        collector.thread.start()

        from django.core.cache import cache

        from tasks.processors.fanout import DONE, checkpoint_key

        results = []
        # Round 0 warms up (the worker's first Kafka and database connections) and is not counted.
        for round_no in range(0, rounds + 1):
            for gateway in GATEWAYS:
                presence.gateway_heartbeat(gateway)
            message = send_message(
                sender_id=owner.id, conversation_id=group.conversation.id, content=f"bench {round_no}",
                client_msg_id=f"bench-{run}-{round_no}",
            ).message  # fmt: skip
            cpu_before = _worker_cpu(worker.pid)
            started = time.perf_counter()
            enqueue_task("tasks.large_group_fanout", message_id=message.id)
            want = set(online)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                arrived = collector.times_for(message.id, want)
                if len(arrived) == len(want) and cache.get(checkpoint_key(message.id)) == DONE:
                    break
                time.sleep(0.005)
            else:
                raise RuntimeError(f"round {round_no}: {len(arrived)} of {len(want)} online members reached in 120 s")
            cpu = _worker_cpu(worker.pid) - cpu_before
            last_ms = (max(arrived) - started) * 1000
            result = {
                "round": round_no,
                "last_member_ms": round(last_ms, 1),
                "worker_cpu_s": round(cpu, 3),
                "envelopes": collector.envelopes.get(message.id, 0),
            }
            if round_no == 0:
                continue
            results.append(result)
            print(
                f"fanout round {round_no}: {len(want)} online of {members} members over {len(GATEWAYS)} gateways: "
                f"last member after {last_ms:.0f} ms, worker CPU {cpu:.2f} s, {result['envelopes']} envelopes",
                flush=True,
            )
        summary = {
            "scenario": "fanout",
            "members": members,
            "online": len(online),
            "gateways": len(GATEWAYS),
            "batch_size": 200,
            "rounds": results,
            "last_member_ms_median": round(statistics.median(r["last_member_ms"] for r in results), 1),
            "worker_cpu_s_median": round(statistics.median(r["worker_cpu_s"] for r in results), 3),
        }
        print(
            f"fanout: median {summary['last_member_ms_median']:.0f} ms to the last of {len(online)} online members "
            f"of a {members}-member group, {summary['worker_cpu_s_median']:.2f} worker CPU s per message",
            flush=True,
        )
        print(json.dumps(summary), flush=True)
        return 0
    finally:
        if collector is not None:
            collector.stop.set()
            collector.thread.join(5)
        if worker is not None:
            worker.stop()
        from django.db import connections

        connections.close_all()
        broker.stop()
        flush_redis()
        admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
