"""The search backend interface and the query rules both backends share.

A backend keeps a full-text index of message content and answers one question: which
messages of these conversations match these terms, best first, with a highlighted
snippet. Who may read which conversation is decided by the caller (tasks.search.selectors).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Protocol

from messaging.models import Message

# Control characters mark the matched words inside the database's snippet; the snippet
# is HTML-escaped afterwards and only then do they become <mark> tags, so message
# content can never inject markup into a highlight.
MARK_START = "\x02"
MARK_END = "\x03"

# Words as both PostgreSQL's 'simple' parser and SQLite's unicode61 tokenizer see them
# for the common case: runs of letters and digits (\w without the underscore, which both
# treat as a separator). A term is only ever letters and digits, so neither database
# can read any part of it as query syntax.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    message_id: int
    rank: float
    snippet: str  # raw snippet with MARK_START/MARK_END around matches


class SearchBackend(Protocol):
    # True when the database keeps the index at every write by itself (PostgreSQL's
    # GIN expression index, SQLite's FTS5 triggers), so routing needs no index task per
    # message: settings.SEARCH_INDEX_ON_WRITE defaults to the opposite of this.
    indexed_on_write: bool

    def index(self, message: Message) -> None:
        """Make one message searchable (idempotent)."""

    def remove(self, message_id: int) -> None:
        """Drop one message from the index (recalled or deleted)."""

    def search(
        self, *, user_id: int, terms: list[str], conversation_id: int | None, limit: int, offset: int
    ) -> list[Hit]:
        """Messages of the conversations `user_id` is a member of (or of `conversation_id`
        only) containing every term, best first; at most `limit` after skipping `offset`."""


def query_terms(q: str) -> list[str]:
    """The lower-cased words of a user query; punctuation and operators are dropped so
    that no input can be read as FTS syntax. Each term matches as a prefix ("gro" finds
    "group"), as people type while they search."""
    return [word.lower() for word in _WORD.findall(q)]


def highlight_html(snippet: str) -> str:
    """An HTML-safe highlight: escaped text with matches wrapped in <mark>."""
    escaped = html.escape(snippet, quote=False)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
