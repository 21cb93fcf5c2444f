"""Compression on the fly, end to end: a real `python -m evserver` process, real clients.

curl (`--compressed`) and Python's own decoders get byte-for-byte the file back in every
coding, from a file encoded whole and cached and from one encoded as it is sent (chunked,
or close-delimited for HTTP/1.0); each representation has its own ETag, revalidates only
itself and carries `Vary: Accept-Encoding`; HEAD has GET's headers; a range of a streamed
file comes from the file itself; what must not be encoded is not; the status page and the
stop line count the savings; and every text asset of www/ arrives encoded.

The server runs with `--compress-cache-bytes 1000000`: a file up to a quarter of that
(250,000 bytes, app.js here) is encoded whole and cached, a larger one (big.txt) is
encoded while it is sent. That exactly one compression job runs for a herd of requests is
not observable from outside: it is tested at the connection layer. All traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import gzip
import http.client
import importlib
import json
import random
import re
import socket
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from evserver.codings import CODINGS, installed
from evserver.log import human_size
from evserver.metrics import compression_summary
from tests.conftest import REPO, ServerProcess
from tests.tools import need_tool

pytestmark = pytest.mark.timeout(30)

Start = Callable[..., ServerProcess]

WWW = REPO / "www"
CACHE_BYTES = 1_000_000  # --compress-cache-bytes: files up to 250,000 bytes are cached
LEVELS = {"gzip": 6, "br": 5, "zstd": 3}  # the documented default levels (docs/options.md)
ALL = "gzip, deflate, br, zstd"  # what browsers and `curl --compressed` send
GZIP_ONLY = {"Accept-Encoding": "gzip"}

# The built-in compressible types of www/'s extensions (written out here, not taken from
# evserver): text, JSON, SVG and icons; images, video and the .gz files themselves are not.
COMPRESSIBLE = {".html", ".css", ".js", ".json", ".txt", ".md", ".csv", ".svg", ".ico"}


def _words(seed: int, size: int) -> bytes:
    """`size` bytes of varied text: numbered lines of words drawn from a random lexicon,
    so it shrinks, but not to nothing."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 11)))
               for _ in range(6000)]
    lines, total, n = [], 0, 0
    while total < size:
        line = f"{n:07d} {' '.join(rng.choices(lexicon, k=rng.randint(3, 16)))}\n".encode()
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines)[:size]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page, a 100 KiB script (cached encoded), 3 MiB of text (encoded as sent), text
    just under and at the threshold, a PNG, random bytes named .txt, two stylesheets with
    gzip siblings (one of 1 MB), and text under a type that is not compressible by
    default."""
    root = tmp_path_factory.mktemp("compression-root")
    (root / "page.html").write_bytes(
        b"<!doctype html>\n<title>page</title>\n"
        + b"".join(b"<p>paragraph %d of a page that says much the same thing</p>\n" % i
                   for i in range(100)))
    rng = random.Random(7)
    (root / "app.js").write_bytes(b"".join(
        b"export function f%d(a, b) { return a * %d + b - %d; }\n"
        % (i, rng.randrange(10**6), rng.randrange(10**6)) for i in range(2000)))
    (root / "big.txt").write_bytes(_words(1, 3 * 1024 * 1024 + 12345))
    (root / "small.txt").write_bytes(_words(2, 1023))
    (root / "edge.txt").write_bytes(_words(3, 1024))
    (root / "logo.png").write_bytes((WWW / "img" / "logo.png").read_bytes())
    (root / "noise.txt").write_bytes(random.Random(4).randbytes(20_000))
    css = b"".join(b".c%d { margin: %dpx; color: #%06x; }\n" % (i, i % 17, i * 977)
                   for i in range(300))
    (root / "style.css").write_bytes(css)
    (root / "style.css.gz").write_bytes(gzip.compress(css, 9, mtime=0))
    sheet = _words(6, 1_000_000)  # its sibling too is over a quarter of the budget
    (root / "sheet.css").write_bytes(sheet)
    (root / "sheet.css.gz").write_bytes(gzip.compress(sheet, 1, mtime=0))
    (root / "data.bin").write_bytes(_words(5, 8000))
    assert len((root / "app.js").read_bytes()) in range(90_000, CACHE_BYTES // 4)
    return root


@pytest.fixture
def server(start_process: Start, root: Path) -> ServerProcess:
    return start_process("--compress-cache-bytes", str(CACHE_BYTES), root=root)


# -- helpers ---------------------------------------------------------------------------------

def need_coding(coding: str) -> None:
    """br and zstd need evserver's optional packages (not test extras: CI may lack them,
    so a missing one skips, even under CI)."""
    if not installed(coding):
        package = CODINGS[coding].package
        pytest.skip(f"the {coding} coding needs the optional Python package {package}, "
                    f"which is not installed: python3 -m pip install {package}")


def decode(coding: str, data: bytes) -> bytes:
    """The content of a body in `coding`, decoded by Python (not by evserver)."""
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return bytes(importlib.import_module("brotli").decompress(data))
    assert coding == "zstd", coding
    zstandard = importlib.import_module("zstandard")
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def encode(coding: str, data: bytes) -> bytes:
    """`data` in `coding` at its default level, encoded by Python (not by evserver)."""
    if coding == "gzip":
        return gzip.compress(data, LEVELS["gzip"], mtime=0)
    if coding == "br":
        return bytes(importlib.import_module("brotli").compress(data, quality=LEVELS["br"]))
    assert coding == "zstd", coding
    zstandard = importlib.import_module("zstandard")
    return bytes(zstandard.ZstdCompressor(level=LEVELS["zstd"]).compress(data))


def identity_tag(path: Path) -> str:
    """The ETag evserver gives a file as it is: "ino-mtime_ns-size" in hex."""
    st = path.stat()
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'


def encoded_tag(path: Path, coding: str) -> str:
    """The ETag of the file encoded here in `coding` at its default level."""
    return identity_tag(path)[:-1] + f'-{coding}{LEVELS[coding]}"'


@dataclass
class Reply:
    status: int
    fields: list[tuple[str, str]]  # as sent, in order, repeats kept
    body: bytes  # as sent (de-chunked, never decoded)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.fields if k.lower() == name.lower()]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.fields}


def fetch(port: int, path: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> Reply:
    """One request on a new http.client connection (which de-chunks, and never decodes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def read_until_closed(port: int, data: bytes) -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = []
        while chunk := sock.recv(65536):
            out.append(chunk)
        return b"".join(out)


def split_head(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """(status line, lower-cased headers, the rest) of raw response bytes."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, data[:300]
    status, *lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, colon, value = line.partition(":")
        assert colon, line
        fields[name.strip().lower()] = value.strip()
    return status, fields, rest


# -- 1. curl decodes every coding, cached and streamed ---------------------------------------

def curl_compressed(port: int, path: str, coding: str, tmp_path: Path) -> tuple[
        dict[str, str], bytes, int]:
    """`curl --compressed -H 'Accept-Encoding: CODING'`: (the response's headers, the body
    curl decoded, the bytes curl downloaded)."""
    head, out = tmp_path / "head.txt", tmp_path / "body"
    done = subprocess.run(
        [need_tool("curl"), "--noproxy", "*", "--max-time", "15", "-sS", "--compressed",
         "-H", f"Accept-Encoding: {coding}", "-D", str(head), "-o", str(out),
         "-w", "%{http_code} %{size_download}", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    code, downloaded = done.stdout.split()
    assert code == "200", head.read_text()
    fields = {k.lower(): v for k, v in re.findall(r"^([\w-]+): (.*?)\r?$", head.read_text(),
                                                    re.M)}
    return fields, out.read_bytes(), int(downloaded)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_curl_decodes_a_file_encoded_whole(server: ServerProcess, root: Path, coding: str,
                                           tmp_path: Path) -> None:
    """app.js (100 KiB, cached encoded): curl decodes it to the file byte for byte; the
    response has Content-Encoding, Vary, the coding's ETag and a Content-Length (the
    encoded size, smaller than the file), and accepts ranges."""
    need_coding(coding)
    fields, body, downloaded = curl_compressed(server.port, "/app.js", coding, tmp_path)
    assert body == (root / "app.js").read_bytes()
    assert fields["content-encoding"] == coding
    assert fields["vary"] == "Accept-Encoding"
    assert fields["etag"] == encoded_tag(root / "app.js", coding)
    assert int(fields["content-length"]) == downloaded < len(body) // 3
    assert fields["accept-ranges"] == "bytes" and "transfer-encoding" not in fields


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_curl_decodes_a_file_encoded_as_it_is_sent(server: ServerProcess, root: Path,
                                                   coding: str, tmp_path: Path) -> None:
    """big.txt (3 MiB, over a quarter of --compress-cache-bytes): chunked, without
    Content-Length or Accept-Ranges, with the coding's ETag; curl decodes it to the file."""
    need_coding(coding)
    fields, body, downloaded = curl_compressed(server.port, "/big.txt", coding, tmp_path)
    assert body == (root / "big.txt").read_bytes()
    assert fields["content-encoding"] == coding
    assert fields["transfer-encoding"] == "chunked"
    assert "content-length" not in fields and "accept-ranges" not in fields
    assert fields["vary"] == "Accept-Encoding"
    assert fields["etag"] == encoded_tag(root / "big.txt", coding)
    assert downloaded < len(body)


# -- 2. Python's decoders, on raw http.client bodies -----------------------------------------

def test_python_decodes_gzip_bodies_and_the_connection_goes_on(server: ServerProcess,
                                                               root: Path) -> None:
    """http.client (which does not decode) on one kept-alive connection: the cached gzip
    body is Content-Length bytes, the streamed one comes chunked; gzip and zlib (wbits 31)
    both decode each to the file; a request after the chunked stream still parses."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/app.js", headers=GZIP_ONLY)
        resp = conn.getresponse()
        cached = resp.read()
        sock = conn.sock
        assert resp.getheader("Content-Encoding") == "gzip"
        assert resp.getheader("Content-Length") == str(len(cached))
        assert cached[:2] == b"\x1f\x8b"
        conn.request("GET", "/big.txt", headers=GZIP_ONLY)
        resp = conn.getresponse()
        streamed = resp.read()
        assert resp.getheader("Content-Encoding") == "gzip"
        assert resp.getheader("Transfer-Encoding") == "chunked"
        conn.request("GET", "/small.txt")
        resp = conn.getresponse()
        assert resp.read() == (root / "small.txt").read_bytes()
        assert conn.sock is sock, "the connection was not kept after the chunked stream"
    finally:
        conn.close()
    for body, name in ((cached, "app.js"), (streamed, "big.txt")):
        content = (root / name).read_bytes()
        assert gzip.decompress(body) == content
        assert zlib.decompress(body, 31) == content


# -- 3. each representation its own ETag, 304s and If-Range ----------------------------------

@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_encoded_tag_gets_304_with_vary(server: ServerProcess, root: Path, name: str) -> None:
    """GET with gzip gives the encoded tag; sent back with gzip: 304, no body, the same
    ETag and Vary: Accept-Encoding (cached and streamed variants alike)."""
    first = fetch(server.port, f"/{name}", GZIP_ONLY)
    etag = first.header("etag")
    assert first.status == 200 and etag == encoded_tag(root / name, "gzip")
    again = fetch(server.port, f"/{name}", {**GZIP_ONLY, "If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    assert again.header("etag") == etag
    assert again.header("vary") == "Accept-Encoding"


@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_encoded_tag_does_not_validate_identity(server: ServerProcess, root: Path,
                                                name: str) -> None:
    """The gzip tag sent without Accept-Encoding: the identity representation is another
    one, so 200 with the whole file and its own tag, not a 304."""
    etag = encoded_tag(root / name, "gzip")
    resp = fetch(server.port, f"/{name}", {"If-None-Match": etag})
    assert resp.status == 200 and resp.body == (root / name).read_bytes()
    assert resp.header("content-encoding") is None
    assert resp.header("etag") == identity_tag(root / name)


@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_identity_tag_does_not_validate_encoded(server: ServerProcess, root: Path,
                                                name: str) -> None:
    """The reverse: the identity tag sent with gzip gets 200 with the gzip body."""
    resp = fetch(server.port, f"/{name}", {**GZIP_ONLY, "If-None-Match": identity_tag(
        root / name)})
    assert resp.status == 200 and resp.header("content-encoding") == "gzip"
    assert resp.header("etag") == encoded_tag(root / name, "gzip")
    assert gzip.decompress(resp.body) == (root / name).read_bytes()


@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_identity_variant_and_its_304_carry_vary(server: ServerProcess, root: Path,
                                                 name: str) -> None:
    """Without Accept-Encoding: the file as it is, with Vary: Accept-Encoding (a cache must
    not hand it to a client that takes gzip, nor the reverse); its 304 repeats Vary."""
    resp = fetch(server.port, f"/{name}")
    assert resp.status == 200 and resp.body == (root / name).read_bytes()
    assert resp.header("content-encoding") is None
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.header("etag") == identity_tag(root / name)
    again = fetch(server.port, f"/{name}", {"If-None-Match": identity_tag(root / name)})
    assert again.status == 304 and again.header("vary") == "Accept-Encoding"


def test_if_range_with_the_encoded_tag_ranges_the_encoded_bytes(server: ServerProcess,
                                                                root: Path) -> None:
    """A cached encoded variant: Range with If-Range of its tag is a 206 of the gzip bytes
    (Content-Range out of the encoded length), still with Content-Encoding and Vary."""
    whole = fetch(server.port, "/app.js", GZIP_ONLY)
    etag = whole.header("etag")
    assert etag is not None
    resp = fetch(server.port, "/app.js",
                 {**GZIP_ONLY, "Range": "bytes=100-299", "If-Range": etag})
    assert resp.status == 206 and resp.body == whole.body[100:300]
    assert resp.header("content-range") == f"bytes 100-299/{len(whole.body)}"
    assert resp.header("content-encoding") == "gzip"
    assert resp.header("vary") == "Accept-Encoding" and resp.header("etag") == etag


def test_if_range_with_the_identity_tag_sends_the_encoded_variant_whole(
        server: ServerProcess, root: Path) -> None:
    """If-Range naming the identity tag does not match the gzip variant: 200, all of it."""
    resp = fetch(server.port, "/app.js", {**GZIP_ONLY, "Range": "bytes=100-299",
                                          "If-Range": identity_tag(root / "app.js")})
    assert resp.status == 200 and resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == (root / "app.js").read_bytes()


# -- 4. HEAD has GET's headers ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "accept"), [
    ("app.js", None),  # identity
    ("app.js", "gzip"),  # encoded whole, cached
    ("app.js", "br"),
    ("big.txt", "gzip"),  # encoded as sent
    ("big.txt", "zstd"),
    ("big.txt", None),
])
def test_head_has_the_headers_of_get(server: ServerProcess, name: str,
                                     accept: str | None) -> None:
    """Every header name and value of HEAD is GET's, in the same order (Date aside),
    before and after the variant is cached."""
    if accept:
        need_coding(accept)
    headers = {"Accept-Encoding": accept} if accept else {}
    for _ in range(2):
        get = fetch(server.port, f"/{name}", headers)
        head = fetch(server.port, f"/{name}", headers, method="HEAD")
        assert (get.status, head.status, head.body) == (200, 200, b"")
        assert ([f for f in head.fields if f[0].lower() != "date"]
                == [f for f in get.fields if f[0].lower() != "date"])
        assert ("content-encoding" in get.names()) == bool(accept)


def test_head_of_a_streamed_variant_sends_no_body(server: ServerProcess, root: Path) -> None:
    """HEAD of the chunked variant then GET on one connection: the HEAD's head is followed
    at once by the next response (no chunk, not even the last one, in between)."""
    data = read_until_closed(server.port, (
        b"HEAD /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
        b"GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    status, fields, rest = split_head(data)
    assert status == "HTTP/1.1 200 OK" and fields["transfer-encoding"] == "chunked"
    status, fields, rest = split_head(rest)
    assert status == "HTTP/1.1 200 OK"
    assert rest == (root / "small.txt").read_bytes()


# -- 5. the streamed variant: ranges from identity, HTTP/1.0 close-delimited -----------------

def test_range_of_a_streamed_file_comes_from_the_file(server: ServerProcess,
                                                      root: Path) -> None:
    """GET with gzip and a Range on big.txt: the encoded stream has no offsets, so a 206 of
    the file itself: no Content-Encoding, its identity tag, Vary still."""
    content = (root / "big.txt").read_bytes()
    resp = fetch(server.port, "/big.txt", {**GZIP_ONLY, "Range": "bytes=1000000-1000999"})
    assert resp.status == 206 and resp.body == content[1_000_000:1_001_000]
    assert resp.header("content-range") == f"bytes 1000000-1000999/{len(content)}"
    assert resp.header("content-encoding") is None
    assert resp.header("etag") == identity_tag(root / "big.txt")
    assert resp.header("vary") == "Accept-Encoding"


@pytest.mark.parametrize("extra", ["", "Connection: keep-alive\r\n"])
def test_http10_gets_the_stream_ended_by_close(server: ServerProcess, root: Path,
                                               extra: str) -> None:
    """HTTP/1.0 has no chunks: the encoded stream, unframed, ends when the server closes
    (even when the client asked to keep the connection); it decodes to the file."""
    data = read_until_closed(server.port, (
        f"GET /big.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n{extra}\r\n").encode())
    status, fields, body = split_head(data)
    assert status == "HTTP/1.1 200 OK"
    assert fields["content-encoding"] == "gzip" and fields["connection"] == "close"
    assert "content-length" not in fields and "transfer-encoding" not in fields
    assert gzip.decompress(body) == (root / "big.txt").read_bytes()


# -- 6. what is not encoded ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["app.js", "big.txt"])
def test_request_no_transform_is_not_encoded(server: ServerProcess, root: Path,
                                             name: str) -> None:
    """Cache-Control: no-transform in the request: the file as it is, with Vary (the
    resource still has encoded variants)."""
    resp = fetch(server.port, f"/{name}", {**GZIP_ONLY, "Cache-Control": "no-transform"})
    assert resp.status == 200 and resp.body == (root / name).read_bytes()
    assert resp.header("content-encoding") is None
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.header("content-length") == str(len(resp.body))


@pytest.mark.parametrize("options", [
    ("--header", "Cache-Control: no-transform"),
    ("--cache-control", "max-age=60, no-transform"),
    ("--no-compress",),
])
def test_configured_off_nothing_is_encoded(start_process: Start, root: Path,
                                           options: tuple[str, ...]) -> None:
    """A configured no-transform, or --no-compress: no coding and no Vary, for the file
    encoded whole as for the streamed one."""
    proc = start_process("--compress-cache-bytes", str(CACHE_BYTES), *options, root=root)
    for name in ("app.js", "big.txt"):
        resp = fetch(proc.port, f"/{name}", {"Accept-Encoding": ALL})
        assert resp.status == 200 and resp.body == (root / name).read_bytes(), name
        assert "content-encoding" not in resp.names() and "vary" not in resp.names(), name


def test_no_transform_for_pages_spares_only_pages(start_process: Start, root: Path) -> None:
    """--cache-control-html with no-transform: pages go as they are, scripts are encoded."""
    proc = start_process("--cache-control-html", "no-cache, no-transform", root=root)
    page = fetch(proc.port, "/page.html", GZIP_ONLY)
    assert page.body == (root / "page.html").read_bytes()
    assert "content-encoding" not in page.names()
    assert page.header("cache-control") == "no-cache, no-transform"
    script = fetch(proc.port, "/app.js", GZIP_ONLY)
    assert script.header("content-encoding") == "gzip"


@pytest.mark.parametrize(("name", "encoded"), [("small.txt", False), ("edge.txt", True)])
def test_min_size(server: ServerProcess, root: Path, name: str, encoded: bool) -> None:
    """--compress-min-size (1024): 1023 bytes go as they are, without Vary; 1024 bytes are
    encoded."""
    resp = fetch(server.port, f"/{name}", GZIP_ONLY)
    content = (root / name).read_bytes()
    if encoded:
        assert resp.header("content-encoding") == "gzip"
        assert gzip.decompress(resp.body) == content
    else:
        assert resp.body == content
        assert "content-encoding" not in resp.names() and "vary" not in resp.names()


def test_min_size_option(start_process: Start, root: Path) -> None:
    """--compress-min-size 200000: the 100 KiB script is no longer worth encoding."""
    proc = start_process("--compress-min-size", "200000", root=root)
    resp = fetch(proc.port, "/app.js", GZIP_ONLY)
    assert resp.body == (root / "app.js").read_bytes()
    assert "content-encoding" not in resp.names() and "vary" not in resp.names()


def test_an_image_is_not_encoded(server: ServerProcess, root: Path) -> None:
    """A PNG is compressed already: sent as it is, without Vary."""
    resp = fetch(server.port, "/logo.png", {"Accept-Encoding": ALL})
    assert resp.body == (root / "logo.png").read_bytes()
    assert "content-encoding" not in resp.names() and "vary" not in resp.names()


def test_text_that_would_not_shrink_goes_as_it_is(server: ServerProcess, root: Path) -> None:
    """Random bytes named .txt: gzip would make them larger, so the file is sent (with
    Vary: the type is one that is encoded) and its identity tag."""
    resp = fetch(server.port, "/noise.txt", GZIP_ONLY)
    assert resp.body == (root / "noise.txt").read_bytes()
    assert "content-encoding" not in resp.names()
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.header("etag") == identity_tag(root / "noise.txt")


def test_compress_type_adds_a_type(start_process: Start, root: Path) -> None:
    """application/octet-stream is not encoded by default; --compress-type adds it."""
    plain = start_process(root=root)
    assert "content-encoding" not in fetch(plain.port, "/data.bin", GZIP_ONLY).names()
    more = start_process("--compress-type", "application/octet-stream", root=root)
    resp = fetch(more.port, "/data.bin", GZIP_ONLY)
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == (root / "data.bin").read_bytes()


@pytest.mark.parametrize(("accept", "coding"), [
    ("gzip", "gzip"),
    ("gzip;q=0.5", "gzip"),  # identity is not named, so it does not outrank gzip
    ("gzip, identity", "gzip"),  # a tie with identity: encoded
    ("gzip;q=0.5, identity", None),  # identity ranked higher
    ("*;q=0.5, identity;q=0.6", None),
    ("gzip;q=0", None),
    ("identity", None),
    ("deflate", None),  # not produced here
    ("x-gzip", "gzip"),
    ("gzip, deflate, br, zstd", "br"),  # ties: br, zstd, gzip
    ("gzip, zstd", "zstd"),
    ("br;q=0.5, gzip", "gzip"),
    ("*", "br"),
])
def test_accept_encoding_ranks_identity(server: ServerProcess, root: Path, accept: str,
                                        coding: str | None) -> None:
    """A coding is used when the client ranks it at least as high as identity; among
    codings, the best q, ties br, zstd, gzip."""
    if coding in ("br", "zstd"):
        need_coding(coding)
    resp = fetch(server.port, "/app.js", {"Accept-Encoding": accept})
    assert resp.header("content-encoding") == coding
    content = (root / "app.js").read_bytes()
    assert (decode(coding, resp.body) if coding else resp.body) == content


@pytest.mark.parametrize("extra", [{}, {"Cache-Control": "no-transform"}])
@pytest.mark.parametrize("accept", ["gzip", ALL])
@pytest.mark.parametrize("name", ["style.css", "sheet.css"])
def test_a_precompressed_sibling_wins(server: ServerProcess, root: Path, name: str,
                                      accept: str, extra: dict[str, str]) -> None:
    """NAME.gz beside NAME: its bytes and its own tag ("-gzip", no level), never encoded
    again here (small or large: sheet.css.gz is over a quarter of the budget), even when
    the client would rank br first, and even under no-transform (nothing is transformed:
    the sibling is the server's own file)."""
    sibling = root / f"{name}.gz"
    resp = fetch(server.port, f"/{name}", {"Accept-Encoding": accept, **extra})
    assert resp.header("content-encoding") == "gzip"
    assert resp.body == sibling.read_bytes()
    assert resp.header("content-length") == str(sibling.stat().st_size)
    assert resp.header("etag") == identity_tag(sibling)[:-1] + '-gzip"'
    assert resp.header("vary") == "Accept-Encoding"


# -- 8. counted on the status page and in the stop line --------------------------------------

def encoded_traffic(port: int, root: Path) -> tuple[int, int]:
    """Three encoded GETs (app.js twice, gzip: encoded, then from the cache; big.txt in br
    or gzip, streamed) and requests that encode nothing (HEAD, identity, a 304, a small
    file); (bytes of the files, bytes sent encoded) for the three."""
    js = fetch(port, "/app.js", GZIP_ONLY)
    assert js.header("content-encoding") == "gzip"
    assert fetch(port, "/app.js", GZIP_ONLY).body == js.body
    coding = "br" if installed("br") else "gzip"
    big = fetch(port, "/big.txt", {"Accept-Encoding": coding})
    assert big.header("content-encoding") == coding
    assert fetch(port, "/app.js", GZIP_ONLY, method="HEAD").status == 200
    assert fetch(port, "/app.js").status == 200
    assert fetch(port, "/app.js", {**GZIP_ONLY, "If-None-Match": js.header("etag") or ""}
                 ).status == 304
    assert "content-encoding" not in fetch(port, "/small.txt", GZIP_ONLY).names()
    before = 2 * (root / "app.js").stat().st_size + (root / "big.txt").stat().st_size
    return before, 2 * len(js.body) + len(big.body)


def test_status_page_counts_the_savings(start_process: Start, root: Path) -> None:
    """--status-path ?format=json: compression_responses_total counts the encoded bodies
    sent (not HEAD, not 304, not identity); the bytes before and after are exactly theirs."""
    proc = start_process("--compress-cache-bytes", str(CACHE_BYTES), "--status-path", "/_s",
                         root=root)
    before, after = encoded_traffic(proc.port, root)
    status = fetch(proc.port, "/_s?format=json")
    assert status.status == 200
    compression = compression_summary(json.loads(status.body))
    assert compression["responses"] == 3
    assert (compression["bytes_before"], compression["bytes_after"]) == (before, after)
    assert compression["bytes_saved"] == before - after > 0
    assert compression["saved_ratio"] == round((before - after) / before, 3)


def test_stop_line_reports_the_savings(start_process: Start, root: Path) -> None:
    """SIGTERM: after `stopped after`, one line says what compression saved, of what, and
    in how many encoded responses."""
    proc = start_process("--compress-cache-bytes", str(CACHE_BYTES), root=root)
    before, after = encoded_traffic(proc.port, root)
    assert proc.terminate() == 0, proc.stderr()
    saved = before - after
    line = (f"compression saved {human_size(saved)} of {human_size(before)} "
            f"({100 * saved / before:.0f} %) in 3 encoded responses")
    assert line in proc.stderr(), proc.stderr()


def test_no_stop_line_without_encoded_responses(start_process: Start, root: Path) -> None:
    """Nothing encoded (identity, a PNG, a HEAD): no compression line at all."""
    proc = start_process("--compress-cache-bytes", str(CACHE_BYTES), root=root)
    assert fetch(proc.port, "/app.js").status == 200
    assert fetch(proc.port, "/logo.png", GZIP_ONLY).status == 200
    assert fetch(proc.port, "/big.txt", GZIP_ONLY, method="HEAD").status == 200
    assert proc.terminate() == 0, proc.stderr()
    assert "stopped after" in proc.stderr() and "compression saved" not in proc.stderr()


# -- 9. the whole of www/ ---------------------------------------------------------------------

def www_files() -> list[Path]:
    """Every file of www/ a client may fetch (dotfiles are never served)."""
    return sorted(p for p in WWW.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(WWW).parts))


def test_every_text_asset_of_www_arrives_encoded(start_process: Start) -> None:
    """The bundled site with default options, each file asked for as a browser does: every
    text asset (html, css, js, svg, json, ...) of 1024 bytes or more arrives encoded in the
    best coding (br where installed), or as its precompressed sibling, and decodes to the
    file; smaller ones, one that would not shrink, images, video and the siblings
    themselves arrive as they are.
    Prints the bytes of the text assets before and after."""
    proc = start_process(root=WWW)
    best = next(c for c in ("br", "zstd", "gzip") if installed(c))
    before = after = encoded_here = assets = 0
    site_before = site_after = 0
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
    try:
        for path in www_files():
            url = "/" + quote(path.relative_to(WWW).as_posix())
            conn.request("GET", url, headers={"Accept-Encoding": ALL})
            resp = conn.getresponse()
            body = resp.read()
            content = path.read_bytes()
            coding = resp.getheader("Content-Encoding")
            assert resp.status == 200, url
            site_before += len(content)
            site_after += len(body)
            if path.suffix not in COMPRESSIBLE:
                assert coding is None and body == content, url
                continue
            siblings = [(c, Path(f"{path}{s}")) for c, s in (
                ("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))
                if Path(f"{path}{s}").is_file()]
            if siblings:
                assert (coding, body) == (siblings[0][0], siblings[0][1].read_bytes()), url
            elif len(content) < 1024:
                assert coding is None, url
            elif len(encode(best, content)) >= len(content):
                assert coding is None, url  # favicon.ico holds PNGs: encoding does not pay
            else:
                assert coding == best, url
                encoded_here += 1
            assert (decode(coding, body) if coding else body) == content, url
            assert resp.getheader("Vary") == (
                "Accept-Encoding" if siblings or len(content) >= 1024 else None), url
            assets += 1
            before += len(content)
            after += len(body)
    finally:
        conn.close()
    assert encoded_here >= 5 and after < before  # the pages and the SVG, at least
    print(f"\nwww/ with Accept-Encoding: {ALL} ({best} here): {assets} text assets "
          f"({encoded_here} encoded here, the rest siblings or not worth it): {before} bytes "
          f"-> {after} bytes, {before - after} saved ({100 * (before - after) / before:.1f} %); "
          f"the whole site: {site_before} -> {site_after} bytes")
    assert proc.terminate() == 0
