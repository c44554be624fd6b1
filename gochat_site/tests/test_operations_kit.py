"""What the deployment files rely on, run for real: probe paths answered whatever the
Host header, the consumer roles' liveness, beat's heartbeat file and its probe,
wait_for_migrations, and the error counters the dashboard and alerts read
(gochat_db_errors_total, gochat_redis_errors_total)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection, connections
from django.test import AsyncClient, Client

from gochat_site import metrics

ROOT = Path(__file__).resolve().parents[2]
POD_IP_HOST = "10.1.2.3:8000"


def counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get()


# --- probes under a narrowed ALLOWED_HOSTS ----------------------------------------------


@pytest.fixture
def narrowed_hosts(settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probe_paths_answer_a_pod_ip_host(narrowed_hosts, path):
    response = Client().get(path, HTTP_HOST=POD_IP_HOST)
    assert response.status_code == 200, response.content[:200]


@pytest.mark.django_db
def test_other_paths_still_refuse_a_host_not_allowed(narrowed_hosts):
    assert Client().get("/api/v1/conversations", HTTP_HOST=POD_IP_HOST).status_code == 400
    assert Client().get("/healthz/", HTTP_HOST=POD_IP_HOST).status_code == 400
    # POST is no probe: it takes the normal path and its host check.
    assert Client().post("/healthz", HTTP_HOST=POD_IP_HOST).status_code == 400
    assert Client().get("/api/v1/conversations", HTTP_HOST="chat.example.com").status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_probe_paths_answer_a_pod_ip_host_under_asgi(narrowed_hosts):
    client = AsyncClient()
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await client.get(path, headers={"host": POD_IP_HOST})
        assert response.status_code == 200, (path, response.content[:200])
    assert (await client.get("/api/v1/conversations", headers={"host": POD_IP_HOST})).status_code == 400
    # /readyz queried the database from the thread-sensitive executor: close that connection.
    await sync_to_async(connections.close_all, thread_sensitive=True)()


# --- consumer roles: liveness is the loop turning ---------------------------------------


def _status(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_consumer_healthz_fails_once_the_loop_stops_turning(settings):
    from gochat_site.health import serve_consumer_health
    from messaging.consumers_registry import ConsumerHealth

    settings.HEALTH_LOOP_TIMEOUT_SECONDS = 0.3
    health = ConsumerHealth("task-bridge")
    server = serve_consumer_health(health, port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        assert _status(url)[0] == 200  # starting up: not judged yet
        health.beat()
        assert _status(url)[0] == 200
        time.sleep(0.4)
        status, body = _status(url)
        assert status == 503 and body["status"] == "wedged" and body["consumer"] == "task-bridge"
        health.beat()
        assert _status(url)[0] == 200
    finally:
        server.shutdown()
        server.server_close()


# --- beat: heartbeat file and its probe ---------------------------------------------------


def test_heartbeat_probe_passes_on_a_fresh_file_and_fails_on_a_stale_or_missing_one(tmp_path):
    from gochat_site import heartbeat

    path = tmp_path / "beat-heartbeat"
    probe = [sys.executable, "-m", "gochat_site.heartbeat", str(path), "60"]
    missing = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 1 and "no heartbeat file" in missing.stderr
    path.touch()
    assert subprocess.run(probe, cwd=ROOT, capture_output=True).returncode == 0
    old = time.time() - 120
    os.utime(path, (old, old))
    stale = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True)
    assert stale.returncode == 1 and "old" in stale.stderr
    assert heartbeat.check(str(path), 60, now=old + 10)[0] is True


def test_beat_scheduler_touches_the_heartbeat_file_on_every_tick(settings, tmp_path):
    from gochat_site.beat import HeartbeatScheduler
    from gochat_site.celery import app

    settings.BEAT_HEARTBEAT_FILE = str(tmp_path / "beat-heartbeat")
    scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.setup_schedule()
    try:
        # Nothing is due on a fresh schedule: tick() only computes the next wake-up.
        scheduler.schedule.clear()
        scheduler.tick()
        first = Path(settings.BEAT_HEARTBEAT_FILE).stat().st_mtime
        os.utime(settings.BEAT_HEARTBEAT_FILE, (first - 100, first - 100))
        scheduler.tick()
        assert Path(settings.BEAT_HEARTBEAT_FILE).stat().st_mtime > first - 50
    finally:
        scheduler.close()
    assert app.conf.beat_scheduler == "gochat_site.beat:HeartbeatScheduler"


# --- wait_for_migrations -----------------------------------------------------------------


@pytest.mark.django_db
def test_wait_for_migrations_returns_at_once_on_a_migrated_database(capsys):
    call_command("wait_for_migrations", "--timeout", "5")
    assert "every migration is applied" in capsys.readouterr().out


def test_wait_for_migrations_gives_up_on_an_unmigrated_database_and_never_migrates(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL"}}
    env["SQLITE_PATH"] = str(tmp_path / "fresh.sqlite3")
    command = [sys.executable, "manage.py", "wait_for_migrations", "--timeout", "1", "--interval", "0.2"]
    waited = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert waited.returncode == 1
    assert "not applied yet" in waited.stderr and "gave up" in waited.stderr
    # It only looked: a second look still finds everything pending, and after migrate it passes.
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    ok = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_wait_for_migrations_options_are_checked():
    with pytest.raises(CommandError):
        call_command("wait_for_migrations", "--timeout", "soon")


# --- error counters ---------------------------------------------------------------------


@pytest.mark.django_db
def test_database_errors_are_counted_by_class():
    before = counter(metrics.DB_ERRORS, vendor=connection.vendor, error="ProgrammingError")
    before_operational = counter(metrics.DB_ERRORS, vendor=connection.vendor, error="OperationalError")
    with pytest.raises(DatabaseError):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM gochat_no_such_table")
    after = counter(metrics.DB_ERRORS, vendor=connection.vendor, error="ProgrammingError")
    after_operational = counter(metrics.DB_ERRORS, vendor=connection.vendor, error="OperationalError")
    # PostgreSQL says ProgrammingError (undefined table); SQLite says OperationalError.
    assert (after - before) + (after_operational - before_operational) == 1
    assert "gochat_db_errors_total" in Client().get("/metrics").content.decode()


def test_redis_errors_are_counted_by_component():
    import redis

    from gochat_site.redis_errors import PresenceConnection

    # Nothing listens on port 1: every connect fails, as with a Redis that is down.
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", connection_class=PresenceConnection, socket_connect_timeout=1)
    before = sum(
        counter(metrics.REDIS_ERRORS, component="presence", error=name) for name in ("ConnectionError", "TimeoutError")
    )
    with pytest.raises(redis.ConnectionError):
        client.ping()
    after = sum(
        counter(metrics.REDIS_ERRORS, component="presence", error=name) for name in ("ConnectionError", "TimeoutError")
    )
    assert after > before


async def test_async_redis_errors_are_counted():
    import redis
    import redis.asyncio as aredis

    from gochat_site.redis_errors import AsyncRateLimitConnection

    pool = aredis.ConnectionPool.from_url("redis://127.0.0.1:1/0", connection_class=AsyncRateLimitConnection,
                                          socket_connect_timeout=1)
    client = aredis.Redis(connection_pool=pool)
    before = counter(metrics.REDIS_ERRORS, component="ratelimit", error="ConnectionError")
    with pytest.raises(redis.ConnectionError):
        await client.ping()
    await client.aclose()
    assert counter(metrics.REDIS_ERRORS, component="ratelimit", error="ConnectionError") > before


@pytest.mark.redis
def test_the_django_cache_counts_redis_errors(settings):
    from gochat_site.redis_errors import CacheConnection

    assert settings.CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["connection_class"] is CacheConnection


# --- the gateway heartbeat the "not heartbeating" alert reads -----------------------------


async def test_gateway_heartbeat_publishes_its_time(settings):
    import asyncio

    from messaging.gateway import loops

    settings.GATEWAY_ID = "gw-heartbeat-test"
    gauge = metrics.GATEWAY_HEARTBEAT.labels(gateway="gw-heartbeat-test")
    gauge.set(0)
    stop = asyncio.Event()
    started = time.time()
    task = asyncio.create_task(loops._gateway_heartbeat(stop))
    try:
        for _ in range(100):
            if gauge._value.get() >= started:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert started <= gauge._value.get() <= time.time()
