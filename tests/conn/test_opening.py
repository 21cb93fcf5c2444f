"""Layer 2: the stage before HTTP (`evserver.opening.Opening`): a PROXY preamble read from a
scripted socket, and a real TLS handshake over a socketpair, stepped the way the
connection steps it (one step per readiness event)."""
from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from evserver.opening import READY, WANT_READ, WANT_WRITE, WRAP, Opening, OpeningFailed
from evserver.selfsigned import ensure_certificate

from .fakes import FakeSocket

V1 = b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443\r\n"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def step(opening: Opening, sock: FakeSocket) -> int:
    return opening.step(sock)  # type: ignore[arg-type]


def test_a_preamble_names_the_client_and_hands_on_the_rest() -> None:
    sock = FakeSocket()
    sock.feed(V1[:10])
    opening = Opening(proxy_protocol=True, tls=None)
    assert step(opening, sock) == WANT_READ  # half a preamble: wait for more
    sock.feed(V1[10:] + REQUEST)
    assert step(opening, sock) == READY
    assert (opening.client, opening.rest, opening.plain) == ("198.51.100.7", REQUEST, False)


def test_a_local_preamble_keeps_the_peer() -> None:
    sock = FakeSocket()
    sock.feed(b"PROXY UNKNOWN\r\n")
    opening = Opening(proxy_protocol=True, tls=None)
    assert step(opening, sock) == READY and opening.client is None


@pytest.mark.parametrize("data, reason", [
    (REQUEST, "bad PROXY preamble"),  # a client that is not a balancer
    (b"", "closed before its PROXY preamble"),
])
def test_no_preamble_fails_without_a_word(data: bytes, reason: str) -> None:
    sock = FakeSocket()
    sock.feed(data)
    with pytest.raises(OpeningFailed, match=reason):
        step(Opening(proxy_protocol=True, tls=None), sock)
    assert sock.sent == b""


def test_before_tls_only_the_preambles_bytes_are_read() -> None:
    """Behind a TCP balancer the preamble and the ClientHello may share a packet: the
    ClientHello's bytes stay in the socket for OpenSSL (peeked, then only the preamble read)."""
    hello = b"\x16\x03\x01\x02\x00\x01"
    sock = FakeSocket()
    sock.feed(V1 + hello)
    opening = Opening(proxy_protocol=True, tls=ssl.create_default_context())
    assert step(opening, sock) == WRAP
    assert list(sock.script) == [hello] and opening.client == "198.51.100.7"


def test_plain_http_on_the_tls_port_is_noticed_and_left_unread() -> None:
    sock = FakeSocket()
    sock.feed(REQUEST)
    opening = Opening(proxy_protocol=False, tls=ssl.create_default_context())
    assert step(opening, sock) == READY
    assert opening.plain and list(sock.script) == [REQUEST]  # peeked: HTTP reads it


def test_a_client_gone_before_the_handshake() -> None:
    sock = FakeSocket()
    sock.feed(b"")
    with pytest.raises(OpeningFailed, match="closed before the TLS handshake"):
        step(Opening(proxy_protocol=False, tls=ssl.create_default_context()), sock)


# -- a real handshake --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    cert, key, _ = ensure_certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.setblocking(False)
    client.settimeout(5)
    yield server, client
    server.close()
    client.close()


def drive(opening: Opening, sock: socket.socket) -> tuple[socket.socket, list[int]]:
    """Step the opening on each readiness event it asks for, as the connection does; the
    socket it ends with (wrapped) and the steps seen."""
    steps: list[int] = []
    for _ in range(50):
        result = opening.step(sock)
        steps.append(result)
        if result == READY:
            return sock, steps
        if result == WRAP:
            sock = opening.wrap(sock)
            continue
        want_write = result == WANT_WRITE
        assert want_write is opening.wants_write
        select.select([] if want_write else [sock], [sock] if want_write else [], [], 5)
    raise AssertionError(f"no handshake: {steps}")


def test_a_tls_handshake_driven_step_by_step(server_context: ssl.SSLContext,
                                             pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    answer: list[bytes] = []

    def talk() -> None:
        with client_context.wrap_socket(client, server_hostname="localhost") as tls:
            tls.sendall(REQUEST)
            answer.append(tls.recv(100))

    thread = threading.Thread(target=talk)
    thread.start()
    opening = Opening(proxy_protocol=False, tls=server_context)
    wrapped, steps = drive(opening, server)
    assert steps[0] in (WANT_READ, WRAP) and WRAP in steps and steps[-1] == READY
    assert isinstance(wrapped, ssl.SSLSocket) and not opening.plain
    wrapped.setblocking(True)
    assert wrapped.recv(100) == REQUEST  # HTTP begins on the wrapped socket
    wrapped.sendall(b"ok")
    thread.join(5)
    assert answer == [b"ok"]


def test_a_failed_handshake_fails_without_a_word(server_context: ssl.SSLContext,
                                                 pair: tuple[socket.socket, socket.socket]
                                                 ) -> None:
    server, client = pair
    client.sendall(b"\x16\x03\x01\x00\x05hello")  # a handshake record that is no ClientHello
    opening = Opening(proxy_protocol=False, tls=server_context)
    with pytest.raises(OpeningFailed, match="TLS handshake failed"):
        drive(opening, server)
