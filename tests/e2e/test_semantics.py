"""Issue #3 on the wire: validators, ranges, precompressed variants, caching headers,
directory listings, framing edge cases and self-describing errors (RFC 9110/9111/9112).

A real `Server` in a thread serves a document root built in `tmp_path`; raw sockets
(`tests/wire.py`) send exact bytes and every body is checked byte for byte.
"""
from __future__ import annotations

import email
import gzip
import json
import os
import random
import re
import socket
import time
from collections.abc import Callable
from email.message import Message
from email.utils import formatdate
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.conftest import RunningServer, ServerProcess
from tests.wire import Reader, Response, connect, exchange, get, read_all, request

StartServer = Callable[..., RunningServer]
Serve = Callable[..., RunningServer]

SMALL_SIZE = 1000  # far below cache_max_entry: read into memory and cached
LARGE_SIZE = 300_000  # above the default cache_max_entry (256 KiB): streamed with sendfile
MTIME = int(time.time()) - 3600  # every file is an hour old: Last-Modified is a strong validator
APP_JS = b"export const answer = 42;\n" * 40
APP_BR = b"BR-ENCODED:" + bytes(range(256)) * 3  # stands in for brotli (not in the stdlib)


def _data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


SMALL = _data(1, SMALL_SIZE)
LARGE = _data(2, LARGE_SIZE)
APP_GZ = gzip.compress(APP_JS, mtime=0)
TEXT = b"".join(b"line %04d of a plain ASCII file, no CR or LF inside a part\n" % i
                for i in range(30))
FILES = {"small.bin": SMALL, "large.bin": LARGE}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A document root of our own: binary files of both kinds, a page, app.js with .gz and
    .br siblings, a file without siblings, all with an mtime an hour in the past."""
    docroot = tmp_path / "root"
    docroot.mkdir()
    for name, data in [("small.bin", SMALL), ("large.bin", LARGE), ("app.js", APP_JS),
                       ("app.js.gz", APP_GZ), ("app.js.br", APP_BR), ("text.txt", TEXT),
                       ("page.html", b"<!doctype html><p>page</p>\n"),
                       ("plain.css", b"body{color:red}\n")]:
        (docroot / name).write_bytes(data)
        os.utime(docroot / name, (MTIME, MTIME))
    return docroot


@pytest.fixture
def serve(start_server: StartServer, root: Path) -> Serve:
    """Start a server on `root`; keyword arguments override Config fields."""
    return lambda **overrides: start_server(docroot=str(root), **overrides)


@pytest.fixture
def srv(serve: Serve) -> RunningServer:
    return serve()


CHUNKED = "Transfer-Encoding: chunked\r\n"


def names(resp: Response) -> list[str]:
    """The header names of a response, in order, lower-cased."""
    lines = resp.head[:-4].decode("latin-1").split("\r\n")[1:]
    return [line.partition(":")[0].lower() for line in lines]


def etag_of(port: int, path: str, headers: str = "") -> str:
    resp = get(port, path, headers)
    assert resp.status == 200
    etag = resp.header("etag")
    assert etag is not None
    return etag


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def parse_byteranges(ctype: str | None, body: bytes) -> list[tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part of a multipart/byteranges body,
    parsed strictly (RFC 2046 §5.1.1 delimiters, RFC 9110 §14.6 part headers)."""
    assert ctype is not None
    m = re.fullmatch(r'multipart/byteranges; ?boundary=("?)([0-9A-Za-z\'()+_,./:=?-]{1,70})\1',
                     ctype)
    assert m, ctype
    delimiter = b"--" + m.group(2).encode()
    close = b"\r\n" + delimiter + b"--\r\n"
    assert body.endswith(close), body[-100:]
    # The body opens with a delimiter (an empty preamble, with or without the CRLF).
    inner = body[:-len(close)]
    if inner.startswith(delimiter):
        inner = b"\r\n" + inner
    chunks = inner.split(b"\r\n" + delimiter + b"\r\n")
    assert chunks[0] == b"", chunks[0][:100]
    parts = []
    for chunk in chunks[1:]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        assert sep, chunk[:200]
        fields = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            assert colon, line
            fields[name.strip().lower()] = value.strip()
        assert set(fields) == {"content-type", "content-range"}, fields
        parts.append((fields["content-type"], fields["content-range"], data))
    return parts


# -- 1. validators (RFC 9110 §8.8, §13) ----------------------------------------------------------

def test_etag_is_strong_and_quoted(srv: RunningServer) -> None:
    """Files carry a strong entity tag (no W/ prefix, quoted, only etagc characters)."""
    etag = etag_of(srv.port, "/small.bin")
    assert re.fullmatch(r'"[\x21\x23-\x7e]+"', etag), etag


@pytest.mark.parametrize("path, vary", [("/small.bin", False), ("/large.bin", False),
                                        ("/app.js", True)])
def test_304_has_validators_cache_control_date_and_no_body(srv: RunningServer, path: str,
                                                           vary: bool) -> None:
    """If-None-Match matching → 304 with ETag, Last-Modified, Cache-Control, Date, Vary when
    siblings exist, no Content-Length and no body (the next response still parses)."""
    full = get(srv.port, path)
    etag = full.header("etag")
    with connect(srv.port) as sock:
        sock.sendall(request(path, headers=f"If-None-Match: {etag}\r\n") + request("/small.bin"))
        reader = Reader(sock)
        resp = reader.read_response()
        after = reader.read_response()
    assert resp.status == 304
    assert resp.header("etag") == etag
    assert resp.header("last-modified") == full.header("last-modified") == http_date(MTIME)
    assert resp.header("cache-control") == "max-age=600"
    assert resp.header("date") is not None
    assert resp.header("x-content-type-options") == "nosniff"
    assert ("vary" in names(resp)) is vary
    if vary:
        assert resp.header("vary") == "Accept-Encoding"
    assert "content-length" not in names(resp) and "content-range" not in names(resp)
    assert resp.body == b""
    assert after.status == 200 and after.body == SMALL  # no stray body bytes before it


@pytest.mark.parametrize("form", ["single", "list", "star", "weak"])
def test_if_none_match_forms_give_304(srv: RunningServer, form: str) -> None:
    """A single tag, a list with spaces, `*`, and the weak form (weak comparison, §13.1.2)."""
    etag = etag_of(srv.port, "/small.bin")
    value = {"single": etag, "list": f'"nope" ,  {etag} , "other"', "star": "*",
             "weak": "W/" + etag}[form]
    resp = get(srv.port, "/small.bin", f"If-None-Match: {value}\r\n")
    assert resp.status == 304 and resp.body == b""


def test_if_none_match_mismatch_is_200(srv: RunningServer) -> None:
    """A tag list that does not hold the current tag gives the full representation."""
    resp = get(srv.port, "/small.bin", 'If-None-Match: "old-1", W/"old-2"\r\n')
    assert resp.status == 200 and resp.body == SMALL


def test_if_none_match_takes_precedence_over_if_modified_since(srv: RunningServer) -> None:
    """§13.2.2: with If-None-Match present, If-Modified-Since is not evaluated at all."""
    etag = etag_of(srv.port, "/small.bin")
    later = http_date(MTIME + 60)  # alone it would give 304
    resp = get(srv.port, "/small.bin", f'If-None-Match: "stale"\r\nIf-Modified-Since: {later}\r\n')
    assert resp.status == 200 and resp.body == SMALL
    assert get(srv.port, "/small.bin", f"If-Modified-Since: {later}\r\n").status == 304
    earlier = http_date(MTIME - 60)  # alone it would give 200
    resp = get(srv.port, "/small.bin", f"If-None-Match: {etag}\r\nIf-Modified-Since: {earlier}\r\n")
    assert resp.status == 304


@pytest.mark.parametrize("path", ["/small.bin", "/large.bin"])
def test_if_match(srv: RunningServer, path: str) -> None:
    """If-Match: a mismatch (or a weak tag: strong comparison) → 412; `*` or the tag → 200."""
    etag = etag_of(srv.port, path)
    data = FILES[path[1:]]
    for value in ('"nope"', "W/" + etag):
        resp = get(srv.port, path, f"If-Match: {value}\r\n")
        assert resp.status == 412, value
        assert resp.header("content-type") is not None
        assert len(resp.body) == int(resp.header("content-length") or -1)
    for value in ("*", etag, f'"nope", {etag}'):
        resp = get(srv.port, path, f"If-Match: {value}\r\n")
        assert resp.status == 200 and resp.body == data, value


@pytest.mark.parametrize("value, status", [
    (http_date(MTIME - 10), 412),  # modified since: the precondition fails
    (http_date(MTIME + 10), 200),
    (http_date(MTIME), 200),  # not modified after that exact second
    ("not a date", 200),  # an invalid date is ignored (§13.1.4)
    ("Mon, 32 Foo 2020 99:99:99 GMT", 200),
])
def test_if_unmodified_since(srv: RunningServer, value: str, status: int) -> None:
    """If-Unmodified-Since earlier than Last-Modified → 412; later → 200; garbage ignored."""
    resp = get(srv.port, "/small.bin", f"If-Unmodified-Since: {value}\r\n")
    assert resp.status == status
    if status == 200:
        assert resp.body == SMALL


def test_etag_differs_per_content_coding(srv: RunningServer) -> None:
    """The .gz variant is another representation: another strong tag (§8.8.3)."""
    identity = etag_of(srv.port, "/app.js")
    gzipped = etag_of(srv.port, "/app.js", "Accept-Encoding: gzip\r\n")
    brotli = etag_of(srv.port, "/app.js", "Accept-Encoding: br\r\n")
    assert len({identity, gzipped, brotli}) == 3
    # A tag of one variant does not validate another.
    resp = get(srv.port, "/app.js", f"If-None-Match: {identity}\r\nAccept-Encoding: gzip\r\n")
    assert resp.status == 200 and resp.body == APP_GZ
    resp = get(srv.port, "/app.js", f"If-None-Match: {gzipped}\r\nAccept-Encoding: gzip\r\n")
    assert resp.status == 304


def test_etag_is_stable_across_a_restart(start_process: Callable[..., ServerProcess],
                                        root: Path) -> None:
    """Tags derive from the file, not the process: a restarted server (a new process)
    sends the same ones."""
    paths = ("/small.bin", "/large.bin", "/app.js")
    tags = []
    for _ in range(2):
        proc = start_process(root=root)
        tags.append([etag_of(proc.port, p) for p in paths]
                    + [etag_of(proc.port, "/app.js", "Accept-Encoding: gzip\r\n")])
        assert proc.terminate() == 0
    assert tags[0] == tags[1]
    assert len(set(tags[0])) == 4


# -- 2. ranges (RFC 9110 §14) ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_accept_ranges_on_files(srv: RunningServer, name: str) -> None:
    """Files advertise byte ranges."""
    assert get(srv.port, "/" + name).header("accept-ranges") == "bytes"


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
@pytest.mark.parametrize("spec", ["0-99", "100-", "-100", "5-5", "0-99999999"])
def test_single_range(srv: RunningServer, name: str, spec: str) -> None:
    """One range → 206 with the exact Content-Range, Content-Length and bytes."""
    data = FILES[name]
    size = len(data)
    first_text, _, last_text = spec.partition("-")
    if not first_text:
        first, last = size - int(last_text), size - 1
    else:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    resp = get(srv.port, "/" + name, f"Range: bytes={spec}\r\n")
    assert resp.status == 206
    assert resp.header("content-range") == f"bytes {first}-{last}/{size}"
    assert resp.header("content-length") == str(last - first + 1)
    assert resp.header("content-type") == "application/octet-stream"
    assert resp.header("etag") is not None and resp.header("x-content-type-options") == "nosniff"
    assert resp.body == data[first:last + 1]


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_multipart_byteranges_byte_for_byte(srv: RunningServer, name: str) -> None:
    """Several ranges → 206 multipart/byteranges; each part has its type, range and bytes,
    in the client's order, and Content-Length is the exact body length."""
    data = FILES[name]
    size = len(data)
    ranges = [(500, 599), (0, 9), (size - 7, size - 1), (20, 20)]
    spec = ",".join(f"{a}-{b}" for a, b in ranges[:3]) + ", 20-20"
    resp = get(srv.port, "/" + name, f"Range: bytes={spec}\r\n")
    assert resp.status == 206
    assert "content-range" not in names(resp)
    assert int(resp.header("content-length") or -1) == len(resp.body)
    parts = parse_byteranges(resp.header("content-type"), resp.body)
    assert parts == [("application/octet-stream", f"bytes {a}-{b}/{size}", data[a:b + 1])
                     for a, b in ranges]


def test_multipart_parses_with_the_email_package(srv: RunningServer) -> None:
    """An independent MIME parser reads the same parts back."""
    resp = get(srv.port, "/text.txt", "Range: bytes=0-9,100-199,-30\r\n")
    assert resp.status == 206
    ctype = resp.header("content-type") or ""
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + resp.body)
    assert msg.is_multipart() and msg.get_content_type() == "multipart/byteranges"
    payload = msg.get_payload()
    assert isinstance(payload, list)
    parts = [p for p in payload if isinstance(p, Message)]
    assert len(parts) == 3
    size = len(TEXT)
    expected = [(0, 9), (100, 199), (size - 30, size - 1)]
    assert [p["Content-Range"] for p in parts] == [f"bytes {a}-{b}/{size}" for a, b in expected]
    assert [p["Content-Type"] for p in parts] == ["text/plain; charset=utf-8"] * 3
    assert [p.get_payload(decode=True) for p in parts] == [TEXT[a:b + 1] for a, b in expected]


def test_each_multipart_response_has_a_fresh_boundary(srv: RunningServer) -> None:
    """The boundary is new per response (as semantics.multipart_boundary promises), so no
    file, not even one crafted after reading a response, can contain the next one."""
    boundaries = set()
    for _ in range(3):
        resp = get(srv.port, "/small.bin", "Range: bytes=0-1,5-6\r\n")
        assert resp.status == 206
        boundaries.add((resp.header("content-type") or "").rpartition("=")[2])
    assert len(boundaries) == 3


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_overlapping_ranges_are_coalesced(srv: RunningServer, name: str) -> None:
    """Overlapping or adjacent ranges are merged (§14.1.2): one range, or fewer parts."""
    data = FILES[name]
    size = len(data)
    resp = get(srv.port, "/" + name, "Range: bytes=50-149,0-99\r\n")
    assert resp.status == 206
    assert resp.header("content-range") == f"bytes 0-149/{size}"
    assert resp.body == data[:150]
    resp = get(srv.port, "/" + name, "Range: bytes=300-399,0-9,350-449,10-19\r\n")
    assert resp.status == 206
    parts = parse_byteranges(resp.header("content-type"), resp.body)
    assert [(r, d) for _, r, d in parts] == [(f"bytes 0-19/{size}", data[:20]),
                                             (f"bytes 300-449/{size}", data[300:450])]


def test_100_ranges_are_honoured_but_101_are_not(srv: RunningServer) -> None:
    """max_ranges (100): more ranges than that get the whole file with 200."""
    spec = ",".join(f"{i}-{i}" for i in range(0, 202, 2))  # 101 disjoint one-byte ranges
    resp = get(srv.port, "/small.bin", f"Range: bytes={spec}\r\n")
    assert resp.status == 200 and resp.body == SMALL
    spec100 = spec.rpartition(",")[0]
    resp = get(srv.port, "/small.bin", f"Range: bytes={spec100}\r\n")
    assert resp.status == 206
    parts = parse_byteranges(resp.header("content-type"), resp.body)
    assert [d for _, _, d in parts] == [SMALL[i:i + 1] for i in range(0, 200, 2)]


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_ranges_adding_up_to_more_than_the_file_get_200(srv: RunningServer, name: str) -> None:
    """`0-,0-` would double the response (CVE-2011-3192): the whole file, once, with 200."""
    data = FILES[name]
    resp = get(srv.port, "/" + name, "Range: bytes=0-,0-\r\n")
    assert resp.status == 200 and resp.body == data
    assert "content-range" not in names(resp)


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_unsatisfiable_range_is_416_with_the_size(srv: RunningServer, name: str) -> None:
    """A first-pos at or beyond the end → 416 with `Content-Range: bytes */SIZE`; the
    connection stays usable."""
    size = len(FILES[name])
    with connect(srv.port) as sock:
        sock.sendall(request("/" + name, headers=f"Range: bytes={size}-\r\n")
                     + request("/" + name, headers=f"Range: bytes={size + 5}-{size + 9}\r\n")
                     + request("/small.bin"))
        reader = Reader(sock)
        for _ in range(2):
            resp = reader.read_response()
            assert resp.status == 416
            assert resp.header("content-range") == f"bytes */{size}"
            assert resp.header("content-type") is not None
            assert len(resp.body) == int(resp.header("content-length") or -1)
        assert reader.read_response().body == SMALL


@pytest.mark.parametrize("value", ["bytes=abc", "items=0-1", "bytes=5-1", "bytes=-",
                                   "bytes 0-1", "bytes=0-1;x", "bytes=0x10-"])
def test_malformed_range_is_ignored(srv: RunningServer, value: str) -> None:
    """A Range that is not a valid `bytes` range-set is ignored: 200 and the whole file."""
    resp = get(srv.port, "/small.bin", f"Range: {value}\r\n")
    assert resp.status == 200 and resp.body == SMALL


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_head_with_range_is_200_headers_only(srv: RunningServer, name: str) -> None:
    """HEAD ignores Range (§14.2 defines range handling for GET only)."""
    resp = get(srv.port, "/" + name, "Range: bytes=0-9\r\n", method="HEAD")
    assert resp.status == 200 and resp.body == b""
    assert resp.header("content-length") == str(len(FILES[name]))
    assert "content-range" not in names(resp)


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_if_range(srv: RunningServer, name: str) -> None:
    """If-Range: the current tag or Last-Modified → 206; an old tag or another date → 200."""
    data = FILES[name]
    full = get(srv.port, "/" + name)
    etag, modified = full.header("etag"), full.header("last-modified")
    assert modified == http_date(MTIME)
    for value in (etag, modified):
        resp = get(srv.port, "/" + name, f"Range: bytes=10-19\r\nIf-Range: {value}\r\n")
        assert resp.status == 206, value
        assert resp.body == data[10:20]
    for value in ('"an-old-tag"', "W/" + str(etag), http_date(MTIME - 1), http_date(MTIME + 1),
                  "garbage"):
        resp = get(srv.port, "/" + name, f"Range: bytes=10-19\r\nIf-Range: {value}\r\n")
        assert resp.status == 200, value
        assert resp.body == data


def test_if_range_date_that_is_not_a_strong_validator_gives_200(serve: Serve,
                                                                root: Path) -> None:
    """A Last-Modified less than 1 s before the response (here a few seconds in the future)
    is a weak validator (§8.8.2.2): If-Range with it → 200, while the tag still works."""
    future = int(time.time()) + 5
    os.utime(root / "small.bin", (future, future))
    srv = serve()
    full = get(srv.port, "/small.bin")
    assert full.header("last-modified") == http_date(future)
    resp = get(srv.port, "/small.bin", f"Range: bytes=0-9\r\nIf-Range: {http_date(future)}\r\n")
    assert resp.status == 200 and resp.body == SMALL
    resp = get(srv.port, "/small.bin", f"Range: bytes=0-9\r\nIf-Range: {full.header('etag')}\r\n")
    assert resp.status == 206 and resp.body == SMALL[:10]


@pytest.mark.parametrize("name", ["small.bin", "large.bin"])
def test_pipelined_ranged_requests(srv: RunningServer, name: str) -> None:
    """multipart, single range, plain GET, HEAD with Range on one connection, in one send:
    every response is framed exactly."""
    data = FILES[name]
    size = len(data)
    with connect(srv.port) as sock:
        sock.sendall(request("/" + name, headers="Range: bytes=0-4,-5\r\n")
                     + request("/" + name, headers="Range: bytes=7-8\r\n")
                     + request("/" + name)
                     + request("/" + name, method="HEAD", headers="Range: bytes=0-1\r\n")
                     + request("/small.bin", headers="Range: bytes=1-2\r\n"))
        reader = Reader(sock)
        multi = reader.read_response()
        single = reader.read_response()
        whole = reader.read_response()
        head = reader.read_response(head_only=True)
        last = reader.read_response()
    assert [p[1:] for p in parse_byteranges(multi.header("content-type"), multi.body)] == [
        (f"bytes 0-4/{size}", data[:5]), (f"bytes {size - 5}-{size - 1}/{size}", data[-5:])]
    assert (single.status, single.body) == (206, data[7:9])
    assert (whole.status, whole.body) == (200, data)
    assert head.status == 200 and head.body == b""
    assert (last.status, last.body) == (206, SMALL[1:3])


@pytest.mark.parametrize("spec, first, last", [("0-9", 0, 9), ("-5", None, None)])
def test_range_of_a_precompressed_variant_is_of_the_encoded_bytes(
        srv: RunningServer, spec: str, first: int | None, last: int | None) -> None:
    """Ranges apply to the selected representation: the .gz bytes, with Content-Encoding."""
    size = len(APP_GZ)
    if first is None:
        first, last = size - 5, size - 1
    assert last is not None
    resp = get(srv.port, "/app.js", f"Accept-Encoding: gzip\r\nRange: bytes={spec}\r\n")
    assert resp.status == 206
    assert resp.header("content-encoding") == "gzip"
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.header("content-range") == f"bytes {first}-{last}/{size}"
    assert resp.body == APP_GZ[first:last + 1]
    assert resp.header("etag") == etag_of(srv.port, "/app.js", "Accept-Encoding: gzip\r\n")


def test_multipart_of_a_precompressed_variant(srv: RunningServer) -> None:
    """Several ranges of the gzip variant: parts of the .gz bytes; the response says gzip."""
    size = len(APP_GZ)
    resp = get(srv.port, "/app.js", "Accept-Encoding: gzip\r\nRange: bytes=0-1,10-19\r\n")
    assert resp.status == 206 and resp.header("content-encoding") == "gzip"
    parts = parse_byteranges(resp.header("content-type"), resp.body)
    assert [p[1:] for p in parts] == [(f"bytes 0-1/{size}", APP_GZ[:2]),
                                      (f"bytes 10-19/{size}", APP_GZ[10:20])]


# -- 3. precompressed variants (RFC 9110 §12.5.3, nginx gzip_static) ---------------------------

@pytest.mark.parametrize("accept, coding", [
    ("gzip", "gzip"),
    ("br, gzip", "br"),
    ("gzip, br", "br"),  # equal weights: br is preferred
    ("gzip;q=1, br;q=0.5", "gzip"),
    ("br;q=0", None),
    ("br;q=0, gzip", "gzip"),
    ("GZIP", "gzip"),
    ("x-gzip", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("deflate", None),
    ("identity", None),
    ("", None),
])
def test_accept_encoding_picks_the_variant(srv: RunningServer, accept: str,
                                           coding: str | None) -> None:
    """The best acceptable precompressed sibling is served with Content-Encoding; always
    with Vary: Accept-Encoding, since the choice depends on that header."""
    resp = get(srv.port, "/app.js", f"Accept-Encoding: {accept}\r\n")
    assert resp.status == 200
    assert resp.header("content-encoding") == coding
    assert resp.body == {"gzip": APP_GZ, "br": APP_BR, None: APP_JS}[coding]
    assert resp.header("content-length") == str(len(resp.body))
    assert resp.header("content-type") == "text/javascript; charset=utf-8"
    assert resp.header("vary") == "Accept-Encoding"


def test_gzip_variant_decompresses_to_the_file(srv: RunningServer) -> None:
    """What a client decodes from the gzip response is the identity file."""
    resp = get(srv.port, "/app.js", "Accept-Encoding: gzip\r\n")
    assert gzip.decompress(resp.body) == APP_JS


def test_no_accept_encoding_is_identity_with_vary(srv: RunningServer) -> None:
    """Without Accept-Encoding: the identity bytes, and still Vary (a cache must know)."""
    resp = get(srv.port, "/app.js")
    assert resp.body == APP_JS
    assert "content-encoding" not in names(resp)
    assert resp.header("vary") == "Accept-Encoding"


def test_file_without_siblings_has_no_vary(srv: RunningServer) -> None:
    """No variant exists, so the response does not vary: no Vary header."""
    for headers in ("", "Accept-Encoding: gzip, br\r\n"):
        resp = get(srv.port, "/plain.css", headers)
        assert resp.body == b"body{color:red}\n"
        assert "vary" not in names(resp) and "content-encoding" not in names(resp)


def test_sibling_requested_directly_is_a_normal_file(srv: RunningServer) -> None:
    """`/app.js.gz` is a gzip file in its own right: no Content-Encoding, its own type."""
    resp = get(srv.port, "/app.js.gz", "Accept-Encoding: gzip\r\n")
    assert resp.status == 200 and resp.body == APP_GZ
    assert resp.header("content-type") == "application/gzip"
    assert "content-encoding" not in names(resp)


def test_cached_variants_do_not_leak_across_clients(srv: RunningServer) -> None:
    """Within the cache TTL, on one server, each client gets the bytes of its own coding."""
    plan = [("gzip", APP_GZ), ("", APP_JS), ("br", APP_BR), ("gzip", APP_GZ), ("", APP_JS),
            ("br;q=0.1, gzip", APP_GZ), ("br", APP_BR)]
    with connect(srv.port) as sock:
        reader = Reader(sock)
        for accept, body in plan:
            accept_line = f"Accept-Encoding: {accept}\r\n" if accept else ""
            sock.sendall(request("/app.js", headers=accept_line))
            resp = reader.read_response()
            assert resp.body == body, accept
    # And a fresh connection sees the same.
    for accept, body in plan:
        assert get(srv.port, "/app.js", f"Accept-Encoding: {accept}\r\n").body == body


# -- 4. caching headers (RFC 9111 §5.2) -------------------------------------------------------

def test_default_cache_control(srv: RunningServer) -> None:
    """HTML revalidates every time; other files get a modest max-age."""
    assert get(srv.port, "/page.html").header("cache-control") == "no-cache"
    for path in ("/small.bin", "/large.bin", "/app.js", "/plain.css"):
        assert get(srv.port, path).header("cache-control") == "max-age=600", path
    assert get(srv.port, "/app.js", "Accept-Encoding: gzip\r\n").header(
        "cache-control") == "max-age=600"


def test_configured_cache_control(serve: Serve) -> None:
    """Both values come from Config, on 200, 206 and 304 alike."""
    srv = serve(cache_control="public, max-age=60", cache_control_html="no-store")
    assert get(srv.port, "/page.html").header("cache-control") == "no-store"
    etag = etag_of(srv.port, "/large.bin")
    for headers, status in (("", 200), ("Range: bytes=0-1\r\n", 206),
                            (f"If-None-Match: {etag}\r\n", 304)):
        resp = get(srv.port, "/large.bin", headers)
        assert resp.status == status
        assert resp.header("cache-control") == "public, max-age=60"


def test_nosniff_on_every_kind_of_response(srv: RunningServer) -> None:
    """X-Content-Type-Options: nosniff on 200, 206, 304, 404, 405 (and 412, 416)."""
    etag = etag_of(srv.port, "/small.bin")
    cases = [("GET", "/small.bin", "", 200), ("GET", "/small.bin", "Range: bytes=0-1\r\n", 206),
             ("GET", "/small.bin", f"If-None-Match: {etag}\r\n", 304),
             ("GET", "/missing.txt", "", 404), ("DELETE", "/small.bin", "", 405),
             ("GET", "/small.bin", 'If-Match: "x"\r\n', 412),
             ("GET", "/small.bin", "Range: bytes=5000-\r\n", 416),
             ("HEAD", "/large.bin", "", 200)]
    for method, path, headers, status in cases:
        resp = get(srv.port, path, headers, method=method)
        assert resp.status == status, (method, path, headers)
        assert resp.header("x-content-type-options") == "nosniff", status


# -- 5. directory listings ------------------------------------------------------------------------

SCRIPT_NAME = '"><script>alert(1)<'  # a POSIX name cannot hold the "/" of "</script>"
IMG_NAME = "<img src=x onerror=alert(1)>.txt"


class _Links(HTMLParser):
    """Every href of a page, and the (href, text) of the rows of its table body."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rows: list[tuple[str, str]] = []
        self._in_body = False
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.hrefs.append(href)
            if self._in_body:
                self._href, self._text = href, ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "a" and self._href is not None:
            self.rows.append((self._href, self._text))
            self._href = None


def _links(body: bytes) -> _Links:
    parser = _Links()
    parser.feed(body.decode("utf-8"))
    parser.close()
    return parser


@pytest.fixture
def listed(root: Path) -> Path:
    """`/list/`: no index.html; files of different sizes and awkward names, a dotfile, a
    hidden directory, a directory with an index and one without."""
    d = root / "list"
    d.mkdir()
    for name, size in [("b.txt", 10), ("a.txt", 300), ("c.bin", 20), (SCRIPT_NAME, 5),
                       (IMG_NAME, 6), ("space name.txt", 7), ("100%.txt", 8),
                       ("q?x#y.txt", 9), ("caf\u00e9.txt", 11), (".hidden", 12)]:
        (d / name).write_bytes(b"x" * size)
    (d / ".git").mkdir()
    (d / "zdir").mkdir()
    (d / "zdir" / "index.html").write_bytes(b"<p>zdir index</p>\n")
    (d / "adir").mkdir()
    (d / "adir" / "inner.txt").write_bytes(b"inner\n")
    return d


VISIBLE = {"b.txt", "a.txt", "c.bin", SCRIPT_NAME, IMG_NAME, "space name.txt", "100%.txt",
           "q?x#y.txt", "caf\u00e9.txt", "zdir", "adir"}


def test_listing_is_off_by_default(srv: RunningServer, listed: Path) -> None:
    """Without --listing a directory that has no index.html is 404."""
    resp = get(srv.port, "/list/")
    assert resp.status == 404
    assert b"b.txt" not in resp.body


def test_listing_page_escapes_names_and_hides_dotfiles(serve: Serve, listed: Path) -> None:
    """Names are shown as text: no tag from a file name reaches the page; dotfiles hidden."""
    srv = serve(listing=True)
    resp = get(srv.port, "/list/")
    assert resp.status == 200
    assert resp.header("content-type") == "text/html; charset=utf-8"
    assert resp.header("cache-control") == "no-cache"
    assert resp.header("x-content-type-options") == "nosniff"
    assert len(resp.body) == int(resp.header("content-length") or -1)
    page = resp.body.decode("utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;" in page
    assert ".hidden" not in page and ".git" not in page
    texts = {text.rstrip("/") for _, text in _links(resp.body).rows}
    assert texts - {".."} == VISIBLE


def test_listing_escapes_the_directory_name_in_title_and_breadcrumbs(serve: Serve,
                                                                     listed: Path) -> None:
    """A directory called `<svg onload=alert(1)>` is listed under an escaped title."""
    (listed / "<svg onload=alert(1)>").mkdir()
    (listed / "<svg onload=alert(1)>" / "f.txt").write_bytes(b"f\n")
    srv = serve(listing=True)
    resp = get(srv.port, "/list/%3Csvg%20onload=alert(1)%3E/")
    assert resp.status == 200
    page = resp.body.decode("utf-8")
    assert page.count("<svg") == 1 and '<svg viewBox="0 0 64 64"' in page  # the logo alone
    assert "<svg onload" not in page and "&lt;svg onload=alert(1)&gt;" in page
    assert "f.txt" in page


def test_listing_links_work_when_followed(serve: Serve, listed: Path) -> None:
    """Every href of the page, resolved against the directory's URL, answers 200 — and each
    file row leads to that file's own bytes."""
    srv = serve(listing=True)
    base = "http://test/list/"
    links = _links(get(srv.port, "/list/").body)
    assert len(links.hrefs) > len(VISIBLE)
    for href in links.hrefs:
        url = urlsplit(urljoin(base, href))
        assert url.netloc == "test", href  # relative links only
        target = url.path + (f"?{url.query}" if url.query else "")
        resp = get(srv.port, target)
        assert resp.status == 200, (href, target, resp.status)
    for href, text in links.rows:
        if text.endswith("/"):
            continue
        resp = get(srv.port, urlsplit(urljoin(base, href)).path)
        assert resp.body == (listed / text).read_bytes(), href


def test_listing_puts_directories_first(serve: Serve, listed: Path) -> None:
    """Directories come before files, each group sorted by name."""
    srv = serve(listing=True)
    texts = [t for _, t in _links(get(srv.port, "/list/").body).rows]
    assert texts.pop(0) == "../"
    assert texts[:2] == ["adir/", "zdir/"]
    assert all(not t.endswith("/") for t in texts[2:])
    files = texts[2:]
    assert files == sorted(files, key=str.casefold)


def test_listing_sorted_by_size_descending(serve: Serve, listed: Path) -> None:
    """`?sort=size&order=desc`: directories first, then files, largest first."""
    srv = serve(listing=True)
    body = get(srv.port, "/list/?sort=size&order=desc").body
    texts = [t for _, t in _links(body).rows if t != "../"]
    assert texts[:2] in (["adir/", "zdir/"], ["zdir/", "adir/"])
    sizes = [(listed / t).stat().st_size for t in texts[2:]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 300


def test_listing_json_has_the_same_entries(serve: Serve, listed: Path) -> None:
    """`?format=json`: the entries of the HTML page, in the same order, with sizes."""
    srv = serve(listing=True)
    for query in ("", "sort=size&order=desc&", "sort=time&"):
        html_rows = [t.rstrip("/") for _, t in _links(get(srv.port, f"/list/?{query}").body).rows
                     if t != "../"]
        resp = get(srv.port, f"/list/?{query}format=json")
        assert resp.status == 200
        assert (resp.header("content-type") or "").startswith("application/json")
        assert resp.header("cache-control") == "no-cache"
        doc = json.loads(resp.body)
        assert [e["name"] for e in doc["entries"]] == html_rows
        for entry in doc["entries"]:
            path = listed / entry["name"]
            assert entry["type"] == ("dir" if path.is_dir() else "file")
            if entry["type"] == "file":
                assert entry["size"] == path.stat().st_size


def test_directory_with_index_still_serves_the_index(serve: Serve, listed: Path) -> None:
    """--listing changes nothing for a directory that has an index.html."""
    srv = serve(listing=True)
    resp = get(srv.port, "/list/zdir/")
    assert resp.status == 200 and resp.body == b"<p>zdir index</p>\n"
    assert get(srv.port, "/list/zdir").status == 301


def test_listing_is_never_served_stale(serve: Serve, listed: Path) -> None:
    """A file added to the directory shows on the very next request (no cache, no TTL)."""
    srv = serve(listing=True, cache_ttl=60.0)
    assert "new.txt" not in get(srv.port, "/list/").body.decode()
    (listed / "new.txt").write_bytes(b"new\n")
    assert "new.txt" in get(srv.port, "/list/").body.decode()
    assert any(e["name"] == "new.txt"
               for e in json.loads(get(srv.port, "/list/?format=json").body)["entries"])


def test_listing_link_to_a_non_utf8_name_works(serve: Serve, listed: Path) -> None:
    """The listing promises links for names that are not UTF-8; following one finds it."""
    raw = os.fsencode(listed) + b"/bad\xff.txt"
    try:
        with open(raw, "wb") as f:
            f.write(b"bad name\n")
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 names")
    srv = serve(listing=True)
    (href,) = [h for h, t in _links(get(srv.port, "/list/").body).rows if t.startswith("bad")]
    resp = get(srv.port, urlsplit(urljoin("http://test/list/", href)).path)
    assert resp.status == 200 and resp.body == b"bad name\n"


# -- 6. framing edge cases (RFC 9112 §7, RFC 9110 §10.1.1) ---------------------------------------

def test_chunked_get_body_with_extensions_and_trailers_is_discarded(srv: RunningServer) -> None:
    """The chunked body of a GET is read and thrown away, extensions and trailers included,
    and the pipelined request after it is answered."""
    body = (b"5;name=value;quoted=\"a b\"\r\nhello\r\n"
            b"3\r\nabc\r\n"
            b"0;last=1\r\nX-Trailer: one\r\nY-Trailer: two\r\n\r\n")
    data = request("/small.bin", headers=CHUNKED) + body + request("/text.txt")
    replies = exchange(srv.port, data, count=2)
    assert [(r.status, r.body) for r in replies] == [(200, SMALL), (200, TEXT)]


def test_chunked_body_in_pieces_then_pipelined(srv: RunningServer) -> None:
    """The same, trickled: the second request waits for the end of the first one's body."""
    with connect(srv.port) as sock:
        reader = Reader(sock)
        sock.sendall(request("/small.bin", headers=CHUNKED) + b"4;ext\r\nda")
        assert reader.read_response().body == SMALL
        for piece in (b"ta\r\n", b"0\r\nTrail", b"er: x\r\n", b"\r\n" + request("/text.txt")):
            time.sleep(0.02)
            sock.sendall(piece)
        assert reader.read_response().body == TEXT


def test_chunked_body_over_max_body_closes_with_no_second_response(serve: Serve) -> None:
    """A chunked body beyond max_body, after its GET was answered: the server closes with
    no 413 (one response per request: a 413 would pass for the pipelined GET's answer)."""
    srv = serve(max_body=100)
    with connect(srv.port) as sock:
        sock.sendall(request("/small.bin", headers=CHUNKED)
                     + b"40\r\n" + b"a" * 64 + b"\r\n40\r\n" + b"b" * 64 + b"\r\n0\r\n\r\n"
                     + request("/text.txt"))
        reader = Reader(sock)
        first = reader.read_response()
        assert first.status == 200 and first.body == SMALL  # answered before the body
        assert reader.at_eof()


def _read_one_head(sock: socket.socket, reader: Reader, timeout: float) -> Response:
    sock.settimeout(timeout)
    return reader.read_response()


@pytest.mark.parametrize("path, body", [("/small.bin", SMALL), ("/large.bin", LARGE),
                                        ("/missing", None)])
def test_expect_100_continue_on_a_get_with_a_body(srv: RunningServer, path: str,
                                                  body: bytes | None) -> None:
    """`Expect: 100-continue` with a body: 100 Continue comes before the final response,
    while the client still holds the body back; after the body the connection is usable."""
    with connect(srv.port) as sock:
        reader = Reader(sock)
        sock.sendall(request(path, headers="Content-Length: 11\r\nExpect: 100-continue\r\n"))
        interim = _read_one_head(sock, reader, timeout=1.0)
        assert interim.status == 100 and interim.body == b""
        assert interim.head == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.settimeout(5.0)
        sock.sendall(b"hello world")
        final = reader.read_response()
        if body is None:
            assert final.status == 404
        else:
            assert final.status == 200 and final.body == body
        assert final.header("connection") is None
        sock.sendall(request("/text.txt"))
        assert reader.read_response().body == TEXT


def test_expect_100_continue_without_a_body_sends_no_100(srv: RunningServer) -> None:
    """No body follows (no Content-Length): nothing to continue, just the response."""
    raw = read_all(srv.port, request("/small.bin", headers="Expect: 100-continue\r\n", close=True))
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(SMALL)


def test_expect_100_continue_is_ignored_from_http10(srv: RunningServer) -> None:
    """§10.1.1: an HTTP/1.0 request's Expect is ignored; no 100 goes to a 1.0 client."""
    raw = read_all(srv.port, request("/small.bin", version="HTTP/1.0", host="test",
                                     headers="Content-Length: 3\r\nExpect: 100-continue\r\n",
                                     body=b"abc"))
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(SMALL)
    assert b" 100 " not in raw.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("with_body", [False, True])
def test_unknown_expectation_is_417(srv: RunningServer, with_body: bool) -> None:
    """An expectation other than 100-continue → 417. With an unread body the connection
    closes (the body would desynchronize it); without one it stays."""
    head = request("/small.bin", headers="Expect: something-else\r\n"
                   + ("Content-Length: 5\r\n" if with_body else ""))
    with connect(srv.port) as sock:
        sock.sendall(head)
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 417
        assert len(resp.body) == int(resp.header("content-length") or -1)
        if with_body:
            assert resp.header("connection") == "close"
            sock.sendall(b"12345")
            assert reader.at_eof()
        else:
            assert resp.header("connection") is None
            sock.sendall(request("/text.txt"))
            assert reader.read_response().body == TEXT


def test_expect_100_continue_on_a_post_is_405_and_close_without_100(srv: RunningServer) -> None:
    """The answer does not depend on the body: 405 at once, no 100, and close instead of
    reading a body nobody wants."""
    with connect(srv.port) as sock:
        sock.sendall(request("/small.bin", method="POST",
                             headers="Content-Length: 100000\r\nExpect: 100-continue\r\n"))
        reader = Reader(sock)
        resp = _read_one_head(sock, reader, timeout=2.0)
        assert resp.status == 405
        assert resp.header("allow") is not None and "GET" in (resp.header("allow") or "")
        assert resp.header("connection") == "close"
        assert b"100 Continue" not in resp.head
        assert reader.at_eof()


def test_absolute_form_target_for_another_host_serves_the_path(srv: RunningServer) -> None:
    """RFC 9112 §3.2.2: the absolute-form's authority is ignored; the path is served."""
    data = (b"GET http://elsewhere.example:8080/small.bin HTTP/1.1\r\nHost: test\r\n\r\n"
            b"GET HTTP://ELSEWHERE.example/text.txt?x=1 HTTP/1.1\r\nHost: test\r\n\r\n")
    replies = exchange(srv.port, data, count=2)
    assert [(r.status, r.body) for r in replies] == [(200, SMALL), (200, TEXT)]


def test_trace_is_405_with_allow(srv: RunningServer) -> None:
    """TRACE is never echoed: 405 with Allow, and the connection is kept."""
    with connect(srv.port) as sock:
        sock.sendall(request("/small.bin", method="TRACE", headers="X-Secret: cookie\r\n")
                     + request("/text.txt"))
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 405 and b"cookie" not in resp.body
        assert set((resp.header("allow") or "").replace(" ", "").split(",")) >= {"GET", "HEAD"}
        assert "TRACE" not in (resp.header("allow") or "")
        assert reader.read_response().body == TEXT


def test_connect_is_refused(srv: RunningServer) -> None:
    """CONNECT (authority-form) is not a tunnel here: 405 with Allow, or 501."""
    raw = b"CONNECT elsewhere.example:443 HTTP/1.1\r\nHost: elsewhere.example:443\r\n\r\n"
    (resp,) = exchange(srv.port, raw)
    assert resp.status in (405, 501)
    if resp.status == 405:
        assert resp.header("allow") is not None
    assert resp.header("content-type") is not None
    assert len(resp.body) == int(resp.header("content-length") or -1)


# -- 7. errors that name themselves ------------------------------------------------------------

LONG_TARGET = "/" + "a" * 9000
MANY_HEADERS = "".join(f"X-H{i}: v\r\n" for i in range(101))


ERRORS = {
    "400-no-host": (b"GET /small.bin HTTP/1.1\r\n\r\n", 400, True),
    "400-two-framings": (request("/small.bin", headers=CHUNKED + "Content-Length: 3\r\n"),
                         400, True),
    "400-bad-host": (request("/small.bin", host="a b"), 400, True),
    "400-traversal": (request("/../small.bin"), 400, True),
    "404": (request("/missing.txt"), 404, False),
    "404-dir": (request("/no-such-dir/"), 404, False),
    "405-delete": (request("/small.bin", method="DELETE"), 405, False),
    "405-put": (request("/small.bin", method="PUT"), 405, False),
    "412-if-match": (request("/small.bin", headers='If-Match: "nope"\r\n'), 412, False),
    "412-ius": (request("/large.bin",
                        headers=f"If-Unmodified-Since: {http_date(MTIME - 5)}\r\n"), 412, False),
    "413": (request("/small.bin", headers="Content-Length: 2000000\r\n"), 413, True),
    "414": (request(LONG_TARGET), 414, True),
    "416": (request("/small.bin", headers="Range: bytes=1000-\r\n"), 416, False),
    "416-suffix-0": (request("/large.bin", headers="Range: bytes=-0\r\n"), 416, False),
    "417": (request("/small.bin", headers="Expect: nothing\r\n"), 417, False),
    "431-count": (request("/small.bin", headers=MANY_HEADERS), 431, True),
    "431-size": (request("/small.bin", headers="X-Big: " + "b" * 17000 + "\r\n"), 431, True),
    "501-method": (request("/small.bin", method="BREW"), 501, False),
    "501-coding": (request("/small.bin", headers="Transfer-Encoding: gzip, chunked\r\n"), 501,
                   True),
    "505": (request("/small.bin", version="HTTP/2.0", host="test"), 505, True),
}


@pytest.mark.parametrize("raw, status, closes", ERRORS.values(), ids=ERRORS.keys())
def test_error_responses_describe_themselves(srv: RunningServer, raw: bytes, status: int,
                                             closes: bool) -> None:
    """Every error has Content-Type and an exact Content-Length; `Connection: close` is sent
    exactly when the server closes; 405 has Allow and 416 Content-Range."""
    with connect(srv.port) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == status
        assert resp.header("content-type") == "text/html; charset=utf-8"
        assert resp.header("content-length") == str(len(resp.body)) and resp.body
        assert resp.header("date") is not None
        assert resp.header("x-content-type-options") == "nosniff"
        if status == 405:
            assert set((resp.header("allow") or "").replace(" ", "").split(",")) >= {"GET", "HEAD"}
        if status == 416:
            size = len(LARGE) if b"large" in raw else len(SMALL)
            assert resp.header("content-range") == f"bytes */{size}"
        if closes:
            assert resp.header("connection") == "close"
            assert reader.at_eof(), "Connection: close, but the server kept the connection"
        else:
            assert resp.header("connection") is None
            assert not reader.at_eof(timeout=0.1)
            sock.settimeout(5.0)
            sock.sendall(request("/text.txt"))
            assert reader.read_response().body == TEXT


def test_head_of_an_error_has_its_length_but_no_body(srv: RunningServer) -> None:
    """HEAD of a 404: the GET's Content-Length, no body, the connection still in step."""
    with connect(srv.port) as sock:
        sock.sendall(request("/missing.txt", method="HEAD") + request("/missing.txt"))
        reader = Reader(sock)
        head = reader.read_response(head_only=True)
        full = reader.read_response()
    assert head.status == full.status == 404
    assert head.header("content-length") == full.header("content-length") == str(len(full.body))


def test_errors_keep_connection_close_when_the_client_asked_for_it(srv: RunningServer) -> None:
    """A keep-alive error (404) to a `Connection: close` request still says close and closes."""
    with connect(srv.port) as sock:
        sock.sendall(request("/missing.txt", close=True))
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 404 and resp.header("connection") == "close"
        assert reader.at_eof()


def test_unquote_names_roundtrip_in_listing_json(serve: Serve, listed: Path) -> None:
    """JSON names are the decoded names of the files the HTML rows link to."""
    srv = serve(listing=True)
    rows = _links(get(srv.port, "/list/").body).rows
    by_name = {unquote(h).rstrip("/"): t.rstrip("/") for h, t in rows if h != "../"}
    entries = json.loads(get(srv.port, "/list/?format=json").body)["entries"]
    assert {e["name"] for e in entries} == set(by_name) == VISIBLE


def test_large_multipart_to_a_slow_reader_is_byte_exact(serve: Serve) -> None:
    """Big parts of a streamed file, 4 KiB sendfile chunks and a client with a small
    receive buffer that reads slowly: real short sends and EAGAIN between every piece."""
    srv = serve(sendfile_chunk=4096)
    size = LARGE_SIZE
    ranges = [(1, 90_000), (100_000, 100_000), (120_000, 239_999), (size - 50_000, size - 1)]
    spec = ",".join(f"{a}-{b}" for a, b in ranges)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5.0)
    with sock:
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(request("/large.bin", headers=f"Range: bytes={spec}\r\n")
                     + request("/small.bin"))
        time.sleep(0.05)  # let the server fill the small window and block
        reader = Reader(sock)
        while len(reader.buf) < 20_000:
            chunk = sock.recv(997)
            assert chunk
            reader.buf += chunk
        resp = reader.read_response()
        after = reader.read_response()
    parts = parse_byteranges(resp.header("content-type"), resp.body)
    assert [(r, d) for _, r, d in parts] == [(f"bytes {a}-{b}/{size}", LARGE[a:b + 1])
                                             for a, b in ranges]
    assert after.status == 200 and after.body == SMALL


def test_no_header_is_sent_twice(srv: RunningServer) -> None:
    """200, 206 (single and multipart), 304 and 416 heads name each header once."""
    etag = etag_of(srv.port, "/app.js", "Accept-Encoding: gzip\r\n")
    for headers in ("", "Range: bytes=0-1\r\n", "Range: bytes=0-1,3-4\r\n",
                    f"If-None-Match: {etag}\r\n", "Range: bytes=99999-\r\n"):
        resp = get(srv.port, "/app.js", "Accept-Encoding: gzip\r\n" + headers)
        assert len(names(resp)) == len(set(names(resp))), resp.head


def test_if_none_match_beats_range(srv: RunningServer) -> None:
    """Preconditions come before ranges (§13.2.2): a matching tag gives 304, not 206."""
    etag = etag_of(srv.port, "/large.bin")
    resp = get(srv.port, "/large.bin", f"If-None-Match: {etag}\r\nRange: bytes=0-9\r\n")
    assert resp.status == 304 and "content-range" not in names(resp)


@pytest.mark.parametrize("chunked", [False, True])
def test_large_get_body_arriving_with_its_head_is_discarded_promptly(serve: Serve,
                                                                     chunked: bool) -> None:
    """A GET body bigger than max_head that arrives together with the head (more than one
    recv's worth): it is discarded, and the pipelined request after it is answered at once,
    not after header_timeout (READ interest must come back once the buffer is drained)."""
    srv = serve(header_timeout=3.0)
    n = 100_000
    if chunked:
        framing = "Transfer-Encoding: chunked\r\n"
        body = b"%x\r\n" % n + b"x" * n + b"\r\n0\r\n\r\n"
    else:
        framing, body = f"Content-Length: {n}\r\n", b"x" * n
    started = time.monotonic()
    with connect(srv.port) as sock:
        sock.sendall(request("/small.bin", headers=framing) + body + request("/text.txt"))
        reader = Reader(sock)
        first, second = reader.read_response(), reader.read_response()
    assert (first.status, first.body) == (200, SMALL)
    assert (second.status, second.body) == (200, TEXT)
    assert time.monotonic() - started < 2.0
