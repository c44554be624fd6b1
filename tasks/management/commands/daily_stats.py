"""`manage.py daily_stats`: compute one day's statistics now (beat runs it daily)."""
from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from tasks import services


class Command(BaseCommand):
    help = "Compute messages, active users, groups and push counts of one UTC day (default: yesterday)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--day", default="", help="YYYY-MM-DD (default: yesterday)")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        try:
            day = date.fromisoformat(options["day"]) if options["day"] else None
        except ValueError:
            raise CommandError(f"--day must be YYYY-MM-DD, not {options['day']!r}") from None
        stats = services.compute_daily_stats(day=day)
        self.stdout.write(
            f"{stats.day}: messages={stats.messages} active_users={stats.active_users} groups={stats.groups} "
            f"push_sent={stats.push_sent} push_failed={stats.push_failed}"
        )
