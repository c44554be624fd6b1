"""The gateway's direct frame write (messaging.gateway.daphne_options): RFC 6455 framing,
and the rule that keeps frames in order, checked on a real socket pair. The transport
here carries the attributes of Twisted's TCP transport that send_now reads; the framing
and ordering through a real daphne are in test_gateway_wire.py."""
from __future__ import annotations

import socket
import struct

import pytest

from messaging.gateway.daphne_options import frame_bytes, send_now


class _TcpTransport:
    """Twisted's tcp.Connection as send_now sees it: a socket, its connection flags and
    its own write buffer (dataBuffer/offset/_tempDataLen)."""

    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.connected = True
        self.disconnecting = False
        self._writeDisconnected = False
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._tempDataLen += len(data)


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


@pytest.mark.parametrize("length, header", [(5, b"\x81\x05"), (300, b"\x81\x7e\x01\x2c"), (70_000, b"\x81\x7f" + struct.pack("!Q", 70_000))])
def test_a_text_frame_is_final_unmasked_with_the_shortest_length(length, header):
    payload = b"x" * length
    assert frame_bytes(payload, binary=False) == header + payload


def test_a_binary_frame_has_the_binary_opcode():
    assert frame_bytes(b"\x00\x01", binary=True) == b"\x82\x02\x00\x01"


def test_with_nothing_queued_the_frame_goes_straight_to_the_socket(pair):
    server, client = pair
    transport = _TcpTransport(server)
    send_now(transport, b"\x81\x02hi")
    assert client.recv(16) == b"\x81\x02hi"
    assert transport.written == []


def test_while_twisted_holds_bytes_the_frame_queues_behind_them(pair):
    server, client = pair
    transport = _TcpTransport(server)
    transport.write(b"earlier")  # Twisted still holds these for the socket
    send_now(transport, b"later")
    assert transport.written == [b"earlier", b"later"]
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(16)  # nothing overtook what Twisted holds


def test_what_the_kernel_does_not_take_is_left_to_twisted(pair):
    server, client = pair
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = _TcpTransport(server)
    data = bytes(range(256)) * 20_000  # far more than the socket buffers take
    send_now(transport, data)
    assert len(transport.written) == 1
    taken = len(data) - len(transport.written[0])
    assert 0 < taken < len(data)
    assert transport.written[0] == data[taken:]


@pytest.mark.parametrize("flag, value", [("connected", False), ("disconnecting", True), ("_writeDisconnected", True), ("TLS", True)])
def test_a_closing_or_tls_transport_gets_the_frame_through_its_write(pair, flag, value):
    server, _client = pair
    transport = _TcpTransport(server)
    setattr(transport, flag, value)
    send_now(transport, b"frame")
    assert transport.written == [b"frame"]
