"""GET /metrics, what moves it (a message over the WebSocket path, Celery tasks, consumer
lag, push counts), and trace ids from the HTTP request / Celery header to the log lines."""
from __future__ import annotations

import io
import json
import logging
import socket
import time
import urllib.request

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from gochat_site import tracing
from gochat_site.logging import JsonFormatter

WAIT = 10


def scrape(text: str | None = None) -> dict[tuple[str, tuple], float]:
    """Samples of a /metrics page: (name, sorted labels) -> value."""
    if text is None:
        response = Client().get("/metrics")
        assert response.status_code == 200
        text = response.content.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_page_is_prometheus_text(db):
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in (
        "gochat_ws_connections",
        "gochat_messages_accepted_total",
        "gochat_message_delivery_latency_seconds",
        "gochat_kafka_consumer_lag",
        "gochat_celery_task_duration_seconds",
        "gochat_push_sent_total",
    ):
        assert f"# HELP {name}" in body


# --- the WebSocket path moves the counters --------------------------------------------------
async def _frame(ws):
    return json.loads(await ws.receive_from(timeout=WAIT))


@pytest.mark.django_db(transaction=True)
async def test_a_ws_message_moves_the_counters(settings, ws_client, alice, bob, single_chat):
    # The eager index task is the Celery task this test watches; on PostgreSQL routing
    # skips it by default (the GIN index needs no task), so ask for it explicitly.
    settings.SEARCH_INDEX_ON_WRITE = True
    gateway = settings.GATEWAY_ID
    before = await database_sync_to_async(scrape)()
    ws_alice = await ws_client(alice)
    ws_bob = await ws_client(bob)
    await ws_alice.send_to(
        text_data=json.dumps(
            {"type": "send-message", "data": {"client_msg_id": "k1", "conversation_id": str(single_chat.id), "content": "hi"}}
        )
    )
    assert (await _frame(ws_alice))["type"] == "send-ack"
    assert (await _frame(ws_bob))["type"] == "new-message"
    await ws_bob.send_to(text_data="not json")
    assert (await _frame(ws_bob))["type"] == "error"
    during = await database_sync_to_async(scrape)()

    def delta(name, **labels):
        return value(during, name, **labels) - value(before, name, **labels)

    assert delta("gochat_ws_connections", gateway=gateway) == 2
    assert delta("gochat_ws_frames_in_total", type="send-message") == 1
    assert delta("gochat_ws_frames_in_total", type="invalid") == 1
    assert delta("gochat_ws_frames_out_total", type="send-ack") == 1
    assert delta("gochat_ws_frames_out_total", type="new-message") == 1
    assert delta("gochat_ws_frames_out_total", type="error") == 1
    assert delta("gochat_messages_accepted_total") == 1
    assert delta("gochat_messages_persisted_total", duplicate="false") == 1
    assert delta("gochat_messages_delivered_total") == 1
    assert delta("gochat_message_delivery_latency_seconds_count", kind="ack") == 1
    assert delta("gochat_message_delivery_latency_seconds_count", kind="new_message") == 1
    # Indexing ran as an (eager) Celery task: counted and timed.
    assert delta("gochat_celery_tasks_total", task="tasks.index_message", state="SUCCESS") == 1
    assert delta("gochat_celery_task_duration_seconds_count", task="tasks.index_message") == 1

    await ws_alice.disconnect()
    await ws_bob.disconnect()
    after = await database_sync_to_async(scrape)()
    assert value(after, "gochat_ws_connections", gateway=gateway) == value(before, "gochat_ws_connections", gateway=gateway)


# --- consumer lag ------------------------------------------------------------------------------
def _lag_after(spec, consumer) -> float:
    from messaging.consumers_registry import _LagSampler

    _LagSampler(spec).sample(consumer)
    return value(scrape(), "gochat_kafka_consumer_lag", consumer=spec.name, group=spec.group())


def _check_lag(topic: str, group: str, *, settle=None) -> None:
    from messaging.bus import ensure_topics, get_consumer, get_producer
    from messaging.consumers_registry import ConsumerSpec

    spec = ConsumerSpec(
        name=f"lag-{group}", topics=lambda: [topic], group=lambda: group, partitions=lambda: 1, process="builtins.print"
    )
    ensure_topics([topic], 1)
    producer = get_producer()
    for n in range(3):
        producer.produce(topic, f"r{n}".encode())
    producer.flush()
    consumer = get_consumer([topic], group)
    try:
        taken = []
        deadline = time.monotonic() + 30
        while len(taken) < 3 and time.monotonic() < deadline:
            taken += consumer.consume(10, 0.5)
        assert len(taken) == 3
        # Consumed but not committed: all three still count as lag.
        assert _lag_after(spec, consumer) == 3
        consumer.commit()
        assert _lag_after(spec, consumer) == 0
        producer.produce(topic, b"r3")
        producer.flush()
        assert _lag_after(spec, consumer) == 1
    finally:
        consumer.close()


def test_consumer_lag_memory_bus(db, settings):
    from messaging.bus import reset_bus

    settings.BUS_BACKEND = "memory"
    reset_bus()
    try:
        _check_lag("lag-topic", "lag-group")
    finally:
        reset_bus()


def test_consumer_lag_kafka(db, kafka_bus, settings):
    suffix = settings.KAFKA_LOGIC_GROUP.rsplit("-", 1)[-1]
    _check_lag(f"lag-topic-{suffix}", f"lag-group-{suffix}")


def test_push_counts_reach_metrics(db):
    from tasks.push import stats

    before = scrape()
    stats.record(sent=3, failed=1)
    after = scrape()
    assert value(after, "gochat_push_sent_total") - value(before, "gochat_push_sent_total") == 3
    assert value(after, "gochat_push_failed_total") - value(before, "gochat_push_failed_total") == 1


# --- trace ids -------------------------------------------------------------------------------
@pytest.fixture
def json_log():
    """Every log line emitted during the test, formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    root.removeHandler(handler)


@pytest.mark.django_db(transaction=True)
def test_request_id_is_kept_echoed_and_logged( client_for, alice, single_chat, json_log):
    client = client_for(alice)
    response = client.post(
        "/api/v1/messages/send",
        {"conversation_id": str(single_chat.id), "content": "traced", "client_msg_id": "t-1"},
        format="json",
        HTTP_X_REQUEST_ID="edge-req-12345",
    )
    assert response.status_code in (200, 201), response.content
    assert response["X-Request-ID"] == "edge-req-12345"
    lines = [line for line in json_log() if line.get("trace_id") == "edge-req-12345"]
    # Lines that never name the trace themselves get it from the request's context.
    # (The offline push for bob is enqueued; routing itself logs per message at DEBUG only.)
    assert "task_enqueued" in {line["event"] for line in lines}


def test_traceparent_or_a_new_id(db):
    client = Client()
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert client.get("/healthz", HTTP_TRACEPARENT=parent)["X-Request-ID"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    fresh = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(fresh) == 32 and fresh != "bad id with spaces"
    assert client.get("/healthz")["X-Request-ID"] != fresh


@pytest.mark.django_db(transaction=True)
def test_eager_task_runs_in_its_callers_trace( alice, single_chat, json_log):
    from gochat_site.tasks_client import enqueue_task
    from messaging.services import send_message

    message = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="x", client_msg_id="e1").message
    with tracing.bind("eager-trace-1234"):
        enqueue_task("tasks.offline_push", message_id=message.id, user_ids=[alice.id])
    assert tracing.current_trace_id() == ""
    events = [line for line in json_log() if line["event"] in {"push_disabled", "task_enqueued"}]
    assert events and all(line.get("trace_id") == "eager-trace-1234" for line in events)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_gets_the_trace_header_and_counts_tasks(tmp_path, settings, alice, bob, single_chat, celery_broker):
    from gochat_site.tasks_client import enqueue_task
    from messaging import delivery_trace
    from messaging.services import send_message
    from tests.harness.celery_worker import start_worker

    # Every trace kept, here and in the worker (production samples 5%).
    settings.DELIVERY_TRACE_SAMPLE_RATE = 1.0
    message = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="x", client_msg_id="w1").message
    port = _free_port()
    worker = start_worker(
        queues="push", concurrency=2, PROMETHEUS_MULTIPROC_DIR=tmp_path, METRICS_PORT=port, DELIVERY_TRACE_SAMPLE_RATE="1.0"
    )
    try:
        with tracing.bind("worker-trace-5678"):
            enqueue_task("tasks.offline_push", message_id=message.id, user_ids=[bob.id])
        deadline = time.monotonic() + 30
        push = []
        while not push and time.monotonic() < deadline:
            push = [e for e in delivery_trace.timeline(message_id=message.id) if e["stage"] == "push"]
            time.sleep(0.1)
        assert push, worker.log()[-3000:]
        assert push[0]["trace_id"] == "worker-trace-5678"
        assert '"trace_id": "worker-trace-5678"' in worker.log()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            samples = scrape(response.read().decode())
        assert value(samples, "gochat_celery_tasks_total", task="tasks.offline_push", state="SUCCESS") == 1
        # The worker's exporter also reads its broker's queues (multiprocess mode too).
        assert value(samples, "gochat_celery_queue_scrape_failed") == 0
        assert ("gochat_celery_queue_length", (("queue", "push"),)) in samples
    finally:
        worker.stop()


# The real broker fixture of the im-task tests (switches this process from eager to the broker).
from tasks.tests.conftest import celery_broker  # noqa: E402,F401
