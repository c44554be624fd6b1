"""Registration under concurrency on the embedded default: a real `manage.py runserver`
on a file-based SQLite database (WAL), 16 clients registering at the same moment.

Issue 8 item 8: they got 500 "database is locked" because the password hash (PBKDF2,
hundreds of milliseconds) ran inside the SQLite write transaction, so each registration
held the database-wide write lock for a whole hash while the others queued behind it
until their busy timeout ran out."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.harness.stack import Stack, embedded_env

pytestmark = pytest.mark.e2e

CLIENTS = 16
PASSWORD = "correct-horse-9-battery"
# Short on purpose: a write now holds the lock for milliseconds, so one second is ample.
# With the hash inside the transaction, 16 hashes queue for several seconds and this
# fails the way the issue saw it (there with the 20 s default on one loaded core).
BUSY_TIMEOUT_SECONDS = 1


@pytest.fixture
def embedded_server(tmp_path):
    env = embedded_env(
        SQLITE_PATH=tmp_path / "gochat.sqlite3",
        GATEWAY_ID="gw-register",
        SQLITE_BUSY_TIMEOUT_SECONDS=BUSY_TIMEOUT_SECONDS,
        # Throttling is not what this test is about: 16 registrations from one address.
        THROTTLE_REGISTER="100/min",
        THROTTLE_LOGIN="100/min",
    )
    stack = Stack(env, tmp_path / "procs")
    try:
        stack.manage("migrate", "--noinput", "-v", "0")
        yield stack.runserver()
    finally:
        stack.stop()


def test_sixteen_registrations_at_once_all_get_201_and_can_log_in(embedded_server):
    base = embedded_server.url
    start = threading.Barrier(CLIENTS)

    def register(n: int) -> httpx.Response:
        start.wait()
        return httpx.post(
            f"{base}/api/v1/users/register", json={"username": f"racer{n}", "password": PASSWORD}, timeout=120
        )

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(register, range(CLIENTS)))

    failed = [(r.status_code, r.text) for r in responses if r.status_code != 201]
    assert failed == [], f"{len(failed)} of {CLIENTS} failed: {failed[:3]}\n{embedded_server.log_tail()}"
    assert sorted(r.json()["username"] for r in responses) == sorted(f"racer{n}" for n in range(CLIENTS))
    # The stored hash is the password's: every account logs in.
    for n in range(CLIENTS):
        credentials = {"username": f"racer{n}", "password": PASSWORD}
        login = httpx.post(f"{base}/api/v1/auth/login", json=credentials, timeout=60)
        assert login.status_code == 200, login.text
    assert embedded_server.alive(), embedded_server.log_tail()
