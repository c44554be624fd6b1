from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpstreamMessage(_message.Message):
    __slots__ = ("trace_id", "gateway_id", "connection_id", "sender_id", "conversation_id", "client_msg_id", "content", "message_type", "received_at_ms", "action", "target_message_id", "target_client_msg_id", "reply_to_id", "attachment_id")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    gateway_id: str
    connection_id: str
    sender_id: int
    conversation_id: int
    client_msg_id: str
    content: str
    message_type: str
    received_at_ms: int
    action: str
    target_message_id: int
    target_client_msg_id: str
    reply_to_id: int
    attachment_id: int
    def __init__(self, trace_id: _Optional[str] = ..., gateway_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., sender_id: _Optional[int] = ..., conversation_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., content: _Optional[str] = ..., message_type: _Optional[str] = ..., received_at_ms: _Optional[int] = ..., action: _Optional[str] = ..., target_message_id: _Optional[int] = ..., target_client_msg_id: _Optional[str] = ..., reply_to_id: _Optional[int] = ..., attachment_id: _Optional[int] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("id", "conversation_id", "seq", "sender_id", "client_msg_id", "message_type", "content", "created_at_ms", "status", "sender_name", "edited_at_ms", "reply_to", "mention_user_ids", "attachment", "reactions")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    EDITED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    MENTION_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    REACTIONS_FIELD_NUMBER: _ClassVar[int]
    id: int
    conversation_id: int
    seq: int
    sender_id: int
    client_msg_id: str
    message_type: str
    content: str
    created_at_ms: int
    status: str
    sender_name: str
    edited_at_ms: int
    reply_to: ReplyPreview
    mention_user_ids: _containers.RepeatedScalarFieldContainer[int]
    attachment: Attachment
    reactions: _containers.RepeatedCompositeFieldContainer[ReactionCount]
    def __init__(self, id: _Optional[int] = ..., conversation_id: _Optional[int] = ..., seq: _Optional[int] = ..., sender_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., message_type: _Optional[str] = ..., content: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., status: _Optional[str] = ..., sender_name: _Optional[str] = ..., edited_at_ms: _Optional[int] = ..., reply_to: _Optional[_Union[ReplyPreview, _Mapping]] = ..., mention_user_ids: _Optional[_Iterable[int]] = ..., attachment: _Optional[_Union[Attachment, _Mapping]] = ..., reactions: _Optional[_Iterable[_Union[ReactionCount, _Mapping]]] = ...) -> None: ...

class ReplyPreview(_message.Message):
    __slots__ = ("id", "seq", "sender_id", "sender_name", "content", "message_type", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    seq: int
    sender_id: int
    sender_name: str
    content: str
    message_type: str
    status: str
    def __init__(self, id: _Optional[int] = ..., seq: _Optional[int] = ..., sender_id: _Optional[int] = ..., sender_name: _Optional[str] = ..., content: _Optional[str] = ..., message_type: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("id", "name", "size", "content_type", "width", "height", "has_thumbnail", "url", "thumbnail_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HAS_THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_URL_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    size: int
    content_type: str
    width: int
    height: int
    has_thumbnail: bool
    url: str
    thumbnail_url: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., has_thumbnail: _Optional[bool] = ..., url: _Optional[str] = ..., thumbnail_url: _Optional[str] = ...) -> None: ...

class ReactionCount(_message.Message):
    __slots__ = ("emoji", "count")
    EMOJI_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    emoji: str
    count: int
    def __init__(self, emoji: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class PresenceChange(_message.Message):
    __slots__ = ("user_id", "online", "last_seen_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    online: bool
    last_seen_ms: int
    def __init__(self, user_id: _Optional[int] = ..., online: _Optional[bool] = ..., last_seen_ms: _Optional[int] = ...) -> None: ...

class DownstreamMessage(_message.Message):
    __slots__ = ("trace_id", "kind", "recipient_user_ids", "message", "connection_id", "client_msg_id", "error_code", "error_message", "conversation_id", "read_seq", "reader_id", "received_at_ms", "actor_id", "update_kind", "presence")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[DownstreamMessage.Kind]
        NEW_MESSAGE: _ClassVar[DownstreamMessage.Kind]
        SEND_ACK: _ClassVar[DownstreamMessage.Kind]
        SEND_ERROR: _ClassVar[DownstreamMessage.Kind]
        READ: _ClassVar[DownstreamMessage.Kind]
        RECEIPT: _ClassVar[DownstreamMessage.Kind]
        TYPING: _ClassVar[DownstreamMessage.Kind]
        MESSAGE_UPDATE: _ClassVar[DownstreamMessage.Kind]
        PRESENCE: _ClassVar[DownstreamMessage.Kind]
    KIND_UNSPECIFIED: DownstreamMessage.Kind
    NEW_MESSAGE: DownstreamMessage.Kind
    SEND_ACK: DownstreamMessage.Kind
    SEND_ERROR: DownstreamMessage.Kind
    READ: DownstreamMessage.Kind
    RECEIPT: DownstreamMessage.Kind
    TYPING: DownstreamMessage.Kind
    MESSAGE_UPDATE: DownstreamMessage.Kind
    PRESENCE: DownstreamMessage.Kind
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_SEQ_FIELD_NUMBER: _ClassVar[int]
    READER_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_KIND_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    kind: DownstreamMessage.Kind
    recipient_user_ids: _containers.RepeatedScalarFieldContainer[int]
    message: ChatMessage
    connection_id: str
    client_msg_id: str
    error_code: int
    error_message: str
    conversation_id: int
    read_seq: int
    reader_id: int
    received_at_ms: int
    actor_id: int
    update_kind: str
    presence: _containers.RepeatedCompositeFieldContainer[PresenceChange]
    def __init__(self, trace_id: _Optional[str] = ..., kind: _Optional[_Union[DownstreamMessage.Kind, str]] = ..., recipient_user_ids: _Optional[_Iterable[int]] = ..., message: _Optional[_Union[ChatMessage, _Mapping]] = ..., connection_id: _Optional[str] = ..., client_msg_id: _Optional[str] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., conversation_id: _Optional[int] = ..., read_seq: _Optional[int] = ..., reader_id: _Optional[int] = ..., received_at_ms: _Optional[int] = ..., actor_id: _Optional[int] = ..., update_kind: _Optional[str] = ..., presence: _Optional[_Iterable[_Union[PresenceChange, _Mapping]]] = ...) -> None: ...

class TaskMessage(_message.Message):
    __slots__ = ("task_type", "trace_id", "kwargs_json", "submitted_at_ms")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    trace_id: str
    kwargs_json: str
    submitted_at_ms: int
    def __init__(self, task_type: _Optional[str] = ..., trace_id: _Optional[str] = ..., kwargs_json: _Optional[str] = ..., submitted_at_ms: _Optional[int] = ...) -> None: ...
