from gochat.v1 import envelopes_pb2 as _envelopes_pb2
from gochat.v1 import repo_pb2 as _repo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoginRequest(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("access", "refresh", "user")
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    access: str
    refresh: str
    user: _repo_pb2.UserInfo
    def __init__(self, access: _Optional[str] = ..., refresh: _Optional[str] = ..., user: _Optional[_Union[_repo_pb2.UserInfo, _Mapping]] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("conversation_id", "client_msg_id", "content", "message_type", "reply_to_id", "attachment_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MSG_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: int
    client_msg_id: str
    content: str
    message_type: str
    reply_to_id: int
    attachment_id: int
    def __init__(self, conversation_id: _Optional[int] = ..., client_msg_id: _Optional[str] = ..., content: _Optional[str] = ..., message_type: _Optional[str] = ..., reply_to_id: _Optional[int] = ..., attachment_id: _Optional[int] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message", "created")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    message: _envelopes_pb2.ChatMessage
    created: bool
    def __init__(self, message: _Optional[_Union[_envelopes_pb2.ChatMessage, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("conversation_id", "before_seq", "after_seq", "limit")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQ_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: int
    before_seq: int
    after_seq: int
    limit: int
    def __init__(self, conversation_id: _Optional[int] = ..., before_seq: _Optional[int] = ..., after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("messages", "has_more", "hidden_seqs", "read_counts")
    class ReadCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_SEQS_FIELD_NUMBER: _ClassVar[int]
    READ_COUNTS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_envelopes_pb2.ChatMessage]
    has_more: bool
    hidden_seqs: _containers.RepeatedScalarFieldContainer[int]
    read_counts: _containers.ScalarMap[int, int]
    def __init__(self, messages: _Optional[_Iterable[_Union[_envelopes_pb2.ChatMessage, _Mapping]]] = ..., has_more: _Optional[bool] = ..., hidden_seqs: _Optional[_Iterable[int]] = ..., read_counts: _Optional[_Mapping[int, int]] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ConversationEntry(_message.Message):
    __slots__ = ("conversation", "title", "peer_id", "unread", "last_read_seq", "muted", "pinned", "unread_mentions", "peer_last_read_seq")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    LAST_READ_SEQ_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    UNREAD_MENTIONS_FIELD_NUMBER: _ClassVar[int]
    PEER_LAST_READ_SEQ_FIELD_NUMBER: _ClassVar[int]
    conversation: _repo_pb2.ConversationInfo
    title: str
    peer_id: int
    unread: int
    last_read_seq: int
    muted: bool
    pinned: bool
    unread_mentions: int
    peer_last_read_seq: int
    def __init__(self, conversation: _Optional[_Union[_repo_pb2.ConversationInfo, _Mapping]] = ..., title: _Optional[str] = ..., peer_id: _Optional[int] = ..., unread: _Optional[int] = ..., last_read_seq: _Optional[int] = ..., muted: _Optional[bool] = ..., pinned: _Optional[bool] = ..., unread_mentions: _Optional[int] = ..., peer_last_read_seq: _Optional[int] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations",)
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[ConversationEntry]
    def __init__(self, conversations: _Optional[_Iterable[_Union[ConversationEntry, _Mapping]]] = ...) -> None: ...

class MarkReadRequest(_message.Message):
    __slots__ = ("conversation_id", "seq")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    conversation_id: int
    seq: int
    def __init__(self, conversation_id: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class MarkReadResponse(_message.Message):
    __slots__ = ("last_read_seq",)
    LAST_READ_SEQ_FIELD_NUMBER: _ClassVar[int]
    last_read_seq: int
    def __init__(self, last_read_seq: _Optional[int] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("name", "description", "avatar", "max_members", "member_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVATAR_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    avatar: str
    max_members: int
    member_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., avatar: _Optional[str] = ..., max_members: _Optional[int] = ..., member_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class JoinGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class LeaveGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class LeaveGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GroupMembersRequest(_message.Message):
    __slots__ = ("group_id", "after_user_id", "limit")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    after_user_id: int
    limit: int
    def __init__(self, group_id: _Optional[int] = ..., after_user_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GroupMember(_message.Message):
    __slots__ = ("user", "role", "joined_at_ms", "muted")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    user: _repo_pb2.UserInfo
    role: str
    joined_at_ms: int
    muted: bool
    def __init__(self, user: _Optional[_Union[_repo_pb2.UserInfo, _Mapping]] = ..., role: _Optional[str] = ..., joined_at_ms: _Optional[int] = ..., muted: _Optional[bool] = ...) -> None: ...

class GroupMembersResponse(_message.Message):
    __slots__ = ("members", "next_after_user_id")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[GroupMember]
    next_after_user_id: int
    def __init__(self, members: _Optional[_Iterable[_Union[GroupMember, _Mapping]]] = ..., next_after_user_id: _Optional[int] = ...) -> None: ...

class EditMessageRequest(_message.Message):
    __slots__ = ("message_id", "content")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    content: str
    def __init__(self, message_id: _Optional[int] = ..., content: _Optional[str] = ...) -> None: ...

class RecallMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    def __init__(self, message_id: _Optional[int] = ...) -> None: ...

class SetReactionRequest(_message.Message):
    __slots__ = ("message_id", "emoji")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EMOJI_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    emoji: str
    def __init__(self, message_id: _Optional[int] = ..., emoji: _Optional[str] = ...) -> None: ...
