#!/usr/bin/env python3
"""Coverage-guided fuzz target (atheris) for `evserver.http11.RequestParser`.

Each input is an 8-byte control header followed by the byte stream a client would send:

    byte 0     flags: bits 0-1 pick the split (0 random cuts, 1 byte by byte, 2 fixed-size
               pieces, 3 cut after every CR and LF); bit 2 picks small parser limits
    bytes 1-4  the small limits: max_head, max_request_line, max_headers and max_field
               (low and high nibble of byte 3), max_body
    bytes 5-7  seed of the split (number and places of the cuts, or the piece size)

The stream is fed in those pieces, draining `maybe_next()` after each feed until it returns
None or raises, and the target checks the parser's invariants:

- only `Request`, `None` or `HTTPError` come out, the error with a status the parser may
  produce (400, 413, 414, 431, 501, 505) and `close` set; afterwards the parser is a sink
  that raises the same error and holds no bytes;
- the outcome (requests, error status, or what is left buffered) is the same as when the
  whole stream is fed at once, and as when it is fed byte by byte;
- `buffered` stays under `max_head` while a head is unfinished (under the chunk-line limit
  while a chunked body is being discarded), so a feed adds at most its own length;
- every accepted request obeys RFC 9112 and the limits: the method is a token, the target
  is non-empty without whitespace or control bytes, the version is HTTP/1.0 or HTTP/1.1,
  header names are lower-case tokens, values hold no CR, LF, NUL or other control byte and
  no surrounding whitespace, an HTTP/1.1 request has exactly one Host, the body framing is
  unambiguous (never Transfer-Encoding with Content-Length, Content-Length values agree,
  chunked only in HTTP/1.1 and only as the single coding), and `keep_alive` follows the
  version and the Connection tokens;
- fed whole, the bytes consumed for each accepted request (the previous request's body,
  empty lines, the head) match a strict reference grammar of RFC 9112 (`HEAD`,
  `chunked_length()`: no bare CR, field lines in trailers, sizes without leading space), and
  the head's own fields are what the parser returned;
- `partial_line()` (what a timed-out request is logged with) is at most one line.

A failed check raises AssertionError, which atheris reports as a crash with the input.

Run it (needs `pip install atheris`, Linux), from the repository root, for ten minutes:

    mkdir -p /tmp/corpus
    python3 tests/fuzz/fuzz_parser.py -max_total_time=600 -rss_limit_mb=2048 \
        -dict=tests/fuzz/http.dict -artifact_prefix=/tmp/ /tmp/corpus tests/fuzz/corpus

libFuzzer reads every corpus folder given but writes the inputs it finds into the FIRST, so
put a scratch folder first to keep the seed corpus small; crash files go to
`-artifact_prefix`. Replay one input with `python3 tests/fuzz/fuzz_parser.py CRASH-FILE`;
shrink it with `python3 tests/fuzz/fuzz_parser.py -minimize_crash=1 -runs=100000 CRASH-FILE`
(the script must stay executable: libFuzzer re-runs it). `-jobs=N -workers=N` runs several
fuzzers at once. A fixed bug's minimized input belongs in `corpus/` as `regress-*`. CI runs
a 10-second bounded run (`tests/fuzz/test_fuzz_parser.py`).
"""
from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's evserver
    import atheris

    with atheris.instrument_imports(include=["evserver"]):
        from evserver import http11
else:  # imported by the pytest wrapper to replay the corpus without atheris
    from evserver import http11

HEADER = 8
STATUSES = {400, 413, 414, 431, 501, 505}
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB: CR, LF and NUL among them
CHUNK_LINE_MAX = 4096 + 1  # http11._MAX_CHUNK_LINE: an unfinished chunk line may hold this much

# A strict reference grammar (RFC 9112 §2.2, §3, §5, §7.1; a bare LF may end a line, as the
# parser allows): the bytes the parser consumed for an accepted request must match it.
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_FIELD = _TCHAR + rb"+:[\t\x20-\x7e\x80-\xff]*\r?\n"  # no CTL but HTAB, no bare CR
HEAD = re.compile(rb"(?:\r?\n)*(" + _TCHAR + rb"+) ([^\x00-\x20\x7f]+) (HTTP/1\.[0-9])\r?\n"
                  rb"((?:" + _FIELD + rb")*)\r?\n")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?\r?\n")
CHUNK_END = re.compile(rb"\r?\n")
TRAILERS = re.compile(rb"(?:" + _FIELD + rb")*\r?\n")

Outcome = tuple[object, ...]


def limits_of(header: bytes) -> dict[str, int]:
    """Parser limits from the control header: the defaults, or small ones."""
    if not header[0] & 4:
        return {}
    return {"max_head": 16 + header[1], "max_request_line": 8 + header[2] % 120,
            "max_headers": header[3] & 15, "max_field": 8 + (header[3] >> 4) * 8,
            "max_body": header[4]}


def split(header: bytes, data: bytes) -> list[bytes]:
    """Cut `data` into the pieces the control header asks for (all non-empty)."""
    mode = header[0] & 3
    seed = int.from_bytes(header[5:8], "big")
    if mode == 1:
        return [data[i:i + 1] for i in range(len(data))]
    if mode == 2:
        size = seed % 64 + 1
        return [data[i:i + size] for i in range(0, len(data), size)]
    if mode == 3:
        cuts = [m.end() for m in re.finditer(rb"[\r\n]", data)]
    else:
        rng = random.Random(seed)
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(16))] if data else []
    points = sorted({0, len(data), *cuts})
    return [data[a:b] for a, b in zip(points[:-1], points[1:], strict=True)]


def feed(pieces: Sequence[bytes], limits: dict[str, int],
         check: Callable[[http11.Request], None]) -> Outcome:
    """Feed `pieces`, draining after each; check every step. Returns the outcome."""
    parser = http11.RequestParser(**limits)
    max_head = parser.max_head
    requests: list[http11.Request] = []
    for piece in pieces:
        before = parser.buffered
        parser.feed(piece)
        assert parser.buffered == before + len(piece)
        while True:
            try:
                got = parser.maybe_next()
            except http11.HTTPError as err:
                assert type(err) is http11.HTTPError
                assert err.status.value in STATUSES, err
                assert err.close, err
                assert isinstance(err.request_line, bytes) and len(err.request_line) <= 200
                assert parser.buffered == 0
                parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    parser.maybe_next()
                except http11.HTTPError as again:
                    assert again is err, "the error state is not a sink"
                else:
                    raise AssertionError("a parser that raised went on parsing")
                return tuple(requests), err.status.value
            if got is None:
                break
            assert type(got) is http11.Request, repr(got)
            check(got)
            requests.append(got)
        # A head still unfinished after draining is under max_head; a chunked body being
        # discarded holds at most one chunk line; a Content-Length body holds nothing.
        bound = CHUNK_LINE_MAX if parser.in_body else max_head - 1
        assert parser.buffered <= bound, (parser.buffered, bound, parser.in_body)
        # What a timed-out request is logged with: one line at most, never a body's bytes.
        partial = parser.partial_line()
        assert len(partial) <= 200 and b"\n" not in partial
        assert not partial or not parser.in_body
    return tuple(requests), None, parser.buffered, parser.in_body


def chunked_length(data: bytes) -> int | None:
    """Length of the strictly valid chunked body at the start of `data`, or None."""
    pos = 0
    while True:
        m = CHUNK_SIZE.match(data, pos)
        if m is None:
            return None
        size, pos = int(m[1], 16), m.end()
        if size == 0:
            end = TRAILERS.match(data, pos)
            return None if end is None else end.end()
        pos += size
        end = CHUNK_END.match(data, pos)
        if pos > len(data) or end is None:
            return None
        pos = end.end()


def check_spans(stream: bytes, limits: dict[str, int]) -> None:
    """Fed whole, the bytes consumed for each accepted request (the previous body, empty
    lines, the head) follow the reference grammar, and the head parses to that Request."""
    parser = http11.RequestParser(**limits)
    parser.feed(stream)
    pos = 0
    previous: http11.Request | None = None
    while True:
        try:
            req = parser.maybe_next()
        except http11.HTTPError:
            return
        if req is None:
            return
        end = len(stream) - parser.buffered
        span = stream[pos:end]
        pos = end
        if previous is not None and previous.get(b"transfer-encoding") is not None:
            body = chunked_length(span)
            assert body is not None, f"accepted a bad chunked body before {span!r}"
            span = span[body:]
        elif previous is not None and (length := previous.get(b"content-length")) is not None:
            span = span[int(length.split(b",")[0]):]
        m = HEAD.fullmatch(span)
        assert m is not None, f"accepted a head outside RFC 9112: {span!r}"
        lines = [line.removesuffix(b"\r") for line in m[4].split(b"\n")[:-1]]
        fields = tuple((name.lower(), value.strip(b" \t"))
                       for name, _, value in (line.partition(b":") for line in lines))
        assert (req.method, req.target, req.headers) == (m[1], m[2], fields), (req, span)
        assert req.version == (b"HTTP/1.0" if m[3] == b"HTTP/1.0" else b"HTTP/1.1"), req
        previous = req


def checker(limits: dict[str, int]) -> Callable[[http11.Request], None]:
    """An RFC 9112 (and limits) check for every request the parser accepts."""
    defaults = http11.RequestParser(**limits)

    def check(req: http11.Request) -> None:
        assert TOKEN.fullmatch(req.method), req
        assert req.target and not BAD_TARGET.search(req.target), req
        assert req.version in (b"HTTP/1.0", b"HTTP/1.1"), req
        assert isinstance(req.keep_alive, bool)
        assert len(req.line) <= defaults.max_request_line, req
        assert len(req.headers) <= defaults.max_headers, req
        # The shortest head these fields could have come from (LF endings, no OWS).
        shortest = len(req.line) + 1 + sum(len(n) + len(v) + 2 for n, v in req.headers) + 1
        assert shortest <= defaults.max_head, req
        hosts = 0
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        connection: set[bytes] = set()
        for name, value in req.headers:
            assert TOKEN.fullmatch(name) and name == name.lower(), req
            assert not BAD_VALUE.search(value), req
            assert value == value.strip(b" \t"), req
            assert len(name) + 1 + len(value) <= defaults.max_field, req
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                lengths.update(v.strip(b" \t") for v in value.split(b","))
            elif name == b"transfer-encoding":
                # RFC 9110 §5.6.1: empty list elements are ignored.
                codings += [c for c in (c.strip(b" \t").lower() for c in value.split(b",")) if c]
            elif name == b"connection":
                connection |= {t.strip(b" \t").lower() for t in value.split(b",")}
        assert (hosts == 1) if req.version == b"HTTP/1.1" else (hosts <= 1), req
        assert not (lengths and codings), req  # RFC 9112 §6.3: smuggling
        if lengths:
            assert len(lengths) == 1, req
            (length,) = lengths
            assert re.fullmatch(rb"[0-9]{1,18}", length), req
            assert int(length) <= defaults.max_body, req
        if codings:
            assert req.version == b"HTTP/1.1" and codings == [b"chunked"], req
        if b"close" in connection:
            assert req.keep_alive is False, req
        elif b"keep-alive" in connection:
            assert req.keep_alive is True, req
        else:
            assert req.keep_alive is (req.version == b"HTTP/1.1"), req

    return check


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the name atheris and libFuzzer use)
    header, stream = data[:HEADER].ljust(HEADER, b"\0"), data[HEADER:]
    limits = limits_of(header)
    check = checker(limits)
    whole = feed([stream] if stream else [], limits, check)
    check_spans(stream, limits)
    pieces = split(header, stream)
    assert b"".join(pieces) == stream
    assert feed(pieces, limits, check) == whole, "the outcome depends on the split"
    if header[0] & 3 != 1 and len(stream) <= 2048:
        assert feed([stream[i:i + 1] for i in range(len(stream))], limits, check) == whole, (
            "the outcome differs byte by byte")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
