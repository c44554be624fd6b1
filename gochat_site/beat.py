"""Celery beat's scheduler with a liveness heartbeat: the default PersistentScheduler
that touches settings.BEAT_HEARTBEAT_FILE on every tick. A beat whose loop hangs (a
broker call that never returns) stops touching it, and its liveness probe
(`python -m gochat_site.heartbeat FILE MAX_AGE`) fails."""
from __future__ import annotations

import logging
from pathlib import Path

from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)


def touch(path: str) -> None:
    try:
        Path(path).touch()
    except OSError:
        # A probe failure says more than a crash of the scheduler would.
        logger.warning("beat_heartbeat_failed", extra={"path": path}, exc_info=True)


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args, **kwargs) -> float:  # noqa: ANN002, ANN003 - celery's signature
        interval = super().tick(*args, **kwargs)
        from django.conf import settings

        if settings.BEAT_HEARTBEAT_FILE:
            touch(settings.BEAT_HEARTBEAT_FILE)
        return interval
