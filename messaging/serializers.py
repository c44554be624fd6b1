"""Request parsing and response shapes of the messaging REST API.

Serializers only translate: the rules (membership, content limits, dedupe) live in
messaging.services and messaging.selectors, so REST and WebSocket enforce the same ones.
Ids are strings in every response (JavaScript cannot hold 64-bit integers).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import (
    IdField,
    PublicUserSerializer,
    RequestSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from gochat_site.id_params import MAX_ID
from messaging.models import Device, Message
from messaging.selectors import ConversationSummary

SENDABLE_TYPES = [t for t in Message.Type.values if t != Message.Type.SYSTEM]


# --- requests --------------------------------------------------------------------------

class SendMessageSerializer(RequestSerializer):
    # Non-empty content, or an attachment (then the content is an optional caption).
    schema_any_of = [
        {"required": ["content"], "properties": {"content": {"minLength": 1}}},
        {"required": ["attachment_id"]},
    ]

    conversation_id = IdField()
    client_msg_id = StrictCharField(max_length=64)
    # Whitespace is content. The length limit (get_fields) is also checked by
    # messaging.services, so WebSocket sends obey the same one.
    content = StrictCharField(trim_whitespace=False)
    # Omitted: text, or with an attachment the upload's kind (image/audio/video, else file).
    message_type = serializers.ChoiceField(choices=SENDABLE_TYPES, required=False)
    attachment_id = IdField(required=False, help_text="an upload of the caller (POST uploads); content may then be empty")
    reply_to = IdField(required=False, allow_null=True, help_text="id of the quoted message (same conversation)")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # Read per request: the schema states the deployment's MESSAGE_MAX_CONTENT_LENGTH.
        fields["content"] = StrictCharField(
            trim_whitespace=False,
            max_length=settings.MESSAGE_MAX_CONTENT_LENGTH,
            # A caption: optional beside an attachment (messaging.services checks which).
            required=False,
            allow_blank=True,
            help_text="required unless attachment_id is given",
        )
        return fields


class CreateConversationSerializer(RequestSerializer):
    """Exactly one of user_id or username."""

    # The schema says so (gochat_site.api_schema): one property, of these two.
    min_properties = 1
    max_properties = 1

    user_id = IdField(required=False)
    username = StrictCharField(required=False, max_length=150)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("user_id" in attrs) == ("username" in attrs):
            raise serializers.ValidationError({"user_id": ["Give exactly one of user_id or username."]})
        return attrs


class UpdateConversationSerializer(RequestSerializer):
    muted = StrictBooleanField(required=False)
    pinned = StrictBooleanField(required=False)


class MarkReadSerializer(RequestSerializer):
    seq = StrictIntegerField(min_value=0, max_value=MAX_ID)


class RegisterDeviceSerializer(RequestSerializer):
    platform = serializers.ChoiceField(choices=Device.Platform.values)
    token = StrictCharField(max_length=512)


class DeleteDeviceSerializer(RequestSerializer):
    token = StrictCharField(max_length=512)


class EditMessageSerializer(RequestSerializer):
    content = StrictCharField(trim_whitespace=False)

    # An edit always names the new content, though its method is PATCH: never partial, so
    # `content` stays required in validation and in the schema (drf-spectacular documents
    # a partial serializer as "Patched…" with nothing required).
    @property
    def partial(self) -> bool:
        return False

    @partial.setter
    def partial(self, value: bool) -> None:
        pass

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # The same rule as a send (messaging.lifecycle.check_content checks it again).
        fields["content"] = StrictCharField(trim_whitespace=False, max_length=settings.MESSAGE_MAX_CONTENT_LENGTH)
        return fields


class ReactionSerializer(RequestSerializer):
    # One emoji (checked by messaging.lifecycle.check_emoji); "" removes the reaction.
    emoji = StrictCharField(max_length=32, allow_blank=True, trim_whitespace=False)


class HistoryQuerySerializer(RequestSerializer):
    conversation_id = IdField()
    before_seq = StrictIntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="messages with seq < before_seq (scroll up)"
    )
    after_seq = StrictIntegerField(
        min_value=0, max_value=MAX_ID, required=False, help_text="messages with seq > after_seq (sync forward)"
    )
    limit = StrictIntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="page size (default 50), capped at HISTORY_MAX_LIMIT"
    )


# --- responses -------------------------------------------------------------------------

class ReactionCountSerializer(serializers.Serializer):
    emoji = serializers.CharField()
    count = serializers.IntegerField()
    me = serializers.BooleanField(required=False, help_text="the caller's own reaction is this emoji")


class ReplyPreviewSerializer(serializers.Serializer):
    id = serializers.CharField()
    seq = serializers.IntegerField()
    sender_id = serializers.CharField()
    sender_name = serializers.CharField()
    content = serializers.CharField(help_text="at most 100 characters; empty when that message is recalled")
    message_type = serializers.ChoiceField(choices=Message.Type.values)
    status = serializers.ChoiceField(choices=Message.Status.values)


class AttachmentSerializer(serializers.Serializer):
    """Schema of messaging.attachments.attachment_dict (urls signed, short-lived)."""

    attachment_id = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    url = serializers.CharField(help_text="signed download URL, valid ATTACHMENT_URL_TTL_SECONDS")
    width = serializers.IntegerField(required=False, help_text="images only")
    height = serializers.IntegerField(required=False, help_text="images only")
    thumbnail_url = serializers.CharField(required=False, help_text="images only: signed thumbnail URL")


class UploadRequestSerializer(serializers.Serializer):
    """multipart/form-data body of POST uploads (schema only: the view reads request.FILES)."""

    file = serializers.FileField()


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
    status = serializers.ChoiceField(choices=Message.Status.values, help_text="recalled: content is \"\"")
    read_count = serializers.IntegerField(
        required=False,
        help_text="History/sync of group messages only: members other than the sender who read it "
        "(members with receipts off not counted).",
    )
    edited_at = serializers.DateTimeField(allow_null=True)
    reactions = ReactionCountSerializer(many=True)
    reply_to = ReplyPreviewSerializer(allow_null=True, help_text="the quoted message, when this is a reply")
    mentions = serializers.ListField(child=serializers.CharField(), help_text="ids of the @mentioned members")
    attachment = AttachmentSerializer(allow_null=True)


class SendMessageResponseSerializer(serializers.Serializer):
    message = MessageSerializer()


class HistorySerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()
    hidden_seqs = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="seqs in this page's range the caller hid (delete-for-me): known, not a gap",
    )


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
    peer_last_read_seq = serializers.IntegerField(
        allow_null=True,
        help_text="1:1 chats: the peer has read up to this seq; null in groups or when the peer "
        "turned read receipts off.",
    )
    group = serializers.SerializerMethodField()
    last_seq = serializers.SerializerMethodField()
    last_read_seq = serializers.SerializerMethodField()
    unread = serializers.IntegerField()
    unread_mentions = serializers.SerializerMethodField()
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

    def get_unread_mentions(self, s: ConversationSummary) -> int:
        """Unread messages that @mention the caller (the mention badge)."""
        return s.membership.unread_mentions

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


# --- read receipts (issue 10) ---------------------------------------------------------------

class ReceiptsQuerySerializer(RequestSerializer):
    after = IdField(required=False, help_text="the `next` of the previous page")
    limit = StrictIntegerField(min_value=1, max_value=1000, required=False, help_text="page size (default 200)")


class ReceiptEntrySerializer(serializers.Serializer):
    user_id = IdField()
    last_read_seq = serializers.IntegerField()


class ReceiptsSerializer(serializers.Serializer):
    members = ReceiptEntrySerializer(many=True)
    next = serializers.CharField(allow_null=True)
