"""REST: users/register, auth/login, auth/refresh, auth/logout, and what the API says to
missing, expired and forged tokens."""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from accounts.tests.support import assert_error, clear_throttle_history

REGISTER = "/api/v1/users/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PROFILE = "/api/v1/users/profile"
GOOD_PASSWORD = "correct-horse-battery"


def bearer(api_client, token) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db
class TestRegister:
    def test_creates_the_account_and_returns_it(self, api_client):
        r = api_client.post(
            REGISTER,
            {"username": "dave", "password": GOOD_PASSWORD, "email": "dave@example.com", "nickname": "Dave"},
            format="json",
        )
        assert r.status_code == 201, r.content
        body = r.json()
        user = User.objects.get(username="dave")
        assert body["id"] == str(user.id)
        assert body["username"] == "dave" and body["nickname"] == "Dave" and body["email"] == "dave@example.com"
        assert "password" not in body
        assert user.check_password(GOOD_PASSWORD)

    def test_email_and_nickname_are_optional(self, api_client):
        r = api_client.post(REGISTER, {"username": "erin", "password": GOOD_PASSWORD}, format="json")
        assert r.status_code == 201
        assert r.json()["nickname"] == "" and r.json()["email"] == ""

    def test_new_account_can_log_in(self, api_client):
        api_client.post(REGISTER, {"username": "frank", "password": GOOD_PASSWORD}, format="json")
        r = api_client.post(LOGIN, {"username": "frank", "password": GOOD_PASSWORD}, format="json")
        assert r.status_code == 200

    def test_duplicate_username_is_a_conflict(self, api_client, alice):
        body = assert_error(api_client.post(REGISTER, {"username": "alice", "password": GOOD_PASSWORD}, format="json"), 409, 1007)
        assert "username" in body["details"]

    def test_duplicate_username_in_other_case_is_a_conflict(self, api_client, alice):
        assert_error(api_client.post(REGISTER, {"username": "ALICE", "password": GOOD_PASSWORD}, format="json"), 409, 1007)

    @pytest.mark.parametrize(
        ("password", "why"),
        [("short1", "too short"), ("12345678901", "entirely numeric"), ("password123", "too common")],
    )
    def test_weak_password_is_refused_by_django_validators(self, api_client, password, why):
        body = assert_error(api_client.post(REGISTER, {"username": "gina", "password": password}, format="json"), 400, 1001)
        assert body["details"]["password"], why
        assert not User.objects.filter(username="gina").exists()

    def test_password_similar_to_username_is_refused(self, api_client):
        assert_error(api_client.post(REGISTER, {"username": "hannah-smith", "password": "hannah-smith"}, format="json"), 400, 1001)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"password": GOOD_PASSWORD}, "username"),
            ({"username": "ivan"}, "password"),
            ({"username": 12345, "password": GOOD_PASSWORD}, "username"),
            ({"username": "ivan", "password": ["x"]}, "password"),
            ({"username": "has space", "password": GOOD_PASSWORD}, "username"),
            ({"username": "x" * 151, "password": GOOD_PASSWORD}, "username"),
            ({"username": "ivan", "password": GOOD_PASSWORD, "email": "not-an-email"}, "email"),
            ({"username": "ivan", "password": GOOD_PASSWORD, "nickname": "n" * 65}, "nickname"),
        ],
    )
    def test_bad_input_names_the_field(self, api_client, body, field):
        result = assert_error(api_client.post(REGISTER, body, format="json"), 400, 1001)
        assert field in result["details"]

    def test_non_json_body_is_invalid_params(self, api_client):
        r = api_client.post(REGISTER, data="{not json", content_type="application/json")
        assert_error(r, 400, 1001)

    def test_register_is_throttled(self, api_client, settings):
        rest = {**settings.REST_FRAMEWORK}
        rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "register": "2/min"}
        with override_settings(REST_FRAMEWORK=rest):
            clear_throttle_history()
            for name in ("reg1", "reg2"):
                assert api_client.post(REGISTER, {"username": name, "password": GOOD_PASSWORD}, format="json").status_code == 201
            body = assert_error(api_client.post(REGISTER, {"username": "reg3", "password": GOOD_PASSWORD}, format="json"), 429, 1006)
        assert body["details"]["retry_after"] > 0
        assert not User.objects.filter(username="reg3").exists()


@pytest.mark.django_db
class TestLogin:
    def test_returns_tokens_and_user(self, api_client, alice):
        r = api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json")
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["user"]["id"] == str(alice.id) and body["user"]["username"] == "alice"
        assert AccessToken(body["access"])["user_id"] == str(alice.id)
        assert RefreshToken(body["refresh"])["user_id"] == str(alice.id)
        alice.refresh_from_db()
        assert alice.last_login is not None

    def test_access_token_opens_the_api(self, api_client, alice):
        tokens = api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json").json()
        bearer(api_client, tokens["access"])
        r = api_client.get(PROFILE)
        assert r.status_code == 200 and r.json()["username"] == "alice"

    def test_wrong_password_is_unauthorized(self, api_client, alice):
        assert_error(api_client.post(LOGIN, {"username": "alice", "password": "wrong-one-here"}, format="json"), 401, 1002)

    def test_unknown_user_gets_the_same_answer(self, api_client, alice):
        wrong = api_client.post(LOGIN, {"username": "alice", "password": "wrong-one-here"}, format="json").json()
        unknown = api_client.post(LOGIN, {"username": "nobody", "password": "wrong-one-here"}, format="json").json()
        assert wrong["message"] == unknown["message"]
        assert unknown["code"] == 1002

    def test_inactive_user_cannot_log_in(self, api_client, make_user):
        make_user("gone", is_active=False)
        assert_error(api_client.post(LOGIN, {"username": "gone", "password": "pass-1234-word"}, format="json"), 401, 1002)

    @pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"password": "x"}, {"username": ["alice"], "password": "x"}])
    def test_missing_or_wrong_typed_fields(self, api_client, alice, body):
        assert_error(api_client.post(LOGIN, body, format="json"), 400, 1001)

    def test_stale_bearer_header_does_not_block_login(self, api_client, alice):
        bearer(api_client, "garbage.token.value")
        assert api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json").status_code == 200

    def test_login_is_throttled_per_client(self, api_client, alice, settings):
        rest = {**settings.REST_FRAMEWORK}
        rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "login": "3/min"}
        with override_settings(REST_FRAMEWORK=rest):
            clear_throttle_history()
            for _ in range(3):
                assert_error(api_client.post(LOGIN, {"username": "alice", "password": "bad-guess-1"}, format="json"), 401, 1002)
            # Even the right password is refused once the budget is spent.
            r = api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json")
            body = assert_error(r, 429, 1006)
        assert body["details"]["retry_after"] > 0
        assert int(r["Retry-After"]) > 0
        # The same four requests are well inside the configured default rate (20/min).
        assert api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json").status_code == 200


@pytest.mark.django_db
class TestRefresh:
    def login(self, api_client, user) -> dict:
        return api_client.post(LOGIN, {"username": user.username, "password": "pass-1234-word"}, format="json").json()

    def test_rotation_gives_a_new_pair(self, api_client, alice):
        tokens = self.login(api_client, alice)
        r = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
        assert r.status_code == 200, r.content
        fresh = r.json()
        assert fresh["refresh"] != tokens["refresh"] and fresh["access"]
        bearer(api_client, fresh["access"])
        assert api_client.get(PROFILE).json()["username"] == "alice"

    def test_used_refresh_token_is_rejected(self, api_client, alice):
        tokens = self.login(api_client, alice)
        assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 200
        assert_error(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, 1002)

    def test_rotated_token_rotates_again(self, api_client, alice):
        first = self.login(api_client, alice)["refresh"]
        second = api_client.post(REFRESH, {"refresh": first}, format="json").json()["refresh"]
        third = api_client.post(REFRESH, {"refresh": second}, format="json")
        assert third.status_code == 200

    def test_access_token_is_not_a_refresh_token(self, api_client, alice):
        tokens = self.login(api_client, alice)
        assert_error(api_client.post(REFRESH, {"refresh": tokens["access"]}, format="json"), 401, 1002)

    def test_expired_refresh_token(self, api_client, alice):
        token = RefreshToken.for_user(alice)
        token.set_exp(lifetime=-timedelta(minutes=1))
        assert_error(api_client.post(REFRESH, {"refresh": str(token)}, format="json"), 401, 1002)

    def test_forged_refresh_token(self, api_client, alice):
        payload = dict(RefreshToken.for_user(alice).payload)
        forged = jwt.encode(payload, "another-secret-key-of-an-attacker", algorithm="HS256")
        assert_error(api_client.post(REFRESH, {"refresh": forged}, format="json"), 401, 1002)

    def test_deactivated_user_cannot_refresh(self, api_client, alice):
        tokens = self.login(api_client, alice)
        User.objects.filter(id=alice.id).update(is_active=False)
        assert_error(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, 1002)

    @pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": 5}])
    def test_missing_or_wrong_typed_token(self, api_client, body):
        assert_error(api_client.post(REFRESH, body, format="json"), 400, 1001)

    def test_garbage_token(self, api_client):
        assert_error(api_client.post(REFRESH, {"refresh": "not-a-jwt"}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestLogout:
    def test_blacklists_the_refresh_token(self, api_client, alice):
        tokens = api_client.post(LOGIN, {"username": "alice", "password": "pass-1234-word"}, format="json").json()
        bearer(api_client, tokens["access"])
        r = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
        assert r.status_code == 204, r.content
        assert_error(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, 1002)

    def test_works_with_an_expired_access_token(self, api_client, alice):
        refresh = RefreshToken.for_user(alice)
        stale = AccessToken.for_user(alice)
        stale.set_exp(lifetime=-timedelta(minutes=1))
        bearer(api_client, str(stale))
        assert api_client.post(LOGOUT, {"refresh": str(refresh)}, format="json").status_code == 204
        assert_error(api_client.post(REFRESH, {"refresh": str(refresh)}, format="json"), 401, 1002)

    def test_other_sessions_stay_open(self, api_client, alice):
        phone = RefreshToken.for_user(alice)
        laptop = RefreshToken.for_user(alice)
        assert api_client.post(LOGOUT, {"refresh": str(phone)}, format="json").status_code == 204
        assert api_client.post(REFRESH, {"refresh": str(laptop)}, format="json").status_code == 200

    def test_twice_is_unauthorized(self, api_client, alice):
        refresh = str(RefreshToken.for_user(alice))
        api_client.post(LOGOUT, {"refresh": refresh}, format="json")
        assert_error(api_client.post(LOGOUT, {"refresh": refresh}, format="json"), 401, 1002)

    def test_bad_input(self, api_client):
        assert_error(api_client.post(LOGOUT, {}, format="json"), 400, 1001)
        assert_error(api_client.post(LOGOUT, {"refresh": "nope"}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestBearerTokens:
    """Every authenticated route answers 401/1002 to a missing, expired or forged token."""

    def test_missing_token(self, api_client):
        body = assert_error(api_client.get(PROFILE), 401, 1002)
        assert "credentials" in body["message"].lower()

    def test_expired_access_token(self, api_client, alice):
        token = AccessToken.for_user(alice)
        token.set_exp(lifetime=-timedelta(seconds=30))
        bearer(api_client, token)
        assert_error(api_client.get(PROFILE), 401, 1002)

    def test_access_token_signed_with_another_key(self, api_client, alice):
        payload = dict(AccessToken.for_user(alice).payload)
        bearer(api_client, jwt.encode(payload, "another-secret-key-of-an-attacker", algorithm="HS256"))
        assert_error(api_client.get(PROFILE), 401, 1002)

    def test_refresh_token_used_as_bearer(self, api_client, alice):
        bearer(api_client, RefreshToken.for_user(alice))
        assert_error(api_client.get(PROFILE), 401, 1002)

    def test_token_of_a_deleted_user(self, api_client, make_user):
        ghost = make_user("ghost")
        token = AccessToken.for_user(ghost)
        ghost.delete()
        bearer(api_client, token)
        assert_error(api_client.get(PROFILE), 401, 1002)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_succeed_once(alice):
    """A stolen refresh token replayed at the same moment as the real client's rotation:
    exactly one of the two gets a new pair."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    refresh = str(RefreshToken.for_user(alice))
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            barrier.wait()
            statuses.append(APIClient().post(REFRESH, {"refresh": refresh}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 401, 401, 401]
