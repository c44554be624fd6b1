"""Presence push (issue 11): online/offline changes go to the users who can see them.

The gateway marks a user when their first live socket connects (presence counts them
across every gateway) or when their last socket on this gateway closes. Marks are
collected in this process and flushed at most every PRESENCE_PUSH_INTERVAL_SECONDS by a
gateway loop (loops.py), which calls routing.route_presence() off the socket's path:
a connect or close only writes to a dict. Flapping within one interval is one change,
and the state pushed is what presence says at flush time, not what the mark guessed
(a user who closed one tab but is still online elsewhere is pushed as online).

"Who can see me" (members of a shared single chat or small group) is cached per process
for PRESENCE_WATCHERS_CACHE_SECONDS, so a flush of cached users costs no SQL; misses of
one flush are read together (selectors.presence_watchers, two queries).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings

from messaging import selectors

# Bound on cached watcher sets per process (LRU).
WATCHERS_CACHE_MAX_ENTRIES = 50_000


class PresenceChanges:
    """Users whose presence may have changed since the last flush: user id -> when (ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}

    def mark(self, user_id: int, at_ms: int | None = None) -> None:
        with self._lock:
            self._pending[int(user_id)] = at_ms if at_ms is not None else int(time.time() * 1000)

    def take(self) -> dict[int, int]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def __len__(self) -> int:
        return len(self._pending)


# One per process: the gateway's sockets mark into it, its push loop drains it.
changes = PresenceChanges()

_cache_lock = threading.Lock()
_watchers: OrderedDict[int, tuple[float, frozenset[int]]] = OrderedDict()


def watchers_of(user_ids: list[int]) -> dict[int, frozenset[int]]:
    """The users who may see each of `user_ids`' presence; cached, misses read in one batch."""
    now = time.monotonic()
    found: dict[int, frozenset[int]] = {}
    missing: list[int] = []
    with _cache_lock:
        for user_id in user_ids:
            entry = _watchers.get(user_id)
            if entry is not None and entry[0] > now:
                _watchers.move_to_end(user_id)
                found[user_id] = entry[1]
            else:
                missing.append(user_id)
    if missing:
        read = selectors.presence_watchers(user_ids=missing, max_group_size=settings.PRESENCE_PUSH_MAX_GROUP_SIZE)
        expiry = now + float(settings.PRESENCE_WATCHERS_CACHE_SECONDS)
        with _cache_lock:
            for user_id, ids in read.items():
                frozen = frozenset(ids)
                found[user_id] = frozen
                if not frozen:
                    continue  # a user with no conversation yet is about to get one: not cached
                _watchers[user_id] = (expiry, frozen)
                _watchers.move_to_end(user_id)
            while len(_watchers) > WATCHERS_CACHE_MAX_ENTRIES:
                _watchers.popitem(last=False)
    return found


def forget_watchers(user_ids: list[int] | None = None) -> None:
    """Drop the cached watcher sets of `user_ids` (all of them if None): their
    conversations changed in this process. Other processes catch up within
    PRESENCE_WATCHERS_CACHE_SECONDS."""
    with _cache_lock:
        if user_ids is None:
            _watchers.clear()
            return
        for user_id in user_ids:
            _watchers.pop(int(user_id), None)


def forget_watchers_on_commit(user_ids: list[int]) -> None:
    """forget_watchers() once the transaction that added these users' memberships commits."""
    from django.db import transaction

    ids = [int(u) for u in user_ids]
    transaction.on_commit(lambda: forget_watchers(ids))
