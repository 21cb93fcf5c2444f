"""addresses.py: networks, the X-Forwarded-For walk, canonical addresses."""
from __future__ import annotations

import pytest

from evserver import addresses
from evserver.addresses import forwarded_client, in_networks

LB = ["10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.1"]


@pytest.mark.parametrize("values, expected", [
    ([b"203.0.113.7"], "203.0.113.7"),
    ([b"1.1.1.1, 203.0.113.7"], "203.0.113.7"),  # the client's own leftmost entry is ignored
    ([b"1.1.1.1, 203.0.113.7, 10.0.0.2, 10.9.9.9"], "203.0.113.7"),  # trusted chain skipped
    ([b"10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all trusted: the leftmost
    ([b"1.1.1.1", b"203.0.113.7, 10.0.0.2"], "203.0.113.7"),  # header lines in order
    ([b"203.0.113.7,,10.0.0.2 , "], "203.0.113.7"),  # empty elements and whitespace
    ([b"203.0.113.7:5555"], "203.0.113.7"),  # IPv4 with a port
    ([b"[2001:db8::1]:443"], "2001:db8::1"),  # IPv6 in brackets with a port
    ([b"[2001:DB8::1]"], "2001:db8::1"),
    ([b"2001:db8::1"], "2001:db8::1"),
    ([b"::ffff:203.0.113.7"], "203.0.113.7"),  # mapped: plain IPv4
    ([b"203.0.113.7, [2001:db8:ffff::5]:80"], "203.0.113.7"),  # trusted IPv6 hop
    ([b"203.0.113.7, unknown, 10.0.0.2"], "10.0.0.2"),  # garbage ends the walk
    ([b"203.0.113.7, 10.0.0.2, _hidden"], "127.0.0.1"),  # garbage rightmost: the peer
    ([b"203.0.113.7, 10.0.0.2:080"], "127.0.0.1"),  # heading zero in the port
    ([b"203.0.113.7, 10.0.0.2:65536"], "127.0.0.1"),
    ([b"[2001:db8::1"], "127.0.0.1"),  # unclosed bracket
    ([b"[2001:db8::1]x"], "127.0.0.1"),
    ([b"fe80::1%eth0"], "127.0.0.1"),
    ([b"203.0.113.7\xff"], "127.0.0.1"),
    ([b""], "127.0.0.1"),
    ([], "127.0.0.1"),
])
def test_forwarded_client_from_trusted_peer(values: list[bytes], expected: str) -> None:
    """The rightmost untrusted address, as far as the trusted chain and good syntax go."""
    assert forwarded_client("127.0.0.1", values, LB) == expected


def test_forwarded_client_ignores_header_from_untrusted_peer() -> None:
    """Anyone can send X-Forwarded-For: from an untrusted peer it changes nothing."""
    assert forwarded_client("198.51.100.9", [b"203.0.113.7"], LB) == "198.51.100.9"
    assert forwarded_client("198.51.100.9", [b"203.0.113.7"], []) == "198.51.100.9"


def test_forwarded_client_peer_as_mapped_ipv6() -> None:
    """A dual-stack socket's ::ffff:10.x peer is the trusted IPv4 balancer."""
    assert forwarded_client("::ffff:10.1.2.3", [b"203.0.113.7"], LB) == "203.0.113.7"


def test_in_networks() -> None:
    """CIDR, bare addresses, IPv6 and mapped IPv4 match; non-addresses do not."""
    assert in_networks("10.200.1.1", LB) and in_networks("127.0.0.1", LB)
    assert in_networks("2001:db8:ffff:1::1", LB) and in_networks("::ffff:10.0.0.1", LB)
    assert not in_networks("11.0.0.1", LB) and not in_networks("127.0.0.2", LB)
    assert not in_networks("2001:db8::1", LB) and not in_networks("not-an-ip", LB)
    assert not in_networks("10.0.0.1", [])
    assert in_networks("10.1.2.3", ["10.1.2.99/24"])  # host bits are ignored, as nginx does


def test_in_networks_is_cached() -> None:
    """The per-connection check is answered from a cache the second time."""
    addresses._in_networks.cache_clear()
    in_networks("10.7.7.7", LB)
    in_networks("10.7.7.7", LB)
    assert addresses._in_networks.cache_info().hits == 1
