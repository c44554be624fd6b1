"""Django admin of the messaging app: conversations and devices are editable by staff;
messages are read-only, because only messaging.services may create or change them
(seq and dedupe invariants). Each message links to its delivery trace (the timeline of
messaging.delivery_trace)."""
from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from messaging import delivery_trace

from messaging.models import Attachment, Conversation, ConversationMember, Device, Message


class ConversationMemberInline(admin.TabularInline):
    model = ConversationMember
    extra = 0
    can_delete = False
    raw_id_fields = ["user"]
    fields = ["user", "last_read_seq", "last_delivered_seq", "muted", "pinned", "joined_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001 - admin signature
        # Membership follows group membership (group_sync) or the user pair; adding
        # rows here would bypass both.
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "group", "last_seq", "last_message_at", "updated_at"]
    list_filter = ["type"]
    search_fields = ["=id", "pair_key", "group__name"]
    raw_id_fields = ["group"]
    readonly_fields = [
        "id",
        "type",
        "pair_key",
        "group",
        "last_seq",
        "last_message_id",
        "last_message_preview",
        "last_message_sender_id",
        "last_message_at",
        "created_at",
        "updated_at",
    ]
    inlines = [ConversationMemberInline]
    ordering = ["-updated_at"]


@admin.register(ConversationMember)
class ConversationMemberAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "user", "last_read_seq", "last_delivered_seq", "muted", "pinned", "joined_at"]
    list_filter = ["muted", "pinned"]
    search_fields = ["user__username", "=conversation__id"]
    raw_id_fields = ["conversation", "user"]
    # Read positions are moved by mark_read only (never backwards); staff may change settings.
    readonly_fields = ["conversation", "user", "last_read_seq", "last_delivered_seq", "joined_at"]
    list_select_related = ["conversation", "user"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "seq", "sender", "message_type", "status", "created_at"]
    list_filter = ["message_type", "status"]
    search_fields = ["content", "client_msg_id"]
    raw_id_fields = ["conversation", "sender"]
    list_select_related = ["conversation", "sender"]
    ordering = ["-created_at"]
    # list_select_related plus a big table: skip the COUNT(*) of the unfiltered list.
    show_full_result_count = False
    readonly_fields = ["delivery_trace_link"]

    @admin.display(description="delivery trace")
    def delivery_trace_link(self, obj: Message) -> str:
        url = reverse("admin:messaging_message_trace", args=[obj.pk])
        return format_html('<a href="{}">timeline</a>', url)

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return [*super().get_list_display(request), "delivery_trace_link"]

    def get_urls(self):  # noqa: ANN201 - admin signature
        trace = self.admin_site.admin_view(self.delivery_trace_view)
        return [path("<int:message_id>/trace/", trace, name="messaging_message_trace"), *super().get_urls()]

    def delivery_trace_view(self, request: HttpRequest, message_id: int) -> HttpResponse:
        """The timeline of one message: accepted, persisted, routed, fanned out, pushed,
        delivered to which sockets, read by whom."""
        message = Message.objects.filter(pk=message_id).select_related("sender").first()
        if message is None or not self.has_view_permission(request, message):
            raise Http404("no such message")
        events = delivery_trace.timeline(
            message_id=message.id, conversation_id=message.conversation_id, seq=message.seq
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Delivery trace of message {message.id}",
            "message_obj": message,
            "events": delivery_trace.for_display(events),
            "readers": delivery_trace.readers(message=message),
            "trace_enabled": delivery_trace.enabled(),
        }
        return TemplateResponse(request, "admin/messaging/message/delivery_trace.html", context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "platform", "created_at", "last_seen"]
    list_filter = ["platform"]
    search_fields = ["user__username", "token"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Read-only: uploads are created by POST uploads and linked by send_messages; the
    orphan sweep removes their files with them."""

    list_display = ["id", "name", "content_type", "size", "uploader", "message_id", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["name", "uploader__username"]
    raw_id_fields = ["uploader", "message"]
    list_select_related = ["uploader"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001 - admin signature
        return False  # a row deleted here would leave its files behind
