"""REST adapter of message search: GET /api/v1/search."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.representations import message_dict
from tasks.search.selectors import search_messages

_RESULT_FIELDS = {
    "message": serializers.DictField(help_text="the message, as in messages/history"),
    "highlight": serializers.CharField(help_text="HTML-escaped content snippet, matches wrapped in <mark>"),
    "rank": serializers.FloatField(help_text="higher is better; comparable within one response"),
}


class SearchView(APIView):
    @extend_schema(
        tags=["search"],
        parameters=[
            OpenApiParameter("q", str, required=True, description="words to find (all must match), at most 200 characters"),
            OpenApiParameter("conversation_id", str, description="search one conversation only"),
            OpenApiParameter("limit", int, description="page size, 1..50, default 20"),
            OpenApiParameter("offset", int, description="results to skip, 0..1000"),
        ],
        responses=inline_serializer(
            "SearchPage",
            {
                "results": inline_serializer("SearchResult", _RESULT_FIELDS, many=True),
                "has_more": serializers.BooleanField(),
                "limit": serializers.IntegerField(),
                "offset": serializers.IntegerField(),
            },
        ),
        summary="Search the messages of my conversations",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        page = search_messages(
            user_id=request.user.id,
            q=params.get("q"),
            conversation_id=params.get("conversation_id"),
            limit=params.get("limit"),
            offset=params.get("offset"),
        )
        return Response(
            {
                "results": [
                    {"message": message_dict(r.message), "highlight": r.highlight, "rank": r.rank} for r in page.results
                ],
                "has_more": page.has_more,
                "limit": page.limit,
                "offset": page.offset,
            }
        )
