"""A worker on RabbitMQ (the other supported broker) runs the same tasks as on Redis,
and one worker serves several queues."""
from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from messaging.bus import downstream_topic, ensure_topics
from messaging.services import send_message
from tasks.models import DailyStats
from tasks.processors.fanout import DONE, checkpoint_key, delivered_key
from tasks.tests.conftest import drain, envelopes


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_on_rabbitmq_runs_fanout_and_maintenance(kafka_bus, redis_presence, rabbitmq_broker, bulk_group, alice):
    from gochat_site.tasks_client import enqueue_task
    from tests.harness.celery_worker import start_worker

    group, member_ids = bulk_group(1000)
    online = {u: ("gw-a" if i % 2 else "gw-b") for i, u in enumerate(member_ids) if i % 3 == 0}
    for user_id, gateway in online.items():
        redis_presence.connect(user_id, f"conn-{user_id}", gateway)
    ensure_topics([downstream_topic("gw-a"), downstream_topic("gw-b")], 1)
    message = send_message(sender_id=alice.id, conversation_id=group.conversation.id, content="via rabbit", client_msg_id="r1").message

    worker = start_worker(queues="fanout,default", broker_url=rabbitmq_broker)
    try:
        enqueue_task("tasks.large_group_fanout", message_id=message.id)
        enqueue_task("tasks.daily_stats", day="2026-10-10")
        deadline = time.monotonic() + 60
        # The planner is done once it queued the batches; the fan-out once the sweep saw
        # every batch done (the worker must not stop before that).
        while time.monotonic() < deadline and not (
            cache.get(delivered_key(message.id)) and DailyStats.objects.filter(day="2026-10-10").exists()
        ):
            time.sleep(0.1)
        log = worker.log()
    finally:
        worker.stop()
    assert cache.get(checkpoint_key(message.id)) == DONE, log[-4000:]
    assert cache.get(delivered_key(message.id)), log[-4000:]
    assert DailyStats.objects.filter(day="2026-10-10").exists(), log[-4000:]
    records = drain([downstream_topic("gw-a"), downstream_topic("gw-b")], expect=lambda r: len(r) >= 10)
    delivered = sorted(u for _, e in envelopes(records) for u in e.recipient_user_ids)
    assert delivered == sorted(online)
    assert len(records) == 2 * 5  # two gateways x five batches of 200
