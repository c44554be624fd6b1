"""django.db.backends.postgresql with database errors counted (gochat_site.db_backends)."""
from django.db.backends.postgresql import base

from gochat_site.db_backends import CountingErrorsMixin


class DatabaseWrapper(CountingErrorsMixin, base.DatabaseWrapper):
    pass
