"""Pure RFC 9110 decisions a static-file server makes about a request it can serve.

Owns: `Validators`, `precondition_status()` (§13.2.2), `if_range_allows()` (§13.1.5),
`parse_range()` and `RangeSpec` (§14.1.2), the multipart/byteranges layout
(`multipart_boundary()`, `multipart_plan()`, §14.6), `content_range()`,
`unsatisfied_range()` (§14.4), `accepted_encodings()` (§12.5.3) and `prefers_json()`
(§12.5.1).
Imports only the stdlib and `http11` (`Request`, `parse_http_date`). Sans-IO: no socket, file,
logger or clock (the caller passes `now`), so each rule is a plain function over values.
Where the RFC leaves a choice, the comments say what nginx does and that we do the same.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from http import HTTPStatus
from itertools import pairwise

from .http11 import Request, parse_http_date


@dataclass(frozen=True, slots=True)
class Validators:
    """The current representation's validators: a strong quoted ETag and Last-Modified."""

    etag: bytes  # strong entity tag, quoted, e.g. b'"1f-5e0a-3"'
    mtime: int  # Last-Modified, whole seconds since the epoch


# -- entity tags (RFC 9110 §8.8.3) -------------------------------------------------------

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text.
# A comma is a legal etagc, so a list cannot simply be split on commas.
_ETAG = re.compile(rb'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')


def _skip(value: bytes, pos: int, chars: bytes) -> int:
    """The first index at or after `pos` whose byte is not in `chars`."""
    while pos < len(value) and value[pos] in chars:
        pos += 1
    return pos


def _etag_list(value: bytes) -> list[bytes] | None:
    """The entity tags of `#entity-tag` (empty elements allowed), or None if malformed."""
    tags: list[bytes] = []
    pos = 0
    while True:
        pos = _skip(value, pos, b" \t,")
        if pos == len(value):
            return tags
        tag = _ETAG.match(value, pos)
        if tag is None:
            return None
        tags.append(tag.group())
        pos = _skip(value, tag.end(), b" \t")
        if pos != len(value) and value[pos] != 0x2C:  # tags must be separated by a comma
            return None


def _strong_match(tag: bytes, etag: bytes) -> bool:
    """§8.8.3.2: both strong and byte-identical."""
    return tag == etag and not tag.startswith(b"W/")  # equal, so etag is strong too


def _weak_match(tag: bytes, etag: bytes) -> bool:
    """§8.8.3.2: the opaque tags are identical, either or both may be weak."""
    return tag.removeprefix(b"W/") == etag.removeprefix(b"W/")


def _list_header(req: Request, name: bytes) -> bytes | None:
    """All field lines of a list-based field joined with commas (§5.3), or None if absent."""
    values = [value for key, value in req.headers if key == name]
    return b", ".join(values) if values else None


def _tags_match(value: bytes, etag: bytes, strong: bool) -> bool:
    """Whether an If-Match/If-None-Match value (`*` or a list) matches the current tag.

    A malformed list matches nothing: for If-Match that is the safe 412, for If-None-Match
    the full response. (`*` mixed with tags is malformed: the grammar is `"*" / #entity-tag`.)
    """
    if value.strip(b" \t") == b"*":
        return True  # the representation exists, or there would be no Validators
    tags = _etag_list(value)
    if tags is None:
        return False
    compare = _strong_match if strong else _weak_match
    return any(compare(tag, etag) for tag in tags)


# -- conditional requests (RFC 9110 §13) ---------------------------------------------------

def _date_header(req: Request, name: bytes, now: float) -> int | None:
    """A date field's value in epoch seconds, or None when absent or not one valid HTTP-date.

    Several field lines make a list of dates, which §13.1.3/§13.1.4 say to ignore.
    """
    values = [value for key, value in req.headers if key == name]
    if len(values) != 1:
        return None
    return parse_http_date(values[0], time.gmtime(now).tm_year)


def precondition_status(req: Request, v: Validators, now: float) -> HTTPStatus | None:
    """RFC 9110 §13.2.2: 412, 304, or None to go on and serve the request.

    If-Match (strong; `*` matches) else If-Unmodified-Since (invalid dates ignored) may give
    412; then If-None-Match (weak) gives 304 for GET/HEAD and 412 otherwise, else
    If-Modified-Since (GET/HEAD only; a date later than `now` is ignored) gives 304.
    """
    if_match = _list_header(req, b"if-match")
    if if_match is not None:
        if not _tags_match(if_match, v.etag, strong=True):
            return HTTPStatus.PRECONDITION_FAILED
    else:
        since = _date_header(req, b"if-unmodified-since", now)
        if since is not None and v.mtime > since:
            return HTTPStatus.PRECONDITION_FAILED
    safe = req.method in (b"GET", b"HEAD")
    if_none_match = _list_header(req, b"if-none-match")
    if if_none_match is not None:
        if _tags_match(if_none_match, v.etag, strong=False):
            return HTTPStatus.NOT_MODIFIED if safe else HTTPStatus.PRECONDITION_FAILED
    elif safe:
        since = _date_header(req, b"if-modified-since", now)
        # A date later than the server's clock cannot be a Last-Modified it sent (RFC 2616
        # §14.25 called it invalid): ignoring it keeps a far-future date from pinning 304s.
        # `mtime <= date` is the RFC's rule (nginx's `if_modified_since before`; its default
        # `exact` would also send 200 for a date later than Last-Modified).
        if since is not None and since <= now and v.mtime <= since:
            return HTTPStatus.NOT_MODIFIED
    return None


def if_range_allows(value: bytes | None, v: Validators, now: float) -> bool:
    """RFC 9110 §13.1.5: whether a Range may be honoured given this If-Range value.

    True with no If-Range, with a strongly matching entity tag, or with an HTTP-date equal to
    Last-Modified that is a strong validator (§8.8.2.2: at least 1 s older than `now`, so the
    file cannot have changed twice within that second unseen). Anything else is False.
    """
    if value is None:
        return True
    value = value.strip(b" \t")
    if value.startswith((b'"', b"W/")):
        return _ETAG.fullmatch(value) is not None and _strong_match(value, v.etag)
    date = parse_http_date(value, time.gmtime(now).tm_year)
    # nginx compares the date for exact equality with Last-Modified too; the 1 s rule is
    # the RFC's (a weak date validator makes the condition false).
    return date is not None and date == v.mtime and v.mtime <= now - 1


# -- byte ranges (RFC 9110 §14) ---------------------------------------------------------

RangeSpec = list[tuple[int, int]]  # (first, last) inclusive byte offsets

# int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length. No spaces inside
# a range-spec: OWS is allowed only around the list's commas (§5.6.1).
_RANGE_SPEC = re.compile(rb"([0-9]*)-([0-9]*)")
# 10**19 is beyond every file size (st_size < 2**63); int() of 10**5 digits would be slow.
_MAX_DIGITS = 19
_HUGE = 10**_MAX_DIGITS


def _number(digits: bytes) -> int:
    """The value of a digit string, capped at _HUGE (larger than any real size)."""
    digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def _less(a: bytes, b: bytes) -> bool:
    """Exact `int(a) < int(b)` for digit strings of any length, with no conversion."""
    a, b = a.lstrip(b"0"), b.lstrip(b"0")
    return (len(a), a) < (len(b), b)


def _range_specs(value: bytes, max_ranges: int) -> list[tuple[bytes, bytes]] | None:
    """The (first, last) digit strings of a `bytes=` range-set, or None if it is ignored."""
    unit, eq, range_set = value.strip(b" \t").partition(b"=")
    # range-unit is case-insensitive (§14.1); no spaces around "=": `bytes = 0-1` is a
    # syntax error, so the header is ignored (nginx also wants "bytes=" exactly).
    if not eq or unit.lower() != b"bytes":
        return None
    specs: list[tuple[bytes, bytes]] = []
    for element in range_set.split(b","):
        element = element.strip(b" \t")
        if not element:
            continue  # §5.6.1: recipients accept empty list elements
        match = _RANGE_SPEC.fullmatch(element)
        if match is None or match.group() == b"-":
            return None
        first, last = match.groups()
        if first and last and _less(last, first):
            return None  # §14.1.1: last-pos < first-pos makes the range-spec invalid
        specs.append((first, last))
        # Counted before satisfiability (nginx counts only kept ranges), so a huge list of
        # unsatisfiable ranges costs no more work than max_ranges of them.
        if len(specs) > max_ranges:
            return None
    return specs or None  # 1#range-spec: at least one


def _satisfiable(first: bytes, last: bytes, size: int) -> tuple[int, int] | None:
    """One range-spec clipped to the representation (§14.1.2), or None if unsatisfiable."""
    if not first:  # suffix-range: the last `last` bytes
        length = _number(last)
        return (max(0, size - length), size - 1) if length and size else None
    start = _number(first)
    if start >= size:
        return None
    return start, (min(_number(last), size - 1) if last else size - 1)


def _coalesce(ranges: RangeSpec) -> RangeSpec:
    """Sorted and merged if any two ranges overlap or touch; otherwise the client's order.

    (§14.1.2 lets a server coalesce; nginx does not reorder disjoint ranges either.)
    """
    ordered = sorted(ranges)
    if all(b[0] > a[1] + 1 for a, b in pairwise(ordered)):
        return ranges
    merged = [ordered[0]]
    for first, last in ordered[1:]:
        top_first, top_last = merged[-1]
        if first <= top_last + 1:
            merged[-1] = (top_first, max(top_last, last))
        else:
            merged.append((first, last))
    return merged


def parse_range(value: bytes | None, size: int, max_ranges: int = 100) -> RangeSpec | None:
    """RFC 9110 §14.1.2: the ranges to send of a `size`-byte representation.

    None: ignore the header and send 200 (absent, malformed, not `bytes`, more than
    `max_ranges` ranges, or more bytes asked for in total than the file holds). []: none is
    satisfiable (416). Else the satisfiable ranges, clipped, coalesced if any overlap/touch.
    """
    if value is None:
        return None
    specs = _range_specs(value, max_ranges)
    if specs is None:
        return None
    ranges = [r for r in (_satisfiable(first, last, size) for first, last in specs) if r]
    # nginx declines (plain 200) when the ranges add up to more than the file: overlapping
    # ranges such as `0-,0-,0-...` would otherwise multiply the response (CVE-2011-3192).
    if sum(last - first + 1 for first, last in ranges) > size:
        return None
    return _coalesce(ranges) if ranges else []


def content_range(first: int, last: int, size: int) -> bytes:
    """A Content-Range value for a sent range (§14.4): b"bytes 0-99/1000"."""
    return b"bytes %d-%d/%d" % (first, last, size)


def unsatisfied_range(size: int) -> bytes:
    """The Content-Range value of a 416 response (§14.4): b"bytes */1000"."""
    return b"bytes */%d" % size


def multipart_boundary() -> bytes:
    """A fresh random boundary (32 hex digits, 128 bits) for one multipart/byteranges body.

    The file was written before this boundary existed, so it cannot have been planted in the
    data; a new one per response keeps even a client-uploaded file from guessing it.
    """
    return secrets.token_hex(16).encode("ascii")


def multipart_plan(ranges: RangeSpec, size: int, content_type: bytes, boundary: bytes
                   ) -> tuple[list[bytes | tuple[int, int]], int]:
    """The body of a 206 multipart/byteranges response (§14.6) and its exact length.

    Pieces in order: bytes (part heads, the closing delimiter) and (offset, length) tuples
    for file data. Each part opens with CRLF "--" boundary (like nginx, the body starts with
    that CRLF: an empty preamble), and the body ends with CRLF "--" boundary "--" CRLF.
    """
    pieces: list[bytes | tuple[int, int]] = []
    total = 0
    for first, last in ranges:
        head = b"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: %s\r\n\r\n" % (
            boundary, content_type, content_range(first, last, size))
        pieces += (head, (first, last - first + 1))
        total += len(head) + last - first + 1
    tail = b"\r\n--%s--\r\n" % boundary
    pieces.append(tail)
    return pieces, total + len(tail)


# -- content codings (RFC 9110 §12.5.3) ----------------------------------------------------

# The codings we can serve (precompressed siblings, or encoded here), in our order of
# preference when a client weighs several equally: the smallest output first.
_CODINGS = ("br", "zstd", "gzip")
_ALIASES = {"x-gzip": "gzip"}  # §18.6: x-gzip is registered as an alias of gzip
_CODING = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def _weight(params: list[str]) -> int | None:
    """The q of one element's parameters in thousandths (1000 if none), None if malformed."""
    q = 1000
    for param in params:
        name, eq, text = param.strip(" \t").partition("=")
        if name.rstrip(" \t").lower() != "q":
            continue  # other parameters are not defined for Accept-Encoding; skip them
        if not eq or not _QVALUE.fullmatch(text):
            return None
        q = round(float(text) * 1000)
    return q


def accepted_encodings(accept_encoding: bytes | None) -> tuple[str, ...]:
    """Which of ("br", "zstd", "gzip") the client takes rather than no coding at all, best
    q first, ties in that order.

    q=0 means not acceptable; `*` covers codings not listed, identity included; names are
    case-insensitive and x-gzip is gzip; an element with a malformed q is ignored. A coding
    weighed below identity (named, or by `*`) is left out: identity, which can always be
    sent, wins; unweighed, identity comes last. (`identity;q=0` changes nothing else: when
    none of these can be sent, the response has no coding, as §12.5.3 advises rather than
    a 406.) No or an empty header: ().
    """
    if not accept_encoding:
        return ()
    listed: dict[str, int] = {}
    for element in accept_encoding.decode("latin-1").split(","):
        name, *params = element.split(";")
        name = name.strip(" \t").lower()
        q = _weight(params)
        if not _CODING.fullmatch(name) or q is None:
            continue
        # A coding listed twice keeps its first weight, as nginx finds the first "gzip"
        # (x-gzip included) and reads its q.
        listed.setdefault(_ALIASES.get(name, name), q)
    star = listed.get("*", 0)
    identity = listed.get("identity", star)
    weights = {coding: listed.get(coding, star) for coding in _CODINGS}
    ranked = sorted((c for c in _CODINGS if weights[c] > 0 and weights[c] >= identity),
                    key=lambda c: -weights[c])
    return tuple(ranked)  # sorted() is stable: equal weights keep our order


# -- JSON or HTML (RFC 9110 §12.5.1) ----------------------------------------------------------

def prefers_json(query: bytes, accept: bytes | None) -> bool:
    """Whether a page that has a JSON form (the status page, a directory listing) answers
    with it: `?format=json` (or the status page's old `?json`) says so, `?format=html`
    says not; else `Accept` does, when it weighs application/json above text/html (each
    by its most specific range). A tie, `*/*` or no Accept at all: HTML."""
    for field in query.split(b"&"):
        if field == b"json" or field == b"format=json":
            return True
        if field == b"format=html":
            return False
    if not accept:
        return False
    json_q = html_q = 0
    json_rank = html_rank = -1  # 2: type/subtype, 1: type/*, 0: */*
    for element in accept.decode("latin-1").split(","):
        media, *params = element.split(";")
        kind, _, sub = media.strip(" \t").lower().partition("/")
        q = _weight(params)
        if q is None:
            continue
        rank = 0 if kind == "*" and sub == "*" else 1 if sub == "*" else 2
        if (kind, sub) in (("application", "json"), ("application", "*"), ("*", "*")) \
                and rank > json_rank:
            json_q, json_rank = q, rank
        if (kind, sub) in (("text", "html"), ("text", "*"), ("*", "*")) and rank > html_rank:
            html_q, html_rank = q, rank
    return json_q > html_q
