"""Message search through the REST API, on whichever database the run uses (SQLite FTS5
embedded, PostgreSQL full-text with DATABASE_URL). Messages are indexed by the Celery
task 'tasks.index_message', as the logic role enqueues it."""
from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.db import connection

import tasks.processors.index  # noqa: F401 - registers tasks.index_message with Celery
from gochat_site.tasks_client import enqueue_task
from messaging.models import Message
from messaging.services import get_or_create_single_conversation, send_message

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


@pytest.fixture
def say(django_capture_on_commit_callbacks):
    """say(user, conversation, text) -> a persisted message, indexed through Celery."""

    def send(user, conversation, text: str, *, index: bool = True) -> Message:
        message = send_message(
            sender_id=user.id, conversation_id=conversation.id, content=text, client_msg_id=f"c{next(_ids)}"
        ).message
        if index:
            with django_capture_on_commit_callbacks(execute=True):
                enqueue_task("tasks.index_message", message_id=message.id)
        return message

    return send


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


def test_indexing_twice_leaves_one_result(alice, bob, single_chat, client_for, say, django_capture_on_commit_callbacks):
    message = say(bob, single_chat, "unique kumquat")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_task("tasks.index_message", message_id=message.id)

    assert len(search(client_for(alice), q="kumquat").json()["results"]) == 1


def test_a_recalled_message_is_no_longer_found(alice, bob, single_chat, client_for, say, django_capture_on_commit_callbacks):
    message = say(bob, single_chat, "oops wrong chat password")
    Message.objects.filter(id=message.id).update(status=Message.Status.RECALLED)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_task("tasks.index_message", message_id=message.id)

    assert search(client_for(alice), q="password").json()["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "?!*"},
        {"q": " ".join(f"w{n}" for n in range(17))},
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


def test_reindex_messages_makes_unindexed_messages_searchable(alice, bob, single_chat, client_for, say):
    say(bob, single_chat, "backlog grooming", index=False)
    say(bob, single_chat, "backlog triage", index=False)
    if connection.vendor == "sqlite":
        # Before the command these messages are not in the FTS5 table.
        assert search(client_for(alice), q="backlog").json()["results"] == []

    call_command("reindex_messages", "--batch-size", "1", stdout=__import__("io").StringIO())

    assert len(search(client_for(alice), q="backlog").json()["results"]) == 2


@pytest.mark.postgres
def test_postgres_match_is_answered_from_the_gin_index(alice, bob, single_chat, say):
    from django.contrib.postgres.search import SearchQuery, SearchVector

    say(bob, single_chat, "indexed words")
    query = (
        Message.objects.annotate(document=SearchVector("content", config="simple"))
        .filter(document=SearchQuery("indexed", config="simple", search_type="plain"))
        .values("id")
    )
    with connection.cursor() as cursor:
        # With sequential scans priced out, the plan names the index only if the index
        # expression is exactly the one the search backend queries.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()

    assert "message_content_fts_gin" in plan
