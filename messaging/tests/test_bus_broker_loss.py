"""The Kafka producer after the broker lost its data (issue 8's broker restart fault): a
librdkafka idempotent producer that lived through it never had a record acknowledged
again, so the logic's batches failed forever. The project's producer replaces itself
after a delivery failure and the path heals."""
from __future__ import annotations

import time
import uuid

import pytest

from messaging.bus.base import BusDeliveryError

pytestmark = pytest.mark.e2e


def test_producer_heals_after_the_broker_restarts_without_its_data(settings):
    from confluent_kafka import Consumer

    from messaging.bus.kafka import KafkaProducer
    from tests.harness.kafka import start_tansu

    cluster = f"loss-{uuid.uuid4().hex[:8]}"
    broker = start_tansu(cluster_id=cluster)
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrap
    topic = f"loss-{uuid.uuid4().hex[:6]}"
    producer = KafkaProducer()
    try:
        producer.produce(topic, b"before")
        producer.flush(10)
        port = broker.port
        broker.stop()
        broker = start_tansu(port=port, cluster_id=cluster)  # same broker, memory gone

        failures = 0
        delivered = False
        deadline = time.monotonic() + 60
        while not delivered and time.monotonic() < deadline:
            producer.produce(topic, b"after")
            try:
                producer.flush(5)
                delivered = True
            except BusDeliveryError:
                failures += 1
        assert delivered, f"no record acknowledged in 60 s after the restart ({failures} failed flushes)"

        consumer = Consumer(
            {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([topic])
        values: list[bytes] = []
        read_until = time.monotonic() + 30
        while b"after" not in values and time.monotonic() < read_until:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        consumer.close()
        assert b"after" in values
    finally:
        producer.close(1)
        broker.stop()
