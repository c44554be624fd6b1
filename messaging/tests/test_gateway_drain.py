"""Draining a gateway (messaging/gateway/drain.py): every socket gets 1012 and leaves
presence, new sockets are turned away with 1012, /readyz says 503."""
from __future__ import annotations

import pytest

from messaging.gateway import drain
from messaging.presence import get_presence

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _not_draining():
    drain.reset()
    yield
    drain.reset()


async def test_drain_closes_every_socket_with_1012_and_leaves_presence(ws_client, alice, bob):
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    assert (await get_presence().alookup([alice.id, bob.id]))[alice.id]

    from messaging.gateway.registry import registry

    # Every socket of this process: an earlier test's socket still open counts too.
    open_sockets = len(registry)
    assert len(registry.of_user(alice.id)) == len(registry.of_user(bob.id)) == 1
    closed = await drain.drain(seconds=0)

    assert closed == open_sockets >= 2 and len(registry) == 0, registry.pairs()
    for communicator in (alice_ws, bob_ws):
        output = await communicator.receive_output(timeout=5)
        assert output == {"type": "websocket.close", "code": drain.CLOSE_SERVICE_RESTART,
                          "reason": drain.DRAIN_REASON}
    live = await get_presence().alookup([alice.id, bob.id])
    assert not live.get(alice.id) and not live.get(bob.id)


async def test_a_socket_opened_while_draining_is_sent_away(ws_client, alice):
    await drain.drain(seconds=0)
    communicator = await ws_client(alice, connect=False)
    connected, _ = await communicator.connect(timeout=5)
    assert connected  # accepted, then closed: a browser sees the code, not a bare 403
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == drain.CLOSE_SERVICE_RESTART
    assert not (await get_presence().alookup([alice.id])).get(alice.id)


def test_readyz_is_503_while_draining(client):
    assert client.get("/readyz").status_code == 200
    drain._draining = True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["draining"] == "error: draining"
