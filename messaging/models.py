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
    # Unread messages that mention this member (the mention badge): incremented by the
    # batch writer, recounted when last_read_seq moves (messaging.services.mark_read).
    unread_mentions = models.IntegerField(default=0)
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
    # Set by an edit (messaging.services.edit_message); a recall blanks content instead.
    edited_at = models.DateTimeField(null=True, blank=True)
    # A reply quotes an earlier message of the same conversation (checked by the writer).
    # No database constraint: archiving deletes old messages without touching replies.
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # User ids @mentioned in a group message, resolved at persist time; null when none.
    mentions = models.JSONField(null=True, blank=True)

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


class MessageReaction(models.Model):
    """One user's reaction to a message: at most one emoji per (message, user)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="message_reactions")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="uniq_reaction_message_user")]


class HiddenMessage(models.Model):
    """Delete-for-me: `user` no longer sees `message` in history and sync. The message, its
    seq and everyone else's view are untouched. conversation is kept beside the message so
    a page's hidden set is read through one index (user, conversation)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hidden_messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="hidden_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "message"], name="uniq_hidden_user_message")]
        indexes = [models.Index(fields=["user", "conversation"], name="hidden_user_conv")]


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


class Attachment(models.Model):
    """A file uploaded through POST uploads, stored by the "attachments" storage
    (settings.STORAGES). `message` stays null until a send links it; an upload still
    unlinked after ATTACHMENT_ORPHAN_SECONDS is swept with its files (tasks.sweep_attachments).
    """

    id = models.BigIntegerField(primary_key=True, default=new_id, editable=False)
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    # Names inside the storage: the file and, for images, its thumbnail ("" when none).
    storage_name = models.CharField(max_length=500)
    thumbnail_name = models.CharField(max_length=500, blank=True)
    # The uploader's file name (base name only), shown to members and used on download.
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    # Detected from the content (magic bytes), never taken from the client's claim.
    content_type = models.CharField(max_length=100)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # One attachment per message. SET_NULL: a deleted (archived) message leaves its upload
    # unlinked, and the orphan sweep removes the files too.
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachment"
    )

    class Meta:
        indexes = [
            # The orphan sweep: unlinked uploads by age.
            models.Index(
                fields=["created_at"], name="attachment_orphan_created", condition=models.Q(message__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"attachment:{self.id}"
