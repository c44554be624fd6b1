"""Dead letters of Celery: a task that runs out of retries leaves a FailedTask row, which
an operator can send again from the admin."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.services import send_message
from tasks.models import FailedTask


def _old_message(conversation, sender) -> Message:
    message = send_message(sender_id=sender.id, conversation_id=conversation.id, content="old", client_msg_id="old-1").message
    Message.objects.filter(id=message.id).update(created_at=timezone.now() - timedelta(days=40))
    return message


def _unwritable_dir(tmp_path) -> str:
    # A directory path below a regular file: every write fails with an OSError,
    # the kind of error (disk, mount) a retry may fix, so the task is retried.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    return str(blocker / "archive")


@pytest.mark.django_db
def test_failed_task_recorded_after_retries_and_retried_from_admin(admin_client, single_chat, alice, tmp_path, settings):
    from tasks.processors.maintenance import archive_messages

    settings.MESSAGE_RETENTION_DAYS = 30
    settings.ARCHIVE_DIR = _unwritable_dir(tmp_path)
    _old_message(single_chat, alice)

    result = archive_messages.delay()

    assert result.failed()
    failed = FailedTask.objects.get()
    assert failed.name == "tasks.archive_messages"
    assert failed.attempts == archive_messages.max_retries + 1 == 4
    assert "NotADirectoryError" in failed.error and "Traceback" in failed.traceback
    assert Message.objects.count() == 1  # nothing deleted that was not archived

    page = admin_client.get("/admin/tasks/failedtask/")
    assert page.status_code == 200 and b"tasks.archive_messages" in page.content

    # The operator fixes the disk and retries the task from the admin.
    settings.ARCHIVE_DIR = str(tmp_path / "archive")
    response = admin_client.post(
        "/admin/tasks/failedtask/", {"action": "retry_selected", "_selected_action": [failed.id]}, follow=True
    )
    assert response.status_code == 200
    assert b"1 task(s) sent again." in response.content
    failed.refresh_from_db()
    assert failed.retried_at is not None
    assert Message.objects.count() == 0
    assert len(list((tmp_path / "archive").glob("conversation-*/*.jsonl.gz"))) == 1


@pytest.mark.django_db
def test_permanent_error_is_recorded_at_once(memory_bus):
    from tasks.processors.maintenance import daily_stats

    assert daily_stats.delay(day="not-a-date").failed()
    failed = FailedTask.objects.get(name="tasks.daily_stats")
    assert failed.attempts == 1
    assert failed.kwargs == {"day": "not-a-date"}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_records_failed_task_after_retries(celery_broker, single_chat, alice, tmp_path):
    from gochat_site.tasks_client import enqueue_task
    from tests.harness.celery_worker import start_worker

    _old_message(single_chat, alice)
    worker = start_worker(queues="default", MESSAGE_RETENTION_DAYS=30, ARCHIVE_DIR=_unwritable_dir(tmp_path))
    try:
        enqueue_task("tasks.archive_messages")
        deadline = time.monotonic() + 60
        while not FailedTask.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = worker.log()
    finally:
        worker.stop()
    failed = FailedTask.objects.filter(name="tasks.archive_messages").first()
    assert failed is not None, log[-4000:]
    assert failed.attempts == 4
    retries = [line for line in log.splitlines() if "Retry in" in line]
    assert len(retries) == 3, retries  # three retries, with backoff, before giving up
    assert FailedTask.objects.count() == 1
    assert Message.objects.count() == 1
