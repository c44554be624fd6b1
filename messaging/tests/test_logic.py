"""The logic consumer: process_upstream_batch on real bus records, the poll/process/commit
loop of the consumer registry, and the whole WebSocket path over the Tansu Kafka broker."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from channels.db import database_sync_to_async

from messaging.bus import downstream_topic, get_consumer, get_producer, memory_broker, reset_bus
from messaging.consumers_registry import CONSUMERS, ConsumerSpec, run_consumer
from messaging.logic import process_upstream_batch
from messaging.models import Message
from messaging.presence import get_presence, reset_presence
from protos.gochat.v1 import envelopes_pb2 as pb

GATEWAY = "gw-test"


@pytest.fixture
def fresh_bus():
    reset_bus()
    reset_presence()
    yield
    reset_bus()
    reset_presence()


def upstream(sender, conversation, client_msg_id="c-1", content="hello", connection_id="conn-1") -> pb.UpstreamMessage:
    return pb.UpstreamMessage(
        trace_id=f"t-{client_msg_id}",
        gateway_id=GATEWAY,
        connection_id=connection_id,
        sender_id=sender.id,
        conversation_id=conversation.id,
        client_msg_id=client_msg_id,
        content=content,
        message_type="text",
        received_at_ms=int(time.time() * 1000),
    )


def produce_and_take(*messages: pb.UpstreamMessage | bytes, topic: str | None = None):
    """Put upstream records on the bus and read them back as the logic loop would."""
    from django.conf import settings

    topic = topic or settings.KAFKA_UPSTREAM_TOPIC
    producer = get_producer()
    for message in messages:
        value = message if isinstance(message, bytes) else message.SerializeToString()
        producer.produce(topic, value, key="k", headers={"trace_id": "hdr"})
    producer.flush()
    consumer = get_consumer([topic], f"take-{uuid.uuid4().hex[:6]}")
    records = []
    deadline = time.monotonic() + 30
    while len(records) < len(messages) and time.monotonic() < deadline:
        records.extend(consumer.consume(100, 0.5))
    consumer.close()
    return records


def envelopes(topic: str, group: str | None = None) -> list[pb.DownstreamMessage]:
    consumer = get_consumer([topic], group or f"read-{uuid.uuid4().hex[:6]}")
    found: list[pb.DownstreamMessage] = []
    quiet_until = time.monotonic() + 30
    while time.monotonic() < quiet_until:
        records = consumer.consume(100, 0.5)
        found.extend(pb.DownstreamMessage.FromString(r.value) for r in records)
        if found and not records:
            break
    consumer.close()
    return found


@pytest.mark.django_db(transaction=True)
def test_a_record_is_persisted_acked_and_routed(alice, bob, single_chat, fresh_bus):
    get_presence().connect(bob.id, "bob-conn", "gw-bob")
    process_upstream_batch(produce_and_take(upstream(alice, single_chat)))

    message = Message.objects.get()
    assert (message.seq, message.content, message.client_msg_id) == (1, "hello", "c-1")
    (ack,) = envelopes(downstream_topic(GATEWAY))
    assert ack.kind == pb.DownstreamMessage.SEND_ACK
    assert (ack.connection_id, ack.client_msg_id, ack.message.id, ack.message.seq) == ("conn-1", "c-1", message.id, 1)
    assert ack.trace_id == "t-c-1"
    (delivery,) = envelopes(downstream_topic("gw-bob"))
    assert delivery.kind == pb.DownstreamMessage.NEW_MESSAGE
    assert list(delivery.recipient_user_ids) == [bob.id]
    assert delivery.message.content == "hello"


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_record_is_deduplicated_and_routed_again(alice, bob, single_chat, fresh_bus):
    get_presence().connect(bob.id, "bob-conn", "gw-bob")
    records = produce_and_take(upstream(alice, single_chat))
    process_upstream_batch(records)
    process_upstream_batch(records)  # the batch came back: its offsets were not committed

    assert Message.objects.count() == 1
    acks = envelopes(downstream_topic(GATEWAY))
    assert [(a.kind, a.message.id, a.message.seq) for a in acks] == [
        (pb.DownstreamMessage.SEND_ACK, Message.objects.get().id, 1)
    ] * 2
    assert len(envelopes(downstream_topic("gw-bob"))) == 2  # gateways drop the repeat per socket


@pytest.mark.django_db(transaction=True)
def test_refusals_go_back_as_send_error_with_code(alice, carol, single_chat, fresh_bus):
    process_upstream_batch(
        produce_and_take(
            upstream(carol, single_chat, client_msg_id="not-member"),
            upstream(alice, single_chat, client_msg_id="empty", content=""),
        )
    )
    assert Message.objects.count() == 0
    errors = {e.client_msg_id: e for e in envelopes(downstream_topic(GATEWAY))}
    assert errors["not-member"].kind == pb.DownstreamMessage.SEND_ERROR
    assert errors["not-member"].error_code == 1005
    assert errors["empty"].error_code == 1001


@pytest.mark.django_db(transaction=True)
def test_undecodable_record_goes_to_the_dead_letter_topic(alice, single_chat, settings, fresh_bus):
    records = produce_and_take(b"\xff\xff not protobuf", upstream(alice, single_chat))
    process_upstream_batch(records)
    assert Message.objects.count() == 1  # the good record behind it went through
    consumer = get_consumer([settings.KAFKA_UPSTREAM_DLQ_TOPIC], "dlq-reader")
    (dead,) = consumer.consume(10, 1.0)
    consumer.close()
    assert dead.value == b"\xff\xff not protobuf"
    assert dead.headers["error"] == "undecodable UpstreamMessage"


_failures = {"left": 0}


def flaky_process(records) -> None:  # referenced by dotted path below
    if _failures["left"]:
        _failures["left"] -= 1
        raise RuntimeError("database went away")
    process_upstream_batch(records)


@pytest.mark.django_db(transaction=True)
def test_loop_commits_only_after_processing_and_retries_a_failed_batch(alice, single_chat, settings, fresh_bus):
    logic = CONSUMERS["logic"]
    spec = ConsumerSpec(
        name="logic-flaky",
        topics=logic.topics,
        group=logic.group,
        partitions=logic.partitions,
        process=f"{__name__}.flaky_process",
    )
    _failures["left"] = 1
    stop = threading.Event()
    producer = get_producer()
    for n in range(3):
        producer.produce(
            settings.KAFKA_UPSTREAM_TOPIC,
            upstream(alice, single_chat, client_msg_id=f"m{n}").SerializeToString(),
            key=str(single_chat.id),
        )
    thread = threading.Thread(target=run_consumer, args=(spec,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        acks = []
        deadline = time.monotonic() + 20
        reader = get_consumer([downstream_topic(GATEWAY)], "acks")
        while len(acks) < 3 and time.monotonic() < deadline:
            acks.extend(pb.DownstreamMessage.FromString(r.value) for r in reader.consume(10, 0.5))
        reader.close()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert sorted(a.message.seq for a in acks) == [1, 2, 3]
    assert _failures["left"] == 0  # the first attempt failed and the batch came back
    partitions = memory_broker().partitions(settings.KAFKA_UPSTREAM_TOPIC)
    committed = sum(
        memory_broker().committed(settings.KAFKA_LOGIC_GROUP, settings.KAFKA_UPSTREAM_TOPIC, p) for p in range(partitions)
    )
    assert committed == 3


# --- The whole path over Kafka ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_websocket_path_over_kafka(kafka_bus, settings, ws_client, alice, bob, single_chat):
    """Gateway and logic in one process, talking through the Tansu broker."""
    settings.EMBEDDED_LOGIC = True
    settings.KAFKA_UPSTREAM_DLQ_TOPIC = f"im-upstream-dlq-{uuid.uuid4().hex[:6]}"
    settings.GATEWAY_ID = f"gw-k-{uuid.uuid4().hex[:6]}"
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    laptop = await ws_client(alice)
    for ws in (alice_ws, bob_ws, laptop):
        await ws.send_to(text_data=json.dumps({"type": "ping"}))
        assert json.loads(await ws.receive_from(timeout=10))["type"] == "pong"

    async def send(client_msg_id):
        await alice_ws.send_to(
            text_data=json.dumps(
                {
                    "type": "send-message",
                    "data": {"client_msg_id": client_msg_id, "conversation_id": str(single_chat.id), "content": "k"},
                }
            )
        )
        # Consumer-group joins on the test broker take seconds.
        return await next_frame(alice_ws, 60)

    async def next_frame(ws, timeout):
        # Presence changes of the peers (pushed, docs/realtime.md) may come in between.
        while True:
            frame = json.loads(await ws.receive_from(timeout=timeout))
            if frame["type"] != "presence":
                return frame

    async def nothing_but_presence(ws, timeout):
        # receive_nothing, not a receive timeout: the latter cancels the application.
        while not await ws.receive_nothing(timeout=timeout):
            frame = json.loads(await ws.receive_from(timeout=timeout))
            assert frame["type"] == "presence", frame
        return True

    ack = await send("k-1")
    assert ack["type"] == "send-ack" and ack["data"]["seq"] == 1
    for ws in (bob_ws, laptop):
        frame = await next_frame(ws, 30)
        assert frame["type"] == "new-message"
        assert frame["data"]["message"]["id"] == ack["data"]["message_id"]
    again = await send("k-1")
    assert again["data"]["message_id"] == ack["data"]["message_id"]
    assert await nothing_but_presence(bob_ws, 1.0)
    assert await database_sync_to_async(Message.objects.count)() == 1
