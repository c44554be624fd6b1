"""Offline push through the Celery task 'tasks.offline_push' against local fake APNs
(HTTP/2) and FCM (HTTP/1.1 + OAuth2) servers that check authentication like the real ones."""
from __future__ import annotations

import itertools
import json
import logging

import pytest
from django.utils import timezone

import tasks.processors.push  # noqa: F401 - registers tasks.offline_push with Celery
from gochat_site.tasks_client import enqueue_task
from messaging.models import Device
from messaging.presence import get_presence, reset_presence
from messaging.services import register_device, send_message, update_member_settings
from tasks.processors.push import retry_countdown
from tasks.push.base import parse_retry_after
from tasks.push.services import reset_providers
from tasks.push.stats import push_counts
from tasks.tests.fake_providers import FakeApns, FakeFcm, Reply

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh(settings):
    for name in ("APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC", "APNS_PRIVATE_KEY_PATH", "FCM_SERVICE_ACCOUNT_FILE"):
        setattr(settings, name, "")
    reset_providers()
    reset_presence()
    yield
    reset_providers()
    reset_presence()


@pytest.fixture
def apns(settings, tmp_path):
    server = FakeApns().start()
    key = tmp_path / "AuthKey.p8"
    key.write_text(server.private_key_pem)
    settings.APNS_KEY_ID, settings.APNS_TEAM_ID, settings.APNS_TOPIC = server.key_id, server.team_id, server.topic
    settings.APNS_PRIVATE_KEY_PATH = str(key)
    settings.APNS_URL = server.url
    yield server
    reset_providers()
    server.stop()


@pytest.fixture
def fcm(settings, tmp_path):
    server = FakeFcm().start()
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(server.service_account()))
    settings.FCM_SERVICE_ACCOUNT_FILE = str(account)
    settings.FCM_URL = server.url
    yield server
    reset_providers()
    server.stop()


@pytest.fixture
def push(django_capture_on_commit_callbacks):
    """push(sender, conversation, text, user_ids) -> the message, after the push task ran."""

    def run(sender, conversation, text: str, user_ids: list[int]):
        message = send_message(
            sender_id=sender.id, conversation_id=conversation.id, content=text, client_msg_id=f"p{next(_ids)}"
        ).message
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_task("tasks.offline_push", message_id=message.id, user_ids=user_ids)
        return message

    return run


def counts() -> tuple[int, int]:
    return push_counts(timezone.now().date())


def test_apns_notification_is_sent_over_http2_with_provider_token(alice, bob, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="a" * 64)
    before = counts()

    message = push(alice, single_chat, "Are you coming tonight?", [bob.id])

    assert len(apns.pushes) == 1
    request = apns.pushes[0]
    assert request.http_version == "2"
    assert apns.device_token(request) == "a" * 64
    assert request.headers["apns-topic"] == apns.topic
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-collapse-id"] == f"conv-{single_chat.id}"
    payload = request.json()
    assert payload["aps"]["alert"] == {"title": "Alice", "body": "Are you coming tonight?"}
    assert payload["message_id"] == str(message.id)
    assert payload["conversation_id"] == str(single_chat.id)
    assert counts() == (before[0] + 1, before[1])


def test_apns_provider_token_is_reused_between_pushes(alice, bob, carol, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="b1" * 32)
    register_device(user_id=bob.id, platform="apns", token="b2" * 32)

    push(alice, single_chat, "hello", [bob.id])

    assert len(apns.pushes) == 2
    assert apns.pushes[0].headers["authorization"] == apns.pushes[1].headers["authorization"]


def test_apns_410_removes_the_device(alice, bob, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="dead" * 16)
    apns.script(Reply(410, {"reason": "Unregistered", "timestamp": 1700000000000}))
    before = counts()

    push(alice, single_chat, "hello?", [bob.id])

    assert not Device.objects.filter(token="dead" * 16).exists()
    assert counts() == (before[0], before[1] + 1)


def test_apns_400_bad_device_token_removes_the_device(alice, bob, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="bad" * 20)
    apns.script(Reply(400, {"reason": "BadDeviceToken"}))

    push(alice, single_chat, "hello?", [bob.id])

    assert not Device.objects.filter(token="bad" * 20).exists()


def test_apns_other_400_keeps_the_device_and_counts_a_failure(alice, bob, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="keep" * 16)
    apns.script(Reply(400, {"reason": "PayloadTooLarge"}))
    before = counts()

    push(alice, single_chat, "hello?", [bob.id])

    assert Device.objects.filter(token="keep" * 16).exists()
    assert counts() == (before[0], before[1] + 1)


def test_fcm_notification_uses_an_exchanged_oauth_token(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-token-1")

    message = push(alice, single_chat, "ping from alice", [bob.id])
    push(alice, single_chat, "second", [bob.id])  # collapsed: same device and conversation

    assert fcm.token_requests == 1
    assert len(fcm.pushes) == 1
    request = fcm.pushes[0]
    assert request.path == f"/v1/projects/{fcm.project_id}/messages:send"
    assert request.headers["authorization"] == f"Bearer {fcm.issued_tokens[0]}"
    body = request.json()["message"]
    assert body["token"] == "fcm-token-1"
    assert body["notification"] == {"title": "Alice", "body": "ping from alice"}
    assert body["data"]["message_id"] == str(message.id)
    assert body["android"]["collapse_key"] == f"conv-{single_chat.id}"


def test_fcm_429_is_retried_until_it_succeeds(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-busy")
    fcm.script(
        Reply(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}}, {"Retry-After": "3"}),
        Reply(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "later"}}),
    )
    before = counts()

    push(alice, single_chat, "eventually", [bob.id])

    assert len(fcm.requests) == 3
    assert len(fcm.pushes) == 1
    assert Device.objects.filter(token="fcm-busy").exists()
    assert counts() == (before[0] + 1, before[1])


def test_retries_do_not_notify_a_device_twice(alice, bob, single_chat, apns, fcm, push):
    register_device(user_id=bob.id, platform="apns", token="c" * 64)
    register_device(user_id=bob.id, platform="fcm", token="fcm-flaky")
    fcm.script(Reply(500, {"error": {"code": 500, "status": "INTERNAL", "message": "oops"}}))

    push(alice, single_chat, "once only", [bob.id])

    assert len(apns.pushes) == 1
    assert len(fcm.pushes) == 1


def test_push_gives_up_after_max_retries_and_counts_the_failure(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-down")
    down = Reply(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "down"}})
    fcm.script(*[down] * (tasks.processors.push.MAX_RETRIES + 1))
    before = counts()

    push(alice, single_chat, "lost cause", [bob.id])

    assert len(fcm.requests) == tasks.processors.push.MAX_RETRIES + 1
    assert fcm.pushes == []
    assert counts() == (before[0], before[1] + 1)


def test_fcm_unregistered_removes_the_device(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-gone")
    fcm.script(FakeFcm.unregistered())

    push(alice, single_chat, "hello?", [bob.id])

    assert not Device.objects.filter(token="fcm-gone").exists()


def test_messages_within_the_collapse_window_become_one_notification(alice, bob, carol, single_chat, apns, push):
    from messaging.services import get_or_create_single_conversation

    register_device(user_id=bob.id, platform="apns", token="d" * 64)
    carol_bob, _ = get_or_create_single_conversation(user_id=carol.id, peer_id=bob.id)

    push(alice, single_chat, "one", [bob.id])
    push(alice, single_chat, "two", [bob.id])
    push(alice, single_chat, "three", [bob.id])
    push(carol, carol_bob, "other chat", [bob.id])

    assert [r.json()["aps"]["alert"]["body"] for r in apns.pushes] == ["one", "other chat"]


def test_without_a_collapse_window_every_message_is_pushed(settings, alice, bob, single_chat, apns, push):
    settings.PUSH_COLLAPSE_WINDOW_SECONDS = 0
    register_device(user_id=bob.id, platform="apns", token="e" * 64)

    push(alice, single_chat, "one", [bob.id])
    push(alice, single_chat, "two", [bob.id])

    assert [r.json()["aps"]["alert"]["body"] for r in apns.pushes] == ["one", "two"]


def test_muted_user_gets_nothing(alice, bob, single_chat, apns, fcm, push):
    register_device(user_id=bob.id, platform="apns", token="f" * 64)
    register_device(user_id=bob.id, platform="fcm", token="fcm-muted")
    update_member_settings(user_id=bob.id, conversation_id=single_chat.id, muted=True)

    push(alice, single_chat, "shh", [bob.id])

    assert apns.requests == [] and fcm.requests == []


def test_user_with_a_live_socket_gets_no_push(alice, bob, single_chat, apns, push):
    register_device(user_id=bob.id, platform="apns", token="g" * 64)
    get_presence().connect(bob.id, "conn-1", "gw-test")

    push(alice, single_chat, "you are online", [bob.id])

    assert apns.requests == []


def test_sender_and_unregistered_platforms_get_nothing(alice, bob, single_chat, apns, push):
    register_device(user_id=alice.id, platform="apns", token="h" * 64)
    register_device(user_id=bob.id, platform="fcm", token="fcm-no-provider")  # FCM not configured

    push(alice, single_chat, "me me me", [alice.id, bob.id])

    assert apns.requests == []


def test_group_notification_names_the_group_and_the_sender(alice, group_of, apns, push):
    group = group_of(2, name="Climbing")
    other = group.conversation.members.exclude(user_id=alice.id).get().user_id
    register_device(user_id=other, platform="apns", token="i" * 64)

    push(alice, group.conversation, "rope check at 6", [other])

    assert apns.pushes[0].json()["aps"]["alert"] == {"title": "Climbing", "body": "Alice: rope check at 6"}


def test_no_provider_configured_is_a_logged_no_op(alice, bob, single_chat, push, caplog):
    register_device(user_id=bob.id, platform="apns", token="j" * 64)
    before = counts()

    with caplog.at_level(logging.INFO, logger="tasks.push.services"):
        push(alice, single_chat, "nobody listens", [bob.id])

    assert [r.message for r in caplog.records if r.name == "tasks.push.services"] == ["push_disabled"]
    assert counts() == before
    assert Device.objects.filter(token="j" * 64).exists()


def test_retry_after_is_honoured_and_backoff_grows():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 1
    assert retry_countdown(0, 30.0) == 30.0
    assert all(1.0 <= retry_countdown(0, None) <= 2.0 for _ in range(20))
    assert all(1.0 <= retry_countdown(5, None) <= 64.0 for _ in range(20))


# --- FCM error codes: which tokens are dead (FCM HTTP v1 ErrorCode reference) ------------

def _fcm_error(status: int, code: str, message: str, *details: dict) -> Reply:
    return Reply(status, {"error": {"code": status, "status": code, "message": message, "details": list(details)}})


def _fcm_error_code(code: str) -> dict:
    return {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}


def _bad_request(field: str) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": f"Invalid value at '{field}'"}]}


SENDER_ID_MISMATCH = _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", _fcm_error_code("SENDER_ID_MISMATCH"))
# Google's documented answer for a malformed registration token.
INVALID_TOKEN = _fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                           _fcm_error_code("INVALID_ARGUMENT"))
TOKEN_FIELD_VIOLATION = _fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.token'",
                                   _bad_request("message.token"))
# Google's documented answer for a payload bug: a data value of the wrong type.
PAYLOAD_VIOLATION = _fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
                               _bad_request("message.data[0].value"))
MESSAGE_TOO_BIG = _fcm_error(400, "INVALID_ARGUMENT", "Message is too big", _fcm_error_code("INVALID_ARGUMENT"))
THIRD_PARTY = _fcm_error(401, "UNAUTHENTICATED", "APNs auth failed", _fcm_error_code("THIRD_PARTY_AUTH_ERROR"))


@pytest.mark.parametrize(
    "reply,deleted",
    [
        pytest.param(FakeFcm.unregistered(), True, id="UNREGISTERED"),
        pytest.param(SENDER_ID_MISMATCH, True, id="SENDER_ID_MISMATCH"),
        pytest.param(INVALID_TOKEN, True, id="INVALID_ARGUMENT-registration-token"),
        pytest.param(TOKEN_FIELD_VIOLATION, True, id="INVALID_ARGUMENT-message.token"),
        pytest.param(PAYLOAD_VIOLATION, False, id="INVALID_ARGUMENT-payload"),
        pytest.param(MESSAGE_TOO_BIG, False, id="INVALID_ARGUMENT-too-big"),
    ],
)
def test_fcm_dead_tokens_are_deleted_and_payload_errors_keep_the_device(
    alice, bob, single_chat, fcm, push, reply, deleted
):
    register_device(user_id=bob.id, platform="fcm", token="fcm-under-test")
    register_device(user_id=bob.id, platform="fcm", token="fcm-bystander")
    fcm.script(reply)  # the first device (lowest id) gets the error, the second succeeds
    before = counts()

    push(alice, single_chat, "are you there?", [bob.id])

    assert Device.objects.filter(token="fcm-under-test").exists() is not deleted
    assert Device.objects.filter(token="fcm-bystander").exists()
    assert [r.json()["message"]["token"] for r in fcm.pushes] == ["fcm-bystander"]
    assert counts() == (before[0] + 1, before[1] + 1)


def test_fcm_payload_error_is_logged_as_a_bug(alice, bob, single_chat, fcm, push, caplog):
    register_device(user_id=bob.id, platform="fcm", token="fcm-keep")
    fcm.script(PAYLOAD_VIOLATION)

    with caplog.at_level(logging.ERROR, logger="tasks.push.fcm"):
        push(alice, single_chat, "bad payload", [bob.id])

    [record] = [r for r in caplog.records if r.getMessage() == "push_fcm_payload_rejected"]
    assert record.violations == ["message.data[0].value"]
    assert Device.objects.filter(token="fcm-keep").exists()


def test_fcm_third_party_auth_error_keeps_the_device(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-ios")
    fcm.script(THIRD_PARTY, THIRD_PARTY, THIRD_PARTY, *[THIRD_PARTY] * tasks.processors.push.MAX_RETRIES)

    push(alice, single_chat, "to an iPhone", [bob.id])

    assert Device.objects.filter(token="fcm-ios").exists()


def test_fcm_refused_access_token_is_exchanged_again(alice, bob, single_chat, fcm, push):
    register_device(user_id=bob.id, platform="fcm", token="fcm-reauth")
    fcm.script(Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "expired"}}))

    push(alice, single_chat, "after expiry", [bob.id])

    assert fcm.token_requests == 2
    assert fcm.pushes[0].headers["authorization"] == f"Bearer {fcm.issued_tokens[1]}"
    assert Device.objects.filter(token="fcm-reauth").exists()
