"""A gateway whose upstream broker is unreachable closes senders with 1011 (issue 8 item 3):
produce() only queues in librdkafka, so without this a socket kept sending into a void,
open but unserved. A private Tansu broker is started and stopped by the test."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10


@pytest.fixture
def private_kafka(settings):
    from messaging.bus import reset_bus
    from messaging.gateway.membership import reset_cache
    from tests.harness.kafka import start_tansu

    broker = start_tansu()
    run = uuid.uuid4().hex[:8]
    settings.BUS_BACKEND = "kafka"
    settings.EMBEDDED_LOGIC = False
    settings.PRESENCE_BACKEND = "memory"
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrap
    settings.KAFKA_SESSION_TIMEOUT_MS = 3000
    settings.KAFKA_HEARTBEAT_INTERVAL_MS = 500
    settings.KAFKA_FETCH_WAIT_MAX_MS = 5
    settings.KAFKA_UPSTREAM_TOPIC = f"im-upstream-topic-{run}"
    settings.KAFKA_DOWNSTREAM_TOPIC = f"im-downstream-topic-{run}-{{gateway_id}}"
    settings.WS_UPSTREAM_CHECK_SECONDS = 0.5
    reset_bus()
    reset_cache()
    yield broker
    broker.stop()
    reset_bus()
    reset_cache()


async def _send(ws, conversation_id, client_msg_id: str) -> None:
    await ws.send_to(
        text_data=json.dumps(
            {
                "type": "send-message",
                "data": {"client_msg_id": client_msg_id, "conversation_id": str(conversation_id), "content": "x"},
            }
        )
    )


async def test_send_on_a_gateway_whose_broker_is_gone_closes_1011(ws_client, alice, single_chat, private_kafka):
    from messaging.gateway import upstream

    ws = await ws_client(alice)
    await ws.send_to(text_data='{"type":"ping"}')
    assert json.loads(await ws.receive_from(timeout=WAIT))["type"] == "pong"
    await _send(ws, single_chat.id, "before")
    assert await ws.receive_nothing(timeout=1.0)  # produced, no error
    assert not upstream.health.broken

    private_kafka.stop()
    for _ in range(200):
        if upstream.health.broken:
            break
        await asyncio.sleep(0.1)
    assert upstream.health.broken
    await _send(ws, single_chat.id, "after")
    output = await ws.receive_output(timeout=WAIT)
    assert output == {"type": "websocket.close", "code": 1011, "reason": "upstream unavailable"}


def test_one_failed_check_is_not_broken_and_a_success_heals():
    from messaging.gateway.upstream import UpstreamHealth

    health = UpstreamHealth()
    health.record(False)
    assert not health.broken
    health.record(False)
    assert health.broken
    health.record(True)
    assert not health.broken
