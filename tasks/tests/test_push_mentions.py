"""Mute silences a conversation, not a mention: a muted member who is @mentioned still gets
the offline push, through routing and the push task, against the fake APNs server."""
from __future__ import annotations

import pytest

import tasks.processors.push  # noqa: F401 - registers tasks.offline_push with Celery
from groups.services import create_group
from messaging.routing import route_message
from messaging.services import register_device, send_message, update_member_settings
from tasks.tests.test_push import _fresh, apns  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_a_muted_member_is_pushed_when_mentioned_and_not_otherwise(
    make_user, alice, apns, django_capture_on_commit_callbacks  # noqa: F811
):
    dave, erin = make_user("dave"), make_user("erin")
    conversation = create_group(owner_id=alice.id, name="team", member_ids=[dave.id, erin.id]).conversation
    for user, token in ((dave, "d" * 64), (erin, "e" * 64)):
        register_device(user_id=user.id, platform="apns", token=token)
        update_member_settings(user_id=user.id, conversation_id=conversation.id, muted=True)

    # Both offline and muted; only dave is named. Routing enqueues the push (eager here).
    with django_capture_on_commit_callbacks(execute=True):
        message = send_message(
            sender_id=alice.id, conversation_id=conversation.id, content="@dave the build is red", client_msg_id="m1"
        ).message
        route_message(message, flush=True)
    assert [apns.device_token(r) for r in apns.pushes] == ["d" * 64]
    assert apns.pushes[0].json()["aps"]["alert"]["body"].endswith("@dave the build is red")

    with django_capture_on_commit_callbacks(execute=True):
        message = send_message(
            sender_id=alice.id, conversation_id=conversation.id, content="nobody named", client_msg_id="m2"
        ).message
        route_message(message, flush=True)
    assert len(apns.pushes) == 1
