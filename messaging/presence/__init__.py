"""Entry point to presence: get_presence() returns the process's backend.

settings.PRESENCE_BACKEND ('memory' | 'redis') is read at call time; tests switch it with
the `settings` fixture and call reset_presence().
"""
from __future__ import annotations

import os
import threading

from django.conf import settings

from messaging.presence.base import Presence, Sessions

__all__ = ["Presence", "Sessions", "get_presence", "reset_presence"]

_lock = threading.Lock()
# Keyed by pid and backend: a forked worker must open its own Redis sockets.
_instances: dict[tuple[int, str], Presence] = {}


def get_presence() -> Presence:
    """The presence backend of this process."""
    backend = settings.PRESENCE_BACKEND
    if backend not in {"memory", "redis"}:
        raise ValueError(f"PRESENCE_BACKEND must be 'memory' or 'redis', not {backend!r}")
    cache_key = (os.getpid(), backend)
    with _lock:
        instance = _instances.get(cache_key)
        if instance is None:
            if backend == "memory":
                from messaging.presence.memory import MemoryPresence

                instance = MemoryPresence()
            else:
                from messaging.presence.redis import RedisPresence

                instance = RedisPresence(settings.REDIS_URL)
            _instances[cache_key] = instance
        return instance


def reset_presence() -> None:
    """Tests: drop the cached backend (and with it all in-memory presence state)."""
    with _lock:
        instances = list(_instances.values())
        _instances.clear()
    for instance in instances:
        close = getattr(instance, "close", None)
        if close is not None:
            close()
