"""REST: conversations list, create, detail, settings update and read marker."""
from __future__ import annotations

import pytest

from messaging.services import send_message

LIST = "/api/v1/conversations"
CREATE = "/api/v1/conversations/create"


def detail(conversation_id) -> str:
    return f"/api/v1/conversations/{conversation_id}"


def read_url(conversation_id) -> str:
    return f"/api/v1/conversations/{conversation_id}/read"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"] and isinstance(body["details"], dict)
    return body


_n = {"i": 0}


def say(user, conversation, content="hi"):
    _n["i"] += 1
    return send_message(sender_id=user.id, conversation_id=conversation.id, content=content, client_msg_id=f"t-{_n['i']}").message


@pytest.mark.django_db
class TestList:
    def test_shape_of_single_and_group(self, client_for, alice, bob, single_chat, group_of):
        group = group_of(3, name="Ops")
        message = say(bob, single_chat, "hello alice")
        r = client_for(alice).get(LIST)
        assert r.status_code == 200
        by_id = {c["id"]: c for c in r.json()}
        single = by_id[str(single_chat.id)]
        assert single["type"] == "single"
        assert single["title"] == "Bob"
        assert single["peer"] == {"id": str(bob.id), "username": "bob", "nickname": "Bob", "avatar": "", "status": ""}
        assert single["group"] is None
        assert (single["last_seq"], single["last_read_seq"], single["unread"]) == (1, 0, 1)
        assert (single["muted"], single["pinned"]) == (False, False)
        assert single["last_message"]["id"] == str(message.id)
        assert single["last_message"]["seq"] == 1
        assert single["last_message"]["sender_id"] == str(bob.id)
        assert single["last_message"]["preview"] == "hello alice"
        assert single["last_message"]["created_at"]
        assert single["updated_at"]

        grp = by_id[str(group.conversation.id)]
        assert grp["type"] == "group"
        assert grp["title"] == "Ops"
        assert grp["group"] == {"id": str(group.id), "name": "Ops"}
        assert grp["peer"] is None
        assert grp["last_message"] is None
        assert grp["unread"] == 0

    def test_newest_first(self, client_for, alice, bob, carol, make_user, single_chat, group_of):
        group = group_of(2)
        with_carol = client_for(alice).post(CREATE, {"user_id": str(carol.id)}, format="json").json()["id"]
        say(bob, single_chat)
        say(alice, group.conversation)
        ids = [c["id"] for c in client_for(alice).get(LIST).json()]
        # With messages: most recent message first; without: after them.
        assert ids == [str(group.conversation.id), str(single_chat.id), with_carol]
        say(bob, single_chat)
        ids = [c["id"] for c in client_for(alice).get(LIST).json()]
        assert ids[:2] == [str(single_chat.id), str(group.conversation.id)]

    def test_only_my_conversations(self, client_for, carol, single_chat):
        assert client_for(carol).get(LIST).json() == []

    def test_requires_token(self, api_client):
        assert_error(api_client.get(LIST), 401, 1002)


@pytest.mark.django_db
class TestCreate:
    def test_by_user_id_then_existing(self, client_for, alice, bob):
        first = client_for(alice).post(CREATE, {"user_id": str(bob.id)}, format="json")
        assert first.status_code == 201
        assert first.json()["type"] == "single"
        assert first.json()["peer"]["id"] == str(bob.id)
        # Same pair from the other side: the same conversation.
        again = client_for(bob).post(CREATE, {"username": "alice"}, format="json")
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["peer"]["id"] == str(alice.id)

    def test_integer_user_id_accepted(self, client_for, alice, bob):
        assert client_for(alice).post(CREATE, {"user_id": bob.id}, format="json").status_code == 201

    def test_unknown_user(self, client_for, alice):
        assert_error(client_for(alice).post(CREATE, {"user_id": "424242"}, format="json"), 404, 1003)
        assert_error(client_for(alice).post(CREATE, {"username": "nobody"}, format="json"), 404, 1003)

    def test_inactive_user_not_found(self, client_for, alice, make_user):
        gone = make_user("gone", is_active=False)
        assert_error(client_for(alice).post(CREATE, {"user_id": str(gone.id)}, format="json"), 404, 1003)

    @pytest.mark.parametrize("body", [{}, {"user_id": "x"}, {"user_id": True}, {"username": 5}])
    def test_bad_input(self, client_for, alice, body):
        assert_error(client_for(alice).post(CREATE, body, format="json"), 400, 1001)

    def test_both_identifiers(self, client_for, alice, bob):
        r = client_for(alice).post(CREATE, {"user_id": str(bob.id), "username": "bob"}, format="json")
        assert_error(r, 400, 1001)

    def test_with_myself(self, client_for, alice):
        # Well-formed but refused by the rules: 403 (the schema cannot say "not yourself").
        assert_error(client_for(alice).post(CREATE, {"user_id": str(alice.id)}, format="json"), 403, 1005)
        assert_error(client_for(alice).post(CREATE, {"username": "alice"}, format="json"), 403, 1005)

    def test_requires_token(self, api_client, bob):
        assert_error(api_client.post(CREATE, {"user_id": str(bob.id)}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestDetailAndUpdate:
    def test_get(self, client_for, bob, single_chat):
        r = client_for(bob).get(detail(single_chat.id))
        assert r.status_code == 200
        assert r.json()["id"] == str(single_chat.id)
        assert r.json()["title"] == "Alice"

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_update_mute_and_pin_are_per_member(self, client_for, alice, bob, single_chat, method):
        r = getattr(client_for(alice), method)(detail(single_chat.id), {"muted": True}, format="json")
        assert r.status_code == 200
        assert (r.json()["muted"], r.json()["pinned"]) == (True, False)
        r = getattr(client_for(alice), method)(detail(single_chat.id), {"pinned": True}, format="json")
        assert (r.json()["muted"], r.json()["pinned"]) == (True, True)
        assert client_for(alice).get(detail(single_chat.id)).json()["muted"] is True
        # Bob's view of the same conversation is untouched.
        assert client_for(bob).get(detail(single_chat.id)).json()["muted"] is False

    def test_update_bad_value(self, client_for, alice, single_chat):
        r = client_for(alice).patch(detail(single_chat.id), {"muted": "perhaps"}, format="json")
        assert "muted" in assert_error(r, 400, 1001)["details"]

    @pytest.mark.parametrize("method", ["get", "put", "patch"])
    def test_non_member_forbidden(self, client_for, carol, single_chat, method):
        r = getattr(client_for(carol), method)(detail(single_chat.id), {"muted": True}, format="json")
        assert_error(r, 403, 1005)

    @pytest.mark.parametrize("method", ["get", "patch"])
    def test_unknown_conversation(self, client_for, alice, method):
        assert_error(getattr(client_for(alice), method)(detail("987654321"), {}, format="json"), 404, 1003)

    # A malformed path id is an unknown URL (gochat_site.id_params.IdConverter), never
    # an overflow in the query (SQLite raised OverflowError for 2**63).
    @pytest.mark.parametrize("bad", ["abc", "0", "-5", str(2**63), str(2**64), "\u00b3", "\u0663"])
    def test_malformed_id(self, client_for, alice, bad):
        assert_error(client_for(alice).get(detail(bad)), 404, 1003)

    def test_left_group_member_loses_access(self, client_for, alice, group_of):
        from groups.services import leave_group

        group = group_of(3)
        leaver = group.members.exclude(user_id=alice.id).first().user
        assert client_for(leaver).get(detail(group.conversation.id)).status_code == 200
        leave_group(group_id=group.id, user_id=leaver.id)
        assert_error(client_for(leaver).get(detail(group.conversation.id)), 403, 1005)

    def test_requires_token(self, api_client, single_chat):
        assert_error(api_client.get(detail(single_chat.id)), 401, 1002)
        assert_error(api_client.patch(detail(single_chat.id), {"muted": True}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestRead:
    def test_read_moves_forward_only_and_caps_at_last_seq(self, client_for, alice, bob, single_chat):
        for _ in range(5):
            say(alice, single_chat)
        b = client_for(bob)
        r = b.post(read_url(single_chat.id), {"seq": 3}, format="json")
        assert r.status_code == 200
        assert r.json() == {"conversation_id": str(single_chat.id), "last_read_seq": 3, "unread": 2}
        # An older read marker (another device lagging) never moves it back.
        assert b.post(read_url(single_chat.id), {"seq": 1}, format="json").json()["last_read_seq"] == 3
        # Beyond the end: capped at last_seq.
        assert b.post(read_url(single_chat.id), {"seq": 99}, format="json").json() == {
            "conversation_id": str(single_chat.id),
            "last_read_seq": 5,
            "unread": 0,
        }
        assert b.get(detail(single_chat.id)).json()["unread"] == 0

    @pytest.mark.parametrize("body", [{}, {"seq": -1}, {"seq": "three"}, {"seq": None}, {"seq": 1.5}])
    def test_bad_seq(self, client_for, alice, single_chat, body):
        r = client_for(alice).post(read_url(single_chat.id), body, format="json")
        assert "seq" in assert_error(r, 400, 1001)["details"]

    def test_non_member_forbidden(self, client_for, carol, single_chat):
        assert_error(client_for(carol).post(read_url(single_chat.id), {"seq": 1}, format="json"), 403, 1005)

    def test_unknown_conversation(self, client_for, alice):
        assert_error(client_for(alice).post(read_url("55555"), {"seq": 1}, format="json"), 404, 1003)

    def test_requires_token(self, api_client, single_chat):
        assert_error(api_client.post(read_url(single_chat.id), {"seq": 1}, format="json"), 401, 1002)
