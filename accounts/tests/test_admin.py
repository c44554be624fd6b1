"""Django admin of users: list, search by username/email/nickname, change page."""
from __future__ import annotations

import pytest


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.mark.django_db
class TestUserAdmin:
    @pytest.mark.parametrize("query", ["alice", "alice@example.com", "Wonder"])
    def test_search_by_username_email_nickname(self, staff_client, make_user, bob, query):
        make_user("alice", email="alice@example.com", nickname="Wonderland")
        page = staff_client.get("/admin/accounts/user/", {"q": query}).content.decode()
        assert "/admin/accounts/user/" in page
        assert ">alice<" in page
        assert ">bob<" not in page

    def test_change_page_shows_profile_fields(self, staff_client, alice):
        r = staff_client.get(f"/admin/accounts/user/{alice.id}/change/")
        assert r.status_code == 200
        page = r.content.decode()
        assert 'name="nickname"' in page and 'name="avatar"' in page and 'name="status"' in page

    def test_not_for_regular_users(self, client, alice):
        client.force_login(alice)
        r = client.get("/admin/accounts/user/")
        assert r.status_code == 302
