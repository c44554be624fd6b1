"""Metrics the operator's dashboard reads from the task roles: the broker's queue
lengths (gochat_celery_queue_length, served by the worker) and push outcomes per device
(gochat_push_outcomes_total)."""
from __future__ import annotations

import pytest

from gochat_site import metrics
from messaging.services import register_device
from tasks.tests.test_push import _fresh, apns, push  # noqa: F401 - fixtures
from tasks.tests.fake_providers import Reply


def _lengths(collector) -> tuple[dict[str, float], float]:
    families = {f.name: f for f in collector.collect()}
    lengths = {s.labels["queue"]: s.value for s in families["gochat_celery_queue_length"].samples}
    failed = families["gochat_celery_queue_scrape_failed"].samples[0].value
    return lengths, failed


@pytest.mark.redis
def test_queue_length_is_read_from_the_redis_broker(celery_broker):
    from gochat_site.celery import QUEUES, app

    collector = metrics.CeleryQueueCollector()
    lengths, failed = _lengths(collector)
    assert failed == 0 and set(lengths) == set(QUEUES) and lengths["push"] == 0
    for n in range(3):
        app.send_task("tasks.offline_push", kwargs={"message_id": n, "user_ids": []}, queue="push")
    app.send_task("tasks.index_message", kwargs={"message_id": 1}, queue="index")
    lengths, failed = _lengths(collector)
    assert (lengths["push"], lengths["index"], lengths["fanout"]) == (3, 1, 0)


def test_queue_length_scrape_survives_a_broker_that_is_down():
    from celery import Celery

    collector = metrics.CeleryQueueCollector(app=Celery("down", broker="redis://127.0.0.1:1/0"))
    lengths, failed = _lengths(collector)
    assert failed == 1 and lengths == {}


def _outcome(outcome: str) -> float:
    return metrics.PUSH_OUTCOMES.labels(platform="apns", outcome=outcome)._value.get()


@pytest.mark.django_db
def test_push_outcomes_sent_and_collapsed(alice, bob, single_chat, apns, push):  # noqa: F811
    before = {o: _outcome(o) for o in ("sent", "collapsed")}
    register_device(user_id=bob.id, platform="apns", token="a" * 64)
    push(alice, single_chat, "one", [bob.id])
    push(alice, single_chat, "two", [bob.id])  # inside the collapse window
    assert _outcome("sent") - before["sent"] == 1
    assert _outcome("collapsed") - before["collapsed"] == 1


@pytest.mark.django_db
def test_push_outcomes_invalid_token_and_failed(alice, bob, single_chat, apns, push):  # noqa: F811
    before = {o: _outcome(o) for o in ("invalid_token", "failed")}
    register_device(user_id=bob.id, platform="apns", token="dead" * 16)
    apns.script(Reply(410, {"reason": "Unregistered", "timestamp": 1700000000000}))
    push(alice, single_chat, "hello?", [bob.id])
    assert _outcome("invalid_token") - before["invalid_token"] == 1
    register_device(user_id=bob.id, platform="apns", token="keep" * 16)
    apns.script(Reply(400, {"reason": "PayloadTooLarge"}))
    push(alice, single_chat, "again", [bob.id])
    assert _outcome("failed") - before["failed"] == 1
