"""django.db.backends.postgresql with database errors counted (gochat_site.db_backends)
and a server-side-binding cursor for the message hot path."""
from django.db.backends.postgresql import base

from gochat_site.db_backends import CountingErrorsMixin


class DatabaseWrapper(CountingErrorsMixin, base.DatabaseWrapper):
    def bound_cursor(self):  # noqa: ANN201 - Django's CursorWrapper
        """A cursor that sends the parameters apart from the statement (psycopg's
        server-side binding) instead of quoting them into its text (Django's default,
        psycopg's ClientCursor). The text then stays the same between executions, so
        psycopg prepares it after `prepare_threshold` runs (5) and PostgreSQL parses and
        plans it once per connection; the client neither re-parses the text nor quotes
        every value. Only the hot path's own statements (messaging.hot_sql) use it: the
        ORM's statements stay on the default cursor, whose behaviour they were built for.
        Wrapped as Django wraps every cursor (error translation, query logging)."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            raw = base.ServerBindingCursor(self.connection)
        return self._prepare_cursor(raw)
