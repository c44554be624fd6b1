"""Entry points to the bus: the process's producer, new consumers, topic creation.

settings.BUS_BACKEND ('memory' | 'kafka') picks the implementation at call time, so tests
can switch it with the `settings` fixture; call reset_bus() after switching.
"""
from __future__ import annotations

import os
import threading

from django.conf import settings

from messaging.bus.base import BusDeliveryError, BusRecord, Consumer, Producer
from messaging.bus.memory import MemoryBroker, MemoryConsumer, MemoryProducer

__all__ = [
    "BusDeliveryError",
    "BusRecord",
    "Consumer",
    "Producer",
    "downstream_topic",
    "ensure_topics",
    "flush_per_batch",
    "get_consumer",
    "get_producer",
    "memory_broker",
    "reset_bus",
]

_lock = threading.Lock()
# Keyed by (pid, backend): a forked child (Celery prefork, daphne workers) must not reuse
# the parent's librdkafka handle, whose background threads did not survive the fork.
_producers: dict[tuple[int, str], Producer] = {}
_memory_broker: MemoryBroker | None = None
# Set by flush_per_batch(): this process flushes after every batch it consumes.
_flushes_per_batch = False


def _backend() -> str:
    backend = settings.BUS_BACKEND
    if backend not in {"memory", "kafka"}:
        raise ValueError(f"BUS_BACKEND must be 'memory' or 'kafka', not {backend!r}")
    return backend


def memory_broker() -> MemoryBroker:
    """The process's in-memory broker (created on first use)."""
    global _memory_broker
    with _lock:
        if _memory_broker is None:
            _memory_broker = MemoryBroker()
        return _memory_broker


def flush_per_batch() -> None:
    """Declare that this process flushes its producer at the end of every batch it
    consumes (run_consumer: the logic, the task bridge). Its Kafka producer then lingers
    KAFKA_BATCH_LINGER_MS instead of KAFKA_LINGER_MS: what a batch produces leaves in one
    request per partition at the flush, instead of its first record alone at once.
    Call it before the producer's first use; a producer already made is replaced."""
    global _flushes_per_batch
    with _lock:
        if _flushes_per_batch:
            return
        _flushes_per_batch = True
        stale = [key for key in _producers if key[1] == "kafka"]
        for key in stale:
            _producers.pop(key).close()


def get_producer() -> Producer:
    """The process-wide producer of the configured backend."""
    backend = _backend()
    cache_key = (os.getpid(), backend)
    producer = _producers.get(cache_key)
    if producer is not None:
        return producer
    if backend == "memory":
        producer = MemoryProducer(memory_broker())
    else:
        from messaging.bus.kafka import KafkaProducer

        linger_ms = settings.KAFKA_BATCH_LINGER_MS if _flushes_per_batch else settings.KAFKA_LINGER_MS
        producer = KafkaProducer(linger_ms=linger_ms)
    with _lock:
        # Another thread may have won the race; keep the first one.
        return _producers.setdefault(cache_key, producer)


def get_consumer(
    topics: list[str],
    group_id: str,
    *,
    instance_id: str = "",
    partitions: list[tuple[str, int]] | None = None,
    start_offsets: dict[tuple[str, int], int] | None = None,
) -> Consumer:
    """A new consumer of `topics` in consumer group `group_id` (commit by hand).

    `instance_id` makes it a static member of the group (Kafka's group.instance.id);
    `partitions` assigns exactly those partitions instead of joining the group: it reads
    from the group's committed offset, or from `start_offsets` where that is further, and
    commits for the group where the broker lets it (a group with live members refuses). The in-memory bus has no rebalance
    cost to save and no group to wedge, and ignores both.
    """
    if _backend() == "memory":
        return MemoryConsumer(memory_broker(), topics, group_id)
    from messaging.bus.kafka import KafkaConsumer

    return KafkaConsumer(topics, group_id, instance_id=instance_id, partitions=partitions, start_offsets=start_offsets)


def ensure_topics(names: list[str], partitions: int = 1) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    if _backend() == "memory":
        # No broker to talk to; recording the partition count keeps per-key order and
        # the group split the same as with Kafka.
        broker = memory_broker()
        for name in names:
            broker.create_topic(name, partitions)
        return
    from messaging.bus.kafka import create_topics

    create_topics(names, partitions)


def downstream_topic(gateway_id: str) -> str:
    """The topic a gateway consumes its outgoing frames from."""
    return settings.KAFKA_DOWNSTREAM_TOPIC.format(gateway_id=gateway_id)


def reset_bus() -> None:
    """Tests: forget the in-memory broker and every cached producer of this process."""
    global _memory_broker, _flushes_per_batch
    with _lock:
        producers = list(_producers.values())
        _producers.clear()
        _memory_broker = None
        _flushes_per_batch = False
    for producer in producers:
        close = getattr(producer, "close", None)
        if close is not None:
            close()
