"""Site-wide HTTP behaviour: health checks, the OpenAPI schema and Swagger UI, and the
JSON error body for unknown URLs and crashes."""
from __future__ import annotations

import pytest
import yaml
from django.test import Client

from accounts.tests.support import assert_error


@pytest.mark.django_db
class TestHealth:
    def test_healthz(self, client):
        r = client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    def test_readyz_checks_database_and_cache(self, client):
        r = client.get("/readyz")
        assert r.status_code == 200, r.content
        assert r.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "bus": "ok"}}

    def test_readyz_reports_an_unreachable_bus_broker_within_its_timeout(self, client, settings):
        import time

        from messaging.bus import reset_bus

        # Nothing listens on port 1: the producer's metadata request cannot be answered.
        settings.BUS_BACKEND = "kafka"
        settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
        settings.READYZ_BUS_TIMEOUT_SECONDS = 1.0
        reset_bus()
        try:
            started = time.monotonic()
            r = client.get("/readyz")
            elapsed = time.monotonic() - started
        finally:
            reset_bus()
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not ready"
        assert body["checks"]["bus"].startswith("error")
        assert body["checks"]["database"] == "ok"
        assert elapsed < 5

    def test_readyz_reports_a_broken_cache(self, client, settings):
        # A cache backend that cannot reach its server (nothing listens on port 1);
        # Django rebuilds the cache handlers when the setting changes.
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:1/0",
            }
        }
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["cache"].startswith("error")


@pytest.mark.django_db
class TestSchema:
    ACCOUNT_AND_GROUP_PATHS = [
        "/api/v1/users/register",
        "/api/v1/users/profile",
        "/api/v1/users/lookup",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/groups",
        "/api/v1/groups/create",
        "/api/v1/groups/{group_id}",
        "/api/v1/groups/{group_id}/join",
        "/api/v1/groups/{group_id}/leave",
        "/api/v1/groups/{group_id}/members",
        "/api/v1/groups/{group_id}/members/remove",
        "/api/v1/groups/{group_id}/members/{user_id}/role",
    ]

    def test_schema_lists_the_account_and_group_routes(self, client):
        r = client.get("/api/schema/")
        assert r.status_code == 200
        schema = yaml.safe_load(r.content)
        for path in self.ACCOUNT_AND_GROUP_PATHS:
            assert path in schema["paths"], path
        login = schema["paths"]["/api/v1/auth/login"]["post"]
        assert login["security"] == [{}]  # no token needed to log in
        assert "LoginResponse" in str(login["responses"]["200"])
        assert set(schema["paths"]["/api/v1/groups/{group_id}/members"]) == {"get", "post"}
        assert set(schema["paths"]["/api/v1/groups/{group_id}/members/{user_id}"]) == {"delete"}

    def test_schema_generation_has_no_warnings(self):
        from django.core.management import call_command

        # --fail-on-warn turns any warning or error of drf-spectacular into a failure.
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")

    def test_swagger_ui(self, client):
        r = client.get("/api/docs/")
        assert r.status_code == 200
        assert b"swagger" in r.content.lower()


@pytest.mark.django_db
class TestJsonErrors:
    @pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v2/users/profile", "/api/v1/groups/1/nothing"])
    def test_unknown_api_url_is_json_404(self, client, path):
        r = client.get(path)
        assert r["Content-Type"].startswith("application/json")
        assert_error(r, 404, 1003)

    def test_wrong_method_is_invalid_params(self, client_for, alice):
        assert_error(client_for(alice).get("/api/v1/groups/create"), 405, 1001)

    def test_crash_outside_drf_is_json_500(self, settings):
        settings.ROOT_URLCONF = "gochat_site.tests.crash_urls"
        client = Client(raise_request_exception=False)
        r = client.get("/boom")
        assert r["Content-Type"].startswith("application/json")
        assert_error(r, 500, 1004)
