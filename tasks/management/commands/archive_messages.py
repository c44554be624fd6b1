"""`manage.py archive_messages`: the archive job once, now (beat runs it daily)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from gochat_site.errors import GoChatError
from tasks import services


class Command(BaseCommand):
    help = "Archive messages older than MESSAGE_RETENTION_DAYS to gzip JSON Lines under ARCHIVE_DIR, then delete them."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--days", type=int, default=None, help="retention in days (default MESSAGE_RETENTION_DAYS; 0 = off)")
        parser.add_argument("--dir", default=None, help="archive directory (default ARCHIVE_DIR)")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        try:
            result = services.archive_messages(retention_days=options["days"], archive_dir=options["dir"])
        except GoChatError as exc:
            raise CommandError(exc.message) from None
        if result.cutoff is None:
            self.stdout.write("retention is off (MESSAGE_RETENTION_DAYS=0): nothing archived")
            return
        self.stdout.write(
            f"archived {result.messages} message(s) of {result.conversations} conversation(s) "
            f"older than {result.cutoff.isoformat()}"
        )
