"""The WebSocket frame protocol (DESIGN §4), testable without a socket.

Client frames are JSON text `{"type": ..., "data": {...}}`. `parse_frame` turns one into
a typed command or raises ProtocolError carrying an error code; the builders below make
every server frame. `error_frame_for` is the one place domain exceptions become frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import orjson
from django.conf import settings

from gochat_site import errors
from messaging.services import check_message_input


class ProtocolError(errors.InvalidParams):
    """A client frame that cannot be understood (always 1001); answered, never fatal."""

    def __init__(
        self, message: str, details: dict[str, Any] | None = None, *, client_msg_id: str | None = None
    ) -> None:
        super().__init__(message, details)
        self.client_msg_id = client_msg_id


# --- Client commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    client_msg_id: str
    conversation_id: int
    content: str
    message_type: str


@dataclass(frozen=True)
class Sync:
    # None: every conversation with messages after the user's last_read_seq.
    conversation_id: int | None
    after_seq: int
    limit: int | None


@dataclass(frozen=True)
class Read:
    conversation_id: int
    seq: int


@dataclass(frozen=True)
class Ping:
    pass


Command = Union[SendMessage, Sync, Read, Ping]

# orjson's fixed parse limit; no client frame is nested deeper than 3.
MAX_JSON_DEPTH = 1024

SEND_TYPES = ("send-message", "message")  # "message" is an accepted alias
CLIENT_TYPES = (*SEND_TYPES, "sync", "read", "ping")


def _id_field(data: dict[str, Any], name: str, details: dict[str, list[str]], *, required: bool = True) -> int | None:
    """A 64-bit id: a decimal string (the documented form) or a JSON integer."""
    value = data.get(name)
    if value is None:
        if required:
            details[name] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        details[name] = ["An id string is required."]
        return None
    text = str(value).strip()
    # isascii: str.isdigit() is also true for '³' or '٣', which int() then refuses.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        details[name] = ["A valid id is required."]
        return None
    return int(text)


def _int_field(
    data: dict[str, Any], name: str, details: dict[str, list[str]], *, required: bool, default: int | None = None
) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            details[name] = ["This field is required."]
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        details[name] = ["An integer is required."]
        return default
    if value < 0:
        details[name] = ["Must be >= 0."]
        return default
    return value


def parse_frame(text: str | None, *, binary: bool = False) -> Command:
    """Parse one client text frame or raise ProtocolError (code 1001)."""
    if binary or text is None:
        raise ProtocolError("binary frames are not supported; send JSON text frames")
    # len(text) <= bytes <= 4 * len(text): encode only when the cheap bound is not enough.
    limit = settings.WS_MAX_FRAME_BYTES
    if 4 * len(text) > limit:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise ProtocolError("frame too large", {"max_bytes": limit, "frame_bytes": size})
    try:
        # orjson refuses nesting deeper than MAX_JSON_DEPTH while parsing, in C, so a
        # deeply nested frame costs no Python recursion and no traceback.
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            raise ProtocolError("JSON nested too deeply", {"max_depth": MAX_JSON_DEPTH}) from None
        raise ProtocolError("malformed JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError("a frame must be a JSON object")
    kind = frame.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError("unknown frame type", {"type": [f"One of {list(CLIENT_TYPES)}."]})
    data = frame.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError("data must be a JSON object", {"data": ["A JSON object is required."]})
    if kind in SEND_TYPES:
        return _parse_send(data)
    if kind == "sync":
        return _parse_sync(data)
    if kind == "read":
        return _parse_read(data)
    return Ping()


def _parse_send(data: dict[str, Any]) -> SendMessage:
    raw_client_id = data.get("client_msg_id")
    client_msg_id = raw_client_id if isinstance(raw_client_id, str) else None
    details: dict[str, Any] = {}
    conversation_id = _id_field(data, "conversation_id", details)
    try:
        content, client_msg_id_clean, message_type = check_message_input(
            content=data.get("content"), client_msg_id=raw_client_id, message_type=data.get("message_type")
        )
    except errors.InvalidParams as exc:
        details.update(exc.details)
    if details:
        raise ProtocolError("invalid send-message", details, client_msg_id=client_msg_id)
    return SendMessage(
        client_msg_id=client_msg_id_clean,
        conversation_id=conversation_id,  # type: ignore[arg-type]
        content=content,
        message_type=message_type,
    )


def _parse_sync(data: dict[str, Any]) -> Sync:
    details: dict[str, list[str]] = {}
    conversation_id = _id_field(data, "conversation_id", details, required=False)
    after_seq = _int_field(data, "after_seq", details, required=False, default=0)
    limit = _int_field(data, "limit", details, required=False)
    if limit == 0:
        details["limit"] = ["Must be >= 1."]
    if details:
        raise ProtocolError("invalid sync", details)
    return Sync(conversation_id=conversation_id, after_seq=after_seq or 0, limit=limit)


def _parse_read(data: dict[str, Any]) -> Read:
    details: dict[str, list[str]] = {}
    conversation_id = _id_field(data, "conversation_id", details)
    seq = _int_field(data, "seq", details, required=True)
    if details:
        raise ProtocolError("invalid read", details)
    return Read(conversation_id=conversation_id, seq=seq)  # type: ignore[arg-type]


# --- Server frames --------------------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def _frame(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": data}


def send_ack_frame(
    *, client_msg_id: str, message_id: int, conversation_id: int, seq: int, created_at: str
) -> dict[str, Any]:
    return _frame(
        "send-ack",
        {
            "client_msg_id": client_msg_id,
            "message_id": str(message_id),
            "conversation_id": str(conversation_id),
            "seq": seq,
            "created_at": created_at,
        },
    )


def new_message_frame(message: dict[str, Any]) -> dict[str, Any]:
    return _frame("new-message", {"message": message})


def sync_result_frame(data: dict[str, Any]) -> dict[str, Any]:
    return _frame("sync-result", data)


def pong_frame() -> dict[str, Any]:
    return _frame("pong", {})


def read_frame(*, conversation_id: int, seq: int) -> dict[str, Any]:
    return _frame("read", {"conversation_id": str(conversation_id), "seq": seq})


def error_frame(
    *, code: int, message: str, client_msg_id: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "message": message}
    if client_msg_id:
        data["client_msg_id"] = client_msg_id
    if details:
        data["details"] = details
    return _frame("error", data)


def error_frame_for(exc: BaseException, *, client_msg_id: str | None = None) -> dict[str, Any]:
    """The one mapping of exceptions to WebSocket error frames."""
    if isinstance(exc, ProtocolError) and client_msg_id is None:
        client_msg_id = exc.client_msg_id
    if isinstance(exc, errors.GoChatError):
        return error_frame(code=exc.code, message=exc.message, client_msg_id=client_msg_id, details=exc.details)
    # Never leak internals to the client; the caller logs the exception.
    return error_frame(code=errors.INTERNAL, message="internal error", client_msg_id=client_msg_id)
