"""Read receipts and typing indicators across two real gateways (issue 10): daphne gw-a
and gw-b, run_logic on the session's Tansu broker, Redis presence, PostgreSQL."""
from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async

from tests.e2e.test_realtime_e2e import WAIT, _close, _connect, _single_chat, gateways  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


async def test_a_receipt_and_a_typing_event_cross_gateways(gateways, alice, bob, token_for):  # noqa: F811
    conversation_id = await sync_to_async(_single_chat)(alice, bob)
    alice_a, bob_b, bob_a = await _connect(
        token_for, [(gateways.a, alice, "alice@a"), (gateways.b, bob, "bob@b"), (gateways.a, bob, "bob@a")]
    )
    try:
        sent = await alice_a.send_message(conversation_id, "are you there?")
        ack = await alice_a.ack_for(sent, timeout=WAIT)
        await bob_b.wait_for("new-message", timeout=WAIT)

        # bob reads on gw-b: alice on gw-a gets the receipt, bob's device on gw-a gets read.
        await bob_b.send("read", {"conversation_id": conversation_id, "seq": ack["seq"]})
        receipt = await alice_a.wait_for("receipt", timeout=WAIT)
        assert receipt["data"] == {"conversation_id": conversation_id, "user_id": str(bob.id), "seq": ack["seq"]}
        assert (await bob_a.wait_for("read", timeout=WAIT))["data"]["seq"] == ack["seq"]
        assert bob_b.of_type("receipt") == [] and bob_a.of_type("receipt") == []

        # alice types on gw-a: both of bob's sockets (gw-b and gw-a) show it; the first one
        # warms gw-a's caches, the second is timed.
        await alice_a.send("typing", {"conversation_id": conversation_id})
        first = await bob_b.wait_for("typing", timeout=WAIT)
        assert first["data"] == {"conversation_id": conversation_id, "user_id": str(alice.id), "user_name": "Alice"}
        await bob_a.wait_for("typing", timeout=WAIT)
        await sync_to_async(time.sleep)(2.2)  # past TYPING_THROTTLE_SECONDS
        started = time.monotonic()
        await alice_a.send("typing", {"conversation_id": conversation_id})
        await bob_b.wait_count("typing", 2, timeout=WAIT)
        elapsed = time.monotonic() - started
        # ~100 ms is the aim (docs/realtime.md); bounded loosely on a shared 2-core machine.
        assert elapsed < 2.0, elapsed
        assert alice_a.of_type("typing") == [] and alice_a.of_type("error") == []
    finally:
        await _close([alice_a, bob_b, bob_a])
