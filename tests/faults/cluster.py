"""The GoChat processes of one fault run on the session's private services.

Two daphne gateways (gw-a, gw-b), two `run_logic` and one Celery worker, started with
the project's own commands through tests.harness.stack.Stack. Every run gets its own
topic and consumer-group names, so a run never inherits the offsets, stranded records
or a stuck group of an earlier one; PostgreSQL and Redis are shared, with fresh users.
"""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.faults.netns import Namespace
from tests.faults.services import PrivateServices
from tests.harness.stack import ROOT, Proc, Stack, embedded_env

# The settings every fault run holds under (docs/reliability.md quotes them).
SUITE_SETTINGS = {
    # The Tansu test broker lets a consumer join a group in seconds only with a short
    # session timeout, and answers a fetch only after fetch.wait.max.ms (as tests/ use).
    "KAFKA_SESSION_TIMEOUT_MS": 3000,
    "KAFKA_HEARTBEAT_INTERVAL_MS": 500,
    "KAFKA_FETCH_WAIT_MAX_MS": 5,
    "KAFKA_UPSTREAM_PARTITIONS": 4,
    # The logic group's stall detector, scaled as the session timeout is (production:
    # 90 s over a 45 s session timeout): above a rebalance here, well inside the bound.
    "KAFKA_STALL_SECONDS": 10,
    "KAFKA_STALL_CHECK_SECONDS": 2,
    # The group of the load (6 members) is "large": its messages go through the Celery
    # fanout task, two members per batch, so a worker can die in the middle of one.
    "LARGE_GROUP_THRESHOLD": 3,
    "FANOUT_BATCH_SIZE": 2,
    "PRESENCE_TTL_SECONDS": 90,
    # A handful of connections per process: 5 processes share one private PostgreSQL.
    "DB_POOL_MAX_SIZE": 6,
    "CELERY_TASK_ALWAYS_EAGER": 0,
    "LOG_LEVEL": "INFO",
}


class FaultCluster:
    def __init__(self, services: PrivateServices, tmpdir: Path, *, netns: bool = False, **overrides: object) -> None:
        """`netns`: gw-a runs inside a network namespace of its own (tests/faults/netns.py)."""
        self.services = services
        self.run = uuid.uuid4().hex[:8]
        self.namespace = Namespace(self.run) if netns else None
        self._where: dict[str, dict] = {}  # gateway name -> host / wrap of Stack.gateway
        env = embedded_env(**SUITE_SETTINGS)
        env.update(
            {
                "DATABASE_URL": services.postgres.url,
                "REDIS_URL": f"{services.redis.url}/0",
                "PRESENCE_BACKEND": "redis",
                "CELERY_BROKER_URL": services.celery_broker.url,
                "BUS_BACKEND": "kafka",
                "KAFKA_BOOTSTRAP_SERVERS": services.tansu.bootstrap,
                "KAFKA_UPSTREAM_TOPIC": f"im-upstream-{self.run}",
                "KAFKA_DOWNSTREAM_TOPIC": f"im-downstream-{self.run}-{{gateway_id}}",
                "KAFKA_TASK_TOPIC": f"im-task-{self.run}",
                "KAFKA_TASK_DLQ_TOPIC": f"im-task-dlq-{self.run}",
                "KAFKA_UPSTREAM_DLQ_TOPIC": f"im-upstream-dlq-{self.run}",
                "KAFKA_LOGIC_GROUP": f"im-logic-{self.run}",
                "KAFKA_TASK_BRIDGE_GROUP": f"im-task-bridge-{self.run}",
                "CACHE_KEY_PREFIX": f"gochat-{self.run}",
                "CHANNEL_LAYER_PREFIX": f"gochat-{self.run}",
            }
        )
        env.update({name: str(value) for name, value in overrides.items()})
        self.stack = Stack(env, tmpdir)
        self.gateways: dict[str, Proc] = {}
        self.logics: dict[str, Proc] = {}
        self.worker: Proc | None = None

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    # --- processes ---------------------------------------------------------------------
    def start(self) -> None:
        """gw-a, gw-b, logic-1, logic-2 and the worker, started side by side."""
        if self.namespace is not None:
            self.namespace.create()
            services = self.services
            ports = [services.postgres.port, services.redis.port, services.celery_broker.port, services.tansu.port]
            self.namespace.start_relays(self.stack, ports)
            self._where["gw-a"] = {
                "host": self.namespace.ns_ip,
                "wrap": self.namespace.wrap,
                "env": {"ALLOWED_HOSTS": f"127.0.0.1,localhost,{self.namespace.ns_ip}"},
            }
        with ThreadPoolExecutor(max_workers=5) as pool:
            gateways = {name: pool.submit(self.stack.gateway, name, **self._where.get(name, {})) for name in ("gw-a", "gw-b")}
            logics = {name: pool.submit(self.stack.logic, name) for name in ("logic-1", "logic-2")}
            worker = pool.submit(self.stack.worker, name="worker")
            self.gateways = {name: future.result() for name, future in gateways.items()}
            self.logics = {name: future.result() for name, future in logics.items()}
            self.worker = worker.result()

    def restart_gateway(self, name: str) -> Proc:
        """A gateway again on the same port and GATEWAY_ID (clients reconnect to it)."""
        old = self.gateways[name]
        if old.alive():
            old.kill()
        self.gateways[name] = self.stack.gateway(name, old.port, **self._where.get(name, {}))
        return self.gateways[name]

    def restart_logic(self, name: str) -> Proc:
        old = self.logics.get(name)
        if old is not None and old.alive():
            old.stop()
        self.logics[name] = self.stack.logic(name)
        return self.logics[name]

    def restart_worker(self) -> Proc:
        if self.worker is not None and self.worker.alive():
            self.worker.kill()
        self.worker = self.stack.worker(name="worker")
        return self.worker

    def stop(self) -> None:
        self.stack.stop()
        if self.namespace is not None:
            self.namespace.destroy()

    def logs(self) -> dict[str, str]:
        return {proc.name: str(proc.log_path) for proc in self.stack.procs}

    # --- data --------------------------------------------------------------------------
    def manage(self, *args: str) -> str:
        return self.stack.manage(*args)

    def seed(self, *, pairs: int, group_members: int, burst_users: int = 0) -> dict:
        spec = {"run": self.run, "pairs": pairs, "group_members": group_members, "burst_users": burst_users}
        result = subprocess.run(
            [sys.executable, "-m", "tests.faults.seed", json.dumps(spec)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"seed failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def read_history(self, conversation_ids: list[str]) -> dict[str, list[dict]]:
        """Every stored message of these conversations, read from PostgreSQL directly."""
        import psycopg

        rows: dict[str, list[dict]] = {cid: [] for cid in conversation_ids}
        with psycopg.connect(f"host=127.0.0.1 port={self.services.postgres.port} user=postgres dbname=gochat") as conn:
            cursor = conn.execute(
                "SELECT conversation_id, seq, id, client_msg_id, sender_id, "
                "EXTRACT(EPOCH FROM created_at) FROM messaging_message "
                "WHERE conversation_id = ANY(%s) ORDER BY conversation_id, seq",
                ([int(cid) for cid in conversation_ids],),
            )
            for conversation_id, seq, mid, cmid, sender, created in cursor:
                rows[str(conversation_id)].append(
                    {"seq": seq, "id": str(mid), "client_msg_id": cmid, "sender_id": str(sender), "created": float(created)}
                )
        return rows
