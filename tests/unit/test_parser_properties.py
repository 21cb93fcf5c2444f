"""Grammar-driven properties of `RequestParser` (RFC 9112), beyond those in test_http11.py.

Requests are generated from a grammar of valid constructs (the four target forms, OWS,
bare-LF line ends, empty lines before the request line, Content-Length and chunked bodies
with extensions and trailers) and of forbidden ones (bare CR, NUL and other controls, obs-fold,
whitespace before a colon, TE with CL, differing CL, non-token methods, HTTP/2.0, oversized
parts, broken chunked framing). The properties:

- a forbidden construct is never accepted: the parser raises its exact status (after the
  head, for a broken body), and nothing pipelined behind it comes out, whatever the split;
- valid requests, pipelined with random bodies, come out exactly and in order, whatever the
  split, leaving nothing buffered.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver.http11 import HTTPError, Request, RequestParser

LIMITS = {"max_head": 2048, "max_request_line": 256, "max_headers": 16, "max_field": 256,
          "max_body": 1024}
PROPS = settings(max_examples=80, deadline=None)
PER_DEFECT = settings(max_examples=10, deadline=None)

TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NOT_TCHAR = bytes(b for b in range(256) if b not in TCHAR and b != 0x0A)  # LF would end the line
CTL = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])  # controls but HTAB
VALUE_CTL = bytes(b for b in CTL if b not in b"\r\n")  # NUL and the rest; CR/LF have own cases
VCHAR_OBS = bytes([*range(0x21, 0x7F), *range(0x80, 0x100)])
RESERVED = {b"host", b"content-length", b"transfer-encoding", b"connection"}

EOL = st.sampled_from([b"\r\n", b"\n"])
token = st.binary(min_size=1, max_size=8).map(lambda b: bytes(TCHAR[x % len(TCHAR)] for x in b))
name = token.filter(lambda n: n.lower() not in RESERVED)
visible = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(VCHAR_OBS[x % len(VCHAR_OBS)] for x in b))
ows = st.sampled_from([b"", b" ", b"\t", b"  \t"])
# A field value: visible characters with inner SP/HTAB, maybe empty.
value = st.lists(visible, max_size=3).map(b" ".join)
# Strategies built once (not inside the composites: validating them each draw is slow).
CHUNK_EXT = st.sampled_from([b"", b";a", b";a=b", b' ; n="q v"', b";x=1;y", b"\t;z"])
LEADING_ZEROS = st.integers(0, 3)
HOST_NAME = st.sampled_from([b"Host", b"host", b"HOST"])
HOST_VALUE = st.sampled_from([b"example.com", b"example.com:8080", b"[::1]:80", b""])
CONNECTION = st.sampled_from([None, b"close", b"keep-alive", b"Upgrade, Close", b"x",
                              b"keep-alive, close"])
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.4"])
PREFIX = st.sampled_from([b"", b"\r\n", b"\n", b"\r\n\n"])
BODY_KIND = st.sampled_from(["none", "length", "chunked"])
TE_CHUNKED = st.sampled_from([b"chunked", b"Chunked", b" CHUNKED "])
AT = st.integers(0, 9)
TARGET_FORM = st.sampled_from(["origin", "absolute", "asterisk", "authority"])
QUERY = st.sampled_from([b"", b"?q=1&r=%20", b"?"])


@st.composite
def field_line(draw: st.DrawFn, names: st.SearchStrategy[bytes] = name) -> bytes:
    return draw(names) + b":" + draw(ows) + draw(value) + draw(ows)


@st.composite
def target(draw: st.DrawFn) -> bytes:
    path = b"/" + b"/".join(draw(st.lists(visible.map(lambda v: v.replace(b"?", b"")),
                                          max_size=3)))
    query = draw(QUERY)
    form = draw(TARGET_FORM)
    if form == "absolute":
        return b"http://example.com:8080" + path + query
    if form == "asterisk":
        return b"*"
    if form == "authority":
        return b"example.com:443"
    return path + query


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` in chunked framing: hex sizes of either case with leading zeros, extensions
    with BWS and quoted strings, bare-LF or CRLF line ends, trailer fields."""
    out = []
    i = 0
    while i < len(data):
        n = draw(st.integers(1, len(data) - i))
        size = b"0" * draw(LEADING_ZEROS) + b"%x" % n
        size = size.upper() if draw(st.booleans()) else size
        out += [size, draw(CHUNK_EXT), draw(EOL), data[i:i + n], draw(EOL)]
        i += n
    out += [b"0" * (1 + draw(LEADING_ZEROS)), draw(CHUNK_EXT), draw(EOL)]
    for line in draw(st.lists(field_line(), max_size=2)):
        out += [line, draw(EOL)]
    out.append(draw(EOL))
    return b"".join(out)


# Body bytes that look like framing or like another request must stay body bytes.
body_data = st.lists(st.sampled_from([b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", b"0\r\n\r\n",
                                      b"\r\n", b"\n", b"5\r\n"]) | st.binary(max_size=8),
                     max_size=5).map(b"".join)


@dataclass
class Message:
    """One request on the wire, in parts that a defect may change before rendering."""

    prefix: bytes
    method: bytes
    target: bytes
    version: bytes
    fields: list[bytes]
    eols: list[bytes]
    body: bytes = b""
    body_defect: bool = False  # the head is valid (and returned); the body is not

    def render(self) -> bytes:
        lines = [b"%s %s %s" % (self.method, self.target, self.version), *self.fields, b""]
        eols = (self.eols * (len(lines) // len(self.eols) + 1))[:len(lines)]
        return self.prefix + b"".join(a + b for a, b in zip(lines, eols, strict=True)) + self.body

    def request(self) -> Request:
        """The Request a valid head gives (a reference reading of its own valid fields)."""
        headers = []
        for line in self.fields:
            key, _, val = line.partition(b":")
            headers.append((key.lower(), val.strip(b" \t")))
        major_minor = self.version[5:]
        version = b"HTTP/1.0" if major_minor == b"1.0" else b"HTTP/1.1"
        tokens = {t.strip(b" \t").lower() for k, v in headers if k == b"connection"
                  for t in v.split(b",")}
        keep = (b"close" not in tokens
                and (b"keep-alive" in tokens or version == b"HTTP/1.1"))
        return Request(self.method, self.target, version, tuple(headers), keep)

    def set_framing(self, lines: Sequence[bytes], body: bytes, at: int | None = None) -> None:
        """Replace the framing headers and the body."""
        self.fields = [f for f in self.fields
                       if f.split(b":")[0].lower() not in (b"content-length",
                                                           b"transfer-encoding")]
        pos = len(self.fields) if at is None else at % (len(self.fields) + 1)
        self.fields[pos:pos] = lines
        self.body = body

    def be_http11(self) -> None:
        """Make it HTTP/1.1 with one Host."""
        self.version = b"HTTP/1.1"
        if not any(f.lower().startswith(b"host:") for f in self.fields):
            self.fields.insert(0, b"Host: example.com")


@st.composite
def valid_message(draw: st.DrawFn) -> Message:
    """A valid request with a random body (none, Content-Length or chunked)."""
    version = draw(VERSIONS)
    fields = draw(st.lists(field_line(), max_size=4))
    if version != b"HTTP/1.0" or draw(st.booleans()):
        host = draw(HOST_NAME) + b":" + draw(ows) + draw(HOST_VALUE) + draw(ows)
        fields.insert(draw(st.integers(0, len(fields))), host)
    conn = draw(CONNECTION)
    if conn is not None:
        fields.append(b"Connection: " + conn)
    msg = Message(prefix=draw(PREFIX),
                  method=draw(token), target=draw(target()), version=version, fields=fields,
                  eols=draw(st.lists(EOL, min_size=1, max_size=8)))
    kind = draw(BODY_KIND)
    data = draw(body_data)
    if kind == "length":
        msg.set_framing([b"Content-Length: %d" % len(data)], data, draw(AT))
    elif kind == "chunked" and version != b"HTTP/1.0":
        msg.set_framing([b"Transfer-Encoding: " + draw(TE_CHUNKED)], draw(chunked(data)), draw(AT))
    return msg


# -- the forbidden constructs, each with the status it must get ---------------------------

Defect = Callable[[Any, Message], int]  # called with st.DrawFn or DataObject.draw
DEFECTS: dict[str, Defect] = {}
BAD, TOO_LARGE, URI_TOO_LONG = 400, 413, 414
FIELDS_TOO_LARGE, NOT_IMPLEMENTED, VERSION = 431, 501, 505


def defect(fn: Defect) -> Defect:
    DEFECTS[fn.__name__] = fn
    return fn


def _insert_field(draw: st.DrawFn, msg: Message, line: bytes) -> None:
    msg.fields.insert(draw(st.integers(0, len(msg.fields))), line)


def _with(draw: st.DrawFn, inner: bytes) -> bytes:
    """`inner` somewhere inside a visible value."""
    return draw(st.sampled_from([b"", b"a", b"a b"])) + inner + draw(
        st.sampled_from([b"", b"z", b"z y"]))


@defect
def bare_cr_in_value(draw: st.DrawFn, msg: Message) -> int:
    # The CR is followed by a visible byte: CR at a value's end before LF would be CRLF.
    _insert_field(draw, msg, draw(name) + b": " + _with(draw, b"\r") + b"v")
    return BAD


@defect
def nul_or_control_in_value(draw: st.DrawFn, msg: Message) -> int:
    ctl = bytes([draw(st.sampled_from(VALUE_CTL))])
    _insert_field(draw, msg, draw(name) + b":" + draw(ows) + _with(draw, ctl))
    return BAD


@defect
def bare_cr_as_line_end(draw: st.DrawFn, msg: Message) -> int:
    msg.be_http11()
    k = draw(st.integers(0, len(msg.fields) - 1))
    if k == 0:  # between the request line and the first field
        msg.version += b"\r" + msg.fields.pop(0)
    else:
        msg.fields[k - 1:k + 1] = [msg.fields[k - 1] + b"\r" + msg.fields[k]]
    return BAD


@defect
def obs_fold(draw: st.DrawFn, msg: Message) -> int:
    # At index 0 it is whitespace between the request line and the first field (§2.2).
    _insert_field(draw, msg, draw(st.sampled_from([b" ", b"\t", b"  "])) + draw(visible))
    return BAD


@defect
def whitespace_before_colon(draw: st.DrawFn, msg: Message) -> int:
    key = draw(st.sampled_from([b"Host", b"Content-Length", b"X-A"]))
    _insert_field(draw, msg, key + draw(st.sampled_from([b" ", b"\t", b" \t"])) + b": 1")
    return BAD


@defect
def bad_field_name(draw: st.DrawFn, msg: Message) -> int:
    bad = bytes([draw(st.sampled_from(NOT_TCHAR.replace(b":", b"")))])
    key = draw(st.sampled_from([b"", b"X-", b"A"])) + bad + draw(st.sampled_from([b"", b"b"]))
    _insert_field(draw, msg, key + b": v")
    return BAD


@defect
def empty_name_or_no_colon(draw: st.DrawFn, msg: Message) -> int:
    _insert_field(draw, msg, draw(st.sampled_from([b": v", b":", b"X-No-Colon", b"Host x"])))
    return BAD


@defect
def te_and_cl(draw: st.DrawFn, msg: Message) -> int:
    msg.be_http11()
    lines = [b"Transfer-Encoding: chunked", b"Content-Length: %d" % draw(st.integers(0, 99))]
    if draw(st.booleans()):
        lines.reverse()
    msg.set_framing(lines, b"0\r\n\r\n", draw(AT))
    return BAD


@defect
def differing_content_lengths(draw: st.DrawFn, msg: Message) -> int:
    a, b = draw(st.lists(st.integers(0, 99), min_size=2, max_size=2, unique=True))
    lines = draw(st.sampled_from([[b"Content-Length: %d" % a, b"Content-Length: %d" % b],
                                  [b"Content-Length: %d, %d" % (a, b)],
                                  [b"Content-Length: %d,%d,%d" % (a, a, b)]]))
    msg.set_framing(lines, b"", draw(AT))
    return BAD


@defect
def invalid_content_length(draw: st.DrawFn, msg: Message) -> int:
    text = draw(st.sampled_from([b"-1", b"+1", b"1.0", b"0x10", b"1 2", b"", b"1,", b",",
                                 b"\xd9\xa5", b"1e3", b"9" * 19, b"one"]))
    msg.set_framing([b"Content-Length: " + text], b"", draw(AT))
    return BAD


@defect
def final_coding_not_chunked(draw: st.DrawFn, msg: Message) -> int:
    msg.be_http11()
    codings = draw(st.sampled_from([b"gzip", b"chunked, gzip", b"identity", b"chunked;q=1",
                                    b"chunked x", b""]))
    msg.set_framing([b"Transfer-Encoding: " + codings], b"", draw(AT))
    return BAD


@defect
def unsupported_coding_then_chunked(draw: st.DrawFn, msg: Message) -> int:
    msg.be_http11()
    codings = draw(st.sampled_from([b"gzip, chunked", b"x-custom,chunked", b"deflate , Chunked"]))
    msg.set_framing([b"Transfer-Encoding: " + codings], b"0\r\n\r\n", draw(AT))
    return NOT_IMPLEMENTED


@defect
def chunked_in_http10(draw: st.DrawFn, msg: Message) -> int:
    msg.version = b"HTTP/1.0"
    msg.set_framing([b"Transfer-Encoding: chunked"], b"0\r\n\r\n", draw(AT))
    return BAD


@defect
def non_token_method(draw: st.DrawFn, msg: Message) -> int:
    # Position 0 covers a bare CR (or any control) before the request line.
    at = draw(st.integers(0, len(msg.method)))
    bad = bytes([draw(st.sampled_from(NOT_TCHAR))])
    msg.method = msg.method[:at] + bad + msg.method[at:]
    return BAD


@defect
def bad_target(draw: st.DrawFn, msg: Message) -> int:
    at = draw(st.integers(0, len(msg.target)))
    bad = bytes([draw(st.sampled_from(bytes(b for b in CTL + b" " if b != 0x0A)))])
    msg.target = msg.target[:at] + bad + msg.target[at:]
    return BAD


@defect
def bad_request_line_spacing(draw: st.DrawFn, msg: Message) -> int:
    how = draw(st.sampled_from(["double", "trailing", "empty target", "tab"]))
    if how == "double":
        msg.method += b" "
    elif how == "trailing":
        msg.version += draw(st.sampled_from([b" ", b"\t"]))
    elif how == "empty target":
        msg.target = b""
    else:
        msg.method += b"\t"
    return BAD


@defect
def http2_or_later(draw: st.DrawFn, msg: Message) -> int:
    msg.version = b"HTTP/%d.%d" % (draw(st.integers(2, 9)), draw(AT))
    return VERSION


@defect
def bad_version(draw: st.DrawFn, msg: Message) -> int:
    msg.version = draw(st.sampled_from([b"HTTP/0.9", b"HTTP/1", b"HTTP/1.10", b"HTTP/11.1",
                                        b"http/1.1", b"HTTP/1.1x", b"HTTPS/1.1", b"HTTP/1.x",
                                        b"HTTP/\xd9\xa1.1", b"HTTP/1.1\x00", b"HTTP/1.1\r\r",
                                        b"", b"HTTP\\1.1"]))
    return BAD


@defect
def missing_host(draw: st.DrawFn, msg: Message) -> int:
    msg.version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.5"]))
    msg.fields = [f for f in msg.fields if not f.lower().startswith(b"host:")]
    return BAD


@defect
def two_hosts(draw: st.DrawFn, msg: Message) -> int:
    while sum(f.lower().startswith(b"host:") for f in msg.fields) < 2:
        _insert_field(draw, msg, b"Host: " + draw(st.sampled_from([b"example.com", b"evil"])))
    return BAD


@defect
def junk_before_request_line(draw: st.DrawFn, msg: Message) -> int:
    msg.prefix = draw(st.sampled_from([b"", b"\r\n", b"\n"])) + draw(st.sampled_from(
        [b" ", b"\t", b"\r", b"\x00", b"\x16\x03\x01", b"\r\r\n", b"\x0b"]))
    return BAD


@defect
def request_line_too_long(draw: st.DrawFn, msg: Message) -> int:
    line = len(msg.method) + len(msg.target) + len(msg.version) + 2
    msg.target += b"a" * (LIMITS["max_request_line"] - line + draw(st.integers(1, 300)))
    return URI_TOO_LONG


@defect
def field_too_long(draw: st.DrawFn, msg: Message) -> int:
    key = draw(name)
    size = LIMITS["max_field"] - len(key) - 2 + draw(st.integers(1, 300))
    _insert_field(draw, msg, key + b": " + b"v" * size)
    return FIELDS_TOO_LARGE


@defect
def too_many_fields(draw: st.DrawFn, msg: Message) -> int:
    extra = LIMITS["max_headers"] + 1 - len(msg.fields) + draw(st.integers(0, 3))
    for i in range(extra):
        _insert_field(draw, msg, b"X-%d: %d" % (i, i))
    return FIELDS_TOO_LARGE


@defect
def head_too_large(draw: st.DrawFn, msg: Message) -> int:
    # Nine fields just under max_field: the head (and maybe the count) is over its limit.
    for i in range(9):
        msg.fields.append(b"X-Big-%d: " % i + b"v" * (LIMITS["max_field"] - 12))
    return FIELDS_TOO_LARGE


@defect
def content_length_over_max_body(draw: st.DrawFn, msg: Message) -> int:
    n = draw(st.integers(LIMITS["max_body"] + 1, 10 ** 18 - 1))
    msg.set_framing([b"Content-Length: %d" % n], b"", draw(AT))
    return TOO_LARGE


# Body defects: the head is valid (and returned); the chunked body is not.

def _chunked_defect(fn: Callable[[st.DrawFn, bytes], tuple[bytes, int]]) -> Defect:
    def wrapped(draw: st.DrawFn, msg: Message) -> int:
        msg.be_http11()
        eol = draw(EOL)
        body, status = fn(draw, eol)
        msg.set_framing([b"Transfer-Encoding: chunked"], body, draw(AT))
        msg.body_defect = True
        return status
    wrapped.__name__ = fn.__name__
    return defect(wrapped)


@_chunked_defect
def bad_chunk_size(draw: st.DrawFn, eol: bytes) -> tuple[bytes, int]:
    size = draw(st.sampled_from([b"zz", b"0x5", b"-5", b" 5", b"\t5", b"+5", b"5_0", b"",
                                 b";ext", b"1 1", b"1" * 17, b"\x005", b"5\x00"]))
    return size + eol + b"hello" + eol + b"0" + eol + eol, BAD


@_chunked_defect
def chunk_data_without_line_end(draw: st.DrawFn, eol: bytes) -> tuple[bytes, int]:
    # Whatever follows the data before its line end, the framing after it is valid, so
    # skipping that line instead of refusing it would accept the body.
    end = draw(st.sampled_from([b"XY", b" ", b"\t", b"\x00", b"\r\r", b"\rX", b"0", b"hello"]))
    return b"5" + eol + b"hello" + end + eol + b"0" + eol + eol, BAD


@_chunked_defect
def bare_cr_in_chunk_line(draw: st.DrawFn, eol: bytes) -> tuple[bytes, int]:
    line = draw(st.sampled_from([b"5\r\r\n", b"5;a\rb\r\n", b"5\rx\r\n"]))
    return line + b"hello" + eol + b"0" + eol + eol, BAD


@_chunked_defect
def bad_trailer(draw: st.DrawFn, eol: bytes) -> tuple[bytes, int]:
    junk = draw(st.sampled_from([b"GET /x HTTP/1.1", b"X : 1", b" folded", b"X: \x00",
                                 b"no-colon", b"\rx", b": v", b"X: a\rb"]))
    return b"0" + eol + draw(st.sampled_from([b"", b"T: 1" + eol])) + junk + eol + eol, BAD


@_chunked_defect
def chunked_body_over_max_body(draw: st.DrawFn, eol: bytes) -> tuple[bytes, int]:
    size = draw(st.integers(LIMITS["max_body"] + 1, 16 ** 16 - 1))
    return b"%x" % size + eol + b"data", TOO_LARGE


# -- running the parser -------------------------------------------------------------------

Outcome = tuple[object, ...]


def outcome(chunks: Sequence[bytes], remembered: bool = False) -> Outcome:
    """Feed `chunks`, draining after each: the requests, then the error status (a closing
    HTTPError) or what is left buffered. `remembered`: as the connection reads, each chunk
    is first offered to the memo of heads seen as a whole head (`RequestParser.remembered`)."""
    parser = RequestParser(**LIMITS)
    reqs: list[Request] = []
    for chunk in chunks:
        if remembered:
            req = parser.remembered(chunk)
            if req is not None:
                reqs.append(req)
                continue
        parser.feed(chunk)
        while True:
            try:
                req = parser.maybe_next()
            except HTTPError as err:
                assert err.close
                return tuple(reqs), err.status.value
            if req is None:
                break
            reqs.append(req)
    return tuple(reqs), None, parser.buffered, parser.in_body


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points[:-1], points[1:], strict=True)]


def every_split(data: bytes, cuts: Sequence[int],
                messages: Sequence[bytes] = ()) -> dict[str, Outcome]:
    """The outcome fed whole, cut, byte by byte, and whole again: by then every head the
    fast path took is in the memo of heads seen, which must give the same verdicts, whether
    the parser finds them there or the connection offers it a read that is one whole head.
    `messages`: `data` as the requests it is made of, each read apart (and offered whole)."""
    ways = {"whole": outcome([data]), "cuts": outcome(split_at(data, cuts)),
            "bytewise": outcome([data[i:i + 1] for i in range(len(data))]),
            "whole, heads remembered": outcome([data]),
            "whole, offered to the memo": outcome([data], remembered=True)}
    if messages:
        ways["message by message, offered to the memo"] = outcome(messages, remembered=True)
        ways["message by message, again"] = outcome(messages, remembered=True)
    return ways


cuts = st.lists(st.integers(min_value=0, max_value=4000), max_size=12)
pipeline = st.lists(valid_message(), max_size=2)


def check_defect(kind: str, data: st.DataObject) -> None:
    msg = data.draw(valid_message(), label="base")
    status = DEFECTS[kind](data.draw, msg)
    before = data.draw(pipeline, label="before")
    after = data.draw(st.lists(valid_message(), min_size=1, max_size=2), label="after")
    messages = [m.render() for m in [*before, msg, *after]]
    raw = b"".join(messages)
    expected = tuple(m.request() for m in before) + ((msg.request(),) if msg.body_defect else ())
    for way, got in every_split(raw, data.draw(cuts, label="cuts"), messages).items():
        assert got == (expected, status), (way, kind, msg.render())


@pytest.mark.parametrize("kind", list(DEFECTS))
@PER_DEFECT
@given(data=st.data())
def test_forbidden_construct_is_refused_with_its_status(kind: str, data: st.DataObject) -> None:
    """Each forbidden construct, alone in an otherwise valid request between valid pipelined
    ones, gets its exact status after exactly the requests before it, whatever the split."""
    check_defect(kind, data)


@PROPS
@given(data=st.data(), kind=st.sampled_from(sorted(DEFECTS)))
def test_any_forbidden_construct_is_refused(kind: str, data: st.DataObject) -> None:
    """The same, with the forbidden construct drawn at random (shrinks across kinds)."""
    check_defect(kind, data)


@PROPS
@given(st.lists(valid_message(), min_size=1, max_size=6), cuts)
def test_pipelined_valid_requests_with_bodies_come_out_in_order(
        msgs: list[Message], cut: list[int]) -> None:
    """N valid pipelined requests with random Content-Length or chunked bodies give exactly
    those N requests in order, whatever the split, and leave nothing buffered."""
    messages = [m.render() for m in msgs]
    raw = b"".join(messages)
    expected = (tuple(m.request() for m in msgs), None, 0, False)
    for way, got in every_split(raw, cut, messages).items():
        assert got == expected, way


@PROPS
@given(valid_message(), st.integers(min_value=1, max_value=10_000))
def test_unfinished_valid_request_waits(msg: Message, cut: int) -> None:
    """A proper prefix of a valid request raises nothing and gives at most that request
    (once its head is complete): a head or body cut short waits, it is never refused."""
    raw = msg.render()
    prefix = raw[:cut % len(raw)]
    got = outcome([prefix])
    assert got[:2] == ((), None) or got[0] == (msg.request(),) and got[1] is None, got


# -- regressions: bugs the fuzz target (tests/fuzz) found ----------------------------------

HEAD = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("data, requests, status", [
    # lstrip(b"\r\n") took a bare CR as an empty line: "\rGET ..." was accepted.
    (b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, BAD),
    (b"\r\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, BAD),
    (NEXT + b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, BAD),
    # Trailer lines were skipped unchecked: a request line (or NUL) in the trailer section.
    (HEAD + b"0\r\nGET /hidden HTTP/1.1\r\n\r\n" + NEXT, 1, BAD),
    (HEAD + b"0\r\nX: \x00\r\n\r\n" + NEXT, 1, BAD),
    # rstrip(b"\r") took bare CRs in chunk lines as part of the CRLF.
    (HEAD + b"3\r\r\nabc\r\n0\r\n\r\n" + NEXT, 1, BAD),
    (HEAD + b"3\r\nabc\r\r\n0\r\n\r\n" + NEXT, 1, BAD),
    (HEAD + b"0\r\n\r\r\n" + NEXT, 1, BAD),
    # strip(b" \t") allowed whitespace before the chunk size.
    (HEAD + b" 3\r\nabc\r\n0\r\n\r\n" + NEXT, 1, BAD),
])
def test_fuzzer_findings_are_refused(data: bytes, requests: int, status: int) -> None:
    """Bare CRs before a request line or in chunk lines, junk trailers and a space before a
    chunk size are 400, however the bytes arrive."""
    for way, (reqs, *rest) in every_split(data, [len(data) // 2]).items():
        assert isinstance(reqs, tuple) and (len(reqs), rest[0]) == (requests, status), way


@pytest.mark.parametrize("data", [
    b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    HEAD + b"3;a=b \r\nabc\r\n0 ; last\r\nT: 1\r\nU:\t2 \r\n\r\n",
    HEAD + b"3 \r\nabc\n0\n\n",
])
def test_lenient_forms_still_accepted(data: bytes) -> None:
    """Empty lines before a request, BWS before a chunk extension or line end, bare-LF chunk
    lines and valid trailers are still accepted after those fixes, in every split."""
    results = set(every_split(data + NEXT, [5, len(data)]).values())
    assert len(results) == 1
    (reqs, *rest), = results
    assert isinstance(reqs, tuple) and len(reqs) == 2 and rest == [None, 0, False]
    assert reqs[1].target == b"/next"


def test_a_bare_cr_alone_may_still_become_crlf() -> None:
    """A lone CR before a request line waits (it may be half a CRLF), then is fine as CRLF."""
    parser = RequestParser()
    parser.feed(b"\r")
    assert parser.maybe_next() is None and parser.buffered == 1
    parser.feed(b"\n" + NEXT)
    req = parser.maybe_next()
    assert req is not None and req.target == b"/next"
