"""Request parsing and response shapes of the messaging REST API.

Serializers only translate: the rules (membership, content limits, dedupe) live in
messaging.services and messaging.selectors, so REST and WebSocket enforce the same ones.
Ids are strings in every response (JavaScript cannot hold 64-bit integers).
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import IdField, PublicUserSerializer, StrictCharField
from messaging.models import Device, Message
from messaging.selectors import ConversationSummary

SENDABLE_TYPES = [t for t in Message.Type.values if t != Message.Type.SYSTEM]


@extend_schema_field(OpenApiTypes.STR)
# --- requests --------------------------------------------------------------------------

class SendMessageSerializer(serializers.Serializer):
    conversation_id = IdField()
    client_msg_id = StrictCharField(max_length=64)
    # Whitespace is content; the length limit is settings.MESSAGE_MAX_CONTENT_LENGTH,
    # checked by messaging.services so WebSocket sends obey the same limit.
    content = StrictCharField(trim_whitespace=False)
    message_type = serializers.ChoiceField(choices=SENDABLE_TYPES, required=False, default=Message.Type.TEXT)


class CreateConversationSerializer(serializers.Serializer):
    user_id = IdField(required=False)
    username = StrictCharField(required=False, max_length=150)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("user_id" in attrs) == ("username" in attrs):
            raise serializers.ValidationError({"user_id": ["Give exactly one of user_id or username."]})
        return attrs


class UpdateConversationSerializer(serializers.Serializer):
    muted = serializers.BooleanField(required=False)
    pinned = serializers.BooleanField(required=False)


class MarkReadSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=0)


class RegisterDeviceSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Device.Platform.values)
    token = StrictCharField(max_length=512)


class DeleteDeviceSerializer(serializers.Serializer):
    token = StrictCharField(max_length=512)


# --- responses -------------------------------------------------------------------------

class MessageSerializer(serializers.Serializer):
    """Schema of messaging.representations.message_dict, which produces the data."""

    id = serializers.CharField()
    conversation_id = serializers.CharField()
    seq = serializers.IntegerField()
    sender_id = serializers.CharField()
    sender_name = serializers.CharField()
    client_msg_id = serializers.CharField()
    message_type = serializers.ChoiceField(choices=Message.Type.values)
    content = serializers.CharField()
    created_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Message.Status.values)


class SendMessageResponseSerializer(serializers.Serializer):
    message = MessageSerializer()


class HistorySerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()


class UnreadEntrySerializer(serializers.Serializer):
    conversation_id = IdField()
    unread = serializers.IntegerField()
    last_read_seq = serializers.IntegerField()
    last_seq = serializers.IntegerField()


class UnreadSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    conversations = UnreadEntrySerializer(many=True)


class GroupRefSerializer(serializers.Serializer):
    id = IdField()
    name = serializers.CharField()


class LastMessageSerializer(serializers.Serializer):
    id = IdField()
    seq = serializers.IntegerField()
    sender_id = IdField()
    preview = serializers.CharField()
    created_at = serializers.DateTimeField()


class ConversationSerializer(serializers.Serializer):
    """Renders a selectors.ConversationSummary for the caller."""

    id = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()
    title = serializers.CharField()
    peer = serializers.SerializerMethodField()
    peer_online = serializers.BooleanField(help_text="The peer of a 1:1 chat has a live connection.")
    group = serializers.SerializerMethodField()
    last_seq = serializers.SerializerMethodField()
    last_read_seq = serializers.SerializerMethodField()
    unread = serializers.IntegerField()
    muted = serializers.SerializerMethodField()
    pinned = serializers.SerializerMethodField()
    last_message = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_id(self, s: ConversationSummary) -> str:
        return str(s.conversation.id)

    def get_type(self, s: ConversationSummary) -> str:
        return s.conversation.type

    @extend_schema_field(PublicUserSerializer(allow_null=True))
    def get_peer(self, s: ConversationSummary) -> dict[str, Any] | None:
        return PublicUserSerializer(s.peer).data if s.peer is not None else None

    @extend_schema_field(GroupRefSerializer(allow_null=True))
    def get_group(self, s: ConversationSummary) -> dict[str, Any] | None:
        return GroupRefSerializer(s.group).data if s.group is not None else None

    def get_last_seq(self, s: ConversationSummary) -> int:
        return s.conversation.last_seq

    def get_last_read_seq(self, s: ConversationSummary) -> int:
        return s.membership.last_read_seq

    def get_muted(self, s: ConversationSummary) -> bool:
        return s.membership.muted

    def get_pinned(self, s: ConversationSummary) -> bool:
        return s.membership.pinned

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, s: ConversationSummary) -> dict[str, Any] | None:
        c = s.conversation
        if c.last_message_id is None:
            return None
        return {
            "id": str(c.last_message_id),
            "seq": c.last_seq,
            "sender_id": str(c.last_message_sender_id),
            "preview": c.last_message_preview,
            "created_at": c.last_message_at.isoformat() if c.last_message_at else None,
        }

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_updated_at(self, s: ConversationSummary) -> str:
        return s.conversation.updated_at.isoformat()


class MarkReadResponseSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    last_read_seq = serializers.IntegerField()
    unread = serializers.IntegerField()


class DeviceSerializer(serializers.ModelSerializer):
    id = IdField(read_only=True)

    class Meta:
        model = Device
        fields = ["id", "platform", "token", "created_at", "last_seen"]
        read_only_fields = fields
