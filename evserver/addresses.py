"""Client addresses and the rules that use them: networks, trusted proxies, X-Forwarded-For.

Owns: `in_networks()` (--allow, --deny, --status-allow, --trusted-proxy), `forwarded_client()`
(the X-Forwarded-For walk), `normalise()` and `port_ok()`. Imports nothing from evserver;
pure functions of strings, memoized where a server asks the same question per request.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache

# A decimal port in [0..65535] with no heading zero ("0" itself is zero): PROXY v1 §2.1.
_PORT = re.compile(r"0|[1-9][0-9]{0,4}")
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def port_ok(text: str) -> bool:
    """A decimal port in [0..65535] with no heading zero (PROXY v1 and X-Forwarded-For)."""
    return _PORT.fullmatch(text) is not None and int(text) <= 65535


def normalise(ip: _IPAddress) -> str:
    """The textual form callers compare and log: IPv4-mapped IPv6 becomes plain IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


@lru_cache(maxsize=64)
def _networks(networks: tuple[str, ...]) -> tuple[_Network, ...]:
    # strict=False: "10.1.2.3/8" means 10.0.0.0/8, as nginx's set_real_ip_from reads it.
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)


@lru_cache(maxsize=1024)
def _in_networks(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in net for net in _networks(networks))


def in_networks(address: str, networks: Sequence[str]) -> bool:
    """Whether `address` lies in one of `networks` (CIDR strings or bare addresses); an
    IPv4-mapped IPv6 address counts as the IPv4 one. Memoized: the few addresses a server
    sees repeat."""
    return _in_networks(address, tuple(networks))


def _forwarded_entry(entry: str) -> str | None:
    """One X-Forwarded-For element as a normalised address, or None if it is garbage.
    Accepts what real proxies write: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]", "[v6]:port"."""
    host = entry
    if entry.startswith("["):
        host, sep, tail = entry[1:].partition("]")
        if not sep or (tail and not (tail[0] == ":" and port_ok(tail[1:]))):
            return None
    elif entry.count(":") == 1:  # IPv4 with a port; bare IPv6 has at least two colons
        host, _, port = entry.partition(":")
        if not port_ok(port):
            return None
    if "%" in host:
        return None
    try:
        return normalise(ipaddress.ip_address(host))
    except ValueError:
        return None


def forwarded_client(peer: str, header_values: list[bytes], trusted: Sequence[str]) -> str:
    """The client address from X-Forwarded-For, believed only as far as trusted proxies go.

    Walks the addresses from the right (the one the nearest proxy appended), skips trusted
    ones and returns the first untrusted one: anything left of it was written by the
    client and may be forged. If all are trusted, the leftmost. A garbage element ends the
    walk at the last good address (or the peer). An untrusted peer's header is ignored.
    """
    networks = tuple(trusted)
    if not _in_networks(peer, networks):
        return peer
    elements = b",".join(header_values).decode("latin-1").split(",")
    found = peer
    for element in reversed(elements):
        element = element.strip(" \t")
        if not element:
            continue  # RFC 9110 §5.6.1: empty list elements are ignored
        address = _forwarded_entry(element)
        if address is None:
            break
        found = address
        if not _in_networks(address, networks):
            break
    return found
