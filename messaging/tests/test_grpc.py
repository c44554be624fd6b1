"""LogicService and RepoService through a real gRPC channel on 127.0.0.1.

The server runs in this process on a free port; its pool threads open their own
database connections, hence transactional tests (rows must be committed to be seen).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from rest_framework_simplejwt.tokens import RefreshToken

from messaging.grpc.server import build_server
from protos.gochat.v1 import logic_pb2, logic_pb2_grpc, repo_pb2, repo_pb2_grpc

pytestmark = pytest.mark.django_db(transaction=True)

SERVICE_TOKEN = "test-service-token"
PASSWORD = "pass-1234-word"  # conftest make_user's default


@pytest.fixture
def channel(settings):
    settings.GRPC_SERVICE_TOKEN = SERVICE_TOKEN
    server, port, _ = build_server(address="127.0.0.1:0", max_workers=4)
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
        yield chan
    server.stop(None).wait()


@pytest.fixture
def logic(channel):
    return logic_pb2_grpc.LogicServiceStub(channel)


@pytest.fixture
def repo(channel):
    return repo_pb2_grpc.RepoServiceStub(channel)


def auth(user) -> list[tuple[str, str]]:  # noqa: ANN001
    return [("authorization", f"Bearer {RefreshToken.for_user(user).access_token}")]


SERVICE_AUTH = [("authorization", f"Bearer {SERVICE_TOKEN}")]


def rpc_error(call, request, **kwargs) -> grpc.RpcError:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as info:
        call(request, **kwargs)
    return info.value


def gochat_code(error: grpc.RpcError) -> int:
    return int(dict(error.trailing_metadata())["gochat-error-code"])


def gochat_details(error: grpc.RpcError) -> dict:
    return json.loads(dict(error.trailing_metadata())["gochat-error-details"])


# --- Login and authentication -----------------------------------------------------------


def test_login_issues_tokens_that_authenticate_later_calls(logic, alice, single_chat):
    reply = logic.Login(logic_pb2.LoginRequest(username="alice", password=PASSWORD))
    assert reply.user.id == alice.id
    assert reply.user.nickname == "Alice"
    assert reply.refresh

    listed = logic.ListConversations(
        logic_pb2.ListConversationsRequest(), metadata=[("authorization", f"Bearer {reply.access}")]
    )
    assert [c.conversation.id for c in listed.conversations] == [single_chat.id]
    assert listed.conversations[0].title == "Bob"


def test_login_with_a_wrong_password_is_unauthenticated(logic, alice):
    error = rpc_error(logic.Login, logic_pb2.LoginRequest(username="alice", password="nope"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert gochat_code(error) == 1002


def test_login_without_credentials_is_invalid(logic):
    error = rpc_error(logic.Login, logic_pb2.LoginRequest(username="alice"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert gochat_code(error) == 1001


@pytest.mark.parametrize(
    "metadata",
    [[], [("authorization", "Bearer not-a-jwt")], [("authorization", "Basic YWxpY2U6eA==")]],
    ids=["missing", "garbage", "wrong-scheme"],
)
def test_logic_calls_without_a_valid_token_are_unauthenticated(logic, single_chat, metadata):
    error = rpc_error(
        logic.SendMessage,
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="c1", content="hi"),
        metadata=metadata,
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert gochat_code(error) == 1002


def test_a_deactivated_users_token_stops_working(logic, alice):
    metadata = auth(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    error = rpc_error(logic.ListConversations, logic_pb2.ListConversationsRequest(), metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- Messages ---------------------------------------------------------------------------


def test_send_history_unread_and_mark_read(logic, alice, bob, single_chat):
    sent = logic.SendMessage(
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="m-1", content="hello bob"),
        metadata=auth(alice),
    )
    assert sent.created is True
    assert (sent.message.seq, sent.message.sender_id, sent.message.message_type) == (1, alice.id, "text")

    again = logic.SendMessage(
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="m-1", content="hello bob"),
        metadata=auth(alice),
    )
    assert again.created is False
    assert (again.message.id, again.message.seq) == (sent.message.id, 1)

    history = logic.History(logic_pb2.HistoryRequest(conversation_id=single_chat.id), metadata=auth(bob))
    assert [(m.id, m.content, m.sender_name) for m in history.messages] == [(sent.message.id, "hello bob", "Alice")]
    assert history.has_more is False

    listed = logic.ListConversations(logic_pb2.ListConversationsRequest(), metadata=auth(bob))
    entry = listed.conversations[0]
    assert (entry.unread, entry.peer_id, entry.conversation.last_seq) == (1, alice.id, 1)
    assert entry.conversation.last_message_preview == "hello bob"

    read = logic.MarkRead(logic_pb2.MarkReadRequest(conversation_id=single_chat.id, seq=1), metadata=auth(bob))
    assert read.last_read_seq == 1
    listed = logic.ListConversations(logic_pb2.ListConversationsRequest(), metadata=auth(bob))
    assert listed.conversations[0].unread == 0


def test_history_pages_with_after_seq_zero_and_before_seq(logic, alice, single_chat):
    for n in range(1, 6):
        logic.SendMessage(
            logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id=f"p-{n}", content=f"#{n}"),
            metadata=auth(alice),
        )
    first = logic.History(
        logic_pb2.HistoryRequest(conversation_id=single_chat.id, after_seq=0, limit=2), metadata=auth(alice)
    )
    assert [m.seq for m in first.messages] == [1, 2]
    assert first.has_more is True
    older = logic.History(
        logic_pb2.HistoryRequest(conversation_id=single_chat.id, before_seq=5, limit=3), metadata=auth(alice)
    )
    assert [m.seq for m in older.messages] == [2, 3, 4]


def test_bad_message_input_is_invalid_argument_with_field_details(logic, alice, single_chat):
    error = rpc_error(
        logic.SendMessage,
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="x", content=""),
        metadata=auth(alice),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert gochat_code(error) == 1001
    assert "content" in gochat_details(error)

    error = rpc_error(
        logic.SendMessage,
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="x", content="a", message_type="system"),
        metadata=auth(alice),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "message_type" in gochat_details(error)


@pytest.mark.parametrize(
    "request_",
    [
        logic_pb2.HistoryRequest(conversation_id=0),
        logic_pb2.HistoryRequest(conversation_id=1, limit=-1),
    ],
    # Both cursors are a window (selectors.conversation_history), not an error.
    ids=["no-conversation", "negative-limit"],
)
def test_bad_history_requests_are_invalid_argument(logic, alice, single_chat, request_):
    if request_.conversation_id == 1:
        request_.conversation_id = single_chat.id
    error = rpc_error(logic.History, request_, metadata=auth(alice))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert gochat_code(error) == 1001


def test_a_non_member_may_not_send_or_read(logic, carol, single_chat):
    error = rpc_error(
        logic.SendMessage,
        logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="c", content="let me in"),
        metadata=auth(carol),
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert gochat_code(error) == 1005
    error = rpc_error(logic.History, logic_pb2.HistoryRequest(conversation_id=single_chat.id), metadata=auth(carol))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_conversation_is_not_found(logic, alice, single_chat):
    error = rpc_error(logic.History, logic_pb2.HistoryRequest(conversation_id=single_chat.id + 1), metadata=auth(alice))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert gochat_code(error) == 1003
    error = rpc_error(logic.MarkRead, logic_pb2.MarkReadRequest(conversation_id=42, seq=1), metadata=auth(alice))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- Groups -----------------------------------------------------------------------------


def test_group_lifecycle(logic, alice, bob, carol):
    group = logic.CreateGroup(
        logic_pb2.CreateGroupRequest(name="ops", description="on call", member_ids=[bob.id]), metadata=auth(alice)
    )
    assert (group.owner_id, group.member_count, group.name) == (alice.id, 2, "ops")
    assert group.conversation_id != 0

    joined = logic.JoinGroup(logic_pb2.JoinGroupRequest(group_id=group.id), metadata=auth(carol))
    assert joined.member_count == 3
    # The group's conversation is open to the new member at once.
    sent = logic.SendMessage(
        logic_pb2.SendMessageRequest(conversation_id=group.conversation_id, client_msg_id="g1", content="hi all"),
        metadata=auth(carol),
    )
    assert sent.message.seq == 1

    error = rpc_error(logic.JoinGroup, logic_pb2.JoinGroupRequest(group_id=group.id), metadata=auth(carol))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert gochat_code(error) == 1007

    first = logic.GroupMembers(logic_pb2.GroupMembersRequest(group_id=group.id, limit=2), metadata=auth(bob))
    rest = logic.GroupMembers(
        logic_pb2.GroupMembersRequest(group_id=group.id, after_user_id=first.next_after_user_id, limit=2),
        metadata=auth(bob),
    )
    everyone = list(first.members) + list(rest.members)
    assert sorted((m.user.username, m.role) for m in everyone) == [
        ("alice", "owner"), ("bob", "member"), ("carol", "member")
    ]
    assert rest.next_after_user_id == 0

    logic.LeaveGroup(logic_pb2.LeaveGroupRequest(group_id=group.id), metadata=auth(carol))
    error = rpc_error(logic.GroupMembers, logic_pb2.GroupMembersRequest(group_id=group.id), metadata=auth(carol))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert gochat_code(error) == 1005
    error = rpc_error(
        logic.SendMessage,
        logic_pb2.SendMessageRequest(conversation_id=group.conversation_id, client_msg_id="g2", content="still here?"),
        metadata=auth(carol),
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_group_errors(logic, alice, bob):
    error = rpc_error(logic.CreateGroup, logic_pb2.CreateGroupRequest(name="  "), metadata=auth(alice))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in gochat_details(error)
    error = rpc_error(
        logic.CreateGroup, logic_pb2.CreateGroupRequest(name="x", member_ids=[bob.id + 7]), metadata=auth(alice)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = rpc_error(logic.JoinGroup, logic_pb2.JoinGroupRequest(group_id=123456), metadata=auth(bob))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = rpc_error(logic.LeaveGroup, logic_pb2.LeaveGroupRequest(group_id=0), metadata=auth(bob))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- RepoService ------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [[], [("authorization", "Bearer wrong-token")]], ids=["missing", "wrong"])
def test_repo_service_needs_the_service_token(repo, alice, metadata):
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=[alice.id]), metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert gochat_code(error) == 1002


def test_a_users_jwt_does_not_open_the_repo_service(repo, alice):
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=[alice.id]), metadata=auth(alice))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_repo_service_is_closed_when_no_token_is_configured(repo, alice, settings):
    settings.GRPC_SERVICE_TOKEN = ""
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=[alice.id]), metadata=[("authorization", "Bearer ")])
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=[alice.id]), metadata=SERVICE_AUTH)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "GRPC_SERVICE_TOKEN" in error.details()


def test_get_users_in_request_order_with_unknown_ids(repo, alice, bob):
    missing = bob.id + 1000
    reply = repo.GetUsers(repo_pb2.GetUsersRequest(user_ids=[bob.id, missing, alice.id, bob.id]), metadata=SERVICE_AUTH)
    assert [u.username for u in reply.users] == ["bob", "alice"]
    assert list(reply.not_found_ids) == [missing]


def test_get_users_refuses_oversized_and_bad_batches(repo):
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=list(range(1, 1002))), metadata=SERVICE_AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert gochat_code(error) == 1001
    error = rpc_error(repo.GetUsers, repo_pb2.GetUsersRequest(user_ids=[-5]), metadata=SERVICE_AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_messages_group_and_conversation(repo, logic, alice, bob):
    group = logic.CreateGroup(logic_pb2.CreateGroupRequest(name="crew", member_ids=[bob.id]), metadata=auth(alice))
    sent = logic.SendMessage(
        logic_pb2.SendMessageRequest(conversation_id=group.conversation_id, client_msg_id="r1", content="stored"),
        metadata=auth(bob),
    )
    messages = repo.GetMessages(
        repo_pb2.GetMessagesRequest(message_ids=[sent.message.id, sent.message.id + 1]), metadata=SERVICE_AUTH
    )
    assert [(m.content, m.sender_name, m.seq) for m in messages.messages] == [("stored", "Bob", 1)]
    assert list(messages.not_found_ids) == [sent.message.id + 1]

    fetched = repo.GetGroup(repo_pb2.GetGroupRequest(group_id=group.id), metadata=SERVICE_AUTH)
    assert (fetched.name, fetched.member_count, fetched.conversation_id) == ("crew", 2, group.conversation_id)

    conversation = repo.GetConversation(
        repo_pb2.GetConversationRequest(conversation_id=group.conversation_id), metadata=SERVICE_AUTH
    )
    assert (conversation.type, conversation.group_id, conversation.last_seq) == ("group", group.id, 1)
    assert (conversation.member_count, conversation.last_message_id) == (2, sent.message.id)


def test_unknown_group_and_conversation_are_not_found(repo):
    error = rpc_error(repo.GetGroup, repo_pb2.GetGroupRequest(group_id=987654321), metadata=SERVICE_AUTH)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert gochat_code(error) == 1003
    error = rpc_error(
        repo.GetConversation, repo_pb2.GetConversationRequest(conversation_id=987654321), metadata=SERVICE_AUTH
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_get_online_status_reports_each_users_sessions(repo, alice, bob):
    from messaging.presence import get_presence

    presence = get_presence()
    presence.connect(alice.id, f"conn-{alice.id}", "gw-test-1")
    try:
        reply = repo.GetOnlineStatus(repo_pb2.GetOnlineStatusRequest(user_ids=[bob.id, alice.id]), metadata=SERVICE_AUTH)
    finally:
        presence.disconnect(alice.id, f"conn-{alice.id}")
    statuses = {s.user_id: s for s in reply.statuses}
    assert [s.user_id for s in reply.statuses] == [bob.id, alice.id]
    assert statuses[alice.id].online is True
    assert dict(statuses[alice.id].sessions) == {f"conn-{alice.id}": "gw-test-1"}
    assert statuses[bob.id].online is False
    assert dict(statuses[bob.id].sessions) == {}


# --- Health and reflection --------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "gochat.v1.LogicService", "gochat.v1.RepoService"])
def test_health_check_is_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service_is_not_found(channel):
    error = rpc_error(health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(service="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"gochat.v1.LogicService", "gochat.v1.RepoService", "grpc.health.v1.Health"} <= services
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(database)
    methods = {m.name for m in pool.FindServiceByName("gochat.v1.LogicService").methods}
    assert {"Login", "SendMessage", "History", "GroupMembers"} <= methods


# --- The run_grpc command ---------------------------------------------------------------


def test_run_grpc_command_serves_health_and_stops_on_sigterm(tmp_path):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_grpc", "--host", "127.0.0.1", "--port", "0", "--grace", "1"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("gRPC listening on 127.0.0.1:"), proc.stderr.read() if not line else line
        port = int(line.rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            reply = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
