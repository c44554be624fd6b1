"""The task bridge: task topic records become Celery tasks; what cannot be dispatched goes
to the dead-letter topic with a reason; the loop keeps running and commits only after
the Celery publish succeeded."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from messaging.bus import BusRecord, get_producer
from protos.gochat.v1 import envelopes_pb2 as pb
from tasks.bridge import BAD_KWARGS, MALFORMED_BODY, TASK_BRIDGE, UNKNOWN_TASK_TYPE, process_task_records
from tasks.models import DailyStats
from tasks.tests.conftest import drain


def task_bytes(task_type: str, kwargs: dict | None = None, body_type: str | None = None) -> bytes:
    message = pb.TaskMessage(
        task_type=task_type if body_type is None else body_type,
        trace_id="trace-9",
        kwargs_json=json.dumps(kwargs or {}),
        submitted_at_ms=int(time.time() * 1000),
    )
    return message.SerializeToString()


def produce_task(value: bytes, task_type: str) -> None:
    producer = get_producer()
    producer.produce(django_settings.KAFKA_TASK_TOPIC, value, headers={"task_type": task_type} if task_type else None)
    producer.flush()


def dlq_reasons(records) -> list[str]:
    return [r.headers.get("dlq_reason") for r in records]


def record(value: bytes, task_type: str = "", offset: int = 0) -> BusRecord:
    return BusRecord(topic="im-task-topic", value=value, headers={"task_type": task_type} if task_type else {}, offset=offset)


@pytest.mark.django_db
def test_known_type_runs_the_rest_goes_to_the_dead_letter_topic(memory_bus, settings):
    good = task_bytes("tasks.daily_stats", {"day": "2026-11-01"})
    records = [
        record(good, "tasks.daily_stats", 0),
        record(task_bytes("tasks.mine_bitcoin"), "tasks.mine_bitcoin", 1),
        record(b"\xff\xff\xff not protobuf", "tasks.daily_stats", 2),
        record(task_bytes("tasks.daily_stats", {"nope": 1}), "tasks.daily_stats", 3),
        record(pb.TaskMessage(task_type="tasks.daily_stats", kwargs_json="[1, 2]").SerializeToString(), "", 4),
        record(task_bytes("tasks.daily_stats", body_type="tasks.sweep_presence"), "tasks.daily_stats", 5),
    ]

    process_task_records(records)

    assert DailyStats.objects.filter(day="2026-11-01").exists()
    dead = drain([settings.KAFKA_TASK_DLQ_TOPIC], idle=0.2)
    assert dlq_reasons(dead) == [UNKNOWN_TASK_TYPE, MALFORMED_BODY, BAD_KWARGS, MALFORMED_BODY, MALFORMED_BODY]
    # The dead letter is the original record, plus where it came from and why.
    assert dead[0].value == records[1].value
    assert dead[0].headers["task_type"] == "tasks.mine_bitcoin"
    assert dead[0].headers["dlq_source"] == "im-task-topic/0/1"
    assert "nope" in dead[2].headers["dlq_detail"]


def _run_bridge_thread() -> tuple[threading.Thread, threading.Event]:
    from messaging.consumers_registry import run_consumer

    stop = threading.Event()
    thread = threading.Thread(target=run_consumer, args=(TASK_BRIDGE,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    return thread, stop


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_bridge_loop_keeps_running_after_bad_records(memory_bus, settings):
    thread, stop = _run_bridge_thread()
    try:
        produce_task(b"garbage", "tasks.daily_stats")
        produce_task(task_bytes("tasks.unknown"), "tasks.unknown")
        produce_task(task_bytes("tasks.daily_stats", {"day": "2026-11-02"}), "tasks.daily_stats")
        assert _wait(lambda: DailyStats.objects.filter(day="2026-11-02").exists())
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
    # Keyless records spread over the topic's partitions: no order between them.
    assert sorted(dlq_reasons(drain([settings.KAFKA_TASK_DLQ_TOPIC], idle=0.2))) == [MALFORMED_BODY, UNKNOWN_TASK_TYPE]


@pytest.mark.django_db(transaction=True)
def test_record_is_not_committed_until_the_celery_publish_succeeds(memory_bus, settings):
    from gochat_site.celery import app
    from tasks.tests.conftest import _drop_connections

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    # A broker nobody listens on: every publish fails.
    app.conf.update(broker_url="redis://127.0.0.1:1/0", task_always_eager=False)
    _drop_connections(app)
    thread, stop = _run_bridge_thread()
    try:
        produce_task(task_bytes("tasks.daily_stats", {"day": "2026-11-03"}), "tasks.daily_stats")
        # The bridge tries, fails, reopens its consumer and reads the record again.
        time.sleep(3)
        assert thread.is_alive()
        assert not DailyStats.objects.filter(day="2026-11-03").exists()
        # The broker is back: the record that was never committed is dispatched now.
        app.conf.update(saved)
        _drop_connections(app)
        assert _wait(lambda: DailyStats.objects.filter(day="2026-11-03").exists())
    finally:
        app.conf.update(saved)
        _drop_connections(app)
        stop.set()
        thread.join(10)
    assert drain([settings.KAFKA_TASK_DLQ_TOPIC], idle=0.2) == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_bridge_process_with_real_kafka_and_worker(kafka_bus, celery_broker, settings):
    from messaging.bus import ensure_topics
    from tests.harness.celery_worker import start_task_bridge, start_worker

    ensure_topics([settings.KAFKA_TASK_TOPIC], settings.KAFKA_TASK_PARTITIONS)
    worker = start_worker(queues="default")
    health_port = _free_port()
    bridge = start_task_bridge(HEALTH_PORT=health_port)
    try:
        produce_task(task_bytes("tasks.no_such_type"), "tasks.no_such_type")
        produce_task(b"\x08\x96\x01 not a task", "tasks.daily_stats")
        produce_task(task_bytes("tasks.daily_stats", {"day": "2026-11-04"}), "tasks.daily_stats")
        dead = drain([settings.KAFKA_TASK_DLQ_TOPIC], expect=lambda r: len(r) >= 2)
        assert sorted(dlq_reasons(dead)) == sorted([UNKNOWN_TASK_TYPE, MALFORMED_BODY])
        assert _wait(lambda: DailyStats.objects.filter(day="2026-11-04").exists(), timeout=60), bridge.log()[-3000:]
        # Still running after the bad records: a later task goes through too.
        assert bridge.alive()
        produce_task(task_bytes("tasks.daily_stats", {"day": "2026-11-05"}), "tasks.daily_stats")
        assert _wait(lambda: DailyStats.objects.filter(day="2026-11-05").exists(), timeout=60), bridge.log()[-3000:]
        assert "task_dead_lettered" in bridge.log()
        # Its health listener: alive, and the dead letters counted for the DLQ alert.
        base = f"http://127.0.0.1:{health_port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            page = response.read().decode()
        dead_letters = {
            sample.labels["reason"]: sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.name == "gochat_dead_letters_total" and sample.labels["topic"] == settings.KAFKA_TASK_DLQ_TOPIC
        }
        assert dead_letters == {UNKNOWN_TASK_TYPE: 1.0, MALFORMED_BODY: 1.0}
    finally:
        bridge.stop()
        worker.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
