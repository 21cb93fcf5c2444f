"""Layer 1: the pure RFC 9110 rules in `evserver.semantics` (no sockets, no clock, no files).

Conditional requests (§13), byte ranges and multipart/byteranges (§14), Accept-Encoding
(§12.5.3). Mostly tables; a Hypothesis property checks parse_range against a byte-set model.
"""
from __future__ import annotations

import email
import re
from http import HTTPStatus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver.http11 import Request, http_date
from evserver.semantics import (
    RangeSpec,
    Validators,
    accepted_encodings,
    content_range,
    if_range_allows,
    multipart_boundary,
    multipart_plan,
    parse_range,
    precondition_status,
    prefers_json,
    unsatisfied_range,
)

MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
NOW = MTIME + 3600.25
ETAG = b'"1f-5e0a-3"'
V = Validators(ETAG, MTIME)
PROPS = settings(max_examples=300, deadline=None)

AT = http_date(MTIME)
BEFORE = http_date(MTIME - 1)
AFTER = http_date(MTIME + 1)
FUTURE = http_date(NOW + 60)
NOW_DATE = http_date(NOW)  # NOW's whole second, not later than NOW
GARBAGE = b"yesterday"
PRE, NM = HTTPStatus.PRECONDITION_FAILED, HTTPStatus.NOT_MODIFIED


def req(*headers: tuple[bytes, bytes], method: bytes = b"GET") -> Request:
    return Request(method, b"/f", b"HTTP/1.1", ((b"host", b"x"), *headers), True)


# -- precondition_status ---------------------------------------------------------------

IM, IUS, INM, IMS = b"if-match", b"if-unmodified-since", b"if-none-match", b"if-modified-since"

PRECONDITIONS = [
    # (id, method, headers, expected)
    ("none", b"GET", (), None),
    # If-Match: strong comparison, `*`, lists
    ("im-match", b"GET", ((IM, ETAG),), None),
    ("im-other", b"GET", ((IM, b'"other"'),), PRE),
    ("im-star", b"GET", ((IM, b"*"),), None),
    ("im-weak-never-matches", b"GET", ((IM, b"W/" + ETAG),), PRE),
    ("im-list", b"PUT", ((IM, b'"a", ' + ETAG),), None),
    ("im-list-spaces", b"GET", ((IM, b' "a" ,\t' + ETAG + b' , "b" '),), None),
    ("im-list-empty-elements", b"GET", ((IM, b'"a",,' + ETAG + b","),), None),
    ("im-list-none", b"GET", ((IM, b'"a", "b"'),), PRE),
    ("im-unquoted-malformed", b"GET", ((IM, ETAG.strip(b'"')),), PRE),
    ("im-star-with-tags-malformed", b"GET", ((IM, b"*, " + ETAG),), PRE),
    ("im-tags-without-comma", b"GET", ((IM, b'"a"' + ETAG),), PRE),
    ("im-two-lines-combined", b"GET", ((IM, b'"a"'), (IM, ETAG)), None),
    ("im-prefix-is-not-match", b"GET", ((IM, ETAG[:-2] + b'"'),), PRE),
    # If-Unmodified-Since: only without If-Match; invalid dates ignored
    ("ius-older-than-mtime", b"GET", ((IUS, BEFORE),), PRE),
    ("ius-equal", b"GET", ((IUS, AT),), None),
    ("ius-newer", b"GET", ((IUS, AFTER),), None),
    ("ius-invalid-ignored", b"GET", ((IUS, GARBAGE),), None),
    ("ius-list-of-dates-ignored", b"GET", ((IUS, BEFORE + b", " + BEFORE),), None),
    ("ius-two-lines-ignored", b"GET", ((IUS, BEFORE), (IUS, BEFORE)), None),
    ("ius-ignored-when-if-match", b"GET", ((IM, ETAG), (IUS, BEFORE)), None),
    ("ius-ignored-even-if-im-star", b"GET", ((IM, b"*"), (IUS, BEFORE)), None),
    # If-None-Match: weak comparison; 304 for GET/HEAD, 412 otherwise
    ("inm-match-get", b"GET", ((INM, ETAG),), NM),
    ("inm-match-head", b"HEAD", ((INM, ETAG),), NM),
    ("inm-match-post", b"POST", ((INM, ETAG),), PRE),
    ("inm-match-delete", b"DELETE", ((INM, ETAG),), PRE),
    ("inm-weak-matches-weakly", b"GET", ((INM, b"W/" + ETAG),), NM),
    ("inm-star", b"GET", ((INM, b"*"),), NM),
    ("inm-star-put", b"PUT", ((INM, b"*"),), PRE),
    ("inm-list", b"GET", ((INM, b'"a", W/"b", ' + ETAG),), NM),
    ("inm-list-spaces-weak", b"GET", ((INM, b' W/"a" ,  W/' + ETAG + b" "),), NM),
    ("inm-list-none", b"GET", ((INM, b'"a", W/"b"'),), None),
    ("inm-malformed-no-304", b"GET", ((INM, b"W/ " + ETAG),), None),
    ("inm-two-lines", b"GET", ((INM, b'"a"'), (INM, ETAG)), NM),
    ("inm-lowercase-w-is-not-weak", b"GET", ((INM, b"w/" + ETAG),), None),
    # precedence (§13.2.2)
    ("im-fail-beats-inm-match", b"GET", ((IM, b'"x"'), (INM, ETAG)), PRE),
    ("im-pass-then-inm-match", b"GET", ((IM, ETAG), (INM, ETAG)), NM),
    ("ius-fail-beats-inm-match", b"GET", ((IUS, BEFORE), (INM, ETAG)), PRE),
    ("ius-fail-beats-ims", b"GET", ((IUS, BEFORE), (IMS, AT)), PRE),
    ("ius-invalid-then-inm", b"GET", ((IUS, GARBAGE), (INM, ETAG)), NM),
    ("inm-present-ims-ignored-no-304", b"GET", ((INM, b'"other"'), (IMS, AT)), None),
    ("inm-present-ims-ignored-no-200", b"GET", ((INM, ETAG), (IMS, BEFORE)), NM),
    # If-Modified-Since: GET/HEAD only, valid, not in the future, mtime <= date
    ("ims-equal", b"GET", ((IMS, AT),), NM),
    ("ims-later-than-mtime", b"HEAD", ((IMS, AFTER),), NM),
    ("ims-at-now", b"GET", ((IMS, NOW_DATE),), NM),
    ("ims-older", b"GET", ((IMS, BEFORE),), None),
    ("ims-future-ignored", b"GET", ((IMS, FUTURE),), None),
    ("ims-invalid-ignored", b"GET", ((IMS, GARBAGE),), None),
    ("ims-two-lines-ignored", b"GET", ((IMS, AT), (IMS, AT)), None),
    ("ims-post-ignored", b"POST", ((IMS, AT),), None),
    ("ims-rfc850", b"GET", ((IMS, b"Tuesday, 14-Nov-23 22:13:20 GMT"),), NM),
    ("ims-asctime", b"GET", ((IMS, b"Tue Nov 14 22:13:20 2023"),), NM),
    ("ims-asctime-one-second-early", b"GET", ((IMS, b"Tue Nov 14 22:13:19 2023"),), None),
]


@pytest.mark.parametrize(("method", "headers", "expected"),
                         [p[1:] for p in PRECONDITIONS], ids=[p[0] for p in PRECONDITIONS])
def test_precondition_status(method: bytes, headers: tuple[tuple[bytes, bytes], ...],
                             expected: HTTPStatus | None) -> None:
    """RFC 9110 §13.2.2 evaluation order and each condition's comparison."""
    assert precondition_status(req(*headers, method=method), V, NOW) == expected


def test_dates_are_what_the_table_says() -> None:
    """The table's dates really are MTIME, MTIME±1 and after NOW (guards the fixtures)."""
    assert AT == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert (BEFORE, AFTER) == (b"Tue, 14 Nov 2023 22:13:19 GMT", b"Tue, 14 Nov 2023 22:13:21 GMT")
    assert FUTURE > NOW_DATE


def test_entity_tag_with_a_comma_inside() -> None:
    """A comma is a legal etagc: lists are parsed by tags, not split on commas."""
    v = Validators(b'"a,b"', MTIME)
    assert precondition_status(req((INM, b'"a,b"')), v, NOW) is NM
    assert precondition_status(req((INM, b'"a", "b"')), v, NOW) is None
    assert precondition_status(req((IM, b'"x", "a,b"')), v, NOW) is None
    assert precondition_status(req((IM, b'"a"')), v, NOW) is PRE


def test_ims_future_check_uses_now_argument() -> None:
    """The future check compares with the `now` passed in, not with the real clock."""
    headers = ((IMS, AFTER),)
    assert precondition_status(req(*headers), V, MTIME + 1) is NM
    assert precondition_status(req(*headers), V, MTIME + 0.5) is None


# -- if_range_allows ---------------------------------------------------------------------

IF_RANGE = [
    ("absent", None, NOW, True),
    ("etag-strong-match", ETAG, NOW, True),
    ("etag-with-spaces", b"  " + ETAG + b" ", NOW, True),
    ("etag-other", b'"other"', NOW, False),
    ("etag-weak-never", b"W/" + ETAG, NOW, False),
    ("etag-list-not-allowed", ETAG + b", " + ETAG, NOW, False),
    ("etag-unterminated", ETAG[:-1], NOW, False),
    ("date-equal-strong", AT, NOW, True),
    ("date-equal-exactly-1s-old", AT, MTIME + 1.0, True),
    ("date-equal-but-weak", AT, MTIME + 0.999, False),
    ("date-equal-but-mtime-in-future", AT, MTIME - 5.0, False),
    ("date-later", AFTER, NOW, False),
    ("date-earlier", BEFORE, NOW, False),
    ("date-asctime-equal", b"Tue Nov 14 22:13:20 2023", NOW, True),
    ("garbage", GARBAGE, NOW, False),
    ("empty", b"", NOW, False),
]


@pytest.mark.parametrize(("value", "now", "expected"), [c[1:] for c in IF_RANGE],
                         ids=[c[0] for c in IF_RANGE])
def test_if_range_allows(value: bytes | None, now: float, expected: bool) -> None:
    """RFC 9110 §13.1.5: strong entity-tag match, or an exact and strong Last-Modified date."""
    assert if_range_allows(value, V, now) is expected


# -- parse_range ---------------------------------------------------------------------------

BIG = b"9" * 5000  # int() of this many digits raises in Python 3.11: must not be converted

RANGES: list[tuple[str, bytes | None, int, RangeSpec | None]] = [
    ("absent", None, 1000, None),
    ("first-last", b"bytes=0-99", 1000, [(0, 99)]),
    ("single-byte", b"bytes=5-5", 1000, [(5, 5)]),
    ("whole", b"bytes=0-999", 1000, [(0, 999)]),
    ("open-ended", b"bytes=500-", 1000, [(500, 999)]),
    ("last-clipped", b"bytes=900-5000", 1000, [(900, 999)]),
    ("suffix", b"bytes=-500", 1000, [(500, 999)]),
    ("suffix-bigger-than-file", b"bytes=-5000", 1000, [(0, 999)]),
    ("suffix-zero-unsatisfiable", b"bytes=-0", 1000, []),
    ("suffix-leading-zeros", b"bytes=-010", 1000, [(990, 999)]),
    ("first-at-size-unsatisfiable", b"bytes=1000-", 1000, []),
    ("first-past-size", b"bytes=1000-2000", 1000, []),
    ("unit-case-insensitive", b"Bytes=0-1", 1000, [(0, 1)]),
    ("unit-upper", b"BYTES=0-1", 1000, [(0, 1)]),
    ("leading-zeros", b"bytes=000-001", 1000, [(0, 1)]),
    # size 0: nothing is satisfiable
    ("size0-open", b"bytes=0-", 0, []),
    ("size0-suffix", b"bytes=-1", 0, []),
    ("size0-malformed-still-none", b"bytes=x", 0, None),
    # huge numbers
    ("huge-last", b"bytes=0-" + BIG, 1000, [(0, 999)]),
    ("huge-first", b"bytes=" + BIG + b"-", 1000, []),
    ("huge-suffix", b"bytes=-" + BIG, 1000, [(0, 999)]),
    ("huge-first-gt-huge-last", b"bytes=" + BIG + b"-" + BIG[:-1], 1000, None),
    ("huge-equal", b"bytes=" + BIG + b"-" + BIG, 1000, []),
    ("u64-overflow", b"bytes=18446744073709551616-", 1000, []),
    # malformed -> ignore the header
    ("first-gt-last", b"bytes=5-4", 1000, None),
    ("first-gt-last-among-good", b"bytes=0-1,5-4", 1000, None),
    ("no-unit", b"0-99", 1000, None),
    ("other-unit", b"items=0-1", 1000, None),
    ("empty-set", b"bytes=", 1000, None),
    ("only-commas", b"bytes=,, ,", 1000, None),
    ("dash-only", b"bytes=-", 1000, None),
    ("no-dash", b"bytes=5", 1000, None),
    ("two-dashes", b"bytes=1-2-3", 1000, None),
    ("negative", b"bytes=-5-6", 1000, None),
    ("plus-sign", b"bytes=+1-2", 1000, None),
    ("hex", b"bytes=0x1-2", 1000, None),
    ("space-inside-spec", b"bytes=0 - 1", 1000, None),
    # chosen: OWS around "=" is not in the grammar, so `bytes = 0-1` is ignored (200)
    ("space-around-equals", b"bytes = 0-1", 1000, None),
    ("space-after-equals", b"bytes= 0-1", 1000, [(0, 1)]),  # OWS before a list element
    ("semicolon-sep", b"bytes=0-1;2-3", 1000, None),
    ("unicode-digits", "bytes=٠-١".encode(), 1000, None),
    # list syntax: OWS around commas, empty elements
    ("empty-elements", b"bytes=0-1,,2-3", 1000, [(0, 3)]),
    ("spaces-around-commas", b"bytes=0-1 ,\t 5-6 , ", 1000, [(0, 1), (5, 6)]),
    ("leading-comma", b"bytes=,0-1", 1000, [(0, 1)]),
    # unsatisfiable ones are dropped
    ("drop-unsatisfiable", b"bytes=2000-,0-1", 1000, [(0, 1)]),
    ("all-unsatisfiable", b"bytes=2000-,-0,1000-1001", 1000, []),
    # disjoint: the client's order is kept
    ("order-kept", b"bytes=500-599,0-99", 1000, [(500, 599), (0, 99)]),
    ("order-kept-three", b"bytes=-10,0-0,100-199", 1000, [(990, 999), (0, 0), (100, 199)]),
    ("gap-of-one-not-touching", b"bytes=10-19,0-8", 1000, [(10, 19), (0, 8)]),
    # overlapping or adjacent: sorted and coalesced
    ("overlap", b"bytes=0-10,5-20", 1000, [(0, 20)]),
    ("adjacent", b"bytes=10-19,0-9", 1000, [(0, 19)]),
    ("contained", b"bytes=0-99,10-20", 1000, [(0, 99)]),
    ("one-pair-sorts-all", b"bytes=900-999,0-9,10-19", 1000, [(0, 19), (900, 999)]),
    ("suffix-overlap", b"bytes=-100,850-920", 1000, [(850, 999)]),
    ("chain", b"bytes=30-39,0-9,20-29,10-19", 1000, [(0, 39)]),
    # pathological: more bytes asked for than the file has (before coalescing)
    ("sum-over-size", b"bytes=0-,0-", 1000, None),
    ("sum-over-size-small", b"bytes=0-0,0-0", 1, None),
    ("sum-equal-size-ok", b"bytes=0-499,500-999", 1000, [(0, 999)]),
    ("sum-after-clipping", b"bytes=0-5000", 1000, [(0, 999)]),
    ("sum-over-size-overlapping", b"bytes=0-600,400-999", 1000, None),
]


@pytest.mark.parametrize(("value", "size", "expected"), [c[1:] for c in RANGES],
                         ids=[c[0] for c in RANGES])
def test_parse_range(value: bytes | None, size: int, expected: RangeSpec | None) -> None:
    """RFC 9110 §14.1.2 byte ranges: None ignores the header, [] is 416, else what to send."""
    assert parse_range(value, size) == expected


def test_range_count_limit() -> None:
    """More than max_ranges range-specs: ignored, even when they are all disjoint."""
    specs = [b"%d-%d" % (i * 10, i * 10) for i in range(101)]
    assert parse_range(b"bytes=" + b",".join(specs[:100]), 10_000) == [
        (i * 10, i * 10) for i in range(100)]
    assert parse_range(b"bytes=" + b",".join(specs), 10_000) is None
    assert parse_range(b"bytes=0-0,2-2,4-4", 100, max_ranges=2) is None
    assert parse_range(b"bytes=0-0,2-2", 100, max_ranges=2) == [(0, 0), (2, 2)]


def test_range_count_includes_unsatisfiable_and_ignores_empty() -> None:
    """Every range-spec counts toward the limit (unsatisfiable too); empty elements do not."""
    assert parse_range(b"bytes=0-0,5000-,6000-", 100, max_ranges=2) is None
    assert parse_range(b"bytes=0-0,,,,,2-2", 100, max_ranges=2) == [(0, 0), (2, 2)]


def test_range_huge_header_is_fast() -> None:
    """A head-sized Range of huge numbers is answered without big-int work or errors."""
    value = b"bytes=" + b",".join([b"-" + b"9" * 100] * 100)
    assert parse_range(value, 10) is None  # 100 whole-file ranges: sum over size


# -- Content-Range and multipart/byteranges -------------------------------------------------

def test_content_range_values() -> None:
    """§14.4: `bytes first-last/size` and `bytes */size`."""
    assert content_range(0, 99, 1000) == b"bytes 0-99/1000"
    assert content_range(999, 999, 1000) == b"bytes 999-999/1000"
    assert unsatisfied_range(1000) == b"bytes */1000"
    assert unsatisfied_range(0) == b"bytes */0"


def test_multipart_boundary_is_a_valid_boundary() -> None:
    """ASCII, 1..70 bchars (RFC 2046 §5.1.1); random (fresh per call)."""
    seen = {multipart_boundary() for _ in range(20)}
    assert len(seen) == 20
    for boundary in seen:
        assert 1 <= len(boundary) <= 70
        assert re.fullmatch(rb"[0-9A-Za-z'()+_,\-./:=?]+", boundary)


DATA = bytes(range(256)) * 8 + b"\r\n--\r\n\n\r" * 5  # binary, with line ends and dashes


def assemble(pieces: list[bytes | tuple[int, int]], data: bytes) -> bytes:
    out = bytearray()
    for piece in pieces:
        if isinstance(piece, bytes):
            out += piece
        else:
            offset, length = piece
            assert 0 <= offset and offset + length <= len(data)
            out += data[offset:offset + length]
    return bytes(out)


@pytest.mark.parametrize("ranges", [
    [(0, 0)],
    [(0, 9), (100, 199)],
    [(len(DATA) - 50, len(DATA) - 1), (0, 0), (300, 1000)],
    [(i * 7, i * 7 + 2) for i in range(30)],
], ids=["one", "two", "reordered", "thirty"])
def test_multipart_plan_parses_back(ranges: RangeSpec) -> None:
    """The assembled body parses as multipart/byteranges: each part's headers and bytes."""
    boundary = multipart_boundary()
    ctype = b"application/octet-stream"
    pieces, total = multipart_plan(ranges, len(DATA), ctype, boundary)
    body = assemble(pieces, DATA)
    assert total == len(body)
    assert body.startswith(b"\r\n--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    spans = [(first, last - first + 1) for first, last in ranges]
    assert [p for p in pieces if isinstance(p, tuple)] == spans

    msg = email.message_from_bytes(
        b"Content-Type: multipart/byteranges; boundary=" + boundary + b"\r\n\r\n" + body)
    assert msg.is_multipart()
    parts = msg.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == len(ranges)
    for part, (first, last) in zip(parts, ranges, strict=True):
        assert part["Content-Type"] == ctype.decode()
        assert part["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert part.get_payload(decode=True) == DATA[first:last + 1]


def test_multipart_plan_exact_layout() -> None:
    """Byte-exact pieces for a small plan (RFC 9110 §14.6, nginx's layout)."""
    pieces, total = multipart_plan([(0, 1), (5, 9)], 10, b"text/plain", b"B")
    assert pieces == [
        b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n", (0, 2),
        b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-9/10\r\n\r\n", (5, 5),
        b"\r\n--B--\r\n",
    ]
    assert total == sum(len(p) if isinstance(p, bytes) else p[1] for p in pieces)


# -- accepted_encodings ---------------------------------------------------------------------

ENCODINGS: list[tuple[bytes | None, tuple[str, ...]]] = [
    (None, ()),
    (b"", ()),
    (b"gzip", ("gzip",)),
    (b"br", ("br",)),
    (b"gzip, br", ("br", "gzip")),  # tie: br first
    (b"br, gzip", ("br", "gzip")),
    (b"gzip, deflate, br, zstd", ("br", "zstd", "gzip")),
    (b"deflate, identity", ()),
    (b"GZIP, Br", ("br", "gzip")),
    (b"x-gzip", ("gzip",)),
    (b"X-GZIP;q=0.5, br;q=0.4", ("gzip", "br")),
    (b"gzip;q=1.0, br;q=0.9", ("gzip", "br")),
    (b"gzip;q=0.5, br;q=0.5", ("br", "gzip")),
    (b"gzip;q=0.001, br;q=0", ("gzip",)),
    (b"gzip;q=0, br;q=0.000", ()),
    (b"gzip;Q=0", ()),  # parameter names are case-insensitive
    (b"gzip ; q=0.3 , br ;q=0.2", ("gzip", "br")),
    (b"gzip;q=1., br;q=0.", ("gzip",)),
    (b"*", ("br", "zstd", "gzip")),
    (b"*;q=0", ()),
    (b"*;q=0.5, gzip", ("gzip", "br", "zstd")),
    (b"gzip;q=0, *", ("br", "zstd")),
    (b"*;q=0, br;q=0.1", ("br",)),
    (b"identity;q=1, *;q=0", ()),
    # identity, which can always be sent, wins over a coding weighed below it
    (b"gzip;q=0.5, identity", ()),
    (b"br;q=0.8, gzip;q=0.5, identity;q=0.6", ("br",)),
    (b"gzip;q=0.5, identity;q=0.5", ("gzip",)),  # a tie goes to the coding
    (b"gzip;q=0.5", ("gzip",)),  # unweighed, identity comes last
    (b"gzip, identity;q=0", ("gzip",)),
    (b"zstd", ("zstd",)),
    (b"zstd, gzip;q=0.9", ("zstd", "gzip")),
    # malformed q: that element is ignored
    (b"gzip;q=2, br", ("br",)),
    (b"gzip;q=1.5, br", ("br",)),
    (b"gzip;q=0.5555, br;q=0.1", ("br",)),
    (b"gzip;q=abc", ()),
    (b"gzip;q=, br", ("br",)),
    (b"gzip;q=.5, br", ("br",)),
    (b"gzip;q = 0.5, br", ("br",)),
    (b"gzip;q=-0, br", ("br",)),
    (b"*;q=x, gzip", ("gzip",)),  # a malformed `*` covers nothing
    # other parameters are ignored; junk elements are ignored
    (b"gzip;level=9;q=0.2, br;q=0.1", ("gzip", "br")),
    (b"gzip,, ,br", ("br", "gzip")),
    (b"g zip, br", ("br",)),
    (b"\xff\xfe, gzip", ("gzip",)),
    # a coding listed twice keeps its first weight (nginx reads the first "gzip")
    (b"gzip;q=0, gzip", ()),
    (b"x-gzip;q=0, gzip;q=1", ()),
    (b"gzip;q=0.2, br;q=0.1, gzip;q=0", ("gzip", "br")),
]


# Ids without backslashes: mutmut cannot hand one back to pytest.
@pytest.mark.parametrize(("header", "expected"), ENCODINGS,
                         ids=[repr(e[0]).replace("\\x", "%") for e in ENCODINGS])
def test_accepted_encodings(header: bytes | None, expected: tuple[str, ...]) -> None:
    """RFC 9110 §12.5.3 q-values, `*`, aliases; ties prefer br."""
    assert accepted_encodings(header) == expected


# -- properties ------------------------------------------------------------------------------

_number = st.one_of(st.integers(0, 1200), st.integers(0, 10**30)).map(str)
_spec = st.one_of(
    st.tuples(_number, _number).map(lambda t: f"{t[0]}-{t[1]}"),
    _number.map(lambda n: f"{n}-"),
    _number.map(lambda n: f"-{n}"),
    st.sampled_from(["", " ", "-", "x", "1-2-3", "0 -1"]),
)
_range_header = st.one_of(
    st.tuples(
        st.sampled_from(["bytes=", "BYTES=", "bytes =", "items=", "", "bytes=  "]),
        st.lists(_spec, max_size=12),
        st.sampled_from([",", ", ", " ,\t", ",,"]),
    ).map(lambda t: (t[0] + t[2].join(t[1])).encode()),
    st.binary(max_size=40).map(lambda b: b"bytes=" + b),
)


def _covered(value: bytes, size: int) -> set[int]:
    """Model: the bytes the satisfiable range-specs select, by §14.1.2 directly."""
    out: set[int] = set()
    for element in value.partition(b"=")[2].split(b","):
        first, _, last = element.strip(b" \t").partition(b"-")
        if not first and not last:
            continue  # an empty list element
        if not first:
            n = int(last)
            out.update(range(max(0, size - n), size) if n else ())
        else:
            out.update(range(int(first), min(int(last), size - 1) + 1 if last else size))
    return out


@PROPS
@given(size=st.one_of(st.integers(0, 1100), st.integers(0, 2**63)), value=_range_header)
def test_parse_range_property(size: int, value: bytes) -> None:
    """Never raises; ranges lie in [0, size-1], are disjoint and not touching, add up to at
    most size, and (when small) cover exactly the bytes the header selects."""
    result = parse_range(value, size)
    if result is None:
        return
    assert all(0 <= first <= last <= size - 1 for first, last in result)
    ordered = sorted(result)
    assert all(b[0] > a[1] + 1 for a, b in zip(ordered, ordered[1:], strict=False))
    assert sum(last - first + 1 for first, last in result) <= size
    if size <= 1100 and len(value) < 4000:
        selected = {i for first, last in result for i in range(first, last + 1)}
        assert selected == _covered(value, size)


@PROPS
@given(size=st.integers(1, 5000),
       ranges=st.lists(st.tuples(st.integers(0, 4999), st.integers(0, 4999)), max_size=8))
def test_parse_range_order_rule(size: int, ranges: list[tuple[int, int]]) -> None:
    """Disjoint, non-touching satisfiable ranges come back in the client's order; otherwise
    the result is sorted."""
    specs = [(min(a, b), max(a, b)) for a, b in ranges]
    value = b"bytes=" + b",".join(b"%d-%d" % spec for spec in specs) if specs else b"bytes=x"
    result = parse_range(value, size)
    kept = [(f, min(last, size - 1)) for f, last in specs if f < size]
    if not specs:
        assert result is None
        return
    if sum(last - f + 1 for f, last in kept) > size:
        assert result is None
        return
    ordered = sorted(kept)
    if all(b[0] > a[1] + 1 for a, b in zip(ordered, ordered[1:], strict=False)):
        assert result == kept
    else:
        assert result == sorted(result or [])
        assert result is not None and len(result) < len(kept)


# -- JSON or HTML (§12.5.1) ------------------------------------------------------------------

@pytest.mark.parametrize(("query", "accept", "expected"), [
    (b"", None, False),
    (b"", b"", False),
    (b"format=json", None, True),
    (b"json", None, True),  # the status page's old spelling
    (b"sort=size&format=json", None, True),
    (b"format=JSON", None, False),  # values are exact, as the listing reads them lower-cased
    (b"format=html", b"application/json", False),  # the query wins over Accept
    (b"format=json", b"text/html", True),
    (b"xjson", None, False),
    (b"", b"application/json", True),
    (b"", b"application/*", True),
    (b"", b"*/*", False),  # a tie: HTML
    (b"", b"text/html, application/json", False),  # a tie
    (b"", b"application/json, text/html;q=0.9", True),
    (b"", b"text/html;q=0.5, application/json;q=0.6", True),
    (b"", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
    (b"", b"application/json;q=0", False),
    (b"", b"*/*;q=0.1, application/json", True),  # the most specific range weighs
    (b"", b"application/json;q=0.2, */*", False),  # text/html by */* at 1
    (b"", b"text/*;q=0.1, application/*;q=0.2", True),
    (b"", b"application/json;q=bad", False),  # a malformed q: the element is ignored
    (b"", b"APPLICATION/JSON", True),
    (b"", b"application/json; charset=utf-8", True),
    (b"", b"image/png", False),
    (b"", b"application/json;q=0.001", True),  # any weight above none
    (b"", b"text/html;q=x, application/json", True),  # a malformed element is skipped
    (b"", b"*/*;q=0.1, application/*;q=0.8", True),  # type/* is more specific than */*
    (b"", b"application/*;q=0.8, */*;q=0.1", True),  # whatever the order
    (b"", b"application/*;q=0.8, application/json;q=0.3, text/html;q=0.5", False),
    (b"", b"text/html;q=0.5, application/json;q=0.9, application/json;q=0.1", True),
    (b"", b"application/json;q=0.5, text/html;q=0.9, text/html;q=0.1", False),  # first wins
    (b"", b"*/*;q=0.5, text/html;q=0.1", True),
    (b"", b"text/*;q=0.9, application/json;q=0.5", False),
])
def test_prefers_json(query: bytes, accept: bytes | None, expected: bool) -> None:
    assert prefers_json(query, accept) is expected
