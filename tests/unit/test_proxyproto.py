"""proxyproto.py: the PROXY protocol preamble (v1, v2)."""
from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver import proxyproto
from evserver.proxyproto import (
    V2_SIGNATURE,
    Preamble,
    PreambleParser,
    ProxyError,
    check_start,
)

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def v2(command: int = 1, family: int = 0x11, block: bytes = b"", version: int = 2,
       length: int | None = None) -> bytes:
    """A v2 header: signature, version/command, family, big-endian length, block."""
    size = len(block) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", size) + block


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack("!HH", sport, dport))


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + struct.pack("!HH", sport, dport))


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


TLVS = tlv(0x01, b"h2") + tlv(0x04, b"") + tlv(0x05, b"unique-id")  # ALPN, NOOP, UNIQUE_ID


def feed_whole(data: bytes) -> Preamble | None:
    return PreambleParser().feed(data)


def feed_bytewise(data: bytes) -> Preamble | None:
    """Feeds one byte at a time; the preamble may only complete on the last byte fed."""
    parser = PreambleParser()
    for i in range(len(data)):
        result = parser.feed(data[i:i + 1])
        if result is not None:
            return Preamble(result.version, result.local, result.client, result.client_port,
                            result.rest + data[i + 1:])
    return None


def parse(data: bytes) -> Preamble:
    """Whole and byte-by-byte feeding agree; returns the preamble."""
    whole, bytewise = feed_whole(data), feed_bytewise(data)
    assert whole is not None
    assert whole == bytewise
    return whole


# --- v1 -----------------------------------------------------------------------------------

def test_v1_tcp4() -> None:
    """A TCP4 line gives the source address and port; the request after it is kept."""
    got = parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n" + REQUEST)
    assert got == Preamble(1, False, "203.0.113.7", 56324, REQUEST)


def test_v1_tcp6_is_compressed_and_mapped_is_ipv4() -> None:
    """TCP6 addresses come back canonical, without brackets; IPv4-mapped become IPv4."""
    got = parse(b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 0\r\n")
    assert (got.client, got.client_port, got.local, got.rest) == ("2001:db8::1", 65535, False, b"")
    assert parse(b"PROXY TCP6 ::ffff:198.51.100.2 ::1 1 2\r\n").client == "198.51.100.2"


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n",
                                  b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
                                  b"PROXY UNKNOWN whatever \xff the balancer says\r\n"])
def test_v1_unknown_is_local(line: bytes) -> None:
    """UNKNOWN (and anything after it) means: keep the socket's own peer address."""
    assert parse(line + CLIENT_HELLO) == Preamble(1, True, None, None, CLIENT_HELLO)


def test_v1_line_of_exactly_107_bytes_is_accepted() -> None:
    """107 bytes including CRLF is the limit, and the limit itself is allowed."""
    line = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(line) == 107
    assert parse(line + b"rest").rest == b"rest"
    with pytest.raises(ProxyError):
        feed_whole(line[:-2] + b"x\r\n")


def test_v1_zero_ports_and_addresses_are_valid() -> None:
    """A single "0" is the number zero, not a heading zero."""
    assert parse(b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n").client_port == 0


MALFORMED_V1 = [
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443" + b" " * 70 + b"\r\n",  # over 107 bytes
    b"PROXY UNKNOWN " + b"x" * 200,  # no CRLF within 107
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\n",  # lone LF
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324\r443\r\n",  # lone CR
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\rGET",  # CR without LF
    b"PROXY UNKNOWN a\rb\r\n",  # lone CR even where the rest is ignored
    b"proxy TCP4 203.0.113.7 10.0.0.1 56324 443\r\n",  # bad signature
    b"PROXY  TCP4 203.0.113.7 10.0.0.1 56324 443\r\n",  # two spaces
    b"PROXY TCP5 203.0.113.7 10.0.0.1 56324 443\r\n",  # unknown protocol
    b"PROXY UNKNOWNX\r\n",
    b"PROXY \r\n",
    b"PROXY TCP4 256.0.113.7 10.0.0.1 56324 443\r\n",  # octet out of range
    b"PROXY TCP4 203.0.113.07 10.0.0.1 56324 443\r\n",  # heading zero
    b"PROXY TCP4 203.0.113 10.0.0.1 56324 443\r\n",  # three octets
    b"PROXY TCP4 203.0.113.7 10.0.0.1.5 56324 443\r\n",  # bad destination
    b"PROXY TCP4 ::1 10.0.0.1 56324 443\r\n",  # IPv6 in TCP4
    b"PROXY TCP6 203.0.113.7 ::1 56324 443\r\n",  # IPv4 in TCP6
    b"PROXY TCP6 fe80::1%eth0 ::1 56324 443\r\n",  # scope id
    b"PROXY TCP6 [::2] ::1 56324 443\r\n",  # brackets
    b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",  # port too big
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 65536\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 0443 443\r\n",  # heading zero
    b"PROXY TCP4 203.0.113.7 10.0.0.1 +443 443\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 -1 443\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 \xd9\xa1 443\r\n",  # non-ASCII digit
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443 \r\n",  # trailing space
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n",  # missing field
    b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443 80\r\n",  # extra field
]


@pytest.mark.parametrize("data", MALFORMED_V1)
def test_malformed_v1_raises(data: bytes) -> None:
    """Every malformed v1 line raises ProxyError, whether fed whole or byte by byte."""
    with pytest.raises(ProxyError):
        feed_whole(data)
    with pytest.raises(ProxyError):
        feed_bytewise(data)


def test_v1_without_crlf_waits_then_fails_at_107() -> None:
    """A partial line is not an error until 107 bytes have come without CRLF."""
    parser = PreambleParser()
    assert parser.feed(b"PROXY UNKNOWN " + b"x" * 92) is None  # 106 bytes
    with pytest.raises(ProxyError):
        parser.feed(b"x")


# --- v2 -----------------------------------------------------------------------------------

def test_v2_proxy_ipv4_with_tlvs() -> None:
    """TCP over IPv4: source address and port; TLVs are skipped, the rest kept."""
    data = v2(1, 0x11, inet4("203.0.113.7", "10.0.0.1", 56324, 443) + TLVS) + CLIENT_HELLO
    assert parse(data) == Preamble(2, False, "203.0.113.7", 56324, CLIENT_HELLO)


def test_v2_proxy_ipv6_with_tlvs() -> None:
    """TCP over IPv6, canonical text; an IPv4-mapped source becomes IPv4."""
    got = parse(v2(1, 0x21, inet6("2001:db8::7", "::1", 8080, 443) + TLVS) + REQUEST)
    assert got == Preamble(2, False, "2001:db8::7", 8080, REQUEST)
    got = parse(v2(1, 0x21, inet6("::ffff:198.51.100.2", "::1", 1, 2)))
    assert (got.client, got.rest) == ("198.51.100.2", b"")


@pytest.mark.parametrize("family, block", [(0x11, inet4("203.0.113.7", "10.0.0.1", 1, 2)),
                                           (0x21, inet6("2001:db8::7", "::1", 1, 2)),
                                           (0x00, b""),
                                           (0x77, b"\x01\x00\x05ab")])  # LOCAL ignores it all
def test_v2_local_is_a_health_check(family: int, block: bytes) -> None:
    """LOCAL: the balancer's own connection; addresses and TLVs are discarded."""
    assert parse(v2(0, family, block + TLVS) + REQUEST) == Preamble(2, True, None, None, REQUEST)


@pytest.mark.parametrize("family, size", [(0x00, 0), (0x12, 12), (0x22, 36), (0x31, 216),
                                          (0x32, 216)])
def test_v2_unspec_udp_and_unix_have_no_address(family: int, size: int) -> None:
    """UNSPEC, UDP and unix sockets are accepted but name no TCP client."""
    got = parse(v2(1, family, bytes(range(size % 256)) + bytes(size - size % 256) + TLVS)
                + REQUEST)
    assert got == Preamble(2, False, None, None, REQUEST)


def test_v2_truncated_then_completed() -> None:
    """Every proper prefix of a v2 header needs more bytes; the whole one completes."""
    data = v2(1, 0x11, inet4("203.0.113.7", "10.0.0.1", 56324, 443) + TLVS)
    for cut in range(len(data)):
        parser = PreambleParser()
        assert parser.feed(data[:cut]) is None
        got = parser.feed(data[cut:] + REQUEST)
        assert got is not None and got.client == "203.0.113.7" and got.rest == REQUEST


def test_v2_length_limit() -> None:
    """The block (addresses and TLVs) may be up to the limit, not one byte more."""
    addr = inet4("203.0.113.7", "10.0.0.1", 1, 2)
    padded = addr + tlv(0x04, bytes(4096 - len(addr) - 3))
    assert len(padded) == 4096
    assert parse(v2(1, 0x11, padded)).client == "203.0.113.7"
    with pytest.raises(ProxyError):  # refused as soon as the length is seen
        PreambleParser().feed(v2(1, 0x11, length=4097))
    with pytest.raises(ProxyError):
        PreambleParser(max_v2_length=100).feed(v2(1, 0x11, length=101))


MALFORMED_V2 = [
    b"\r\n\r\n\x00\r\nQUIT!" + v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2))[12:],  # signature
    v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), version=1),  # unknown version
    v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), version=3),
    v2(2, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)),  # unknown command
    v2(0xF, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)),
    v2(1, 0x13, inet4("1.2.3.4", "5.6.7.8", 1, 2)),  # unknown protocol
    v2(1, 0x41, inet4("1.2.3.4", "5.6.7.8", 1, 2)),  # unknown family
    v2(1, 0x01, b""),
    v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)[:8]),  # block shorter than IPv4 addresses
    v2(1, 0x21, inet4("1.2.3.4", "5.6.7.8", 1, 2)),  # IPv4-sized block for IPv6
    v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2) + b"\x01\x00"),  # truncated TLV header
    v2(1, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2) + b"\x01\x00\x05abc"),  # TLV overruns block
    v2(1, 0x11, length=0xFFFF),
]


@pytest.mark.parametrize("data", MALFORMED_V2)
def test_malformed_v2_raises(data: bytes) -> None:
    """Every malformed v2 header raises ProxyError, whether fed whole or byte by byte."""
    with pytest.raises(ProxyError):
        feed_whole(data + REQUEST)
    with pytest.raises(ProxyError):
        feed_bytewise(data + REQUEST)


# --- fast rejection -----------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"G", b"GET / HTTP/1.1\r\n", b"\x16", CLIENT_HELLO, b" ",
                                  b"\n", b"PU", b"PROXY\t", b"\r\n\r\n\x00\r\nQUIX",
                                  b"\r\r"])
def test_wrong_start_fails_at_once(data: bytes) -> None:
    """A first byte (or prefix) that starts neither preamble raises before more arrives."""
    with pytest.raises(ProxyError):
        check_start(data)
    with pytest.raises(ProxyError):
        PreambleParser().feed(data)


@pytest.mark.parametrize("data", [b"", b"P", b"PROXY", b"PROXY ", b"\r", b"\r\n\r\n\x00\r\nQUI"])
def test_valid_start_waits(data: bytes) -> None:
    """A prefix of either preamble is not rejected: the parser asks for more."""
    check_start(data)
    assert PreambleParser().feed(data) is None


def test_feed_after_completion_is_a_caller_bug() -> None:
    """Once the preamble is out, the parser takes no more bytes (they went into rest)."""
    parser = PreambleParser()
    assert parser.feed(b"PROXY UNKNOWN\r\n") is not None
    with pytest.raises(RuntimeError):
        parser.feed(REQUEST)


# --- properties ---------------------------------------------------------------------------

ports = st.integers(0, 65535)


def _client(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


@st.composite
def preambles(draw: st.DrawFn) -> tuple[bytes, Preamble]:
    """A valid preamble of any kind, the bytes after it, and what it must parse to."""
    rest = draw(st.binary(max_size=40))
    kind = draw(st.sampled_from(["v1", "v1-unknown", "v2", "v2-local"]))
    if kind == "v1-unknown":
        return b"PROXY UNKNOWN\r\n" + rest, Preamble(1, True, None, None, rest)
    six = draw(st.booleans())
    src, dst = draw(st.ip_addresses(v=6 if six else 4)), draw(st.ip_addresses(v=6 if six else 4))
    sport, dport = draw(ports), draw(ports)
    expected = Preamble(1 if kind == "v1" else 2, kind == "v2-local",
                        None if kind == "v2-local" else _client(src),
                        None if kind == "v2-local" else sport, rest)
    if kind == "v1":
        line = f"PROXY TCP{6 if six else 4} {src} {dst} {sport} {dport}\r\n".encode()
        return line + rest, expected
    tlvs = b"".join(tlv(t, v) for t, v in draw(st.lists(st.tuples(st.integers(0, 255),
                                                                    st.binary(max_size=20)),
                                                         max_size=3)))
    block = src.packed + dst.packed + struct.pack("!HH", sport, dport) + tlvs
    return v2(1 if kind == "v2" else 0, 0x21 if six else 0x11, block) + rest, expected


@settings(max_examples=150, deadline=None)
@given(preambles(), st.lists(st.integers(1, 30), max_size=10))
def test_any_chunking_equals_whole_feeding(case: tuple[bytes, Preamble],
                                           cuts: list[int]) -> None:
    """Byte by byte, in random chunks or whole: the same preamble and the same rest."""
    data, expected = case
    assert feed_whole(data) == expected
    assert feed_bytewise(data) == expected
    parser, at, result = PreambleParser(), 0, None
    for size in [*cuts, len(data)]:
        result = parser.feed(data[at:at + size])
        at += size
        if result is not None:
            break
    assert result is not None
    assert result.rest + data[at:] == expected.rest


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=60),
                 st.binary(max_size=40).map(lambda b: b"PROXY " + b),
                 st.binary(max_size=60).map(lambda b: V2_SIGNATURE + b)))
def test_arbitrary_bytes_only_raise_proxyerror(data: bytes) -> None:
    """Hostile input gives a preamble, a request for more, or ProxyError: nothing else."""
    try:
        whole = feed_whole(data)
    except ProxyError:
        with pytest.raises(ProxyError):
            feed_bytewise(data)
        return
    assert feed_bytewise(data) == whole


@pytest.mark.parametrize("data, part", [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\x16\x03\x01", 32),  # the ClientHello stays
    (b"PROXY TCP4 1.2.3.4", 18),  # the end not in sight: all of it
    (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes(12) + b"\x16\x03", 28),
    (b"\r\n\r\n\x00\r\nQU", 9),  # half a signature: all of it
])
def test_preamble_part_stops_where_the_preamble_ends(data: bytes, part: int) -> None:
    """Over TLS the connection reads only the preamble's bytes (peeked first): the rest of
    the packet belongs to OpenSSL."""
    assert proxyproto.preamble_part(data) == part
