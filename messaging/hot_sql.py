"""The message hot path's reads, built as text and sent through the connection.

Each consumed batch runs the same few statements (lock the conversations, read the
senders' memberships, de-duplicate, insert, route; the insert is in services.py, the one
writer of Message rows). Through the ORM, compiling them cost
about four times what SQLite took to run them (py-spy and cProfile under s1; ~3 ms of a
batch of one): the query compiler, lookups, joins and the model iterator, every batch.
Here every statement is a format string over the models' own table and column names,
values always go as parameters, and rows come back as tuples or as model instances built
with Model.from_db and the same converters the ORM applies (aware datetimes on SQLite,
JSON). Only the hot path uses this; everything else stays on the ORM.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Model

from groups.models import Group
from messaging.models import Conversation, ConversationMember, Message


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _table(model: type[Model]) -> str:
    return _qn(model._meta.db_table)


def _column(model: type[Model], field_name: str) -> str:
    return _qn(model._meta.get_field(field_name).column)


def _in(column: str, count: int) -> str:
    """`column IN (...)`, as `column = ANY(%s)` (one array parameter) on PostgreSQL: the
    statement's text then does not change with the batch, so psycopg, which parses a
    statement's text to bind its parameters, parses it once (it caches by text)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN ({_placeholders(count)})"


# Statement texts by (name, vendor, batch shape). Building one reads the models' meta
# and the connection's quoting through Django's per-thread connection proxy on every
# batch (~3% of a batch of one's CPU in py-spy under s1u); the text never changes.
_STATEMENTS: dict[tuple[str, str, tuple[int, ...]], str] = {}
_STATEMENTS_MAX = 4096


def _statement(name: str, counts: tuple[int, ...], build: Callable[[], str]) -> str:
    """The text of the hot-path statement `name`, built once. On PostgreSQL its text does
    not depend on the batch (_in() sends one array), elsewhere it does on `counts`."""
    vendor = connection.vendor
    key = (name, vendor, () if vendor == "postgresql" else counts)
    text = _STATEMENTS.get(key)
    if text is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()  # SQLite: one text per batch shape; bounded
        text = _STATEMENTS[key] = build()
    return text


def _values(*groups: Sequence[object]) -> list[object]:
    """The parameters for _in() fragments, one group per fragment, in order."""
    if connection.vendor == "postgresql":
        return [list(group) for group in groups]
    return [value for group in groups for value in group]


def cursor():  # noqa: ANN201 - Django's CursorWrapper
    """The hot path's cursor: server-side binding on PostgreSQL (prepared after a few
    runs; gochat_site.db_backends.postgresql), the default cursor elsewhere."""
    bound = getattr(connection, "bound_cursor", None)
    return bound() if bound is not None else connection.cursor()


@contextlib.contextmanager
def pipeline() -> Iterator[None]:
    """PostgreSQL's pipeline mode around a block (psycopg): statements are sent without
    waiting for their results, which come when one is fetched or at the block's end; a
    transaction inside it sends BEGIN with its first statement and COMMIT with its last
    writes, so a batch's writes and commit are one round trip instead of one each. A
    failed statement raises (as Django's exception) at the next fetch, at COMMIT or at
    the block's end, and the transaction rolls back as usual. No-op elsewhere."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """One transaction around the hot path's writes, in pipeline mode on PostgreSQL.

    It is Django's atomic() (select_for_update, on_commit hooks, savepoints inside it all
    work as usual), arranged so that the transaction costs two round trips: atomic()
    switches autocommit off before the pipeline opens (inside one, psycopg syncs the
    pipeline for each switch: two round trips more, 29% of a batch of one's wall time in
    py-spy), BEGIN goes with the first reads, and COMMIT is queued behind the writes so
    the pipeline's closing sync carries both. atomic()'s own commit then finds the
    transaction closed and only runs the on_commit hooks. A failure rolls back as in any
    atomic() block. Inside a caller's transaction (an API request, a test case) this is a
    savepoint and no COMMIT is sent; on SQLite it is atomic() (BEGIN IMMEDIATE)."""
    outermost = not connection.in_atomic_block and connection.get_autocommit()
    with transaction.atomic():
        if connection.vendor != "postgresql" or not outermost:
            with pipeline():
                yield
            return
        raw = connection.connection
        with connection.wrap_database_errors, raw.pipeline():
            yield
            raw.execute("COMMIT")


Result = TypeVar("Result")


class Pending(Generic[Result]):
    """A statement sent whose rows are read later: inside pipeline(), statements sent one
    after another and then read share one round trip."""

    def __init__(self, sql: str, params: Sequence[object], finish: Callable[[list[tuple[Any, ...]]], Result]) -> None:
        self._cursor = cursor()
        self._finish = finish
        self._cursor.execute(sql, params)

    def result(self) -> Result:
        try:
            rows = self._cursor.fetchall()
        finally:
            self._cursor.close()
        return self._finish(rows)


def _as_is(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return rows


def _rows(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    return Pending(sql, params, _as_is).result()


# --- persisting a batch (messaging.services.send_messages) -----------------------------------


def conversation_with_type(conversation_id: int, kind: str) -> Conversation:
    """A Conversation with only its id and type loaded (the rest deferred, read on access):
    the persist step hangs it on the batch's messages so routing knows which are
    one-to-one without reading the conversations again."""
    return _loaded(Conversation, {"id": conversation_id, "type": kind})


def lock_conversations(conversation_ids: Sequence[int]) -> list[tuple[int, int, str]]:
    """(id, last_seq, type) of each existing conversation, in id order, row-locked on
    PostgreSQL (SELECT ... FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the file)."""
    return send_lock_conversations(conversation_ids).result()


def send_lock_conversations(conversation_ids: Sequence[int]) -> Pending[list[tuple[int, int, str]]]:
    def build() -> str:
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        c = Conversation
        return (
            f"SELECT {_column(c, 'id')}, {_column(c, 'last_seq')}, {_column(c, 'type')} FROM {_table(c)}"
            f" WHERE {_in(_column(c, 'id'), len(conversation_ids))}"
            f" ORDER BY {_column(c, 'id')}{lock}"
        )

    sql = _statement("lock_conversations", (len(conversation_ids),), build)
    return Pending(sql, _values(conversation_ids), _as_is)


class SenderMember(NamedTuple):
    """A sender's membership row id and the sender (id, username, nickname loaded)."""

    id: int
    user: Model


def sender_members(conversation_ids: Sequence[int], sender_ids: Sequence[int]) -> dict[tuple[int, int], SenderMember]:
    """{(conversation id, user id): SenderMember} for the senders' memberships."""
    return send_sender_members(conversation_ids, sender_ids).result()


def send_sender_members(
    conversation_ids: Sequence[int], sender_ids: Sequence[int]
) -> Pending[dict[tuple[int, int], SenderMember]]:
    user_model = get_user_model()

    def build() -> str:
        m, u = ConversationMember, user_model
        return (
            f"SELECT m.{_column(m, 'id')}, m.{_column(m, 'conversation')}, u.{_column(u, 'id')},"
            f" u.{_column(u, 'username')}, u.{_column(u, 'nickname')}"
            f" FROM {_table(m)} m JOIN {_table(u)} u ON u.{_column(u, 'id')} = m.{_column(m, 'user')}"
            f" WHERE {_in('m.' + _column(m, 'conversation'), len(conversation_ids))}"
            f" AND {_in('m.' + _column(m, 'user'), len(sender_ids))}"
        )

    sql = _statement("sender_members", (len(conversation_ids), len(sender_ids)), build)

    def finish(rows: list[tuple[Any, ...]]) -> dict[tuple[int, int], SenderMember]:
        found: dict[tuple[int, int], SenderMember] = {}
        users: dict[int, Model] = {}
        for member_id, conversation_id, user_id, username, nickname in rows:
            if user_id not in users:
                users[user_id] = _loaded(user_model, {"id": user_id, "username": username, "nickname": nickname})
            found[(conversation_id, user_id)] = SenderMember(member_id, users[user_id])
        return found

    return Pending(sql, _values(conversation_ids, sender_ids), finish)


def _loaded(model: type[Model], values: dict[str, object]) -> Model:
    """A model instance with only these fields loaded (the rest deferred); from_db takes
    values in the model's field order."""
    names = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


def messages_with_keys(
    conversation_ids: Sequence[int], sender_ids: Sequence[int], client_msg_ids: Iterable[str]
) -> list[Message]:
    """The stored messages whose conversation, sender and client_msg_id are among these
    (a superset of the exact keys: the caller matches the triples)."""
    return send_messages_with_keys(conversation_ids, sender_ids, client_msg_ids).result()


def send_messages_with_keys(
    conversation_ids: Sequence[int], sender_ids: Sequence[int], client_msg_ids: Iterable[str]
) -> Pending[list[Message]]:
    client_msg_ids = list(client_msg_ids)
    sql = _statement(
        "messages_with_keys",
        (len(conversation_ids), len(sender_ids), len(client_msg_ids)),
        lambda: (
            f"SELECT {_message_columns()} FROM {_table(Message)}"
            f" WHERE {_in(_column(Message, 'conversation'), len(conversation_ids))}"
            f" AND {_in(_column(Message, 'sender'), len(sender_ids))}"
            f" AND {_in(_column(Message, 'client_msg_id'), len(client_msg_ids))}"
        ),
    )
    return Pending(
        sql,
        _values(conversation_ids, sender_ids, client_msg_ids),
        lambda rows: [_message_from_row(row) for row in rows],
    )


def _message_columns() -> str:
    return ", ".join(_qn(field.column) for field in Message._meta.concrete_fields)


def _converters() -> list[tuple[Any, list[Any]]]:
    """Per concrete Message field, its column expression and the converters the ORM runs
    on a fetched value (backend first, then the field's own), as SQLCompiler orders them."""
    key = connection.vendor
    if key not in _CONVERTERS:
        converters = []
        for field in Message._meta.concrete_fields:
            column = field.get_col(Message._meta.db_table)
            converters.append((column, connection.ops.get_db_converters(column) + field.get_db_converters(connection)))
        _CONVERTERS[key] = converters
    return _CONVERTERS[key]


_CONVERTERS: dict[str, list[tuple[Any, list[Any]]]] = {}


def _message_from_row(row: Sequence[object]) -> Message:
    values = list(row)
    for position, (column, converters) in enumerate(_converters()):
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    return Message.from_db(connection.alias, [f.attname for f in Message._meta.concrete_fields], values)


# --- routing a batch (messaging.routing.route_messages) -------------------------------------


def conversation_sizes(conversation_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """{conversation id: (type, member count)}: a group's count from its group row, 2 for
    a one-to-one conversation."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    c, g = Conversation, Group
    sql = _statement(
        "conversation_sizes",
        (len(ids),),
        lambda: (
            f"SELECT c.{_column(c, 'id')}, c.{_column(c, 'type')}, g.{_column(g, 'member_count')}"
            f" FROM {_table(c)} c LEFT JOIN {_table(g)} g ON g.{_column(g, 'id')} = c.{_column(c, 'group')}"
            f" WHERE {_in('c.' + _column(c, 'id'), len(ids))}"
        ),
    )
    return {cid: (kind, count if count is not None else 2) for cid, kind, count in _rows(sql, _values(ids))}


def send_routed_members(
    conversation_ids: Sequence[int], max_group_size: int
) -> Pending[dict[int, dict[int, bool]]]:
    """{conversation id: {member id: muted}} of those conversations that routing delivers
    inline (one-to-one, or a group of at most max_group_size members); a larger group is
    absent (its messages go to the fan-out task). The persist step sends it with its lock,
    so routing needs no statement of its own for them."""
    m, c, g = ConversationMember, Conversation, Group
    sql = _statement(
        "routed_members",
        (len(conversation_ids),),
        lambda: (
            f"SELECT m.{_column(m, 'conversation')}, m.{_column(m, 'user')}, m.{_column(m, 'muted')}"
            f" FROM {_table(m)} m JOIN {_table(c)} c ON c.{_column(c, 'id')} = m.{_column(m, 'conversation')}"
            f" LEFT JOIN {_table(g)} g ON g.{_column(g, 'id')} = c.{_column(c, 'group')}"
            f" WHERE {_in('m.' + _column(m, 'conversation'), len(conversation_ids))}"
            f" AND (g.{_column(g, 'member_count')} IS NULL OR g.{_column(g, 'member_count')} <= %s)"
        ),
    )

    def finish(rows: list[tuple[Any, ...]]) -> dict[int, dict[int, bool]]:
        members: dict[int, dict[int, bool]] = {}
        for conversation_id, user_id, muted in rows:
            members.setdefault(conversation_id, {})[user_id] = bool(muted)
        return members

    return Pending(sql, [*_values(conversation_ids), max_group_size], finish)


def member_flags(conversation_ids: Sequence[int]) -> list[tuple[int, int, bool]]:
    """(conversation id, user id, muted) of every member of these conversations."""
    m = ConversationMember
    sql = _statement(
        "member_flags",
        (len(conversation_ids),),
        lambda: (
            f"SELECT {_column(m, 'conversation')}, {_column(m, 'user')}, {_column(m, 'muted')} FROM {_table(m)}"
            f" WHERE {_in(_column(m, 'conversation'), len(conversation_ids))}"
        ),
    )
    return [(cid, uid, bool(muted)) for cid, uid, muted in _rows(sql, _values(conversation_ids))]
