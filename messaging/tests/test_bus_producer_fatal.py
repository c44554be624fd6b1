"""A producer whose librdkafka instance hit a fatal error is replaced, and the batch that
saw it fails so it is read again (the fault matrix's restart-broker showed the logic
failing every batch at its first ack, forever, before this).

librdkafka raises a fatal error only in broker states that a test cannot call up on
demand (an idempotent producer whose broker lost its data); the real broker restart is
in tests/faults (restart-broker). Here the first instance is one that has hit it."""
from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from messaging.bus import kafka
from messaging.bus.base import BusDeliveryError


class _FatallyFailed:
    """A librdkafka producer after a fatal error: every produce() raises it."""

    purged = False

    def produce(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise KafkaException(KafkaError(KafkaError._FATAL, "Local: Fatal error", fatal=True))

    def poll(self, timeout: float) -> int:
        return 0

    def purge(self) -> None:
        self.purged = True

    def flush(self, timeout: float = 0) -> int:
        return 0


class _Working:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None) -> None:  # noqa: ANN001
        self.records.append((topic, value))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def test_a_fatally_failed_producer_is_replaced_and_the_next_flush_fails_the_batch(monkeypatch):
    failed = _FatallyFailed()
    made: list[object] = []
    lingers: list[int] = []

    def new_instance(linger_ms: int) -> object:
        lingers.append(linger_ms)
        made.append(failed if not made else _Working())
        return made[-1]

    monkeypatch.setattr(kafka, "_new_rd_producer", new_instance)
    producer = kafka.KafkaProducer(linger_ms=20)

    producer.produce("im-downstream-topic-gw", b"ack")

    # The record went to a new instance; the old one was dropped with what it held.
    assert made[1].records == [("im-downstream-topic-gw", b"ack")]
    assert failed.purged
    # Whatever the old one held is gone, so the batch must not be committed: flush fails
    # once, and the batch read again is produced and flushed without an error.
    with pytest.raises(BusDeliveryError, match="fatal"):
        producer.flush()
    producer.produce("im-downstream-topic-gw", b"ack again")
    producer.flush()
    # One replacement: the failed flush reports the fatal error without replacing the
    # working successor a second time.
    assert len(made) == 2
    assert made[1].records == [("im-downstream-topic-gw", b"ack"), ("im-downstream-topic-gw", b"ack again")]
    # Every replacement keeps the producer's linger (a batch producer stays one).
    assert set(lingers) == {20}


def test_an_error_that_is_not_fatal_still_raises(monkeypatch):
    class _Refusing(_Working):
        def produce(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "bad header"))

    monkeypatch.setattr(kafka, "_new_rd_producer", lambda linger_ms: _Refusing())
    with pytest.raises(KafkaException):
        kafka.KafkaProducer().produce("topic", b"x")
