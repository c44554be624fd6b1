"""The embedded database's WAL is checkpointed by a thread, not by a COMMIT on the
message path (gochat_site/db_backends/sqlite3/checkpoint.py)."""
from __future__ import annotations

import os
import sqlite3
import time

from gochat_site.db_backends.sqlite3.checkpoint import checkpoint, ensure_checkpointer


def _writer(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    # As the backend sets it: far above what the writes below produce, so only the
    # thread can move their pages into the database file.
    connection.execute("PRAGMA wal_autocheckpoint=20000")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    return connection


def test_the_thread_moves_committed_pages_into_the_database_file_without_a_commit_doing_it(tmp_path):
    path = str(tmp_path / "wal.sqlite3")
    writer = _writer(path)
    for n in range(300):
        writer.execute("INSERT INTO t (body) VALUES (?)", ["x" * 500 + str(n)])
    size_before = os.path.getsize(path)
    assert os.path.getsize(path + "-wal") > 100_000  # the commits are in the WAL only

    ensure_checkpointer(path, 0.05)
    deadline = time.monotonic() + 10
    while os.path.getsize(path) <= size_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(path) > size_before + 100_000
    # Everything in the WAL is in the database file now: a checkpoint finds nothing left.
    busy, frames, done = checkpoint(writer)
    assert busy == 0 and frames == done
    # And the writer goes on (a PASSIVE checkpoint never holds it up).
    writer.execute("INSERT INTO t (body) VALUES ('after')")
    assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 301


def test_no_thread_for_an_in_memory_database_or_a_zero_interval(tmp_path):
    import threading

    before = set(threading.enumerate())
    ensure_checkpointer(":memory:", 0.05)
    ensure_checkpointer("file:memorydb_default?mode=memory&cache=shared", 0.05)
    ensure_checkpointer(str(tmp_path / "off.sqlite3"), 0)
    assert set(threading.enumerate()) - before == set()
