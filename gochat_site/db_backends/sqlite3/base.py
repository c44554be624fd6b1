"""django.db.backends.sqlite3 with database errors counted (gochat_site.db_backends), and
the WAL checkpointed by a thread of the process instead of inside a commit
(checkpoint.py)."""
from django.conf import settings
from django.db.backends.sqlite3 import base

from gochat_site.db_backends import CountingErrorsMixin
from gochat_site.db_backends.sqlite3.checkpoint import ensure_checkpointer


class DatabaseWrapper(CountingErrorsMixin, base.DatabaseWrapper):
    def get_new_connection(self, conn_params):  # noqa: ANN001, ANN201 - Django's signature
        connection = super().get_new_connection(conn_params)
        interval = float(getattr(settings, "SQLITE_CHECKPOINT_SECONDS", 0))
        if interval > 0:
            pages = int(getattr(settings, "SQLITE_WAL_AUTOCHECKPOINT_PAGES", 1000))
            connection.execute(f"PRAGMA wal_autocheckpoint={pages}")
            ensure_checkpointer(str(conn_params.get("database", "")), interval)
        return connection
