"""docs/operations.md's backup and restore, run for real: pg_dump a database written
through the services, pg_restore it into a fresh database, point a Django process at the
copy and sync as a user: the same messages and seq, a resend is still de-duplicated, and
sending continues at the next seq."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from messaging.models import Message
from messaging.services import mark_read, send_message

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]

# Runs in a separate Django process whose DATABASE_URL is the restored copy: REST sync as
# alice (the test client, JWT like a real client), the sync selector the WebSocket uses,
# a resend of a stored client_msg_id and a new send.
CLIENT = r"""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")
import django
django.setup()
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
from messaging.gateway.sync import sync_page
from messaging.services import send_message

args = json.loads(sys.argv[1])
alice = User.objects.get(username="alice")
bob = User.objects.get(username="bob")
conversation_id = int(args["conversation_id"])
client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(alice)}")
history = client.get("/api/v1/messages/history", {"conversation_id": conversation_id, "after_seq": 0}).json()
unread = client.get("/api/v1/messages/unread").json()
ws_sync = sync_page(user_id=alice.id, conversation_id=None, after_seq=0, limit=None)
resent = send_message(sender_id=bob.id, conversation_id=conversation_id, content="hello 1", client_msg_id="m1")
after = send_message(sender_id=bob.id, conversation_id=conversation_id, content="after restore", client_msg_id="m-new")
print(json.dumps({
    "database": connection.settings_dict["NAME"],
    "history": history, "unread": unread, "ws_sync": ws_sync,
    "resent": [str(resent.message.id), resent.message.seq, resent.created],
    "after": [str(after.message.id), after.message.seq, after.created],
}))
"""


def _url(name: str) -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"


@pytest.fixture
def restored_name():
    import psycopg

    name = f"gochat_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_restored_dump_syncs_the_same_messages_and_sending_goes_on(alice, bob, single_chat, tmp_path, restored_name):
    assert shutil.which("pg_dump") and shutil.which("pg_restore"), "the PostgreSQL client tools are needed"
    sent = [
        send_message(sender_id=bob.id, conversation_id=single_chat.id, content=f"hello {i}", client_msg_id=f"m{i}")
        for i in (1, 2, 3)
    ]
    mark_read(user_id=alice.id, conversation_id=single_chat.id, seq=1)
    dump = tmp_path / "gochat.dump"

    # The commands docs/operations.md gives, against the live (test) database.
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file", str(dump),
                    "--dbname", _url(connection.settings_dict["NAME"])], check=True, timeout=120)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--jobs", "2",
                    "--dbname", _url(restored_name), str(dump)], check=True, timeout=120)
    # The original moves on after the dump: the copy must not see it.
    send_message(sender_id=bob.id, conversation_id=single_chat.id, content="not in the dump", client_msg_id="m9")

    env = {**os.environ, "DATABASE_URL": _url(restored_name), "PYTHONPATH": str(ROOT),
           "CELERY_TASK_ALWAYS_EAGER": "true"}
    env.pop("TEST_DATABASE_NAME", None)
    run = subprocess.run([sys.executable, "-c", CLIENT, json.dumps({"conversation_id": str(single_chat.id)})],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert result["database"] == restored_name
    expected = [(str(s.message.id), s.message.seq, f"hello {i}") for i, s in zip((1, 2, 3), sent)]
    assert [(m["id"], m["seq"], m["content"]) for m in result["history"]["messages"]] == expected
    assert result["history"]["has_more"] is False
    # Read pointers came along: alice read seq 1 of 3.
    [row] = result["unread"]["conversations"]
    assert (row["conversation_id"], row["last_read_seq"], row["last_seq"], row["unread"]) == (
        str(single_chat.id), 1, 3, 2)
    assert [(m["id"], m["seq"]) for m in result["ws_sync"]["messages"]] == [e[:2] for e in expected[1:]]
    # De-duplication survives: the resend of m1 is the stored message, not a new one.
    assert result["resent"] == [str(sent[0].message.id), 1, False]
    # And the conversation goes on at the next seq, with a newer id.
    new_id, new_seq, created = result["after"]
    assert (new_seq, created) == (4, True) and int(new_id) > sent[-1].message.id
    # The original database is untouched by the copy's writes.
    assert list(Message.objects.filter(conversation=single_chat).values_list("seq", "content").order_by("seq"))[-1] == (
        4, "not in the dump")
