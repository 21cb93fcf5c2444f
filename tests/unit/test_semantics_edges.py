"""Layer 1: the edges of `evserver.semantics` that the tables of test_semantics.py leave open.

Ranges one byte apart, the digits of a range number, weak against strong entity tags both
ways (RFC 9110 §8.8.3.2), If-Range, the order of the preconditions (§13.2.2), HTTP-date
edges, the multipart layout byte for byte, and Accept-Encoding weights.
"""
from __future__ import annotations

import calendar
import re
from http import HTTPStatus

import pytest

from evserver.http11 import http_date
from evserver.semantics import (
    RangeSpec,
    Validators,
    accepted_encodings,
    if_range_allows,
    multipart_boundary,
    multipart_plan,
    parse_range,
    precondition_status,
)
from tests.unit.test_semantics import (
    AT,
    BEFORE,
    ETAG,
    IM,
    IMS,
    INM,
    IUS,
    MTIME,
    NM,
    NOW,
    PRE,
    V,
    req,
)

IR = b"if-range"
WEAK = b"W/" + ETAG
WEAK_V = Validators(WEAK, MTIME)  # a representation whose current tag is weak


# -- ranges one byte apart (§14.1.2) ---------------------------------------------------------

SIZE = 10


@pytest.mark.parametrize(("value", "expected"), [
    # first-pos at size-1, size, size+1
    (b"bytes=9-", [(9, 9)]),
    (b"bytes=10-", []),
    (b"bytes=11-", []),
    (b"bytes=9-9", [(9, 9)]),
    (b"bytes=10-10", []),
    # last-pos at size-2, size-1, size (clipped)
    (b"bytes=0-8", [(0, 8)]),
    (b"bytes=0-9", [(0, 9)]),
    (b"bytes=0-10", [(0, 9)]),
    (b"bytes=8-9", [(8, 9)]),
    # suffix lengths 0, 1, size-1, size, size+1
    (b"bytes=-0", []),
    (b"bytes=-1", [(9, 9)]),
    (b"bytes=-9", [(1, 9)]),
    (b"bytes=-10", [(0, 9)]),
    (b"bytes=-11", [(0, 9)]),
    # last-pos one below, at and one above first-pos
    (b"bytes=5-4", None),
    (b"bytes=5-5", [(5, 5)]),
    (b"bytes=5-6", [(5, 6)]),
])
def test_ranges_one_byte_apart(value: bytes, expected: RangeSpec | None) -> None:
    """Each boundary of a 10-byte file: the last byte is 9, a suffix is clipped at 0."""
    assert parse_range(value, SIZE) == expected


@pytest.mark.parametrize(("value", "size", "expected"), [
    (b"bytes=0-0", 1, [(0, 0)]),
    (b"bytes=-1", 1, [(0, 0)]),
    (b"bytes=-2", 1, [(0, 0)]),
    (b"bytes=1-", 1, []),
    (b"bytes=0-", 0, []),
    (b"bytes=-0", 0, []),
])
def test_ranges_of_one_byte_and_empty_files(value: bytes, size: int,
                                            expected: RangeSpec | None) -> None:
    """A 1-byte file has one satisfiable byte; an empty one has none (416)."""
    assert parse_range(value, size) == expected


@pytest.mark.parametrize(("value", "size", "expected"), [
    # the sum of the ranges one below, at and one above the size
    (b"bytes=0-4,5-8", 10, [(0, 8)]),
    (b"bytes=0-4,5-9", 10, [(0, 9)]),
    (b"bytes=0-4,4-9", 10, None),
    (b"bytes=0-0,0-0", 2, [(0, 0)]),
    (b"bytes=0-0,0-0,0-0", 2, None),
    (b"bytes=-5,-5", 10, [(5, 9)]),
    (b"bytes=-5,-6", 10, None),
])
def test_ranges_adding_up_to_more_than_the_file_are_ignored(
        value: bytes, size: int, expected: RangeSpec | None) -> None:
    """CVE-2011-3192: overlapping ranges adding up to more than the file get a plain 200."""
    assert parse_range(value, size) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (b"bytes=0-9,10-19,21-30", [(0, 19), (21, 30)]),  # a touching pair, then a gap of one
    (b"bytes=21-30,10-19,0-9", [(0, 19), (21, 30)]),
    (b"bytes=0-9,11-19,20-30", [(0, 9), (11, 30)]),
    (b"bytes=0-9,10-19,20-30", [(0, 30)]),
    (b"bytes=0-9,0-3,20-24", [(0, 9), (20, 24)]),  # a contained range keeps the outer end
    (b"bytes=50-59,0-9,10-19", [(0, 19), (50, 59)]),
])
def test_coalescing_merges_only_what_touches(value: bytes, expected: RangeSpec) -> None:
    """Once any two ranges touch, all are sorted, and only touching ones are merged."""
    assert parse_range(value, 100) == expected


def test_disjoint_ranges_one_byte_apart_keep_the_clients_order() -> None:
    """A gap of exactly one byte is not touching: the client's order stands."""
    assert parse_range(b"bytes=20-29,0-18", 100) == [(20, 29), (0, 18)]
    assert parse_range(b"bytes=20-29,0-19", 100) == [(0, 29)]


def test_max_ranges_is_counted_one_below_at_and_above() -> None:
    """`max_ranges` range-specs are served, one more ignores the header (default 100)."""
    three = b"bytes=0-0,2-2,4-4"
    assert parse_range(three, 100, max_ranges=4) == [(0, 0), (2, 2), (4, 4)]
    assert parse_range(three, 100, max_ranges=3) == [(0, 0), (2, 2), (4, 4)]
    assert parse_range(three, 100, max_ranges=2) is None
    hundred = b"bytes=" + b",".join(b"%d-%d" % (i * 2, i * 2) for i in range(100))
    assert parse_range(hundred, 1000) is not None
    assert parse_range(hundred + b",900-900", 1000) is None


# -- the digits of a range number --------------------------------------------------------

EXA = 10**18  # a size with 19 digits
LARGEST = 2**63 - 1  # st_size's largest value (19 digits)


@pytest.mark.parametrize(("value", "size", "expected"), [
    # 18 and 19 digits are read exactly: every offset into the largest file is
    (b"bytes=999999999999999999-", EXA, [(EXA - 1, EXA - 1)]),
    (b"bytes=-999999999999999999", EXA, [(1, EXA - 1)]),
    (b"bytes=0-999999999999999998", EXA, [(0, EXA - 2)]),
    (b"bytes=100000000000000000-100000000000000001", EXA,
     [(10**17, 10**17 + 1)]),
    (b"bytes=1000000000000000000-", EXA, []),
    (b"bytes=0-1000000000000000000", EXA, [(0, EXA - 1)]),
    (b"bytes=5000000000000000000-", LARGEST, [(5 * EXA, LARGEST - 1)]),
    (b"bytes=0-5000000000000000000", LARGEST, [(0, 5 * EXA)]),
    (b"bytes=-9223372036854775806", LARGEST, [(1, LARGEST - 1)]),
    # 20 digits are beyond any file
    (b"bytes=10000000000000000000-", LARGEST, []),
    (b"bytes=0-99999999999999999999", LARGEST, [(0, LARGEST - 1)]),
    # leading zeros do not count as digits
    (b"bytes=0000000000000000000000005-0000000000000000000000009", SIZE, [(5, 9)]),
    (b"bytes=-0000000000000000000000003", SIZE, [(7, 9)]),
    (b"bytes=00-00", SIZE, [(0, 0)]),
    (b"bytes=-000", SIZE, []),
])
def test_range_numbers_by_their_digits(value: bytes, size: int,
                                       expected: RangeSpec | None) -> None:
    """Numbers of up to 19 significant digits are exact; longer ones mean 'past the end'."""
    assert parse_range(value, size) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (b"bytes=9-10", [(9, 10)]),  # "10" < "9" as text, not as a number
    (b"bytes=10-9", None),
    (b"bytes=010-10", [(10, 10)]),
    (b"bytes=010-9", None),
    (b"bytes=9-05", None),  # zeros on last-pos too
    (b"bytes=5-05", [(5, 5)]),
    (b"bytes=09-10", [(9, 10)]),
    (b"bytes=19-20", [(19, 20)]),
    (b"bytes=20-19", None),
])
def test_last_before_first_is_compared_as_numbers(value: bytes,
                                                  expected: RangeSpec | None) -> None:
    """§14.1.1: last-pos < first-pos is invalid, compared by value whatever the zeros."""
    assert parse_range(value, 100) == expected


@pytest.mark.parametrize("value", [
    b"bytes=0-1X", b"Xbytes=0-1", b"bytes=X0-1", b"bytes=0-1,X", b"bytes=0-1\r",
    b"bytes=0-1 ;", b"bytes==0-1", b"bytesX=0-1", b"bytes=0--1",
])
def test_stray_bytes_around_a_range_set_ignore_the_header(value: bytes) -> None:
    """Only spaces and tabs may pad the value and its elements: anything else is a 200."""
    assert parse_range(value, 100) is None


@pytest.mark.parametrize("value", [b" bytes=0-1 ", b"\tbytes=0-1\t", b"bytes=\t0-1 , "])
def test_spaces_and_tabs_around_a_range_set_are_allowed(value: bytes) -> None:
    """OWS around the value and the list elements is not part of the range."""
    assert parse_range(value, 100) == [(0, 1)]


# -- entity tags: weak against strong, both ways (§8.8.3.2) -----------------------------------

@pytest.mark.parametrize(("tag", "current", "strong", "weak"), [
    # RFC 9110 §8.8.3.2's table: (tag, current) -> strong comparison, weak comparison
    (b'W/"1"', b'W/"1"', False, True),
    (b'W/"1"', b'W/"2"', False, False),
    (b'W/"1"', b'"1"', False, True),
    (b'"1"', b'"1"', True, True),
    (b'"1"', b'W/"1"', False, True),
])
def test_the_rfcs_comparison_table(tag: bytes, current: bytes, strong: bool,
                                   weak: bool) -> None:
    """If-Match compares strongly (412 unless it matches), If-None-Match weakly (304)."""
    v = Validators(current, MTIME)
    assert precondition_status(req((IM, tag)), v, NOW) is (None if strong else PRE)
    assert precondition_status(req((INM, tag)), v, NOW) is (NM if weak else None)


def test_if_range_compares_strongly_both_ways() -> None:
    """§13.1.5: an If-Range tag must match strongly: a weak current tag never does."""
    assert if_range_allows(ETAG, V, NOW) is True
    assert if_range_allows(WEAK, V, NOW) is False
    assert if_range_allows(ETAG, WEAK_V, NOW) is False
    assert if_range_allows(WEAK, WEAK_V, NOW) is False


@pytest.mark.parametrize(("value", "expected"), [
    (b"X" + ETAG, None),  # junk before a tag
    (b'"a"X, ' + ETAG, None),  # junk between a tag and its comma
    (b'"a" X ,' + ETAG, None),
    (ETAG + b" X", None),
    (b" \t," + ETAG + b", \t", NM),
    (b'"a"\t,\t' + ETAG, NM),
    (b"X*", None),
    (b"*X", None),
    (b" \t*\t ", NM),
    (b"**", None),
])
def test_if_none_match_list_syntax(value: bytes, expected: HTTPStatus | None) -> None:
    """Only spaces, tabs and commas separate the tags; anything else makes the list
    malformed, and a malformed If-None-Match matches nothing (the full response)."""
    assert precondition_status(req((INM, value)), V, NOW) is expected


@pytest.mark.parametrize(("value", "expected"), [
    (b"X" + ETAG, PRE),
    (b'"a"X, ' + ETAG, PRE),
    (b"\t*\t", None),
    (b"X*", PRE),
    (b" , " + ETAG, None),
])
def test_if_match_list_syntax(value: bytes, expected: HTTPStatus | None) -> None:
    """A malformed If-Match matches nothing: the safe 412."""
    assert precondition_status(req((IM, value)), V, NOW) is expected


def test_if_match_lines_are_joined_with_a_comma() -> None:
    """Two If-Match lines are one list (§5.3): the tag of either line matches."""
    assert precondition_status(req((IM, b'"a"'), (IM, ETAG)), V, NOW) is None
    assert precondition_status(req((IM, ETAG), (IM, b'"a"')), V, NOW) is None
    assert precondition_status(req((INM, b'"a"'), (INM, ETAG)), V, NOW) is NM


# -- the order of the preconditions (§13.2.2) --------------------------------------------------

@pytest.mark.parametrize(("method", "headers", "expected"), [
    # step 1 before step 3: a failed If-Match is a 412 even if If-None-Match matches
    (b"GET", ((INM, ETAG), (IM, b'"x"')), PRE),
    # step 2 only without If-Match: a passing If-Match overrides a failing IUS
    (b"GET", ((IM, ETAG), (IUS, BEFORE)), None),
    (b"GET", ((IM, b'"x"'), (IUS, AT)), PRE),
    # step 3: If-None-Match on an unsafe method is 412, not 304
    (b"PUT", ((INM, ETAG),), PRE),
    (b"HEAD", ((INM, ETAG),), NM),
    (b"OPTIONS", ((INM, ETAG),), PRE),
    (b"get", ((INM, ETAG),), PRE),  # methods are case-sensitive
    # step 4 only without If-None-Match, and only for GET and HEAD
    (b"GET", ((INM, b'"x"'), (IMS, AT)), None),
    (b"HEAD", ((IMS, AT),), NM),
    (b"PUT", ((IMS, AT),), None),
    (b"OPTIONS", ((IMS, AT),), None),
    # a passing IUS then a matching INM
    (b"GET", ((IUS, AT), (INM, ETAG)), NM),
    (b"GET", ((IUS, AT), (IMS, AT)), NM),
])
def test_precondition_order(method: bytes, headers: tuple[tuple[bytes, bytes], ...],
                            expected: HTTPStatus | None) -> None:
    """RFC 9110 §13.2.2: If-Match, else IUS; then If-None-Match, else IMS (GET/HEAD)."""
    assert precondition_status(req(*headers, method=method), V, NOW) is expected


# -- HTTP-date edges -------------------------------------------------------------------------

@pytest.mark.parametrize(("mtime", "expected"), [
    (MTIME - 1, NM),
    (MTIME, NM),
    (MTIME + 1, None),
])
def test_if_modified_since_at_one_second_around_the_mtime(mtime: int,
                                                          expected: HTTPStatus | None) -> None:
    """304 when Last-Modified is at or before the date, a full 200 one second after."""
    v = Validators(ETAG, mtime)
    assert precondition_status(req((IMS, AT)), v, NOW) is expected


@pytest.mark.parametrize(("mtime", "expected"), [
    (MTIME - 1, None),
    (MTIME, None),
    (MTIME + 1, PRE),
])
def test_if_unmodified_since_at_one_second_around_the_mtime(
        mtime: int, expected: HTTPStatus | None) -> None:
    """412 only when Last-Modified is later than the date."""
    v = Validators(ETAG, mtime)
    assert precondition_status(req((IUS, AT)), v, NOW) is expected


@pytest.mark.parametrize(("now", "expected"), [
    (MTIME - 0.5, None),  # the date is later than the clock: ignored
    (MTIME, NM),  # the date is the clock's second
    (MTIME + 0.5, NM),
])
def test_if_modified_since_not_later_than_now(now: float, expected: HTTPStatus | None) -> None:
    """A date in the future is ignored; the present second is not the future."""
    v = Validators(ETAG, MTIME - 10)
    assert precondition_status(req((IMS, AT)), v, now) is expected


def test_if_unmodified_since_in_the_future_still_counts() -> None:
    """Only If-Modified-Since ignores a future date: IUS later than now passes."""
    v = Validators(ETAG, MTIME)
    assert precondition_status(req((IUS, http_date(MTIME + 10**6))), v, MTIME + 5) is None


# RFC 850 dates carry two-digit years, resolved against the year of `now` (not the machine's).
YEAR_2110 = calendar.timegm((2110, 1, 1, 0, 0, 0))
RFC850_2110 = b"Wednesday, 01-Jan-10 00:00:00 GMT"


def test_rfc850_years_are_read_against_the_clock_passed_in() -> None:
    """In 2110, `10` is 2110, not 2010: the window follows `now`, whatever the real year."""
    v = Validators(ETAG, YEAR_2110)
    later = YEAR_2110 + 3600
    assert precondition_status(req((IMS, RFC850_2110)), v, later) is NM
    assert precondition_status(req((IUS, RFC850_2110)), v, later) is None
    assert if_range_allows(RFC850_2110, v, later) is True


def test_an_rfc850_date_far_in_a_clock_past_is_last_century() -> None:
    """Near 2026, `10` is 2010: against a 2110 Last-Modified, IUS fails and IMS is 200."""
    v = Validators(ETAG, YEAR_2110)
    now = calendar.timegm((2026, 6, 1, 0, 0, 0))
    assert precondition_status(req((IUS, RFC850_2110)), v, now) is PRE
    assert if_range_allows(RFC850_2110, v, now) is False


@pytest.mark.parametrize("value", [
    b"Tue, 14 Nov 2023 22:13:20 GMT, Tue, 14 Nov 2023 22:13:20 GMT",
    b"Tue, 31 Nov 2023 22:13:20 GMT",
    b"Tue, 14 Nov 2023 24:00:00 GMT",
    b"Tue, 14 Nov 0000 22:13:20 GMT",
    b"",
])
def test_invalid_dates_are_ignored_by_every_date_condition(value: bytes) -> None:
    """An invalid date neither gives 304 nor 412, and makes If-Range false."""
    v = Validators(ETAG, MTIME)
    assert precondition_status(req((IMS, value)), v, NOW) is None
    assert precondition_status(req((IUS, value)), v, NOW) is None
    assert if_range_allows(value, v, NOW) is False


# -- If-Range with a date and an entity tag (§13.1.5) -----------------------------------------

@pytest.mark.parametrize(("value", "now", "expected"), [
    (AT, MTIME + 0.999, False),  # Last-Modified within the last second: a weak validator
    (AT, MTIME + 1.0, True),
    (AT, MTIME + 1.001, True),
    (BEFORE, NOW, False),
    (http_date(MTIME + 1), NOW, False),
    (b"\t" + AT + b" ", NOW, True),
    (b" " + ETAG + b"\t", NOW, True),
    (b'"abc"', NOW, False),
    (b"X" + ETAG, NOW, False),  # junk before the tag: neither a tag nor a date
    (ETAG + b"X", NOW, False),
    (ETAG + b" ", NOW, True),
    (b"W/", NOW, False),
    (b'"', NOW, False),
    (b'W/"x', NOW, False),
])
def test_if_range_dates_and_tags(value: bytes, now: float, expected: bool) -> None:
    """A date must equal Last-Modified and be at least a second old; a tag must match."""
    assert if_range_allows(value, V, now) is expected


# -- multipart/byteranges: the exact bytes (§14.6) ---------------------------------------------

def test_multipart_plan_of_one_range_byte_for_byte() -> None:
    """One part, then the closing delimiter; the length counts every byte."""
    pieces, total = multipart_plan([(9, 9)], 10, b"a/b", b"XYZ")
    head = b"\r\n--XYZ\r\nContent-Type: a/b\r\nContent-Range: bytes 9-9/10\r\n\r\n"
    tail = b"\r\n--XYZ--\r\n"
    assert pieces == [head, (9, 1), tail]
    assert total == len(head) + 1 + len(tail) == 71


def test_multipart_plan_of_three_ranges_byte_for_byte() -> None:
    """Parts in the order given, each with its own Content-Range; the total is exact."""
    pieces, total = multipart_plan([(90, 99), (0, 0), (10, 19)], 100, b"text/plain",
                                   b"0123456789abcdef0123456789abcdef")
    delimiter = b"\r\n--0123456789abcdef0123456789abcdef"
    assert pieces == [
        delimiter + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 90-99/100\r\n\r\n",
        (90, 10),
        delimiter + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/100\r\n\r\n",
        (0, 1),
        delimiter + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-19/100\r\n\r\n",
        (10, 10),
        delimiter + b"--\r\n",
    ]
    assert total == sum(len(p) if isinstance(p, bytes) else p[1] for p in pieces) == 353


def test_multipart_boundary_is_32_lowercase_hex_digits() -> None:
    """128 random bits as 32 hex digits, ASCII bytes."""
    boundary = multipart_boundary()
    assert isinstance(boundary, bytes)
    assert re.fullmatch(rb"[0-9a-f]{32}", boundary)


# -- Accept-Encoding weights (§12.5.3) ---------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    (b"br;q=1, gzip", ("br", "gzip")),  # q=1 is the default weight: a tie
    (b"gzip;q=1, br", ("br", "gzip")),
    (b"gzip, br;q=1", ("br", "gzip")),
    (b"gzip;q=1.000, br;q=0.999", ("gzip", "br")),
    (b"gzip;q=0.501, br;q=0.5", ("gzip", "br")),
    (b"br;q=0.001, gzip;q=0.002", ("gzip", "br")),
    (b"gzip;q, br", ("br",)),  # a q without a value is malformed
    (b"gzip;q=, br", ("br",)),
    (b"gzip; q=0.5 , br ; q=0.6", ("br", "gzip")),
    (b"gzip;\tq=0", ()),
    (b"gzip;qq=0", ("gzip",)),  # not q: an unknown parameter, ignored
    (b"gzip;x=1;q=0", ()),
    (b"*;q=0.001", ("br", "zstd", "gzip")),
    (b"*;q=0.5, br;q=0.6", ("br", "zstd", "gzip")),
    (b"*;q=0.5, br;q=0.4", ("zstd", "gzip")),  # `*` weighs identity too: above br
    (b"x-gzip;q=0.3, br;q=0.2", ("gzip", "br")),
    (b"X-Gzip", ("gzip",)),
    (b"\tgzip\t", ("gzip",)),
    (b"gzip\t;q=0", ()),
    (b"identity", ()),
    (b"*;q=0.1, gzip;q=0", ("br", "zstd")),
    # only SP and HTAB are whitespace here, not NBSP or NEL (obs-text, decoded as latin-1)
    (b"gzip;\xa0q=0", ("gzip",)),
    (b"gzip;q\xa0=0", ("gzip",)),
    (b"gzip;\x85q=0", ("gzip",)),
    (b"\xa0gzip, br", ("br",)),
    (b"gzip\xa0, br", ("br",)),
    (b"gzip;Xq=0", ("gzip",)),
    (b"gzip;qX=0", ("gzip",)),
])
def test_accept_encoding_weights(header: bytes, expected: tuple[str, ...]) -> None:
    """q in thousandths, the default 1, `*` for the unlisted, x-gzip as gzip."""
    assert accepted_encodings(header) == expected
