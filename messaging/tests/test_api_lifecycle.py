"""Message lifecycle over REST and its services: edit, recall, delete-for-me, reactions.

Happy paths, permission failures (1005), bad input (1001), unknown messages (1003), and
what each leaves behind: the row, the search index, history, push and seq."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Conversation, HiddenMessage, Message, MessageReaction
from messaging.services import send_message

pytestmark = pytest.mark.django_db


def _send(sender, conversation, text="hello there", cid=None):
    cid = cid or f"c-{Message.objects.count() + 1}"
    return send_message(sender_id=sender.id, conversation_id=conversation.id, content=text, client_msg_id=cid).message


def _age(message, seconds):
    Message.objects.filter(id=message.id).update(created_at=timezone.now() - timedelta(seconds=seconds))


def _history(client, conversation, **query):
    response = client.get("/api/v1/messages/history", {"conversation_id": str(conversation.id), **query})
    assert response.status_code == 200, response.content
    return response.json()


def _search(user, q):
    from tasks.search.selectors import search_messages

    return [r.message.id for r in search_messages(user_id=user.id, q=q).results]


# --- edit -------------------------------------------------------------------------------

def test_edit_replaces_content_sets_edited_at_and_keeps_it_searchable(client_for, alice, bob, single_chat):
    message = _send(alice, single_chat, "original words")
    response = client_for(alice).patch(f"/api/v1/messages/{message.id}", {"content": "corrected zebra"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()["message"]
    assert body["content"] == "corrected zebra"
    assert body["edited_at"] is not None
    assert body["seq"] == message.seq == 1
    row = Message.objects.get(id=message.id)
    assert (row.content, row.seq) == ("corrected zebra", 1) and row.edited_at is not None
    assert _search(bob, "zebra") == [message.id]
    assert _search(bob, "original") == []
    # The conversation list's preview follows the edit of the last message.
    assert Conversation.objects.get(id=single_chat.id).last_message_preview == "corrected zebra"
    page = _history(client_for(bob), single_chat)
    assert page["messages"][0]["content"] == "corrected zebra"
    assert page["messages"][0]["edited_at"] == body["edited_at"]


def test_edit_by_another_member_or_after_the_window_is_1005(client_for, alice, bob, single_chat, settings):
    message = _send(alice, single_chat)
    response = client_for(bob).patch(f"/api/v1/messages/{message.id}", {"content": "mine now"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, 1005)
    _age(message, settings.MESSAGE_EDIT_SECONDS + 5)
    response = client_for(alice).patch(f"/api/v1/messages/{message.id}", {"content": "too late"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, 1005)
    assert response.json()["details"]["edit_seconds"] == settings.MESSAGE_EDIT_SECONDS
    assert Message.objects.get(id=message.id).content == "hello there"


@pytest.mark.parametrize("content", ["", 5, None])
def test_edit_with_bad_content_is_1001(client_for, alice, single_chat, content):
    message = _send(alice, single_chat)
    response = client_for(alice).patch(f"/api/v1/messages/{message.id}", {"content": content}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, 1001)


def test_oversize_edit_is_1001_by_the_send_rule(client_for, alice, single_chat, settings):
    settings.MESSAGE_MAX_CONTENT_LENGTH = 10
    message = _send(alice, single_chat, "short")
    response = client_for(alice).patch(f"/api/v1/messages/{message.id}", {"content": "x" * 11}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, 1001)
    assert "content" in response.json()["details"]


def test_unknown_message_is_1003(client_for, alice, single_chat):
    client = client_for(alice)
    assert client.patch("/api/v1/messages/123456789", {"content": "x"}, format="json").json()["code"] == 1003
    assert client.post("/api/v1/messages/123456789/recall").json()["code"] == 1003
    assert client.post("/api/v1/messages/123456789/hide").json()["code"] == 1003
    assert client.put("/api/v1/messages/123456789/reaction", {"emoji": "👍"}, format="json").json()["code"] == 1003


# --- recall -----------------------------------------------------------------------------

def test_recall_blanks_the_row_search_history_and_preview(client_for, alice, bob, single_chat):
    message = _send(alice, single_chat, "secret pineapple")
    MessageReaction.objects.create(message=message, user=bob, emoji="👍")
    assert _search(bob, "pineapple") == [message.id]
    response = client_for(alice).post(f"/api/v1/messages/{message.id}/recall")
    assert response.status_code == 200, response.content
    body = response.json()["message"]
    assert (body["status"], body["content"], body["seq"], body["reactions"]) == ("recalled", "", 1, [])
    row = Message.objects.get(id=message.id)
    assert (row.status, row.content, row.seq) == ("recalled", "", 1)
    assert _search(bob, "pineapple") == []
    assert not MessageReaction.objects.filter(message=message).exists()
    assert Conversation.objects.get(id=single_chat.id).last_message_preview == ""
    shown = _history(client_for(bob), single_chat)["messages"]
    assert [(m["seq"], m["status"], m["content"]) for m in shown] == [(1, "recalled", "")]
    # Idempotent: a second recall answers the same state.
    again = client_for(alice).post(f"/api/v1/messages/{message.id}/recall")
    assert again.status_code == 200 and again.json()["message"]["status"] == "recalled"


def test_recall_after_the_window_and_by_a_non_sender_is_1005(client_for, alice, bob, single_chat, settings):
    message = _send(alice, single_chat)
    response = client_for(bob).post(f"/api/v1/messages/{message.id}/recall")
    assert (response.status_code, response.json()["code"]) == (403, 1005)
    _age(message, settings.MESSAGE_RECALL_SECONDS + 5)
    response = client_for(alice).post(f"/api/v1/messages/{message.id}/recall")
    assert (response.status_code, response.json()["code"]) == (403, 1005)
    assert response.json()["details"]["recall_seconds"] == settings.MESSAGE_RECALL_SECONDS
    assert Message.objects.get(id=message.id).status == "normal"


def test_group_admin_recalls_any_time_a_plain_member_cannot(client_for, alice, make_user, settings):
    from groups.services import create_group

    bob, carol = make_user("gbob"), make_user("gcarol")
    group = create_group(owner_id=alice.id, name="g", member_ids=[bob.id, carol.id])
    conversation = Conversation.objects.get(group=group)
    message = _send(bob, conversation, "old news")
    _age(message, settings.MESSAGE_RECALL_SECONDS * 10)
    assert client_for(carol).post(f"/api/v1/messages/{message.id}/recall").json()["code"] == 1005
    response = client_for(alice).post(f"/api/v1/messages/{message.id}/recall")
    assert response.status_code == 200 and response.json()["message"]["status"] == "recalled"


def test_recalled_message_cannot_be_edited_or_reacted_to(client_for, alice, single_chat):
    message = _send(alice, single_chat)
    client_for(alice).post(f"/api/v1/messages/{message.id}/recall")
    assert client_for(alice).patch(f"/api/v1/messages/{message.id}", {"content": "x"}, format="json").json()["code"] == 1007
    assert client_for(alice).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": "👍"}, format="json").json()["code"] == 1007


def test_a_pending_push_of_a_recalled_message_sends_nothing(alice, bob, single_chat, monkeypatch):
    """The push task re-reads the message when it runs: recalled, it carries no text anywhere."""
    from messaging.models import Device
    from tasks.push import services as push

    sent = []

    class Recorder:  # stands in for APNs (the outside world)
        def send(self, token, notification):
            sent.append(notification)
            raise AssertionError("a recalled message must not be pushed")

    monkeypatch.setattr(push, "get_providers", lambda: {"apns": Recorder()})
    Device.objects.create(user=bob, platform="apns", token="tok-bob")
    message = _send(alice, single_chat, "do not push me")
    from messaging.lifecycle import recall_message

    recall_message(user_id=alice.id, message_id=message.id)
    report = push.push_message(message_id=message.id, user_ids=[bob.id])
    assert (report.sent, sent) == (0, [])


# --- delete for me ------------------------------------------------------------------------

def test_hide_leaves_others_alone_and_history_reports_hidden_seqs(client_for, alice, bob, single_chat):
    first, second, third = (_send(alice, single_chat, f"m{n}") for n in range(3))
    assert client_for(bob).post(f"/api/v1/messages/{second.id}/hide").status_code == 204
    assert client_for(bob).post(f"/api/v1/messages/{second.id}/hide").status_code == 204  # idempotent
    assert HiddenMessage.objects.filter(user=bob).count() == 1
    page = _history(client_for(bob), single_chat)
    assert [m["seq"] for m in page["messages"]] == [1, 3]
    assert page["hidden_seqs"] == [2]  # known to the client: not a gap
    forward = _history(client_for(bob), single_chat, after_seq=1, limit=1)
    assert (forward["messages"], forward["hidden_seqs"], forward["has_more"]) == ([], [2], True)
    page = _history(client_for(alice), single_chat)
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3] and page["hidden_seqs"] == []
    assert Message.objects.get(id=second.id).seq == 2


def test_hide_in_a_conversation_you_are_not_in_is_1005(client_for, alice, carol, single_chat):
    message = _send(alice, single_chat)
    response = client_for(carol).post(f"/api/v1/messages/{message.id}/hide")
    assert (response.status_code, response.json()["code"]) == (403, 1005)


# --- reactions ----------------------------------------------------------------------------

def test_one_reaction_per_user_counted_in_history(client_for, alice, bob, single_chat):
    message = _send(alice, single_chat)
    other = _send(alice, single_chat, "second")
    assert client_for(bob).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": "👍"}, format="json").status_code == 200
    response = client_for(alice).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": "👍"}, format="json")
    assert response.json()["message"]["reactions"] == [{"emoji": "👍", "count": 2, "me": True}]
    # Setting another emoji replaces the user's one reaction.
    client_for(bob).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": "❤️"}, format="json")
    assert MessageReaction.objects.filter(message=message).count() == 2
    page = _history(client_for(bob), single_chat)
    by_seq = {m["seq"]: m["reactions"] for m in page["messages"]}
    assert sorted(by_seq[1], key=lambda r: r["emoji"]) == sorted(
        [{"emoji": "👍", "count": 1, "me": False}, {"emoji": "❤️", "count": 1, "me": True}], key=lambda r: r["emoji"]
    )
    assert by_seq[2] == []
    # Unset: DELETE, or PUT "".
    assert client_for(bob).delete(f"/api/v1/messages/{message.id}/reaction").status_code == 200
    response = client_for(alice).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": ""}, format="json")
    assert response.json()["message"]["reactions"] == []
    assert Message.objects.get(id=other.id).seq == 2


def test_history_reads_reactions_in_one_query_per_page(alice, bob, single_chat):
    messages = [_send(alice, single_chat, f"m{n}") for n in range(20)]
    for message in messages:
        MessageReaction.objects.create(message=message, user=bob, emoji="🎉")
    from messaging.selectors import conversation_history

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        page = conversation_history(user_id=alice.id, conversation_id=single_chat.id)
    assert len(page.messages) == 20
    reaction_queries = [q for q in captured.captured_queries if "messaging_messagereaction" in q["sql"]]
    assert len(reaction_queries) == 1
    assert all(m.reaction_counts == [{"emoji": "🎉", "count": 1, "me": False}] for m in page.messages)


@pytest.mark.parametrize("emoji", ["a", "👍👍", "smile", 5, " "])
def test_bad_emoji_is_1001(client_for, alice, single_chat, emoji):
    message = _send(alice, single_chat)
    response = client_for(alice).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": emoji}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, 1001)


def test_reacting_in_a_conversation_you_are_not_in_is_1005(client_for, alice, carol, single_chat):
    message = _send(alice, single_chat)
    response = client_for(carol).put(f"/api/v1/messages/{message.id}/reaction", {"emoji": "👍"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, 1005)
    assert not MessageReaction.objects.exists()
