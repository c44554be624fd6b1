"""The periodic jobs do what they say: archive and delete old messages, daily statistics,
presence sweep of dead gateways; each also as a management command."""
from __future__ import annotations

import gzip
import json
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from messaging.models import Conversation, Message
from messaging.services import send_message
from tasks import services
from tasks.models import DailyStats


def _send_many(conversation, sender, count: int, prefix: str) -> list[Message]:
    return [
        send_message(sender_id=sender.id, conversation_id=conversation.id, content=f"{prefix} {i}", client_msg_id=f"{prefix}-{i}").message
        for i in range(count)
    ]


def _age(messages: list[Message], days: int) -> None:
    Message.objects.filter(id__in=[m.id for m in messages]).update(created_at=timezone.now() - timedelta(days=days))


def _archived_lines(root: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted(root.glob("conversation-*/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            found.setdefault(path.parent.name, []).extend(json.loads(line) for line in fh)
    return found


@pytest.mark.django_db
def test_archive_moves_old_messages_to_gzip_jsonl_and_deletes_them(single_chat, group_of, alice, bob, tmp_path, settings):
    settings.MESSAGE_RETENTION_DAYS = 30
    old_single = _send_many(single_chat, alice, 5, "old")
    new_single = _send_many(single_chat, bob, 2, "new")
    group = group_of(3)
    old_group = _send_many(group.conversation, alice, 3, "gold")
    _age(old_single + old_group, days=31)

    result = services.archive_messages(archive_dir=str(tmp_path), batch_size=2)

    assert (result.conversations, result.messages) == (2, 8)
    lines = _archived_lines(tmp_path)
    assert [m["content"] for m in lines[f"conversation-{single_chat.id}"]] == [f"old {i}" for i in range(5)]
    assert [m["seq"] for m in lines[f"conversation-{group.conversation.id}"]] == [1, 2, 3]
    assert lines[f"conversation-{single_chat.id}"][0]["id"] == str(old_single[0].id)  # ids are strings
    remaining = list(Message.objects.filter(conversation=single_chat).order_by("seq").values_list("content", flat=True))
    assert remaining == ["new 0", "new 1"]
    assert not Message.objects.filter(conversation=group.conversation).exists()
    # Sequence numbering goes on after the archive: no seq is ever reused.
    assert Conversation.objects.get(id=single_chat.id).last_seq == 7
    assert send_message(sender_id=alice.id, conversation_id=single_chat.id, content="later", client_msg_id="later").message.seq == 8
    assert {m.id for m in new_single} <= set(Message.objects.values_list("id", flat=True))
    # Nothing old is left: a second run archives nothing and writes no file.
    assert services.archive_messages(archive_dir=str(tmp_path)).messages == 0
    assert len(list(tmp_path.glob("conversation-*/*.jsonl.gz"))) == 2
    assert not list(tmp_path.glob("conversation-*/.archive-*"))  # no temp file left


@pytest.mark.django_db
def test_archive_is_off_with_zero_retention(single_chat, alice, tmp_path, settings):
    settings.MESSAGE_RETENTION_DAYS = 0
    _age(_send_many(single_chat, alice, 2, "old"), days=999)
    out = StringIO()
    call_command("archive_messages", "--dir", str(tmp_path), stdout=out)
    assert "retention is off" in out.getvalue()
    assert Message.objects.count() == 2
    assert not list(tmp_path.iterdir())


@pytest.mark.django_db
def test_archive_command_and_task(single_chat, alice, tmp_path, settings):
    settings.MESSAGE_RETENTION_DAYS = 7
    settings.ARCHIVE_DIR = str(tmp_path)
    _age(_send_many(single_chat, alice, 3, "old"), days=8)
    out = StringIO()
    call_command("archive_messages", stdout=out)
    assert "archived 3 message(s) of 1 conversation(s)" in out.getvalue()
    _age(_send_many(single_chat, alice, 1, "older"), days=8)
    from tasks.processors.maintenance import archive_messages

    assert archive_messages.delay().get() == {"conversations": 1, "messages": 1}
    with pytest.raises(CommandError):
        call_command("archive_messages", "--days", "-1")


@pytest.mark.django_db
def test_daily_stats_counts_one_day(single_chat, group_of, alice, bob):
    yesterday = (timezone.now() - timedelta(days=1)).date()
    _age(_send_many(single_chat, alice, 3, "a") + _send_many(single_chat, bob, 2, "b"), days=1)
    _age(_send_many(single_chat, alice, 4, "old"), days=3)  # another day
    _send_many(single_chat, bob, 1, "today")
    from groups.models import Group

    Group.objects.filter(id=group_of(3).id).update(created_at=timezone.now() - timedelta(days=2))
    group_of(3, name="made today")  # not counted for yesterday
    # The counters live in the cache, which outlives a test on Redis: start from zero.
    from tasks.push import stats as push_stats

    push_stats.forget(yesterday)
    push_stats.record(sent=5, failed=1, day=yesterday)
    push_stats.record(sent=2, day=yesterday)

    stats = services.compute_daily_stats()

    assert stats.day == yesterday
    assert (stats.messages, stats.active_users, stats.groups) == (5, 2, 1)
    assert (stats.push_sent, stats.push_failed) == (7, 1)
    # Running it again updates the same row.
    _age(_send_many(single_chat, alice, 1, "late"), days=1)
    services.compute_daily_stats()
    assert DailyStats.objects.get(day=yesterday).messages == 6
    assert DailyStats.objects.count() == 1


@pytest.mark.django_db
def test_daily_stats_command_and_admin(admin_client, single_chat, alice):
    out = StringIO()
    call_command("daily_stats", "--day", "2026-01-02", stdout=out)
    assert "2026-01-02: messages=0" in out.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("daily_stats", "--day", "yesterday")
    page = admin_client.get("/admin/tasks/dailystats/")
    assert page.status_code == 200
    assert b"Jan. 2, 2026" in page.content


def _sweep_case(presence, settings) -> int:
    settings.PRESENCE_TTL_SECONDS = 1
    user_id = 424242
    presence.connect(user_id, "conn-dead", "gw-dead")
    presence.connect(user_id, "conn-live", "gw-live")
    # gw-dead stops heartbeating; gw-live keeps going, which keeps the user's hash alive.
    for _ in range(2):
        time.sleep(0.6)
        presence.heartbeat(user_id, "conn-live", "gw-live")
    return user_id


@pytest.mark.django_db
def test_sweep_presence_removes_dead_gateway_entries(memory_bus, settings):
    from messaging.presence import get_presence

    presence = get_presence()
    user_id = _sweep_case(presence, settings)
    out = StringIO()
    call_command("sweep_presence", stdout=out)
    assert "gw-dead: 1 entry removed" in out.getvalue()
    assert presence.lookup([user_id]) == {user_id: {"conn-live": "gw-live"}}
    assert services.sweep_presence() == {}


@pytest.mark.redis
@pytest.mark.django_db
def test_sweep_presence_on_redis(redis_presence, settings):
    import redis

    from messaging.presence.redis import session_key

    user_id = _sweep_case(redis_presence, settings)
    from tasks.processors.maintenance import sweep_presence

    assert sweep_presence.delay().get() == {"gw-dead": 1}
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert client.hgetall(session_key(user_id)) == {"conn-live": "gw-live"}
    assert redis_presence.dead_gateways() == []
