"""REST adapter of message search: GET /api/v1/search."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import IdField, RequestSerializer, StrictCharField, StrictIntegerField, parse_query
from gochat_site.api_schema import AUTHENTICATED, WITH_QUERY, error_responses
from messaging.representations import message_dict
from tasks.search.selectors import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_QUERY_LENGTH, MAX_TERMS, search_messages

class SearchQuerySerializer(RequestSerializer):
    # Not blank, at most MAX_QUERY_LENGTH characters (tasks.search.selectors.check_search_query).
    q = StrictCharField(
        max_length=MAX_QUERY_LENGTH,
        help_text=f"words to find (all must match, as prefixes); only the first {MAX_TERMS} count, "
        "and text with no letters or digits finds nothing",
    )
    conversation_id = IdField(required=False, help_text="search one conversation only")
    limit = StrictIntegerField(min_value=1, max_value=MAX_LIMIT, required=False, help_text=f"page size (default {DEFAULT_LIMIT})")
    offset = StrictIntegerField(min_value=0, max_value=MAX_OFFSET, required=False, help_text="results to skip")


_RESULT_FIELDS = {
    "message": serializers.DictField(help_text="the message, as in messages/history"),
    "highlight": serializers.CharField(help_text="HTML-escaped content snippet, matches wrapped in <mark>"),
    "rank": serializers.FloatField(help_text="higher is better; comparable within one response"),
}


class SearchView(APIView):
    @extend_schema(
        tags=["search"],
        parameters=[SearchQuerySerializer],
        responses={
            200: inline_serializer(
                "SearchPage",
                {
                    "results": inline_serializer("SearchResult", _RESULT_FIELDS, many=True),
                    "has_more": serializers.BooleanField(),
                    "limit": serializers.IntegerField(),
                    "offset": serializers.IntegerField(),
                },
            ),
            **error_responses(*AUTHENTICATED, *WITH_QUERY, 403, 404),
        },
        summary="Search the messages of my conversations",
    )
    def get(self, request: Request) -> Response:
        query = parse_query(SearchQuerySerializer, request.query_params)
        page = search_messages(
            user_id=request.user.id,
            q=query["q"],
            conversation_id=query.get("conversation_id"),
            limit=query.get("limit"),
            offset=query.get("offset"),
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
