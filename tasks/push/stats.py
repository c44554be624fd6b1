"""Daily push counters (sent / failed) in the cache, read by the daily stats job.

Counters live in Redis in production (cache.incr is atomic across workers) and expire
after STATS_TTL_DAYS; the embedded default keeps them in process memory, which is one
process there.
"""
from __future__ import annotations

from datetime import date

from django.core.cache import cache
from django.utils import timezone

from gochat_site import metrics

STATS_TTL_DAYS = 8


def _key(day: date, kind: str) -> str:
    return f"push:stats:{day.isoformat()}:{kind}"


def _add(kind: str, amount: int, day: date) -> None:
    if amount <= 0:
        return
    key = _key(day, kind)
    cache.add(key, 0, timeout=STATS_TTL_DAYS * 86400)
    try:
        cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.set(key, amount, timeout=STATS_TTL_DAYS * 86400)


def record(*, sent: int = 0, failed: int = 0, day: date | None = None) -> None:
    """Count notifications sent / failed (on `day`, default today UTC)."""
    day = day or timezone.now().date()
    _add("sent", sent, day)
    _add("failed", failed, day)
    # The same counts for Prometheus (per process, summed by the scrape).
    metrics.PUSH_SENT.inc(max(sent, 0))
    metrics.PUSH_FAILED.inc(max(failed, 0))


def push_counts(day: date) -> tuple[int, int]:
    """(sent, failed) notifications on `day` (UTC)."""
    return int(cache.get(_key(day, "sent")) or 0), int(cache.get(_key(day, "failed")) or 0)


def forget(day: date) -> None:
    """Drop a day's counters (tests start from zero on a shared Redis)."""
    cache.delete_many([_key(day, "sent"), _key(day, "failed")])
