"""The consumer loop's stall detector: the decision logic on its own (a clock of the
test's), and the loop against the Tansu broker when its group hands it no partition
while records wait: it logs logic_consumer_stalled, counts the stall, reports not ready,
re-creates its consumer and consumes once the group moves again."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.conf import settings

from messaging.consumers_registry import ConsumerHealth, ConsumerSpec, StallDetector, run_consumer

T = ("up", 0)
U = ("up", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_owner_of_a_partition_whose_committed_offset_does_not_move_is_stalled():
    clock = Clock()
    detector = StallDetector(10, clock)
    assert detector.update([T], {T: (5, 9)}) is None
    clock.now += 9
    assert detector.update([T], {T: (5, 9)}) is None
    clock.now += 1
    stall = detector.update([T], {T: (5, 12)})  # lag growing, no progress
    assert stall is not None and stall.reason == "no_progress"
    assert stall.stuck_partitions == [T] and stall.lag == 7 and stall.stuck_seconds == 10


def test_progress_or_an_empty_partition_restarts_the_clock():
    clock = Clock()
    detector = StallDetector(10, clock)
    detector.update([T], {T: (5, 9)})
    clock.now += 8
    assert detector.update([T], {T: (6, 9)}) is None  # the committed offset moved
    clock.now += 8
    assert detector.update([T], {T: (9, 9)}) is None  # caught up
    clock.now += 8
    assert detector.update([T], {T: (9, 12)}) is None  # new records: a fresh clock
    clock.now += 9
    assert detector.update([T], {T: (9, 12)}) is None
    clock.now += 1
    assert detector.update([T], {T: (9, 12)}).reason == "no_progress"


def test_a_member_owning_nothing_is_stalled_only_while_a_partition_is_stuck():
    clock = Clock()
    detector = StallDetector(10, clock)
    # A spare member of a busy, healthy group: another member moves the offsets.
    for committed in range(0, 40, 4):
        assert detector.update([], {T: (committed, committed + 5)}) is None
        clock.now += 3
    # Nobody moves them any more.
    detector.update([], {T: (40, 45)})
    clock.now += 10
    stall = detector.update([], {T: (40, 47)})
    assert stall is not None and stall.reason == "unassigned" and stall.assignment == []


def test_a_new_owner_gets_the_full_stall_time():
    clock = Clock()
    detector = StallDetector(10, clock)
    detector.update([U], {T: (5, 9), U: (0, 0)})
    clock.now += 15
    # T was stuck under another owner for 15 s; it is ours from now on.
    assert detector.update([T, U], {T: (5, 9), U: (0, 0)}) is None
    clock.now += 9
    assert detector.update([T, U], {T: (5, 9), U: (0, 0)}) is None
    clock.now += 1
    assert detector.update([T, U], {T: (5, 9), U: (0, 0)}).reason == "no_progress"


def test_a_partition_nobody_moves_stalls_the_other_members_after_twice_the_time():
    clock = Clock()
    detector = StallDetector(10, clock)
    detector.update([U], {T: (5, 9), U: (0, 0)})
    clock.now += 19
    assert detector.update([U], {T: (5, 9), U: (0, 0)}) is None
    clock.now += 1
    stall = detector.update([U], {T: (5, 9), U: (0, 0)})
    assert stall.reason == "orphaned_partition" and stall.stuck_partitions == [T]
    detector.reset()
    assert detector.update([U], {T: (5, 9), U: (0, 0)}) is None


def test_readiness_of_a_consumer():
    health = ConsumerHealth("logic")
    assert not health.snapshot()["ready"]  # not started
    health.update(running=True, checked=True, assignment=["up:0"], lag=3)
    assert health.snapshot()["ready"]
    # A spare member: nothing owned, nothing waiting.
    health.update(assignment=[], lag=3, waiting_partitions=0)
    assert health.snapshot()["ready"]
    health.update(assignment=[], lag=3, waiting_partitions=1)
    assert not health.snapshot()["ready"]
    health.update(assignment=["up:0"], stalled="no_progress")
    assert not health.snapshot()["ready"]


# --- The loop against the real broker -----------------------------------------------------
_seen: list[bytes] = []
_seen_lock = threading.Lock()


def collect(records) -> None:  # noqa: ANN001 - the processing function of the test spec
    with _seen_lock:
        _seen.extend(r.value for r in records)


def _stall_count(reason: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "gochat_kafka_consumer_stalls_total",
        {"consumer": "logic", "group": settings.KAFKA_LOGIC_GROUP, "reason": reason},
    )
    return value or 0.0


@pytest.mark.django_db(transaction=True)
def test_loop_recreates_its_consumer_when_the_group_gives_it_nothing(kafka_bus, settings, caplog):
    """A zombie member owns the only partition and never polls (a process stuck in a
    long call: librdkafka's thread keeps heartbeating, so the group keeps it). The loop
    owns nothing while records wait: it must say so and re-create its consumer until
    the group moves; once the zombie is gone it consumes every record."""
    from messaging.bus import ensure_topics, get_consumer, get_producer

    settings.KAFKA_STALL_SECONDS = 4
    settings.KAFKA_STALL_CHECK_SECONDS = 0.5
    settings.KAFKA_STALL_TAKEOVER_SECONDS = 0  # re-join only (the takeover: next test)
    topic = settings.KAFKA_UPSTREAM_TOPIC
    ensure_topics([topic], 1)
    spec = ConsumerSpec(
        name="logic",
        topics=lambda: [topic],
        group=lambda: settings.KAFKA_LOGIC_GROUP,
        partitions=lambda: 1,
        process=f"{__name__}.collect",
    )
    zombie = get_consumer([topic], settings.KAFKA_LOGIC_GROUP)
    deadline = time.monotonic() + 30
    while not zombie.assignment() and time.monotonic() < deadline:
        zombie.consume(1, 0.2)  # joins the group; the topic is empty, nothing is read
    assert zombie.assignment() == [(topic, 0)]

    producer = get_producer()
    sent = [f"r{n}-{uuid.uuid4().hex[:4]}".encode() for n in range(20)]
    for value in sent:
        producer.produce(topic, value, key="k")
    producer.flush()
    _seen.clear()
    before = _stall_count("unassigned")
    health = ConsumerHealth("logic")
    stop = threading.Event()
    thread = threading.Thread(target=run_consumer, args=(spec,), kwargs={"stop": stop, "health": health}, daemon=True)
    caplog.set_level("INFO", logger="messaging.consumers_registry")
    thread.start()
    zombie_closed = False
    try:
        deadline = time.monotonic() + 40
        while _stall_count("unassigned") == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _stall_count("unassigned") == before + 1, health.snapshot()
        stalled = [r for r in caplog.records if r.getMessage() == "logic_consumer_stalled"]
        # lag >= 1, not 20: Tansu's high watermark under-reports a batch of records.
        assert stalled and stalled[0].reason == "unassigned" and stalled[0].lag >= 1
        assert stalled[0].stuck_partitions == [f"{topic}:0"]
        assert not health.snapshot()["ready"]
        with _seen_lock:
            assert _seen == []

        zombie.close()
        zombie_closed = True
        deadline = time.monotonic() + 40
        while len(_seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        with _seen_lock:
            assert sorted(_seen) == sorted(sent)
        deadline = time.monotonic() + 10
        while not health.snapshot()["ready"] and time.monotonic() < deadline:
            time.sleep(0.2)
        state = health.snapshot()
        assert state["ready"] and state["assignment"] == [f"{topic}:0"] and state["stalls"] >= 1, state
    finally:
        stop.set()
        thread.join(20)
        if not zombie_closed:
            zombie.close()
    assert not thread.is_alive()


@pytest.mark.django_db
@pytest.mark.django_db(transaction=True)
def test_loop_takes_over_a_partition_the_group_does_not_move(kafka_bus, settings, caplog):
    """The group keeps a zombie as the owner of the only partition (or, as on Tansu when
    every member churned, assigns nothing at all): re-joining cannot help. The loop
    assigns the stuck partition by hand and reads every record from the group's committed
    offset (its commits are refused while the zombie is a member); then it joins the
    group again, and a takeover after that resumes where this one got to."""
    from messaging.bus import ensure_topics, get_consumer, get_producer

    settings.KAFKA_STALL_SECONDS = 4
    settings.KAFKA_STALL_CHECK_SECONDS = 0.5
    settings.KAFKA_STALL_TAKEOVER_SECONDS = 8
    topic = settings.KAFKA_UPSTREAM_TOPIC
    ensure_topics([topic], 1)
    spec = ConsumerSpec(
        name="logic",
        topics=lambda: [topic],
        group=lambda: settings.KAFKA_LOGIC_GROUP,
        partitions=lambda: 1,
        process=f"{__name__}.collect",
    )
    zombie = get_consumer([topic], settings.KAFKA_LOGIC_GROUP)
    deadline = time.monotonic() + 30
    while not zombie.assignment() and time.monotonic() < deadline:
        zombie.consume(1, 0.2)
    assert zombie.assignment() == [(topic, 0)]
    producer = get_producer()
    sent = [f"t{n}-{uuid.uuid4().hex[:4]}".encode() for n in range(20)]
    for value in sent:
        producer.produce(topic, value, key="k")
    producer.flush()
    _seen.clear()
    health = ConsumerHealth("logic")
    stop = threading.Event()
    thread = threading.Thread(target=run_consumer, args=(spec,), kwargs={"stop": stop, "health": health}, daemon=True)
    caplog.set_level("INFO", logger="messaging.consumers_registry")
    thread.start()
    try:
        # The zombie still owns the partition: only the takeover can read the records.
        deadline = time.monotonic() + 40
        while len(_seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        with _seen_lock:
            assert sorted(_seen) == sorted(sent), health.snapshot()
        takeovers = [r for r in caplog.records if r.getMessage() == "logic_consumer_takeover"]
        assert takeovers and takeovers[0].reason == "unassigned" and takeovers[0].partitions == [f"{topic}:0"]
        state = health.snapshot()
        assert state["takeover"] == [f"{topic}:0"] and state["ready"], state
        # The broker refuses a non-member's commit while the zombie is in the group.
        assert [r for r in caplog.records if r.getMessage() == "consumer_takeover_commit_refused"]
        # After KAFKA_STALL_TAKEOVER_SECONDS the loop is a member of the group again.
        deadline = time.monotonic() + 20
        while health.snapshot()["takeover"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health.snapshot()["takeover"] == []
    finally:
        stop.set()
        thread.join(20)
        zombie.close()
    assert not thread.is_alive()
    with _seen_lock:
        # Still only once each: the zombie kept the partition, so the loop (back in the
        # group, owning nothing) stalled again and its next takeover began where the
        # first one stopped, not at the group's old offset.
        assert sorted(_seen) == sorted(sent)


def test_kafka_rewind_reads_a_failed_batch_again_without_leaving_the_group(kafka_bus, settings):
    """What the loop does after a failed batch: seek back, same member, same records."""
    from messaging.bus import ensure_topics, get_consumer, get_producer

    topic = settings.KAFKA_UPSTREAM_TOPIC
    ensure_topics([topic], 1)
    producer = get_producer()
    for n in range(5):
        producer.produce(topic, f"v{n}".encode(), key="k")
    producer.flush()
    consumer = get_consumer([topic], settings.KAFKA_LOGIC_GROUP)
    try:
        first: list = []
        deadline = time.monotonic() + 30
        while len(first) < 5 and time.monotonic() < deadline:
            first.extend(consumer.consume(10, 0.5))
        assert [r.value for r in first] == [f"v{n}".encode() for n in range(5)]
        owned = consumer.assignment()
        consumer.rewind(first[2:])
        again: list = []
        deadline = time.monotonic() + 15
        while len(again) < 3 and time.monotonic() < deadline:
            again.extend(consumer.consume(10, 0.5))
        assert [r.offset for r in again] == [r.offset for r in first[2:]]
        assert consumer.assignment() == owned
    finally:
        consumer.close()
