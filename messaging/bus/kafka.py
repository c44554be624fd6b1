"""The bus over Kafka (confluent-kafka / librdkafka).

Producer: acks=all with idempotence, so a retried send is never written twice; flush()
raises BusDeliveryError when the broker refused or never acknowledged a record.
Consumer: offsets are committed by hand (enable.auto.commit=false) after processing,
which gives at-least-once delivery; a new group starts at the earliest offset.
"""
from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer as _RdConsumer
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as _RdProducer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from messaging.bus.base import BusDeliveryError, BusRecord

logger = logging.getLogger(__name__)


def _headers_out(headers: dict[str, str] | None) -> list[tuple[str, bytes]] | None:
    if not headers:
        return None
    return [(name, str(value).encode()) for name, value in headers.items()]


def _headers_in(raw: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    if not raw:
        return {}
    return {name: (value or b"").decode("utf-8", errors="replace") for name, value in raw}


def _new_rd_producer(linger_ms: int) -> _RdProducer:
    return _RdProducer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "message.timeout.ms": settings.KAFKA_DELIVERY_TIMEOUT_MS,
        }
    )


def _is_fatal(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return False
    return error.fatal() or error.code() == KafkaError._FATAL


class _Generation:
    """One librdkafka producer inside a KafkaProducer (the current one is
    KafkaProducer._generation): whether, once replaced, its caller was already told
    about what it still held."""

    __slots__ = ("reported",)

    def __init__(self) -> None:
        self.reported = False


# Delivery errors kept for the next flush() (the rest are counted).
MAX_ERRORS_KEPT = 100


class KafkaProducer:
    """The producer of one process. After a delivery failure it is replaced by a fresh
    librdkafka producer: an idempotent producer that lived through a broker losing its
    data (Tansu's memory storage, or a real cluster's unclean recovery) keeps waiting
    for sequence numbers the broker no longer knows and never gets a record acknowledged
    again, while a new one works at once (seen in the fault suite's broker restart).
    What the old one still held is dropped; its senders are told (the logic's batch
    fails and is consumed again, a client's unacknowledged send is resent)."""

    def __init__(self, *, linger_ms: int | None = None) -> None:
        self.linger_ms = settings.KAFKA_LINGER_MS if linger_ms is None else linger_ms
        self._errors_lock = threading.Lock()
        self._errors: list[str] = []
        self._errors_dropped = 0
        self._install()

    def _install(self) -> None:
        """A fresh librdkafka producer, with a delivery callback that knows which one it
        belongs to: the records a replaced producer still held are purged, and their
        callbacks ("Purged in queue") must not mark its successor broken. They did: the
        next produce() replaced the successor and purged the record it had just taken,
        and so on for every record while clients kept sending (the fault matrix's
        restart-broker saw ~35 replacements per gateway, and sends never acknowledged)."""
        generation = _Generation()
        self._generation = generation
        self._broken = False
        self._producer = _new_rd_producer(self.linger_ms)

        def on_delivery(err: KafkaError | None, msg) -> None:  # noqa: ANN001 - librdkafka Message
            if err is not None:
                self._delivery_failed(generation, err, msg)

        self._on_delivery = on_delivery

    def _renew(self, reason: str, *, reported: bool) -> None:
        """Replace the producer. `reported`: the caller already counts what the old one
        still held as failed (flush() raising), so their purge callbacks add no error."""
        old = self._producer
        self._generation.reported = reported
        self._install()
        try:
            old.purge()
            old.flush(0)
        except Exception:  # noqa: BLE001 - the old producer is being dropped anyway
            logger.debug("bus_producer_purge_failed", exc_info=True)
        logger.warning("bus_producer_renewed", extra={"reason": reason})

    def _delivery_failed(self, generation: _Generation, err: KafkaError, msg) -> None:  # noqa: ANN001
        current = generation is self._generation
        if current:
            self._broken = True
        logger.error(
            "bus_delivery_failed",
            extra={
                "topic": msg.topic(),
                "partition": msg.partition(),
                "error": err.str(),
                "replaced_producer": not current,
            },
        )
        if generation.reported:
            return
        with self._errors_lock:
            # Bounded: a process that never flushes (a gateway) reads none of them, and
            # one error is enough to fail a flush.
            if len(self._errors) < MAX_ERRORS_KEPT:
                self._errors.append(f"{msg.topic()}: {err.str()}")
            else:
                self._errors_dropped += 1

    def produce(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: dict[str, str] | None = None
    ) -> None:
        if self._broken:
            # Not reported yet: the records it still held fail the next flush().
            self._renew("delivery failed", reported=False)
        renewed = False
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=_headers_out(headers), on_delivery=self._on_delivery
                )
                break
            except BufferError:
                # Local queue full: let librdkafka drain it, then retry instead of dropping.
                self._producer.poll(0.1)
            except KafkaException as exc:
                # An idempotent producer that hit a fatal error (a broker that lost its data
                # answers with sequence numbers it no longer knows) refuses every record
                # from then on: without a new one the logic's batch failed at its first
                # ack forever (fault matrix, restart-broker). What the old one held is
                # dropped with it, so the next flush() fails and the batch is read again.
                if renewed or not _is_fatal(exc):
                    raise
                with self._errors_lock:
                    self._errors.append(f"producer fatal error: {exc}")
                self._renew(f"fatal error: {exc}", reported=True)
                renewed = True
        # Serves delivery callbacks of earlier records without blocking.
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> None:
        remaining = self._producer.flush(timeout)
        with self._errors_lock:
            errors, self._errors = self._errors, []
            dropped, self._errors_dropped = self._errors_dropped, 0
        if dropped:
            errors.append(f"{dropped} more delivery error(s)")
        if remaining:
            errors.append(f"{remaining} record(s) not acknowledged within {timeout}s")
        if remaining or self._broken:
            # Only the current producer's own failures replace it; errors of one already
            # replaced (what it held when it was) are reported, not acted on again.
            self._renew(errors[0], reported=True)
        if errors:
            raise BusDeliveryError("; ".join(errors))

    def check(self, timeout: float = 2.0) -> None:
        """One metadata round trip to the broker (KafkaException when none answers in time)."""
        self._producer.list_topics(timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            logger.warning(
                "bus_producer_close_undelivered", extra={"remaining": remaining, "errors": list(self._errors)}
            )


class KafkaConsumer:
    def __init__(
        self,
        topics: list[str],
        group_id: str,
        *,
        instance_id: str = "",
        partitions: list[tuple[str, int]] | None = None,
        start_offsets: dict[tuple[str, int], int] | None = None,
    ) -> None:
        self.topics = list(topics)
        self.group_id = group_id
        config = {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
            "fetch.wait.max.ms": settings.KAFKA_FETCH_WAIT_MAX_MS,
        }
        # Static membership is off by default: the Tansu test broker stops assigning
        # partitions to a group with static members (docs/bus-and-presence.md).
        if instance_id:
            config["group.instance.id"] = instance_id
        if settings.KAFKA_ASSIGNMENT_STRATEGY:
            config["partition.assignment.strategy"] = settings.KAFKA_ASSIGNMENT_STRATEGY
        self._consumer = _RdConsumer(config)
        if partitions:
            # Takeover (consumers_registry): these partitions without joining the group,
            # from the group's committed offset or `start_offsets`, whichever is further.
            wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
            if start_offsets:
                committed = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.committed(wanted, timeout=10)}
                wanted = [
                    TopicPartition(tp.topic, tp.partition, start_offsets[(tp.topic, tp.partition)])
                    if start_offsets.get((tp.topic, tp.partition), -1) > committed.get((tp.topic, tp.partition), -1)
                    else tp
                    for tp in wanted
                ]
            self._consumer.assign(wanted)
            self._owned = {(tp.topic, tp.partition) for tp in wanted}
        else:
            self._owned = set()
            self._consumer.subscribe(
                self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
        self._closed = False
        self._partitions: list[tuple[str, int]] = []

    # The partitions owned, kept from the rebalance callbacks (librdkafka serves them
    # inside poll(), in this thread): commit() needs them after every batch, and asking
    # librdkafka (assignment()) is a round trip to its main thread each time, ~10% of the
    # gateway's samples under peerbench s1. Eager and cooperative rebalances both fit:
    # an eager one revokes everything before it assigns the new set.
    def _on_assign(self, consumer, partitions) -> None:  # noqa: ANN001 - librdkafka's callback
        self._owned.update((tp.topic, tp.partition) for tp in partitions)

    def _on_revoke(self, consumer, partitions) -> None:  # noqa: ANN001 - librdkafka's callback
        self._owned.difference_update((tp.topic, tp.partition) for tp in partitions)

    def consume(self, max_records: int, timeout: float) -> list[BusRecord]:
        # librdkafka's consume(n, t) waits the whole timeout unless n records arrive;
        # poll() for the first record, then take only what is already fetched.
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        messages = [first]
        if max_records > 1:
            messages.extend(self._consumer.consume(max_records - 1, 0))
        return [record for msg in messages if (record := self._to_record(msg)) is not None]

    def _to_record(self, msg) -> BusRecord | None:  # noqa: ANN001 - librdkafka Message
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return None
            logger.warning(
                "bus_consume_error",
                extra={"group_id": self.group_id, "topic": msg.topic(), "error": err.str(), "fatal": err.fatal()},
            )
            if err.fatal():
                raise KafkaException(err)
            return None
        return BusRecord(
            topic=msg.topic(),
            value=msg.value() or b"",
            key=msg.key(),
            headers=_headers_in(msg.headers()),
            partition=msg.partition(),
            offset=msg.offset(),
        )

    def commit(self, *, wait: bool = True) -> None:
        # The positions now, passed explicitly: an asynchronous commit without offsets
        # takes the stored offsets when librdkafka's thread serves it, and by then the
        # next poll may have stored those of a batch not processed yet.
        owned = [TopicPartition(topic, partition) for topic, partition in self._owned]
        offsets = [tp for tp in self._consumer.position(owned) if tp.offset >= 0] if owned else []
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as exc:
            # Nothing consumed since the last commit: not an error for a poll-process-commit loop.
            if exc.args and exc.args[0].code() == KafkaError._NO_OFFSET:
                return
            raise

    def rewind(self, records: list[BusRecord]) -> None:
        first: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            first[key] = min(first.get(key, record.offset), record.offset)
        for (topic, partition), offset in first.items():
            # librdkafka drops what it had fetched past the seek point for that partition.
            self._consumer.seek(TopicPartition(topic, partition, offset))

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member of the group owns right now."""
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def lag(self, timeout: float = 5.0) -> dict[tuple[str, int], int]:
        """High watermark minus the group's committed offset, per owned partition
        (two broker round trips: call it every few seconds, not per batch)."""
        owned = self._consumer.assignment()
        if not owned:
            return {}
        result: dict[tuple[str, int], int] = {}
        positions = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(owned)}
        for tp in self._consumer.committed(owned, timeout=timeout):
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            # What this consumer already fetched is on the broker too: the end is never below
            # its position (the Tansu test broker under-reports the watermark of a batch).
            end = max(high, positions.get((tp.topic, tp.partition), -1))
            # No commit yet (OFFSET_INVALID): the group starts at the earliest offset.
            start = tp.offset if tp.offset >= 0 else low
            result[(tp.topic, tp.partition)] = max(0, end - start)
        return result

    def _all_partitions(self, timeout: float) -> list[tuple[str, int]]:
        # Partition counts do not change under GoChat (topics are created with their
        # count); metadata is read until every topic has shown its partitions once.
        if not self._partitions:
            found: list[tuple[str, int]] = []
            for topic in self.topics:
                meta = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    return []
                found.extend((topic, p) for p in sorted(meta.partitions))
            self._partitions = found
        return self._partitions

    def group_progress(self, timeout: float = 5.0) -> dict[tuple[str, int], tuple[int, int]]:
        """(committed, end) of every partition of the subscribed topics, for the group
        (owned or not): 1 + partitions broker round trips."""
        partitions = self._all_partitions(timeout)
        if not partitions:
            return {}
        positions = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(self._consumer.assignment())}
        result: dict[tuple[str, int], tuple[int, int]] = {}
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        for tp in self._consumer.committed(wanted, timeout=timeout):
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            key = (tp.topic, tp.partition)
            end = max(high, positions.get(key, -1))
            start = tp.offset if tp.offset >= 0 else low
            result[key] = (start, max(end, start))
        return result

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()


def create_topics(names: list[str], partitions: int = 1, timeout: float = 15.0) -> None:
    """Create the missing topics and wait until the broker's metadata lists them."""
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [name for name in names if name not in existing]
    if missing:
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions) for name in missing])
        for name, future in futures.items():
            try:
                future.result(timeout)
                logger.info("bus_topic_created", extra={"topic": name, "partitions": partitions})
            except KafkaException as exc:
                # Another process created it between our listing and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    deadline = time.monotonic() + timeout
    while missing:
        listed = admin.list_topics(timeout=timeout).topics
        missing = [name for name in missing if name not in listed or listed[name].error is not None]
        if missing and time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible in metadata after {timeout}s: {missing}")
        if missing:
            time.sleep(0.1)
