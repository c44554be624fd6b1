"""The embedded default's SQLite storage as `make run` sets it up: WAL mode, the chosen
synchronous level and busy timeout on every connection, and the demo data searchable
right after `seed_demo` (issue 11: "Search shows Nothing found")."""
from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.harness.stack import embedded_env
from tests.harness.wsclient import WsClient

pytestmark = pytest.mark.e2e

PRAGMAS = (
    "from django.db import connection\n"
    "cursor = connection.cursor()\n"
    "names = ('journal_mode', 'synchronous', 'busy_timeout')\n"
    "print(*(cursor.execute(f'PRAGMA {name}').fetchone()[0] for name in names))"
)


def test_every_connection_runs_in_wal_with_the_configured_synchronous_and_busy_timeout(launch, tmp_path):
    db = tmp_path / "gochat.sqlite3"
    stack = launch(embedded_env(SQLITE_PATH=db))

    # Defaults: WAL, NORMAL (1), 20 s busy timeout.
    assert stack.manage("shell", "-v", "0", "-c", PRAGMAS).split() == ["wal", "1", "20000"]
    chosen = {"SQLITE_SYNCHRONOUS": "full", "SQLITE_BUSY_TIMEOUT_SECONDS": "2.5"}
    assert stack.manage("shell", "-v", "0", "-c", PRAGMAS, env=chosen).split() == ["wal", "2", "2500"]
    # WAL is a property of the file: any other reader of it (sqlite3 CLI, a backup) sees it.
    with sqlite3.connect(db) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unknown_synchronous_level_is_refused_at_start(launch, tmp_path):
    stack = launch(embedded_env(SQLITE_PATH=tmp_path / "gochat.sqlite3", SQLITE_SYNCHRONOUS="sometimes"))

    with pytest.raises(RuntimeError, match="SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA"):
        stack.manage("check")


def test_seed_demo_words_are_found_right_after_make_run(launch, tmp_path):
    # make run = migrate, seed_demo, runserver.
    stack = launch(embedded_env(SQLITE_PATH=tmp_path / "gochat.sqlite3", GATEWAY_ID="gw-seeded"))
    stack.manage("migrate", "--noinput", "-v", "0")
    stack.manage("seed_demo", "--password", "demo-pass-9-word")
    server = stack.runserver()

    login = httpx.post(f"{server.url}/api/v1/auth/login", json={"username": "bob", "password": "demo-pass-9-word"})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access']}"}

    def contents(q: str) -> list[str]:
        response = httpx.get(f"{server.url}/api/v1/search", params={"q": q}, headers=headers)
        assert response.status_code == 200, response.text
        return [result["message"]["content"] for result in response.json()["results"]]

    assert contents("welcome") == ["Welcome to the GoChat demo group, everyone!"]
    # A prefix, as typed: "gro" finds "group".
    assert contents("demo gro") == ["Welcome to the GoChat demo group, everyone!"]
    assert contents("offl") == ["And nothing is lost while you are offline."]


async def test_messages_sent_over_the_websocket_are_found_once_acknowledged(launch, tmp_path):
    # The logic loop persists a consumed batch with one multi-row INSERT: the FTS5
    # triggers index those rows with no index task at all.
    stack = launch(embedded_env(SQLITE_PATH=tmp_path / "gochat.sqlite3", GATEWAY_ID="gw-search"))
    stack.manage("migrate", "--noinput", "-v", "0")
    server = stack.runserver()
    tokens = {}
    for name in ("ann", "ben"):
        credentials = {"username": name, "password": "correct-horse-9-battery"}
        assert httpx.post(f"{server.url}/api/v1/users/register", json=credentials).status_code == 201
        tokens[name] = httpx.post(f"{server.url}/api/v1/auth/login", json=credentials).json()["access"]
    opened = httpx.post(
        f"{server.url}/api/v1/conversations/create",
        json={"username": "ben"},
        headers={"Authorization": f"Bearer {tokens['ann']}"},
    )
    conversation_id = opened.json()["id"]

    ann_ws = await WsClient.connect(server.ws_url, tokens["ann"], name="ann")
    try:
        texts = ("pizza tonight?", "pizzeria at 8", "or sushi")
        sent = [await ann_ws.send_message(conversation_id, text) for text in texts]
        acks = [await ann_ws.ack_for(client_msg_id) for client_msg_id in sent]
    finally:
        await ann_ws.close()

    response = httpx.get(
        f"{server.url}/api/v1/search", params={"q": "pizz"}, headers={"Authorization": f"Bearer {tokens['ben']}"}
    )
    assert response.status_code == 200, response.text
    found = {result["message"]["id"] for result in response.json()["results"]}
    assert found == {acks[0]["message_id"], acks[1]["message_id"]}
    assert server.alive(), server.log_tail()
