"""`manage.py seed_demo`: the demo data a first-time user logs in to, and a rerun that
changes nothing."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from groups.models import Group, GroupMember
from messaging.models import Conversation, Message


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestSeedDemo:
    def test_creates_users_group_and_chat(self, api_client):
        output = seed()
        assert "password: gochat-demo" in output
        assert "/api/docs/" in output and "/api/v1/" in output
        # The printed credentials work.
        r = api_client.post("/api/v1/auth/login", {"username": "bob", "password": "gochat-demo"}, format="json")
        assert r.status_code == 200, r.content
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
        groups = api_client.get("/api/v1/groups").json()
        assert [g["name"] for g in groups] == ["GoChat demo"] and groups[0]["member_count"] == 3
        conversations = {c["type"]: c for c in api_client.get("/api/v1/conversations").json()}
        assert conversations["single"]["peer"]["username"] == "alice"
        history = api_client.get("/api/v1/messages/history", {"conversation_id": conversations["single"]["id"]}).json()
        assert [m["seq"] for m in history["messages"]] == [1, 2, 3]
        assert history["messages"][0]["content"] == "Hi Bob! This is GoChat."

    def test_running_twice_changes_nothing(self):
        seed()
        counts = (User.objects.count(), Group.objects.count(), GroupMember.objects.count(), Conversation.objects.count(), Message.objects.count())
        output = seed()
        assert "messages sent this run: 0" in output
        assert "password unchanged" in output
        assert counts == (
            User.objects.count(), Group.objects.count(), GroupMember.objects.count(), Conversation.objects.count(), Message.objects.count()
        )

    def test_keeps_existing_accounts(self, alice):
        output = seed()
        alice.refresh_from_db()
        assert alice.check_password("pass-1234-word")
        assert "user alice" in output and "password unchanged" in output
        assert GroupMember.objects.filter(group__name="GoChat demo", user=alice, role="owner").exists()
