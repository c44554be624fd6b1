"""SQLite FTS5 search for the embedded default.

The virtual table message_fts (migration messaging/0002_message_search, created only on
SQLite) holds each message's content under rowid = message id, with the conversation id
beside it. The triggers of messaging/0004_message_fts_triggers keep it in step with
messaging_message in the writing transaction itself, however the row was written;
index() and remove() stay for reindex_messages and the (idempotent) index task. bm25()
ranks (lower is better) and snippet() marks the matches.
"""
from __future__ import annotations

from django.db import connection

from messaging.models import Message
from tasks.search.base import MARK_END, MARK_START, Hit

TABLE = "message_fts"


def _fts_query(terms: list[str]) -> str:
    # Every term quoted: FTS5 reads it as a plain string, never as an operator or column
    # filter; the * after the closing quote makes it a prefix query ("gro"* finds
    # "group"); space-separated phrases must all match (AND).
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


class SqliteFts5Search:
    indexed_on_write = True

    def index(self, message: Message) -> None:
        with connection.cursor() as cursor:
            # DELETE then INSERT: FTS5 has no upsert, and this keeps index() idempotent.
            cursor.execute(f"DELETE FROM {TABLE} WHERE rowid = %s", [message.id])
            cursor.execute(
                f"INSERT INTO {TABLE} (rowid, content, conversation_id) VALUES (%s, %s, %s)",
                [message.id, message.content, message.conversation_id],
            )

    def remove(self, message_id: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE rowid = %s", [message_id])

    def search(
        self, *, user_id: int, terms: list[str], conversation_id: int | None, limit: int, offset: int
    ) -> list[Hit]:
        if conversation_id is not None:
            scope, scope_params = "f.conversation_id = %s", [conversation_id]
        else:
            scope = "f.conversation_id IN (SELECT conversation_id FROM messaging_conversationmember WHERE user_id = %s)"
            scope_params = [user_id]
        sql = f"""
            SELECT f.rowid, bm25({TABLE}), snippet({TABLE}, 0, %s, %s, '…', 24)
            FROM {TABLE} AS f
            JOIN messaging_message AS m ON m.id = f.rowid
            WHERE {TABLE} MATCH %s AND {scope} AND m.status = %s
            ORDER BY bm25({TABLE}), f.rowid DESC
            LIMIT %s OFFSET %s
        """
        params = [MARK_START, MARK_END, _fts_query(terms), *scope_params, Message.Status.NORMAL, limit, offset]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        # bm25 is negative, lower is better: flip it so that higher rank means better on
        # both backends.
        return [Hit(message_id=int(i), rank=-float(r), snippet=s) for i, r, s in rows]
