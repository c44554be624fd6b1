from gochat.v1 import envelopes_pb2 as _envelopes_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserInfo(_message.Message):
    __slots__ = ("id", "username", "nickname", "avatar", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    username: str
    nickname: str
    avatar: str
    status: str
    def __init__(self, id: _Optional[int] = ..., username: _Optional[str] = ..., nickname: _Optional[str] = ..., avatar: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class GroupInfo(_message.Message):
    __slots__ = ("id", "name", "description", "avatar", "owner_id", "max_members", "member_count", "conversation_id", "created_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    description: str
    avatar: str
    owner_id: int
    max_members: int
    member_count: int
    conversation_id: int
    created_at_ms: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., avatar: _Optional[str] = ..., owner_id: _Optional[int] = ..., max_members: _Optional[int] = ..., member_count: _Optional[int] = ..., conversation_id: _Optional[int] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class ConversationInfo(_message.Message):
    __slots__ = ("id", "type", "group_id", "last_seq", "last_message_id", "last_message_preview", "last_message_sender_id", "last_message_at_ms", "member_count", "created_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    type: str
    group_id: int
    last_seq: int
    last_message_id: int
    last_message_preview: str
    last_message_sender_id: int
    last_message_at_ms: int
    member_count: int
    created_at_ms: int
    def __init__(self, id: _Optional[int] = ..., type: _Optional[str] = ..., group_id: _Optional[int] = ..., last_seq: _Optional[int] = ..., last_message_id: _Optional[int] = ..., last_message_preview: _Optional[str] = ..., last_message_sender_id: _Optional[int] = ..., last_message_at_ms: _Optional[int] = ..., member_count: _Optional[int] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class GetUsersRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetUsersResponse(_message.Message):
    __slots__ = ("users", "not_found_ids")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_IDS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserInfo]
    not_found_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, users: _Optional[_Iterable[_Union[UserInfo, _Mapping]]] = ..., not_found_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetMessagesRequest(_message.Message):
    __slots__ = ("message_ids",)
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, message_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetMessagesResponse(_message.Message):
    __slots__ = ("messages", "not_found_ids")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_IDS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_envelopes_pb2.ChatMessage]
    not_found_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, messages: _Optional[_Iterable[_Union[_envelopes_pb2.ChatMessage, _Mapping]]] = ..., not_found_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: int
    def __init__(self, conversation_id: _Optional[int] = ...) -> None: ...

class GetOnlineStatusRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class UserPresence(_message.Message):
    __slots__ = ("user_id", "online", "sessions")
    class SessionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    online: bool
    sessions: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[int] = ..., online: _Optional[bool] = ..., sessions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetOnlineStatusResponse(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[UserPresence]
    def __init__(self, statuses: _Optional[_Iterable[_Union[UserPresence, _Mapping]]] = ...) -> None: ...
