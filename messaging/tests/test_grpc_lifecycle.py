"""LogicService EditMessage, RecallMessage and SetReaction through a real gRPC channel."""
from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.services import send_message
from messaging.tests.test_attachments import media  # noqa: F401 - fixture
from messaging.tests.test_grpc import auth, channel, logic, rpc_error  # noqa: F401 - fixtures
from messaging.tests.test_grpc import gochat_code as code
from protos.gochat.v1 import logic_pb2

pytestmark = pytest.mark.django_db(transaction=True)


def _send(sender, conversation, text="hello grpc"):
    return send_message(
        sender_id=sender.id, conversation_id=conversation.id, content=text, client_msg_id=f"g-{text}"
    ).message


def test_edit_recall_and_react(logic, alice, bob, single_chat):  # noqa: F811
    message = _send(alice, single_chat)
    edited = logic.EditMessage(logic_pb2.EditMessageRequest(message_id=message.id, content="edited"), metadata=auth(alice))
    assert (edited.content, edited.seq) == ("edited", 1) and edited.edited_at_ms > 0
    reacted = logic.SetReaction(logic_pb2.SetReactionRequest(message_id=message.id, emoji="👍"), metadata=auth(bob))
    assert [(r.emoji, r.count) for r in reacted.reactions] == [("👍", 1)]
    cleared = logic.SetReaction(logic_pb2.SetReactionRequest(message_id=message.id, emoji=""), metadata=auth(bob))
    assert list(cleared.reactions) == []
    recalled = logic.RecallMessage(logic_pb2.RecallMessageRequest(message_id=message.id), metadata=auth(alice))
    assert (recalled.status, recalled.content, recalled.seq) == ("recalled", "", 1)
    assert Message.objects.get(id=message.id).content == ""


def test_permission_failures_are_1005(logic, alice, bob, carol, single_chat, settings):  # noqa: F811
    message = _send(alice, single_chat)
    error = rpc_error(logic.RecallMessage, logic_pb2.RecallMessageRequest(message_id=message.id), metadata=auth(bob))
    assert (error.code(), code(error)) == (grpc.StatusCode.PERMISSION_DENIED, 1005)
    error = rpc_error(
        logic.SetReaction, logic_pb2.SetReactionRequest(message_id=message.id, emoji="👍"), metadata=auth(carol)
    )
    assert code(error) == 1005
    Message.objects.filter(id=message.id).update(
        created_at=timezone.now() - timedelta(seconds=settings.MESSAGE_RECALL_SECONDS + 5)
    )
    error = rpc_error(logic.RecallMessage, logic_pb2.RecallMessageRequest(message_id=message.id), metadata=auth(alice))
    assert code(error) == 1005


def test_bad_input_is_1001_and_unknown_is_1003(logic, alice, single_chat):  # noqa: F811
    message = _send(alice, single_chat)
    error = rpc_error(logic.EditMessage, logic_pb2.EditMessageRequest(message_id=message.id, content=""), metadata=auth(alice))
    assert (error.code(), code(error)) == (grpc.StatusCode.INVALID_ARGUMENT, 1001)
    error = rpc_error(
        logic.SetReaction, logic_pb2.SetReactionRequest(message_id=message.id, emoji="xx"), metadata=auth(alice)
    )
    assert code(error) == 1001
    error = rpc_error(logic.EditMessage, logic_pb2.EditMessageRequest(message_id=0, content="x"), metadata=auth(alice))
    assert code(error) == 1001
    error = rpc_error(
        logic.RecallMessage, logic_pb2.RecallMessageRequest(message_id=987654321), metadata=auth(alice)
    )
    assert (error.code(), code(error)) == (grpc.StatusCode.NOT_FOUND, 1003)


def test_history_and_conversations_carry_the_lifecycle_state(logic, alice, bob, single_chat, group_of, media):  # noqa: F811
    """gRPC sees what REST sees: hidden seqs (no false gap), group read counts, the
    mention badge, the peer's read position, and an attachment's signed URL."""
    from messaging import lifecycle, services
    from messaging.tests.test_attachments import named, png_bytes

    first, second = _send(alice, single_chat, "one"), _send(alice, single_chat, "two")
    lifecycle.hide_message(user_id=bob.id, message_id=first.id)
    services.mark_read(user_id=bob.id, conversation_id=single_chat.id, seq=second.seq)
    history = logic.History(logic_pb2.HistoryRequest(conversation_id=single_chat.id), metadata=auth(bob))
    assert [m.seq for m in history.messages] == [2] and list(history.hidden_seqs) == [1]
    entries = logic.ListConversations(logic_pb2.ListConversationsRequest(), metadata=auth(alice)).conversations
    assert [e.peer_last_read_seq for e in entries if e.conversation.id == single_chat.id] == [2]

    group = group_of(3)
    member = next(m for m in group.conversation.members.all() if m.user_id != alice.id)
    services.send_message(
        sender_id=alice.id, conversation_id=group.conversation.id,
        content=f"hi @{member.user.username}", client_msg_id="mention-1",
    )
    services.mark_read(user_id=member.user_id, conversation_id=group.conversation.id, seq=1)
    history = logic.History(logic_pb2.HistoryRequest(conversation_id=group.conversation.id), metadata=auth(alice))
    assert dict(history.read_counts) == {history.messages[0].id: 1}
    services.send_message(
        sender_id=alice.id, conversation_id=group.conversation.id,
        content=f"again @{member.user.username}", client_msg_id="mention-2",
    )
    entries = logic.ListConversations(logic_pb2.ListConversationsRequest(), metadata=auth(member.user)).conversations
    entry = next(e for e in entries if e.conversation.id == group.conversation.id)
    assert entry.unread_mentions == 1 and not entry.HasField("peer_last_read_seq")

    upload = services.upload_attachment(uploader_id=alice.id, file=named(png_bytes(), "photo.png", "image/png"))
    sent = logic.SendMessage(
        logic_pb2.SendMessageRequest(
            conversation_id=single_chat.id, client_msg_id="att-1", content="", message_type="image", attachment_id=upload.id
        ),
        metadata=auth(alice),
    ).message
    assert sent.attachment.id == upload.id and "sig=" in sent.attachment.url and "sig=" in sent.attachment.thumbnail_url
