"""Sans-IO PROXY protocol (HAProxy's proxy-protocol.txt, v1 and v2) and X-Forwarded-For.

Owns: `PreambleParser`, `Preamble`, `ProxyError`, `check_start()`, `forwarded_client()`,
`trusted()`. Imports nothing from evserver and knows no socket or clock: the connection feeds
received bytes to `PreambleParser.feed()` until it returns a `Preamble`, then hands
`Preamble.rest` (the start of the HTTP request or TLS ClientHello) to the next layer.
"""
from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

V1_PREFIX = b"PROXY "
V1_MAX = 107  # spec §2.1: the whole line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER = 16  # signature, version/command, family/protocol, length
V2_MAX_LENGTH = 4096  # addresses and TLVs; real balancers send well under 1 KiB
# Spec §2.2, byte 14 -> (address block size, whether it names a TCP client we can use).
_V2_FAMILIES: dict[int, tuple[int, bool]] = {
    0x00: (0, False),                    # UNSPEC
    0x11: (12, True), 0x12: (12, False),  # TCP/UDP over IPv4
    0x21: (36, True), 0x22: (36, False),  # TCP/UDP over IPv6
    0x31: (216, False), 0x32: (216, False),  # unix stream/datagram
}
# Spec §2.1: a decimal port in [0..65535] with no heading zero ("0" itself is zero).
_PORT = re.compile(r"0|[1-9][0-9]{0,4}")
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyError(ValueError):
    """A malformed or unacceptable PROXY preamble; the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Preamble:
    """What the balancer said about the connection.

    `client` is None when there is no usable client address (v1 UNKNOWN, v2 LOCAL, UNSPEC,
    UDP or unix families): the connection then keeps the socket's own peer address.
    """

    version: int
    local: bool  # v2 LOCAL or v1 UNKNOWN: the balancer's own health check
    client: str | None
    client_port: int | None
    rest: bytes  # bytes received after the preamble, to be parsed as the next layer


def check_start(data: bytes) -> None:
    """Raise ProxyError unless `data` can still begin a v1 or v2 preamble (fails at the
    first wrong byte, so a plain HTTP request or ClientHello to this port is refused fast)."""
    if not (V1_PREFIX.startswith(data[:len(V1_PREFIX)])
            or V2_SIGNATURE.startswith(data[:len(V2_SIGNATURE)])):
        raise ProxyError("no PROXY protocol preamble")


def preamble_part(data: bytes) -> int:
    """How many leading bytes of `data` (peeked, not yet read) belong to the preamble: up
    to its end when that is in sight (a v1 line's CRLF, a v2 header's length), else all of
    them. Reading only those leaves a TLS ClientHello sent in the same packet to OpenSSL."""
    if V2_SIGNATURE.startswith(data[:len(V2_SIGNATURE)]):
        if len(data) >= V2_HEADER:
            return min(len(data), V2_HEADER + int.from_bytes(data[14:16], "big"))
        return len(data)
    end = data.find(b"\r\n")
    return len(data) if end < 0 else end + 2


def _port_ok(text: str) -> bool:
    return _PORT.fullmatch(text) is not None and int(text) <= 65535


def _normalise(ip: _IPAddress) -> str:
    """The textual form callers compare and log: IPv4-mapped IPv6 becomes plain IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class PreambleParser:
    """Incremental parser for one connection's PROXY preamble (v1 or v2)."""

    __slots__ = ("_buf", "_done", "max_v2_length")

    def __init__(self, max_v2_length: int = V2_MAX_LENGTH) -> None:
        self._buf = bytearray()
        self._done = False
        self.max_v2_length = max_v2_length

    def feed(self, data: bytes) -> Preamble | None:
        """Add received bytes; a Preamble once complete, None while more are needed."""
        if self._done:
            raise RuntimeError("the preamble was already parsed")
        self._buf += data
        buf = self._buf
        check_start(bytes(buf[:len(V2_SIGNATURE)]))
        if buf[:1] == b"P":
            result = self._v1(buf)
        else:
            result = self._v2(buf)
        if result is not None:
            self._done = True
            self._buf = bytearray()  # drop the copy: rest now owns the bytes
        return result

    @staticmethod
    def _v1(buf: bytearray) -> Preamble | None:
        end = buf.find(b"\n", 0, V1_MAX)
        if end < 0:
            if b"\r" in buf[:len(buf) - 1] or len(buf) >= V1_MAX:
                # A CR not followed by LF, or 107 bytes without a line end (spec §2.1).
                raise ProxyError("PROXY v1 line without CRLF")
            return None
        line = bytes(buf[:end])
        if not line.endswith(b"\r") or b"\r" in line[:-1]:
            raise ProxyError("PROXY v1 line without CRLF")  # a lone LF or CR is not tolerated
        rest = bytes(buf[end + 1:])
        # latin-1 cannot fail; the address and port checks below accept ASCII only.
        fields = line[:-1].decode("latin-1").split(" ")
        if fields[1] == "UNKNOWN":  # the receiver ignores whatever follows (spec §2.1)
            return Preamble(1, True, None, None, rest)
        if fields[1] not in ("TCP4", "TCP6"):
            raise ProxyError("unknown PROXY v1 protocol")
        if len(fields) != 6:
            raise ProxyError("PROXY v1 line has the wrong number of fields")
        kind = ipaddress.IPv4Address if fields[1] == "TCP4" else ipaddress.IPv6Address
        try:  # the stdlib rejects heading zeroes in IPv4 (octal confusion), as the spec does
            src, _ = kind(fields[2]), kind(fields[3])
        except ValueError:
            raise ProxyError("bad address in PROXY v1 line") from None
        if "%" in fields[2] or "%" in fields[3]:
            raise ProxyError("bad address in PROXY v1 line")  # a scope id is no canonical form
        if not (_port_ok(fields[4]) and _port_ok(fields[5])):
            raise ProxyError("bad port in PROXY v1 line")
        return Preamble(1, False, _normalise(src), int(fields[4]), rest)

    def _v2(self, buf: bytearray) -> Preamble | None:
        if len(buf) < V2_HEADER:
            return None
        ver_cmd, family, length = struct.unpack_from("!BBH", buf, len(V2_SIGNATURE))
        if ver_cmd >> 4 != 2:
            raise ProxyError("unknown PROXY protocol version")
        command = ver_cmd & 0x0F
        if command > 1:
            raise ProxyError("unknown PROXY v2 command")
        if length > self.max_v2_length:
            raise ProxyError("PROXY v2 header too long")
        # LOCAL ignores the family (spec §2.2), PROXY must name one we know.
        size, usable = _V2_FAMILIES.get(family, (-1, False)) if command else (0, False)
        if size < 0:
            raise ProxyError("unknown PROXY v2 address family")
        if length < size:
            raise ProxyError("PROXY v2 address block too short")
        if len(buf) < V2_HEADER + length:
            return None  # nothing is parsed before the whole block is here
        block = bytes(buf[V2_HEADER:V2_HEADER + length])
        rest = bytes(buf[V2_HEADER + length:])
        if command == 0:  # LOCAL: the whole block is discarded unread (spec §2.2)
            return Preamble(2, True, None, None, rest)
        _check_tlvs(block[size:])
        if not usable:
            return Preamble(2, False, None, None, rest)
        half = (size - 4) // 2
        src = ipaddress.ip_address(block[:half])
        (port,) = struct.unpack_from("!H", block, 2 * half)
        return Preamble(2, False, _normalise(src), port, rest)


def _check_tlvs(tlvs: bytes) -> None:
    """The TLVs are skipped, but each must fit in the block the length announced."""
    i = 0
    while i < len(tlvs):
        if i + 3 > len(tlvs):
            raise ProxyError("truncated PROXY v2 TLV")
        (size,) = struct.unpack_from("!H", tlvs, i + 1)
        i += 3 + size
        if i > len(tlvs):
            raise ProxyError("truncated PROXY v2 TLV")


@lru_cache(maxsize=64)
def _networks(networks: tuple[str, ...]) -> tuple[_Network, ...]:
    # strict=False: "10.1.2.3/8" means 10.0.0.0/8, as nginx's set_real_ip_from reads it.
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)


def parse_networks(networks: Sequence[str]) -> None:
    """Raise ValueError if any entry is not an address or CIDR (for config validation)."""
    _networks(tuple(networks))


@lru_cache(maxsize=1024)
def _trusted(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in net for net in _networks(networks))


def trusted(address: str, networks: Sequence[str]) -> bool:
    """Whether `address` lies in one of `networks` (CIDR strings or bare addresses)."""
    return _trusted(address, tuple(networks))


def _forwarded_entry(entry: str) -> str | None:
    """One X-Forwarded-For element as a normalised address, or None if it is garbage.
    Accepts what real proxies write: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]", "[v6]:port"."""
    host = entry
    if entry.startswith("["):
        host, sep, tail = entry[1:].partition("]")
        if not sep or (tail and not (tail[0] == ":" and _port_ok(tail[1:]))):
            return None
    elif entry.count(":") == 1:  # IPv4 with a port; bare IPv6 has at least two colons
        host, _, port = entry.partition(":")
        if not _port_ok(port):
            return None
    if "%" in host:
        return None
    try:
        return _normalise(ipaddress.ip_address(host))
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
    if not _trusted(peer, networks):
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
        if not _trusted(address, networks):
            break
    return found
