"""Sans-IO PROXY protocol preambles (HAProxy's proxy-protocol.txt, v1 and v2).

Owns: `PreambleParser`, `Preamble`, `ProxyError`, `check_start()`, `preamble_part()`.
Imports `addresses` (the canonical form of an address) and knows no socket or clock: the
connection's opening stage feeds received bytes to `PreambleParser.feed()` until it returns
a `Preamble`, then hands `Preamble.rest` (the start of the HTTP request or TLS ClientHello)
to the next layer.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .addresses import normalise, port_ok

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
        if not (port_ok(fields[4]) and port_ok(fields[5])):
            raise ProxyError("bad port in PROXY v1 line")
        return Preamble(1, False, normalise(src), int(fields[4]), rest)

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
        return Preamble(2, False, normalise(src), port, rest)


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
