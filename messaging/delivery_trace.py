"""The delivery trace: a cheap, bounded record of where each message went, read back by
message id for the admin's timeline page.

The pipeline calls record(stage, ...) at each step: accepted (gateway), persisted
(logic, seq), routed (which gateways, how many offline), fanout_enqueued / fanout_batch,
push, acked / delivered (which sockets), read. record() never does I/O on the caller's
path: with Redis it appends to an in-process queue that a daemon thread writes in
pipelined batches; in the embedded default it appends to an in-memory ring buffer.

Redis layout: a list per message (`m:<id>`), per trace (`t:<trace_id>`: the gateway's
`accepted` event comes before the message has an id) and per conversation (`c:<id>`, read
events), each trimmed to DELIVERY_TRACE_MAX_EVENTS_PER_KEY and expiring after
DELIVERY_TRACE_TTL_SECONDS. Lists by key rather than one stream per day: the admin asks
by message id, and a day stream could only be answered by scanning it. DELIVERY_TRACE_ENABLED
turns all of it off; DELIVERY_TRACE_SAMPLE_RATE keeps a fraction of traces (decided by trace
id, so every process keeps or drops the same ones). docs/observability.md has the sizing.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from gochat_site import metrics

logger = logging.getLogger(__name__)

# Display order of stages that share a timestamp (same microsecond, different processes).
STAGES = (
    "accepted", "persisted", "refused", "acked", "routed", "fanout_enqueued", "fanout_batch",
    "delivered", "push", "push_retry", "read",
)
_STAGE_RANK = {name: rank for rank, name in enumerate(STAGES)}
# Sockets listed by name in one delivered event; the count is always exact.
MAX_SOCKETS_LISTED = 50
KEY_PREFIX = "gochat:dtrace:"

_sequence = itertools.count()


_process_names: dict[int, str] = {}


def _process_name() -> str:
    # Cached per pid (a forked worker gets its own): gethostname() is a system call, and
    # making it for every event was ~15% of the embedded server's CPU under load.
    pid = os.getpid()
    name = _process_names.get(pid)
    if name is None:
        name = _process_names[pid] = f"{socket.gethostname()}:{pid}"
    return name


def _sampled(trace_id: str) -> bool:
    rate = settings.DELIVERY_TRACE_SAMPLE_RATE
    if rate >= 1.0:
        return True
    if rate <= 0.0 or not trace_id:
        return False
    # Deterministic per trace id, so the gateway, logic and workers agree.
    return zlib.crc32(trace_id.encode()) / 0xFFFFFFFF < rate


def _keys(event: dict[str, Any]) -> list[str]:
    keys = []
    if event.get("message_id"):
        keys.append(f"m:{event['message_id']}")
    if event.get("trace_id"):
        keys.append(f"t:{event['trace_id']}")
    if event.get("stage") == "read" and event.get("conversation_id"):
        keys.append(f"c:{event['conversation_id']}")
    return keys


# --- stores -----------------------------------------------------------------------------------
class MemoryStore:
    """The embedded default: one process, a ring buffer of the last N events."""

    def __init__(self, size: int) -> None:
        self._events: deque[tuple[tuple[str, ...], dict[str, Any]]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append((tuple(_keys(event)), event))

    def flush(self) -> None:
        return None

    def read(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(keys)
        with self._lock:
            return [event for event_keys, event in self._events if wanted.intersection(event_keys)]


class RedisStore:
    """Events queued in process memory, written by a daemon thread in pipelined batches.

    The queue is bounded: when Redis is slow or down the oldest events are dropped and
    counted (gochat_delivery_trace_dropped_total), never the message path slowed.
    """

    def __init__(self, url: str, *, queue_size: int, flush_seconds: float) -> None:
        import redis

        from gochat_site.redis_errors import TraceConnection

        self._client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, connection_class=TraceConnection
        )
        self._queue: deque[dict[str, Any]] = deque()
        self._queue_size = queue_size
        self._flush_seconds = flush_seconds
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="delivery-trace", daemon=True)
        self._thread.start()

    def add(self, event: dict[str, Any]) -> None:
        if len(self._queue) >= self._queue_size:
            metrics.TRACE_EVENTS_DROPPED.inc()
            return
        self._queue.append(event)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the trace must never take a process down
                logger.warning("delivery_trace_write_failed", exc_info=True)

    def flush(self) -> None:
        """Write everything queued so far (the thread does it every flush interval)."""
        with self._write_lock:
            batch: list[dict[str, Any]] = []
            while self._queue:
                batch.append(self._queue.popleft())
            if not batch:
                return
            ttl = settings.DELIVERY_TRACE_TTL_SECONDS
            cap = settings.DELIVERY_TRACE_MAX_EVENTS_PER_KEY
            pipe = self._client.pipeline(transaction=False)
            touched: set[str] = set()
            for event in batch:
                payload = json.dumps(event, separators=(",", ":"), default=str)
                for key in _keys(event):
                    pipe.rpush(KEY_PREFIX + key, payload)
                    touched.add(KEY_PREFIX + key)
            for key in touched:
                pipe.ltrim(key, -cap, -1)
                pipe.expire(key, ttl)
            try:
                pipe.execute()
            except Exception:
                metrics.TRACE_EVENTS_DROPPED.inc(len(batch))
                raise

    def read(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        pipe = self._client.pipeline(transaction=False)
        names = list(keys)
        for key in names:
            pipe.lrange(KEY_PREFIX + key, 0, -1)
        return [json.loads(raw) for values in pipe.execute() for raw in values]


_stores: dict[tuple, MemoryStore | RedisStore] = {}
_stores_lock = threading.Lock()


def _store() -> MemoryStore | RedisStore:
    backend = settings.DELIVERY_TRACE_BACKEND
    # By pid: a forked Celery child needs its own flusher thread and connection.
    key = (os.getpid(), backend, settings.REDIS_URL if backend == "redis" else "")
    store = _stores.get(key)
    if store is not None:
        return store
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            if backend == "redis":
                store = RedisStore(
                    settings.REDIS_URL,
                    queue_size=settings.DELIVERY_TRACE_QUEUE_SIZE,
                    flush_seconds=settings.DELIVERY_TRACE_FLUSH_SECONDS,
                )
            elif backend == "memory":
                store = MemoryStore(settings.DELIVERY_TRACE_MEMORY_EVENTS)
            else:
                raise ValueError(f"DELIVERY_TRACE_BACKEND must be 'memory' or 'redis', not {backend!r}")
            _stores[key] = store
        return store


# --- writing -----------------------------------------------------------------------------------
def record(
    stage: str,
    *,
    trace_id: str = "",
    message_id: int | None = None,
    conversation_id: int | None = None,
    **fields: Any,
) -> None:
    """Note one step of a message's delivery. Cheap, never blocks, never raises."""
    if not settings.DELIVERY_TRACE_ENABLED or not _sampled(trace_id or str(message_id or "")):
        return
    event: dict[str, Any] = {
        "ts_us": time.time_ns() // 1000,
        "n": next(_sequence),
        "stage": stage,
        "process": _process_name(),
    }
    if trace_id:
        event["trace_id"] = trace_id
    if message_id:
        event["message_id"] = str(message_id)
    if conversation_id:
        event["conversation_id"] = str(conversation_id)
    event.update(fields)
    try:
        _store().add(event)
    except Exception:  # noqa: BLE001 - tracing must never break delivery
        metrics.TRACE_EVENTS_DROPPED.inc()
        logger.warning("delivery_trace_record_failed", extra={"stage": stage}, exc_info=True)


def sockets_field(pairs: Iterable[tuple[int, str]]) -> dict[str, Any]:
    """The `sockets` / `socket_count` fields of a delivered event, with a bounded list."""
    listed = []
    count = 0
    for user_id, connection_id in pairs:
        count += 1
        if len(listed) < MAX_SOCKETS_LISTED:
            listed.append({"user_id": str(user_id), "connection_id": connection_id})
    return {"sockets": listed, "socket_count": count}


def flush() -> None:
    """Write queued events now (tests; the admin page of the same process)."""
    if settings.DELIVERY_TRACE_ENABLED:
        _store().flush()


def reset() -> None:
    """Tests: forget the stores of this process (the Redis keys stay until they expire)."""
    with _stores_lock:
        _stores.clear()


# --- reading -----------------------------------------------------------------------------------
def timeline(*, message_id: int, conversation_id: int | None = None, seq: int | None = None) -> list[dict[str, Any]]:
    """Every recorded event of one message, oldest first: its own events, those of its
    traces (the gateway's `accepted`, recorded before the id existed) and, given the
    conversation and seq, the reads that covered it."""
    store = _store()
    events = store.read([f"m:{message_id}"])
    trace_ids = {e["trace_id"] for e in events if e.get("trace_id")}
    if trace_ids:
        events += store.read(f"t:{trace_id}" for trace_id in sorted(trace_ids))
    if conversation_id is not None and seq is not None:
        events += [e for e in store.read([f"c:{conversation_id}"]) if int(e.get("seq", 0)) >= seq]
    unique: dict[tuple, dict[str, Any]] = {}
    for event in events:
        unique[(event.get("process"), event.get("n"), event.get("ts_us"))] = event
    return sorted(unique.values(), key=lambda e: (e["ts_us"], _STAGE_RANK.get(e["stage"], len(STAGES))))


def trace_timeline(*, trace_id: str) -> list[dict[str, Any]]:
    """The events of one trace id (a send that never got a message id, e.g. refused)."""
    events = _store().read([f"t:{trace_id}"])
    return sorted(events, key=lambda e: (e["ts_us"], _STAGE_RANK.get(e["stage"], len(STAGES))))


def enabled() -> bool:
    return bool(settings.DELIVERY_TRACE_ENABLED)


_SHOWN_ELSEWHERE = {"ts_us", "n", "stage", "process", "trace_id", "message_id"}


def for_display(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the admin page: time, ms since the first event, stage, process, fields."""
    from datetime import datetime, timezone

    rows = []
    first = events[0]["ts_us"] if events else 0
    for event in events:
        rows.append(
            {
                "time": datetime.fromtimestamp(event["ts_us"] / 1_000_000, tz=timezone.utc),
                "offset_ms": round((event["ts_us"] - first) / 1000, 1),
                "stage": event["stage"],
                "process": event.get("process", ""),
                "trace_id": event.get("trace_id", ""),
                "fields": {k: v for k, v in event.items() if k not in _SHOWN_ELSEWHERE},
            }
        )
    return rows


def readers(*, message: Any) -> list[dict[str, Any]]:
    """Members (not the sender) whose read position covers the message, from the database:
    authoritative even when the trace has expired or the read came through REST."""
    from messaging.models import ConversationMember

    rows = (
        ConversationMember.objects.filter(conversation_id=message.conversation_id, last_read_seq__gte=message.seq)
        .exclude(user_id=message.sender_id)
        .select_related("user")
        .order_by("user_id")[:200]
    )
    return [{"user_id": str(m.user_id), "name": m.user.display_name, "last_read_seq": m.last_read_seq} for m in rows]
