"""Health of this gateway's upstream path (the producer to KAFKA_UPSTREAM_TOPIC).

Producing only queues a record in librdkafka: with the broker unreachable, produce()
still succeeds and the record fails minutes later (message.timeout.ms), so a socket
would keep sending into a void, open but unserved. A loop of the gateway asks the broker
for metadata every WS_UPSTREAM_CHECK_SECONDS; after two failed checks in a row the path
counts as broken and a send-message closes its socket with 1011 "upstream unavailable",
so the client reconnects (to another gateway, or here once the broker is back; the first
successful check heals it).
"""
from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from messaging.bus import get_producer

logger = logging.getLogger(__name__)

# Consecutive failed checks before the path counts as broken (one slow answer is not).
FAILURES_TO_BREAK = 2


class UpstreamHealth:
    def __init__(self) -> None:
        self.failures = 0

    @property
    def broken(self) -> bool:
        return self.failures >= FAILURES_TO_BREAK

    def record(self, ok: bool) -> None:
        was_broken = self.broken
        self.failures = 0 if ok else self.failures + 1
        if self.broken and not was_broken:
            logger.error("upstream_unavailable", extra={"gateway_id": settings.GATEWAY_ID})
        elif was_broken and not self.broken:
            logger.warning("upstream_recovered", extra={"gateway_id": settings.GATEWAY_ID})


health = UpstreamHealth()


async def watch(stop: asyncio.Event) -> None:
    """Check the broker until stop (a thread: librdkafka's metadata call blocks)."""
    health.failures = 0
    while not stop.is_set():
        interval = float(settings.WS_UPSTREAM_CHECK_SECONDS)
        try:
            await asyncio.to_thread(get_producer().check, max(0.5, min(interval, 5.0)))
            health.record(True)
        except Exception:  # noqa: BLE001 - any failure to reach the broker counts
            health.record(False)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
    health.failures = 0
