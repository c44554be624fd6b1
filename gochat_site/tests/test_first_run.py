"""What a person meets on the first run (issue 11, "First run and the API pages"): the
API root, Swagger UI without internet, links with the real address, the demo-only
superuser and the check that keeps it out of production, `make flower` with no broker,
and an embedded start without kombu's "No hostname was supplied" warning."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command

from accounts.checks import DEMO_ADMIN_USERNAME
from accounts.models import User

ROOT = Path(__file__).resolve().parents[2]
# The variables that switch a piece away from the embedded default (settings.py).
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL", "BUS_BACKEND")


def embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES and not k.startswith(("CELERY_", "DJANGO_"))}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), **extra)
    return env


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -o install: never (re)install the shared virtualenv from a test.
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "install", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db
class TestApiRoot:
    def test_lists_every_endpoint_as_json(self, client):
        r = client.get("/api/v1/", HTTP_ACCEPT="application/json")
        assert r.status_code == 200
        endpoints = r.json()["endpoints"]
        assert endpoints["auth-login"] == "http://testserver/api/v1/auth/login"
        assert endpoints["search"] == "http://testserver/api/v1/search"
        assert endpoints["messages-send"] == "http://testserver/api/v1/messages/send"
        assert endpoints["group-detail"] == "http://testserver/api/v1/groups/<id:group_id>"
        assert r.json()["docs"] == "http://testserver/api/docs/"

    def test_is_the_browsable_api_in_a_browser(self, client):
        r = client.get("/api/v1/", HTTP_ACCEPT="text/html")
        assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
        page = r.content.decode()
        assert "GoChat API v1" in page and "/api/v1/auth/login" in page

    def test_is_not_in_the_openapi_schema(self, client):
        paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
        assert "/api/v1/" not in paths and "/api/v1/search" in paths


@pytest.mark.django_db
class TestSwaggerOffline:
    def test_page_loads_only_local_static_assets(self, client):
        r = client.get("/api/docs/")
        assert r.status_code == 200
        page = r.content.decode()
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
        assert all(a.startswith("/static/") for a in assets), assets
        # No CDN anywhere in the page (script text included).
        assert not re.search(r"https?://(?!testserver)", page), re.findall(r"https?://\S+", page)

    def test_the_assets_are_served(self, client):
        page = client.get("/api/docs/").content.decode()
        for asset in re.findall(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)["']""", page):
            response = client.get(asset)
            assert response.status_code == 200, asset
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert len(body) > (1000 if asset.endswith((".js", ".css")) else 100), asset


class TestRealAddress:
    def test_make_run_passes_its_port_to_the_printed_links(self, tmp_path):
        result = make("-n", "run", "PORT=8123", env=embedded_env(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "seed_demo --base-url http://127.0.0.1:8123" in result.stdout
        assert "runserver 127.0.0.1:8123" in result.stdout
        assert ":8000" not in result.stdout

    @pytest.mark.django_db
    def test_seed_demo_prints_the_address_it_is_given(self):
        output = seed("--base-url", "http://127.0.0.1:8123")
        links = re.findall(r"(?:https?|ws)://[^\s/]+", output)
        assert links and set(links) == {"http://127.0.0.1:8123", "ws://127.0.0.1:8123"}


@pytest.mark.django_db
class TestDemoAdmin:
    def test_seed_demo_creates_a_demo_superuser_and_says_it_is_demo_only(self, settings, client):
        settings.ALLOW_DEMO_ADMIN = True
        output = seed("--base-url", "http://127.0.0.1:8123")
        admin = User.objects.get(username=DEMO_ADMIN_USERNAME)
        assert admin.is_superuser and admin.is_staff and admin.check_password("gochat-demo")
        assert "DEMO ONLY" in output
        assert f"user {DEMO_ADMIN_USERNAME}  password: gochat-demo" in output
        assert "http://127.0.0.1:8123/admin/" in output
        # The printed credentials open the admin.
        assert client.login(username=DEMO_ADMIN_USERNAME, password="gochat-demo")
        assert client.get("/admin/").status_code == 200
        # A rerun keeps it, and does not print a password it did not set.
        again = seed()
        assert User.objects.filter(username=DEMO_ADMIN_USERNAME).count() == 1
        assert f"user {DEMO_ADMIN_USERNAME}  password: (existing account" in again

    def test_seed_demo_makes_none_where_it_is_not_allowed(self, settings):
        settings.ALLOW_DEMO_ADMIN = False
        output = seed()
        assert not User.objects.filter(username=DEMO_ADMIN_USERNAME).exists()
        assert "No demo superuser" in output and "createsuperuser" in output

    def test_the_check_refuses_the_demo_superuser_in_production(self, settings):
        settings.ALLOW_DEMO_ADMIN = True
        seed()
        settings.ALLOW_DEMO_ADMIN = False
        errors = [m for m in checks.run_checks(databases=["default"]) if m.id == "accounts.E001"]
        assert len(errors) == 1 and errors[0].level == checks.ERROR
        assert DEMO_ADMIN_USERNAME in errors[0].msg
        # migrate runs the database checks: a deployment stops there.
        with pytest.raises(Exception, match="accounts.E001"):
            call_command("migrate", "--noinput", "--check", skip_checks=False, stdout=StringIO())

    def test_the_check_passes_without_it_or_where_it_is_allowed(self, settings):
        settings.ALLOW_DEMO_ADMIN = True
        seed()
        assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "accounts.E001"]
        settings.ALLOW_DEMO_ADMIN = False
        User.objects.filter(username=DEMO_ADMIN_USERNAME).update(is_active=False)
        assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "accounts.E001"]

    def test_allowed_by_default_only_under_debug_or_the_embedded_default(self, tmp_path):
        def allowed(**env: str) -> str:
            code = "import django; django.setup(); from django.conf import settings; print(settings.ALLOW_DEMO_ADMIN)"
            full = embedded_env(tmp_path, DJANGO_SETTINGS_MODULE="gochat_site.settings", **env)
            return subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60, check=True
            ).stdout.strip()

        assert allowed() == "True"
        assert allowed(DATABASE_URL="postgres://nobody@127.0.0.1:1/none") == "False"
        assert allowed(DATABASE_URL="postgres://nobody@127.0.0.1:1/none", DEBUG="1") == "True"


class TestNeedsABroker:
    @pytest.mark.parametrize("target", ["flower", "worker", "beat"])
    def test_make_says_the_broker_is_missing_and_how_to_set_it(self, target, tmp_path):
        result = make(target, env=embedded_env(tmp_path))
        assert result.returncode != 0
        assert "CELERY_BROKER_URL is not set" in result.stderr
        assert f"CELERY_BROKER_URL=redis://127.0.0.1:6379/1 make {target}" in result.stderr
        # It stopped before starting Celery (which would have guessed amqp://localhost).
        assert "amqp://" not in result.stdout and "celery@" not in result.stdout + result.stderr


class TestEmbeddedStartIsQuiet:
    def test_no_kombu_hostname_warning(self, tmp_path):
        """The embedded default's first task (here: seed_demo's messages and an eager
        index task, as the first message of `make run` does) printed kombu's "No hostname
        was supplied" warning; the eager broker is now named."""
        env = embedded_env(tmp_path, DJANGO_SETTINGS_MODULE="gochat_site.settings")
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, timeout=300, check=True)
        code = (
            "import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('seed_demo')\n"
            "import tasks.processors.index\n"
            "from gochat_site.tasks_client import enqueue_task\n"
            "from messaging.models import Message\n"
            "enqueue_task('tasks.index_message', message_id=Message.objects.first().id)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert '"task_enqueued"' in result.stderr  # the eager task did run
        assert "No hostname was supplied" not in result.stdout + result.stderr
        assert '"level": "WARNING"' not in result.stderr, result.stderr
