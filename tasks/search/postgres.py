"""PostgreSQL full-text search over messaging_message.content.

The GIN index of migration messaging/0002_message_search is on the very expression
SearchVector("content", config="simple") compiles to, so the planner answers the @@
match from the index; PostgreSQL keeps it current at INSERT, which leaves index() and
remove() nothing to do. 'simple' (no stemming, no stop words) because chats mix
languages and a per-language dictionary would mangle the others.

Every term matches as a prefix: "gro" becomes the tsquery 'gro':* (to_tsquery), built
here from terms that are letters and digits only (tasks.search.base.query_terms), so
user text never reaches to_tsquery's syntax; a GIN tsvector index answers prefix
matches too.
"""
from __future__ import annotations

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db.models import F, Value
from django.db.models.functions import Replace

from messaging.models import ConversationMember, Message
from tasks.search.base import MARK_END, MARK_START, Hit

CONFIG = "simple"

# ts_headline's parser reads "<...>" as markup and drops it from the snippet; stand-in
# private-use characters carry angle brackets through it and are swapped back after.
_LT, _GT = "\ue000", "\ue001"


def _restore_brackets(snippet: str) -> str:
    return snippet.replace(_LT, "<").replace(_GT, ">")


def prefix_tsquery(terms: list[str]) -> str:
    """The to_tsquery text matching every term as a prefix: ["gro", "li"] -> 'gro':* & 'li':*."""
    # A term is letters/digits only (query_terms); checking again here and quoting it as
    # a lexeme keeps any input from becoming a tsquery operator.
    for term in terms:
        if not term.isalnum():
            raise ValueError(f"search term {term!r} is not letters and digits only")
    return " & ".join(f"'{term}':*" for term in terms)


def _prefix_query(terms: list[str]) -> SearchQuery:
    return SearchQuery(prefix_tsquery(terms), config=CONFIG, search_type="raw")


class PostgresSearch:
    indexed_on_write = True

    def index(self, message: Message) -> None:
        # Maintained by PostgreSQL itself: the expression index covers every row on insert.
        return None

    def remove(self, message_id: int) -> None:
        # Recalled messages are filtered by status at query time.
        return None

    def search(
        self, *, user_id: int, terms: list[str], conversation_id: int | None, limit: int, offset: int
    ) -> list[Hit]:
        vector = SearchVector("content", config=CONFIG)
        query = _prefix_query(terms)
        rows = Message.objects.annotate(document=vector).filter(document=query, status=Message.Status.NORMAL)
        if conversation_id is not None:
            rows = rows.filter(conversation_id=conversation_id)
        else:
            rows = rows.filter(
                conversation_id__in=ConversationMember.objects.filter(user_id=user_id).values("conversation_id")
            )
        rows = (
            rows.annotate(
                rank=SearchRank(vector, query),
                snippet=SearchHeadline(
                    Replace(Replace(F("content"), Value("<"), Value(_LT)), Value(">"), Value(_GT)),
                    query,
                    config=CONFIG,
                    start_sel=MARK_START,
                    stop_sel=MARK_END,
                    max_words=30,
                    min_words=12,
                    short_word=0,
                    highlight_all=False,
                ),
            )
            .order_by("-rank", "-id")
            .values_list("id", "rank", "snippet")[offset : offset + limit]
        )
        return [Hit(message_id=i, rank=float(r), snippet=_restore_brackets(s)) for i, r, s in rows]
