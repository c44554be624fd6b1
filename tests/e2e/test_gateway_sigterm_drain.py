"""SIGTERM to a real daphne gateway: its clients get close 1012 "gateway draining" (not a
dropped connection), so they reconnect elsewhere, and the process exits."""
from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tests.harness.stack import embedded_env
from tests.harness.wsclient import WsClient

pytestmark = pytest.mark.e2e


def _token(base: str, username: str) -> str:
    password = "correct-horse-9-battery"
    assert httpx.post(f"{base}/api/v1/users/register", json={"username": username, "password": password}).status_code == 201
    return httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": password}).json()["access"]


async def test_sigterm_closes_sockets_with_1012_then_exits(launch, tmp_path):
    stack = launch(embedded_env(SQLITE_PATH=tmp_path / "gochat.sqlite3", WS_DRAIN_SECONDS="1"))
    stack.manage("migrate", "--noinput", "-v", "0")
    gateway = stack.gateway("gw-drain")
    clients = [await WsClient.connect(gateway.ws_url, _token(gateway.url, f"user{i}"), name=f"u{i}") for i in range(3)]
    try:
        gateway.signal(signal.SIGTERM)
        for _ in range(200):
            if all(c.closed for c in clients):
                break
            await asyncio.sleep(0.1)
        assert [c.close_code for c in clients] == [1012, 1012, 1012]
        assert [c.ws.close_reason for c in clients] == ["gateway draining"] * 3
        for _ in range(200):
            if not gateway.alive():
                break
            await asyncio.sleep(0.1)
        assert not gateway.alive()
        assert gateway.count("gateway_drained") == 1
    finally:
        for client in clients:
            await client.close()
