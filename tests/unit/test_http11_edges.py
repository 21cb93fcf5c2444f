"""Layer 1: the edges of `evserver.http11` that test_http11.py leaves open.

Every limit one below, at and one past its boundary; the fast path (`_maybe_simple_head`)
agreeing with the general one at each edge; Connection tokens and keep-alive defaults;
build_head's exact bytes; DateLine's per-second cache; parse_http_date's formats and
ranges; Host validation and its bounded cache; the `answered` flag of body errors.
"""
from __future__ import annotations

import calendar
import time
from http import HTTPStatus

import pytest

from evserver import http11
from evserver.http11 import (
    DateLine,
    HTTPError,
    Request,
    RequestParser,
    build_head,
    http_date,
    parse_http_date,
)
from tests.unit.test_http11 import (
    BAD,
    CHUNKED_HEAD,
    CHUNKED_REQ,
    NEXT,
    NEXT_REQ,
    R,
    _head_of,
    _line_of,
    _req,
    bytewise,
    drain,
    run,
    tr,
)

TOO_LARGE = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
URI_TOO_LONG = HTTPStatus.REQUEST_URI_TOO_LONG
BODY_TOO_LARGE = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def fast_path(data: bytes, **limits: int) -> Request | HTTPError | None:
    """What the fast path alone makes of `data` in a fresh buffer."""
    parser = RequestParser(**limits)
    parser.feed(data)
    try:
        return parser._maybe_simple_head()
    except HTTPError as err:
        return err


def general_path(data: bytes, **limits: int) -> tuple[list[Request], HTTPError | None]:
    """What the general path alone makes of `data` (the first byte fed apart, so the fast
    path, tried only on a buffer not yet scanned, never runs)."""
    parser = RequestParser(**limits)
    parser.feed(data[:1])
    assert parser.maybe_next() is None
    parser.feed(data[1:])
    return drain(parser)


def check_edge(data: bytes, expected: Request | HTTPStatus, fast_takes: bool | None,
               **limits: int) -> None:
    """`data` gives `expected` whatever the split, both paths agree, and the fast path takes
    the request (True), leaves it to the general path (False), or either (None)."""
    tr(data, expected, **limits)
    reqs, err = general_path(data, **limits)
    got = fast_path(data, **limits)
    if isinstance(expected, HTTPStatus):
        assert err is not None and err.status == expected and not reqs
        assert got is None or isinstance(got, HTTPError) and got.status == expected
    else:
        assert err is None and reqs == [expected]
        assert got is None or got == expected
    if fast_takes is not None:
        assert (got is not None) is fast_takes


# -- limits one below, at and one past, on both paths ----------------------------------

def _with_field(length: int, eol: bytes = b"\r\n") -> tuple[bytes, Request]:
    """A request whose second field line is exactly `length` bytes (without its eol)."""
    value = b"v" * (length - 3)
    data = b"GET / HTTP/1.1" + eol + b"Host: x" + eol + b"X: " + value + eol + eol
    return data, R(headers=((b"host", b"x"), (b"x", value)))


@pytest.mark.parametrize("length, ok", [(59, True), (60, True), (61, False)])
def test_request_line_edge_on_both_paths(length: int, ok: bool) -> None:
    """A request line up to max_request_line is taken (by the fast path too); one byte
    more is 414 however it arrives, the fast path leaving it to the general one."""
    line = _line_of(length)
    data = line + b"\r\nHost: x\r\n\r\n"
    check_edge(data, R(line.split(b" ")[1]) if ok else URI_TOO_LONG, ok, max_request_line=60)


@pytest.mark.parametrize("length, ok", [(199, True), (200, True), (201, False)])
def test_head_edge_on_both_paths(length: int, ok: bool) -> None:
    """A head of up to max_head bytes, blank line included, is taken (by the fast path
    too); one byte more is 431 whatever the split."""
    data = _head_of(length)
    value = data.split(b"X: ")[1].rstrip(b"\r\n")
    expected = R(headers=((b"host", b"x"), (b"x", value))) if ok else TOO_LARGE
    check_edge(data, expected, ok, max_head=200)


@pytest.mark.parametrize("count, ok", [(3, True), (4, True), (5, False)])
def test_header_count_edge_on_both_paths(count: int, ok: bool) -> None:
    """max_headers field lines are taken (by the fast path too); one more is 431."""
    fields = [b"Host: x"] + [b"X-%d: v" % i for i in range(count - 1)]
    headers = ((b"host", b"x"), *((b"x-%d" % i, b"v") for i in range(count - 1)))
    check_edge(_req(b"GET / HTTP/1.1", *fields), R(headers=headers) if ok else TOO_LARGE, ok,
               max_headers=4)


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("length, ok", [(49, True), (50, True), (51, False)])
def test_field_line_edge_on_both_paths(length: int, ok: bool, eol: bytes) -> None:
    """A field line of max_field bytes (its CRLF or LF not counted) is fine, one byte more
    is 431, on both paths and whatever the split."""
    data, req = _with_field(length, eol)
    check_edge(data, req if ok else TOO_LARGE, None, max_field=50)


@pytest.mark.parametrize("section, fast", [(49, True), (50, True), (51, None)])
def test_fast_path_takes_a_field_section_up_to_max_field(section: int, fast: bool | None
                                                         ) -> None:
    """The fast path takes a whole field section (CRLFs included) of max_field bytes; a
    longer one gets the same Request from the general path."""
    data, req = _with_field(section - len(b"Host: x\r\n") - 2)
    assert len(data.split(b"\r\n", 1)[1]) - 2 == section
    check_edge(data, req, fast, max_field=50)


@pytest.mark.parametrize("length, ok", [(99, True), (100, True), (101, False)])
def test_content_length_edge_of_max_body(length: int, ok: bool) -> None:
    """A Content-Length of max_body is skipped and the next request parses; one more is 413."""
    head = b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length
    first = R(b"/a", headers=((b"host", b"x"), (b"content-length", b"%d" % length)))
    if ok:
        tr(head + b"b" * length + NEXT, [first, NEXT_REQ], max_body=100)
    else:
        check_edge(head, BODY_TOO_LARGE, None, max_body=100)


@pytest.mark.parametrize("digits, ok", [(17, True), (18, True), (19, False)])
def test_content_length_digit_count_edge(digits: int, ok: bool) -> None:
    """Up to 18 digits (zeros in front) is a Content-Length; 19 is 400 before int() runs."""
    text = b"0" * (digits - 1) + b"5"
    head = b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: " + text + b"\r\n\r\n"
    if ok:
        first = R(b"/a", headers=((b"host", b"x"), (b"content-length", text)))
        tr(head + b"hello" + NEXT, [first, NEXT_REQ])
    else:
        check_edge(head, BAD, None)


def test_content_length_of_18_nines_is_over_max_body_not_invalid() -> None:
    """18 digits are parsed as a number: 10**18 - 1 is 413, not a malformed 400."""
    check_edge(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 18 + b"\r\n\r\n",
               BODY_TOO_LARGE, None)


@pytest.mark.parametrize("digits, ok", [(15, True), (16, True), (17, False)])
def test_chunk_size_digit_count_edge(digits: int, ok: bool) -> None:
    """A chunk size of up to 16 hex digits (zeros in front) is read; 17 is 400."""
    body = b"0" * (digits - 1) + b"5\r\nhello\r\n0\r\n\r\n"
    if ok:
        tr(CHUNKED_HEAD + body + NEXT, [CHUNKED_REQ, NEXT_REQ])
    else:
        tr(CHUNKED_HEAD + body + NEXT, BAD, [CHUNKED_REQ])


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("lf_at, ok", [(4095, True), (4096, True), (4097, False)])
def test_chunk_line_limit_edge(lf_at: int, ok: bool, eol: bytes) -> None:
    """A chunk-size line whose LF is at index 4096 is read, one byte later is 413, however
    the bytes arrive (an unfinished line is refused at the same length)."""
    line = b"5;" + b"x" * (lf_at + 1 - len(b"5;") - len(eol)) + eol
    assert line.index(b"\n") == lf_at
    body = line + b"hello" + eol + b"0" + eol + eol
    if ok:
        tr(CHUNKED_HEAD + body + NEXT, [CHUNKED_REQ, NEXT_REQ])
    else:
        tr(CHUNKED_HEAD + body + NEXT, BODY_TOO_LARGE, [CHUNKED_REQ])


@pytest.mark.parametrize("lf_at, ok", [(4096, True), (4097, False)])
def test_trailer_line_limit_edge(lf_at: int, ok: bool) -> None:
    """Trailer lines have the chunk-line limit too."""
    line = b"T: " + b"t" * (lf_at - len(b"T: ") - 1) + b"\r\n"
    assert line.index(b"\n") == lf_at
    data = CHUNKED_HEAD + b"0\r\n" + line + b"\r\n" + NEXT
    if ok:
        tr(data, [CHUNKED_REQ, NEXT_REQ])
    else:
        tr(data, BODY_TOO_LARGE, [CHUNKED_REQ])


def test_values_keep_their_letters_when_the_section_is_over_max_field() -> None:
    """A section longer than max_field (each line within it) is split line by line; only
    blanks are stripped from values, as on the one-pattern path."""
    data = b"GET / HTTP/1.1\r\nHost: x\r\nX-Id: \tXAX \r\nX-Y: X\r\n\r\n"
    check_edge(data, R(headers=((b"host", b"x"), (b"x-id", b"XAX"), (b"x-y", b"X"))), None,
               max_field=20)


@pytest.mark.parametrize("limits", [{}, {"max_request_line": 50}])
def test_an_unfinished_chunk_line_is_not_read_as_a_request_head(limits: dict[str, int]) -> None:
    """While a chunk-size line arrives in pieces, its bytes are body framing: never judged
    against the request-line limit, nor remembered as part of the next head."""
    reqs, err, _ = run([CHUNKED_HEAD + b"5;" + b"e" * 60, b"\r\nhello\r\n0\r\n\r\n" + NEXT],
                       **limits)
    assert err is None and reqs == [CHUNKED_REQ, NEXT_REQ]


@pytest.mark.parametrize("size", [b"5X", b"5 x", b"5\x0b"])
def test_chunk_size_with_trailing_junk_is_400(size: bytes) -> None:
    """Only blanks may follow the chunk size before its extension or line end."""
    tr(CHUNKED_HEAD + size + b"\r\nhello\r\n0\r\n\r\n", BAD, [CHUNKED_REQ])


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_header_lines_do_not_count_against_the_request_line_limit(eol: bytes) -> None:
    """Only the first line is held to max_request_line: a field line ending right where
    a too-long request line would is fine, whatever the split."""
    start = b"GET / HTTP/1.1" + eol + b"Host: x" + eol + b"X: "
    value = b"v" * (61 - len(start) - len(eol) + 1)
    data = start + value + eol + eol
    assert data.index(eol + eol) + len(eol) - 1 == 61
    check_edge(data, R(headers=((b"host", b"x"), (b"x", value))), None, max_request_line=60)


def test_request_line_edge_with_a_trickled_cr() -> None:
    """A request line of max_request_line bytes plus its CR waits (the CR may end it);
    the LF then completes a valid request."""
    parser = RequestParser(max_request_line=60)
    parser.feed(_line_of(60) + b"\r")
    assert parser.maybe_next() is None
    parser.feed(b"\nHost: x\r\n\r\n")
    assert parser.maybe_next() == R(_line_of(60).split(b" ")[1])


# -- the fast path agrees with the general one ---------------------------------------------

COMMON = {
    "no fields, 1.0": (b"GET / HTTP/1.0\r\n\r\n", R(version=b"HTTP/1.0", headers=(),
                                                      keep_alive=False)),
    "HEAD": (b"HEAD /a?b=%20 HTTP/1.1\r\nHost: x\r\n\r\n", R(b"/a?b=%20", method=b"HEAD")),
    "1.0 keep-alive": (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                       R(version=b"HTTP/1.0", headers=((b"connection", b"keep-alive"),))),
    "1.1 close": (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                  R(headers=((b"host", b"x"), (b"connection", b"close")), keep_alive=False)),
    "obs-text and tab in a value": (b"GET / HTTP/1.1\r\nHost: x\r\nX: caf\xe9\tb\x80\xff\r\n\r\n",
                                    R(headers=((b"host", b"x"), (b"x", b"caf\xe9\tb\x80\xff")))),
    "blanks around values": (b"GET / HTTP/1.1\r\nHost:x\r\nX: \t v w \t\r\nY:\r\nZ: XAX \r\n\r\n",
                             R(headers=((b"host", b"x"), (b"x", b"v w"), (b"y", b""),
                                        (b"z", b"XAX")))),
    "every tchar in a name": (b"GET / HTTP/1.1\r\nHost: x\r\n!#$%&'*+-.^_`|~09azAZ: 1\r\n\r\n",
                              R(headers=((b"host", b"x"), (b"!#$%&'*+-.^_`|~09azaz", b"1")))),
    "a body to skip": (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                       R(headers=((b"host", b"x"), (b"content-length", b"0")))),
}


@pytest.mark.parametrize("data, expected", COMMON.values(), ids=COMMON.keys())
def test_fast_path_takes_common_requests(data: bytes, expected: Request) -> None:
    """Ordinary GET/HEAD requests in one read are taken by the fast path, with exactly the
    general path's Request, and leave nothing behind."""
    check_edge(data, expected, True)
    parser = RequestParser()
    parser.feed(data + NEXT)
    assert parser._maybe_simple_head() == expected and parser.buffered == len(NEXT)


DECLINED = {
    "space before colon": b"GET / HTTP/1.1\r\nHost: x\r\nX : v\r\n\r\n",
    "empty name": b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
    "no colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00\r\n\r\n",
    "DEL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n",
    "bare CR in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    "bare LF inside the section": b"GET / HTTP/1.1\r\nHost: x\nX: a\r\n\r\n",
}


@pytest.mark.parametrize("data", DECLINED.values(), ids=DECLINED.keys())
def test_fast_path_leaves_invalid_fields_to_the_general_path(data: bytes) -> None:
    """A field section the fast path cannot vouch for is left whole to the general path."""
    reqs, err = general_path(data)
    assert fast_path(data) is None
    if err is not None:
        check_edge(data, err.status, False)
    else:
        (req,) = reqs
        check_edge(data, req, False)


@pytest.mark.parametrize("data", [
    b"GET /x HTTP/1.1\r\nX: 1\r\n\r\n",                        # no Host
    b"GET /x HTTP/1.1\r\nHost: a b\r\n\r\n",                   # invalid Host
    b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: z\r\n\r\n",
])
@pytest.mark.parametrize("target", [b"/x", b"/" + b"t" * 300])
def test_both_paths_log_the_same_request_line(data: bytes, target: bytes) -> None:
    """A framing error keeps the request line, at most 200 bytes, whichever path found it."""
    data = data.replace(b"/x", target, 1)
    fast = fast_path(data)
    _, err = general_path(data)
    assert isinstance(fast, HTTPError) and err is not None
    line = (b"GET " + target + b" HTTP/1.1")[:200]
    assert fast.request_line == err.request_line == line
    assert first_error_line(data) == line


def first_error_line(data: bytes) -> bytes:
    parser = RequestParser()
    parser.feed(data)
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    return info.value.request_line


def test_a_bad_request_line_is_logged_at_most_200_bytes() -> None:
    """The general path's own request-line errors keep 200 bytes of it for the log."""
    line = b"GET /" + b"a" * 300 + b" HTTP/2.0"
    assert first_error_line(line + b"\r\nHost: x\r\n\r\n") == line[:200]


def test_an_extra_crlf_between_requests_keeps_the_fast_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Old clients send a CRLF after a request; the next request still takes the fast path."""
    parser = RequestParser()
    parser.feed(b"\r\n")
    assert parser.maybe_next() is None
    taken: list[Request | None] = []
    original = RequestParser._maybe_simple_head

    def spy(self: RequestParser) -> Request | None:
        taken.append(original(self))
        return taken[-1]

    monkeypatch.setattr(RequestParser, "_maybe_simple_head", spy)
    parser.feed(NEXT)
    assert parser.maybe_next() == NEXT_REQ and taken == [NEXT_REQ]


def test_after_the_general_path_the_next_request_takes_the_fast_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A request parsed by the general path leaves the next ones intact behind it, and
    they take the fast path again."""
    parser = RequestParser()
    parser.feed(b"GET /1 HTTP/1.1\nHost: x\n\n" + NEXT + NEXT)
    taken: list[Request | None] = []
    original = RequestParser._maybe_simple_head

    def spy(self: RequestParser) -> Request | None:
        taken.append(original(self))
        return taken[-1]

    monkeypatch.setattr(RequestParser, "_maybe_simple_head", spy)
    assert [parser.maybe_next() for _ in range(3)] == [R(b"/1"), NEXT_REQ, NEXT_REQ]
    assert parser.empty and taken == [None, NEXT_REQ, NEXT_REQ]


def test_a_head_completed_after_a_partial_read_leaves_no_stale_scan() -> None:
    """A head finished by a later read is parsed; a short request pipelined behind it
    (bare LF, so the general path's) is then found from its start."""
    reqs, err, parser = run([b"GET /1 HTTP/1.1\r\nHost: x\r\n",
                             b"\r\nGET / HTTP/1.1\nHost: x\n\n"])
    assert err is None and reqs == [R(b"/1"), R()] and parser.empty


# -- the request line and the bytes before it ----------------------------------------------

@pytest.mark.parametrize("prefix", [b"\n", b"\r\n", b"\n\n\r\n"])
def test_empty_lines_before_a_request_are_skipped(prefix: bytes) -> None:
    """CRLF or bare LF empty lines before a request line are ignored (RFC 9112 §2.2)."""
    tr(prefix + NEXT, NEXT_REQ)


def test_only_empty_lines_wait_for_more() -> None:
    """Empty lines alone are dropped and the parser waits, empty."""
    parser = RequestParser()
    parser.feed(b"\r\n\n")
    assert parser.maybe_next() is None and parser.buffered == 0 and parser.empty


@pytest.mark.parametrize("first", [b" ", b"\x1f", b"\x00"])
def test_a_first_byte_below_0x21_is_refused_at_once(first: bytes) -> None:
    """A request cannot start with a space or control byte: 400 on that byte alone."""
    parser = RequestParser()
    parser.feed(first)
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    assert info.value.status == BAD


def test_a_method_of_one_tchar_is_accepted() -> None:
    """"!" (0x21) is a token: the lowest byte a request line may start with."""
    tr(b"! / HTTP/1.1\r\nHost: x\r\n\r\n", R(method=b"!"))


def test_an_empty_target_is_400() -> None:
    """`GET  HTTP/1.1` has three parts, but an empty request-target."""
    tr(b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", BAD)


# -- Connection tokens and keep-alive defaults ---------------------------------------------

@pytest.mark.parametrize("version, connection, keep", [
    (b"HTTP/1.1", None, True),
    (b"HTTP/1.3", None, True),
    (b"HTTP/1.0", None, False),
    (b"HTTP/1.0", b"close, keep-alive", False),
    (b"HTTP/1.1", b"KEEP-ALIVE,\tClose", False),
    (b"HTTP/1.0", b"te ,\tKeep-Alive ", True),
    (b"HTTP/1.1", b"keep-alive", True),
    (b"HTTP/1.0", b"keepalive", False),
    (b"HTTP/1.1", b"", True),
    (b"HTTP/1.0", b",", False),
])
def test_connection_tokens_and_version_defaults(version: bytes, connection: bytes | None,
                                                keep: bool) -> None:
    """keep_alive: the version's default unless a Connection token (any case, any blanks
    around it) says close, which wins, or keep-alive."""
    fields = [b"Host: x"] + ([b"Connection: " + connection] if connection is not None else [])
    data = _req(b"GET / " + version, *fields)
    reqs, err = general_path(data)
    assert err is None and reqs[0].keep_alive is keep
    check_edge(data, reqs[0], None)


# -- framing headers ----------------------------------------------------------------------

@pytest.mark.parametrize("coding", [b"Chunked", b"CHUNKED", b" chunked , ", b", chunked"])
def test_transfer_coding_is_case_and_blank_insensitive(coding: bytes) -> None:
    """Transfer-Encoding names are compared case-insensitively, blanks and empty elements
    ignored (RFC 9110 §5.6.1)."""
    head = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
    (req,), err, _ = run([head])
    assert err is None
    tr(head + b"3\r\nabc\r\n0\r\n\r\n" + NEXT, [req, NEXT_REQ])


@pytest.mark.parametrize("coding", [b"gzip, chunked, chunked", b"chunked, gzip, chunked"])
def test_chunked_twice_after_another_coding_is_400(coding: bytes) -> None:
    """chunked applied twice is broken framing (400), even behind a coding we lack (501)."""
    tr(_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: " + coding), BAD)


@pytest.mark.parametrize("coding", [b"gzip , chunked", b"GZIP,Chunked"])
def test_unsupported_coding_before_chunked_is_501_in_any_spelling(coding: bytes) -> None:
    """A coding we cannot undo before chunked is 501, whatever its case and spacing."""
    tr(_req(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: " + coding),
       HTTPStatus.NOT_IMPLEMENTED)


def test_one_host_in_http10_is_fine() -> None:
    """HTTP/1.0 may send one Host."""
    tr(_req(b"GET / HTTP/1.0", b"Host: x"), R(version=b"HTTP/1.0", keep_alive=False))


# -- Host validation and its cache ---------------------------------------------------------

@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> set[bytes]:
    """An empty cache of valid Host values, in place of the module's."""
    cache: set[bytes] = set()
    monkeypatch.setattr(http11, "_VALID_HOSTS", cache)
    return cache


@pytest.mark.parametrize("host, ok", [
    (b"", True), (b"example.com:8080", True), (b"[::1]:8080", True),
    (b"[v1.fe80::a+en1]", True), (b"[V7.x]", True), (b"[::g]", False), (b"[1:2]", False),
    (b"[vx.y]", False), (b"a b", False),
])
def test_host_validity_with_an_empty_cache(hosts: set[bytes], host: bytes, ok: bool) -> None:
    """Host values are judged by the grammar, not by what earlier tests left in the cache."""
    _, err, _ = run([b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"])
    assert (err is None) is ok and (host in hosts) is ok


def test_valid_hosts_are_remembered_and_invalid_ones_never(hosts: set[bytes]) -> None:
    """A Host that passed is remembered; a refused one is not, so it is refused again."""
    run([b"GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n"])
    assert hosts == {b"a.example:80"}
    for _ in range(2):
        _, err, _ = run([b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"])
        assert err is not None and err.status == BAD
    assert hosts == {b"a.example:80"}


def test_a_remembered_host_is_accepted_again(hosts: set[bytes]) -> None:
    """A cached Host passes on the next requests, on both paths."""
    data = b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
    expected = R(headers=((b"host", b"[::1]:8080"),))
    for _ in range(2):
        check_edge(data, expected, True)
    assert hosts == {b"[::1]:8080"}


def test_the_host_cache_is_bounded(hosts: set[bytes]) -> None:
    """The cache holds at most _VALID_HOSTS_MAX values: when full, it starts over."""
    limit = http11._VALID_HOSTS_MAX
    for i in range(limit):
        (req,), err, _ = run([b"GET / HTTP/1.1\r\nHost: h%d\r\n\r\n" % i])
    assert len(hosts) == limit
    (req,), err, _ = run([b"GET / HTTP/1.1\r\nHost: newest\r\n\r\n"])
    assert err is None and hosts == {b"newest"}


def test_an_ip_literal_is_checked_even_after_other_hosts(hosts: set[bytes]) -> None:
    """Only the exact values that passed are cached: a bad IPv6 literal is still 400."""
    run([b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"])
    _, err, _ = run([b"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n"])
    assert err is not None and err.status == BAD and b"[::g]" not in hosts


# -- errors in an answered request's body --------------------------------------------------

@pytest.mark.parametrize("body, status", [
    (b"5;" + b"x" * 5000, BODY_TOO_LARGE),                      # chunk line too long
    (b"0\r\nX: \x01\r\n", BAD),                                 # bad trailer
    (b"3\r\nabc\r\n" + b"f" * 16 + b"\r\n", BODY_TOO_LARGE),      # over max_body
])
def test_every_body_error_is_answered_and_sticks(body: bytes, status: HTTPStatus) -> None:
    """An error in a returned request's body is marked answered (no second response), and
    the parser keeps raising that very error."""
    parser = RequestParser()
    parser.feed(CHUNKED_HEAD)
    assert parser.maybe_next() == CHUNKED_REQ
    parser.feed(body)
    with pytest.raises(HTTPError) as info:
        parser.maybe_next()
    err = info.value
    assert (err.status, err.answered, err.close) == (status, True, True)
    assert parser.buffered == 0
    parser.feed(NEXT)
    with pytest.raises(HTTPError) as again:
        parser.maybe_next()
    assert again.value is err and err.answered


def test_http_error_defaults() -> None:
    """A bare HTTPError closes, names no headers or body, and is not yet answered."""
    err = HTTPError(HTTPStatus.NOT_FOUND)
    assert (err.status, err.detail, err.headers, err.close, err.body) == (
        HTTPStatus.NOT_FOUND, "", (), True, None)
    assert (err.request_line, err.answered) == (b"", False)
    assert str(err) == "404 Not Found: "


# -- which check refused: the detail the debug log gives ---------------------------------

H11 = b"GET / HTTP/1.1\r\n"
DETAILS = {
    "control byte first": (b"\x16\x03\x01", {}, BAD, "request line starts with a control byte"),
    "long request line": (b"GET /" + b"a" * 60, {"max_request_line": 50}, URI_TOO_LONG,
                          "request line too long"),
    "big head": (_head_of(201), {"max_head": 200}, TOO_LARGE, "head too large"),
    "many headers": (H11 + b"Host: x\r\nX: 1\r\n\r\n", {"max_headers": 1}, TOO_LARGE,
                     "too many headers"),
    "long field": (_with_field(51)[0], {"max_field": 50}, TOO_LARGE, "header too large"),
    "two parts": (b"GET /\r\nHost: x\r\n\r\n", {}, BAD,
                  "request line is not 'method target version'"),
    "method": (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", {}, BAD, "method is not a token"),
    "empty target": (b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", {}, BAD, "bad request-target"),
    "target byte": (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", {}, BAD, "bad request-target"),
    "version": (b"GET / HTTP/1\r\nHost: x\r\n\r\n", {}, BAD, "bad HTTP version"),
    "HTTP/0.9": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", {}, BAD, "HTTP/0.x"),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", {},
                 HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/2 or later over text"),
    "invalid Host": (H11 + b"Host: a b\r\n\r\n", {}, BAD, "invalid Host"),
    "no Host": (H11 + b"X: 1\r\n\r\n", {}, BAD, "HTTP/1.1 needs exactly one Host"),
    "two Hosts": (H11 + b"Host: x\r\nHost: x\r\n\r\n", {}, BAD,
                  "HTTP/1.1 needs exactly one Host"),
    "two Hosts in 1.0": (b"GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n", {}, BAD,
                         "several Host headers"),
    "differing lengths": (H11 + b"Host: x\r\nContent-Length: 5, 6\r\n\r\n", {}, BAD,
                          "differing Content-Length values"),
    "bad length": (H11 + b"Host: x\r\nContent-Length: 5a\r\n\r\n", {}, BAD,
                   "invalid Content-Length"),
    "long length": (H11 + b"Host: x\r\nContent-Length: " + b"0" * 19 + b"\r\n\r\n", {}, BAD,
                    "invalid Content-Length"),
    "length over max_body": (H11 + b"Host: x\r\nContent-Length: 11\r\n\r\n", {"max_body": 10},
                             BODY_TOO_LARGE, "request body over the limit"),
    "TE and CL": (H11 + b"Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
                  {}, BAD, "Transfer-Encoding with Content-Length"),
    "TE in 1.0": (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", {}, BAD,
                  "Transfer-Encoding in HTTP/1.0"),
    "chunked first": (H11 + b"Host: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", {}, BAD,
                      "chunked is not the last coding, once"),
    "gzip first": (H11 + b"Host: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", {},
                   HTTPStatus.NOT_IMPLEMENTED, "unsupported transfer coding"),
    "obs-fold": (H11 + b"Host: x\r\nX: a\r\n b\r\n\r\n", {}, BAD, "obsolete line folding"),
    "obs-fold, tab": (H11 + b"Host: x\r\nX: a\r\n\tb\r\n\r\n", {}, BAD,
                      "obsolete line folding"),
    "space before colon": (H11 + b"Host: x\r\nX : a\r\n\r\n", {}, BAD, "bad header name"),
    "no colon": (H11 + b"Host: x\r\nX\r\n\r\n", {}, BAD, "bad header name"),
    "control in value": (H11 + b"Host: x\r\nX: a\x01b\r\n\r\n", {}, BAD,
                         "control character in a header value"),
}


@pytest.mark.parametrize("data, limits, status, detail", DETAILS.values(), ids=DETAILS.keys())
def test_a_refused_head_names_the_check_that_refused_it(
        data: bytes, limits: dict[str, int], status: HTTPStatus, detail: str) -> None:
    """Each refusal says which rule it broke (for the debug log), the same on both paths:
    two inputs with one status are told apart."""
    for chunks in ([data], bytewise(data)):
        reqs, err, _ = run(chunks, **limits)
        assert reqs == [] and err is not None
        assert (err.status, err.detail, err.answered) == (status, detail, False)


BODY_DETAILS = {
    "no CRLF after data": (b"1\r\nAB\r\n", {}, BAD, "chunk data not followed by CRLF"),
    "long chunk line": (b"5;" + b"x" * 5000, {}, BODY_TOO_LARGE, "chunk line too long"),
    "bare CR in a chunk line": (b"3\r\r\n", {}, BAD, "control character in chunked framing"),
    "bad size": (b"zz\r\n", {}, BAD, "bad chunk size"),
    "size over max_body": (b"65\r\n", {"max_body": 100}, BODY_TOO_LARGE,
                           "request body over the limit"),
    "framing over max_body": (b"0\r\n" + b"T: 1\r\n" * 20, {"max_body": 100}, BODY_TOO_LARGE,
                              "request body over the limit"),
    "bad trailer name": (b"0\r\nT : 1\r\n", {}, BAD, "bad header name"),
}


@pytest.mark.parametrize("body, limits, status, detail", BODY_DETAILS.values(),
                         ids=BODY_DETAILS.keys())
def test_a_refused_body_names_the_check_that_refused_it(
        body: bytes, limits: dict[str, int], status: HTTPStatus, detail: str) -> None:
    """Errors in a chunked body say which framing rule broke, and that the request was
    already answered."""
    for chunks in ([CHUNKED_HEAD + body], bytewise(CHUNKED_HEAD + body)):
        reqs, err, _ = run(chunks, **limits)
        assert reqs == [CHUNKED_REQ] and err is not None
        assert (err.status, err.detail, err.answered) == (status, detail, True)


# -- parser state ------------------------------------------------------------------------

def test_empty_between_requests_only() -> None:
    """`empty` is True with no byte waiting and no body being discarded."""
    parser = RequestParser()
    assert parser.empty
    parser.feed(b"G")
    assert not parser.empty
    parser.feed(b"ET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
    assert parser.maybe_next() is not None
    assert parser.buffered == 0 and not parser.empty  # the body is still to come
    parser.feed(b"ab")
    assert parser.maybe_next() is None and parser.empty


@pytest.mark.parametrize("data, line", [
    (b"GET /INDEX", b"GET /INDEX"),
    (b"GET /x HTTP/1.1\r\nHost", b"GET /x HTTP/1.1"),
    (b"GET /x HTTP/1.1\nHost", b"GET /x HTTP/1.1"),
    (b"\nGET /x", b""),
    (b"GET /a ", b"GET /a "),
    (b"GET /x HTTP/1.1\r\nHost: x\r\nAcc", b"GET /x HTTP/1.1"),
    (b"GET /" + b"a" * 300, b"GET /" + b"a" * 195),
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost", b"GET /" + b"a" * 195),
])
def test_partial_line_is_the_unfinished_request_line(data: bytes, line: bytes) -> None:
    """What a timed-out request is logged with: its first line, at most 200 bytes."""
    parser = RequestParser()
    parser.feed(data)
    assert parser.partial_line() == line


def test_partial_line_is_empty_while_a_body_is_discarded() -> None:
    """Body bytes are never logged as a request line."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nGET /body")
    assert parser.maybe_next() is not None
    assert parser.in_body and parser.partial_line() == b""


def test_request_equality_hash_and_repr() -> None:
    """Requests compare by all their parts, keep_alive included, and hash alike."""
    assert R() == R() and hash(R()) == hash(R())
    assert R() != R(keep_alive=False)
    assert R().__eq__(object()) is NotImplemented and R() != "x"
    assert repr(R(b"/r")) == ("Request(b'GET', b'/r', b'HTTP/1.1', ((b'host', b'x'),), True)")


# -- build_head ----------------------------------------------------------------------------

@pytest.mark.parametrize("keep_alive, http10, end", [
    (True, False, b"\r\n"),
    (True, True, b"Connection: keep-alive\r\n\r\n"),
    (False, False, b"Connection: close\r\n\r\n"),
    (False, True, b"Connection: close\r\n\r\n"),
])
def test_build_head_exact_bytes(keep_alive: bool, http10: bool, end: bytes) -> None:
    """Status line, the headers as given, then Connection only when it says something."""
    start = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/1\r\n"
    pairs = [(b"Content-Range", b"bytes 0-0/1")]
    assert build_head(HTTPStatus.PARTIAL_CONTENT, pairs, keep_alive=keep_alive,
                      http10=http10) == start + end
    assert build_head(HTTPStatus.PARTIAL_CONTENT, b"Content-Range: bytes 0-0/1\r\n",
                      keep_alive=keep_alive, http10=http10) == start + end


def test_build_head_defaults_to_http11() -> None:
    """Without http10, a kept connection gets no Connection header."""
    assert build_head(HTTPStatus.OK, b"", keep_alive=True) == b"HTTP/1.1 200 OK\r\n\r\n"


# -- DateLine ------------------------------------------------------------------------------

def test_date_line_is_formatted_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Responses within one second share one formatted Date line; the next second gets
    a new one."""
    calls: list[float] = []

    def counting(ts: float) -> bytes:
        calls.append(ts)
        return http_date(ts)

    monkeypatch.setattr(http11, "http_date", counting)
    date = DateLine()
    first = date.at(784111777.0)
    assert first == b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    assert date.at(784111777.999) == first and calls == [784111777]
    assert date.at(784111778.2) == b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n"
    assert date.at(784111777.5) == first and calls == [784111777, 784111778, 784111777]


@pytest.mark.parametrize("wall, line", [
    (0.0, b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
    (1.5, b"Date: Thu, 01 Jan 1970 00:00:01 GMT\r\n"),
])
def test_date_line_first_call_formats_its_second(wall: float, line: bytes) -> None:
    """The first call formats its own second, even one of the first seconds of 1970."""
    assert DateLine().at(wall) == line


# -- parse_http_date -----------------------------------------------------------------------

SUNDAY = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize("text, expected", [
    (b"Mon, 01 Jan 0001 00:00:00 GMT", calendar.timegm((1, 1, 1, 0, 0, 0))),
    (b"Sun, 06 Nov 1994 23:59:59 GMT", SUNDAY - (8 * 3600 + 49 * 60 + 37) + 86399),
    (b"Sun, 06 Nov 1994 08:49:60 GMT", SUNDAY + 23),       # a leap second
    (b"Sun, 06 Nov 1994 00:00:00 GMT", SUNDAY - (8 * 3600 + 49 * 60 + 37)),
    (b"Fri, 31 Jan 2025 00:00:00 GMT", calendar.timegm((2025, 1, 31, 0, 0, 0))),
    (b"Sun, 30 Nov 1994 08:49:37 GMT", SUNDAY + 24 * 86400),
    (b"Tue, 29 Feb 2000 00:00:00 GMT", 951782400),
    (b"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799),
    (b"Sun Nov  6 08:49:37 1994", SUNDAY),
    (b"Wednesday, 06-Nov-94 08:49:37 GMT", SUNDAY),       # the weekday is not checked
    (b"Sun, 06 Dec 1994 08:49:37 GMT", SUNDAY + 30 * 86400),
])
def test_parse_http_date_field_ranges(text: bytes, expected: int) -> None:
    """Each field up to its largest valid value parses, in each of the three formats."""
    assert parse_http_date(text, now_year=2024) == expected


@pytest.mark.parametrize("text", [
    b"Sun, 06 Nov 1994 08:49:37 gmt",
    b"Sun,06 Nov 1994 08:49:37 GMT",
    b"Sun, 06 Nov 94 08:49:37 GMT",
    b"Sun, 06-Nov-94 08:49:37 GMT",        # RFC 850 needs the full weekday
    b"Sunday, 06-Nov-1994 08:49:37 GMT",
    b"Sun Nov 6 08:49:37 1994",            # asctime pads the day to two characters
    b"Sun Nov  6 08:49:37 94",
    b"Sun, 06 Nov 1994 8:49:37 GMT",
])
def test_parse_http_date_rejects_near_misses(text: bytes) -> None:
    """A date that is almost one of the three formats is not a date."""
    assert parse_http_date(text, now_year=2024) is None


def test_rfc850_year_defaults_to_the_current_century_window() -> None:
    """Without now_year, a two-digit year is read against the clock's current year."""
    year = time.gmtime().tm_year
    got = parse_http_date(b"Monday, 01-Mar-%02d 00:00:00 GMT" % (year % 100))
    assert got == calendar.timegm((year, 3, 1, 0, 0, 0))


@pytest.mark.parametrize("now_year, yy, year", [
    (2000, b"50", 2050), (2000, b"51", 1951), (2000, b"00", 2000), (2000, b"99", 1999),
    (2099, b"49", 2149), (2099, b"50", 2050), (2099, b"99", 2099),
])
def test_rfc850_two_digit_year_window_edges(now_year: int, yy: bytes, year: int) -> None:
    """The window is now_year - 49 .. now_year + 50, at both ends of a century."""
    got = parse_http_date(b"Monday, 01-Mar-%s 00:00:00 GMT" % yy, now_year=now_year)
    assert got == calendar.timegm((year, 3, 1, 0, 0, 0))


@pytest.mark.parametrize("last", [b" ", b"X"])
def test_a_cut_request_line_keeps_its_200th_byte_whatever_it_is(last: bytes) -> None:
    """The log's request line of a 414 is the line's first 200 bytes as sent: only a CR is
    dropped from its end, never a space or another byte."""
    line = b"GET /" + b"a" * 194 + last + b"b" * 100 + b" HTTP/1.1"
    _, err, _ = run([line + b"\r\n\r\n"], max_request_line=250)
    assert err is not None and err.request_line == line[:200]
    assert err.request_line.endswith(last)


def test_the_slow_field_path_drops_only_the_cr_of_crlf_lines() -> None:
    """A section over max_field in all (each line within it) takes the line-by-line path;
    with CRLF and bare-LF lines mixed, only the CRs go: values keep their last byte."""
    reqs, err, _ = run([b"GET / HTTP/1.1\r\nHost: x\nX-A: abc\r\nX-B: def\n\r\n"],
                       max_field=16)
    assert err is None
    assert reqs[0].headers == ((b"host", b"x"), (b"x-a", b"abc"), (b"x-b", b"def"))
