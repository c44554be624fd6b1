"""Message search: the backend of the current database (PostgreSQL FTS or SQLite FTS5)."""
from __future__ import annotations

from django.db import connection

from tasks.search.base import SearchBackend


def get_backend() -> SearchBackend:
    """The search backend matching the default database's engine."""
    if connection.vendor == "postgresql":
        from tasks.search.postgres import PostgresSearch

        return PostgresSearch()
    if connection.vendor == "sqlite":
        from tasks.search.sqlite import SqliteFts5Search

        return SqliteFts5Search()
    raise RuntimeError(f"message search supports PostgreSQL and SQLite, not {connection.vendor}")
