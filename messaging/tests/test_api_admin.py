"""Django admin pages of the messaging app, and the OpenAPI schema of its REST routes."""
from __future__ import annotations

import pytest
import yaml

from messaging.models import Message
from messaging.services import register_device, send_message


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.fixture
def message(alice, single_chat):
    return send_message(
        sender_id=alice.id, conversation_id=single_chat.id, content="findable words", client_msg_id="adm-1"
    ).message


@pytest.mark.django_db
class TestAdmin:
    @pytest.mark.parametrize("model", ["conversation", "conversationmember", "message", "device"])
    def test_changelists_load(self, staff_client, message, alice, model):
        register_device(user_id=alice.id, platform="fcm", token="admin-tok")
        r = staff_client.get(f"/admin/messaging/{model}/")
        assert r.status_code == 200

    def test_conversation_page_shows_members_read_only(self, staff_client, single_chat, alice, message):
        r = staff_client.get(f"/admin/messaging/conversation/{single_chat.id}/change/")
        assert r.status_code == 200
        page = r.content.decode()
        assert "alice" in page and "bob" in page
        # Members are listed, not editable: no form inputs for their read positions.
        assert 'name="members-0-last_read_seq"' not in page

    def test_message_search_and_filters(self, staff_client, message):
        r = staff_client.get("/admin/messaging/message/", {"q": "findable"})
        assert r.status_code == 200 and str(message.id) in r.content.decode()
        r = staff_client.get("/admin/messaging/message/", {"q": "adm-1"})
        assert str(message.id) in r.content.decode()
        r = staff_client.get("/admin/messaging/message/", {"q": "absent-text"})
        assert str(message.id) not in r.content.decode()
        r = staff_client.get("/admin/messaging/message/", {"message_type__exact": "image"})
        assert str(message.id) not in r.content.decode()

    def test_messages_cannot_be_added_changed_or_deleted(self, staff_client, message):
        assert staff_client.get("/admin/messaging/message/add/").status_code == 403
        r = staff_client.post(f"/admin/messaging/message/{message.id}/change/", {"content": "rewritten"})
        assert r.status_code == 403
        assert staff_client.post(f"/admin/messaging/message/{message.id}/delete/", {"post": "yes"}).status_code == 403
        message.refresh_from_db()
        assert message.content == "findable words"
        assert Message.objects.filter(id=message.id).exists()


@pytest.mark.django_db
def test_schema_documents_messaging_routes(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200
    schema = yaml.safe_load(r.content)
    paths = schema["paths"]
    for route, methods in {
        "/api/v1/messages/send": {"post"},
        "/api/v1/messages/history": {"get"},
        "/api/v1/messages/unread": {"get"},
        "/api/v1/conversations": {"get"},
        "/api/v1/conversations/create": {"post"},
        "/api/v1/conversations/{conversation_id}": {"get", "put", "patch"},
        "/api/v1/conversations/{conversation_id}/read": {"post"},
        "/api/v1/devices": {"get", "post", "delete"},
    }.items():
        assert methods <= set(paths[route]), route
    send = paths["/api/v1/messages/send"]["post"]
    assert {"200", "201"} <= set(send["responses"])
    history_params = {p["name"] for p in paths["/api/v1/messages/history"]["get"]["parameters"]}
    assert {"conversation_id", "before_seq", "after_seq", "limit"} <= history_params
