"""REST: POST messages/send, GET messages/history, GET messages/unread."""
from __future__ import annotations

import pytest
from django.test import override_settings

SEND = "/api/v1/messages/send"
HISTORY = "/api/v1/messages/history"
UNREAD = "/api/v1/messages/unread"


def send(client, conversation, content="hi", client_msg_id=None, **extra):
    send.counter += 1
    body = {
        "conversation_id": str(conversation.id),
        "client_msg_id": client_msg_id or f"c-{send.counter}",
        "content": content,
        **extra,
    }
    return client.post(SEND, body, format="json")


send.counter = 0


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body


# --- send ------------------------------------------------------------------------------

@pytest.mark.django_db
class TestSend:
    def test_send_returns_the_stored_message(self, client_for, alice, single_chat):
        r = send(client_for(alice), single_chat, content="hello bob", client_msg_id="m-1")
        assert r.status_code == 201
        message = r.json()["message"]
        assert message["content"] == "hello bob"
        assert message["seq"] == 1
        assert message["client_msg_id"] == "m-1"
        assert message["message_type"] == "text"
        assert message["sender_id"] == str(alice.id)
        assert message["sender_name"] == "Alice"
        assert message["conversation_id"] == str(single_chat.id)
        assert isinstance(message["id"], str) and message["id"].isdigit()

    def test_seq_increases_per_message(self, client_for, alice, bob, single_chat):
        seqs = [send(client_for(u), single_chat).json()["message"]["seq"] for u in (alice, bob, alice)]
        assert seqs == [1, 2, 3]

    def test_client_msg_id_reused_in_another_conversation_stores_a_new_message(self, client_for, alice, carol, single_chat):
        # Issue 8: this answered 200 with the OTHER conversation's message and stored nothing.
        from messaging.services import get_or_create_single_conversation

        other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
        client = client_for(alice)
        first = send(client, single_chat, content="to bob", client_msg_id="reused-id")
        second = send(client, other, content="to carol", client_msg_id="reused-id")
        assert first.status_code == 201 and second.status_code == 201, second.content
        message = second.json()["message"]
        assert (message["conversation_id"], message["content"], message["seq"]) == (str(other.id), "to carol", 1)
        history = client.get(HISTORY, {"conversation_id": str(other.id)}).json()
        assert [m["content"] for m in history["messages"]] == ["to carol"]

    def test_repeat_of_client_msg_id_returns_first_message_with_200(self, client_for, alice, single_chat):
        client = client_for(alice)
        first = send(client, single_chat, content="once", client_msg_id="dup-1")
        again = send(client, single_chat, content="once", client_msg_id="dup-1")
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.json()["message"]["id"] == first.json()["message"]["id"]
        assert again.json()["message"]["seq"] == first.json()["message"]["seq"]
        history = client.get(HISTORY, {"conversation_id": single_chat.id}).json()
        assert [m["content"] for m in history["messages"]] == ["once"]

    def test_message_type_is_kept(self, client_for, alice, single_chat):
        r = send(client_for(alice), single_chat, content="https://x/y.png", message_type="image")
        assert r.status_code == 201
        assert r.json()["message"]["message_type"] == "image"

    def test_send_to_group_conversation(self, client_for, alice, group_of):
        group = group_of(3)
        r = send(client_for(alice), group.conversation, content="hi team")
        assert r.status_code == 201
        assert r.json()["message"]["conversation_id"] == str(group.conversation.id)

    def test_non_member_is_forbidden(self, client_for, carol, single_chat):
        r = send(client_for(carol), single_chat)
        assert_error(r, 403, 1005)

    def test_unknown_conversation_is_not_found(self, client_for, alice, single_chat):
        r = client_for(alice).post(
            SEND, {"conversation_id": "123456789", "client_msg_id": "x", "content": "hi"}, format="json"
        )
        assert_error(r, 404, 1003)

    @pytest.mark.parametrize("missing", ["conversation_id", "client_msg_id", "content"])
    def test_missing_field(self, client_for, alice, single_chat, missing):
        body = {"conversation_id": str(single_chat.id), "client_msg_id": "x", "content": "hi"}
        del body[missing]
        r = client_for(alice).post(SEND, body, format="json")
        assert missing in assert_error(r, 400, 1001)["details"]

    @pytest.mark.parametrize(
        "field,value",
        [
            ("conversation_id", "abc"),
            ("conversation_id", True),
            ("conversation_id", -5),
            ("content", 123),
            ("content", ["a"]),
            ("content", ""),
            ("client_msg_id", {"a": 1}),
            ("client_msg_id", "x" * 65),
            ("message_type", "system"),
            ("message_type", "spaceship"),
        ],
    )
    def test_wrong_type_or_value(self, client_for, alice, single_chat, field, value):
        body = {"conversation_id": str(single_chat.id), "client_msg_id": "x", "content": "hi", field: value}
        r = client_for(alice).post(SEND, body, format="json")
        assert field in assert_error(r, 400, 1001)["details"]

    def test_content_over_the_limit(self, client_for, alice, single_chat, settings):
        settings.MESSAGE_MAX_CONTENT_LENGTH = 10
        client = client_for(alice)
        assert send(client, single_chat, content="x" * 10).status_code == 201
        r = send(client, single_chat, content="x" * 11)
        assert "content" in assert_error(r, 400, 1001)["details"]
        assert client.get(HISTORY, {"conversation_id": single_chat.id}).json()["messages"][-1]["content"] == "x" * 10

    def test_malformed_json(self, client_for, alice):
        r = client_for(alice).post(SEND, "{not json", content_type="application/json")
        assert_error(r, 400, 1001)

    def test_requires_token(self, api_client, single_chat):
        r = send(api_client, single_chat)
        assert_error(r, 401, 1002)

    def test_throttled_with_code_1006(self, client_for, alice, single_chat, settings):
        rest = dict(settings.REST_FRAMEWORK)
        rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "send": "2/min"}
        with override_settings(REST_FRAMEWORK=rest):
            client = client_for(alice)
            assert send(client, single_chat).status_code == 201
            assert send(client, single_chat).status_code == 201
            body = assert_error(send(client, single_chat), 429, 1006)
            assert body["details"]["retry_after"] > 0


# --- history ---------------------------------------------------------------------------

@pytest.mark.django_db
class TestHistory:
    @pytest.fixture
    def ten(self, client_for, alice, single_chat):
        client = client_for(alice)
        for i in range(1, 11):
            assert send(client, single_chat, content=f"m{i}").status_code == 201
        return client

    def contents(self, response):
        assert response.status_code == 200, response.content
        body = response.json()
        return [m["content"] for m in body["messages"]], body["has_more"]

    def test_newest_page_ascending(self, ten, single_chat):
        assert self.contents(ten.get(HISTORY, {"conversation_id": single_chat.id, "limit": 3})) == (["m8", "m9", "m10"], True)

    def test_before_seq_scrolls_back(self, ten, single_chat):
        got = ten.get(HISTORY, {"conversation_id": single_chat.id, "before_seq": 4, "limit": 5})
        assert self.contents(got) == (["m1", "m2", "m3"], False)

    def test_after_seq_syncs_forward(self, ten, single_chat):
        got = ten.get(HISTORY, {"conversation_id": single_chat.id, "after_seq": 7, "limit": 2})
        assert self.contents(got) == (["m8", "m9"], True)
        got = ten.get(HISTORY, {"conversation_id": single_chat.id, "after_seq": 9})
        assert self.contents(got) == (["m10"], False)

    def test_peer_reads_the_same_history(self, ten, client_for, bob, single_chat):
        got = client_for(bob).get(HISTORY, {"conversation_id": single_chat.id})
        contents, has_more = self.contents(got)
        assert contents == [f"m{i}" for i in range(1, 11)] and has_more is False
        seqs = [m["seq"] for m in got.json()["messages"]]
        assert seqs == list(range(1, 11))

    def test_limit_is_capped(self, ten, single_chat, settings):
        settings.HISTORY_MAX_LIMIT = 4
        contents, has_more = self.contents(ten.get(HISTORY, {"conversation_id": single_chat.id, "limit": 1000}))
        assert contents == ["m7", "m8", "m9", "m10"] and has_more

    def test_non_member_is_forbidden(self, client_for, carol, single_chat):
        assert_error(client_for(carol).get(HISTORY, {"conversation_id": single_chat.id}), 403, 1005)

    def test_unknown_conversation(self, client_for, alice):
        assert_error(client_for(alice).get(HISTORY, {"conversation_id": "99999"}), 404, 1003)

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"conversation_id": "abc"},
            {"before_seq": "x"},
            {"before_seq": "0"},
            {"after_seq": "-1"},
            {"limit": "0"},
            {"limit": "many"},
        ],
    )
    def test_bad_params(self, client_for, alice, single_chat, params):
        query = {"conversation_id": single_chat.id, **params} if params and "conversation_id" not in params else params
        assert_error(client_for(alice).get(HISTORY, query), 400, 1001)

    def test_requires_token(self, api_client, single_chat):
        assert_error(api_client.get(HISTORY, {"conversation_id": single_chat.id}), 401, 1002)


# --- unread ----------------------------------------------------------------------------

@pytest.mark.django_db
class TestUnread:
    def test_rises_with_messages_and_clears_with_read(self, client_for, alice, bob, single_chat, group_of):
        group = group_of(2)  # alice + one other
        other = group.members.exclude(user_id=alice.id).get().user
        a, b = client_for(alice), client_for(bob)
        assert b.get(UNREAD).json() == {"total": 0, "conversations": []}

        for _ in range(3):
            send(a, single_chat)
        body = b.get(UNREAD).json()
        assert body == {
            "total": 3,
            "conversations": [
                {"conversation_id": str(single_chat.id), "unread": 3, "last_read_seq": 0, "last_seq": 3}
            ],
        }
        # The sender has nothing unread in what they wrote.
        assert a.get(UNREAD).json()["total"] == 0

        send(client_for(other), group.conversation)
        send(client_for(other), group.conversation)
        body = a.get(UNREAD).json()
        assert body["total"] == 2
        assert body["conversations"][0]["conversation_id"] == str(group.conversation.id)

        r = b.post(f"/api/v1/conversations/{single_chat.id}/read", {"seq": 2}, format="json")
        assert r.json()["unread"] == 1
        assert b.get(UNREAD).json()["total"] == 1
        b.post(f"/api/v1/conversations/{single_chat.id}/read", {"seq": 3}, format="json")
        assert b.get(UNREAD).json() == {"total": 0, "conversations": []}

    def test_requires_token(self, api_client):
        assert_error(api_client.get(UNREAD), 401, 1002)
