"""The WebSocket frame protocol without a socket: parsing, error codes, frame shapes."""
from __future__ import annotations

import json

import pytest

from gochat_site import errors
from messaging.gateway import protocol
from messaging.gateway.envelopes import chat_message_from_model, message_dict_from_pb
from messaging.gateway.protocol import ProtocolError, parse_frame


def frame(kind, data=None) -> str:
    body = {"type": kind}
    if data is not None:
        body["data"] = data
    return json.dumps(body)


SEND = {"client_msg_id": "c-1", "conversation_id": "123", "content": "hi", "message_type": "text"}


def test_send_message_parses_to_typed_command():
    command = parse_frame(frame("send-message", SEND))
    assert command == protocol.SendMessage(client_msg_id="c-1", conversation_id=123, content="hi", message_type="text")


def test_message_is_an_alias_of_send_message():
    assert parse_frame(frame("message", SEND)) == parse_frame(frame("send-message", SEND))


def test_message_type_defaults_to_text_and_integer_ids_are_accepted():
    command = parse_frame(frame("send-message", {"client_msg_id": "c", "conversation_id": 9, "content": "x"}))
    assert command.message_type == "text"
    assert command.conversation_id == 9


def test_sync_read_and_ping_parse():
    assert parse_frame(frame("sync", {"conversation_id": "5", "after_seq": 3, "limit": 10})) == protocol.Sync(5, 3, 10)
    assert parse_frame(frame("sync", {})) == protocol.Sync(None, 0, None)
    assert parse_frame(frame("read", {"conversation_id": "5", "seq": 7})) == protocol.Read(5, 7)
    assert parse_frame(frame("ping")) == protocol.Ping()


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "a frame must be a JSON object"),
        ('"ping"', "a frame must be a JSON object"),
        (frame("shout", {}), "unknown frame type"),
        (json.dumps({"data": {}}), "unknown frame type"),
        (json.dumps({"type": "ping", "data": [1]}), "data must be a JSON object"),
    ],
)
def test_unreadable_frames_are_1001(text, message):
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text)
    assert caught.value.code == errors.INVALID_PARAMS == 1001
    assert caught.value.message == message


@pytest.mark.parametrize(
    "data, field",
    [
        ({k: v for k, v in SEND.items() if k != "content"}, "content"),
        ({k: v for k, v in SEND.items() if k != "conversation_id"}, "conversation_id"),
        ({**SEND, "conversation_id": "abc"}, "conversation_id"),
        ({**SEND, "conversation_id": True}, "conversation_id"),
        ({**SEND, "conversation_id": "-4"}, "conversation_id"),
        ({**SEND, "conversation_id": "\u00b3"}, "conversation_id"),  # '³': isdigit() but not int()
        ({**SEND, "conversation_id": "\u0663\u0664"}, "conversation_id"),  # Arabic-Indic digits
        ({**SEND, "conversation_id": str(2**63)}, "conversation_id"),
        ({**SEND, "content": 42}, "content"),
        ({**SEND, "content": ""}, "content"),
        ({**SEND, "message_type": "system"}, "message_type"),
        ({**SEND, "message_type": "hologram"}, "message_type"),
        ({**SEND, "client_msg_id": "x" * 65}, "client_msg_id"),
    ],
)
def test_bad_send_message_fields_name_the_field_and_keep_client_msg_id(data, field):
    with pytest.raises(ProtocolError) as caught:
        parse_frame(frame("send-message", data))
    assert caught.value.code == 1001
    assert field in caught.value.details
    error = protocol.error_frame_for(caught.value)
    if isinstance(data.get("client_msg_id"), str):
        assert error["data"]["client_msg_id"] == data["client_msg_id"]


def test_missing_client_msg_id_is_1001_without_echo():
    with pytest.raises(ProtocolError) as caught:
        parse_frame(frame("send-message", {"conversation_id": "1", "content": "x"}))
    assert "client_msg_id" in caught.value.details
    assert "client_msg_id" not in protocol.error_frame_for(caught.value)["data"]


@pytest.mark.parametrize(
    "kind, data, field",
    [
        ("read", {"conversation_id": "1"}, "seq"),
        ("read", {"seq": 1}, "conversation_id"),
        ("read", {"conversation_id": "1", "seq": "7"}, "seq"),
        ("read", {"conversation_id": "1", "seq": -1}, "seq"),
        ("sync", {"after_seq": "0"}, "after_seq"),
        ("sync", {"limit": 0}, "limit"),
        ("sync", {"conversation_id": 1.5}, "conversation_id"),
    ],
)
def test_bad_read_and_sync_fields_are_1001(kind, data, field):
    with pytest.raises(ProtocolError) as caught:
        parse_frame(frame(kind, data))
    assert caught.value.code == 1001
    assert field in caught.value.details


def test_content_over_the_message_limit_is_1001(settings):
    settings.MESSAGE_MAX_CONTENT_LENGTH = 10
    with pytest.raises(ProtocolError) as caught:
        parse_frame(frame("send-message", {**SEND, "content": "x" * 11}))
    assert "content" in caught.value.details


def test_oversize_frame_has_its_own_message(settings):
    settings.WS_MAX_FRAME_BYTES = 100
    with pytest.raises(ProtocolError) as caught:
        parse_frame(frame("send-message", {**SEND, "content": "é" * 60}))  # 120 bytes of content
    assert caught.value.code == 1001
    assert caught.value.message == "frame too large"
    assert caught.value.details["max_bytes"] == 100


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, '{"type":"ping","data":' + '{"a":' * 2000 + "1" + "}" * 2001])
def test_deeply_nested_frame_is_1001_not_a_recursion_error(nested):
    with pytest.raises(ProtocolError) as caught:
        parse_frame(nested)
    assert caught.value.code == 1001
    assert caught.value.message == "JSON nested too deeply"


def test_frame_just_under_the_byte_limit_parses(settings):
    # The size check skips encoding when 4 bytes per character cannot exceed the limit.
    text = json.dumps({"type": "send-message", "data": {**SEND, "content": "é" * 40}}, ensure_ascii=False)
    settings.WS_MAX_FRAME_BYTES = len(text.encode())
    assert parse_frame(text).content == "é" * 40
    settings.WS_MAX_FRAME_BYTES = len(text.encode()) - 1
    with pytest.raises(ProtocolError):
        parse_frame(text)


def test_binary_frames_are_refused():
    with pytest.raises(ProtocolError) as caught:
        parse_frame(None, binary=True)
    assert caught.value.code == 1001


@pytest.mark.parametrize(
    "exc, code",
    [
        (errors.NotAMember(), 1005),
        (errors.NotFound("conversation not found"), 1003),
        (errors.RateLimited(), 1006),
        (errors.Conflict(), 1007),
        (errors.Unauthorized(), 1002),
        (RuntimeError("database password is hunter2"), 1004),
    ],
)
def test_error_frame_for_maps_every_exception_in_one_place(exc, code):
    error = protocol.error_frame_for(exc, client_msg_id="c-9")
    assert error == {
        "type": "error",
        "data": {**error["data"], "code": code, "client_msg_id": "c-9"},
    }
    assert "hunter2" not in json.dumps(error)


def test_server_frames_round_trip_through_json():
    frames = [
        protocol.send_ack_frame(client_msg_id="c", message_id=2**62, conversation_id=2**61, seq=4, created_at="t"),
        protocol.new_message_frame({"id": "1"}),
        protocol.sync_result_frame({"messages": [], "has_more": False}),
        protocol.pong_frame(),
        protocol.read_frame(conversation_id=7, seq=3),
        protocol.error_frame(code=1001, message="bad"),
    ]
    for server_frame in frames:
        assert json.loads(protocol.encode(server_frame)) == server_frame
    ack = frames[0]["data"]
    # 64-bit ids travel as strings: JavaScript numbers cannot hold them.
    assert ack["message_id"] == str(2**62) and ack["conversation_id"] == str(2**61)
    assert frames[4] == {"type": "read", "data": {"conversation_id": "7", "seq": 3}}


@pytest.mark.django_db
def test_envelope_message_has_the_rest_shape(alice, single_chat):
    from messaging.representations import message_dict
    from messaging.selectors import conversation_history
    from messaging.services import send_message

    send_message(sender_id=alice.id, conversation_id=single_chat.id, content="hello", client_msg_id="m1")
    row = conversation_history(user_id=alice.id, conversation_id=single_chat.id).messages[0]
    from_envelope = message_dict_from_pb(chat_message_from_model(row, sender_name=alice.display_name))
    expected = message_dict(row)
    assert set(from_envelope) == set(expected)
    # Envelopes carry milliseconds; everything else is identical.
    assert from_envelope["created_at"][:23] == expected["created_at"][:23]
    assert {k: v for k, v in from_envelope.items() if k != "created_at"} == {
        k: v for k, v in expected.items() if k != "created_at"
    }
