"""Idle sockets on a daphne gateway with the Redis channel layer (REDIS_URL set).

Every Channels consumer waits on the layer (BZPOPMIN) even when nobody writes to it.
Two failures seen before the layer settings in gochat_site/settings.py: idle sockets
closed with 1011 when a Redis read timed out, and a mass disconnect exhausting the
layer's connection pool (MaxConnectionsError). Both show only with real sockets held
open for a while, hence this test.
"""
from __future__ import annotations

import asyncio
import urllib.request

import pytest
from asgiref.sync import sync_to_async

from tests.harness.wsclient import WsClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SOCKETS = 50
IDLE_SECONDS = 30
WAIT = 45.0


def _group(group_of) -> tuple[str, list]:  # noqa: ANN001 - the conftest fixture
    from accounts.models import User
    from messaging.models import Conversation, ConversationMember

    conversation = Conversation.objects.get(group=group_of(SOCKETS, name="idle"))
    member_ids = list(ConversationMember.objects.filter(conversation=conversation).values_list("user_id", flat=True))
    return str(conversation.id), list(User.objects.filter(id__in=member_ids).order_by("id"))


def _healthz(url: str) -> int:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        return response.status


async def test_fifty_idle_sockets_stay_open_then_close_together_cleanly(stack_env, launch, group_of, token_for):
    from django.conf import settings

    assert settings.REDIS_URL, "the point is the Redis channel layer"
    stack = launch(stack_env())
    gateway = stack.gateway("gw-idle")  # REDIS_URL in its env: channels_redis layer
    stack.logic("logic-idle")
    conversation_id, members = await sync_to_async(_group)(group_of)
    clients = list(
        await asyncio.gather(
            *(WsClient.connect(gateway.ws_url, token_for(user), name=user.username) for user in members)
        )
    )
    try:
        # Nothing sent, nothing received: the sockets only sit there.
        await asyncio.sleep(IDLE_SECONDS)
        closed = [(c.name, c.close_code) for c in clients if c.closed]
        assert closed == [], f"idle sockets were closed: {closed}\n{gateway.log_tail()}"

        sender, *others = clients
        client_msg_id = await sender.send_message(conversation_id, "still there?")
        ack = await sender.ack_for(client_msg_id, timeout=WAIT)
        for client in others:
            got = await client.wait_for("new-message", timeout=WAIT)
            assert got["data"]["message"]["id"] == ack["message_id"]
    finally:
        # All at once, as when a load balancer drops its connections.
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

    assert all(client.close_code == 1000 for client in clients), {c.close_code for c in clients}
    await asyncio.sleep(2)  # let the gateway run its disconnect handlers
    assert gateway.alive()
    assert await asyncio.to_thread(_healthz, gateway.url) == 200
    # A new socket after the mass disconnect is served like any other.
    fresh = await WsClient.connect(gateway.ws_url, token_for(members[0]), name="fresh")
    try:
        assert await fresh.request("ping", reply="pong") == {}
    finally:
        await fresh.close()
    log = gateway.log()
    assert "MaxConnectionsError" not in log, gateway.log_tail()
    assert "Exception inside application" not in log, gateway.log_tail()
