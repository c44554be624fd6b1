"""Django's PostgreSQL and SQLite backends, unchanged but for one thing: every database
error Django raises (connect, execute, commit, rollback) is counted in
gochat_db_errors_total{vendor, error}. The count sits in Django's own error translation
(DatabaseErrorWrapper), so it costs nothing on a query that succeeds."""
from __future__ import annotations

from typing import Any

from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property

# Django's exception classes, most specific first (as DatabaseErrorWrapper maps them).
_ERROR_NAMES = (
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "DatabaseError",
    "InterfaceError",
    "Error",
)


class CountingErrorWrapper(DatabaseErrorWrapper):
    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            database = self.wrapper.Database
            for name in _ERROR_NAMES:
                if issubclass(exc_type, getattr(database, name)):
                    from gochat_site import metrics

                    metrics.count_db_error(vendor=self.wrapper.vendor, error=name)
                    break
        super().__exit__(exc_type, exc_value, traceback)


class CountingErrorsMixin:
    @cached_property
    def wrap_database_errors(self) -> CountingErrorWrapper:
        return CountingErrorWrapper(self)
