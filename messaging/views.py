"""REST adapters of the messaging app: parse with a serializer, call one service or
selector, shape the answer. Rules and permission checks live in services/selectors."""
from __future__ import annotations


from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.serializers import parse_query, parse_request
from accounts.throttles import SettingsScopedRateThrottle
from gochat_site.api_schema import AUTHENTICATED, WITH_BODY, WITH_QUERY, error_responses
from gochat_site.logging import trace_id_var
from messaging import routing, selectors, services
from messaging.representations import message_dict
from messaging.serializers import (
    ConversationSerializer,
    CreateConversationSerializer,
    DeleteDeviceSerializer,
    DeviceSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    MarkReadResponseSerializer,
    MarkReadSerializer,
    RegisterDeviceSerializer,
    SendMessageResponseSerializer,
    SendMessageSerializer,
    UnreadSerializer,
    UpdateConversationSerializer,
)

TAG_MESSAGES = ["messages"]
TAG_CONVERSATIONS = ["conversations"]
TAG_DEVICES = ["devices"]
# Ids in the path are matched by gochat_site.id_params.IdConverter: a malformed one is an
# unknown URL (404), so every route with a conversation id answers 404 too.
_ON_CONVERSATION = (*AUTHENTICATED, 403, 404)


def _parse(serializer_class, data) -> dict:  # noqa: ANN001 - any Serializer class / request data
    return parse_request(serializer_class, data)


def _conversation_body(summary: selectors.ConversationSummary) -> dict:
    return ConversationSerializer(summary).data


# --- messages --------------------------------------------------------------------------

class SendMessageView(APIView):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "send"

    @extend_schema(
        tags=TAG_MESSAGES,
        request=SendMessageSerializer,
        responses={
            201: SendMessageResponseSerializer,
            200: OpenApiResponse(
                SendMessageResponseSerializer,
                description="repeat of a client_msg_id in this conversation: the first message",
            ),
            **error_responses(*_ON_CONVERSATION, *WITH_BODY, 429),
        },
        summary="Send a message (idempotent per conversation, sender and client_msg_id)",
    )
    def post(self, request: Request) -> Response:
        data = _parse(SendMessageSerializer, request.data)
        result = services.send_message(
            sender_id=request.user.id,
            conversation_id=data["conversation_id"],
            content=data["content"],
            client_msg_id=data["client_msg_id"],
            message_type=data["message_type"],
        )
        if result.created:
            routing.route_on_commit(result.message, trace_id=trace_id_var.get())
        if result.message.sender_id == request.user.id:
            # The sender is at hand: lets message_dict fill sender_name without a query.
            result.message.sender = request.user
        return Response(
            {"message": message_dict(result.message)},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class HistoryView(APIView):
    @extend_schema(
        tags=TAG_MESSAGES,
        parameters=[HistoryQuerySerializer],
        responses={200: HistorySerializer, **error_responses(*_ON_CONVERSATION, *WITH_QUERY)},
        summary="Messages of one conversation, ascending seq",
        description="after_seq pages forward, before_seq backward; both together give the window "
        "after_seq < seq < before_seq, paged forward from after_seq.",
    )
    def get(self, request: Request) -> Response:
        query = parse_query(HistoryQuerySerializer, request.query_params)
        page = selectors.conversation_history(
            user_id=request.user.id,
            conversation_id=query["conversation_id"],
            before_seq=query.get("before_seq"),
            after_seq=query.get("after_seq"),
            limit=query.get("limit"),
        )
        return Response({"messages": [message_dict(m) for m in page.messages], "has_more": page.has_more})


class UnreadView(APIView):
    @extend_schema(
        tags=TAG_MESSAGES,
        responses={200: UnreadSerializer, **error_responses(*AUTHENTICATED)},
        summary="Unread counts per conversation",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.unread_counts(user_id=request.user.id)
        return Response(UnreadSerializer({"total": sum(r["unread"] for r in rows), "conversations": rows}).data)


# --- conversations ---------------------------------------------------------------------

class ConversationListView(APIView):
    @extend_schema(
        tags=TAG_CONVERSATIONS,
        responses={200: ConversationSerializer(many=True), **error_responses(*AUTHENTICATED)},
        summary="My conversations, newest first",
    )
    def get(self, request: Request) -> Response:
        summaries = selectors.conversations_for_user(user_id=request.user.id)
        return Response([_conversation_body(s) for s in summaries])


class ConversationCreateView(APIView):
    @extend_schema(
        tags=TAG_CONVERSATIONS,
        request=CreateConversationSerializer,
        responses={
            201: ConversationSerializer,
            200: ConversationSerializer,
            **error_responses(*AUTHENTICATED, *WITH_BODY, 403, 404),
        },
        summary="Open the one-to-one conversation with a user (201 new, 200 existing)",
    )
    def post(self, request: Request) -> Response:
        data = _parse(CreateConversationSerializer, request.data)
        peer_id = data.get("user_id")
        if peer_id is None:
            peer_id = account_selectors.user_by_username(username=data["username"]).id
        conversation, created = services.get_or_create_single_conversation(user_id=request.user.id, peer_id=peer_id)
        summary = selectors.conversation_summary(user_id=request.user.id, conversation_id=conversation.id)
        return Response(_conversation_body(summary), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ConversationDetailView(APIView):
    @extend_schema(
        tags=TAG_CONVERSATIONS,
        responses={200: ConversationSerializer, **error_responses(*_ON_CONVERSATION)},
        summary="One conversation",
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        summary = selectors.conversation_summary(user_id=request.user.id, conversation_id=conversation_id)
        return Response(_conversation_body(summary))

    @extend_schema(
        tags=TAG_CONVERSATIONS,
        request=UpdateConversationSerializer,
        responses={200: ConversationSerializer, **error_responses(*_ON_CONVERSATION, *WITH_BODY)},
        summary="Change my settings of a conversation (muted, pinned)",
    )
    def put(self, request: Request, conversation_id: int) -> Response:
        return self._update(request, conversation_id)

    @extend_schema(
        tags=TAG_CONVERSATIONS,
        request=UpdateConversationSerializer,
        responses={200: ConversationSerializer, **error_responses(*_ON_CONVERSATION, *WITH_BODY)},
        summary="Change my settings of a conversation (muted, pinned)",
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        return self._update(request, conversation_id)

    def _update(self, request: Request, conversation_id: int) -> Response:
        data = _parse(UpdateConversationSerializer, request.data)
        services.update_member_settings(
            user_id=request.user.id, conversation_id=conversation_id, muted=data.get("muted"), pinned=data.get("pinned")
        )
        summary = selectors.conversation_summary(user_id=request.user.id, conversation_id=conversation_id)
        return Response(_conversation_body(summary))


class ConversationReadView(APIView):
    @extend_schema(
        tags=TAG_CONVERSATIONS,
        request=MarkReadSerializer,
        responses={200: MarkReadResponseSerializer, **error_responses(*_ON_CONVERSATION, *WITH_BODY)},
        summary="Mark read up to seq (never moves back)",
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        data = _parse(MarkReadSerializer, request.data)
        last_read = services.mark_read(user_id=request.user.id, conversation_id=conversation_id, seq=data["seq"])
        routing.notify_read(user_id=request.user.id, conversation_id=conversation_id, seq=last_read)
        summary = selectors.conversation_summary(user_id=request.user.id, conversation_id=conversation_id)
        return Response(
            {"conversation_id": str(summary.conversation.id), "last_read_seq": last_read, "unread": summary.unread}
        )


# --- devices ---------------------------------------------------------------------------

class DevicesView(APIView):
    @extend_schema(
        tags=TAG_DEVICES,
        responses={200: DeviceSerializer(many=True), **error_responses(*AUTHENTICATED)},
        summary="My push devices",
    )
    def get(self, request: Request) -> Response:
        return Response(DeviceSerializer(selectors.devices_of_user(user_id=request.user.id), many=True).data)

    @extend_schema(
        tags=TAG_DEVICES,
        request=RegisterDeviceSerializer,
        responses={201: DeviceSerializer, **error_responses(*AUTHENTICATED, *WITH_BODY)},
        summary="Register a push token",
    )
    def post(self, request: Request) -> Response:
        data = _parse(RegisterDeviceSerializer, request.data)
        device = services.register_device(user_id=request.user.id, platform=data["platform"], token=data["token"])
        return Response(DeviceSerializer(device).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=TAG_DEVICES,
        parameters=[DeleteDeviceSerializer],
        responses={204: None, **error_responses(*AUTHENTICATED, *WITH_QUERY, 404)},
        summary="Remove a push token: ?token=...",
        description="The token is a query parameter (a DELETE body is not part of OpenAPI's model; "
        'a JSON body `{"token": ...}` is still read when the query has none).',
    )
    def delete(self, request: Request) -> Response:
        if "token" in request.query_params:
            data = parse_query(DeleteDeviceSerializer, request.query_params)
        else:
            data = _parse(DeleteDeviceSerializer, request.data)
        services.delete_device(user_id=request.user.id, token=data["token"])
        return Response(status=status.HTTP_204_NO_CONTENT)
