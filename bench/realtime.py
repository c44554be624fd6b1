"""Load clients of the real-time benchmarks, against a running gateway's /ws:

- S1 `one_to_one`: pairs of users, each sender keeping a fixed number of messages in
  flight (sent, not yet pushed to the peer); delivered msg/s and end-to-end latency
  (send-message written -> the peer's new-message read).
- S2 `group_delivery`: one message to a group whose members are all online; time until
  the last member has it.
- S3 `idle_sockets`: resident memory of the gateway per idle authenticated socket.

The clocks are the client's (one process, time.perf_counter), so no clock skew enters.
Client work counts in the numbers: on a shared 2-core machine the load generator
competes with the stack for CPU, which docs/benchmarks.md states beside the results.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# Connections opened at once while ramping up sockets (the gateway authenticates each
# with a database query and registers it in presence).
CONNECT_CONCURRENCY = 50
# How long a warm-up message may take: the first one waits for Kafka consumer groups to
# form and caches to fill.
WARMUP_TIMEOUT_S = 90.0
# After the send budget is spent, how long to wait for messages still in flight.
DRAIN_TIMEOUT_S = 15.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Socket:
    """One client WebSocket. A reader task hands every text frame to `on_frame`."""

    def __init__(self, conn: ClientConnection, user_id: str) -> None:
        self.conn = conn
        self.user_id = user_id
        self.on_frame: Callable[[str, float], None] = lambda text, at: None
        self.errors: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.conn:
                at = time.perf_counter()
                if isinstance(text, str):
                    if '"type": "error"' in text or '"type":"error"' in text:
                        self.errors.append(json.loads(text).get("data", {}))
                    self.on_frame(text, at)
        except Exception:  # noqa: BLE001 - a closed socket ends its reader; closes are counted elsewhere
            pass

    async def send_message(self, conversation_id: str, client_msg_id: str, content: str) -> None:
        frame = {
            "type": "send-message",
            "data": {"client_msg_id": client_msg_id, "conversation_id": conversation_id, "content": content},
        }
        await self.conn.send(json.dumps(frame))

    @property
    def open(self) -> bool:
        return not self._reader.done()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.conn.close(), 5)
        except Exception:  # noqa: BLE001 - closing a socket the server already dropped
            pass
        self._reader.cancel()


async def open_socket(ws_url: str, person: dict[str, str]) -> Socket:
    # No Origin (a native client), no client pings (an idle socket stays idle), and
    # compression as a browser would offer it.
    conn = await connect(
        f"{ws_url}?token={person['token']}", proxy=None, ping_interval=None, open_timeout=60, max_size=2**20
    )
    return Socket(conn, person["id"])


async def open_sockets(ws_url: str, people: Sequence[dict[str, str]]) -> list[Socket]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(person: dict[str, str]) -> Socket:
        async with gate:
            return await open_socket(ws_url, person)

    return list(await asyncio.gather(*(one(p) for p in people)))


async def close_sockets(sockets: Sequence[Socket]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 4)

    async def one(socket: Socket) -> None:
        async with gate:
            await socket.close()

    await asyncio.gather(*(one(s) for s in sockets))


def _new_message_id(text: str) -> str | None:
    """client_msg_id of a new-message frame (None for any other frame)."""
    if "new-message" not in text:
        return None
    frame = json.loads(text)
    if frame.get("type") != "new-message":
        return None
    return frame["data"]["message"]["client_msg_id"]


# --- S1 ----------------------------------------------------------------------------------------


@dataclass
class _Pair:
    sender: Socket
    receiver: Socket
    conversation_id: str
    window: asyncio.Semaphore
    sent_at: dict[str, float] = field(default_factory=dict)
    waiters: dict[str, asyncio.Future] = field(default_factory=dict)


async def one_to_one(
    ws_url: str, pairs: Sequence[dict[str, Any]], *, in_flight: int, total: int, time_limit_s: float
) -> dict[str, Any]:
    """Send up to `total` messages (all pairs together) or for `time_limit_s`, each pair
    keeping `in_flight` messages between send and the peer's new-message."""
    senders = await open_sockets(ws_url, [p["a"] for p in pairs])
    receivers = await open_sockets(ws_url, [p["b"] for p in pairs])
    run = [
        _Pair(s, r, p["conversation_id"], asyncio.Semaphore(in_flight)) for s, r, p in zip(senders, receivers, pairs)
    ]
    latencies: list[float] = []
    delivered_at: list[float] = []
    measuring = False

    def receiver_handler(pair: _Pair) -> Callable[[str, float], None]:
        def handle(text: str, at: float) -> None:
            client_msg_id = _new_message_id(text)
            if client_msg_id is None:
                return
            waiter = pair.waiters.pop(client_msg_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(at)
            started = pair.sent_at.pop(client_msg_id, None)
            if started is None:
                return  # a copy already seen, or a warm-up message
            if measuring:
                latencies.append(at - started)
                delivered_at.append(at)
            pair.window.release()

        return handle

    for pair in run:
        pair.receiver.on_frame = receiver_handler(pair)
    try:
        # Warm-up: one message per pair, end to end, before the clock starts.
        loop = asyncio.get_running_loop()
        for pair in run:
            client_msg_id = f"warm-{uuid.uuid4().hex}"
            pair.waiters[client_msg_id] = loop.create_future()
            await pair.sender.send_message(pair.conversation_id, client_msg_id, "warm-up")
        await asyncio.wait_for(
            asyncio.gather(*(w for pair in run for w in list(pair.waiters.values()))), WARMUP_TIMEOUT_S
        )

        measuring = True
        budget = itertools.count()
        started = time.perf_counter()
        deadline = started + time_limit_s
        sent = 0

        async def drive(pair: _Pair) -> None:
            nonlocal sent
            while time.perf_counter() < deadline:
                remaining = deadline - time.perf_counter()
                try:
                    await asyncio.wait_for(pair.window.acquire(), max(0.01, remaining))
                except asyncio.TimeoutError:
                    return
                if next(budget) >= total or time.perf_counter() >= deadline:
                    pair.window.release()
                    return
                client_msg_id = uuid.uuid4().hex
                pair.sent_at[client_msg_id] = time.perf_counter()
                sent += 1
                await pair.sender.send_message(pair.conversation_id, client_msg_id, f"bench {client_msg_id}")

        await asyncio.gather(*(drive(pair) for pair in run))
        drain_until = time.perf_counter() + DRAIN_TIMEOUT_S
        while any(pair.sent_at for pair in run) and time.perf_counter() < drain_until:
            await asyncio.sleep(0.05)
        measuring = False
        lost = sum(len(pair.sent_at) for pair in run)
        elapsed = (max(delivered_at) if delivered_at else time.perf_counter()) - started
        errors = [e for s in [*senders, *receivers] for e in s.errors]
        closed = sum(1 for s in [*senders, *receivers] if not s.open)
    finally:
        await close_sockets([*senders, *receivers])
    return {
        "pairs": len(run),
        "in_flight_per_pair": in_flight,
        "sent": sent,
        "delivered": len(latencies),
        "undelivered": lost,
        "error_frames": len(errors),
        "error_codes": sorted({e.get("code") for e in errors if e.get("code") is not None}),
        "sockets_closed_early": closed,
        "seconds": round(elapsed, 3),
        "delivered_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
    }


# --- S2 ----------------------------------------------------------------------------------------


async def group_delivery(
    ws_url: str, *, owner: dict[str, str], members: Sequence[dict[str, str]], conversation_id: str, rounds: int
) -> dict[str, Any]:
    """`rounds` times: the owner sends one message; the time until every online member
    (all of `members`) has its new-message. One warm-up round first."""
    sender = await open_socket(ws_url, owner)
    sockets = await open_sockets(ws_url, members)
    pending: set[int] = set()
    expected = ""
    last_at = 0.0
    done = asyncio.Event()
    arrivals: list[float] = []

    def handler(index: int) -> Callable[[str, float], None]:
        def handle(text: str, at: float) -> None:
            nonlocal last_at
            # A substring test instead of json.loads: 1,000 parses per round would add
            # client time to the measurement.
            if expected and expected in text and index in pending:
                pending.discard(index)
                arrivals.append(at)
                last_at = at
                if not pending:
                    done.set()

        return handle

    for i, socket in enumerate(sockets):
        socket.on_frame = handler(i)
    last_member: list[float] = []
    median_member: list[float] = []
    missing = 0
    try:
        for round_no in range(rounds + 1):
            expected = f"grp-{uuid.uuid4().hex}"
            pending = set(range(len(sockets)))
            arrivals.clear()
            done.clear()
            started = time.perf_counter()
            await sender.send_message(conversation_id, expected, f"group bench {expected}")
            try:
                await asyncio.wait_for(done.wait(), WARMUP_TIMEOUT_S if round_no == 0 else 60)
            except asyncio.TimeoutError:
                missing += len(pending)
                continue
            if round_no == 0:
                continue  # warm-up
            last_member.append(last_at - started)
            median_member.append(percentile(arrivals, 50) - started)
            await asyncio.sleep(0.5)  # let the stack settle between rounds
        closed = sum(1 for s in sockets if not s.open)
    finally:
        await close_sockets([sender, *sockets])
    return {
        "online_members": len(sockets),
        "rounds": len(last_member),
        "last_member_ms": _ms(percentile(last_member, 50)),
        "last_member_max_ms": _ms(max(last_member) if last_member else None),
        "median_member_ms": _ms(percentile(median_member, 50)),
        "missing_deliveries": missing,
        "sockets_closed_early": closed,
    }


# --- S3 ----------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its descendants (a launcher may wrap the server)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """CPU time (user + system) used so far by `pid` (and its descendants if `tree`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *(_descendants(pid) if tree else [])]:
        try:
            with open(f"/proc/{p}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


class CpuMeter:
    """Cores used by each process while a scenario runs (1.0 = one core all the time)."""

    def __init__(self, trees: dict[str, int], own: dict[str, int] | None = None) -> None:
        # `trees`: a process with its children (a Celery prefork pool); `own`: the process
        # alone (the bench client, whose children are the stack itself).
        self.meters = {role: (pid, True) for role, pid in trees.items()}
        self.meters.update({role: (pid, False) for role, pid in (own or {}).items()})
        self._start = {role: cpu_seconds(pid, tree=tree) for role, (pid, tree) in self.meters.items()}
        self._t0 = time.perf_counter()

    def cores(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self._t0
        return {
            role: round((cpu_seconds(pid, tree=tree) - self._start[role]) / elapsed, 2)
            for role, (pid, tree) in self.meters.items()
        }


async def _settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once it stops moving (each new socket's work may still be finishing)."""
    await asyncio.sleep(seconds)
    return rss_bytes(pid)


async def idle_sockets(ws_url: str, people: Sequence[dict[str, str]], *, steps: Sequence[int], gateway_pid: int) -> dict[str, Any]:
    """Open idle sockets up to each count in `steps` and divide the growth of the
    gateway's RSS by the number of sockets. One socket is opened first so the gateway's
    background loops (started by the first socket) are not charged to the sockets."""
    first = await open_socket(ws_url, people[0])
    base = await _settle(gateway_pid)
    sockets: list[Socket] = []
    rows = []
    try:
        for count in steps:
            sockets += await open_sockets(ws_url, people[1 + len(sockets) : 1 + count])
            rss = await _settle(gateway_pid)
            alive = sum(1 for s in sockets if s.open)
            rows.append(
                {
                    "sockets": len(sockets),
                    "open": alive,
                    "rss_mib": round(rss / 2**20, 1),
                    "kib_per_socket": round((rss - base) / 1024 / max(1, len(sockets)), 1),
                }
            )
    finally:
        await close_sockets([first, *sockets])
    return {"baseline_rss_mib": round(base / 2**20, 1), "steps": rows}
