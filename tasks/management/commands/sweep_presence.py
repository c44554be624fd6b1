"""`manage.py sweep_presence`: remove presence entries of dead gateways now (beat: every minute)."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from tasks import services


class Command(BaseCommand):
    help = "Remove the presence entries of gateways whose liveness lapsed."

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        swept = services.sweep_presence()
        if not swept:
            self.stdout.write("no dead gateways")
        for gateway_id, count in sorted(swept.items()):
            self.stdout.write(f"{gateway_id}: {count} entr{'y' if count == 1 else 'ies'} removed")
