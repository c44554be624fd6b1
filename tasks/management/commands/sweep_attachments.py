"""`manage.py sweep_attachments`: delete uploads never sent, with their files, now (beat: hourly)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from messaging.services import sweep_orphan_attachments


class Command(BaseCommand):
    help = "Delete uploads not attached to any message for ATTACHMENT_ORPHAN_SECONDS, files included."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=None, help="seconds (default ATTACHMENT_ORPHAN_SECONDS)")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        seconds = options["older_than"] if options["older_than"] is not None else settings.ATTACHMENT_ORPHAN_SECONDS
        self.stdout.write(f"{sweep_orphan_attachments(older_than_seconds=seconds)} orphaned uploads deleted")
