"""Hostile REST input (issue 8, item 6) gets a documented 4xx with the API's error body,
never a 500: nesting depth, body size, too many fields, ids out of range or written
with non-ASCII digits, unknown fields, and the inputs the OpenAPI schema describes."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.tests.support import assert_error
from gochat_site.id_params import ID_PATTERN, MAX_ID, is_id_text, parse_id
from gochat_site.request_limits import json_nesting_exceeds

LOGIN = "/api/v1/auth/login"
SEND = "/api/v1/messages/send"
HISTORY = "/api/v1/messages/history"
BAD_IDS = [str(2**63), str(2**64), "-1", "0", "007", "\u00b3", "\u0663", "1e3", " 5", "+5"]


def _post_raw(client, url: str, body: str | bytes, content_type: str = "application/json"):  # noqa: ANN001
    return client.generic("POST", url, body, content_type=content_type)


# --- JSON nesting depth -------------------------------------------------------------------

def test_depth_check_counts_brackets_outside_strings_only():
    assert json_nesting_exceeds("[" * 33 + "]" * 33, 32)
    assert not json_nesting_exceeds("[" * 32 + "]" * 32, 32)
    assert not json_nesting_exceeds(json.dumps({"a": "[[[[{{{{" * 100}), 3)
    # An escaped quote does not end the string: the brackets after it are still text.
    assert not json_nesting_exceeds(json.dumps(['x\\"' + "[" * 50]), 2)
    # Many siblings are wide, not deep.
    assert not json_nesting_exceeds("[" + ",".join(["[]"] * 10_000) + "]", 2)


@pytest.mark.django_db
def test_a_body_nested_100000_deep_is_refused_before_parsing_even_without_a_token(api_client, settings):
    response = _post_raw(api_client, LOGIN, "[" * 100_000 + "]" * 100_000)
    body = assert_error(response, 400, 1001)
    assert body["details"] == {"max_depth": settings.API_MAX_JSON_DEPTH}


@pytest.mark.django_db
def test_the_depth_limit_is_a_setting(client_for, alice, settings):
    settings.API_MAX_JSON_DEPTH = 2
    deep = json.dumps({"conversation_id": "1", "client_msg_id": "c", "content": [[["x"]]]})
    assert assert_error(_post_raw(client_for(alice), SEND, deep), 400, 1001)["details"] == {"max_depth": 2}


@pytest.mark.django_db
def test_malformed_json_is_1001(api_client):
    assert_error(_post_raw(api_client, LOGIN, '{"username": '), 400, 1001)
    assert_error(_post_raw(api_client, LOGIN, b"\xff\xfe{}"), 400, 1001)


# --- body size, field counts, media types ---------------------------------------------------

@pytest.mark.django_db
def test_a_10_mb_body_is_413_with_the_limit(api_client, settings):
    body = json.dumps({"username": "x" * 10_000_000, "password": "pass-1234-word"})
    response = _post_raw(api_client, LOGIN, body)
    assert assert_error(response, 413, 1001)["details"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}


@pytest.mark.django_db
def test_the_body_limit_is_a_setting(client_for, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"conversation_id": "1", "client_msg_id": "c", "content": "x" * 200})
    assert assert_error(_post_raw(client_for(alice), SEND, body), 413, 1001)["details"] == {"max_bytes": 100}


@pytest.mark.django_db
def test_multipart_and_forms_are_refused_unparsed(api_client):
    fields = "&".join(f"f{n}=1" for n in range(1500))
    assert_error(_post_raw(api_client, LOGIN, fields, "application/x-www-form-urlencoded"), 415, 1001)
    files = {f"f{n}": "1" for n in range(1100)}
    assert_error(api_client.post(LOGIN, files, format="multipart"), 415, 1001)


@pytest.mark.django_db
def test_more_than_1000_query_parameters_is_400(client_for, alice):
    query = "&".join(f"p{n}=1" for n in range(1001))
    response = client_for(alice).get(f"{HISTORY}?{query}")
    assert assert_error(response, 400, 1001)["details"] == {"max_fields": 1000}


@pytest.mark.django_db
def test_too_many_fields_outside_a_drf_view_is_json_400():
    # The admin's login form is read by Django's CSRF middleware, before any DRF view.
    fields = "&".join(f"f{n}=1" for n in range(1500))
    response = Client().generic("POST", "/admin/login/", fields, content_type="application/x-www-form-urlencoded")
    assert assert_error(response, 400, 1001)["details"] == {"max_fields": 1000}


# --- ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["1", "9", "10", str(MAX_ID), str(MAX_ID - 1), "1000000000000000000"])
def test_id_text_in_range(text):
    assert is_id_text(text) and parse_id(text, "id") == int(text)


@pytest.mark.parametrize("text", BAD_IDS + [str(MAX_ID + 1), "", "12a", "1 ", "\uff11"])
def test_id_text_out_of_range_or_not_ascii(text):
    assert not is_id_text(text)
    with pytest.raises(Exception) as caught:
        parse_id(text, "conversation_id")
    assert caught.value.code == 1001


def test_id_pattern_is_the_documented_range():
    import re

    assert ID_PATTERN.startswith("^") and ID_PATTERN.endswith("$")
    assert re.match(ID_PATTERN, str(MAX_ID)) and not re.match(ID_PATTERN, str(MAX_ID + 1))


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_in_queries_are_1001(client_for, alice, single_chat, bad):
    client = client_for(alice)
    body = assert_error(client.get(HISTORY, {"conversation_id": bad}), 400, 1001)
    assert body["details"] == {"conversation_id": ["A valid id is required."]}
    assert_error(client.get("/api/v1/search", {"q": "hi", "conversation_id": bad}), 400, 1001)


@pytest.mark.django_db
def test_an_empty_query_value_is_a_bad_value_not_an_absent_one(client_for, alice, single_chat):
    client = client_for(alice)
    assert_error(client.get("/api/v1/search?q=hi&conversation_id="), 400, 1001)
    assert_error(client.get(f"{HISTORY}?conversation_id={single_chat.id}&after_seq="), 400, 1001)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["before_seq", "after_seq", "limit"])
@pytest.mark.parametrize("bad", [str(2**63), "\u0663", "1.5", "true"])
def test_bad_integers_in_history_queries_are_1001(client_for, alice, single_chat, name, bad):
    response = client_for(alice).get(HISTORY, {"conversation_id": single_chat.id, name: bad})
    assert name in assert_error(response, 400, 1001)["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [2**63, -1, 0, True, 1.5, str(2**63), "\u00b3", "\u0663"])
def test_bad_ids_in_bodies_are_1001(client_for, alice, bad):
    body = {"conversation_id": bad, "client_msg_id": "c1", "content": "hi"}
    response = client_for(alice).post(SEND, body, format="json")
    assert assert_error(response, 400, 1001)["details"] == {"conversation_id": ["A valid id is required."]}


@pytest.mark.django_db
def test_bad_ids_in_group_routes(client_for, alice, bob):
    client = client_for(alice)
    team = client.post("/api/v1/groups/create", {"name": "team"}, format="json").json()
    members = f"/api/v1/groups/{team['id']}/members"
    assert_error(client.get(members, {"after": str(2**63)}), 400, 1001)
    assert_error(client.post(members, {"user_ids": [str(2**63)]}, format="json"), 400, 1001)
    assert_error(client.post(f"{members}/{2**63}/role", {"role": "admin"}, format="json"), 404, 1003)
    arabic_three = "\u0663"
    assert_error(client.delete(f"{members}/{arabic_three}"), 404, 1003)


@pytest.mark.django_db
def test_a_seq_beyond_bigint_is_1001(client_for, alice, single_chat):
    url = f"/api/v1/conversations/{single_chat.id}/read"
    assert_error(client_for(alice).post(url, {"seq": 2**63}, format="json"), 400, 1001)


# --- what the schema states ---------------------------------------------------------------

@pytest.mark.django_db
def test_unknown_fields_are_refused(client_for, alice, single_chat):
    body = {"conversation_id": str(single_chat.id), "client_msg_id": "c1", "content": "hi", "extra": 1}
    response = client_for(alice).post(SEND, body, format="json")
    assert assert_error(response, 400, 1001)["details"] == {"extra": ["Unknown field."]}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["true", 1, "yes", None])
def test_booleans_are_json_booleans(client_for, alice, single_chat, value):
    url = f"/api/v1/conversations/{single_chat.id}"
    assert_error(client_for(alice).patch(url, {"muted": value}, format="json"), 400, 1001)


@pytest.mark.django_db
def test_strings_keep_their_limit_before_trimming_and_refuse_nul(client_for, alice):
    client = client_for(alice)
    assert_error(client.post("/api/v1/groups/create", {"name": " " + "x" * 100}, format="json"), 400, 1001)
    assert_error(client.post("/api/v1/groups/create", {"name": "a\x00b"}, format="json"), 400, 1001)
    assert_error(client.post("/api/v1/groups/create", {"name": "\u2003\x1c"}, format="json"), 400, 1001)
    assert_error(client.patch("/api/v1/users/profile", {"avatar": "ftp://x/a.png"}, format="json"), 400, 1001)
    assert client.patch("/api/v1/users/profile", {"avatar": "https://cdn.example/a.png"}, format="json").status_code == 200


@pytest.mark.django_db
def test_history_with_both_cursors_is_the_window_between(client_for, alice, single_chat):
    from messaging.services import send_message

    for n in range(1, 7):
        send_message(sender_id=alice.id, conversation_id=single_chat.id, content=f"m{n}", client_msg_id=f"w{n}")
    response = client_for(alice).get(HISTORY, {"conversation_id": single_chat.id, "after_seq": 2, "before_seq": 6, "limit": 2})
    assert response.status_code == 200, response.content
    assert [m["seq"] for m in response.json()["messages"]] == [3, 4] and response.json()["has_more"] is True


@pytest.mark.django_db
def test_delete_device_by_query_parameter(client_for, alice):
    client = client_for(alice)
    assert client.post("/api/v1/devices", {"platform": "fcm", "token": "tok-q"}, format="json").status_code == 201
    assert client.delete("/api/v1/devices?token=tok-q").status_code == 204
    assert client.get("/api/v1/devices").json() == []
    assert_error(client.delete("/api/v1/devices?token=tok-q"), 404, 1003)


@pytest.mark.django_db
@pytest.mark.parametrize("q", ["?!*", " ".join(f"w{n}" for n in range(40))])
def test_search_text_without_words_or_with_many_is_not_an_error(client_for, alice, q):
    response = client_for(alice).get("/api/v1/search", {"q": q})
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_a_conversation_with_yourself_is_403(client_for, alice):
    response = client_for(alice).post("/api/v1/conversations/create", {"user_id": str(alice.id)}, format="json")
    assert_error(response, 403, 1005)
