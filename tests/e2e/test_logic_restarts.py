"""The logic group under restarts of every member, with real processes: a daphne gateway,
two `run_logic` on the session's Tansu broker and PostgreSQL, real WebSocket clients.

A client behaves as a real one: it resends an unacknowledged message with the same
client_msg_id every few seconds. What is asserted is what the users see: every send is
acknowledged, the recipient gets every message, and the stored history is gap-free.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from asgiref.sync import sync_to_async

from tests.harness.stack import free_port
from tests.harness.wsclient import WsClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

# Short enough for a test, above the 3 s session timeout Tansu needs (docs/bus-and-presence.md).
LOGIC_ENV = {"KAFKA_STALL_SECONDS": 8, "KAFKA_STALL_CHECK_SECONDS": 1}
RESEND_SECONDS = 4.0
# After the last restart: a rejoin (seconds), a possible stall detection and re-creation
# (8 s + backoff), and the resend period. Generous for a 2-core machine shared by others.
RECOVERY_SECONDS = 90.0


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(port: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    last: tuple[int, dict] | None = None
    while time.monotonic() < deadline:
        try:
            last = readyz(port)
        except OSError:
            last = None
        if last and last[0] == 200:
            return last[1]
        time.sleep(0.3)
    raise TimeoutError(f"logic /readyz on {port} not 200 within {timeout}s: {last}")


class Sender:
    """Sends `count` messages one after another, resending each until it is acked."""

    def __init__(self, client: WsClient, conversation_id: str, count: int, interval: float = 0.1) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.count = count
        self.interval = interval
        self.sent: list[str] = []
        self.resends = 0

    def acked(self) -> set[str]:
        return {f["data"]["client_msg_id"] for f in self.client.of_type("send-ack")}

    async def run(self, deadline: float) -> None:
        for n in range(self.count):
            self.sent.append(await self.client.send_message(self.conversation_id, f"msg {n}"))
            await asyncio.sleep(self.interval)
        await self.run_resends(deadline)

    async def run_resends(self, deadline: float) -> None:
        # Resend what is not acknowledged, as a client does, until all are or time is up.
        while time.monotonic() < deadline:
            await asyncio.sleep(RESEND_SECONDS)
            missing = [c for c in self.sent if c not in self.acked()]
            if not missing:
                return
            for client_msg_id in missing:
                n = self.sent.index(client_msg_id)
                await self.client.send_message(self.conversation_id, f"msg {n}", client_msg_id=client_msg_id)
                self.resends += 1


async def keep_alive(clients: list[WsClient], every: float = 5.0) -> None:
    """Ping as a real client does: the ping refreshes the socket's presence entry."""
    while True:
        await asyncio.sleep(every)
        for client in clients:
            if not client.closed:
                await client.send("ping")


def _single_chat(user, peer) -> str:  # noqa: ANN001 - accounts.User
    from messaging.services import get_or_create_single_conversation

    conversation, _ = get_or_create_single_conversation(user_id=user.id, peer_id=peer.id)
    return str(conversation.id)


def _stored(conversation_id: str) -> list[tuple[int, str]]:
    from messaging.models import Message

    return list(
        Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("seq", "client_msg_id")
    )


def _restart(stack, name: str, env: dict) -> tuple[object, int]:  # noqa: ANN001 - Stack
    port = free_port()
    return stack.logic(name, env={**env, "HEALTH_PORT": port}), port


async def test_rolling_sigterm_of_every_run_logic_while_sending(stack_env, launch, alice, bob, token_for):
    stack = launch(stack_env(**LOGIC_ENV))
    gateway = stack.gateway("gw-a")
    logic = {}
    for name in ("logic-1", "logic-2"):
        logic[name] = _restart(stack, name, LOGIC_ENV)
    ready = [await asyncio.to_thread(wait_ready, port) for _, port in logic.values()]
    # Two members split the upstream partitions between them (4 by default).
    assert sorted(p for state in ready for p in state["assignment"]) == sorted(
        {p for state in ready for p in state["assignment"]}
    )

    conversation_id = await sync_to_async(_single_chat)(alice, bob)
    sender_ws = await WsClient.connect(gateway.ws_url, token_for(alice), name="alice")
    peer_ws = await WsClient.connect(gateway.ws_url, token_for(bob), name="bob")
    pinging = asyncio.create_task(keep_alive([sender_ws, peer_ws]))
    try:
        sender = Sender(sender_ws, conversation_id, count=80)
        sending = asyncio.create_task(sender.run(time.monotonic() + 240))
        # Every member leaves (SIGTERM: it finishes its batch, commits and leaves the
        # group) and is replaced, one after the other, while messages keep coming.
        for name in ("logic-1", "logic-2"):
            await asyncio.sleep(2)
            proc, _ = logic[name]
            assert await asyncio.to_thread(proc.stop) == 0, proc.log_tail()
            logic[name] = await asyncio.to_thread(_restart, stack, f"{name}-again", LOGIC_ENV)
        restarted_at = time.monotonic()
        await asyncio.wait_for(sending, timeout=RECOVERY_SECONDS + 240)
        # And after the last restart: the group must still be consuming.
        for n in range(80, 100):
            sender.sent.append(await sender_ws.send_message(conversation_id, f"msg {n}"))
        await asyncio.wait_for(sender.run_resends(time.monotonic() + RECOVERY_SECONDS), timeout=RECOVERY_SECONDS + 30)
        missing = [c for c in sender.sent if c not in sender.acked()]
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(3000)}" for p in stack.procs if p.name.startswith("logic"))
        assert missing == [], f"{len(missing)} sends never acknowledged\n{logs}"
        assert time.monotonic() - restarted_at < RECOVERY_SECONDS

        stored = await sync_to_async(_stored)(conversation_id)
        assert [seq for seq, _ in stored] == list(range(1, 101))
        assert sorted(c for _, c in stored) == sorted(sender.sent)
        # The peer got every message on its socket, without having to sync.
        try:
            await peer_ws.wait_until(
                lambda: {m["seq"] for m in peer_ws.new_messages()} >= set(range(1, 101)), timeout=60, what="all 100"
            )
        except TimeoutError:
            got = {m["seq"] for m in peer_ws.new_messages()}
            logs = "\n".join(f"--- {p.name}\n{p.log_tail(6000)}" for p in stack.procs)
            raise AssertionError(f"peer never got seqs {sorted(set(range(1, 101)) - got)}\n{logs}") from None
        # Both new members are ready and between them own every partition.
        states = [await asyncio.to_thread(wait_ready, port) for _, port in logic.values()]
        # A member that took partitions over by hand after a wedge (consumers_registry)
        # may read one a group member owns too; the group's own assignment is exclusive.
        owned = sorted(p for state in states if not state.get("takeover") for p in state["assignment"])
        assert len(owned) == len(set(owned))
        assert owned or any(state.get("takeover") for state in states)
        assert all(state["stalled"] is None for state in states)
    finally:
        pinging.cancel()
        await asyncio.gather(sender_ws.close(), peer_ws.close(), return_exceptions=True)


# --- A PostgreSQL outage that makes every run_logic reopen its consumer ---------------------
class PrivatePostgres:
    """A PostgreSQL server of this test only (initdb in tmp, a free port), so stopping it
    never touches the machine's server. initdb refuses root: it runs as `postgres` then."""

    def __init__(self, root) -> None:  # noqa: ANN001 - a pathlib.Path
        import glob
        import os
        import shutil
        from pathlib import Path

        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
        assert binaries, "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        self.bindir = Path(binaries[-1]).parent
        self.port = free_port()
        self.datadir = root / "pgdata"
        self.logfile = root / "postgres.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.datadir.mkdir(parents=True)
        self.logfile.touch()
        if self.as_user:
            for path in (root, self.datadir, self.logfile):
                shutil.chown(path, "postgres")
        self.run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def run(self, tool: str, *args: str) -> str:
        import subprocess

        result = subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"
        return result.stdout

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/gochat"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c fsync=off -c max_connections=100"
        self.run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        import subprocess

        subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"],
            capture_output=True, timeout=120,
        )  # fmt: skip


# alice and one peer per upstream partition: the conversation id is the record key, and
# librdkafka's default partitioner is crc32(key) % partitions, so every partition, and so
# every run_logic, gets traffic whatever the assignment.
SEED = """
import json, zlib
from django.conf import settings
from accounts.models import User
from messaging.services import get_or_create_single_conversation
a = User.objects.create_user(username="alice", password="!")
by_partition = {}
n = 0
while len(by_partition) < settings.KAFKA_UPSTREAM_PARTITIONS:
    n += 1
    peer = User.objects.create_user(username=f"peer{n}", password="!")
    c, _ = get_or_create_single_conversation(user_id=a.id, peer_id=peer.id)
    by_partition.setdefault(zlib.crc32(str(c.id).encode()) % settings.KAFKA_UPSTREAM_PARTITIONS, (peer.id, str(c.id)))
print(json.dumps({"alice": a.id, "pairs": list(by_partition.values())}))
"""


@pytest.fixture
def private_postgres():
    import os
    import shutil
    import tempfile
    from pathlib import Path

    # Not under pytest's tmp_path: its parents are private to root, and the server runs
    # as postgres.
    root = Path(tempfile.mkdtemp(prefix="gochat-test-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    try:
        server = PrivatePostgres(root / "pg")
        server.start()
        server.run("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "gochat")
        yield server
        server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_database_outage_fails_every_run_logic_batches_and_every_send_is_persisted_after_heal(
    stack_env, launch, token_for, private_postgres
):
    import psycopg
    from accounts.models import User

    # A batch waits DB_POOL_TIMEOUT for a connection before it fails: 3 s, so that the
    # 12 s outage makes every batch fail and every run_logic reopen its consumer.
    env = stack_env(**LOGIC_ENV, DATABASE_URL=private_postgres.url, DB_POOL_TIMEOUT=3)
    stack = launch(env)
    await asyncio.to_thread(stack.manage, "migrate", "--noinput")
    ids = json.loads((await asyncio.to_thread(stack.manage, "shell", "-c", SEED)).strip().splitlines()[-1])
    gateway = stack.gateway("gw-a")
    logic = [_restart(stack, name, LOGIC_ENV) for name in ("logic-1", "logic-2")]
    for _, port in logic:
        await asyncio.to_thread(wait_ready, port)
    sender_ws = await WsClient.connect(gateway.ws_url, token_for(User(id=ids["alice"])), name="alice")
    peers = {
        conversation_id: await WsClient.connect(gateway.ws_url, token_for(User(id=peer_id)), name=f"peer-{peer_id}")
        for peer_id, conversation_id in ids["pairs"]
    }
    pinging = asyncio.create_task(keep_alive([sender_ws, *peers.values()]))
    try:
        senders = [Sender(sender_ws, conversation_id, count=15, interval=0.4) for conversation_id in peers]
        sending = [asyncio.create_task(sender.run(time.monotonic() + 200)) for sender in senders]
        await asyncio.sleep(1.5)
        # An immediate stop is a crash of the server; every logic process fails its
        # batches and reads them again until the server is back. (Before, each failure
        # closed and re-joined the consumer; the rebalance storm wedged the Tansu group
        # and 44 of 60 sends were never acknowledged.)
        await asyncio.to_thread(private_postgres.stop, "immediate")
        await asyncio.sleep(12)
        await asyncio.to_thread(private_postgres.start)
        healed_at = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*sending), timeout=260)
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(3000)}" for p in stack.procs)
        missing = [c for sender in senders for c in sender.sent if c not in sender.acked()]
        assert missing == [], f"{len(missing)} sends never acknowledged\n{logs}"
        assert time.monotonic() - healed_at < RECOVERY_SECONDS
        for proc, _ in logic:
            assert proc.count("consumer_batch_failed") >= 1, f"{proc.name} never reopened: the test proves less\n{logs}"

        with psycopg.connect(private_postgres.url) as conn:
            for sender in senders:
                rows = conn.execute(
                    "SELECT seq, client_msg_id FROM messaging_message WHERE conversation_id = %s ORDER BY seq",
                    (int(sender.conversation_id),),
                ).fetchall()
                assert [seq for seq, _ in rows] == list(range(1, 16))
                assert sorted(c for _, c in rows) == sorted(sender.sent)
        for peer_ws in peers.values():
            await peer_ws.wait_until(
                lambda ws=peer_ws: {m["seq"] for m in ws.new_messages()} >= set(range(1, 16)),
                timeout=60,
                what="every message",
            )
        for _, port in logic:
            state = await asyncio.to_thread(wait_ready, port)
            assert state["stalled"] is None
    finally:
        pinging.cancel()
        await asyncio.gather(sender_ws.close(), *(ws.close() for ws in peers.values()), return_exceptions=True)
