"""Membership check of the gateway's send path, from an in-process cache.

The gateway check exists to refuse a non-member early (error 1005 without a trip through
the bus); the logic consumer's send_message checks again, authoritatively, under the
conversation lock. So the cache only has to be right "soon", and it must never cost a
database or Redis round trip (or a thread hop) when warm.

- Per process, bounded LRU of (user id, conversation id) -> expiry. Only positive answers
  are cached: a newly added member or a new conversation simply misses once.
- Removals invalidate it everywhere: `invalidate()` (called after commit by
  messaging.cache.forget_members) drops the entries in this process and, with Redis,
  publishes on INVALIDATION_CHANNEL; every gateway process runs `run_invalidation_listener`
  (messaging/gateway/loops.py) and drops the entries it is told about.
- While a process is not subscribed (start-up, Redis down, reconnecting) it does not
  trust its cache at all: it reads the database and caches nothing, so a missed
  invalidation can never leave a removed member accepted. On (re)subscribe it clears the
  cache first. Entries also expire after MEMBERSHIP_CACHE_TTL_SECONDS as a last resort
  (an invalidation published while its publisher could not reach Redis).

Bound (docs/realtime.md): a removed member is refused by every gateway once the removal
has committed and the pub/sub message arrived (milliseconds); if the publish itself failed,
within MEMBERSHIP_CACHE_TTL_SECONDS. The logic refuses them regardless.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import orjson
from django.conf import settings

from messaging.selectors import access_membership

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "gochat:membership:invalidate"


class MembershipCache:
    """Thread-safe: the event loop reads it, the database thread fills it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, int], float] = OrderedDict()
        # Typing (issue 10): conversation id -> (expiry, member ids, or None when the
        # conversation has more than TYPING_MAX_GROUP_SIZE members). Dropped with the
        # conversation's pair entries by forget()/set_trusted(), bounded like them.
        self._member_lists: OrderedDict[int, tuple[float, tuple[int, ...] | None]] = OrderedDict()
        # Bumped by every forget/clear: a database read that started before an
        # invalidation must not cache its (possibly stale) answer after it.
        self.generation = 0
        # With Redis, entries are trusted only while the invalidation listener is subscribed.
        self._trusted = not _uses_redis()

    def is_member(self, user_id: int, conversation_id: int) -> bool:
        key = (user_id, conversation_id)
        with self._lock:
            if not self._trusted:
                return False
            expiry = self._entries.get(key)
            if expiry is None:
                return False
            if expiry <= self._clock():
                del self._entries[key]
                return False
            self._entries.move_to_end(key)
            return True

    def remember(self, user_id: int, conversation_id: int, *, generation: int) -> None:
        with self._lock:
            if not self._trusted or generation != self.generation:
                return
            self._entries[(user_id, conversation_id)] = self._clock() + settings.MEMBERSHIP_CACHE_TTL_SECONDS
            self._entries.move_to_end((user_id, conversation_id))
            while len(self._entries) > settings.MEMBERSHIP_CACHE_MAX_ENTRIES:
                self._entries.popitem(last=False)

    def forget(self, conversation_id: int, user_ids: Iterable[int] | None) -> None:
        """Drop entries of a conversation: of the given users, or all of them (None)."""
        with self._lock:
            self.generation += 1
            self._member_lists.pop(conversation_id, None)
            if user_ids is None:
                for key in [k for k in self._entries if k[1] == conversation_id]:
                    del self._entries[key]
            else:
                for user_id in user_ids:
                    self._entries.pop((int(user_id), conversation_id), None)

    def set_trusted(self, trusted: bool) -> None:
        """The listener (un)subscribed: either way what is cached may have missed news."""
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self._member_lists.clear()
            self._trusted = trusted or not _uses_redis()

    # --- member lists (typing) ----------------------------------------------------------------
    def member_list(self, conversation_id: int) -> tuple[bool, tuple[int, ...] | None]:
        """(known, members): members None means "too large for typing"."""
        with self._lock:
            if not self._trusted:
                return False, None
            entry = self._member_lists.get(conversation_id)
            if entry is None:
                return False, None
            if entry[0] <= self._clock():
                del self._member_lists[conversation_id]
                return False, None
            self._member_lists.move_to_end(conversation_id)
            return True, entry[1]

    def remember_member_list(
        self, conversation_id: int, members: tuple[int, ...] | None, *, generation: int
    ) -> None:
        with self._lock:
            if not self._trusted or generation != self.generation:
                return
            self._member_lists[conversation_id] = (self._clock() + settings.MEMBERSHIP_CACHE_TTL_SECONDS, members)
            self._member_lists.move_to_end(conversation_id)
            # Each list holds up to TYPING_MAX_GROUP_SIZE ids: a tenth of the pair budget
            # in lists keeps the memory of both in the same range.
            while len(self._member_lists) > max(1, settings.MEMBERSHIP_CACHE_MAX_ENTRIES // 10):
                self._member_lists.popitem(last=False)

    @property
    def trusted(self) -> bool:
        return self._trusted

    def __len__(self) -> int:
        return len(self._entries)


def _uses_redis() -> bool:
    return bool(settings.REDIS_URL)


_caches: dict[int, MembershipCache] = {}
_caches_lock = threading.Lock()


def get_cache() -> MembershipCache:
    """This process's cache (per pid: a forked child starts empty)."""
    pid = os.getpid()
    cache = _caches.get(pid)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(pid, MembershipCache())
    return cache


def reset_cache() -> None:
    """Tests: start from an empty cache that reads the current settings."""
    with _caches_lock:
        _caches.clear()


def is_known_member(*, user_id: int, conversation_id: int) -> bool:
    """The warm path: no I/O, safe to call on the event loop."""
    return get_cache().is_member(user_id, conversation_id)


def check_member(*, user_id: int, conversation_id: int) -> None:
    """Return if the user is a member; raise NotFound (1003) or NotAMember (1005).

    Reads the database on a miss: call it through database_sync_to_async."""
    if is_known_member(user_id=user_id, conversation_id=conversation_id):
        return
    cache = get_cache()
    generation = cache.generation
    access_membership(user_id=user_id, conversation_id=conversation_id)
    cache.remember(user_id, conversation_id, generation=generation)


def _load_member_list(conversation_id: int) -> tuple[int, ...] | None:
    from messaging.models import ConversationMember

    limit = settings.TYPING_MAX_GROUP_SIZE
    ids = tuple(
        ConversationMember.objects.filter(conversation_id=conversation_id)
        .order_by("user_id")
        .values_list("user_id", flat=True)[: limit + 1]
    )
    return None if len(ids) > limit else ids


def load_member_list(*, conversation_id: int) -> tuple[int, ...] | None:
    """A conversation's member ids for typing (None above TYPING_MAX_GROUP_SIZE), cached
    like the pairs. Reads the database on a miss: call it through database_sync_to_async."""
    cache = get_cache()
    known, members = cache.member_list(conversation_id)
    if known:
        return members
    generation = cache.generation
    members = _load_member_list(conversation_id)
    cache.remember_member_list(conversation_id, members, generation=generation)
    return members


def known_member_list(*, conversation_id: int) -> tuple[bool, tuple[int, ...] | None]:
    """The warm path of load_member_list: no I/O, safe on the event loop."""
    return get_cache().member_list(conversation_id)


# --- invalidation ---------------------------------------------------------------------------
_publisher_lock = threading.Lock()
_publishers: dict[tuple[int, str], object] = {}


def _publisher():  # noqa: ANN202 - a redis.Redis
    import redis

    key = (os.getpid(), settings.REDIS_URL)
    with _publisher_lock:
        client = _publishers.get(key)
        if client is None:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
            _publishers[key] = client
        return client


def invalidate(*, conversation_id: int, user_ids: Iterable[int] | None) -> None:
    """Membership of a conversation shrank (call after commit): drop cached answers here
    and, with Redis, in every other gateway process. Never raises: the logic re-checks."""
    ids = None if user_ids is None else [int(u) for u in user_ids]
    get_cache().forget(conversation_id, ids)
    if not _uses_redis():
        return
    try:
        _publisher().publish(INVALIDATION_CHANNEL, orjson.dumps({"c": conversation_id, "u": ids}))
    except Exception:  # noqa: BLE001 - bounded by MEMBERSHIP_CACHE_TTL_SECONDS, logic re-checks
        logger.warning("membership_invalidation_publish_failed", extra={"conversation_id": conversation_id}, exc_info=True)


def apply_invalidation(payload: bytes) -> None:
    try:
        body = orjson.loads(payload)
        conversation_id = int(body["c"])
        user_ids = body.get("u")
    except (ValueError, KeyError, TypeError):
        logger.warning("membership_invalidation_bad_payload")
        return
    get_cache().forget(conversation_id, user_ids)


async def run_invalidation_listener(stop: asyncio.Event) -> None:
    """Subscribe to INVALIDATION_CHANNEL until stop; the cache is trusted only while subscribed."""
    if not _uses_redis():
        return
    import redis.asyncio as aredis

    cache = get_cache()
    backoff = 0.1
    while not stop.is_set():
        client = aredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2.0, health_check_interval=5)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(INVALIDATION_CHANNEL)
            # Wait for the subscribe confirmation before trusting anything.
            while not stop.is_set():
                message = await pubsub.get_message(timeout=0.25)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    cache.set_trusted(True)
                    backoff = 0.1
                    logger.info("membership_invalidation_subscribed")
                elif message["type"] == "message":
                    apply_invalidation(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - Redis down or restarted: distrust, retry
            cache.set_trusted(False)
            logger.warning("membership_invalidation_listener_failed", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, 5.0)
        finally:
            cache.set_trusted(False)
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass
