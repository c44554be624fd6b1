"""Messaging REST routes; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from gochat_site.id_params import register_id_converter
from messaging import views

register_id_converter()

urlpatterns = [
    path("messages/send", views.SendMessageView.as_view(), name="messages-send"),
    path("messages/history", views.HistoryView.as_view(), name="messages-history"),
    path("messages/unread", views.UnreadView.as_view(), name="messages-unread"),
    path("messages/<id:message_id>", views.MessageEditView.as_view(), name="message-edit"),
    path("messages/<id:message_id>/recall", views.MessageRecallView.as_view(), name="message-recall"),
    path("messages/<id:message_id>/hide", views.MessageHideView.as_view(), name="message-hide"),
    path("messages/<id:message_id>/reaction", views.MessageReactionView.as_view(), name="message-reaction"),
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    # <id:...> is gochat_site.id_params.IdConverter: only an id in range matches, so
    # "create" and any malformed id (answered 404) never reach a view as one.
    path("conversations/create", views.ConversationCreateView.as_view(), name="conversations-create"),
    path("conversations/<id:conversation_id>", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<id:conversation_id>/read", views.ConversationReadView.as_view(), name="conversation-read"),
    path(
        "conversations/<id:conversation_id>/receipts",
        views.ConversationReceiptsView.as_view(),
        name="conversation-receipts",
    ),
    path("devices", views.DevicesView.as_view(), name="devices"),
    # Attachments (issue 10).
    path("uploads", views.UploadView.as_view(), name="uploads"),
    path("attachments/<id:attachment_id>", views.AttachmentView.as_view(), name="attachment-detail"),
    path("attachments/<id:attachment_id>/download", views.AttachmentDownloadView.as_view(), name="attachment-download"),
    path(
        "attachments/<id:attachment_id>/thumbnail", views.AttachmentThumbnailView.as_view(), name="attachment-thumbnail"
    ),
]
