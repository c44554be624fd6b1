"""In-process bus for the embedded default: Kafka's semantics without a broker.

Topics have partitions (the key's hash picks one, so per-key order holds), consumer groups
split a topic's partitions among their members and keep committed offsets, and a record
consumed but not committed is delivered again to whoever owns its partition next: the same
at-least-once contract as bus/kafka.py. Thread-safe; async code calls it through
asyncio.to_thread.
"""
from __future__ import annotations

import itertools
import threading
import time
import zlib
from dataclasses import dataclass, field

from messaging.bus.base import BusRecord

TopicPartition = tuple[str, int]


def _as_bytes(key: str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return key.encode()


@dataclass
class _Group:
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    # Join order decides the assignment, so it is stable between rebalances.
    members: list[MemoryConsumer] = field(default_factory=list)


class MemoryBroker:
    """Topics, partitions, consumer groups; one lock and one condition guard them all."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._topics: dict[str, list[list[BusRecord]]] = {}
        self._groups: dict[str, _Group] = {}
        self._round_robin = itertools.count()

    # --- topics ---------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create the topic if it does not exist; an existing topic is left as it is."""
        with self._cond:
            if name not in self._topics:
                self._topics[name] = [[] for _ in range(max(partitions, 1))]
                self._cond.notify_all()

    def partitions(self, name: str) -> int:
        with self._cond:
            return len(self._topics.get(name, []))

    def _topic(self, name: str) -> list[list[BusRecord]]:
        # Auto-create with one partition, like a broker with auto.create.topics.enable.
        if name not in self._topics:
            self._topics[name] = [[]]
        return self._topics[name]

    # --- produce --------------------------------------------------------------------------
    def append(self, topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> BusRecord:
        with self._cond:
            parts = self._topic(topic)
            if key is None:
                partition = next(self._round_robin) % len(parts)
            else:
                # crc32 rather than hash(): stable across processes and restarts.
                partition = zlib.crc32(key) % len(parts)
            log = parts[partition]
            record = BusRecord(
                topic=topic, value=value, key=key, headers=dict(headers), partition=partition, offset=len(log)
            )
            log.append(record)
            self._cond.notify_all()
            return record

    # --- groups ---------------------------------------------------------------------------
    def join(self, consumer: MemoryConsumer) -> None:
        with self._cond:
            for topic in consumer.topics:
                self._topic(topic)
            self._groups.setdefault(consumer.group_id, _Group()).members.append(consumer)
            self._cond.notify_all()

    def leave(self, consumer: MemoryConsumer) -> None:
        with self._cond:
            group = self._groups.get(consumer.group_id)
            if group and consumer in group.members:
                group.members.remove(consumer)
            # Wake the other members so they pick up the freed partitions.
            self._cond.notify_all()

    def _assignment(self, consumer: MemoryConsumer) -> set[TopicPartition]:
        group = self._groups[consumer.group_id]
        owned: set[TopicPartition] = set()
        for topic in consumer.topics:
            subscribers = [m for m in group.members if topic in m.topics]
            index = subscribers.index(consumer)
            for partition in range(len(self._topic(topic))):
                if partition % len(subscribers) == index:
                    owned.add((topic, partition))
        return owned

    def _rebalance(self, consumer: MemoryConsumer) -> None:
        group = self._groups[consumer.group_id]
        owned = self._assignment(consumer)
        for tp in list(consumer.positions):
            if tp not in owned:
                # Lost partition: its uncommitted records go to the new owner.
                del consumer.positions[tp]
        for tp in owned:
            if tp not in consumer.positions:
                consumer.positions[tp] = group.committed.get(tp, 0)

    def fetch(self, consumer: MemoryConsumer, max_records: int, timeout: float) -> list[BusRecord]:
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while True:
                if consumer.closed:
                    return []
                self._rebalance(consumer)
                batch = self._take(consumer, max_records)
                if batch:
                    return batch
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _take(self, consumer: MemoryConsumer, max_records: int) -> list[BusRecord]:
        batch: list[BusRecord] = []
        owned = sorted(consumer.positions)
        if not owned:
            return batch
        # Start at a rotating partition so one busy partition cannot starve the others.
        start = consumer.next_start % len(owned)
        consumer.next_start += 1
        for tp in owned[start:] + owned[:start]:
            log = self._topics[tp[0]][tp[1]]
            position = consumer.positions[tp]
            chunk = log[position : position + (max_records - len(batch))]
            consumer.positions[tp] = position + len(chunk)
            batch.extend(chunk)
            if len(batch) >= max_records:
                break
        return batch

    def assignment(self, consumer: MemoryConsumer) -> list[TopicPartition]:
        with self._cond:
            if consumer.closed:
                return []
            self._rebalance(consumer)
            return sorted(consumer.positions)

    def rewind(self, consumer: MemoryConsumer, records: list[BusRecord]) -> None:
        with self._cond:
            for record in records:
                tp = (record.topic, record.partition)
                if tp not in consumer.positions:
                    raise KeyError(f"{tp} is not owned by this consumer any more")
                consumer.positions[tp] = min(consumer.positions[tp], record.offset)

    def commit(self, consumer: MemoryConsumer) -> None:
        with self._cond:
            group = self._groups[consumer.group_id]
            if consumer not in group.members:
                return
            # Only partitions still owned: after a rebalance the new owner decides.
            owned = self._assignment(consumer)
            for tp, position in consumer.positions.items():
                if tp in owned and position > group.committed.get(tp, 0):
                    group.committed[tp] = position

    def lag(self, consumer: MemoryConsumer) -> dict[TopicPartition, int]:
        with self._cond:
            committed = self._groups.get(consumer.group_id, _Group()).committed
            return {tp: len(self._topics[tp[0]][tp[1]]) - committed.get(tp, 0) for tp in consumer.positions}

    def group_progress(self, consumer: MemoryConsumer) -> dict[TopicPartition, tuple[int, int]]:
        with self._cond:
            committed = self._groups.get(consumer.group_id, _Group()).committed
            return {
                (topic, partition): (committed.get((topic, partition), 0), len(log))
                for topic in consumer.topics
                for partition, log in enumerate(self._topic(topic))
            }

    def committed(self, group_id: str, topic: str, partition: int) -> int:
        with self._cond:
            return self._groups.get(group_id, _Group()).committed.get((topic, partition), 0)


class MemoryProducer:
    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def produce(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self._broker.append(topic, bytes(value), _as_bytes(key), headers or {})

    def flush(self, timeout: float = 10.0) -> None:
        # Records are appended synchronously in produce(); nothing is ever pending.
        return None

    def check(self, timeout: float = 2.0) -> None:
        # The broker is this process: reachable whenever the process answers.
        return None


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, topics: list[str], group_id: str) -> None:
        self.topics = list(topics)
        self.group_id = group_id
        self.positions: dict[TopicPartition, int] = {}
        self.next_start = 0
        self.closed = False
        self._broker = broker
        broker.join(self)

    def consume(self, max_records: int, timeout: float) -> list[BusRecord]:
        return self._broker.fetch(self, max_records, timeout)

    def commit(self, *, wait: bool = True) -> None:
        self._broker.commit(self)

    def rewind(self, records: list[BusRecord]) -> None:
        self._broker.rewind(self, records)

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member of the group owns right now."""
        return self._broker.assignment(self)

    def lag(self) -> dict[tuple[str, int], int]:
        return self._broker.lag(self)

    def group_progress(self) -> dict[tuple[str, int], tuple[int, int]]:
        return self._broker.group_progress(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker.leave(self)
