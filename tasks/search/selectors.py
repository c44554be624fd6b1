"""Reads of message search: what the search API answers."""
from __future__ import annotations

from dataclasses import dataclass

from gochat_site.errors import InvalidParams
from messaging.models import HiddenMessage, Message
from messaging.selectors import access_membership
from tasks.search import get_backend
from tasks.search.base import highlight_html, query_terms

MAX_QUERY_LENGTH = 200
MAX_TERMS = 16
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# Ranked results past this depth cost a full sort of every match; nobody pages that far.
MAX_OFFSET = 1000


@dataclass(frozen=True)
class SearchResult:
    message: Message
    highlight: str
    rank: float


@dataclass(frozen=True)
class SearchPage:
    results: list[SearchResult]
    has_more: bool
    limit: int
    offset: int


def _bounded_int(value: object, name: str, *, default: int, minimum: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParams(f"invalid {name}", {name: ["An integer is required."]}) from None
    if not minimum <= number <= maximum:
        raise InvalidParams(f"invalid {name}", {name: [f"Must be between {minimum} and {maximum}."]})
    return number


def check_search_query(q: object) -> list[str]:
    """The search terms of `q` (the first MAX_TERMS words; none for punctuation only),
    or InvalidParams (1001) for a blank or oversize query. Well-formed text is never
    refused for its words, so the API schema can state the whole rule (docs/api.md)."""
    if not isinstance(q, str) or not q.strip():
        raise InvalidParams("q is required", {"q": ["A non-empty search text is required."]})
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidParams("q is too long", {"q": [f"At most {MAX_QUERY_LENGTH} characters."]})
    return query_terms(q)[:MAX_TERMS]


def search_messages(
    *, user_id: int, q: object, conversation_id: object = None, limit: object = None, offset: object = None
) -> SearchPage:
    """Messages the user may read (conversations they are a member of) containing every
    word of `q`, best match first, newest first among equals."""
    terms = check_search_query(q)
    size = _bounded_int(limit, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    skip = _bounded_int(offset, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
    scope: int | None = None
    if conversation_id not in (None, ""):
        # NotFound (1003) for no such conversation, NotAMember (1005) for someone else's.
        scope = access_membership(user_id=user_id, conversation_id=conversation_id).conversation_id
    if not terms:
        return SearchPage(results=[], has_more=False, limit=size, offset=skip)
    hits = get_backend().search(user_id=user_id, terms=terms, conversation_id=scope, limit=size + 1, offset=skip)
    page = hits[:size]
    ids = [hit.message_id for hit in page]
    messages = Message.objects.select_related("sender").in_bulk(ids)
    # Deleted for me (delete-for-me) stays out of my search too; a page may come out shorter.
    hidden = set(HiddenMessage.objects.filter(user_id=user_id, message_id__in=ids).values_list("message_id", flat=True))
    results = [
        SearchResult(message=messages[hit.message_id], highlight=highlight_html(hit.snippet), rank=hit.rank)
        for hit in page
        if hit.message_id in messages and hit.message_id not in hidden
    ]
    return SearchPage(results=results, has_more=len(hits) > size, limit=size, offset=skip)
