"""messaging.services.send_message: the rules every entry point (REST, WebSocket, gRPC) shares."""
from __future__ import annotations

import pytest

from gochat_site.errors import InvalidParams, NotAMember, NotFound
from messaging.models import Conversation, ConversationMember, Message
from messaging.services import send_message


def send(user, conversation, client_msg_id, content="hi", **kw):
    return send_message(
        sender_id=user.id, conversation_id=conversation.id, content=content, client_msg_id=client_msg_id, **kw
    )


@pytest.mark.django_db
class TestSendMessage:
    def test_seq_increments_per_conversation(self, alice, bob, single_chat, group_of):
        group = group_of(2)
        assert [send(alice, single_chat, f"s{i}").message.seq for i in range(3)] == [1, 2, 3]
        # Another conversation has its own sequence.
        assert send(alice, group.conversation, "g1").message.seq == 1
        assert send(bob, single_chat, "b1").message.seq == 4
        single_chat.refresh_from_db()
        assert single_chat.last_seq == 4

    def test_conversation_summary_follows_last_message(self, alice, single_chat):
        m = send(alice, single_chat, "x1", content="latest words").message
        single_chat.refresh_from_db()
        assert single_chat.last_message_id == m.id
        assert single_chat.last_message_preview == "latest words"
        assert single_chat.last_message_sender_id == alice.id
        assert single_chat.last_message_at == m.created_at

    def test_dedupe_returns_the_first_message(self, alice, single_chat):
        first = send(alice, single_chat, "same", content="first")
        again = send(alice, single_chat, "same", content="changed on retry")
        assert first.created is True and again.created is False
        assert (again.message.id, again.message.seq, again.message.content) == (first.message.id, 1, "first")
        assert Message.objects.filter(conversation=single_chat).count() == 1
        single_chat.refresh_from_db()
        assert single_chat.last_seq == 1

    def test_client_msg_id_is_per_sender(self, alice, bob, single_chat):
        a = send(alice, single_chat, "shared-id")
        b = send(bob, single_chat, "shared-id")
        assert b.created and b.message.id != a.message.id and b.message.seq == 2

    def test_sender_has_read_own_message_peer_has_not(self, alice, bob, single_chat):
        send(alice, single_chat, "r1")
        send(alice, single_chat, "r2")
        mine = ConversationMember.objects.get(conversation=single_chat, user=alice)
        theirs = ConversationMember.objects.get(conversation=single_chat, user=bob)
        assert (mine.last_read_seq, theirs.last_read_seq) == (2, 0)

    def test_non_member_is_refused_and_nothing_stored(self, carol, single_chat):
        with pytest.raises(NotAMember) as exc:
            send(carol, single_chat, "c1")
        assert exc.value.code == 1005
        assert not Message.objects.exists()
        single_chat.refresh_from_db()
        assert single_chat.last_seq == 0

    def test_unknown_conversation(self, alice):
        with pytest.raises(NotFound):
            send_message(sender_id=alice.id, conversation_id=1, content="x", client_msg_id="u1")

    @pytest.mark.parametrize("bad", ["abc", None, ""])
    def test_bad_conversation_id(self, alice, bad):
        with pytest.raises(InvalidParams):
            send_message(sender_id=alice.id, conversation_id=bad, content="x", client_msg_id="u1")

    def test_content_limit_is_inclusive(self, alice, single_chat, settings):
        settings.MESSAGE_MAX_CONTENT_LENGTH = 5
        assert send(alice, single_chat, "ok", content="12345").created
        with pytest.raises(InvalidParams) as exc:
            send(alice, single_chat, "too-long", content="123456")
        assert "content" in exc.value.details
        assert Message.objects.count() == 1

    @pytest.mark.parametrize("content", ["", None, 42, ["x"]])
    def test_content_must_be_a_non_empty_string(self, alice, single_chat, content):
        with pytest.raises(InvalidParams) as exc:
            send(alice, single_chat, "bad", content=content)
        assert "content" in exc.value.details

    @pytest.mark.parametrize("client_msg_id", ["", "   ", None, 7, "x" * 65])
    def test_client_msg_id_rules(self, alice, single_chat, client_msg_id):
        with pytest.raises(InvalidParams) as exc:
            send(alice, single_chat, client_msg_id)
        assert "client_msg_id" in exc.value.details

    @pytest.mark.parametrize("message_type", ["text", "image", "file", "audio", "video"])
    def test_user_message_types(self, alice, single_chat, message_type):
        assert send(alice, single_chat, f"t-{message_type}", message_type=message_type).message.message_type == message_type

    def test_default_type_is_text(self, alice, single_chat):
        assert send(alice, single_chat, "t-none", message_type=None).message.message_type == "text"

    @pytest.mark.parametrize("message_type", ["system", "sticker", 3])
    def test_users_cannot_send_system_or_unknown_types(self, alice, single_chat, message_type):
        with pytest.raises(InvalidParams) as exc:
            send(alice, single_chat, "t-bad", message_type=message_type)
        assert "message_type" in exc.value.details

    def test_removed_group_member_cannot_send(self, alice, group_of):
        from groups.services import leave_group

        group = group_of(3)
        conv = Conversation.objects.get(group=group)
        leaver = group.members.exclude(user_id=alice.id).first().user
        assert send(leaver, conv, "before").created
        leave_group(group_id=group.id, user_id=leaver.id)
        with pytest.raises(NotAMember):
            send(leaver, conv, "after")
