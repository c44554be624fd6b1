"""The one registry of GoChat's long-running bus consumers, and the loop that runs them.

Each consumer is named once with its topics, consumer group, partition count and
processing function (a dotted path, imported when the consumer starts). The loop is
poll -> process -> commit: offsets are committed by hand, only after the processing
function returned, so a crash re-delivers the batch (at-least-once). A batch whose
processing raised is read again after a pause: the consumer seeks back to it and stays
in its group (a re-join per failure would rebalance the group on every failed batch).

Between polls a watch samples the group's committed offsets and log ends every
KAFKA_STALL_CHECK_SECONDS. A partition with records after its committed offset whose
committed offset has not moved for KAFKA_STALL_SECONDS is stuck; a member that owns it,
or owns nothing at all, is stalled and re-creates its consumer with backoff (a fresh
join of the group), logs `<name>_consumer_stalled` and counts it in
gochat_kafka_consumer_stalls_total (docs/bus-and-presence.md).

A re-join does not help when the group itself has stopped assigning (seen on the Tansu
test broker when every member churns at once, issue 8). So a member that owns nothing
while partitions are stuck (`unassigned`), or sees a partition nobody moves
(`orphaned_partition`), takes those partitions over instead: it assigns them by hand,
reads from the group's committed offset (or from where its own last takeover got to,
if that is further) for KAFKA_STALL_TAKEOVER_SECONDS, then joins the group again. Its
commits count only where the broker accepts them: Kafka and Tansu refuse a commit from
a non-member while the group has live members, so a group that comes back reads the
taken-over records again. Two members may read one partition meanwhile too. Processing
is idempotent (de-duplication on client_msg_id, and gateways drop a new-message a socket
already had), so either costs work, not correctness.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

from gochat_site import metrics
from messaging.bus import BusRecord, Consumer, downstream_topic, ensure_topics, flush_per_batch, get_consumer

logger = logging.getLogger(__name__)

# A consume() call returns after this long without records, so stop requests are seen.
POLL_TIMEOUT_SECONDS = 0.5
# Pause before re-creating a consumer whose batch failed (resumes from the last commit).
RETRY_PAUSE_SECONDS = 1.0
# Longest pause between two re-creations of a consumer that stays stalled.
STALL_BACKOFF_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    topics: Callable[[], list[str]]
    group: Callable[[], str]
    partitions: Callable[[], int]
    # fn(records) -> None; sync functions are run in a thread by the async loop.
    process: str
    # Kafka group.instance.id (static membership); empty = a dynamic member.
    instance_id: Callable[[], str] = field(default=lambda: "")

    def process_function(self) -> Callable[[Sequence[BusRecord]], object]:
        return import_string(self.process)


CONSUMERS: dict[str, ConsumerSpec] = {
    spec.name: spec
    for spec in (
        ConsumerSpec(
            name="logic",
            topics=lambda: [settings.KAFKA_UPSTREAM_TOPIC],
            group=lambda: settings.KAFKA_LOGIC_GROUP,
            partitions=lambda: settings.KAFKA_UPSTREAM_PARTITIONS,
            process="messaging.logic.process_upstream_batch",
            instance_id=lambda: settings.KAFKA_LOGIC_INSTANCE_ID,
        ),
        # Every gateway process runs one, on its own topic and in its own group.
        ConsumerSpec(
            name="gateway-downstream",
            topics=lambda: [downstream_topic(settings.GATEWAY_ID)],
            group=lambda: f"im-gateway-{settings.GATEWAY_ID}",
            # One partition keeps a gateway's frames in produce order (ack before
            # new-message), which the per-socket de-duplication relies on.
            partitions=lambda: 1,
            process="messaging.gateway.downstream.deliver_batch",
        ),
    )
}


class _LagSampler:
    """Publishes the consumer's lag at most every KAFKA_LAG_SAMPLE_SECONDS (it costs a
    broker round trip), right after a commit or an empty poll."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self.spec = spec
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def sample(self, consumer: Consumer) -> None:
        self.next_at = time.monotonic() + settings.KAFKA_LAG_SAMPLE_SECONDS
        try:
            lag = consumer.lag()
        except Exception:  # noqa: BLE001 - a metric must not stop the loop
            logger.warning("consumer_lag_failed", extra={"consumer": self.spec.name}, exc_info=True)
            return
        metrics.set_consumer_lag(consumer=self.spec.name, group=self.spec.group(), lag=lag)


# --- stall detection --------------------------------------------------------------------
TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Stall:
    """Why a consumer is considered stuck: reason is `no_progress` (it owns a stuck
    partition), `unassigned` (it owns nothing while a partition is stuck) or
    `orphaned_partition` (a partition nobody moves for twice the stall time)."""

    reason: str
    stuck_seconds: float
    stuck_partitions: list[TopicPartition]
    lag: int
    assignment: list[TopicPartition]


class StallDetector:
    """Decides from successive samples of (assignment, group progress) whether the
    consumer should be re-created. Pure logic with an injectable clock.

    A partition is stuck while it has records after the group's committed offset and
    that offset has not moved. Its clock restarts when the offset moves, when the lag
    reaches 0, and when the partition is newly assigned to this member (a new owner
    gets the full stall time to start).
    """

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds = stall_seconds
        self.clock = clock
        self._since: dict[TopicPartition, tuple[int, float]] = {}
        self._owned: set[TopicPartition] = set()
        self._unassigned_since: float | None = None

    def reset(self) -> None:
        """Forget everything: a re-created consumer starts with a full grace period."""
        self._since.clear()
        self._owned = set()
        self._unassigned_since = None

    def stuck_for(self, tp: TopicPartition) -> float:
        entry = self._since.get(tp)
        return 0.0 if entry is None else self.clock() - entry[1]

    def update(
        self, assignment: Sequence[TopicPartition], progress: dict[TopicPartition, tuple[int, int]]
    ) -> Stall | None:
        now = self.clock()
        owned = set(assignment)
        newly_owned = owned - self._owned
        self._owned = owned
        if owned:
            self._unassigned_since = None
        elif self._unassigned_since is None:
            self._unassigned_since = now
        lag_total = 0
        stuck: dict[TopicPartition, float] = {}
        for tp, (committed, end) in progress.items():
            lag = max(0, end - committed)
            lag_total += lag
            previous = self._since.get(tp)
            if lag == 0:
                self._since.pop(tp, None)
                continue
            if previous is None or previous[0] != committed or tp in newly_owned:
                self._since[tp] = (committed, now)
                continue
            stuck[tp] = now - previous[1]
        limit = self.stall_seconds

        def stall(reason: str, partitions: list[TopicPartition]) -> Stall:
            return Stall(
                reason=reason,
                stuck_seconds=round(max(stuck[tp] for tp in partitions), 1),
                stuck_partitions=sorted(partitions),
                lag=lag_total,
                assignment=sorted(owned),
            )

        mine = [tp for tp, seconds in stuck.items() if tp in owned and seconds >= limit]
        if mine:
            return stall("no_progress", mine)
        if not owned and self._unassigned_since is not None and now - self._unassigned_since >= limit:
            anywhere = [tp for tp, seconds in stuck.items() if seconds >= limit]
            if anywhere:
                return stall("unassigned", anywhere)
        # Another member owns it and should have re-created itself by now (or nobody owns
        # it): a fresh join of this member triggers the rebalance that hands it out again.
        orphaned = [tp for tp, seconds in stuck.items() if tp not in owned and seconds >= 2 * limit]
        if orphaned:
            return stall("orphaned_partition", orphaned)
        return None


class ConsumerHealth:
    """What a consumer loop last saw, for /readyz of its process (thread-safe)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._state: dict[str, object] = {
            "consumer": name,
            "running": False,
            "checked": False,
            "assignment": [],
            "lag": 0,
            "owned_lag": 0,
            "waiting_partitions": 0,
            "stalled": None,
            "stalls": 0,
            # Partitions this member has taken over by hand after a stall (module doc).
            "takeover": [],
            # time.monotonic() of the loop's last turn: /healthz fails when it is too old.
            "loop_at": None,
        }

    def update(self, **fields: object) -> None:
        with self._lock:
            self._state.update(fields)

    def beat(self) -> None:
        """One turn of the loop (at least every POLL_TIMEOUT_SECONDS while it is healthy)."""
        now = time.monotonic()
        with self._lock:
            self._state["loop_at"] = now

    def alive(self, max_age: float) -> bool:
        """False once a started loop has not turned for max_age seconds (wedged: a hung
        broker call, a batch that never returns). Liveness, unlike readiness, says
        nothing about the group: a member without partitions is alive."""
        with self._lock:
            loop_at = self._state["loop_at"]
        return loop_at is None or time.monotonic() - float(loop_at) < max_age  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            state = dict(self._state)
        state["ready"] = self._ready(state)
        return state

    @staticmethod
    def _ready(state: dict[str, object]) -> bool:
        if not state["running"] or not state["checked"] or state["stalled"]:
            return False
        # Owning nothing is fine for a spare member of a busy group; owning nothing while
        # records wait on a partition that did not move since the last check is not.
        return bool(state["assignment"]) or not state["waiting_partitions"]


class _Watch:
    """Samples the group between polls, feeds the detector, publishes health."""

    def __init__(self, spec: ConsumerSpec, health: ConsumerHealth | None) -> None:
        self.spec = spec
        self.health = health
        self.detector = StallDetector(settings.KAFKA_STALL_SECONDS)
        self.interval = settings.KAFKA_STALL_CHECK_SECONDS
        self.next_at = 0.0
        self.stalls_in_a_row = 0

    def due(self) -> bool:
        return self.interval > 0 and time.monotonic() >= self.next_at

    def reopened(self) -> None:
        self.detector.reset()
        self.next_at = 0.0

    def check(self, consumer: Consumer) -> Stall | None:
        self.next_at = time.monotonic() + self.interval
        try:
            assignment = consumer.assignment()
            progress = consumer.group_progress()
        except Exception:  # noqa: BLE001 - a broker hiccup must not stop the loop
            logger.warning("consumer_watch_failed", extra={"consumer": self.spec.name}, exc_info=True)
            return None
        stall = self.detector.update(assignment, progress)
        owned = set(assignment)
        lag = {tp: max(0, end - committed) for tp, (committed, end) in progress.items()}
        waiting = sum(1 for tp, n in lag.items() if n > 0 and self.detector.stuck_for(tp) > 0)
        metrics.set_consumer_assignment(consumer=self.spec.name, group=self.spec.group(), partitions=len(owned))
        if stall is None and not waiting:
            # Only a group that moves again ends the backoff; a re-created consumer that
            # has not stalled yet is still in its grace period.
            self.stalls_in_a_row = 0
        if self.health is not None:
            self.health.update(
                checked=True,
                assignment=[f"{topic}:{partition}" for topic, partition in sorted(owned)],
                lag=sum(lag.values()),
                owned_lag=sum(n for tp, n in lag.items() if tp in owned),
                waiting_partitions=waiting,
                stalled=stall.reason if stall else None,
            )
        return stall

    def record_stall(self, stall: Stall) -> float:
        """Log and count a stall; return the pause before the consumer is re-created."""
        self.stalls_in_a_row += 1
        backoff = min(STALL_BACKOFF_MAX_SECONDS, RETRY_PAUSE_SECONDS * 2 ** (self.stalls_in_a_row - 1))
        event = f"{self.spec.name.replace('-', '_')}_consumer_stalled"
        logger.error(
            event,
            extra={
                "consumer": self.spec.name,
                "group": self.spec.group(),
                "reason": stall.reason,
                "stuck_seconds": stall.stuck_seconds,
                "stuck_partitions": [f"{t}:{p}" for t, p in stall.stuck_partitions],
                "lag": stall.lag,
                "assignment": [f"{t}:{p}" for t, p in stall.assignment],
                "stalls_in_a_row": self.stalls_in_a_row,
                "backoff_seconds": backoff,
            },
        )
        metrics.count_consumer_stall(consumer=self.spec.name, group=self.spec.group(), reason=stall.reason)
        if self.health is not None:
            snapshot = self.health.snapshot()
            self.health.update(stalls=int(snapshot["stalls"]) + 1)  # type: ignore[call-overload]
        return backoff


def _rewind(spec: ConsumerSpec, consumer: Consumer, records: Sequence[BusRecord]) -> bool:
    """Read a failed batch again without leaving the group; False: reopen instead.

    A close and a re-join per failed batch (every batch fails while PostgreSQL is down)
    turns an outage into a storm of rebalances, and the Tansu test broker wedges the
    whole group under it (issue 8); a seek back keeps the member and its partitions.
    """
    try:
        consumer.rewind(records)
        return True
    except Exception:  # noqa: BLE001 - e.g. the partition was revoked meanwhile
        logger.warning("consumer_rewind_failed", extra={"consumer": spec.name}, exc_info=True)
        return False


def _commit(spec: ConsumerSpec, consumer: Consumer, *, wait: bool = True) -> None:
    try:
        consumer.commit(wait=wait)
    except Exception:  # noqa: BLE001 - e.g. a rebalance took the partitions meanwhile
        # Not fatal: the batch is processed, its records come again to whoever owns the
        # partition next, and processing is idempotent (at-least-once).
        logger.warning("consumer_commit_failed", extra={"consumer": spec.name, "group": spec.group()}, exc_info=True)


def _open(
    spec: ConsumerSpec,
    partitions: list[TopicPartition] | None = None,
    start_offsets: dict[TopicPartition, int] | None = None,
) -> Consumer:
    ensure_topics(spec.topics(), spec.partitions())
    consumer = get_consumer(
        spec.topics(), spec.group(), instance_id=spec.instance_id(), partitions=partitions, start_offsets=start_offsets
    )
    logger.info(
        "consumer_started",
        extra={"consumer": spec.name, "topics": spec.topics(), "group": spec.group(), "takeover": partitions or []},
    )
    return consumer


TAKEOVER_REASONS = ("unassigned", "orphaned_partition")


def _takeover_partitions(stall: Stall) -> list[TopicPartition] | None:
    """The partitions to assign by hand after `stall`, or None: re-join the group."""
    if settings.KAFKA_STALL_TAKEOVER_SECONDS <= 0 or stall.reason not in TAKEOVER_REASONS:
        return None
    return list(stall.stuck_partitions) or None


def run_consumer(
    spec: ConsumerSpec,
    *,
    stop: threading.Event,
    batch_size: int | None = None,
    health: ConsumerHealth | None = None,
) -> None:
    """Run `spec` in this thread until `stop` is set (the run_logic command)."""
    process = spec.process_function()
    # Every processing function run here flushes the producer before returning (the
    # commit must follow delivery), so what a batch produces may wait for that flush.
    flush_per_batch()
    size = batch_size or settings.KAFKA_CONSUME_BATCH
    metrics.start_metrics_server()
    lag = _LagSampler(spec)
    watch = _Watch(spec, health)
    consumer = _open(spec)
    takeover_ends: float | None = None
    # Where this process's takeovers got to, per partition (their commits may be refused).
    taken_over_to: dict[TopicPartition, int] = {}
    commit_refused_logged = False
    if health is not None:
        health.update(running=True)
    try:
        while not stop.is_set():
            if health is not None:
                health.beat()
            if takeover_ends is not None and time.monotonic() >= takeover_ends:
                # Back into the group: by now it assigns again, or the watch sees the
                # partitions stuck once more and takes them over again.
                consumer.close()
                consumer = _open(spec)
                takeover_ends = None
                watch.reopened()
                if health is not None:
                    health.update(takeover=[])
                continue
            if lag.due():
                lag.sample(consumer)
            # A takeover's own commits may be refused, so the group's offsets say nothing
            # about its progress: the watch resumes once it is a member again.
            if takeover_ends is None and watch.due():
                stall = watch.check(consumer)
                if stall is not None:
                    pause = watch.record_stall(stall)
                    consumer.close()
                    takeover = _takeover_partitions(stall) if takeover_ends is None else None
                    if takeover:
                        logger.warning(
                            f"{spec.name.replace('-', '_')}_consumer_takeover",
                            extra={"consumer": spec.name, "group": spec.group(), "reason": stall.reason,
                                   "partitions": [f"{t}:{p}" for t, p in takeover],
                                   "seconds": settings.KAFKA_STALL_TAKEOVER_SECONDS},
                        )
                        consumer = _open(spec, partitions=takeover, start_offsets=taken_over_to)
                        takeover_ends = time.monotonic() + settings.KAFKA_STALL_TAKEOVER_SECONDS
                        commit_refused_logged = False
                        if health is not None:
                            # Consuming again, by hand: ready (the watch is paused meanwhile).
                            names = [f"{t}:{p}" for t, p in takeover]
                            health.update(takeover=names, assignment=names, stalled=None)
                    else:
                        # A fresh join of the group; the new consumer resumes from the last commit.
                        stop.wait(pause)
                        consumer = _open(spec)
                        takeover_ends = None
                        if health is not None:
                            health.update(takeover=[])
                    watch.reopened()
                    continue
            records = consumer.consume(size, POLL_TIMEOUT_SECONDS)
            if not records:
                continue
            # As Django does around a request: drop connections past CONN_MAX_AGE or broken.
            close_old_connections()
            try:
                process(records)
            except Exception:
                logger.exception("consumer_batch_failed", extra={"consumer": spec.name, "records": len(records)})
                # A failing batch is not a stalled group: restart the detector's clocks.
                watch.reopened()
                stop.wait(RETRY_PAUSE_SECONDS)
                if not _rewind(spec, consumer, records):
                    consumer.close()
                    consumer = _open(spec)
                    takeover_ends = None
                continue
            if takeover_ends is None:
                # Not awaited: the batch is persisted and answered, so a commit lost to a
                # crash only replays de-duplicated records, and the next poll need not
                # wait a broker round trip. The last one is awaited on the way out.
                _commit(spec, consumer, wait=False)
                continue
            for record in records:
                key = (record.topic, record.partition)
                taken_over_to[key] = max(taken_over_to.get(key, 0), record.offset + 1)
            try:
                consumer.commit()
            except Exception as exc:  # noqa: BLE001 - expected while the group has members
                if not commit_refused_logged:
                    commit_refused_logged = True
                    logger.info("consumer_takeover_commit_refused", extra={"consumer": spec.name, "error": str(exc)})
    finally:
        if health is not None:
            health.update(running=False)
        if takeover_ends is None:
            _commit(spec, consumer)  # the position: after the last batch processed or rewound
        consumer.close()
        connections.close_all()
        logger.info("consumer_stopped", extra={"consumer": spec.name})


async def arun_consumer(
    spec: ConsumerSpec,
    *,
    stop: asyncio.Event,
    process: Callable[[Sequence[BusRecord]], Awaitable[object]] | None = None,
    batch_size: int | None = None,
) -> None:
    """Run `spec` as a task of the running event loop (gateway downstream, embedded logic).

    Blocking bus calls go through asyncio.to_thread; a sync processing function runs
    through database_sync_to_async so its database connections are managed.
    """
    if process is None:
        function = spec.process_function()
        if inspect.iscoroutinefunction(function):
            process = function  # type: ignore[assignment]
        else:
            from channels.db import database_sync_to_async

            process = database_sync_to_async(function)
    size = batch_size or settings.KAFKA_CONSUME_BATCH
    lag = _LagSampler(spec)
    watch = _Watch(spec, None)
    consumer = await asyncio.to_thread(_open, spec)
    try:
        while not stop.is_set():
            if lag.due():
                await asyncio.to_thread(lag.sample, consumer)
            if watch.due():
                stall = await asyncio.to_thread(watch.check, consumer)
                if stall is not None:
                    await asyncio.to_thread(consumer.close)
                    try:
                        await asyncio.wait_for(stop.wait(), watch.record_stall(stall))
                    except asyncio.TimeoutError:
                        pass
                    consumer = await asyncio.to_thread(_open, spec)
                    watch.reopened()
                    continue
            records = await asyncio.to_thread(consumer.consume, size, POLL_TIMEOUT_SECONDS)
            if not records:
                continue
            try:
                await process(records)  # type: ignore[misc]
            except Exception:
                logger.exception("consumer_batch_failed", extra={"consumer": spec.name, "records": len(records)})
                watch.reopened()
                try:
                    await asyncio.wait_for(stop.wait(), RETRY_PAUSE_SECONDS)
                except asyncio.TimeoutError:
                    pass
                if not await asyncio.to_thread(_rewind, spec, consumer, records):
                    await asyncio.to_thread(consumer.close)
                    consumer = await asyncio.to_thread(_open, spec)
                continue
            # Sends the commit and returns (no thread hop, no broker round trip awaited).
            _commit(spec, consumer, wait=False)
    finally:
        await asyncio.to_thread(_commit, spec, consumer)
        await asyncio.to_thread(consumer.close)
        logger.info("consumer_stopped", extra={"consumer": spec.name})

