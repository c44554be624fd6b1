"""`python manage.py reindex_messages`: rebuild the search index of every message."""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from messaging.models import Message
from tasks.search.services import reindex_all


class Command(BaseCommand):
    help = "Re-index every message for search (idempotent; safe while the service runs)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - argparse parser
        parser.add_argument("--batch-size", type=int, default=500, help="messages per database round trip")

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            self.stderr.write("--batch-size must be at least 1")
            raise SystemExit(2)
        total = Message.objects.count()
        done = 0
        with tqdm(total=total, unit="msg", desc="reindex", file=sys.stderr) as bar:
            for count in reindex_all(batch_size=options["batch_size"]):
                done += count
                bar.update(count)
        self.stdout.write(f"reindexed {done} messages")
