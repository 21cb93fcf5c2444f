"""Layer 1: the sans-IO HTTP/1.x code in `evserver.http11`, fed bytes (no sockets).

Most parser cases go through `tr()`, which, like h11's test helper of that name, feeds each
input whole, one byte at a time and followed by trailing bytes, and demands the same outcome.
"""
from __future__ import annotations

import calendar
from collections.abc import Sequence
from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver import http11
from evserver.http11 import (
    HTTPError,
    Request,
    RequestParser,
    build_head,
    http_date,
    parse_http_date,
)

HOST = ((b"host", b"x"),)
# An unfinished next request: it must still be in the parser's buffer afterwards.
TRAILING = b"GET /trailing HTTP/1.1\r\nHost: t\r\n"
PROPS = settings(max_examples=200, deadline=None)


def R(target: bytes = b"/", *, method: bytes = b"GET", version: bytes = b"HTTP/1.1",
      headers: tuple[tuple[bytes, bytes], ...] = HOST, keep_alive: bool = True) -> Request:
    return Request(method, target, version, headers, keep_alive)


def drain(parser: RequestParser) -> tuple[list[Request], HTTPError | None]:
    """Call maybe_next() until it returns None or raises."""
    out: list[Request] = []
    while True:
        try:
            req = parser.maybe_next()
        except HTTPError as err:
            return out, err
        if req is None:
            return out, None
        assert isinstance(req, Request)
        out.append(req)


def run(chunks: Sequence[bytes], **limits: int
        ) -> tuple[list[Request], HTTPError | None, RequestParser]:
    """Feed `chunks` one by one, draining after each; stop at the first error."""
    parser = RequestParser(**limits)
    reqs: list[Request] = []
    for chunk in chunks:
        parser.feed(chunk)
        got, err = drain(parser)
        reqs += got
        if err is not None:
            return reqs, err, parser
    return reqs, None, parser


def bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points[:-1], points[1:], strict=True)]


def outcome(chunks: Sequence[bytes], **limits: int) -> tuple[object, ...]:
    reqs, err, parser = run(chunks, **limits)
    if err is not None:
        return tuple(reqs), err.status
    return tuple(reqs), None, parser.buffered, parser.in_body


def tr(data: bytes, expected: Request | Sequence[Request] | HTTPStatus,
       before: Sequence[Request] = (), **limits: int) -> None:
    """Same requests (or the same error status, after `before`) fed whole, byte by byte, and
    with trailing bytes."""
    if isinstance(expected, Request):
        expected = [expected]
    ways = {"whole": [data], "bytewise": bytewise(data), "trailing": [data + TRAILING]}
    for way, chunks in ways.items():
        reqs, err, parser = run(chunks, **limits)
        if isinstance(expected, HTTPStatus):
            assert err is not None, f"{way}: no error, got {reqs}"
            assert (err.status, err.close) == (expected, True), way
            assert reqs == list(before), way
        else:
            assert err is None, f"{way}: {err!r}"
            assert reqs == list(expected), way
            assert parser.buffered == (len(TRAILING) if way == "trailing" else 0), way
            assert not parser.in_body, way


def first_error(data: bytes, **limits: int) -> HTTPError:
    parser = RequestParser(**limits)
    parser.feed(data)
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    return info.value


# -- valid requests ----------------------------------------------------------------------

VALID = {
    "origin-form": (b"GET /index.html?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", R(b"/index.html?q=1")),
    "absolute-form": (b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
                      R(b"http://example.com/x", headers=((b"host", b"example.com"),))),
    "asterisk-form": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", R(b"*", method=b"OPTIONS")),
    "head": (b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", R(b"/a", method=b"HEAD")),
    "other token method": (b"M-SEARCH * HTTP/1.1\r\nHost: x\r\n\r\n",
                           R(b"*", method=b"M-SEARCH")),
    "1.0 without Host": (b"GET / HTTP/1.0\r\n\r\n",
                         R(version=b"HTTP/1.0", headers=(), keep_alive=False)),
    "1.0 with Host": (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
                      R(version=b"HTTP/1.0", keep_alive=False)),
    "1.2 acts as 1.1": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", R()),
    "1.9 acts as 1.1": (b"GET / HTTP/1.9\r\nHost: x\r\n\r\n", R()),
    "value whitespace stripped": (
        b"GET / HTTP/1.1\r\nHost:   x \t\r\nX-A:\t v  a l \t\r\n\r\n",
        R(headers=((b"host", b"x"), (b"x-a", b"v  a l")))),
    "empty values": (b"GET / HTTP/1.1\r\nHost: x\r\nX-E:\r\nX-F:  \t \r\n\r\n",
                     R(headers=((b"host", b"x"), (b"x-e", b""), (b"x-f", b"")))),
    "obs-text in value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-L: caf\xe9 \x80\xff\r\n\r\n",
                          R(headers=((b"host", b"x"), (b"x-l", b"caf\xe9 \x80\xff")))),
    "names lower-cased, order and repeats kept": (
        b"GET / HTTP/1.1\r\nACCEPT: a\r\nHost: x\r\nAccept: b\r\nX-Y-z: 1\r\n\r\n",
        R(headers=((b"accept", b"a"), (b"host", b"x"), (b"accept", b"b"), (b"x-y-z", b"1")))),
    "colon inside value": (b"GET / HTTP/1.1\r\nHost: x:8080\r\nX: a: b\r\n\r\n",
                           R(headers=((b"host", b"x:8080"), (b"x", b"a: b")))),
    "bare LF line endings": (b"GET / HTTP/1.1\nHost: x\n\n", R()),
    "mixed LF and CRLF": (b"GET / HTTP/1.1\r\nHost: x\n\r\n", R()),
    "leading empty lines": (b"\r\n\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    "empty Host in 1.1": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", R(headers=((b"host", b""),))),
}


@pytest.mark.parametrize("data, expected", VALID.values(), ids=VALID.keys())
def test_valid_request(data: bytes, expected: Request) -> None:
    """Valid heads parse to the same Request whatever the split, leaving trailing bytes."""
    tr(data, expected)


KEEP_ALIVE = {
    "1.1 default on": (b"HTTP/1.1", b"", True),
    "1.1 close": (b"HTTP/1.1", b"Connection: close\r\n", False),
    "1.1 close any case": (b"HTTP/1.1", b"Connection: CLose\r\n", False),
    "1.1 keep-alive": (b"HTTP/1.1", b"Connection: keep-alive\r\n", True),
    "1.1 token list with close": (b"HTTP/1.1", b"Connection: foo, close\r\n", False),
    "1.1 close wins over keep-alive": (b"HTTP/1.1", b"Connection: keep-alive,close\r\n", False),
    "1.1 close in a second header": (b"HTTP/1.1", b"Connection: foo\r\nConnection: close\r\n",
                                     False),
    "1.1 'closed' is not close": (b"HTTP/1.1", b"Connection: closed\r\n", True),
    "1.0 default off": (b"HTTP/1.0", b"", False),
    "1.0 keep-alive": (b"HTTP/1.0", b"Connection: keep-alive\r\n", True),
    "1.0 Keep-Alive in a list": (b"HTTP/1.0", b"Connection: Upgrade, Keep-Alive\r\n", True),
    "1.0 close": (b"HTTP/1.0", b"Connection: close\r\n", False),
}


@pytest.mark.parametrize("version, extra, keep", KEEP_ALIVE.values(), ids=KEEP_ALIVE.keys())
def test_keep_alive_rules(version: bytes, extra: bytes, keep: bool) -> None:
    """keep_alive follows the version default and the Connection token list (RFC 9112 §9.3)."""
    data = b"GET / " + version + b"\r\nHost: x\r\n" + extra + b"\r\n"
    (req,), err, _ = run([data])
    assert err is None and req.keep_alive is keep
    tr(data, req)


def test_request_helpers() -> None:
    """Request.get returns the first value of a header; .line rebuilds the request line."""
    (req,), _, _ = run([b"GET /a HTTP/1.1\r\nHost: x\r\nX: 1\r\nx: 2\r\n\r\n"])
    assert req.get(b"x") == b"1"
    assert req.get(b"missing") is None
    assert req.line == b"GET /a HTTP/1.1"


# -- pipelining --------------------------------------------------------------------------

PIPE = [
    (b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", R(b"/1")),
    (b"HEAD /2 HTTP/1.1\nHost: x\nConnection: close\n\n",
     R(b"/2", method=b"HEAD", headers=((b"host", b"x"), (b"connection", b"close")),
       keep_alive=False)),
    (b"\r\nGET /3 HTTP/1.0\r\n\r\n", R(b"/3", version=b"HTTP/1.0", headers=(),
                                       keep_alive=False)),
]


def test_pipelined_requests_come_out_in_order() -> None:
    """Several requests in one feed are returned one per maybe_next(), in order."""
    data = b"".join(raw for raw, _ in PIPE)
    tr(data, [req for _, req in PIPE])
    parser = RequestParser()
    parser.feed(data)
    assert parser.maybe_next() == PIPE[0][1]
    assert parser.buffered == len(data) - len(PIPE[0][0])  # the rest waits, unparsed


def test_pipelined_split_at_every_boundary() -> None:
    """Two pipelined requests parse identically wherever the byte stream is cut in two."""
    (a, ra), (b, rb) = PIPE[0], PIPE[1]
    data = a + b
    for cut in range(len(data) + 1):
        reqs, err, parser = run([data[:cut], data[cut:]])
        assert (reqs, err, parser.buffered) == ([ra, rb], None, 0), cut


# -- errors ------------------------------------------------------------------------------

def _req(line: bytes, *fields: bytes) -> bytes:
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


BAD = HTTPStatus.BAD_REQUEST
ERRORS = {
    "method not a token": (_req(b"G(T / HTTP/1.1", b"Host: x"), BAD),
    "method with @": (_req(b"G@T / HTTP/1.1", b"Host: x"), BAD),
    "two spaces": (_req(b"GET  / HTTP/1.1", b"Host: x"), BAD),
    "trailing space": (_req(b"GET / HTTP/1.1 ", b"Host: x"), BAD),
    "missing version": (_req(b"GET /", b"Host: x"), BAD),
    "only a method": (_req(b"GET", b"Host: x"), BAD),
    "tabs as separators": (_req(b"GET\t/\tHTTP/1.1", b"Host: x"), BAD),
    "space in target": (_req(b"GET /a b HTTP/1.1", b"Host: x"), BAD),
    "control byte in target": (_req(b"GET /a\x01b HTTP/1.1", b"Host: x"), BAD),
    "DEL in target": (_req(b"GET /a\x7f HTTP/1.1", b"Host: x"), BAD),
    "NUL in target": (_req(b"GET /\x00 HTTP/1.1", b"Host: x"), BAD),
    # Moved from the end-to-end tables (tests/e2e/test_protocol.py, test_hostile_paths.py).
    "CR in target": (_req(b"GET /a\rb HTTP/1.1", b"Host: x"), BAD),
    "CR and NUL in target": (_req(b"GET /a\r\x00 HTTP/1.1", b"Host: x"), BAD),
    "CR then a header in target": (_req(b"GET /a\rSet-Cookie:%20x=1 HTTP/1.1", b"Host: x"),
                                   BAD),
    "tab in target": (_req(b"GET /a\tb HTTP/1.1", b"Host: x"), BAD),
    "VT in target": (_req(b"GET /a\x0bb HTTP/1.1", b"Host: x"), BAD),
    "FF in target": (_req(b"GET /a\x0cb HTTP/1.1", b"Host: x"), BAD),
    "ESC in target": (_req(b"GET /a\x1b[31mred HTTP/1.1", b"Host: x"), BAD),
    "HTTP/2.0": (_req(b"GET / HTTP/2.0", b"Host: x"), HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
    "HTTP/3.0": (_req(b"GET / HTTP/3.0", b"Host: x"), HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
    "HTTP/0.9": (_req(b"GET / HTTP/0.9", b"Host: x"), BAD),
    "HTTP/1": (_req(b"GET / HTTP/1", b"Host: x"), BAD),
    "HTTP/1.10": (_req(b"GET / HTTP/1.10", b"Host: x"), BAD),
    "HTTP/11.1": (_req(b"GET / HTTP/11.1", b"Host: x"), BAD),
    "lower-case http": (_req(b"GET / http/1.1", b"Host: x"), BAD),
    "garbage version": (_req(b"GET / HTCPCP/1.0", b"Host: x"), BAD),
    "CR inside request line": (_req(b"GET / HTTP/1.1\r", b"Host: x"), BAD),
    "space before colon": (_req(b"GET / HTTP/1.1", b"Host : x"), BAD),
    "tab before colon": (_req(b"GET / HTTP/1.1", b"Host\t: x"), BAD),
    "space before colon, other field": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-Foo : bar"),
                                        BAD),
    "empty header name": (_req(b"GET / HTTP/1.1", b"Host: x", b": v"), BAD),
    "no colon": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-No-Colon"), BAD),
    "bad name byte": (_req(b"GET / HTTP/1.1", b"Host: x", b"X(y): 1"), BAD),
    "obs-fold with space": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: a", b"  b"), BAD),
    "obs-fold with tab": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: a", b"\tb"), BAD),
    "control char in value": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: a\x01b"), BAD),
    "DEL in value": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: a\x7f"), BAD),
    "bare CR in value": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: a\rb"), BAD),
    "NUL in value": (_req(b"GET / HTTP/1.1", b"Host: x", b"X: \x00"), BAD),
    "NUL inside a value": (_req(b"GET / HTTP/1.1", b"Host: x", b"X-Nul: a\x00b"), BAD),
    "1.1 without Host": (_req(b"GET / HTTP/1.1", b"X: 1"), BAD),
    "two Host headers": (_req(b"GET / HTTP/1.1", b"Host: a", b"Host: a"), BAD),
    "two Host headers in 1.0": (_req(b"GET / HTTP/1.0", b"Host: a", b"host: b"), BAD),
    "two different Host headers": (_req(b"GET / HTTP/1.1", b"Host: test", b"Host: other"), BAD),
    "TE with CL": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked",
                        b"Content-Length: 5"), BAD),
    "differing CL in one header": (_req(b"GET / HTTP/1.1", b"Host: x",
                                        b"Content-Length: 5, 6"), BAD),
    "differing CL headers": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: 5",
                                  b"Content-Length: 6"), BAD),
    "CL not digits": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: abc"), BAD),
    "CL negative": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: -5"), BAD),
    "CL minus one": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: -1"), BAD),
    "CL plus sign": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: +5"), BAD),
    "CL hex": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: 0x5"), BAD),
    "CL empty": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length:"), BAD),
    "CL trailing comma": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: 5,"), BAD),
    "CL huge": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: " + b"9" * 40), BAD),
    "CL non-ASCII digit": (_req(b"GET / HTTP/1.1", b"Host: x",
                                "Content-Length: \u0665".encode()), BAD),
    "CL over max_body": (_req(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: 1048577"),
                         HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    "TE gzip, chunked": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: gzip, chunked"),
                         HTTPStatus.NOT_IMPLEMENTED),
    "TE chunked, gzip": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked, gzip"),
                         BAD),
    "TE gzip alone": (_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: gzip"), BAD),
    "TE in HTTP/1.0": (_req(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked"), BAD),
    "TLS ClientHello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BAD),
    "leading space": (b" GET / HTTP/1.1\r\nHost: x\r\n\r\n", BAD),
    "leading tab": (b"\tGET / HTTP/1.1\r\nHost: x\r\n\r\n", BAD),
    "leading NUL": (b"\x00", BAD),
}


@pytest.mark.parametrize("data, status", ERRORS.values(), ids=ERRORS.keys())
def test_malformed_request(data: bytes, status: HTTPStatus) -> None:
    """Malformed heads raise HTTPError with the right status and close, whatever the split."""
    tr(data, status)


def test_error_keeps_the_request_line_for_the_log() -> None:
    """An error found in the header section still reports the request line it followed."""
    err = first_error(_req(b"GET /x HTTP/1.1", b"Host: x", b"Bad Name: 1"))
    assert err.request_line == b"GET /x HTTP/1.1"


def test_tls_client_hello_rejected_at_first_bytes() -> None:
    """A first byte below 0x21 (a TLS handshake) is refused at once, without waiting for a line."""
    err = first_error(b"\x16\x03\x01")
    assert (err.status, err.close) == (BAD, True)


@pytest.mark.parametrize("repeat", [b"Content-Length: 5, 5\r\n",
                                    b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                    b"Content-Length: 5 ,5\r\nContent-Length: 5\r\n"])
def test_repeated_identical_content_length_is_accepted(repeat: bytes) -> None:
    """The same Content-Length value repeated is one length; the body is skipped."""
    head = b"GET /a HTTP/1.1\r\nHost: x\r\n" + repeat + b"\r\n"
    (first,), _, _ = run([head])
    tr(head + b"hello" + PIPE[0][0], [first, PIPE[0][1]])


def test_error_is_a_sink_state() -> None:
    """After a closing error the buffer is dropped and every later call raises the same error."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/2.0\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    assert info.value.status == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED
    assert parser.buffered == 0
    for _ in range(3):
        parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(HTTPError) as again:
            parser.maybe_next()
        assert again.value is info.value


# -- limits ------------------------------------------------------------------------------

def _line_of(length: int) -> bytes:
    """A valid request line of exactly `length` bytes."""
    base = b"GET / HTTP/1.1"
    return b"GET /" + b"a" * (length - len(base)) + b" HTTP/1.1"


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_request_line_limit_boundary(eol: bytes) -> None:
    """A request line of exactly max_request_line bytes passes; one byte more is 414."""
    ok = _line_of(100)
    tr(ok + eol + b"Host: x" + eol + eol, R(ok.split(b" ")[1]), max_request_line=100)
    tr(_line_of(101) + eol + b"Host: x" + eol + eol, HTTPStatus.REQUEST_URI_TOO_LONG,
       max_request_line=100)


def test_request_line_limit_before_newline() -> None:
    """An over-long request line is 414 as soon as it passes the limit, before any newline."""
    parser = RequestParser(max_request_line=100)
    parser.feed(b"GET /" + b"a" * 95)  # exactly 100 bytes: may still end
    assert parser.maybe_next() is None
    parser.feed(b"a")
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    assert info.value.status == HTTPStatus.REQUEST_URI_TOO_LONG
    tr(b"GET /" + b"a" * 9000, HTTPStatus.REQUEST_URI_TOO_LONG)


def test_long_request_line_in_big_head_is_414() -> None:
    """A request line over its limit in a head over max_head is 414 however it is fed."""
    data = _line_of(9000) + b"\r\nHost: x\r\nX: " + b"v" * 20000 + b"\r\n\r\n"
    tr(data, HTTPStatus.REQUEST_URI_TOO_LONG)


def _head_of(length: int, eol: bytes = b"\r\n") -> bytes:
    """A valid head of exactly `length` bytes, its blank line included."""
    start = b"GET / HTTP/1.1" + eol + b"Host: x" + eol + b"X: "
    end = eol + eol
    return start + b"v" * (length - len(start) - len(end)) + end


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_head_limit_boundary(eol: bytes) -> None:
    """A head of exactly max_head bytes (blank line included) passes; one byte more is 431."""
    ok = _head_of(200, eol)
    assert len(ok) == 200
    value = ok.split(b"X: ")[1].rstrip(b"\r\n")
    tr(ok, R(headers=((b"host", b"x"), (b"x", value))), max_head=200)
    tr(_head_of(201, eol), HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, max_head=200)


def test_head_limit_before_blank_line() -> None:
    """An unfinished head is refused with 431 once it cannot fit max_head, not buffered on."""
    parser = RequestParser(max_head=200)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX: ")
    parser.feed(b"v" * (199 - parser.buffered))
    assert parser.maybe_next() is None and parser.buffered == 199
    parser.feed(b"v")
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    assert info.value.status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    tr(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 20000,
       HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)


def test_equal_limits_first_broken_wins() -> None:
    """With max_head == max_request_line, a long line is 431 when fed whole or bytewise,
    because the head limit is reached before the line is known to be too long."""
    tr(b"GET /" + b"a" * 36 + b"\r\nHost: x\r\n", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
       max_head=40, max_request_line=40)
    tr(b"GET /" + b"a" * 36 + b"\r\nHost: x\r\n\r\n", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
       max_head=40, max_request_line=40)


def test_header_count_limit() -> None:
    """max_headers fields are fine; one more is 431."""
    fields = [b"Host: x"] + [b"X-%d: v" % i for i in range(9)]
    headers = ((b"host", b"x"), *((b"x-%d" % i, b"v") for i in range(9)))
    tr(_req(b"GET / HTTP/1.1", *fields), R(headers=headers), max_headers=10)
    tr(_req(b"GET / HTTP/1.1", *fields, b"X-Last: v"),
       HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, max_headers=10)


def test_trickled_head_is_scanned_once() -> None:
    """A 15 KB head fed one byte at a time is searched for its blank line in O(n), not O(n²)."""
    searched = 0
    real = http11._BLANK_LINE

    class Counting:
        def search(self, buf: bytearray, pos: int = 0) -> object:
            nonlocal searched
            searched += len(buf) - pos
            return real.search(buf, pos)

    data = _head_of(15_000)
    parser = RequestParser(max_field=16 * 1024)
    mp = pytest.MonkeyPatch()
    mp.setattr(http11, "_BLANK_LINE", Counting())
    try:
        for i in range(len(data) - 1):
            parser.feed(data[i:i + 1])
            assert parser.maybe_next() is None
            assert parser._scanned == parser.buffered == i + 1
        parser.feed(data[-1:])
        req = parser.maybe_next()
    finally:
        mp.undo()
    assert req is not None and len(req.headers[1][1]) > 14_000
    assert searched <= 3 * len(data)  # a rescan from the start would be ~n²/2 = 112 million


# -- bodies ------------------------------------------------------------------------------

NEXT, NEXT_REQ = PIPE[0]


def test_content_length_body_is_discarded() -> None:
    """A Content-Length body on GET is skipped, so the next pipelined request parses."""
    head = b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
    first = R(b"/a", headers=((b"host", b"x"), (b"content-length", b"11")))
    tr(head + b"hello world" + NEXT, [first, NEXT_REQ])
    tr(head.replace(b"11", b"0") + NEXT,
       [R(b"/a", headers=((b"host", b"x"), (b"content-length", b"0"))), NEXT_REQ])


def test_body_trickling_in_is_discarded() -> None:
    """While a body arrives byte by byte, in_body is True and nothing is returned."""
    parser = RequestParser()
    parser.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
    assert parser.maybe_next() is not None
    assert parser.in_body
    for byte in b"GET ":  # body bytes that look like a request must not be parsed as one
        parser.feed(bytes([byte]))
        assert parser.in_body
        assert parser.maybe_next() is None
        assert parser.buffered == 0
    assert not parser.in_body
    parser.feed(NEXT)
    assert parser.maybe_next() == NEXT_REQ


CHUNKED_HEAD = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKED_REQ = R(b"/c", method=b"POST",
                headers=((b"host", b"x"), (b"transfer-encoding", b"chunked")))


@pytest.mark.parametrize("body", [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;name=value\r\nhello\r\nA ; x=\"q\"\r\n0123456789\r\n0;last\r\n\r\n",
    b"3\r\nabc\r\n0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n",
    b"3\nabc\n0\n\n",
    b"00000003\r\nGET\r\n0\r\n\r\n",
])
def test_chunked_body_is_discarded(body: bytes) -> None:
    """Chunked bodies, with extensions and trailers, are skipped; the next request parses."""
    tr(CHUNKED_HEAD + body + NEXT, [CHUNKED_REQ, NEXT_REQ])


def test_chunked_in_body_while_discarding() -> None:
    """in_body stays True from the head until the last-chunk's trailer section ends."""
    parser = RequestParser()
    parser.feed(CHUNKED_HEAD)
    assert parser.maybe_next() == CHUNKED_REQ
    for piece in (b"5\r\nhel", b"lo\r\n", b"0\r\n", b"X: 1\r\n"):
        assert parser.in_body
        parser.feed(piece)
        assert parser.maybe_next() is None
    parser.feed(b"\r\n")
    assert parser.maybe_next() is None and not parser.in_body


@pytest.mark.parametrize("body", [
    b"zz\r\n", b"0x5\r\nhello\r\n0\r\n\r\n", b"-5\r\n", b"+5\r\nhello\r\n0\r\n\r\n",
    b"5_0\r\n", b"\r\n", b";ext\r\n", b"1 1\r\n", b"1" * 17 + b"\r\n",
])
def test_bad_chunk_size(body: bytes) -> None:
    """A chunk size that is not 1-16 hex digits is 400."""
    tr(CHUNKED_HEAD + body, BAD, [CHUNKED_REQ])


@pytest.mark.parametrize("body", [b"5\r\nhelloXY0\r\n\r\n", b"5\r\nhello0\r\n\r\n",
                                  b"1\r\nAB\r\n0\r\n\r\n"])
def test_chunk_data_must_end_with_crlf(body: bytes) -> None:
    """Bytes other than CRLF after chunk data are 400, not silently skipped (smuggling)."""
    tr(CHUNKED_HEAD + body + NEXT, BAD, [CHUNKED_REQ])


def test_chunked_total_over_max_body() -> None:
    """A chunked body over max_body (data plus framing, 25 bytes here) is 413."""
    body = b"5\r\nabcde\r\n5\r\nabcde\r\n0\r\n\r\n"
    assert len(body) == 25
    tr(CHUNKED_HEAD + body, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, [CHUNKED_REQ], max_body=24)
    tr(CHUNKED_HEAD + body + NEXT, [CHUNKED_REQ, NEXT_REQ], max_body=25)


def test_chunk_line_too_long() -> None:
    """A chunk-size line over the line limit is refused however it arrives."""
    tr(CHUNKED_HEAD + b"5;" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
       HTTPStatus.REQUEST_ENTITY_TOO_LARGE, [CHUNKED_REQ])


# -- build_head --------------------------------------------------------------------------

def test_build_head_keep_alive_http11() -> None:
    """HTTP/1.1 keep-alive: status line, headers in order, no Connection, blank line."""
    head = build_head(HTTPStatus.OK, [(b"Content-Length", b"5"), (b"Content-Type", b"text/plain"),
                                      (b"X-A", b"1")], keep_alive=True)
    assert head == (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
                    b"X-A: 1\r\n\r\n")


def test_build_head_close() -> None:
    """Not keep-alive: `Connection: close` comes last, for 1.0 and 1.1 alike."""
    expected = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    for http10 in (False, True):
        assert build_head(HTTPStatus.NOT_FOUND, [(b"Content-Length", b"0")], keep_alive=False,
                          http10=http10) == expected


def test_build_head_http10_keep_alive() -> None:
    """An HTTP/1.0 client that keeps the connection is told `Connection: keep-alive`."""
    assert build_head(HTTPStatus.NOT_MODIFIED, [], keep_alive=True, http10=True) == (
        b"HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n")


def test_build_head_accepts_rendered_bytes() -> None:
    """Pre-rendered header lines give the same head as pairs."""
    pairs = [(b"ETag", b'"abc"'), (b"Content-Length", b"3")]
    rendered = b'ETag: "abc"\r\nContent-Length: 3\r\n'
    for keep in (True, False):
        head = build_head(HTTPStatus.OK, rendered, keep_alive=keep)
        assert head == build_head(HTTPStatus.OK, pairs, keep_alive=keep)
        assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1


@pytest.mark.parametrize("status", list(HTTPStatus))
def test_build_head_every_status(status: HTTPStatus) -> None:
    """Every status gets a `HTTP/1.1 <code> <phrase>` line."""
    head = build_head(status, [], keep_alive=True)
    assert head == b"HTTP/1.1 %d %s\r\n\r\n" % (status.value, status.phrase.encode())


# -- dates -------------------------------------------------------------------------------

SUNDAY = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example


def test_http_date() -> None:
    """http_date gives IMF-fixdate in GMT, with fractions dropped."""
    assert http_date(SUNDAY) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(SUNDAY + 0.99) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(951782400) == b"Tue, 29 Feb 2000 00:00:00 GMT"


@pytest.mark.parametrize("text", [
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Sunday, 06-Nov-94 08:49:37 GMT",
    b"Sun Nov  6 08:49:37 1994",
    b"  Sun, 06 Nov 1994 08:49:37 GMT ",
])
def test_parse_http_date_formats(text: bytes) -> None:
    """The three RFC 9110 date formats give the same timestamp."""
    assert parse_http_date(text, now_year=2024) == SUNDAY


def test_parse_asctime_two_digit_day() -> None:
    """asctime days of two digits parse too."""
    assert parse_http_date(b"Wed Nov 16 08:49:37 1994") == SUNDAY + 10 * 86400


@pytest.mark.parametrize("yy, now_year, year", [
    (b"94", 2024, 1994), (b"24", 2024, 2024), (b"74", 2024, 2074), (b"75", 2024, 1975),
    (b"00", 1999, 2000), (b"49", 1999, 2049), (b"50", 1999, 1950),
    (b"10", 2090, 2110), (b"40", 2090, 2140), (b"41", 2090, 2041),
])
def test_rfc850_two_digit_years(yy: bytes, now_year: int, year: int) -> None:
    """RFC 850 years lie within 50 years of now: further ahead means the past century."""
    got = parse_http_date(b"Monday, 01-Mar-%s 00:00:00 GMT" % yy, now_year=now_year)
    assert got == calendar.timegm((year, 3, 1, 0, 0, 0))


@pytest.mark.parametrize("text", [
    b"", b"garbage", b"0", b"784111777",
    b"Sun, 06 Foo 1994 08:49:37 GMT",   # no such month
    b"Sun, 06 nov 1994 08:49:37 GMT",   # months are case-sensitive
    b"Sun, 6 Nov 1994 08:49:37 GMT",    # IMF-fixdate has two-digit days
    b"Sun, 06 Nov 1994 08:49:37",       # no GMT
    b"Sun, 06 Nov 1994 08:49:37 UTC",
    b"Sun, 06 Nov 1994 08:49:37 GMT x",
    b"Sun, 00 Nov 1994 08:49:37 GMT",   # day 0
    b"Sun, 32 Nov 1994 08:49:37 GMT",
    b"Sun, 31 Nov 1994 08:49:37 GMT",   # November has 30 days
    b"Sun, 30 Feb 1994 08:49:37 GMT",
    b"Sun, 29 Feb 1900 08:49:37 GMT",   # not a leap year
    b"Sun, 06 Nov 1994 24:00:00 GMT",
    b"Sun, 06 Nov 1994 08:60:00 GMT",
    b"Sun, 06 Nov 1994 08:49:61 GMT",
    b"Sun, 06 Nov 0000 08:49:37 GMT",   # year 0 used to raise ValueError
    b"Sun Nov  6 08:49:37 0000",
    b"Sunday, 06-Foo-94 08:49:37 GMT",
    b"Sunday, 31-Jun-94 08:49:37 GMT",
    b"Sun Nov 31 08:49:37 1994",
])
def test_parse_http_date_rejects(text: bytes) -> None:
    """Garbage, unknown months and out-of-range fields give None, never an exception."""
    assert parse_http_date(text, now_year=2024) is None


def test_parse_http_date_leap_day() -> None:
    """29 February exists in leap years."""
    assert parse_http_date(b"Thu, 29 Feb 1996 00:00:00 GMT") == calendar.timegm(
        (1996, 2, 29, 0, 0, 0))


@PROPS
@given(st.integers(min_value=0, max_value=253402300799))
def test_http_date_round_trip(ts: int) -> None:
    """parse_http_date inverts http_date for every second from 1970 to 9999."""
    assert parse_http_date(http_date(ts)) == ts


@PROPS
@given(st.binary(max_size=40) | st.from_regex(
    rb"\A[A-Z][a-z]{2,8},? [0-9 ]{1,2}[ -][A-Z][a-z]{2}[ -]\d{2,4} \d\d:\d\d:\d\d( GMT| \d{4})?\Z"))
def test_parse_http_date_never_raises(text: bytes) -> None:
    """parse_http_date returns an int or None for any input."""
    result = parse_http_date(text)
    assert result is None or isinstance(result, int)


# -- properties --------------------------------------------------------------------------

SMALL = {"max_head": 96, "max_request_line": 48, "max_headers": 4, "max_body": 40}

PIECES = [b"GET", b"HEAD", b" ", b"/", b"/a", b"*", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0",
          b"\r\n", b"\n", b"\r", b":", b"Host: x", b"Connection: close",
          b"Content-Length: 3", b"Content-Length: 0", b"Transfer-Encoding: chunked",
          b"0", b"5", b"a", b";x", b"abc", b"\x00", b"\x16\x03", b"\t", b"\xff"]
stream = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join) | st.binary(max_size=200)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


def check_only_http_errors(chunks: Sequence[bytes], **limits: int) -> None:
    """maybe_next gives Request or None; the only exception, a closing HTTPError, sticks."""
    parser = RequestParser(**limits)
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                req = parser.maybe_next()
            except HTTPError as err:
                assert err.close and parser.buffered == 0
                with pytest.raises(HTTPError):
                    parser.maybe_next()
                return
            assert req is None or isinstance(req, Request)
            if req is None:
                break


@PROPS
@given(stream, cuts, st.sampled_from([SMALL, {}]))
def test_any_bytes_any_split_only_http_errors(data: bytes, cut: list[int],
                                              limits: dict[str, int]) -> None:
    """Any bytes, split anyhow, give only Request, None or HTTPError."""
    check_only_http_errors(split_at(data, cut), **limits)
    check_only_http_errors(bytewise(data), **limits)


@PROPS
@given(stream.filter(lambda d: b"\n\n" not in d and b"\n\r\n" not in d), cuts)
def test_buffer_bounded_without_blank_line(data: bytes, cut: list[int]) -> None:
    """Until a blank line ends a head, the parser either raises or holds at most max_head bytes."""
    parser = RequestParser(**SMALL)
    for chunk in split_at(data * 3, cut):
        parser.feed(chunk)
        try:
            assert parser.maybe_next() is None
        except HTTPError:
            return
        assert parser.buffered <= SMALL["max_head"]


TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TARGET_BYTES = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
VALUE_BYTES = bytes(range(0x21, 0x7F)) + b" \t" + bytes(range(0x80, 0x100))
RESERVED = {"host", "content-length", "transfer-encoding", "connection"}
CONNECTION = {None: None, b"close": False, b"keep-alive": True, b"foo, close": False,
              b"Upgrade": None}


# Valid Host values (RFC 9112 §3.2): a reg-name or IP literal, perhaps a port, perhaps OWS.
hosts = st.sampled_from([b"", b"x", b"example.com:8080", b"127.0.0.1", b"[::1]:80",
                         b"[v1.a]", b"a%41-._~!$&'()*+,;=", b"h:", b" x \t"])


@st.composite
def valid_request(draw: st.DrawFn) -> tuple[bytes, Request]:
    """A random valid request (possibly with a discarded body) and the Request it must give."""
    method = draw(st.text(TCHARS, min_size=1, max_size=8)).encode()
    target = draw(st.just(b"*") | st.builds(lambda b: b"/" + b, st.binary(max_size=20).map(
        lambda b: bytes(TARGET_BYTES[x % len(TARGET_BYTES)] for x in b))))
    version = draw(st.sampled_from([b"HTTP/1.0", b"HTTP/1.1", b"HTTP/1.2"]))
    names = st.text(TCHARS, min_size=1, max_size=10).filter(lambda n: n.lower() not in RESERVED)
    values = st.binary(max_size=16).map(lambda b: bytes(VALUE_BYTES[x % len(VALUE_BYTES)]
                                                        for x in b))
    fields = draw(st.lists(st.tuples(names.map(str.encode), values), max_size=5))
    if version != b"HTTP/1.0" or draw(st.booleans()):
        at = draw(st.integers(0, len(fields)))
        fields.insert(at, (draw(st.sampled_from([b"Host", b"host", b"HOST"])),
                           draw(hosts)))
    conn = draw(st.sampled_from(list(CONNECTION)))
    if conn is not None:
        fields.append((b"Connection", conn))
    body = draw(st.none() | st.binary(max_size=10))
    if body is not None:
        fields.append((b"Content-Length", b"%d" % len(body)))
    eols = draw(st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=len(fields) + 2,
                         max_size=len(fields) + 2))
    lines = [name + b":" + value for name, value in fields]
    raw = (draw(st.sampled_from([b"", b"\r\n", b"\n\r\n"]))
           + b"%s %s %s" % (method, target, version) + eols[0]
           + b"".join(line + eol for line, eol in zip(lines, eols[1:-1], strict=True))
           + eols[-1] + (body or b""))
    keep = CONNECTION[conn]
    if keep is None:
        keep = version != b"HTTP/1.0"
    return raw, Request(method, target, b"HTTP/1.0" if version == b"HTTP/1.0" else b"HTTP/1.1",
                        tuple((n.lower(), v.strip(b" \t")) for n, v in fields), keep)


@PROPS
@given(st.lists(valid_request(), min_size=1, max_size=3), cuts)
def test_valid_requests_parse_identically_whatever_the_split(
        pipeline: list[tuple[bytes, Request]], cut: list[int]) -> None:
    """Generated valid (pipelined) requests give exactly their Requests, however split."""
    data = b"".join(raw for raw, _ in pipeline)
    expected = (tuple(req for _, req in pipeline), None, 0, False)
    assert outcome([data]) == expected
    assert outcome(split_at(data, cut)) == expected
    assert outcome(bytewise(data)) == expected


mutation = st.tuples(st.sampled_from(["flip", "insert", "delete"]),
                     st.integers(min_value=0, max_value=10_000), st.integers(0, 255))


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, byte in edits:
        i = pos % (len(buf) + 1)
        if kind == "insert":
            buf[i:i] = bytes([byte])
        elif i < len(buf):
            if kind == "flip":
                buf[i] ^= byte or 1
            else:
                del buf[i]
    return bytes(buf)


@PROPS
@given(st.lists(valid_request(), min_size=1, max_size=2),
       st.lists(mutation, min_size=1, max_size=4), cuts, st.sampled_from([SMALL, {}]))
def test_mutated_requests_only_http_errors_and_split_invariant(
        pipeline: list[tuple[bytes, Request]], edits: list[tuple[str, int, int]],
        cut: list[int], limits: dict[str, int]) -> None:
    """Flipped, inserted or deleted bytes give only HTTPError, and the same outcome in any split."""
    data = mutate(b"".join(raw for raw, _ in pipeline), edits)
    whole = outcome([data], **limits)
    assert outcome(split_at(data, cut), **limits) == whole
    assert outcome(bytewise(data), **limits) == whole


def test_chunked_trailer_lines_count_toward_the_body_limit() -> None:
    """Endless trailer lines are framing bytes of the body: past max_body they get 413."""
    parser = RequestParser(max_body=100)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
    assert parser.maybe_next() is not None
    with pytest.raises(HTTPError) as info:
        for _ in range(20):
            parser.feed(b"X-Trailer: padding\r\n")
            parser.maybe_next()
    assert info.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_one_header_over_max_field_is_431_whatever_the_split() -> None:
    """A single header line over the per-field limit is 431, even in a small head."""
    big = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 200 + b"\r\n\r\n"
    tr(big, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, [], max_field=100)
    tr(big + NEXT, [Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"cookie", b"a" * 200)),
                            True), NEXT_REQ], max_field=300)


@pytest.mark.parametrize("coding, status", [
    (b"chunked, chunked", HTTPStatus.BAD_REQUEST),
    (b"chunked\r\nTransfer-Encoding: chunked", HTTPStatus.BAD_REQUEST),
    (b",", HTTPStatus.BAD_REQUEST),
    (b"gzip, chunked", HTTPStatus.NOT_IMPLEMENTED),
])
def test_transfer_coding_lists(coding: bytes, status: HTTPStatus) -> None:
    """chunked applied twice is broken framing (400); a coding we cannot undo is 501."""
    tr(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n", status, [])


def test_empty_transfer_coding_elements_are_ignored() -> None:
    """`Transfer-Encoding: ,chunked` is plain chunked (RFC 9110 §5.6.1)."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n")
    assert parser.maybe_next() is not None
    assert parser.maybe_next() is None and parser.buffered == 0


BROWSER_GET = (b"GET /img/logo.png?v=2 HTTP/1.1\r\nHost: lan:8080\r\nUser-Agent: Mozilla/5.0\r\n"
               b"Accept: image/avif,*/*;q=0.8\r\nAccept-Encoding: gzip, br\r\n"
               b"Connection: keep-alive\r\n\r\n")


def test_a_common_request_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser's GET, whole in one read, is parsed by the one-pattern fast path (so the
    speed it gives cannot silently vanish) with the general path's result."""
    general = RequestParser()
    general.feed(BROWSER_GET[:10])
    assert general.maybe_next() is None  # a partial head: the general path from here on
    general.feed(BROWSER_GET[10:])
    expected = general.maybe_next()
    calls: list[object] = []
    original = RequestParser._maybe_simple_head

    def spy(self: RequestParser) -> Request | None:
        req = original(self)
        calls.append(req)
        return req

    monkeypatch.setattr(RequestParser, "_maybe_simple_head", spy)
    parser = RequestParser()
    parser.feed(BROWSER_GET + BROWSER_GET)
    assert parser.maybe_next() == expected == calls[0]
    assert parser.maybe_next() == expected == calls[1]  # pipelined: fast again
    assert parser.empty and expected is not None and expected.keep_alive


@pytest.mark.parametrize("variant", [
    BROWSER_GET.replace(b"GET", b"POST"),  # not GET or HEAD
    BROWSER_GET.replace(b"\r\n", b"\n"),  # bare LF line ends
    BROWSER_GET.replace(b"HTTP/1.1", b"HTTP/1.2"),  # another 1.x minor
    BROWSER_GET.replace(b"/img", b"http://lan:8080/img"),  # absolute form
    BROWSER_GET.replace(b"Accept:", b"Accept :"),  # invalid: the general path's 400
])
def test_other_requests_leave_the_fast_path_to_the_general_one(variant: bytes) -> None:
    """Whatever the fast path does not match gets exactly what the general path gives."""
    fast = RequestParser()
    fast.feed(variant)
    assert fast._maybe_simple_head() is None
    tr(variant, *reference_outcome(variant))


def reference_outcome(data: bytes) -> tuple[HTTPStatus | list[Request], list[Request]]:
    """What the general path alone says about `data` (fed in two parts, so the fast path,
    which runs only on a buffer not yet scanned, is never tried)."""
    parser = RequestParser()
    parser.feed(data[:1])
    parser.maybe_next()
    parser.feed(data[1:])
    reqs, err = drain(parser)
    return (err.status, reqs) if err is not None else (reqs, [])


def test_request_fields_hold_the_first_value_of_each_name() -> None:
    """`fields` (and `get`) give a repeated header's first value, as a scan would."""
    req = R(headers=((b"host", b"x"), (b"accept", b"a"), (b"accept", b"b")))
    assert req.fields == {b"host": b"x", b"accept": b"a"} and req.get(b"accept") == b"a"


# -- one answer per request -----------------------------------------------------------------

@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\nhelloXY\r\n", b"0\r\nno colon\r\n",
                                  b"f" * 16 + b"\r\n"])
def test_an_error_in_an_answered_body_is_marked_answered(body: bytes) -> None:
    """The body's request was already returned (and so answered): its framing error says
    so, and the caller closes without a second response."""
    reqs, err, _ = run([CHUNKED_HEAD + body])
    assert reqs == [CHUNKED_REQ]
    assert err is not None and err.answered


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n\r\n",                                   # no Host
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",                      # an invalid Host
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",   # an invalid length
    b"BAD\r\n\r\n",
])
def test_an_error_in_a_head_is_not_answered(data: bytes) -> None:
    """A head's own error is the answer to that request: not marked, even after a body."""
    _, err, _ = run([data])
    assert err is not None and not err.answered
    _, err, _ = run([CHUNKED_HEAD + b"0\r\n\r\n" + data])
    assert err is not None and not err.answered


@pytest.mark.parametrize("host", [
    b"", b"x", b"example.com", b"example.com:8080", b"h:", b"127.0.0.1:80", b"[::1]",
    b"[::1]:8080", b"[2001:db8::7]", b"[::ffff:1.2.3.4]", b"[v1.fe80::a+en1]", b"[V7.x]",
    b"a%20b", b"%41", b"xn--caf-dma.example", b"under_score", b"!$&'()*+,;=.~-",
    b"h:99999", b"h:0080",
])
def test_valid_host_values(host: bytes) -> None:
    """RFC 9112 §3.2 with RFC 3986's uri-host [ ":" port ]: a reg-name (empty too), an
    IPv4 address, an IP literal; port is any run of digits."""
    (req,), err, _ = run([b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"])
    assert err is None and req.get(b"host") == host


@pytest.mark.parametrize("host", [
    b"a b", b"a\tb", b"u@h", b"u:p@h", b"h:p", b"h:-1", b"h:80:81", b"h:+80", b"h: 80",
    b"[::1", b"::1]", b"[::1]x", b"[::1]:8x", b"[::g]", b"[1:2]", b"[1:2:3:4:5:6:7:8:9]",
    b"[]", b"[v1.]", b"[v.x]", b"[vx.y]", b"[fe80::1%eth0]", b"a/b", b"a?b", b"a#b", b"a\\b",
    b"%4", b"%zz", b"%", b"caf\xc3\xa9", b"a\"b", b"<x>", b"a[b]", b"h::",
])
def test_invalid_host_values_are_400(host: bytes) -> None:
    """A Host value outside that grammar is 400 (RFC 9112 §3.2: MUST), in both parser
    paths (the first request takes the fast one, a pipelined one the general one)."""
    for data in (b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                 b"GET / HTTP/1.1\nHost: " + host + b"\n\n"):
        reqs, err, _ = run([data])
        assert reqs == [] and err is not None
        assert err.status == BAD and err.close and err.detail == "invalid Host"


def test_an_invalid_host_in_http10_is_400_too() -> None:
    """HTTP/1.0 need not send Host, but one it sends must be valid."""
    _, err, _ = run([b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n"])
    assert err is not None and err.status == BAD


@pytest.mark.parametrize("data, status, limits", [
    (b"HEAD /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", HTTPStatus.REQUEST_URI_TOO_LONG,
     {"max_request_line": 250}),
    (b"HEAD / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 100 + b"\r\n\r\n",
     HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, {"max_head": 120}),
])
def test_a_limit_error_keeps_the_start_of_the_request_line(
        data: bytes, status: HTTPStatus, limits: dict[str, int]) -> None:
    """414 and 431 keep the line's first 200 bytes (CR dropped): the log shows what came,
    and the server sees the method (a HEAD's error gets no body)."""
    for chunks in ([data], bytewise(data)):
        _, err, _ = run(chunks, **limits)
        assert err is not None and err.status == status
        assert err.request_line == data.split(b"\r\n")[0][:200]


# -- heads seen before ---------------------------------------------------------------------------

MEMO_GET = b"GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"


def test_a_head_seen_before_is_answered_from_the_memo_with_the_same_request() -> None:
    """The second time the same bytes come (on any connection with the same limits), the
    fast path's work is skipped: the same Request, the same bytes consumed."""
    first = RequestParser()
    first.feed(MEMO_GET)
    req = first.maybe_next()
    assert req == R(b"/a", headers=((b"host", b"x"), (b"accept", b"*/*")))
    second = RequestParser()
    second.feed(MEMO_GET + b"GET /b HT")  # pipelined bytes after it stay buffered
    assert second.maybe_next() is req
    assert second.buffered == len(b"GET /b HT") and second.maybe_next() is None


@pytest.mark.parametrize(("head", "plain"), [
    (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"HEAD /a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", True),
    (b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
    (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", False),
    (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", False),
    *[(b"GET /a HTTP/1.1\r\nHost: x\r\n%s: v\r\n\r\n" % name, False)
      for name in (b"If-Match", b"If-None-Match", b"If-Modified-Since", b"If-Unmodified-Since",
                   b"If-Range", b"Range", b"Expect", b"Cache-Control")],
])
def test_a_plain_request_is_known_when_it_is_made(head: bytes, plain: bool) -> None:
    """`plain`: a keep-alive HTTP/1.1 GET or HEAD with no field that may change the answer
    to it (a precondition, a range, an expectation, Cache-Control)."""
    parser = RequestParser()
    parser.feed(head)
    req = parser.maybe_next()
    assert req is not None and req.plain is plain and req.routed is None


def test_referer_and_user_agent_are_the_first_values() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: one\r\nUser-Agent: two\r\n"
                b"Referer: http://x/\r\n\r\n")
    req = parser.maybe_next()
    assert req is not None and (req.referer, req.user_agent) == (b"http://x/", b"one")
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    req = parser.maybe_next()
    assert req is not None and (req.referer, req.user_agent) == (None, None)


def test_a_read_that_is_one_head_seen_before_is_not_even_fed() -> None:
    """`remembered(data)`: the connection's hot path. Only between requests, and only for
    exactly one whole head seen before; anything else is None, and the parser unchanged."""
    parser = RequestParser()
    assert parser.remembered(MEMO_GET) is None  # not seen yet
    parser.feed(MEMO_GET)
    req = parser.maybe_next()
    assert RequestParser().remembered(MEMO_GET) is req  # any parser with these limits
    assert parser.remembered(MEMO_GET) is req and parser.buffered == 0
    assert parser.remembered(MEMO_GET + b"GET") is None  # more than the head
    assert parser.remembered(MEMO_GET[:-2]) is None  # less
    parser.feed(b"GET /b")
    assert parser.remembered(MEMO_GET) is None  # bytes of another request wait before it
    assert parser.buffered == len(b"GET /b")
    posting = RequestParser()
    posting.feed(b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    assert posting.maybe_next() is not None and posting.in_body
    assert posting.remembered(MEMO_GET) is None  # the body's bytes come first
    broken = RequestParser()
    broken.feed(b"\x00\r\n\r\n")
    with pytest.raises(HTTPError):
        broken.maybe_next()
    assert broken.remembered(MEMO_GET) is None  # refused: nothing more is read


def test_a_memo_hit_skips_the_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = RequestParser()
    parser.feed(MEMO_GET)
    req = parser.maybe_next()
    monkeypatch.setattr(http11, "_SIMPLE_REQUEST_LINE", None)  # any parse would now fail
    parser.feed(MEMO_GET)
    assert parser.maybe_next() is req


def test_a_head_with_a_body_is_not_remembered() -> None:
    """Its Request is the same, but the body it announces must be armed each time."""
    data = b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    for _ in range(2):
        parser = RequestParser()
        parser.feed(data)
        assert parser.maybe_next() is not None and parser.in_body
        assert parser.maybe_next() is None and not parser.in_body and parser.buffered == 0
    assert all(data[:-3] not in heads for heads in http11._HEAD_MEMOS.values())


def test_each_set_of_limits_has_its_own_memo() -> None:
    """A head remembered under roomy limits is still judged by tighter ones."""
    roomy = RequestParser()
    roomy.feed(MEMO_GET)
    assert roomy.maybe_next() is not None
    tight = RequestParser(max_headers=1)
    tight.feed(MEMO_GET)
    with pytest.raises(HTTPError) as err:
        tight.maybe_next()
    assert err.value.status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


def test_a_long_head_is_not_remembered() -> None:
    long_get = b"GET /a HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n" % (b"c" * 4096)
    parser = RequestParser()
    parser.feed(long_get)
    assert parser.maybe_next() is not None and long_get not in parser._seen
    parser.feed(MEMO_GET)
    assert parser.maybe_next() is not None and MEMO_GET in parser._seen


def test_one_byte_of_the_next_request_stays_buffered_and_out_of_the_memo() -> None:
    """The head ends one byte before the buffer does: that byte is the next request's, kept
    in the buffer, and the memo's key is the head alone."""
    parser = RequestParser()
    parser.feed(MEMO_GET + b"G")
    req = parser.maybe_next()
    assert req is not None and parser.buffered == 1
    assert MEMO_GET in parser._seen and MEMO_GET + b"G" not in parser._seen
    assert RequestParser().remembered(MEMO_GET + b"G") is None


def test_a_head_of_exactly_the_memo_s_limit_is_remembered() -> None:
    padding = http11._HEAD_MEMO_BYTES - len(b"GET /a HTTP/1.1\r\nHost: x\r\nX: \r\n\r\n")
    head = b"GET /a HTTP/1.1\r\nHost: x\r\nX: %s\r\n\r\n" % (b"v" * padding)
    assert len(head) == http11._HEAD_MEMO_BYTES
    parser = RequestParser()
    parser.feed(head)
    assert parser.maybe_next() is not None and head in parser._seen


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http11, "_HEAD_MEMO_MAX", 4)
    parser = RequestParser()
    for i in range(10):
        parser.feed(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        assert parser.maybe_next() == R(b"/%d" % i, headers=((b"host", b"x"),))
        assert 1 <= len(parser._seen) <= 4


def test_a_head_with_no_field_lines_through_the_general_path() -> None:
    """An HTTP/1.0 request line alone with bare LFs, fed byte by byte (the general path):
    its line is the whole head, not all but its last byte."""
    parser = RequestParser()
    for byte in b"GET /a HTTP/1.0\n\n":
        parser.feed(bytes([byte]))
    req = parser.maybe_next()
    assert req == Request(b"GET", b"/a", b"HTTP/1.0", (), False)


def test_a_field_value_with_colons_line_by_line() -> None:
    """A section longer than max_field (each line within it) is checked line by line: a
    field splits at its first colon, so a URL's colons stay in the value."""
    parser = RequestParser(max_field=40)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nReferer: http://a.example:8080/\r\n"
                b"Accept: */*\r\n\r\n")
    req = parser.maybe_next()
    assert req is not None and req.headers == (
        (b"host", b"x"), (b"referer", b"http://a.example:8080/"), (b"accept", b"*/*"))
