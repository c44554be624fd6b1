"""Conversations, their members, messages and push devices (DESIGN §2)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from gochat_site.ids import new_id


class Conversation(models.Model):
    class Type(models.TextChoices):
        SINGLE = "single"
        GROUP = "group"

    id = models.BigIntegerField(primary_key=True, default=new_id, editable=False)
    type = models.CharField(max_length=10, choices=Type.choices)
    # "<low user id>:<high user id>" for single chats, so a pair has one conversation.
    pair_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    group = models.OneToOneField(
        "groups.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="conversation"
    )
    last_seq = models.BigIntegerField(default=0)
    last_message_id = models.BigIntegerField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    last_message_sender_id = models.BigIntegerField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(type="single", pair_key__isnull=False, group__isnull=True))
                | models.Q(type="group", pair_key__isnull=True, group__isnull=False),
                name="conversation_kind_fields",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


class ConversationMember(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversation_memberships")
    last_read_seq = models.BigIntegerField(default=0)
    last_delivered_seq = models.BigIntegerField(default=0)
    muted = models.BooleanField(default=False)
    pinned = models.BooleanField(default=False)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="uniq_conversation_member")]
        indexes = [models.Index(fields=["user", "conversation"], name="convmember_user_conv")]


class Message(models.Model):
    class Type(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        FILE = "file"
        AUDIO = "audio"
        VIDEO = "video"
        SYSTEM = "system"

    class Status(models.TextChoices):
        NORMAL = "normal"
        RECALLED = "recalled"

    id = models.BigIntegerField(primary_key=True, default=new_id, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_messages")
    client_msg_id = models.CharField(max_length=64)
    message_type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NORMAL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="uniq_message_conversation_seq"),
            # The idempotency key is scoped per conversation (as Matrix scopes txnId per
            # room): a client_msg_id reused in another conversation is a new message,
            # never answered with the first conversation's one.
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_msg_id"], name="uniq_message_conversation_sender_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq}"


class Device(models.Model):
    class Platform(models.TextChoices):
        APNS = "apns"
        FCM = "fcm"
        WEBPUSH = "webpush"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=10, choices=Platform.choices)
    token = models.CharField(max_length=512, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "platform"])]
