"""Limits on what a REST request body may be, checked before the body is parsed.

The API reads JSON only (REST_FRAMEWORK DEFAULT_PARSER_CLASSES): JsonBodyParser refuses
a body nested deeper than API_MAX_JSON_DEPTH before json.loads sees it, so a hostile
body cannot drive the decoder into RecursionError. The body size limit is Django's
DATA_UPLOAD_MAX_MEMORY_SIZE (API_MAX_BODY_BYTES); its RequestDataTooBig is answered 413
by gochat_site.api_errors, like the other request-limit errors listed there.
"""
from __future__ import annotations

import codecs
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from gochat_site.errors import InvalidParams

# A JSON string token: the quote, then any run of non-quote, non-backslash characters or
# backslash escapes, then the closing quote. Brackets inside strings are not nesting.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")

# The characters str.strip() removes (how text fields are trimmed), as a regex character
# class body written out rather than as \s, whose meaning differs between the regex
# engines that read the OpenAPI schema's patterns (Python, ECMA, Rust).
WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def json_nesting_exceeds(text: str, limit: int) -> bool:
    """True if `text` opens more than `limit` arrays/objects inside one another.

    Runs in C-speed regex passes plus one loop over the brackets alone, so it costs far
    less than parsing. On malformed text it may over-count (never under-count) the depth
    the decoder would reach, so it can only refuse early what the decoder would refuse.
    """
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    if brackets.count("[") + brackets.count("{") <= limit:
        return False
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class JsonBodyParser(JSONParser):
    """DRF's JSONParser with a nesting-depth check before decoding (400/1001 beyond it)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = settings.API_MAX_JSON_DEPTH
        if json_nesting_exceeds(text, limit):
            raise InvalidParams("JSON body nested too deeply", {"max_depth": limit})
        # As JSONParser.parse does, from the text already decoded.
        parse_constant = json.strict_constant if self.strict else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
