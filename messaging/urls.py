"""Messaging REST routes; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from messaging import views

urlpatterns = [
    path("messages/send", views.SendMessageView.as_view(), name="messages-send"),
    path("messages/history", views.HistoryView.as_view(), name="messages-history"),
    path("messages/unread", views.UnreadView.as_view(), name="messages-unread"),
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    # Before the detail route, which would otherwise read "create" as an id.
    path("conversations/create", views.ConversationCreateView.as_view(), name="conversations-create"),
    path("conversations/<str:conversation_id>", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<str:conversation_id>/read", views.ConversationReadView.as_view(), name="conversation-read"),
    path("devices", views.DevicesView.as_view(), name="devices"),
]
