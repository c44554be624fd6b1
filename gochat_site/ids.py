"""64-bit time-ordered ids (snowflake layout) for every GoChat row.

41 bits of milliseconds since 2024-01-01, 10 bits of worker id, 12 bits of sequence.
Ids sort by creation time, fit a signed BIGINT, and are sent to clients as strings.
"""
from __future__ import annotations

import os
import threading
import time

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_WORKER_BITS = 10
_SEQUENCE_BITS = 12
_MAX_SEQUENCE = (1 << _SEQUENCE_BITS) - 1


class SnowflakeGenerator:
    def __init__(self, worker_id: int) -> None:
        if not 0 <= worker_id < (1 << _WORKER_BITS):
            raise ValueError("worker_id must be in 0..1023")
        self.worker_id = worker_id
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = int(time.time() * 1000)
            if now < self._last_ms:
                # Clock went backwards: keep issuing from the last millisecond so ids
                # stay increasing within this process.
                now = self._last_ms
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & _MAX_SEQUENCE
                if self._sequence == 0:
                    while now <= self._last_ms:
                        now = int(time.time() * 1000)
            else:
                self._sequence = 0
            self._last_ms = now
            return ((now - EPOCH_MS) << (_WORKER_BITS + _SEQUENCE_BITS)) | (
                self.worker_id << _SEQUENCE_BITS
            ) | self._sequence


_generator: SnowflakeGenerator | None = None
_generator_pid: int | None = None


def _worker_id() -> int:
    """SNOWFLAKE_WORKER_ID if set; else a lease from a Redis counter (distinct across up to
    1024 live processes, containers included); else the pid (one machine, embedded)."""
    from django.conf import settings

    configured = getattr(settings, "SNOWFLAKE_WORKER_ID", "")
    if configured != "":
        return int(configured)
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        try:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=2)
            try:
                return int(client.incr("gochat:snowflake:worker_seq")) % (1 << _WORKER_BITS)
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - fall back rather than refuse to start
            pass
    return os.getpid() % (1 << _WORKER_BITS)


def new_id() -> int:
    """Return a new unique id; safe across threads and after fork."""
    global _generator, _generator_pid
    pid = os.getpid()
    if _generator is None or _generator_pid != pid:
        _generator = SnowflakeGenerator(_worker_id())
        _generator_pid = pid
    return _generator.next_id()
