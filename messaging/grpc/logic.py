"""LogicService: each method parses the request, calls one service or selector (the same
ones the REST API calls) and shapes the reply. The interceptor has authenticated the
caller and maps raised GoChat errors to statuses."""
from __future__ import annotations

import grpc

from gochat_site.errors import InvalidParams, PermissionDenied, Unauthorized
from groups import selectors as group_selectors
from groups import services as group_services
from gochat_site.logging import trace_id_var
from messaging import lifecycle, routing, selectors, services
from messaging.grpc import convert
from messaging.grpc.interceptors import current_user_id
from protos.gochat.v1 import envelopes_pb2, logic_pb2, logic_pb2_grpc, repo_pb2

CONVERSATIONS_MAX_LIMIT = 500
MEMBERS_DEFAULT_LIMIT = 100
MEMBERS_MAX_LIMIT = 1000


def _limit(value: int, *, default: int, maximum: int, name: str = "limit") -> int:
    if value < 0:
        raise InvalidParams(f"invalid {name}", {name: ["Must be >= 0."]})
    return min(value or default, maximum)


def _required_id(value: int, name: str) -> int:
    if value <= 0:
        raise InvalidParams(f"invalid {name}", {name: ["A valid id is required."]})
    return value


class LogicServicer(logic_pb2_grpc.LogicServiceServicer):
    def Login(self, request: logic_pb2.LoginRequest, context: grpc.ServicerContext) -> logic_pb2.LoginResponse:
        from django.conf import settings
        from django.contrib.auth import authenticate
        from django.contrib.auth.models import update_last_login
        from rest_framework_simplejwt.tokens import RefreshToken

        if not request.username or not request.password:
            raise InvalidParams("username and password are required")
        # The same backend check and token pair as REST auth/login (simplejwt).
        user = authenticate(username=request.username, password=request.password)
        if user is None:
            raise Unauthorized("invalid username or password")
        refresh = RefreshToken.for_user(user)
        if settings.SIMPLE_JWT.get("UPDATE_LAST_LOGIN"):
            update_last_login(None, user)
        return logic_pb2.LoginResponse(
            access=str(refresh.access_token), refresh=str(refresh), user=convert.user_info(user)
        )

    def SendMessage(
        self, request: logic_pb2.SendMessageRequest, context: grpc.ServicerContext
    ) -> logic_pb2.SendMessageResponse:
        result = services.send_message(
            sender_id=current_user_id(),
            conversation_id=_required_id(request.conversation_id, "conversation_id"),
            content=request.content,
            client_msg_id=request.client_msg_id,
            message_type=request.message_type,
            reply_to=request.reply_to_id or None,
            attachment_id=request.attachment_id or None,
        )
        if result.created:
            routing.route_on_commit(result.message, trace_id=trace_id_var.get())
        return logic_pb2.SendMessageResponse(message=convert.chat_message(result.message), created=result.created)

    def History(self, request: logic_pb2.HistoryRequest, context: grpc.ServicerContext) -> logic_pb2.HistoryResponse:
        page = selectors.conversation_history(
            user_id=current_user_id(),
            conversation_id=_required_id(request.conversation_id, "conversation_id"),
            before_seq=request.before_seq if request.HasField("before_seq") else None,
            after_seq=request.after_seq if request.HasField("after_seq") else None,
            limit=request.limit or None,
        )
        return logic_pb2.HistoryResponse(
            messages=[convert.chat_message(m) for m in page.messages],
            has_more=page.has_more,
            hidden_seqs=page.hidden_seqs,
            read_counts=page.read_counts or {},
        )

    def ListConversations(
        self, request: logic_pb2.ListConversationsRequest, context: grpc.ServicerContext
    ) -> logic_pb2.ListConversationsResponse:
        limit = _limit(request.limit, default=200, maximum=CONVERSATIONS_MAX_LIMIT)
        summaries = selectors.conversations_for_user(user_id=current_user_id(), limit=limit)
        return logic_pb2.ListConversationsResponse(
            conversations=[
                logic_pb2.ConversationEntry(
                    conversation=convert.conversation_info(s.conversation),
                    title=s.title,
                    peer_id=getattr(s.peer, "id", 0) or 0,
                    unread=s.unread,
                    last_read_seq=s.membership.last_read_seq,
                    muted=s.membership.muted,
                    pinned=s.membership.pinned,
                    unread_mentions=s.membership.unread_mentions,
                    peer_last_read_seq=s.peer_last_read_seq,
                )
                for s in summaries
            ]
        )

    def MarkRead(self, request: logic_pb2.MarkReadRequest, context: grpc.ServicerContext) -> logic_pb2.MarkReadResponse:
        result = services.read_conversation(
            user_id=current_user_id(),
            conversation_id=_required_id(request.conversation_id, "conversation_id"),
            seq=request.seq,
        )
        routing.publish_read(result)
        return logic_pb2.MarkReadResponse(last_read_seq=result.last_read_seq)

    def CreateGroup(self, request: logic_pb2.CreateGroupRequest, context: grpc.ServicerContext) -> repo_pb2.GroupInfo:
        if request.max_members < 0:
            raise InvalidParams("max_members out of range", {"max_members": ["Must be >= 0."]})
        group = group_services.create_group(
            owner_id=current_user_id(),
            name=request.name,
            description=request.description,
            avatar=request.avatar,
            max_members=request.max_members or None,
            member_ids=list(request.member_ids),
        )
        return convert.group_info(group)

    def JoinGroup(self, request: logic_pb2.JoinGroupRequest, context: grpc.ServicerContext) -> repo_pb2.GroupInfo:
        group = group_services.join_group(group_id=_required_id(request.group_id, "group_id"), user_id=current_user_id())
        return convert.group_info(group)

    def LeaveGroup(
        self, request: logic_pb2.LeaveGroupRequest, context: grpc.ServicerContext
    ) -> logic_pb2.LeaveGroupResponse:
        group_services.leave_group(group_id=_required_id(request.group_id, "group_id"), user_id=current_user_id())
        return logic_pb2.LeaveGroupResponse()

    def GroupMembers(
        self, request: logic_pb2.GroupMembersRequest, context: grpc.ServicerContext
    ) -> logic_pb2.GroupMembersResponse:
        group = group_services.access_group_by_id(_required_id(request.group_id, "group_id"))
        # Only members see the member list (as on REST GET groups/{id}/members).
        if group_selectors.member_role(group_id=group.id, user_id=current_user_id()) is None:
            raise PermissionDenied("not a member of this group")
        if request.after_user_id < 0:
            raise InvalidParams("invalid after_user_id", {"after_user_id": ["Must be >= 0."]})
        limit = _limit(request.limit, default=MEMBERS_DEFAULT_LIMIT, maximum=MEMBERS_MAX_LIMIT)
        members = group_selectors.members_page(group_id=group.id, after_user_id=request.after_user_id, limit=limit)
        return logic_pb2.GroupMembersResponse(
            members=[
                logic_pb2.GroupMember(
                    user=convert.user_info(m.user), role=m.role, joined_at_ms=convert.ms(m.joined_at), muted=m.muted
                )
                for m in members
            ],
            next_after_user_id=members[-1].user_id if len(members) == limit else 0,
        )


    # --- message lifecycle (issue 10): each answers the message's current state ---------
    def _updated(self, message, kind: str) -> envelopes_pb2.ChatMessage:  # noqa: ANN001 - messaging.Message
        routing.route_update_on_commit(
            message_id=message.id, kind=kind, actor_id=current_user_id(), trace_id=trace_id_var.get()
        )
        selectors.attach_reactions([message])
        return convert.chat_message(message)

    def EditMessage(
        self, request: logic_pb2.EditMessageRequest, context: grpc.ServicerContext
    ) -> envelopes_pb2.ChatMessage:
        message = lifecycle.edit_message(
            user_id=current_user_id(),
            message_id=_required_id(request.message_id, "message_id"),
            content=request.content,
        )
        return self._updated(message, lifecycle.EDIT)

    def RecallMessage(
        self, request: logic_pb2.RecallMessageRequest, context: grpc.ServicerContext
    ) -> envelopes_pb2.ChatMessage:
        message = lifecycle.recall_message(
            user_id=current_user_id(), message_id=_required_id(request.message_id, "message_id")
        )
        return self._updated(message, lifecycle.RECALL)

    def SetReaction(
        self, request: logic_pb2.SetReactionRequest, context: grpc.ServicerContext
    ) -> envelopes_pb2.ChatMessage:
        message = lifecycle.set_reaction(
            user_id=current_user_id(), message_id=_required_id(request.message_id, "message_id"), emoji=request.emoji
        )
        return self._updated(message, lifecycle.REACTION)
