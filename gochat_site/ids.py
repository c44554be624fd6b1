"""64-bit time-ordered ids (snowflake layout) for every GoChat row, and the worker ids
that keep two processes from ever issuing the same one.

41 bits of milliseconds since 2024-01-01, 10 bits of worker id, 12 bits of sequence.
Ids sort by creation time, fit a signed BIGINT, and are sent to clients as strings.

Worker ids (the one scheme, docs/architecture.md "Snowflake worker ids"): with Redis
configured, every process holds its worker id as a Redis lease
(`{CACHE_KEY_PREFIX}:snowflake:worker:{id}`, SET NX with a TTL, renewed by a background
thread). A fixed `SNOWFLAKE_WORKER_ID` (deployments give 0..511) is claimed under the
same key, so a second live process with that id is refused; processes without one take
a free id from the lease pool (`SNOWFLAKE_LEASE_POOL_START`..1023). A leased process
that cannot renew stops issuing ids before Redis could hand its id to anyone else, and
takes a fresh lease instead. Without Redis (the embedded default, one process) the id is
the fixed one, else the pid.
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_WORKER_BITS = 10
_SEQUENCE_BITS = 12
_MAX_SEQUENCE = (1 << _SEQUENCE_BITS) - 1
MAX_WORKER_ID = (1 << _WORKER_BITS) - 1

logger = logging.getLogger(__name__)


class WorkerIdUnavailable(RuntimeError):
    """This process holds no worker id it may issue ids under (Redis unreachable, pool
    exhausted, lease lost and not replaced)."""


class WorkerIdConflict(WorkerIdUnavailable):
    """The fixed SNOWFLAKE_WORKER_ID is held by another live process."""


class SnowflakeGenerator:
    def __init__(self, worker_id: int) -> None:
        if not 0 <= worker_id <= MAX_WORKER_ID:
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


# --- Redis leases -------------------------------------------------------------------------

# Extend our own lease; re-take it if it expired and nobody else took it; 0 if another
# owner holds it. One round trip, atomic, so a renewal never overwrites a new owner.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(prefix: str, worker_id: int) -> str:
    return f"{prefix}:snowflake:worker:{worker_id}"


@dataclass
class WorkerLease:
    """A worker id held in Redis. `valid_until` (monotonic) is when this process must
    stop issuing ids unless renewed: a third of the TTL before Redis could expire the key,
    so clock rate differences and a slow reply never let two holders overlap."""

    client: Any
    prefix: str
    worker_id: int
    owner: str
    ttl: float
    fixed: bool
    valid_until: float = 0.0
    lost: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key(self) -> str:
        return lease_key(self.prefix, self.worker_id)

    def _granted(self, sent_at: float) -> None:
        self.valid_until = sent_at + self.ttl * 2 / 3

    def valid(self) -> bool:
        return not self.lost and time.monotonic() < self.valid_until

    def renew(self) -> bool:
        """Extend the lease (one round trip). False when another owner took the id: the
        lease is lost for good. Redis errors propagate (the lease may still be ours)."""
        with self.lock:
            if self.lost:
                return False
            sent_at = time.monotonic()
            result = int(self.client.eval(_RENEW, 1, self.key, self.owner, int(self.ttl * 1000)))
            if result == 0:
                self.lost = True
                logger.error("snowflake_lease_lost", extra={"worker_id": self.worker_id, "fixed": self.fixed})
                return False
            if result == 2:
                logger.warning("snowflake_lease_retaken", extra={"worker_id": self.worker_id})
            self._granted(sent_at)
            return True

    def release(self) -> None:
        with self.lock:
            if not self.lost:
                self.client.eval(_RELEASE, 1, self.key, self.owner)
                self.lost = True


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_fixed(client: Any, *, prefix: str, worker_id: int, ttl: float, owner: str | None = None) -> WorkerLease:
    """Claim a configured worker id; WorkerIdConflict if another live process holds it."""
    if not 0 <= worker_id <= MAX_WORKER_ID:
        raise ValueError("SNOWFLAKE_WORKER_ID must be in 0..1023")
    lease = WorkerLease(client, prefix, worker_id, owner or _owner(), ttl, fixed=True)
    sent_at = time.monotonic()
    if not client.set(lease.key, lease.owner, nx=True, px=int(ttl * 1000)):
        holder = client.get(lease.key)
        raise WorkerIdConflict(
            f"snowflake worker id {worker_id} is held by another live process ({holder!r}); "
            "give every process its own SNOWFLAKE_WORKER_ID, or leave it unset to lease one"
        )
    lease._granted(sent_at)
    return lease


def lease_any(client: Any, *, prefix: str, pool_start: int, ttl: float, owner: str | None = None) -> WorkerLease:
    """Take a free worker id from the pool pool_start..1023. The cursor spreads starting
    points, so n processes starting together usually need one SET each."""
    if not 0 <= pool_start <= MAX_WORKER_ID:
        raise ValueError("SNOWFLAKE_LEASE_POOL_START must be in 0..1023")
    size = MAX_WORKER_ID + 1 - pool_start
    owner = owner or _owner()
    start = int(client.incr(f"{prefix}:snowflake:cursor"))
    for step in range(size):
        worker_id = pool_start + (start + step) % size
        lease = WorkerLease(client, prefix, worker_id, owner, ttl, fixed=False)
        sent_at = time.monotonic()
        if client.set(lease.key, owner, nx=True, px=int(ttl * 1000)):
            lease._granted(sent_at)
            return lease
    raise WorkerIdUnavailable(f"no free snowflake worker id in {pool_start}..{MAX_WORKER_ID}")


# --- the per-process id source ---------------------------------------------------------------


class IdSource:
    """The generator of one process and, with Redis, the lease it issues under."""

    def __init__(
        self,
        *,
        redis_client: Any | None,
        fixed_id: int | None,
        prefix: str = "gochat",
        ttl: float = 30.0,
        pool_start: int = 512,
        renew_in_background: bool = True,
    ) -> None:
        self.client = redis_client
        self.fixed_id = fixed_id
        self.prefix = prefix
        self.ttl = ttl
        self.pool_start = pool_start
        self.lease: WorkerLease | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if redis_client is None:
            self.generator = SnowflakeGenerator(fixed_id if fixed_id is not None else os.getpid() % (MAX_WORKER_ID + 1))
            return
        if fixed_id is not None:
            try:
                self.lease = claim_fixed(redis_client, prefix=prefix, worker_id=fixed_id, ttl=ttl)
            except WorkerIdConflict:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: the configured id still holds
                # The id is unique by the deployment's configuration; the lease only
                # checks that. The renewer claims it as soon as Redis answers.
                logger.warning("snowflake_lease_unverified", extra={"worker_id": fixed_id, "error": repr(exc)})
                self.lease = WorkerLease(redis_client, prefix, fixed_id, _owner(), ttl, fixed=True)
            self.generator = SnowflakeGenerator(fixed_id)
        else:
            self.lease = self._lease_any()
            self.generator = SnowflakeGenerator(self.lease.worker_id)
        logger.info("snowflake_worker_id", extra={"worker_id": self.generator.worker_id, "fixed": fixed_id is not None})
        if renew_in_background:
            threading.Thread(target=self._renew_loop, name="snowflake-lease", daemon=True).start()

    def _lease_any(self) -> WorkerLease:
        try:
            return lease_any(self.client, prefix=self.prefix, pool_start=self.pool_start, ttl=self.ttl)
        except WorkerIdUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - redis errors of any kind
            raise WorkerIdUnavailable(f"cannot lease a snowflake worker id from Redis: {exc!r}") from exc

    @property
    def worker_id(self) -> int:
        return self.generator.worker_id

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - keep trying; new_id() enforces the deadline
                logger.warning("snowflake_lease_renew_failed", extra={"worker_id": self.worker_id, "error": repr(exc)})

    def renew(self) -> bool:
        lease = self.lease
        if lease is None:
            return True
        if lease.fixed and lease.valid_until == 0.0 and not lease.lost:
            # Never verified (Redis was down at start): claim it now.
            try:
                verified = claim_fixed(self.client, prefix=self.prefix, worker_id=lease.worker_id, ttl=self.ttl,
                                       owner=lease.owner)
            except WorkerIdConflict:
                lease.lost = True
                logger.error("snowflake_lease_lost", extra={"worker_id": lease.worker_id, "fixed": True})
                return False
            lease.valid_until = verified.valid_until
            return True
        return lease.renew()

    def next_id(self) -> int:
        lease = self.lease
        if lease is not None and not lease.valid():
            self._recover()
        return self.generator.next_id()

    def _recover(self) -> None:
        """The lease ran past its deadline or was lost: renew it now, else (leased ids)
        take a fresh one; a fixed id that another process holds is refused."""
        with self._lock:
            lease = self.lease
            assert lease is not None
            if lease.valid():
                return
            if lease.fixed:
                if lease.lost:
                    raise WorkerIdConflict(
                        f"snowflake worker id {lease.worker_id} is now held by another process: "
                        "this process stops issuing ids"
                    )
                # A fixed id stays ours by configuration while Redis is unreachable.
                return
            try:
                if not lease.lost and lease.renew():
                    return
            except Exception as exc:  # noqa: BLE001
                raise WorkerIdUnavailable(
                    f"snowflake lease {lease.worker_id} expired and Redis does not answer: {exc!r}"
                ) from exc
            fresh = self._lease_any()
            logger.warning("snowflake_lease_replaced", extra={"old_worker_id": lease.worker_id,
                                                              "worker_id": fresh.worker_id})
            self.lease = fresh
            self.generator = SnowflakeGenerator(fresh.worker_id)

    def close(self) -> None:
        self._stop.set()
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception:  # noqa: BLE001 - it expires on its own
                pass


_source: IdSource | None = None
_source_pid: int | None = None
_source_lock = threading.Lock()


def _build_source() -> IdSource:
    from django.conf import settings

    configured = str(getattr(settings, "SNOWFLAKE_WORKER_ID", "") or "").strip()
    fixed = int(configured) if configured != "" else None
    redis_url = getattr(settings, "REDIS_URL", "")
    client = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return IdSource(
        redis_client=client,
        fixed_id=fixed,
        # The cache's key prefix: deployments sharing one Redis keep separate id spaces.
        prefix=settings.CACHES.get("default", {}).get("KEY_PREFIX") or "gochat",
        ttl=float(getattr(settings, "SNOWFLAKE_LEASE_TTL_SECONDS", 30.0)),
        pool_start=int(getattr(settings, "SNOWFLAKE_LEASE_POOL_START", 512)),
    )


def id_source() -> IdSource:
    """This process's id source, built on first use and again after a fork (a child
    never issues under its parent's lease)."""
    global _source, _source_pid
    pid = os.getpid()
    if _source is None or _source_pid != pid:
        with _source_lock:
            if _source is None or _source_pid != pid:
                _source = _build_source()
                _source_pid = pid
    return _source


def ensure_worker_id() -> int:
    """Role entry points call this at start, so a process without a unique worker id
    refuses to start instead of failing its first write."""
    return id_source().worker_id


def reset_id_source() -> None:
    """Tests: release the lease and build a new source on next use."""
    global _source, _source_pid
    with _source_lock:
        if _source is not None and _source_pid == os.getpid():
            _source.close()
        _source, _source_pid = None, None


@atexit.register
def _release_at_exit() -> None:
    # A clean exit hands the id back at once instead of after the TTL.
    if _source is not None and _source_pid == os.getpid():
        _source.close()


def new_id() -> int:
    """Return a new unique id; safe across threads and after fork."""
    return id_source().next_id()
