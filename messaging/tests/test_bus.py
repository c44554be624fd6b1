"""The bus contract, run against both backends: the in-process broker and Kafka (Tansu)."""
from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from messaging.bus import (
    BusDeliveryError,
    BusRecord,
    downstream_topic,
    ensure_topics,
    get_consumer,
    get_producer,
    memory_broker,
    reset_bus,
)

# Upper bound for waiting on a broker (group join, fetch); tests never assert on speed.
PATIENCE = 30.0


@pytest.fixture(params=["memory", "kafka"])
def backend(request, settings):
    if request.param == "kafka":
        request.getfixturevalue("kafka_bus")
    else:
        settings.BUS_BACKEND = "memory"
        reset_bus()
    yield request.param
    reset_bus()


@pytest.fixture
def consumers():
    """Consumers made by a test, closed at its end even when an assertion failed."""
    made = []

    def factory(topics: list[str], group_id: str):
        consumer = get_consumer(topics, group_id)
        made.append(consumer)
        return consumer

    yield factory
    for consumer in made:
        consumer.close()


def new_topic(partitions: int = 1) -> str:
    name = f"test-{uuid.uuid4().hex[:10]}"
    ensure_topics([name], partitions)
    return name


def consume_n(consumer, n: int, *, batch: int = 100) -> list[BusRecord]:
    records: list[BusRecord] = []
    deadline = time.monotonic() + PATIENCE
    while len(records) < n and time.monotonic() < deadline:
        records.extend(consumer.consume(min(batch, n - len(records)), 0.5))
    return records


def test_record_comes_back_with_key_and_headers(backend, consumers):
    topic = new_topic()
    producer = get_producer()
    producer.produce(topic, b"\x00payload\xff", key="conv-42", headers={"trace_id": "t-1", "retry_count": "0"})
    producer.flush()

    [record] = consume_n(consumers([topic], f"g-{uuid.uuid4().hex}"), 1)

    assert record.topic == topic
    assert record.value == b"\x00payload\xff"
    assert record.key == b"conv-42"
    assert record.headers == {"trace_id": "t-1", "retry_count": "0"}
    assert record.offset == 0


def test_records_of_one_key_stay_in_order_on_one_partition(backend, consumers):
    topic = new_topic(partitions=4)
    producer = get_producer()
    keys = [f"conversation-{n}" for n in range(6)]
    for i in range(20):
        for key in keys:
            producer.produce(topic, str(i).encode(), key=key)
    producer.flush()

    records = consume_n(consumers([topic], f"g-{uuid.uuid4().hex}"), 20 * len(keys))

    assert len(records) == 20 * len(keys)
    for key in keys:
        mine = [r for r in records if r.key == key.encode()]
        assert [int(r.value) for r in mine] == list(range(20))
        assert len({r.partition for r in mine}) == 1
    # Six keys over four partitions: the hash spreads them, not everything on one.
    assert len({r.partition for r in records}) > 1


def test_producer_is_one_per_process(backend):
    assert get_producer() is get_producer()


def test_ensure_topics_is_idempotent(backend):
    name = f"test-{uuid.uuid4().hex[:10]}"
    ensure_topics([name], 3)
    ensure_topics([name], 3)
    ensure_topics([name, name + "-b"], 3)
    if backend == "memory":
        assert memory_broker().partitions(name) == 3
        assert memory_broker().partitions(name + "-b") == 3
    else:
        from confluent_kafka.admin import AdminClient
        from django.conf import settings

        metadata = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}).list_topics(timeout=10)
        assert len(metadata.topics[name].partitions) == 3
        assert len(metadata.topics[name + "-b"].partitions) == 3


def test_two_consumers_of_a_group_split_the_partitions(backend, consumers):
    topic = new_topic(partitions=4)
    group = f"g-{uuid.uuid4().hex}"
    first, second = consumers([topic], group), consumers([topic], group)

    # Both must be members before anything is produced, or the first takes it all.
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        owned_first, owned_second = first.assignment(), second.assignment()
        if owned_first and owned_second and len(owned_first) + len(owned_second) == 4:
            break
        first.consume(10, 0.2)
        second.consume(10, 0.2)
    assert owned_first and owned_second
    assert not set(owned_first) & set(owned_second)

    producer = get_producer()
    for i in range(40):
        producer.produce(topic, str(i).encode(), key=f"k{i}")
    producer.flush()

    got_first: list[BusRecord] = []
    got_second: list[BusRecord] = []
    deadline = time.monotonic() + PATIENCE
    while len(got_first) + len(got_second) < 40 and time.monotonic() < deadline:
        got_first.extend(first.consume(100, 0.2))
        got_second.extend(second.consume(100, 0.2))

    values = sorted(int(r.value) for r in got_first + got_second)
    assert values == list(range(40))  # every record once, none twice
    assert got_first and got_second
    assert {r.partition for r in got_first} <= {p for _, p in owned_first}
    assert {r.partition for r in got_second} <= {p for _, p in owned_second}


def test_uncommitted_records_go_to_the_next_consumer_committed_ones_do_not(backend, consumers):
    topic = new_topic()
    group = f"g-{uuid.uuid4().hex}"
    producer = get_producer()
    for i in range(5):
        producer.produce(topic, f"m{i}".encode(), key="same")
    producer.flush()

    crashing = consumers([topic], group)
    processed = consume_n(crashing, 2, batch=2)
    assert [r.value for r in processed] == [b"m0", b"m1"]
    crashing.commit()
    in_flight = consume_n(crashing, 3)
    assert [r.value for r in in_flight] == [b"m2", b"m3", b"m4"]
    crashing.close()  # dies before committing m2..m4

    successor = consumers([topic], group)
    redelivered = consume_n(successor, 3)
    assert [r.value for r in redelivered] == [b"m2", b"m3", b"m4"]
    successor.commit()
    # Nothing further: m0/m1 were committed before, m2..m4 now.
    assert successor.consume(10, 1.0) == []
    successor.close()

    producer.produce(topic, b"m5", key="same")
    producer.flush()
    latecomer = consumers([topic], group)
    assert [r.value for r in consume_n(latecomer, 1)] == [b"m5"]
    assert latecomer.consume(10, 0.5) == []


def test_an_unawaited_commit_covers_what_was_consumed_before_it_not_after(backend, consumers):
    """The logic commits without waiting and polls on at once: the commit must carry the
    offsets of the processed batch, not those of the batch the next poll returned."""
    topic = new_topic()
    group = f"g-{uuid.uuid4().hex}"
    producer = get_producer()
    for i in range(5):
        producer.produce(topic, f"m{i}".encode(), key="same")
    producer.flush()

    crashing = consumers([topic], group)
    assert [r.value for r in consume_n(crashing, 2, batch=2)] == [b"m0", b"m1"]
    crashing.commit(wait=False)
    assert [r.value for r in consume_n(crashing, 3)] == [b"m2", b"m3", b"m4"]
    # The commit lands in the background: the group's lag drops from 5 to 3, never to 0.
    deadline = time.monotonic() + PATIENCE
    while sum(crashing.lag().values()) == 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(crashing.lag().values()) == 3
    crashing.close()  # dies before committing m2..m4

    successor = consumers([topic], group)
    assert [r.value for r in consume_n(successor, 3)] == [b"m2", b"m3", b"m4"]
    assert successor.consume(10, 1.0) == []


def test_a_second_group_reads_everything_independently(backend, consumers):
    topic = new_topic()
    producer = get_producer()
    for i in range(3):
        producer.produce(topic, f"m{i}".encode())
    producer.flush()

    first = consumers([topic], f"g-{uuid.uuid4().hex}")
    assert len(consume_n(first, 3)) == 3
    first.commit()
    other_group = consumers([topic], f"g-{uuid.uuid4().hex}")
    assert [r.value for r in consume_n(other_group, 3)] == [b"m0", b"m1", b"m2"]


def test_a_waiting_consumer_gets_a_record_produced_meanwhile_from_another_thread(backend, consumers):
    topic = new_topic()
    consumer = consumers([topic], f"g-{uuid.uuid4().hex}")
    received: list[BusRecord] = []

    def wait_for_record() -> None:
        received.extend(consume_n(consumer, 1))

    waiter = threading.Thread(target=wait_for_record)
    waiter.start()
    producer = get_producer()
    producer.produce(topic, b"hello", key="k")
    producer.flush()
    waiter.join(PATIENCE + 5)

    assert [r.value for r in received] == [b"hello"]


async def test_consume_from_asyncio_through_a_thread(backend, consumers):
    topic = await asyncio.to_thread(new_topic)
    consumer = consumers([topic], f"g-{uuid.uuid4().hex}")
    pending = asyncio.create_task(asyncio.to_thread(consume_n, consumer, 2))

    producer = get_producer()
    producer.produce(topic, b"a", key="k")
    producer.produce(topic, b"b", key="k")
    await asyncio.to_thread(producer.flush)

    records = await pending
    assert [r.value for r in records] == [b"a", b"b"]


def test_downstream_topic_names_the_gateway(settings):
    settings.KAFKA_DOWNSTREAM_TOPIC = "im-downstream-topic-{gateway_id}"
    assert downstream_topic("gw-7") == "im-downstream-topic-gw-7"


def test_unknown_backend_is_a_clear_error(settings):
    settings.BUS_BACKEND = "rabbit"
    with pytest.raises(ValueError, match="BUS_BACKEND"):
        get_producer()


def test_kafka_flush_raises_when_the_broker_never_acknowledges(settings):
    from messaging.bus.kafka import KafkaProducer
    from tests.harness.kafka import _free_port

    # A port nobody listens on: the record can never be acknowledged.
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{_free_port()}"
    producer = KafkaProducer()
    producer.produce("nowhere", b"lost?")
    with pytest.raises(BusDeliveryError, match="not acknowledged"):
        producer.flush(timeout=1.0)
    producer.close(timeout=0)


def test_a_batch_producer_lingers_yet_its_flush_delivers_at_once(kafka_bus, settings, consumers):
    # A process that flushes after every batch (run_logic) lets its records linger so a
    # batch leaves in one request; the flush must not wait that linger out.
    from messaging.bus import flush_per_batch

    settings.KAFKA_BATCH_LINGER_MS = 8_000  # below message.timeout.ms, as librdkafka requires
    topic = new_topic()
    consumer = consumers([topic], f"g-{uuid.uuid4().hex[:8]}")
    flush_per_batch()
    producer = get_producer()
    assert producer.linger_ms == 8_000
    producer.produce(topic, b"ack", key="c1")
    producer.produce(topic, b"new-message", key="c1")
    producer.flush(timeout=4.0)  # BusDeliveryError if the records still lingered
    assert [r.value for r in consume_n(consumer, 2)] == [b"ack", b"new-message"]


def test_a_process_that_does_not_flush_per_batch_sends_at_once(kafka_bus, settings):
    settings.KAFKA_LINGER_MS = 0
    assert get_producer().linger_ms == 0
