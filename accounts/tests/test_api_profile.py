"""REST: users/profile (read and edit my account) and users/lookup (find a user by name)."""
from __future__ import annotations

import pytest

from accounts.models import User
from accounts.representations import public_user_dict
from accounts.tests.support import assert_error

PROFILE = "/api/v1/users/profile"
LOOKUP = "/api/v1/users/lookup"


@pytest.mark.django_db
class TestProfile:
    def test_get_shows_my_account(self, client_for, alice):
        r = client_for(alice).get(PROFILE)
        assert r.status_code == 200
        body = r.json()
        assert body["id"] == str(alice.id)
        assert body["username"] == "alice" and body["nickname"] == "Alice"
        assert set(body) == {"id", "username", "nickname", "avatar", "status", "email", "date_joined", "send_read_receipts"}

    def test_patch_changes_only_the_fields_given(self, client_for, alice):
        r = client_for(alice).patch(PROFILE, {"status": "in a meeting"}, format="json")
        assert r.status_code == 200, r.content
        assert r.json()["status"] == "in a meeting" and r.json()["nickname"] == "Alice"
        alice.refresh_from_db()
        assert alice.status == "in a meeting" and alice.nickname == "Alice"

    def test_put_replaces_every_editable_field(self, client_for, alice):
        body = {"nickname": "Al", "email": "al@example.com", "avatar": "https://cdn.example.com/a.png", "status": ""}
        r = client_for(alice).put(PROFILE, body, format="json")
        assert r.status_code == 200, r.content
        alice.refresh_from_db()
        assert (alice.nickname, alice.email, alice.avatar, alice.status) == ("Al", "al@example.com", "https://cdn.example.com/a.png", "")

    def test_put_needs_every_field(self, client_for, alice):
        body = assert_error(client_for(alice).put(PROFILE, {"nickname": "Al"}, format="json"), 400, 1001)
        assert {"email", "avatar", "status"} <= set(body["details"])

    def test_username_cannot_be_changed(self, client_for, alice):
        body = assert_error(client_for(alice).patch(PROFILE, {"username": "mallory"}, format="json"), 400, 1001)
        assert "username" in body["details"]
        alice.refresh_from_db()
        assert alice.username == "alice"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"avatar": "not a url"}, "avatar"),
            ({"email": "nope"}, "email"),
            ({"nickname": "x" * 65}, "nickname"),
            ({"status": "s" * 141}, "status"),
            ({"nickname": 42}, "nickname"),
        ],
    )
    def test_bad_values(self, client_for, alice, body, field):
        result = assert_error(client_for(alice).patch(PROFILE, body, format="json"), 400, 1001)
        assert field in result["details"]

    def test_edit_is_only_of_my_own_account(self, client_for, alice, bob):
        client_for(bob).patch(PROFILE, {"nickname": "Bobby"}, format="json")
        alice.refresh_from_db()
        assert alice.nickname == "Alice"

    def test_needs_authentication(self, api_client):
        assert_error(api_client.get(PROFILE), 401, 1002)
        assert_error(api_client.patch(PROFILE, {"status": "x"}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestLookup:
    def test_finds_the_public_profile(self, client_for, alice, bob):
        r = client_for(alice).get(LOOKUP, {"username": "bob"})
        assert r.status_code == 200
        assert r.json() == {"id": str(bob.id), "username": "bob", "nickname": "Bob", "avatar": "", "status": ""}

    def test_hides_private_fields(self, client_for, alice, make_user):
        make_user("dora", email="dora@example.com")
        body = client_for(alice).get(LOOKUP, {"username": "dora"}).json()
        assert "email" not in body and "is_staff" not in body

    def test_is_case_insensitive(self, client_for, alice, bob):
        assert client_for(alice).get(LOOKUP, {"username": "BOB"}).json()["id"] == str(bob.id)

    def test_unknown_username(self, client_for, alice):
        assert_error(client_for(alice).get(LOOKUP, {"username": "nobody"}), 404, 1003)

    def test_inactive_user_is_not_found(self, client_for, alice, make_user):
        make_user("left", is_active=False)
        assert_error(client_for(alice).get(LOOKUP, {"username": "left"}), 404, 1003)

    def test_missing_username(self, client_for, alice):
        body = assert_error(client_for(alice).get(LOOKUP), 400, 1001)
        assert "username" in body["details"]

    def test_needs_authentication(self, api_client, bob):
        assert_error(api_client.get(LOOKUP, {"username": "bob"}), 401, 1002)


@pytest.mark.django_db
def test_public_user_dict_is_the_public_shape(alice):
    alice.avatar = "https://cdn.example.com/alice.png"
    assert public_user_dict(alice) == {
        "id": str(alice.id),
        "username": "alice",
        "nickname": "Alice",
        "avatar": "https://cdn.example.com/alice.png",
        "status": "",
    }
    assert User.objects.get(id=alice.id).username == "alice"
