"""Clients that behave as real ones do, and the log the checker reads.

Each `FaultClient` is one user's device. It sends its planned stream at a steady pace
with a small window of unacknowledged sends, resends each unacknowledged send with the
same client_msg_id every `resend_after` seconds until it is acked, reconnects with
jittered exponential backoff (to the other gateway when its own does not answer, as a
load balancer would), and after each (re)connect syncs every conversation from the last
seq it holds without a gap. A push whose seq jumps past a gap also triggers a sync.
Everything it sees goes into the shared `EventLog`, one event per send, ack, delivery
(`push` = new-message frame, `sync` = sync-result) and socket open / close.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


class EventLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append({"t": time.time(), "kind": kind, **fields})

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["kind"] == kind]

    def dump(self, path) -> None:  # noqa: ANN001 - a path
        with open(path, "w", encoding="utf-8") as fh:
            for event in self.events:
                fh.write(json.dumps(event) + "\n")


@dataclass
class Planned:
    conversation_id: str
    client_msg_id: str
    content: str


@dataclass
class ClientConfig:
    pace: float = 1.0  # seconds between two new sends
    window: int = 4  # unacknowledged sends in flight before the next new one waits
    resend_after: float = 3.0
    backoff_base: float = 0.5
    backoff_max: float = 5.0
    ping_every: float = 5.0
    copies: int = 1  # >1: each send and resend goes out this many times back to back (a storm)


@dataclass
class FaultClient:
    name: str
    user_id: str
    token: str
    urls: list[str]  # ws URLs; the first is this client's own gateway
    conversations: list[str]
    plan: list[Planned]
    log: EventLog
    config: ClientConfig = field(default_factory=ClientConfig)

    def __post_init__(self) -> None:
        self.pending: dict[str, tuple[Planned, float]] = {}  # client_msg_id -> (send, last sent)
        self.acked: dict[str, int] = {}
        self.seen: dict[str, set[int]] = {cid: set() for cid in self.conversations}
        self.sent_all = asyncio.Event()
        self.ws = None
        self.socket_id = ""
        self.sockets = 0
        self._stop = asyncio.Event()
        self._url_index = 0
        self._tasks: list[asyncio.Task] = []

    # --- state -------------------------------------------------------------------------
    def contiguous(self, conversation_id: str) -> int:
        """The highest seq k such that 1..k have all been seen in this conversation."""
        seen, k = self.seen[conversation_id], 0
        while k + 1 in seen:
            k += 1
        return k

    @property
    def done_sending(self) -> bool:
        return self.sent_all.is_set() and not self.pending

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._connection_loop(), name=f"conn-{self.name}"),
            asyncio.create_task(self._sender(), name=f"send-{self.name}"),
            asyncio.create_task(self._resender(), name=f"resend-{self.name}"),
            asyncio.create_task(self._pinger(), name=f"ping-{self.name}"),
        ]

    async def stop(self) -> None:
        self._stop.set()
        ws = self.ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 3)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop(self) -> None:
        """Close this socket from the client side (it reconnects as after any drop)."""
        ws = self.ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 3)
            except Exception:  # noqa: BLE001
                pass

    # --- socket ------------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            url = self.urls[self._url_index % len(self.urls)]
            try:
                ws = await connect(f"{url}?token={self.token}", open_timeout=5, ping_interval=None, close_timeout=2)
            except Exception as exc:  # noqa: BLE001 - any failure to connect: back off, try again
                self.log.add("connect_failed", client=self.name, url=url, error=type(exc).__name__)
                attempt += 1
                self._url_index += 1  # try the other gateway next, as a load balancer would
                delay = min(self.config.backoff_base * 2 ** (attempt - 1), self.config.backoff_max)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                continue
            attempt = 0
            self.sockets += 1
            self.socket_id = f"{self.name}#{self.sockets}"
            self.ws = ws
            self.log.add("open", client=self.name, user=self.user_id, socket=self.socket_id, url=url)
            try:
                for conversation_id in self.conversations:
                    await self._sync(conversation_id, self.contiguous(conversation_id))
                for cmid in list(self.pending):
                    await self._send(self.pending[cmid][0], resend=True)
                async for raw in ws:
                    self._on_frame(json.loads(raw))
            except ConnectionClosed:
                pass
            except Exception as exc:  # noqa: BLE001 - a broken socket is a closed one
                self.log.add("client_error", client=self.name, socket=self.socket_id, error=repr(exc))
            finally:
                self.ws = None
                self.log.add("close", client=self.name, user=self.user_id, socket=self.socket_id, code=ws.close_code)
            if not self._stop.is_set():
                await asyncio.sleep(random.uniform(0.1, 0.5))

    async def _write(self, frame: dict) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
            return True
        except Exception:  # noqa: BLE001 - the connection loop sees the close
            return False

    async def _sync(self, conversation_id: str, after_seq: int) -> None:
        self.log.add("sync_request", client=self.name, socket=self.socket_id, conversation_id=conversation_id, after=after_seq)
        await self._write({"type": "sync", "data": {"conversation_id": conversation_id, "after_seq": after_seq, "limit": 100}})

    async def _send(self, planned: Planned, *, resend: bool) -> None:
        frame = {
            "type": "send-message",
            "data": {
                "client_msg_id": planned.client_msg_id,
                "conversation_id": planned.conversation_id,
                "content": planned.content,
                "message_type": "text",
            },
        }
        self.pending[planned.client_msg_id] = (planned, time.monotonic())
        for _ in range(self.config.copies):
            if await self._write(frame):
                self.log.add(
                    "resend" if resend else "send", client=self.name, user=self.user_id, socket=self.socket_id,
                    conversation_id=planned.conversation_id, client_msg_id=planned.client_msg_id,
                )  # fmt: skip
            resend = True

    def _on_frame(self, frame: dict) -> None:
        kind, data = frame.get("type"), frame.get("data") or {}
        if kind == "send-ack":
            cmid = data.get("client_msg_id")
            self.pending.pop(cmid, None)
            self.acked[cmid] = int(data["seq"])
            self._saw(data["conversation_id"], int(data["seq"]))
            self.log.add(
                "ack", client=self.name, user=self.user_id, socket=self.socket_id, client_msg_id=cmid,
                conversation_id=str(data["conversation_id"]), message_id=str(data["message_id"]), seq=int(data["seq"]),
            )  # fmt: skip
        elif kind == "new-message":
            self._delivered(data["message"], "push")
        elif kind == "sync-result":
            messages = data.get("messages") or []
            self.log.add("sync_result", client=self.name, user=self.user_id, socket=self.socket_id, count=len(messages))
            for message in messages:
                self._delivered(message, "sync")
            conversation_id = str(data.get("conversation_id") or (messages[0]["conversation_id"] if messages else ""))
            if data.get("has_more") and messages and conversation_id in self.seen:
                asyncio.get_running_loop().create_task(self._sync(conversation_id, int(messages[-1]["seq"])))
        elif kind == "error":
            self.log.add("error", client=self.name, socket=self.socket_id, data=data)
        elif kind == "pong":
            pass

    def _saw(self, conversation_id: str, seq: int) -> None:
        self.seen.setdefault(str(conversation_id), set()).add(seq)

    def _delivered(self, message: dict, via: str) -> None:
        conversation_id, seq = str(message["conversation_id"]), int(message["seq"])
        before = self.contiguous(conversation_id) if conversation_id in self.seen else 0
        self._saw(conversation_id, seq)
        self.log.add(
            via, client=self.name, user=self.user_id, socket=self.socket_id, conversation_id=conversation_id,
            message_id=str(message["id"]), seq=seq, client_msg_id=message.get("client_msg_id"),
            sender_id=str(message.get("sender_id", "")),
        )  # fmt: skip
        if via == "push" and seq > before + 1 and conversation_id in self.conversations:
            # A gap: what a real client does is pull the missing range.
            asyncio.get_running_loop().create_task(self._sync(conversation_id, before))

    # --- sending -----------------------------------------------------------------------
    async def _sender(self) -> None:
        for planned in self.plan:
            while len(self.pending) >= self.config.window and not self._stop.is_set():
                await asyncio.sleep(0.05)
            await self._send(planned, resend=False)
            await asyncio.sleep(self.config.pace * random.uniform(0.8, 1.2))
        self.sent_all.set()

    async def _resender(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for cmid, (planned, last) in list(self.pending.items()):
                if now - last >= self.config.resend_after and self.ws is not None:
                    await self._send(planned, resend=True)

    async def _pinger(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.config.ping_every)
            await self._write({"type": "ping", "data": {}})


def plan_for(name: str, conversation_id: str, count: int) -> list[Planned]:
    return [Planned(conversation_id, f"{name}-{uuid.uuid4().hex[:12]}", f"{name} #{i}") for i in range(count)]
