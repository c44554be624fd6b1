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
        missing = [c for c in sender.sent if c not in sender.acked()]
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(3000)}" for p in stack.procs if p.name.startswith("logic"))
        assert missing == [], f"{len(missing)} sends never acknowledged\n{logs}"
        assert time.monotonic() - restarted_at < RECOVERY_SECONDS

        stored = await sync_to_async(_stored)(conversation_id)
        assert [seq for seq, _ in stored] == list(range(1, 81))
        assert sorted(c for _, c in stored) == sorted(sender.sent)
        # The peer got every message on its socket, without having to sync.
        await peer_ws.wait_until(
            lambda: {m["seq"] for m in peer_ws.new_messages()} >= set(range(1, 81)), timeout=60, what="all 80"
        )
        # Both new members are ready and between them own every partition.
        states = [await asyncio.to_thread(wait_ready, port) for _, port in logic.values()]
        owned = sorted(p for state in states for p in state["assignment"])
        assert len(owned) == len(set(owned)) and len(owned) >= 1
        assert all(state["stalled"] is None for state in states)
    finally:
        await asyncio.gather(sender_ws.close(), peer_ws.close(), return_exceptions=True)
