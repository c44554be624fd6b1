"""The embedded default as a user runs it: one `manage.py runserver` with no service
variables (SQLite, in-process bus, presence and channel layer, logic loop inside the
gateway) is a complete chat server for two real WebSocket clients."""
from __future__ import annotations

import httpx
import pytest

from tests.harness.stack import embedded_env
from tests.harness.wsclient import WsClient

pytestmark = pytest.mark.e2e


def _account(base: str, username: str) -> tuple[dict, str]:
    password = "correct-horse-9-battery"
    created = httpx.post(f"{base}/api/v1/users/register", json={"username": username, "password": password})
    assert created.status_code == 201, created.text
    login = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return login.json()["user"], login.json()["access"]


async def test_runserver_alone_carries_a_message_both_ways(launch, tmp_path):
    stack = launch(embedded_env(SQLITE_PATH=tmp_path / "gochat.sqlite3", GATEWAY_ID="gw-embedded"))
    stack.manage("migrate", "--noinput", "-v", "0")
    server = stack.runserver()

    ann, ann_token = _account(server.url, "ann")
    ben, ben_token = _account(server.url, "ben")
    opened = httpx.post(
        f"{server.url}/api/v1/conversations/create",
        json={"username": "ben"},
        headers={"Authorization": f"Bearer {ann_token}"},
    )
    assert opened.status_code == 201, opened.text
    conversation_id = opened.json()["id"]
    assert isinstance(conversation_id, str)

    ann_ws = await WsClient.connect(server.ws_url, ann_token, name="ann")
    ben_ws = await WsClient.connect(server.ws_url, ben_token, name="ben")
    try:
        sent = await ann_ws.send_message(conversation_id, "hello ben")
        ack = await ann_ws.ack_for(sent)
        assert ack["conversation_id"] == conversation_id
        assert ack["seq"] == 1
        received = (await ben_ws.wait_for("new-message"))["data"]["message"]
        assert received["id"] == ack["message_id"]
        assert received["content"] == "hello ben"
        assert received["sender_id"] == ann["id"]

        reply = await ben_ws.send_message(conversation_id, "hi ann")
        assert (await ben_ws.ack_for(reply))["seq"] == 2
        back = (await ann_ws.wait_for("new-message"))["data"]["message"]
        assert (back["content"], back["seq"], back["sender_id"]) == ("hi ann", 2, ben["id"])

        history = await ann_ws.request("sync", {"conversation_id": conversation_id, "after_seq": 0}, reply="sync-result")
        assert [m["content"] for m in history["messages"]] == ["hello ben", "hi ann"]
    finally:
        await ann_ws.close()
        await ben_ws.close()
    assert server.alive(), server.log_tail()
