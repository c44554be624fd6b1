"""A small asyncio client of the GoChat WebSocket protocol (the `websockets` library), for
end-to-end tests and benchmarks against a real gateway process.

A background task reads every frame into `frames`, so nothing is missed while a test is
busy elsewhere; `wait_for` / `wait_count` look through what arrived, with a timeout.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Frame = dict[str, Any]


class WsClient:
    def __init__(self, ws: ClientConnection, name: str = "") -> None:
        self.ws = ws
        self.name = name
        self.frames: list[Frame] = []
        self.close_code: int | None = None
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name=f"ws-reader-{name}")

    @classmethod
    async def connect(cls, ws_url: str, token: str, *, name: str = "", timeout: float = 15.0) -> WsClient:
        """Open `ws_url?token=<token>` (server pings are answered; the client sends none)."""
        ws = await connect(f"{ws_url}?token={token}", open_timeout=timeout, ping_interval=None, max_size=2**22)
        return cls(ws, name)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                async with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            async with self._changed:
                self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._reader.done()

    # --- sending ----------------------------------------------------------------------------
    async def send(self, type_: str, data: dict[str, Any] | None = None) -> None:
        await self.ws.send(json.dumps({"type": type_, "data": data or {}}))

    async def send_message(
        self, conversation_id: int | str, content: str, *, client_msg_id: str | None = None, message_type: str = "text"
    ) -> str:
        """Send `send-message`; return its client_msg_id (a fresh one unless given)."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send(
            "send-message",
            {
                "client_msg_id": client_msg_id,
                "conversation_id": str(conversation_id),
                "content": content,
                "message_type": message_type,
            },
        )
        return client_msg_id

    # --- receiving --------------------------------------------------------------------------
    def of_type(self, type_: str) -> list[Frame]:
        return [frame for frame in self.frames if frame.get("type") == type_]

    def new_messages(self) -> list[dict[str, Any]]:
        """The `message` of every new-message frame, in arrival order."""
        return [frame["data"]["message"] for frame in self.of_type("new-message")]

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        """Wait until condition() is truthy (re-checked after each frame); return its value."""
        async def check() -> Any:
            async with self._changed:
                while True:
                    value = condition()
                    if value:
                        return value
                    if self.closed:
                        raise ConnectionError(f"{self.name}: socket closed ({self.close_code}) waiting for {what}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(check(), timeout)
        except asyncio.TimeoutError:
            kinds = [frame.get("type") for frame in self.frames[-10:]]
            raise TimeoutError(f"{self.name}: no {what} within {timeout}s (last frames: {kinds})") from None

    async def wait_for(
        self, type_: str, where: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 20.0
    ) -> Frame:
        """The first frame of `type_` (whose data satisfies `where`) received so far or next."""
        def find() -> Frame | None:
            for frame in self.frames:
                if frame.get("type") == type_ and (where is None or where(frame.get("data", {}))):
                    return frame
            return None

        return await self.wait_until(find, timeout, what=type_)

    async def wait_count(self, type_: str, count: int, timeout: float = 20.0) -> list[Frame]:
        """Wait until at least `count` frames of `type_` arrived; return them all."""
        await self.wait_until(lambda: len(self.of_type(type_)) >= count, timeout, what=f"{count} x {type_}")
        return self.of_type(type_)

    async def ack_for(self, client_msg_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The send-ack (data) for `client_msg_id`; an error frame for it raises."""
        def find() -> Frame | None:
            for frame in self.frames:
                data = frame.get("data", {})
                if frame.get("type") in ("send-ack", "error") and data.get("client_msg_id") == client_msg_id:
                    return frame
            return None

        frame = await self.wait_until(find, timeout, what=f"send-ack {client_msg_id}")
        if frame["type"] == "error":
            raise AssertionError(f"{self.name}: send refused: {frame['data']}")
        return frame["data"]

    async def request(self, type_: str, data: dict[str, Any] | None = None, *, reply: str, timeout: float = 20.0) -> dict:
        """Send a frame and return the data of the next `reply` frame after it."""
        before = len(self.frames)
        await self.send(type_, data)
        frame = await self.wait_until(
            lambda: next((f for f in self.frames[before:] if f.get("type") in (reply, "error")), None),
            timeout,
            what=reply,
        )
        if frame["type"] == "error" and reply != "error":
            raise AssertionError(f"{self.name}: {type_} answered with error {frame['data']}")
        return frame["data"]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)
