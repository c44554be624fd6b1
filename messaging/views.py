"""REST adapters of the messaging app: parse with a serializer, call one service or
selector, shape the answer. Rules and permission checks live in services/selectors."""
from __future__ import annotations


from asgiref.sync import sync_to_async
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.serializers import parse_query, parse_request
from accounts.throttles import SettingsScopedRateThrottle
from django.conf import settings

from gochat_site.api_schema import AUTHENTICATED, WITH_BODY, WITH_QUERY, error_responses
from gochat_site.errors import NotFound, PermissionDenied
from gochat_site.logging import trace_id_var
from messaging import attachments, lifecycle, routing, selectors, services
from messaging.representations import message_dict, page_message_dicts
from messaging.serializers import (
    AttachmentSerializer,
    UploadRequestSerializer,
    ConversationSerializer,
    CreateConversationSerializer,
    DeleteDeviceSerializer,
    DeviceSerializer,
    EditMessageSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    MarkReadResponseSerializer,
    MarkReadSerializer,
    ReceiptsQuerySerializer,
    ReceiptsSerializer,
    ReactionSerializer,
    RegisterDeviceSerializer,
    SendMessageResponseSerializer,
    SendMessageSerializer,
    UnreadSerializer,
    UpdateConversationSerializer,
)

TAG_MESSAGES = ["messages"]
TAG_CONVERSATIONS = ["conversations"]
TAG_DEVICES = ["devices"]
TAG_ATTACHMENTS = ["attachments"]
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
            content=data.get("content", ""),
            client_msg_id=data["client_msg_id"],
            message_type=data.get("message_type"),
            attachment_id=data.get("attachment_id"),
            reply_to=data.get("reply_to"),
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
        return Response(
            {"messages": page_message_dicts(page.messages, page.read_counts), "has_more": page.has_more, "hidden_seqs": page.hidden_seqs}
        )



# --- message lifecycle: edit, recall, delete-for-me, reactions ---------------------------
# Each calls one messaging.lifecycle function and routes the `update` frame after commit.
_ON_MESSAGE = (*AUTHENTICATED, 403, 404)


def _updated(request: Request, message, kind: str) -> Response:  # noqa: ANN001 - messaging.Message
    routing.route_update_on_commit(message_id=message.id, kind=kind, actor_id=request.user.id, trace_id=trace_id_var.get())
    selectors.attach_reactions([message], viewer_id=request.user.id)
    return Response({"message": message_dict(message)})


class MessageEditView(APIView):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "send"

    @extend_schema(
        tags=TAG_MESSAGES,
        request=EditMessageSerializer,
        responses={200: SendMessageResponseSerializer, **error_responses(*_ON_MESSAGE, *WITH_BODY, 409, 429)},
        summary="Edit a message (its sender, within MESSAGE_EDIT_SECONDS)",
        description="403/1005 for another user's message or after the window; 409/1007 for a recalled message.",
    )
    def patch(self, request: Request, message_id: int) -> Response:
        data = _parse(EditMessageSerializer, request.data)
        message = lifecycle.edit_message(user_id=request.user.id, message_id=message_id, content=data["content"])
        return _updated(request, message, lifecycle.EDIT)


class MessageRecallView(APIView):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "send"

    @extend_schema(
        tags=TAG_MESSAGES,
        request=None,
        responses={200: SendMessageResponseSerializer, **error_responses(*_ON_MESSAGE, 429)},
        summary="Recall a message (its sender within MESSAGE_RECALL_SECONDS, a group owner/admin any time)",
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = lifecycle.recall_message(user_id=request.user.id, message_id=message_id)
        return _updated(request, message, lifecycle.RECALL)


class MessageHideView(APIView):
    @extend_schema(
        tags=TAG_MESSAGES,
        request=None,
        responses={204: None, **error_responses(*_ON_MESSAGE)},
        summary="Delete a message for me (history and sync list its seq in hidden_seqs)",
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = lifecycle.hide_message(user_id=request.user.id, message_id=message_id)
        routing.route_update_on_commit(
            message_id=message.id, kind=lifecycle.HIDE, actor_id=request.user.id, trace_id=trace_id_var.get()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageReactionView(APIView):
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "send"

    @extend_schema(
        tags=TAG_MESSAGES,
        request=ReactionSerializer,
        responses={200: SendMessageResponseSerializer, **error_responses(*_ON_MESSAGE, *WITH_BODY, 409, 429)},
        summary="Set my reaction to a message (one emoji; \"\" removes it)",
    )
    def put(self, request: Request, message_id: int) -> Response:
        data = _parse(ReactionSerializer, request.data)
        message = lifecycle.set_reaction(user_id=request.user.id, message_id=message_id, emoji=data["emoji"])
        return _updated(request, message, lifecycle.REACTION)

    @extend_schema(
        tags=TAG_MESSAGES,
        request=None,
        responses={200: SendMessageResponseSerializer, **error_responses(*_ON_MESSAGE, 409, 429)},
        summary="Remove my reaction to a message",
    )
    def delete(self, request: Request, message_id: int) -> Response:
        message = lifecycle.set_reaction(user_id=request.user.id, message_id=message_id, emoji="")
        return _updated(request, message, lifecycle.REACTION)


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
        result = services.read_conversation(user_id=request.user.id, conversation_id=conversation_id, seq=data["seq"])
        routing.publish_read(result)
        last_read = result.last_read_seq
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


# --- read receipts (issue 10) ---------------------------------------------------------------

class ConversationReceiptsView(APIView):
    @extend_schema(
        tags=TAG_CONVERSATIONS,
        parameters=[ReceiptsQuerySerializer],
        responses={200: ReceiptsSerializer, **error_responses(*_ON_CONVERSATION, *WITH_QUERY)},
        summary="Members' read positions (members with receipts on)",
        description="Keyset-paged by user id: pass `next` as `after`.",
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        query = parse_query(ReceiptsQuerySerializer, request.query_params)
        page = selectors.conversation_receipts(
            user_id=request.user.id, conversation_id=conversation_id, after=query.get("after"), limit=query.get("limit")
        )
        return Response(
            {
                "members": [{"user_id": str(u), "last_read_seq": seq} for u, seq in page.members],
                "next": str(page.next_after) if page.next_after is not None else None,
            }
        )


# --- attachments (issue 10) ------------------------------------------------------------

# Bytes a multipart body may carry beyond the file itself (boundaries, part headers).
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class _LimitedUploadHandler(FileUploadHandler):
    """Stops reading a multipart body as soon as a file passes UPLOAD_MAX_BYTES (a body
    without Content-Length, or one that lied), so an oversized upload is never stored."""

    def __init__(self, request=None) -> None:  # noqa: ANN001 - Django's signature
        super().__init__(request)
        self.limit = settings.UPLOAD_MAX_BYTES
        self.seen = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.seen = start + len(raw_data)
        if self.seen > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class UploadView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=TAG_ATTACHMENTS,
        request={"multipart/form-data": UploadRequestSerializer},
        responses={
            201: AttachmentSerializer,
            **error_responses(*AUTHENTICATED, *WITH_BODY),
            # No body schema on purpose: behind daphne, Twisted answers a multipart body it
            # cannot parse (no parts at all) with a bare 400 before Django sees it.
            400: OpenApiResponse(
                description="invalid upload: the error body with code 1001 and details.file (docs/api.md); "
                "a multipart body daphne's HTTP layer cannot parse gets a bare 400 without a body"
            ),
        },
        summary="Upload a file to attach to a message (multipart field `file`)",
        description="The type is detected from the bytes and must be in UPLOAD_ALLOWED_TYPES; over "
        "UPLOAD_MAX_BYTES is 413/1001 with details.max_bytes. Images get width, height and a thumbnail. "
        "Send it with messages/send (or the WebSocket send-message) `attachment_id`.",
    )
    def post(self, request: Request) -> Response:
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > settings.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
            raise services.UploadTooLarge()
        limiter = _LimitedUploadHandler(request._request)
        request._request.upload_handlers = [limiter, *request._request.upload_handlers]
        upload = request.FILES.get("file")
        if limiter.exceeded:
            raise services.UploadTooLarge()
        attachment = services.upload_attachment(uploader_id=request.user.id, file=upload)
        return Response(attachments.model_dict(attachment), status=status.HTTP_201_CREATED)


class AttachmentView(APIView):
    @extend_schema(
        tags=TAG_ATTACHMENTS,
        responses={200: AttachmentSerializer, **error_responses(*AUTHENTICATED, 403, 404)},
        summary="An attachment with freshly signed URLs (members of its conversation, or its uploader)",
    )
    def get(self, request: Request, attachment_id: int) -> Response:
        attachment = selectors.access_attachment(user_id=request.user.id, attachment_id=attachment_id)
        return Response(attachments.model_dict(attachment))


_SIG = OpenApiParameter("sig", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True,
                        description="the signature of a URL handed out by history, sync, frames or attachments/{id}")


class _SignedFileView(APIView):
    """The file behind a signed URL: the signature (ATTACHMENT_URL_TTL_SECONDS) is the
    authorisation, so that <img src> and plain links work without a bearer header."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    variant = attachments.FILE

    def get(self, request: Request, attachment_id: int):  # noqa: ANN201 - a file or redirect response
        try:
            attachments.check_signature(attachment_id, self.variant, request.query_params.get("sig"))
        except attachments.LinkRefused as exc:
            raise PermissionDenied(exc.reason) from None
        attachment = selectors.attachment_by_id(attachment_id=attachment_id)
        name = attachment.storage_name if self.variant == attachments.FILE else attachment.thumbnail_name
        if not name:
            raise NotFound("no thumbnail")
        content_type = attachment.content_type if self.variant == attachments.FILE else (
            "image/png" if name.endswith(".png") else "image/jpeg"
        )
        # Media the page may show inline; anything else is a download, never rendered here.
        inline = content_type.startswith(attachments.MEDIA_FAMILIES) or content_type == "application/pdf"
        store = attachments.storage()
        if not attachments.streams_locally(store):
            disposition = content_disposition_header(not inline, attachment.name)
            return HttpResponseRedirect(
                store.url(name, parameters={
                    "ResponseContentType": content_type, "ResponseContentDisposition": disposition,
                })
            )
        stream = store.open(name, "rb")
        response = FileResponse(stream, content_type=content_type, as_attachment=not inline, filename=attachment.name)
        if isinstance(request._request, ASGIRequest):
            # Under ASGI (daphne) a sync file iterator is read whole into memory first.
            response.streaming_content = _read_in_chunks(stream)
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=300"
        return response


async def _read_in_chunks(stream, block_size: int = 256 * 1024):  # noqa: ANN001, ANN202 - a file, an async generator
    """The file's bytes as an async iterator: each read in a worker thread, never more
    than one block in memory per download."""
    read = sync_to_async(stream.read, thread_sensitive=False)
    try:
        while chunk := await read(block_size):
            yield chunk
    finally:
        await sync_to_async(stream.close, thread_sensitive=False)()


class AttachmentDownloadView(_SignedFileView):
    @extend_schema(
        tags=TAG_ATTACHMENTS, parameters=[_SIG], auth=[],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 302: None, **error_responses(403, 404)},
        summary="Download an attachment through its signed URL (S3: a redirect to a presigned URL)",
    )
    def get(self, request: Request, attachment_id: int):  # noqa: ANN201
        return super().get(request, attachment_id)


class AttachmentThumbnailView(_SignedFileView):
    variant = attachments.THUMBNAIL

    @extend_schema(
        tags=TAG_ATTACHMENTS, parameters=[_SIG], auth=[],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 302: None, **error_responses(403, 404)},
        summary="An image attachment's thumbnail through its signed URL",
    )
    def get(self, request: Request, attachment_id: int):  # noqa: ANN201
        return super().get(request, attachment_id)
