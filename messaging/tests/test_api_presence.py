"""The conversation list tells whether a 1:1 peer is online (one batched presence lookup)."""
from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


def _peer_online(client, conversation_id) -> bool:
    rows = client.get("/api/v1/conversations").json()
    return next(r for r in rows if r["id"] == str(conversation_id))["peer_online"]


async def _becomes(expected: bool, client, conversation_id, timeout: float = 5.0) -> bool:
    """The gateway registers presence just after accepting the socket (and removes it
    just after the close), so the list catches up within moments, not at once."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await database_sync_to_async(_peer_online)(client, conversation_id)
        if value is expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_peer_online_follows_the_peers_socket(ws_client, client_for, alice, bob, single_chat):
    alice_client = await database_sync_to_async(client_for)(alice)
    assert await database_sync_to_async(_peer_online)(alice_client, single_chat.id) is False
    bob_ws = await ws_client(bob)
    assert await _becomes(True, alice_client, single_chat.id) is True
    await bob_ws.disconnect()
    assert await _becomes(False, alice_client, single_chat.id) is False


def test_group_conversations_have_no_peer(client_for, alice, group_of):
    group = group_of(3)
    rows = client_for(alice).get("/api/v1/conversations").json()
    row = next(r for r in rows if r["id"] == str(group.conversation.id))
    assert row["peer"] is None and row["peer_online"] is False
