"""Ids as clients write them in a URL, a query string or a JSON body: one definition of
the accepted text, used to parse and to document it.

An id is a positive signed 64-bit integer (gochat_site.ids), written in ASCII decimal
digits without a sign or leading zeros. `ID_REGEX` matches exactly 1..2**63-1, so the
same regex is the path converter, the query/body check and the OpenAPI `pattern`, and
nothing out of range ever reaches the database (SQLite raises OverflowError beyond it).
"""
from __future__ import annotations

import re

from gochat_site.errors import InvalidParams

MAX_ID = 2**63 - 1


def _decimal_range_regex(maximum: int) -> str:
    """A regex (no anchors) matching the decimal numbers 1..maximum, no leading zeros."""
    digits = str(maximum)
    width = len(digits)
    branches = [rf"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        top = int(digit) - 1
        if top < low:
            continue
        rest = width - i - 1
        tail = rf"[0-9]{{{rest}}}" if rest else ""
        branches.append(f"{digits[:i]}[{low}-{top}]{tail}")
    branches.append(digits)
    return "(?:" + "|".join(branches) + ")"


ID_REGEX = _decimal_range_regex(MAX_ID)
ID_PATTERN = f"^{ID_REGEX}$"
_ID_FULL = re.compile(ID_REGEX)

# How an id is described in the OpenAPI schema wherever it is written as text.
ID_SCHEMA: dict[str, object] = {
    "type": "string",
    "pattern": ID_PATTERN,
    "description": "an id: decimal digits, 1..9223372036854775807, no sign or leading zeros",
}


def is_id_text(value: str) -> bool:
    return _ID_FULL.fullmatch(value) is not None


def parse_id(value: object, name: str) -> int:
    """The id in `value` (text as above, or a JSON integer in range), else 400/1001."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 < value <= MAX_ID:
            return value
    elif isinstance(value, str) and is_id_text(value):
        return int(value)
    raise InvalidParams(f"invalid {name}", {name: ["A valid id is required."]})


class IdConverter:
    """The `<id:name>` path converter: only an id in range matches, so any other text
    in an id's place is an unknown URL (404/1003), never an overflow in a query."""

    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)


def register_id_converter() -> None:
    """Make `<id:name>` available to URL patterns; every urls module that uses it calls
    this first (Django deprecates registering a converter name twice)."""
    from django.urls import register_converter
    from django.urls.converters import get_converters

    if "id" not in get_converters():
        register_converter(IdConverter, "id")
