"""The processor registry: names, routes to queues, the shared retry/ack policy."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from gochat_site.celery import app
from tasks.registry import UnknownTaskType, get_processor, processor, task_types


def test_every_processor_is_registered_under_its_task_type():
    assert {
        "tasks.large_group_fanout",
        "tasks.offline_push",
        "tasks.index_message",
        "tasks.archive_messages",
        "tasks.daily_stats",
        "tasks.sweep_presence",
    } <= set(task_types())
    assert get_processor("tasks.large_group_fanout").name == "tasks.large_group_fanout"


def test_unknown_task_type_is_an_error():
    with pytest.raises(UnknownTaskType):
        get_processor("tasks.no_such_thing")


def test_a_task_type_cannot_be_registered_twice():
    with pytest.raises(ImproperlyConfigured):
        processor("tasks.daily_stats")(lambda: None)


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("tasks.large_group_fanout", "fanout"),
        ("tasks.fanout_batch", "fanout"),
        ("tasks.fanout_sweep", "fanout"),
        ("tasks.offline_push", "push"),
        ("tasks.index_message", "index"),
        ("tasks.daily_stats", "default"),
        ("tasks.archive_messages", "default"),
        # Routed by name even where the task is not imported (send_task from elsewhere).
        ("tasks.some_future_task", "default"),
    ],
)
def test_tasks_are_routed_to_their_queue_by_name(name, queue):
    route = app.amqp.router.route({}, name)
    assert route["queue"].name == queue


@pytest.mark.parametrize("name", ["tasks.large_group_fanout", "tasks.fanout_batch", "tasks.fanout_sweep"])
def test_fanout_tasks_are_acked_late_and_retried_with_backoff(name):
    task = get_processor(name)
    assert task.acks_late and task.reject_on_worker_lost
    assert task.max_retries == 8 and task.retry_backoff and task.retry_jitter
    assert Exception in task.autoretry_for
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
