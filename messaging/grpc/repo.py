"""RepoService: batched reads of the im-repo for other services (authenticated by the
shared service token in the interceptor). Batch calls answer in request order and name
the ids they could not find instead of failing the whole batch."""
from __future__ import annotations

import grpc

from accounts import selectors as account_selectors
from gochat_site.errors import InvalidParams
from groups import services as group_services
from messaging import selectors
from messaging.grpc import convert
from protos.gochat.v1 import repo_pb2, repo_pb2_grpc

# Largest batch one call may ask for; callers split bigger sets.
MAX_BATCH = 1000


def _batch(ids: list[int], name: str) -> list[int]:
    if len(ids) > MAX_BATCH:
        raise InvalidParams(f"too many {name}", {name: [f"At most {MAX_BATCH} per call."]})
    if any(i <= 0 for i in ids):
        raise InvalidParams(f"invalid {name}", {name: ["Ids must be positive."]})
    return list(dict.fromkeys(ids))  # de-duplicated, request order kept


class RepoServicer(repo_pb2_grpc.RepoServiceServicer):
    def GetUsers(self, request: repo_pb2.GetUsersRequest, context: grpc.ServicerContext) -> repo_pb2.GetUsersResponse:
        ids = _batch(list(request.user_ids), "user_ids")
        found = account_selectors.users_by_ids(user_ids=ids)
        return repo_pb2.GetUsersResponse(
            users=[convert.user_info(found[i]) for i in ids if i in found],
            not_found_ids=[i for i in ids if i not in found],
        )

    def GetMessages(
        self, request: repo_pb2.GetMessagesRequest, context: grpc.ServicerContext
    ) -> repo_pb2.GetMessagesResponse:
        ids = _batch(list(request.message_ids), "message_ids")
        found = selectors.messages_by_ids(message_ids=ids)
        return repo_pb2.GetMessagesResponse(
            messages=[convert.chat_message(found[i]) for i in ids if i in found],
            not_found_ids=[i for i in ids if i not in found],
        )

    def GetGroup(self, request: repo_pb2.GetGroupRequest, context: grpc.ServicerContext) -> repo_pb2.GroupInfo:
        return convert.group_info(group_services.access_group_by_id(request.group_id))

    def GetConversation(
        self, request: repo_pb2.GetConversationRequest, context: grpc.ServicerContext
    ) -> repo_pb2.ConversationInfo:
        return convert.conversation_info(selectors.conversation_by_id(conversation_id=request.conversation_id))

    def GetOnlineStatus(
        self, request: repo_pb2.GetOnlineStatusRequest, context: grpc.ServicerContext
    ) -> repo_pb2.GetOnlineStatusResponse:
        from messaging.presence import get_presence

        ids = _batch(list(request.user_ids), "user_ids")
        sessions = get_presence().lookup(ids) if ids else {}
        return repo_pb2.GetOnlineStatusResponse(
            statuses=[
                repo_pb2.UserPresence(user_id=i, online=bool(sessions.get(i)), sessions=sessions.get(i, {}))
                for i in ids
            ]
        )
