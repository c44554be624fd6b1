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
from messaging.lifecycle import check_content, check_emoji
from messaging.services import check_message_input


class ProtocolError(errors.InvalidParams):
    """A client frame that cannot be understood (always 1001); answered, never fatal."""

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        client_msg_id: str | None = None,
        echo: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.client_msg_id = client_msg_id
        # Fields of the refused request copied into the error frame (lifecycle frames).
        self.echo = echo


# --- Client commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    client_msg_id: str
    conversation_id: int
    content: str
    message_type: str
    reply_to: int | None = None  # the quoted message's id
    # An upload of the sender (POST uploads); None: no attachment.
    attachment_id: int | None = None


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


@dataclass(frozen=True)
class Typing:
    """Ephemeral: relayed to the conversation's other online members, never stored."""

    conversation_id: int



@dataclass(frozen=True)
class EditMessage:
    """Goes upstream like a send (same conversation-keyed partition), so it is applied
    after the send it targets even when that send is not acked yet (target by the
    sender's client_msg_id then)."""

    conversation_id: int
    message_id: int | None
    client_msg_id: str | None
    content: str


@dataclass(frozen=True)
class RecallMessage:
    conversation_id: int
    message_id: int | None
    client_msg_id: str | None


@dataclass(frozen=True)
class React:
    message_id: int
    emoji: str  # "" removes the reaction


@dataclass(frozen=True)
class HideMessage:
    message_id: int


Command = Union[SendMessage, Sync, Read, Ping, Typing, EditMessage, RecallMessage, React, HideMessage]

# orjson's fixed parse limit; no client frame is nested deeper than 3.
MAX_JSON_DEPTH = 1024

SEND_TYPES = ("send-message", "message")  # "message" is an accepted alias
LIFECYCLE_TYPES = ("edit-message", "recall-message", "react", "hide-message")
CLIENT_TYPES = (*SEND_TYPES, "sync", "read", "ping", "typing", *LIFECYCLE_TYPES)


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
    if kind == "typing":
        return _parse_typing(data)
    if kind in LIFECYCLE_TYPES:
        return _parse_lifecycle(kind, data)
    return Ping()


def _target(data: dict[str, Any], details: dict[str, Any]) -> tuple[int | None, str | None]:
    """Exactly one of message_id or client_msg_id (the caller's own, not yet acked, send)."""
    message_id = _id_field(data, "message_id", details, required=False)
    client_msg_id = data.get("client_msg_id")
    if client_msg_id is not None and (not isinstance(client_msg_id, str) or not client_msg_id.strip() or len(client_msg_id) > 64):
        details["client_msg_id"] = ["A non-empty string of at most 64 characters is required."]
        client_msg_id = None
    if ("message_id" in data) == ("client_msg_id" in data) and "message_id" not in details:
        details["message_id"] = ["Give exactly one of message_id or client_msg_id."]
    return message_id, client_msg_id.strip() if isinstance(client_msg_id, str) else None


def _parse_lifecycle(kind: str, data: dict[str, Any]) -> EditMessage | RecallMessage | React | HideMessage:
    details: dict[str, Any] = {}
    echo = {"request": kind}
    for name in ("conversation_id", "message_id"):
        if isinstance(data.get(name), (str, int)) and not isinstance(data.get(name), bool):
            echo[name] = str(data[name])
    if isinstance(data.get("client_msg_id"), str):
        echo["target_client_msg_id"] = data["client_msg_id"]
    command: EditMessage | RecallMessage | React | HideMessage | None = None
    if kind in ("edit-message", "recall-message"):
        conversation_id = _id_field(data, "conversation_id", details)
        message_id, client_msg_id = _target(data, details)
        content = ""
        if kind == "edit-message":
            try:
                content = check_content(data.get("content"))
            except errors.InvalidParams as exc:
                details.update(exc.details)
        if not details:
            if kind == "edit-message":
                command = EditMessage(conversation_id, message_id, client_msg_id, content)  # type: ignore[arg-type]
            else:
                command = RecallMessage(conversation_id, message_id, client_msg_id)  # type: ignore[arg-type]
    else:
        message_id = _id_field(data, "message_id", details)
        if kind == "react":
            try:
                emoji = check_emoji(data.get("emoji"))
            except errors.InvalidParams as exc:
                details.update(exc.details)
            if not details:
                command = React(message_id=message_id, emoji=emoji)  # type: ignore[arg-type]
        elif not details:
            command = HideMessage(message_id=message_id)  # type: ignore[arg-type]
    if command is None:
        raise ProtocolError(f"invalid {kind}", details, echo=echo)
    return command


def _parse_send(data: dict[str, Any]) -> SendMessage:
    raw_client_id = data.get("client_msg_id")
    client_msg_id = raw_client_id if isinstance(raw_client_id, str) else None
    details: dict[str, Any] = {}
    conversation_id = _id_field(data, "conversation_id", details)
    reply_to = _id_field(data, "reply_to", details, required=False)
    attachment_id = _id_field(data, "attachment_id", details, required=False)
    try:
        content, client_msg_id_clean, message_type = check_message_input(
            content=data.get("content"),
            client_msg_id=raw_client_id,
            message_type=data.get("message_type"),
            has_attachment=attachment_id is not None,
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
        reply_to=reply_to,
        attachment_id=attachment_id,
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


def _parse_typing(data: dict[str, Any]) -> Typing:
    details: dict[str, list[str]] = {}
    conversation_id = _id_field(data, "conversation_id", details)
    if details:
        raise ProtocolError("invalid typing", details)
    return Typing(conversation_id=conversation_id)  # type: ignore[arg-type]


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


def update_frame(*, kind: str, message: dict[str, Any]) -> dict[str, Any]:
    """A message changed (edit, recall, reaction, hide); its seq did not."""
    return _frame("update", {"kind": kind, "message": message})


def lifecycle_echo(command: Command) -> dict[str, str] | None:
    """The request fields an error frame of a lifecycle command repeats, so the client
    knows which request failed. `target_client_msg_id`, never `client_msg_id`: an error
    naming a client_msg_id means that send failed."""
    if isinstance(command, (EditMessage, RecallMessage)):
        echo = {
            "request": "edit-message" if isinstance(command, EditMessage) else "recall-message",
            "conversation_id": str(command.conversation_id),
        }
        if command.message_id is not None:
            echo["message_id"] = str(command.message_id)
        if command.client_msg_id is not None:
            echo["target_client_msg_id"] = command.client_msg_id
        return echo
    if isinstance(command, React):
        return {"request": "react", "message_id": str(command.message_id)}
    if isinstance(command, HideMessage):
        return {"request": "hide-message", "message_id": str(command.message_id)}
    return None


def read_frame(*, conversation_id: int, seq: int) -> dict[str, Any]:
    return _frame("read", {"conversation_id": str(conversation_id), "seq": seq})


def receipt_frame(*, conversation_id: int, user_id: int, seq: int) -> dict[str, Any]:
    """Another member read the conversation up to seq (read receipts)."""
    return _frame("receipt", {"conversation_id": str(conversation_id), "user_id": str(user_id), "seq": seq})


def typing_frame(*, conversation_id: int, user_id: int, user_name: str) -> dict[str, Any]:
    """Another member is typing; the client shows it for a few seconds (docs/realtime.md)."""
    return _frame(
        "typing", {"conversation_id": str(conversation_id), "user_id": str(user_id), "user_name": user_name}
    )


def presence_frame(users: list[dict[str, Any]]) -> dict[str, Any]:
    """`presence` {users: [{user_id, online, last_seen}]} (issue 11, pushed, never asked)."""
    return _frame("presence", {"users": users})


def error_frame(
    *,
    code: int,
    message: str,
    client_msg_id: str | None = None,
    details: dict[str, Any] | None = None,
    echo: dict[str, str] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "message": message}
    if client_msg_id:
        data["client_msg_id"] = client_msg_id
    if details:
        data["details"] = details
    if echo:
        data.update(echo)
    return _frame("error", data)


def error_frame_for(
    exc: BaseException, *, client_msg_id: str | None = None, echo: dict[str, str] | None = None
) -> dict[str, Any]:
    """The one mapping of exceptions to WebSocket error frames."""
    if isinstance(exc, ProtocolError):
        if client_msg_id is None:
            client_msg_id = exc.client_msg_id
        if echo is None:
            echo = exc.echo
    if isinstance(exc, errors.GoChatError):
        return error_frame(
            code=exc.code, message=exc.message, client_msg_id=client_msg_id, details=exc.details, echo=echo
        )
    # Never leak internals to the client; the caller logs the exception.
    return error_frame(code=errors.INTERNAL, message="internal error", client_msg_id=client_msg_id, echo=echo)
