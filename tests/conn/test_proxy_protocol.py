"""Layer 2: --proxy-protocol in the connection state machine (PREAMBLE before IDLE), and the
rules that use the client's address: X-Forwarded-For from trusted proxies, --allow, --deny."""
from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import pytest

from evserver.phases import Phase
from tests.wire import request

from .rig import PEER, Rig

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
TRUSTED = (PEER + "/32",)


def v2(command: int, family: int, addresses: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(addresses)) \
        + addresses


def v2_tcp4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return v2(1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
              + struct.pack("!HH", sport, dport))


def logged_client(rig: Rig) -> bytes:
    (line,) = rig.owner.access_log.lines
    return line.split(b" ", 1)[0]


@pytest.mark.parametrize("preamble, client", [
    (b"PROXY TCP4 198.51.100.7 192.0.2.1 51000 80\r\n", b"198.51.100.7"),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 80\r\n", b"2001:db8::7"),
    (v2_tcp4("198.51.100.8", "192.0.2.1", 51000, 80), b"198.51.100.8"),
    (b"PROXY UNKNOWN\r\n", PEER.encode()),  # a health check: the balancer's own address
    (v2(0, 0x00, b""), PEER.encode()),  # v2 LOCAL
])
def test_preamble_then_request_logs_the_real_client(
        make_rig: Callable[..., Rig], preamble: bytes, client: bytes) -> None:
    """The preamble and the request in one read: answered, and logged under the address
    the balancer named."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    assert rig.phase is Phase.OPENING
    rig.serve(preamble + request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [200]
    assert logged_client(rig) == client and rig.phase is Phase.IDLE


def test_preamble_split_anywhere_still_works(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    data = v2_tcp4("198.51.100.9", "192.0.2.1", 1, 2) + request("/hello.txt")
    rig.receive(*[data[i:i + 5] for i in range(0, len(data), 5)])
    rig.settle()
    assert [r.status for r in rig.replies()] == [200]
    assert logged_client(rig) == b"198.51.100.9"


@pytest.mark.parametrize("junk", [request("/hello.txt"),
                                  b"PROXY TCP4 not-an-ip 1.2.3.4 1 2\r\n" + request("/hello.txt"),
                                  b"PROXY " + b"x" * 200])
def test_a_bad_preamble_is_closed_silently(make_rig: Callable[..., Rig], junk: bytes) -> None:
    """Plain HTTP, a malformed line, an overlong one: closed, not a byte answered."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    rig.serve(junk)
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b"" and rig.sock.closed


def test_untrusted_peer_is_closed_before_reading(make_rig: Callable[..., Rig]) -> None:
    """--proxy-protocol accepts preambles only from --trusted-proxy addresses."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=("10.0.0.0/8",))
    assert rig.phase is Phase.CLOSED and rig.sock.closed and rig.sock.recv_calls == 0


def test_a_preamble_that_never_completes_times_out_silently(make_rig: Callable[..., Rig]) -> None:
    """The preamble has --handshake-timeout (3 s here), not the header timeout (5 s)."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED, handshake_timeout=3.0)
    rig.receive(b"PROXY TCP4 ")
    rig.loop.advance(2.9)
    assert rig.phase is Phase.OPENING
    rig.loop.advance(0.2)
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b""


def test_after_the_preamble_the_request_has_the_header_timeout(
        make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED, handshake_timeout=3.0)
    rig.receive(b"PROXY UNKNOWN\r\n")
    rig.loop.advance(2.0)
    rig.receive(b"GET / HTTP/1.1\r\n")  # a head begun: the header timeout (5 s) from here
    rig.loop.advance(4.0)
    assert rig.phase is Phase.HEAD
    rig.loop.advance(1.1)
    assert [r.status for r in rig.replies()] == [408]


# -- X-Forwarded-For, --allow, --deny -------------------------------------------------------

@pytest.mark.parametrize("trusted, header, client", [
    (TRUSTED, "X-Forwarded-For: 6.6.6.6, 198.51.100.20\r\n", b"198.51.100.20"),
    (TRUSTED + ("10.0.0.0/8",), "X-Forwarded-For: 198.51.100.21, 10.1.2.3\r\n",
     b"198.51.100.21"),  # the rightmost untrusted entry
    ((), "X-Forwarded-For: 198.51.100.22\r\n", PEER.encode()),  # no trusted proxy: ignored
    (("10.0.0.0/8",), "X-Forwarded-For: 198.51.100.23\r\n", PEER.encode()),  # peer untrusted
])
def test_x_forwarded_for_only_from_trusted_proxies(
        make_rig: Callable[..., Rig], trusted: tuple[str, ...], header: str,
        client: bytes) -> None:
    rig = make_rig(trusted_proxies=trusted)
    rig.serve(request("/hello.txt", headers=header))
    assert logged_client(rig) == client


@pytest.mark.parametrize("rules, status", [
    (dict(allow=(PEER + "/32",)), 200), (dict(allow=("10.0.0.0/8",)), 403),
    (dict(deny=("203.0.113.0/24",)), 403), (dict(deny=("10.0.0.0/8",)), 200),
    (dict(allow=("203.0.113.0/24",), deny=(PEER + "/32",)), 403),  # deny wins
])
def test_allow_and_deny_by_client_address(make_rig: Callable[..., Rig],
                                          rules: dict[str, tuple[str, ...]],
                                          status: int) -> None:
    rig = make_rig(**rules)
    rig.serve(request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [status]


def test_deny_applies_to_the_forwarded_client(make_rig: Callable[..., Rig]) -> None:
    """Behind a trusted proxy the rules judge the real client, not the proxy."""
    rig = make_rig(trusted_proxies=TRUSTED, deny=("198.51.100.0/24",))
    rig.serve(request("/hello.txt", headers="X-Forwarded-For: 198.51.100.30\r\n")
              + request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [403, 200]
