"""Message search through the REST API, on whichever database the run uses (SQLite FTS5
embedded, PostgreSQL full-text with DATABASE_URL). Nothing here runs an index task to
make a message findable: the database indexes every row as it is written (SQLite's
FTS5 triggers of messaging/0004, PostgreSQL's GIN expression index of messaging/0002),
so a message is found however it was written. The Celery task 'tasks.index_message'
and `reindex_messages` stay, idempotent, for repairs."""
from __future__ import annotations

import io
import itertools

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

import tasks.processors.index  # noqa: F401 - registers tasks.index_message with Celery
from gochat_site.tasks_client import enqueue_task
from messaging.models import Message
from messaging.services import get_or_create_single_conversation, send_message
from tasks.search import get_backend

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


@pytest.fixture
def say():
    """say(user, conversation, text) -> a persisted message (no index task is run)."""

    def send(user, conversation, text: str) -> Message:
        return send_message(
            sender_id=user.id, conversation_id=conversation.id, content=text, client_msg_id=f"c{next(_ids)}"
        ).message

    return send


def fts_rows(message_id: int) -> int:
    """Entries of one message in the SQLite FTS5 table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM message_fts WHERE rowid = %s", [message_id])
        return cursor.fetchone()[0]


def search(client, **params):
    return client.get("/api/v1/search", params)


def test_finds_a_message_by_a_word_with_a_highlight(alice, bob, single_chat, client_for, say):
    hit = say(bob, single_chat, "The quarterly report is ready for review")
    say(bob, single_chat, "Lunch at noon?")

    response = search(client_for(alice), q="report")

    assert response.status_code == 200
    body = response.json()
    assert [r["message"]["id"] for r in body["results"]] == [str(hit.id)]
    result = body["results"][0]
    assert result["message"]["content"] == "The quarterly report is ready for review"
    assert result["message"]["conversation_id"] == str(single_chat.id)
    assert "<mark>report</mark>" in result["highlight"]
    assert body["has_more"] is False


def test_every_word_must_match_and_case_does_not_matter(alice, bob, single_chat, client_for, say):
    both = say(bob, single_chat, "Deploy the Staging server")
    say(bob, single_chat, "deploy went fine")

    body = search(client_for(alice), q="STAGING deploy").json()

    assert [r["message"]["id"] for r in body["results"]] == [str(both.id)]


def test_never_shows_a_message_of_a_conversation_the_caller_is_not_in(alice, bob, carol, client_for, say):
    bob_carol, _ = get_or_create_single_conversation(user_id=bob.id, peer_id=carol.id)
    say(carol, bob_carol, "the secret password is swordfish")

    assert search(client_for(alice), q="swordfish").json()["results"] == []
    assert len(search(client_for(bob), q="swordfish").json()["results"]) == 1

    response = search(client_for(alice), q="swordfish", conversation_id=str(bob_carol.id))
    assert response.status_code == 403
    assert response.json()["code"] == 1005


def test_a_message_deleted_for_me_is_not_found_by_me_but_still_by_the_others(alice, bob, single_chat, client_for, say):
    from messaging import lifecycle

    message = say(bob, single_chat, "the launch codes are tomorrow")
    lifecycle.hide_message(user_id=alice.id, message_id=message.id)

    assert search(client_for(alice), q="launch").json()["results"] == []
    assert len(search(client_for(bob), q="launch").json()["results"]) == 1


def test_conversation_filter_limits_results_to_that_conversation(alice, bob, carol, single_chat, client_for, say):
    alice_carol, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    in_bob = say(bob, single_chat, "meeting moved to friday")
    say(carol, alice_carol, "meeting notes attached")

    everywhere = search(client_for(alice), q="meeting").json()["results"]
    only_bob = search(client_for(alice), q="meeting", conversation_id=str(single_chat.id)).json()["results"]

    assert len(everywhere) == 2
    assert [r["message"]["id"] for r in only_bob] == [str(in_bob.id)]


def test_a_member_who_left_a_group_no_longer_finds_its_messages(alice, bob, client_for, say, group_of):
    from groups.services import leave_group

    group = group_of(3)
    members = list(group.conversation.members.exclude(user_id=alice.id).values_list("user_id", flat=True))
    leaver = type(alice).objects.get(id=members[0])
    say(alice, group.conversation, "offsite agenda for the team")
    assert len(search(client_for(leaver), q="agenda").json()["results"]) == 1

    leave_group(user_id=leaver.id, group_id=group.id)

    assert search(client_for(leaver), q="agenda").json()["results"] == []


def test_best_match_ranks_first(alice, bob, single_chat, client_for, say):
    weak = say(bob, single_chat, "we might talk about the release at some point later this week when everyone is back")
    strong = say(bob, single_chat, "release release release")

    results = search(client_for(alice), q="release").json()["results"]

    assert [r["message"]["id"] for r in results] == [str(strong.id), str(weak.id)]
    assert results[0]["rank"] > results[1]["rank"]


def test_pages_are_disjoint_and_cover_every_match(alice, bob, single_chat, client_for, say):
    sent = {str(say(bob, single_chat, f"standup note number {n}").id) for n in range(5)}
    client = client_for(alice)

    pages = [search(client, q="standup", limit=2, offset=offset).json() for offset in (0, 2, 4)]

    seen = [r["message"]["id"] for page in pages for r in page["results"]]
    assert [len(page["results"]) for page in pages] == [2, 2, 1]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == sent


def test_equal_matches_come_newest_first(alice, bob, single_chat, client_for, say):
    first = say(bob, single_chat, "ping")
    second = say(bob, single_chat, "ping")

    results = search(client_for(alice), q="ping").json()["results"]

    assert [r["message"]["id"] for r in results] == [str(second.id), str(first.id)]


def test_highlight_escapes_html_in_content(alice, bob, single_chat, client_for, say):
    say(bob, single_chat, '<script>alert("x")</script> invoice attached')

    highlight = search(client_for(alice), q="invoice").json()["results"][0]["highlight"]

    assert "<script>" not in highlight
    assert "&lt;script&gt;" in highlight
    assert "<mark>invoice</mark>" in highlight


def test_fts_operators_in_the_query_are_plain_words(alice, bob, single_chat, client_for, say):
    say(bob, single_chat, "cats and dogs")

    for q in ['cats OR "', "cats NOT dogs", "content:cats", "cats*", "cats & !dogs"]:
        response = search(client_for(alice), q=q)
        assert response.status_code == 200, q

    # "NOT" is a word to find, not an operator: the message has no "not".
    assert search(client_for(alice), q="cats NOT dogs").json()["results"] == []
    assert len(search(client_for(alice), q="cats & !dogs").json()["results"]) == 1


def test_the_index_task_on_an_indexed_message_leaves_one_result(
    alice, bob, single_chat, client_for, say, django_capture_on_commit_callbacks
):
    message = say(bob, single_chat, "unique kumquat")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_task("tasks.index_message", message_id=message.id)

    assert len(search(client_for(alice), q="kumquat").json()["results"]) == 1


def test_a_recalled_message_is_no_longer_found(alice, bob, single_chat, client_for, say):
    message = say(bob, single_chat, "oops wrong chat password")
    assert len(search(client_for(alice), q="password").json()["results"]) == 1

    Message.objects.filter(id=message.id).update(status=Message.Status.RECALLED)

    assert search(client_for(alice), q="password").json()["results"] == []
    if connection.vendor == "sqlite":
        assert fts_rows(message.id) == 0


def test_an_edited_message_is_found_by_its_new_words_only(alice, bob, single_chat, client_for, say):
    message = say(bob, single_chat, "see you on tuesday")

    Message.objects.filter(id=message.id).update(content="see you on thursday")

    assert search(client_for(alice), q="tuesday").json()["results"] == []
    found = search(client_for(alice), q="thursday").json()["results"]
    assert [r["message"]["id"] for r in found] == [str(message.id)]


def test_a_deleted_message_leaves_the_index(alice, bob, single_chat, client_for, say):
    message = say(bob, single_chat, "temporary pineapple")

    Message.objects.filter(id=message.id).delete()

    assert search(client_for(alice), q="pineapple").json()["results"] == []
    if connection.vendor == "sqlite":
        assert fts_rows(message.id) == 0


def test_a_message_sent_over_rest_is_found_at_once(
    alice, bob, single_chat, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent = client_for(bob).post(
            "/api/v1/messages/send",
            {"conversation_id": str(single_chat.id), "content": "the invoice is paid", "client_msg_id": "rest-1"},
            format="json",
        )
    assert sent.status_code == 201, sent.content

    results = search(client_for(alice), q="invoice").json()["results"]

    assert [r["message"]["id"] for r in results] == [sent.json()["message"]["id"]]


def test_a_message_inserted_by_raw_sql_is_found(alice, bob, single_chat, client_for):
    # The batch path of the logic may write rows with raw multi-row INSERTs: the index
    # must not depend on the ORM or on any Python code running after the write.
    from django.utils import timezone

    from gochat_site.ids import new_id

    rows = [(new_id(), single_chat.id, n, bob.id, f"raw-{n}", "text", f"bulk row {n} mango", timezone.now(), "normal")
            for n in (1, 2)]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO messaging_message (id, conversation_id, seq, sender_id, client_msg_id, message_type, content,"
            " created_at, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )

    results = search(client_for(alice), q="mango").json()["results"]

    assert sorted(r["message"]["id"] for r in results) == sorted(str(row[0]) for row in rows)


def test_words_match_by_prefix(alice, bob, single_chat, client_for, say):
    group = say(bob, single_chat, "Welcome to the group chat")
    say(bob, single_chat, "grocery list")

    def found(q: str) -> list[str]:
        return [r["message"]["id"] for r in search(client_for(alice), q=q).json()["results"]]

    assert found("gro") == found("GRO") and len(found("gro")) == 2
    assert found("grou") == found("group") == [str(group.id)]
    assert found("wel gro") == [str(group.id)]
    # A prefix matches the start of a word, not its middle.
    assert found("roup") == []
    highlight = search(client_for(alice), q="grou").json()["results"][0]["highlight"]
    assert "<mark>group</mark>" in highlight  # the whole word is marked


def test_a_word_of_seed_demo_is_found_right_after_seeding(client_for):
    call_command("seed_demo", stdout=io.StringIO())
    from accounts.models import User

    alice, carol = User.objects.get(username="alice"), User.objects.get(username="carol")

    welcome = search(client_for(carol), q="welcome").json()["results"]
    assert [r["message"]["content"] for r in welcome] == ["Welcome to the GoChat demo group, everyone!"]
    # Prefixes, as the web page sends them while the user types.
    assert [r["message"]["content"] for r in search(client_for(alice), q="offl").json()["results"]] == [
        "And nothing is lost while you are offline."
    ]
    # Carol is not in the alice-bob chat.
    assert search(client_for(carol), q="offline").json()["results"] == []
    # "gro" finds the seeded word starting with it (issue 11: it found nothing).
    assert [r["message"]["content"] for r in search(client_for(carol), q="gro").json()["results"]] == [
        "Welcome to the GoChat demo group, everyone!"
    ]


def test_the_database_indexes_on_write_so_routing_enqueues_no_index_task():
    assert get_backend().indexed_on_write is True
    assert settings.SEARCH_INDEX_ON_WRITE is (not get_backend().indexed_on_write)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "hello", "limit": "0"},
        {"q": "hello", "limit": "51"},
        {"q": "hello", "limit": "ten"},
        {"q": "hello", "offset": "-1"},
        {"q": "hello", "offset": "1001"},
        {"q": "hello", "conversation_id": "abc"},
    ],
)
def test_bad_parameters_get_1001(alice, client_for, params):
    response = search(client_for(alice), **params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 1001
    assert body["message"]
    assert isinstance(body["details"], dict)


def test_unknown_conversation_gets_1003(alice, client_for):
    response = search(client_for(alice), q="hello", conversation_id="123456789")

    assert response.status_code == 404
    assert response.json()["code"] == 1003


def test_anonymous_caller_gets_1002(api_client):
    response = search(api_client, q="hello")

    assert response.status_code == 401
    assert response.json()["code"] == 1002


def test_reindex_messages_repairs_a_lost_index(alice, bob, single_chat, client_for, say):
    say(bob, single_chat, "backlog grooming")
    say(bob, single_chat, "backlog triage")
    if connection.vendor == "sqlite":
        # An index lost outside GoChat (a file restored without it): nothing is found.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM message_fts")
        assert search(client_for(alice), q="backlog").json()["results"] == []

    call_command("reindex_messages", "--batch-size", "1", stdout=io.StringIO())

    assert len(search(client_for(alice), q="backlog").json()["results"]) == 2


@pytest.mark.postgres
def test_postgres_prefix_match_is_answered_from_the_gin_index(alice, bob, single_chat, say):
    from django.contrib.postgres.search import SearchVector

    from tasks.search.postgres import _prefix_query

    say(bob, single_chat, "indexed words")
    query = (
        Message.objects.annotate(document=SearchVector("content", config="simple"))
        .filter(document=_prefix_query(["index", "wor"]))
        .values("id")
    )
    assert query.count() == 1
    with connection.cursor() as cursor:
        # With sequential scans priced out, the plan names the index only if the index
        # expression is exactly the one the search backend queries.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()

    assert "message_content_fts_gin" in plan


@pytest.mark.postgres
def test_postgres_tsquery_is_built_from_letters_and_digits_only(alice, bob, single_chat, client_for, say):
    from tasks.search.postgres import prefix_tsquery

    say(bob, single_chat, "grocery list: milk_and bread")
    # tsquery syntax in the user's text is dropped before to_tsquery sees it.
    for q in ["gro:*", "gro & !milk", "'gro' | li", "gro) (", "milk_and", "<-> gro"]:
        response = search(client_for(alice), q=q)
        assert response.status_code == 200, (q, response.content)
        assert len(response.json()["results"]) == 1, q
    # The builder itself refuses anything but letters and digits.
    for hostile in (["gro:*"], ["a", "b|c"], ["x'y"], ["milk_and"], [""]):
        with pytest.raises(ValueError):
            prefix_tsquery(hostile)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_tsquery('simple', %s)::text", [prefix_tsquery(["gro", "Li"])])
        assert cursor.fetchone()[0] == "'gro':* & 'li':*"


def _sqlite_triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messaging_message'")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_trigger_migration_reverses_and_reapplying_it_indexes_what_was_written_meanwhile(
    alice, bob, single_chat, client_for, say
):
    triggers = {"message_fts_after_insert", "message_fts_after_update", "message_fts_after_delete"}
    # The trigger migration's own steps, back and forth (a full `migrate messaging 0003`
    # would also unapply the later issue-10 migrations, whose column drops SQLite refuses
    # while the FTS triggers exist).
    from importlib import import_module

    step = import_module("messaging.migrations.0004_message_fts_triggers")
    with connection.schema_editor() as editor:
        step.backwards(None, editor)
    try:
        if connection.vendor == "sqlite":
            assert _sqlite_triggers() & triggers == set()
        # Written while no trigger exists (as seed_demo's messages were before 0004).
        say(bob, single_chat, "written without triggers")
        if connection.vendor == "sqlite":
            assert search(client_for(alice), q="triggers").json()["results"] == []
    finally:
        with connection.schema_editor() as editor:
            step.forwards(None, editor)

    if connection.vendor == "sqlite":
        assert _sqlite_triggers() >= triggers
    assert len(search(client_for(alice), q="triggers").json()["results"]) == 1


# Hostile queries: quotes, operators, parentheses, "*", ":", "&|!", column filters, SQL,
# NUL and control bytes. None may reach FTS5's or to_tsquery's syntax: always 200, and the
# letters and digits in them still match as prefixes.
# (query, found): found when the letters and digits in it, taken as words, are all
# prefixes of words of "Welcome to the group chat"; 1001 for text no field accepts (NUL).
HOSTILE = [
    ('"', False), ("'", False), ("''", False), ('"gro', True), ('gro"', True), ("(", False), (")", False),
    ("(gro", True), ("gro)", True), ("()", False), ("*", False), ("gro*", True), ("*gro", True), (":", False),
    (":*", False), ("gro:*", True), ("content:gro", False), ("conversation_id:1", False), ("&", False),
    ("|", False), ("!", False), ("gro & !chat", True), ("gro | x", False), ("!!gro", True), ("gro <-> chat", True),
    ("NEAR(gro chat)", False), ("gro AND", False), ("OR gro", False), ("NOT", False), ("^gro", True), ("-gro", True),
    ("+gro", True), ("{gro}", True), ("[gro]", True), ("gro\\", True), ("\\", False),
    ("'; DROP TABLE messaging_message; --", False), ("gro\x00", 1001), ("\x00", 1001), ("\x01\x02\x03", False),
    ("%", False), ("_", False), ("gro_", True), ("gro' & 'ch", True), ("'gro':*", True), ("\ue000gro\ue001", True),
    ("🙂 gro", True), ("gro" + "!" * 150, True), ("wel:* & gro:* | (x)", False), ("'wel':* & 'gro'", True),
]


@pytest.mark.parametrize(("q", "found"), HOSTILE)
def test_hostile_queries_are_harmless(alice, bob, single_chat, client_for, say, q, found):
    say(bob, single_chat, "Welcome to the group chat")

    response = search(client_for(alice), q=q)

    if found == 1001:
        assert response.status_code == 400 and response.json()["code"] == 1001, response.content
        return
    assert response.status_code == 200, response.content
    contents = [r["message"]["content"] for r in response.json()["results"]]
    assert contents == (["Welcome to the group chat"] if found else [])


def test_a_batch_written_message_is_found(alice, bob, single_chat, client_for):
    # The logic's batch writer: one multi-row INSERT for the whole batch, no per-row code.
    from messaging.services import SendRequest, send_messages

    outcomes = send_messages(
        [SendRequest(sender_id=bob.id, conversation_id=single_chat.id, content=f"batch papaya {n}", client_msg_id=f"b{n}")
         for n in range(3)]
    )

    results = search(client_for(alice), q="papay").json()["results"]
    assert sorted(r["message"]["id"] for r in results) == sorted(str(o.message.id) for o in outcomes)


def test_the_setup_of_make_run_leaves_seed_demo_searchable(tmp_path):
    """`make run`'s own steps (make seed: migrate, then seed_demo) in a fresh embedded
    database, then a search as alice in another process: what the first user sees."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL", "BUS_BACKEND")}
    env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    setup = subprocess.run(["make", "--no-print-directory", "-o", "install", "seed", "PORT=8123"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr[-2000:]
    code = (
        "import django, json; django.setup()\n"
        "from accounts.models import User\n"
        "from tasks.search.selectors import search_messages\n"
        "alice = User.objects.get(username='alice')\n"
        "print(json.dumps({q: [r.message.content for r in search_messages(user_id=alice.id, q=q).results]"
        " for q in ('gro', 'offl', 'GoCh')}))\n"
    )
    env["DJANGO_SETTINGS_MODULE"] = "gochat_site.settings"
    found = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    import json

    results = json.loads(found.stdout.strip().splitlines()[-1])
    assert results["gro"] == ["Welcome to the GoChat demo group, everyone!"]
    assert results["offl"] == ["And nothing is lost while you are offline."]
    assert sorted(results["GoCh"]) == sorted(["Hi Bob! This is GoChat.", "Welcome to the GoChat demo group, everyone!"])


@pytest.mark.django_db(transaction=True)
def test_a_message_sent_over_grpc_is_found(alice, bob, single_chat, client_for, settings):
    import grpc
    from rest_framework_simplejwt.tokens import RefreshToken

    from messaging.grpc.server import build_server
    from protos.gochat.v1 import logic_pb2, logic_pb2_grpc

    server, port, _ = build_server(address="127.0.0.1:0", max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            sent = logic_pb2_grpc.LogicServiceStub(channel).SendMessage(
                logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="g-1", content="grpc guava"),
                metadata=[("authorization", f"Bearer {RefreshToken.for_user(bob).access_token}")],
            )
    finally:
        server.stop(None).wait()

    results = search(client_for(alice), q="guav").json()["results"]
    assert [r["message"]["id"] for r in results] == [str(sent.message.id)]
