"""WAL checkpoints of the embedded SQLite database, in a thread of their own.

SQLite checkpoints by itself once the WAL holds wal_autocheckpoint pages (1,000 by
default), inside the COMMIT that crossed the mark: that commit copies the WAL into the
database file and fsyncs it, a few milliseconds on the message path about every 200
messages (embedded s1u p99 5.6-6.4 ms with it, 3.4-4.0 ms without; docs/benchmarks.md).
Here a daemon thread of each process runs a PASSIVE checkpoint every
SQLITE_CHECKPOINT_SECONDS on its own connection (PASSIVE never waits for a reader or a
writer; SQLite's sqlite3 module releases the GIL while it runs), and connections raise
the automatic checkpoint to SQLITE_WAL_AUTOCHECKPOINT_PAGES, a safety net should the
thread fall behind.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger(__name__)

_started: set[str] = set()
_lock = threading.Lock()


def _is_file(path: str) -> bool:
    return bool(path) and path != ":memory:" and "mode=memory" not in path


def ensure_checkpointer(path: str, interval_seconds: float) -> None:
    """Start the checkpoint thread for the database at `path`, once per process."""
    if interval_seconds <= 0 or not _is_file(path):
        return
    with _lock:
        if path in _started:
            return
        _started.add(path)
    thread = threading.Thread(
        target=_run, args=(path, interval_seconds), name="sqlite-checkpoint", daemon=True
    )
    thread.start()


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One PASSIVE checkpoint: (busy, frames in the WAL, frames checkpointed)."""
    busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(log), int(done)


def _run(path: str, interval_seconds: float) -> None:
    stop = threading.Event()  # never set: a daemon thread ends with its process
    connection: sqlite3.Connection | None = None
    while not stop.wait(interval_seconds):
        try:
            if connection is None:
                connection = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
            checkpoint(connection)
        except sqlite3.Error:
            # The file may not exist yet (before migrate) or be busy; try again next time.
            logger.warning("sqlite_checkpoint_failed", extra={"path": path}, exc_info=True)
            if connection is not None:
                connection.close()
                connection = None
