"""Hostile input on the wire against a real daphne gateway (issue 8 item 7, load shedding):
a raw RFC 6455 client sends what well-behaved libraries refuse to (invalid UTF-8, huge
frames) and stops reading to play a slow consumer. Every case ends in a close frame with
a documented code or an error frame, never a dropped TCP connection or a traceback."""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from urllib.parse import urlsplit

import orjson
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 20
OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


class RawWs:
    """A minimal client: masked frames out, frames in, nothing validated on our side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, ws_url: str, token: str, *, rcvbuf: int | None = None) -> RawWs:
        url = urlsplit(ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Set before connect so the TCP window stays small: the gateway's queue fills.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**22)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {url.path}?token={token} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 2**16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if length < 2**16 else _mask_fast(payload, mask)
        self.writer.write(header + mask + masked)

    def send_json(self, frame: dict) -> None:
        self.send_frame(OP_TEXT, orjson.dumps(frame))

    async def read_frame(self, timeout: float = WAIT) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await asyncio.wait_for(self.reader.readexactly(length), timeout)

    async def read_json(self, timeout: float = WAIT) -> dict:
        opcode, payload = await self.read_frame(timeout)
        assert opcode == OP_TEXT, (opcode, payload[:200])
        return orjson.loads(payload)

    async def read_until_close(self, timeout: float = WAIT) -> tuple[int | None, str, list[dict]]:
        """(close code, reason, text frames before it); code None if TCP ended without one."""
        frames: list[dict] = []
        try:
            while True:
                opcode, payload = await self.read_frame(timeout)
                if opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    return code, payload[2:].decode("utf-8", "replace"), frames
                if opcode == OP_TEXT:
                    frames.append(orjson.loads(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None, "", frames

    def close(self) -> None:
        self.writer.close()


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    # XOR through big integers: a Python loop over megabytes would take seconds.
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


@pytest.fixture
def gateway(settings, tmp_path):
    """One daphne gateway (embedded logic on the memory bus, this test's database)."""
    from tests.harness.stack import Stack, env_from_settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    stacks: list[Stack] = []

    def start(**env: object):
        overrides = {"BUS_BACKEND": "memory", "PRESENCE_BACKEND": "memory", "WS_RATE_LIMIT_BACKEND": "memory", **env}
        stack = Stack(env_from_settings(**overrides), tmp_path)
        stacks.append(stack)
        return stack.gateway("gw-wire")

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def token(db):
    from rest_framework_simplejwt.tokens import AccessToken

    return lambda user: str(AccessToken.for_user(user))


async def _pong(ws: RawWs) -> None:
    ws.send_json({"type": "ping"})
    assert (await ws.read_json())["type"] == "pong"


async def test_message_over_1_mib_closes_1009_and_smaller_oversize_gets_frame_too_large(gateway, token, alice):
    gw = await asyncio.to_thread(gateway)
    ws = await RawWs.connect(gw.ws_url, token(alice))
    # Between WS_MAX_FRAME_BYTES and 1 MiB: the documented error frame, socket kept.
    ws.send_frame(OP_TEXT, b'{"type":"ping","data":{"pad":"' + b"x" * 1_000_000 + b'"}}')
    error = await ws.read_json()
    assert error["data"]["code"] == 1001 and error["data"]["message"] == "frame too large"
    await _pong(ws)
    # Over 1 MiB: RFC 6455 1009 "message too big", a close frame rather than a dropped TCP.
    ws.send_frame(OP_TEXT, b"x" * (1024 * 1024 + 1))
    code, _, _ = await ws.read_until_close()
    assert code == 1009
    ws.close()


async def test_invalid_utf8_text_frame_closes_1007(gateway, token, alice):
    gw = await asyncio.to_thread(gateway)
    ws = await RawWs.connect(gw.ws_url, token(alice))
    await _pong(ws)
    ws.send_frame(OP_TEXT, b'{"type":"ping","x":"\xff\xfe"}')
    code, _, _ = await ws.read_until_close()
    assert code == 1007
    ws.close()


async def test_deeply_nested_frame_is_1001_on_the_wire(gateway, token, alice):
    gw = await asyncio.to_thread(gateway)
    ws = await RawWs.connect(gw.ws_url, token(alice))
    ws.send_frame(OP_TEXT, b"[" * 5000 + b"]" * 5000)
    error = await ws.read_json()
    assert error["data"]["code"] == 1001
    assert error["data"]["message"] == "JSON nested too deeply"
    await _pong(ws)
    ws.close()
    assert "Traceback" not in gw.log()


def _fill_conversation(alice, bob, count: int) -> int:
    from messaging.services import get_or_create_single_conversation, send_message

    conversation, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=bob.id)
    for n in range(count):
        send_message(sender_id=bob.id, conversation_id=conversation.id, content="y" * 4000, client_msg_id=f"f{n}")
    return conversation.id


async def test_slow_consumer_is_closed_4010_with_its_queue_bounded(gateway, token, alice, bob):
    from channels.db import database_sync_to_async

    conversation_id = await database_sync_to_async(_fill_conversation)(alice, bob, 100)
    gw = await asyncio.to_thread(gateway, WS_MAX_SEND_BUFFER_BYTES=256 * 1024, WS_RATE_LIMIT=1000)
    ws = await RawWs.connect(gw.ws_url, token(alice), rcvbuf=4096)
    # Each sync-result is ~400 KB; the client asks for 60 of them (~24 MB) and reads none.
    for _ in range(60):
        ws.send_json({"type": "sync", "data": {"conversation_id": str(conversation_id), "limit": 100}})
    await ws.writer.drain()
    await asyncio.to_thread(gw.wait_for_log, "ws_slow_consumer", 60)
    # Well within the grace (SLOW_CONSUMER_GRACE_SECONDS) but past autobahn's own 1 s
    # close-handshake timeout, which used to drop the connection and the 4010 with it.
    await asyncio.sleep(2.0)
    # The client finally reads: what was queued (bounded, far from all 60), then 4010.
    code, reason, frames = await ws.read_until_close(timeout=WAIT)
    assert (code, reason) == (4010, "slow consumer")
    assert len(frames) < 60
    ws.close()


async def test_frames_of_every_length_arrive_whole_and_in_order_while_the_socket_is_backed_up(
    gateway, token, alice, bob
):
    # The gateway writes a frame straight to the socket only while Twisted holds nothing
    # for it (daphne_options.send_now): with a tiny receive window the ~400 KB sync-results
    # back up in Twisted's buffer, and the small frames after them must wait their turn.
    from channels.db import database_sync_to_async

    conversation_id = await database_sync_to_async(_fill_conversation)(alice, bob, 100)
    gw = await asyncio.to_thread(gateway, WS_RATE_LIMIT=1000)
    ws = await RawWs.connect(gw.ws_url, token(alice), rcvbuf=4096)
    # Message counts per sync-result: ~400 KB (64-bit length), ~4 KB and ~40 KB (16-bit);
    # each pong is under 126 bytes (7-bit length). The first ~5 MB fill the kernel's
    # send buffer (a few MB on loopback), so the rest queue in Twisted's.
    asked = [100] * 12 + [1, 10, 1]
    for limit in asked:
        ws.send_json({"type": "sync", "data": {"conversation_id": str(conversation_id), "limit": limit}})
        ws.send_json({"type": "ping"})
    await ws.writer.drain()
    await asyncio.sleep(2.0)  # the gateway writes everything it can while nobody reads
    replies = [await ws.read_json() for _ in range(2 * len(asked))]
    assert [r["type"] for r in replies] == ["sync-result", "pong"] * len(asked)
    assert [len(r["data"]["messages"]) for r in replies[::2]] == asked
    # Every message arrived whole and once.
    for reply in replies[::2]:
        assert all(m["content"] == "y" * 4000 for m in reply["data"]["messages"])
        assert len({m["id"] for m in reply["data"]["messages"]}) == len(reply["data"]["messages"])
    ws.close()


def _bulk_users(n: int) -> list:
    import uuid

    from accounts.models import User

    run = uuid.uuid4().hex[:8]
    User.objects.bulk_create([User(username=f"wire{run}_{i}", password="!") for i in range(n)])
    return list(User.objects.filter(username__startswith=f"wire{run}_"))


@pytest.mark.redis
async def test_300_sockets_connecting_at_once_to_one_daphne_gateway_are_all_served(gateway, token, redis_presence):
    """Issue 8: 300 concurrent connects and pings on one production gateway gave 120 closes
    with 1011 and MaxConnectionsError from the presence pool. Here with a pool of 10."""
    import websockets
    from channels.db import database_sync_to_async

    people = await database_sync_to_async(_bulk_users)(300)
    gw = await asyncio.to_thread(gateway, PRESENCE_BACKEND="redis", PRESENCE_REDIS_MAX_CONNECTIONS=10)

    opened = []

    async def connect_and_ping(user) -> str:
        ws = await websockets.connect(f"{gw.ws_url}?token={token(user)}", open_timeout=60)
        opened.append(ws)  # held open until every client is done: a real burst overlaps
        await ws.send('{"type":"ping"}')
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
        return reply["type"] if reply["type"] != "error" else f"error {reply['data']['code']}"

    try:
        results = await asyncio.gather(*(connect_and_ping(user) for user in people), return_exceptions=True)
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    failures = [repr(r) for r in results if r != "pong"]
    assert failures == [], f"{len(failures)} of 300 not answered, e.g. {failures[:3]}"
    assert gw.count("MaxConnectionsError") == 0
    assert gw.count("ws_presence_failed") == 0


async def test_close_codes_and_reasons_reach_the_client_through_daphne(gateway, token, alice):
    import websockets

    gw = await asyncio.to_thread(gateway, WS_MAX_CONNECTIONS_PER_USER=1)
    async with websockets.connect(f"{gw.ws_url}?token={token(alice)}") as first:
        await first.send('{"type":"ping"}')
        assert orjson.loads(await first.recv())["type"] == "pong"
        async with websockets.connect(f"{gw.ws_url}?token={token(alice)}") as second:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(second.recv(), WAIT)
            assert (second.close_code, second.close_reason) == (4029, "too many connections")
