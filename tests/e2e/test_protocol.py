"""HTTP/1.1 on the wire: a real Server in a thread, spoken to through raw sockets.

Every response is checked byte-exact against the files of the `site` fixture, and every
error path checks both the status and what happens to the connection afterwards.
"""
from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.wire import Reader, Response, connect, exchange, get, read_all, request

StartServer = Callable[..., RunningServer]

IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d\d:\d\d:\d\d GMT")
OUTSIDE_CONTENT = b"root:x:0:0"


def head_lines(resp: Response) -> list[str]:
    return resp.head[:-4].decode("latin-1").split("\r\n")


def header_names(resp: Response) -> list[str]:
    return [line.partition(":")[0].lower() for line in head_lines(resp)[1:]]


def fetch_meta(port: int, path: str) -> Response:
    resp = get(port, path)
    assert resp.status == 200
    return resp


# -- plain GETs, byte-exact, and their headers -----------------------------------------------

@pytest.mark.parametrize("path, name, ctype", [
    ("/hello.txt", "hello.txt", "text/plain; charset=utf-8"),
    ("/index.html", "index.html", "text/html; charset=utf-8"),
    ("/data.json", "data.json", "application/json; charset=utf-8"),
    ("/medium.bin", "medium.bin", "application/octet-stream"),
])
def test_get_file_byte_exact_with_headers(server: RunningServer, site: Path, path: str,
                                          name: str, ctype: str) -> None:
    """GET returns the file's exact bytes with type, length, validators, Date and Server."""
    expected = (site / name).read_bytes()
    resp = get(server.port, path)
    assert resp.status == 200
    assert resp.body == expected
    assert resp.header("content-type") == ctype
    assert resp.header("content-length") == str(len(expected))
    assert resp.header("server")
    date = resp.header("date")
    assert date is not None and IMF_FIXDATE.fullmatch(date), date
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 60
    last_modified = resp.header("last-modified")
    assert last_modified is not None and IMF_FIXDATE.fullmatch(last_modified)
    assert parsedate_to_datetime(last_modified).timestamp() == int((site / name).stat().st_mtime)
    etag = resp.header("etag")
    assert etag is not None and not etag.startswith("W/")
    assert re.fullmatch(r'"[^"]+"', etag), etag


def test_root_serves_index_html(server: RunningServer, site: Path) -> None:
    """`/` is the root's index.html."""
    resp = get(server.port, "/")
    assert (resp.status, resp.body) == (200, (site / "index.html").read_bytes())
    assert resp.header("content-type") == "text/html; charset=utf-8"


def test_keepalive_response_has_no_connection_header(server: RunningServer) -> None:
    """A 1.1 keep-alive response needs no `Connection` header (persistence is the default)."""
    resp = exchange(server.port, request("/hello.txt"))[0]
    assert resp.status == 200
    assert "connection" not in header_names(resp)


def test_etag_is_stable_across_requests(server: RunningServer) -> None:
    """The same unchanged file keeps the same strong ETag (loaded, then from the cache)."""
    first = fetch_meta(server.port, "/data.json")
    second = fetch_meta(server.port, "/data.json")
    assert first.header("etag") == second.header("etag")
    assert first.header("last-modified") == second.header("last-modified")


# -- HEAD -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/hello.txt", "/big.bin", "/missing.txt"])
def test_head_has_get_headers_and_no_body(server: RunningServer, path: str) -> None:
    """HEAD sends exactly GET's headers (Date aside) and no body: the next response on the
    connection parses right after the head."""
    data = request(path) + request(path, method="HEAD") + request("/hello.txt")
    with connect(server.port) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        get_resp = reader.read_response()
        head_resp = reader.read_response(head_only=True)
        after = reader.read_response()
    assert head_resp.status == get_resp.status
    strip = {"date"}
    assert ({k: v for k, v in head_resp.headers.items() if k not in strip}
            == {k: v for k, v in get_resp.headers.items() if k not in strip})
    assert head_resp.body == b""
    assert (after.status, after.body) == (200, b"hello, world\n")


# -- 404s, dotfiles, traversal, symlinks ------------------------------------------------------

def test_missing_file_gets_custom_404(server: RunningServer, site: Path) -> None:
    """A missing file is 404 with the site's own 404.html as the body."""
    resp = get(server.port, "/no/such/file.txt")
    assert resp.status == 404
    assert resp.body == (site / "404.html").read_bytes()
    assert resp.header("content-length") == str(len(resp.body))
    assert (resp.header("content-type") or "").startswith("text/html")


def test_404_keeps_the_connection(server: RunningServer) -> None:
    """A 404 does not lose framing, so the connection stays usable."""
    resps = exchange(server.port, request("/missing") + request("/hello.txt"), count=2)
    assert [r.status for r in resps] == [404, 200]
    assert resps[1].body == b"hello, world\n"


@pytest.mark.parametrize("path", ["/.secret", "/%2esecret", "/sub/../.secret"])
def test_dotfiles_are_hidden(server: RunningServer, path: str) -> None:
    """Dotfiles are 404 and their content never leaks."""
    resp = get(server.port, path)
    assert resp.status == 404
    assert b"dotfile" not in resp.body


@pytest.mark.parametrize("path", ["/../", "/%2e%2e/", "/..%2f..%2f", "/%2e%2e%2fetc%2fpasswd",
                                  "/../../../../etc/passwd", "/sub/../../escape",
                                  "/%2E%2E/%2E%2E/etc/passwd"])
def test_traversal_is_refused(server: RunningServer, path: str) -> None:
    """A target that climbs above the root is 400, and nothing outside is ever sent."""
    raw = read_all(server.port, request(path, close=True))
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:80]
    assert OUTSIDE_CONTENT not in raw
    assert b"root:" not in raw


def test_dotdot_inside_the_root_is_normalized(server: RunningServer) -> None:
    """`/sub/../hello.txt` stays inside the root and names /hello.txt."""
    resp = get(server.port, "/sub/../hello.txt")
    assert (resp.status, resp.body) == (200, b"hello, world\n")


def test_symlink_escaping_the_root_is_404(server: RunningServer) -> None:
    """A symlink that points outside the root is not followed."""
    raw = read_all(server.port, request("/escape", close=True))
    assert raw.startswith(b"HTTP/1.1 404 "), raw[:80]
    assert OUTSIDE_CONTENT not in raw


def test_symlink_inside_the_root_is_served(server: RunningServer) -> None:
    """A symlink to a file inside the root is served like the file."""
    resp = get(server.port, "/inside-link.txt")
    assert (resp.status, resp.body) == (200, b"hello, world\n")


# -- directories, queries, encoded names ------------------------------------------------------

@pytest.mark.parametrize("target, location", [
    ("/sub", "/sub/"),
    ("/sub?x=1&y=2", "/sub/?x=1&y=2"),
    ("//sub", "/sub/"),
])
def test_directory_without_slash_redirects(server: RunningServer, target: str,
                                           location: str) -> None:
    """A directory without its slash is 301 to the slashed path; the query is kept and the
    Location is never protocol-relative."""
    resp = get(server.port, target)
    assert resp.status == 301
    assert resp.header("location") == location


def test_directory_with_slash_serves_index(server: RunningServer, site: Path) -> None:
    """`/sub/` serves sub/index.html."""
    resp = get(server.port, "/sub/")
    assert (resp.status, resp.body) == (200, (site / "sub" / "index.html").read_bytes())


def test_query_is_ignored(server: RunningServer, site: Path) -> None:
    """The query string does not change which file is served."""
    resp = get(server.port, "/sub/page.html?x=1")
    assert (resp.status, resp.body) == (200, (site / "sub" / "page.html").read_bytes())


def test_percent_encoded_name(server: RunningServer) -> None:
    """`%20` is decoded once: `/space%20name.txt` is the file `space name.txt`."""
    resp = get(server.port, "/space%20name.txt")
    assert (resp.status, resp.body) == (200, b"spaced\n")


# -- conditional requests ---------------------------------------------------------------------

def _fmt_dates(ts: int) -> dict[str, str]:
    t = time.gmtime(ts)
    return {
        "imf": time.strftime("%a, %d %b %Y %H:%M:%S GMT", t),
        "rfc850": time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t),
        "asctime": (time.strftime("%a %b ", t) + f"{t.tm_mday:2d}"
                    + time.strftime(" %H:%M:%S %Y", t)),
    }


def _last_modified(port: int, path: str = "/hello.txt") -> int:
    value = fetch_meta(port, path).header("last-modified")
    assert value is not None
    return int(parsedate_to_datetime(value).timestamp())


@pytest.mark.parametrize("fmt", ["imf", "rfc850", "asctime"])
def test_if_modified_since_equal_is_304_in_every_date_format(server: RunningServer,
                                                             fmt: str) -> None:
    """If-Modified-Since equal to Last-Modified is 304, in all three RFC 9110 date formats."""
    date = _fmt_dates(_last_modified(server.port))[fmt]
    resp = get(server.port, "/hello.txt", f"If-Modified-Since: {date}\r\n")
    assert resp.status == 304, date
    assert resp.body == b""


@pytest.mark.parametrize("offset, status", [(3600, 304), (-3600, 200), (-1, 200)])
def test_if_modified_since_later_and_earlier(start_server: Callable[..., RunningServer],
                                             tmp_path: Path, offset: int, status: int) -> None:
    """A later (but past) date is 304; an earlier one, even by a second, is a full 200."""
    (tmp_path / "old.txt").write_text("old\n")
    mtime = int(time.time()) - 86400
    os.utime(tmp_path / "old.txt", (mtime, mtime))
    srv = start_server(docroot=str(tmp_path))
    date = _fmt_dates(mtime + offset)["imf"]
    resp = get(srv.port, "/old.txt", f"If-Modified-Since: {date}\r\n")
    assert resp.status == status
    if status == 200:
        assert resp.body == b"old\n"


def test_if_modified_since_in_the_future_is_ignored(server: RunningServer) -> None:
    """RFC 9110 §13.1.3: a date later than the server's clock is invalid, so 200."""
    date = _fmt_dates(int(time.time()) + 86400)["imf"]
    resp = get(server.port, "/hello.txt", f"If-Modified-Since: {date}\r\n")
    assert resp.status == 200 and resp.body == b"hello, world\n"


@pytest.mark.parametrize("value", ["garbage", "", "Sun, 32 Foo 2020 99:99:99 GMT",
                                   "2020-01-01T00:00:00Z"])
def test_unparsable_if_modified_since_is_ignored(server: RunningServer, value: str) -> None:
    """An If-Modified-Since that is not a date is ignored: 200 with the body."""
    resp = get(server.port, "/hello.txt", f"If-Modified-Since: {value}\r\n")
    assert (resp.status, resp.body) == (200, b"hello, world\n")


def test_if_none_match_304_has_validators_and_no_body(server: RunningServer) -> None:
    """If-None-Match with the ETag is 304 with ETag and Last-Modified, without a
    Content-Length or body (the next response parses straight after)."""
    meta = fetch_meta(server.port, "/hello.txt")
    etag = meta.header("etag")
    data = request("/hello.txt", headers=f"If-None-Match: {etag}\r\n") + request("/data.json")
    with connect(server.port) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        not_modified = reader.read_response()
        after = reader.read_response()
    assert not_modified.status == 304
    assert not_modified.header("etag") == etag
    assert not_modified.header("last-modified") == meta.header("last-modified")
    assert "content-length" not in not_modified.headers
    assert not_modified.body == b""
    assert (after.status, after.body) == (200, b'{"ok": true}\n')


@pytest.mark.parametrize("inm", ["*", '"nope", {etag}', "W/{etag}"])
def test_if_none_match_star_lists_and_weak(server: RunningServer, inm: str) -> None:
    """`*`, a list holding the tag, and the weak form of the tag all match (weak comparison)."""
    etag = fetch_meta(server.port, "/hello.txt").header("etag")
    resp = get(server.port, "/hello.txt", f"If-None-Match: {inm.format(etag=etag)}\r\n")
    assert resp.status == 304


def test_if_none_match_mismatch_beats_matching_ims(server: RunningServer) -> None:
    """If-None-Match that does not match wins over a matching If-Modified-Since: 200."""
    meta = fetch_meta(server.port, "/hello.txt")
    resp = get(server.port, "/hello.txt",
               f'If-None-Match: "other"\r\nIf-Modified-Since: {meta.header("last-modified")}\r\n')
    assert (resp.status, resp.body) == (200, b"hello, world\n")


def test_conditional_on_large_file(server: RunningServer) -> None:
    """A 304 for a streamed (uncached) file sends no body either, and the connection goes on."""
    etag = fetch_meta(server.port, "/big.bin").header("etag")
    data = request("/big.bin", headers=f"If-None-Match: {etag}\r\n") + request("/hello.txt")
    resps = exchange(server.port, data, count=2)
    assert [r.status for r in resps] == [304, 200]
    assert resps[1].body == b"hello, world\n"


# -- methods ----------------------------------------------------------------------------------

def test_disallowed_methods_are_405_and_keep_the_connection(server: RunningServer) -> None:
    """POST/PUT/DELETE/PATCH are 405 with Allow; the connection stays usable."""
    methods = ["POST", "PUT", "DELETE", "PATCH"]
    data = b"".join(request("/hello.txt", method=m) for m in methods)
    data += (request("/hello.txt", method="POST", headers="Content-Length: 5\r\n", body=b"abcde")
             + request("/hello.txt"))
    resps = exchange(server.port, data, count=len(methods) + 2)
    for resp in resps[:-1]:
        assert resp.status == 405
        assert resp.header("allow") == "GET, HEAD, OPTIONS"
    assert (resps[-1].status, resps[-1].body) == (200, b"hello, world\n")


def test_options_is_204_with_allow_and_no_body(server: RunningServer) -> None:
    """OPTIONS is 204 with Allow and nothing after the head."""
    with connect(server.port) as sock:
        sock.sendall(request("*", method="OPTIONS") + request("/hello.txt", method="OPTIONS")
                     + request("/hello.txt"))
        reader = Reader(sock)
        first, second, after = (reader.read_response() for _ in range(3))
    for resp in (first, second):
        assert resp.status == 204
        assert resp.header("allow") == "GET, HEAD, OPTIONS"
        assert resp.body == b""
        assert resp.header("content-length") in (None, "0")
    assert (after.status, after.body) == (200, b"hello, world\n")


def test_unknown_method_is_501(server: RunningServer) -> None:
    """A well-formed but unknown method is 501 Not Implemented."""
    data = request("/hello.txt", method="BREW") + request("/hello.txt")
    resp = exchange(server.port, data, count=1)[0]
    assert resp.status == 501


def test_method_is_case_sensitive(server: RunningServer) -> None:
    """Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET."""
    resp = get(server.port, "/hello.txt", method="get")
    assert resp.status in (405, 501)


# -- malformed requests -----------------------------------------------------------------------
#
# The parser's verdict on each malformed input is tested whole, byte by byte and with
# trailing bytes in tests/unit/test_http11.py and test_parser_properties.py. Here, one or
# two cases of each kind (400, 413, 414, 431, 501, 505; header syntax, framing, limits set in
# the configuration, junk) prove the verdict reaches the wire and the connection closes.

def _error_then_close(port: int, data: bytes) -> Response:
    with connect(port) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.header("connection") == "close"
        assert reader.at_eof(), "the server kept the connection after a framing error"
    return resp


def test_http2_over_text_is_505_and_closes(server: RunningServer) -> None:
    """`HTTP/2.0` on a text connection is 505 and the connection closes."""
    data = request("/", version="HTTP/2.0", host="test") + request("/")
    resp = _error_then_close(server.port, data)
    assert resp.status == 505


def test_missing_host_in_11_is_400_and_closes(server: RunningServer) -> None:
    """HTTP/1.1 without Host is 400, then close."""
    resp = _error_then_close(server.port, request("/hello.txt", host=None) + request("/hello.txt"))
    assert resp.status == 400


def test_http10_without_host_is_served(server: RunningServer) -> None:
    """HTTP/1.0 needs no Host."""
    raw = read_all(server.port, request("/hello.txt", version="HTTP/1.0"))
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"\r\n\r\nhello, world\n")


def test_malformed_header_is_400_and_closes(server: RunningServer) -> None:
    """Obsolete line folding (one malformed field line of many: unit tests): 400, close."""
    data = request("/hello.txt", headers="X-Folded: a\r\n b\r\n") + request("/hello.txt")
    resp = _error_then_close(server.port, data)
    assert resp.status == 400


def test_too_many_headers_is_431(start_server: StartServer) -> None:
    """More header lines than max_headers is 431, then close."""
    srv = start_server(max_headers=10)
    ok = "".join(f"X-H{i}: v\r\n" for i in range(9))  # + Host = 10
    assert exchange(srv.port, request("/hello.txt", headers=ok))[0].status == 200
    many = "".join(f"X-H{i}: v\r\n" for i in range(10))
    resp = _error_then_close(srv.port, request("/hello.txt", headers=many))
    assert resp.status == 431


def test_head_over_max_head_is_431(start_server: StartServer) -> None:
    """A head larger than max_head is 431, complete or not, then close."""
    srv = start_server(max_head=1024, max_request_line=512)
    resp = _error_then_close(srv.port, request("/hello.txt", headers=f"X-Big: {'a' * 1100}\r\n"))
    assert resp.status == 431
    # Never finished: the parser must not wait for a blank line that will not come in time.
    resp = _error_then_close(srv.port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2000)
    assert resp.status == 431


def test_request_line_over_limit_is_414(start_server: StartServer) -> None:
    """A request line longer than max_request_line is 414, then close."""
    srv = start_server(max_head=1024, max_request_line=512)
    assert exchange(srv.port, request("/hello.txt?" + "q" * 400))[0].status == 200
    resp = _error_then_close(srv.port, request("/hello.txt?" + "q" * 600))
    assert resp.status == 414
    resp = _error_then_close(srv.port, b"GET /" + b"q" * 700)  # no line end yet
    assert resp.status == 414


def test_te_and_cl_together_is_400_and_closes(server: RunningServer) -> None:
    """Transfer-Encoding with Content-Length (a smuggling shape) is 400 and closes."""
    data = request("/hello.txt", headers="Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")
    resp = _error_then_close(server.port, data + b"0\r\n\r\n" + request("/escape"))
    assert resp.status == 400


def test_get_with_length_body_then_pipelined_get(server: RunningServer) -> None:
    """A GET's Content-Length body is discarded, and the pipelined request after it parses."""
    body = b"GET /escape HTTP/1.1\r\n\r\n"  # looks like a request, but is body bytes
    data = (request("/hello.txt", headers=f"Content-Length: {len(body)}\r\n") + body
            + request("/data.json"))
    resps = exchange(server.port, data, count=2)
    assert [(r.status, r.body) for r in resps] == [(200, b"hello, world\n"),
                                                   (200, b'{"ok": true}\n')]


def test_get_with_chunked_body_then_pipelined_get(server: RunningServer) -> None:
    """A chunked GET body (with an extension and a trailer) is discarded; the next parses."""
    chunked = b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
    data = (request("/hello.txt", headers="Transfer-Encoding: chunked\r\n") + chunked
            + request("/data.json"))
    resps = exchange(server.port, data, count=2)
    assert [(r.status, r.body) for r in resps] == [(200, b"hello, world\n"),
                                                   (200, b'{"ok": true}\n')]


# -- persistence ------------------------------------------------------------------------------

def test_http11_keeps_the_connection(server: RunningServer) -> None:
    """HTTP/1.1: three requests answered in turn on one socket, which stays open."""
    with connect(server.port) as sock:
        reader = Reader(sock)
        for path, body in [("/hello.txt", b"hello, world\n"), ("/data.json", b'{"ok": true}\n'),
                           ("/hello.txt", b"hello, world\n")]:
            sock.sendall(request(path))
            resp = reader.read_response()
            assert (resp.status, resp.body) == (200, body)
        assert not reader.at_eof(timeout=0.2)


def test_connection_close_is_honoured(server: RunningServer) -> None:
    """`Connection: close`: the response says so and the server closes; later bytes are ignored."""
    with connect(server.port) as sock:
        sock.sendall(request("/hello.txt", close=True) + request("/data.json"))
        reader = Reader(sock)
        resp = reader.read_response()
        assert (resp.status, resp.body) == (200, b"hello, world\n")
        assert resp.header("connection") == "close"
        assert reader.at_eof()


def test_http10_closes_by_default(server: RunningServer) -> None:
    """HTTP/1.0 without keep-alive: `Connection: close`, then the server closes."""
    with connect(server.port) as sock:
        sock.sendall(request("/hello.txt", version="HTTP/1.0", host="test"))
        reader = Reader(sock)
        resp = reader.read_response()
        assert (resp.status, resp.body) == (200, b"hello, world\n")
        assert resp.header("connection") == "close"
        assert reader.at_eof()


def test_http10_keepalive_is_kept_and_confirmed(server: RunningServer) -> None:
    """HTTP/1.0 with `Connection: keep-alive` is kept and told `Connection: keep-alive`."""
    with connect(server.port) as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(request("/hello.txt", version="HTTP/1.0", host="test",
                                 headers="Connection: keep-alive\r\n"))
            resp = reader.read_response()
            assert (resp.status, resp.body) == (200, b"hello, world\n")
            assert resp.header("connection") == "keep-alive"
        assert not reader.at_eof(timeout=0.2)


# -- pipelining -------------------------------------------------------------------------------

def _mixed_pipeline(port: int, site: Path) -> tuple[bytes, list[tuple[int, bytes, bool]]]:
    """20 requests (GET, HEAD, 404, 304) and what each response must be."""
    etag = fetch_meta(port, "/data.json").header("etag")
    hello = (site / "hello.txt").read_bytes()
    index = (site / "index.html").read_bytes()
    page = (site / "sub" / "page.html").read_bytes()
    not_found = (site / "404.html").read_bytes()
    kinds: list[tuple[bytes, tuple[int, bytes, bool]]] = [
        (request("/hello.txt"), (200, hello, False)),
        (request("/hello.txt", method="HEAD"), (200, b"", True)),
        (request("/nope"), (404, not_found, False)),
        (request("/data.json", headers=f"If-None-Match: {etag}\r\n"), (304, b"", False)),
        (request("/"), (200, index, False)),
        (request("/sub/page.html"), (200, page, False)),
        (request("/index.html", method="HEAD"), (200, b"", True)),
    ]
    data = b""
    expected = []
    for i in range(20):
        one, outcome = kinds[(i * 3) % len(kinds)]
        data += one
        expected.append(outcome)
    return data, expected


def _check_pipeline(sock: socket.socket, expected: list[tuple[int, bytes, bool]]) -> None:
    reader = Reader(sock)
    for i, (status, body, head_only) in enumerate(expected):
        resp = reader.read_response(head_only=head_only)
        assert (resp.status, resp.body) == (status, body), f"response {i}"
    assert not reader.at_eof(timeout=0.2)


def test_pipelining_twenty_in_one_send(server: RunningServer, site: Path) -> None:
    """20 mixed requests in one `sendall` are answered in order, each exact."""
    data, expected = _mixed_pipeline(server.port, site)
    with connect(server.port) as sock:
        sock.sendall(data)
        _check_pipeline(sock, expected)


def test_pipelining_one_byte_at_a_time(server: RunningServer, site: Path) -> None:
    """The same 20 requests trickled one byte per send are still answered in order."""
    data, expected = _mixed_pipeline(server.port, site)
    with connect(server.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.send(data[i:i + 1])
        _check_pipeline(sock, expected)


def test_access_log_has_one_line_per_request(server: RunningServer, site: Path) -> None:
    """Each pipelined request gets one access-log line with its request line and status."""
    data, expected = _mixed_pipeline(server.port, site)
    with connect(server.port) as sock:
        sock.sendall(data)
        _check_pipeline(sock, expected)
    lines = server.log_lines()
    # The first line is _mixed_pipeline's own GET for the ETag.
    pattern = re.compile(r'127\.0\.0\.1 - - \[[^\]]+\] "([^"]*)" (\d{3}) (\d+) "[^"]*" "[^"]*" '
                         r"\d+\.\d{3}")
    parsed = [pattern.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert len(lines) == 1 + len(expected)
    statuses = [int(m.group(2)) for m in parsed[1:] if m]
    assert statuses == [status for status, _, _ in expected]
    sizes = [int(m.group(3)) for m in parsed[1:] if m]
    assert sizes == [len(body) for _, body, _ in expected]
    assert parsed[1] and parsed[1].group(1) == "GET /hello.txt HTTP/1.1"


# -- large files (sendfile) -------------------------------------------------------------------

def test_big_file_is_byte_exact(server: RunningServer, site: Path) -> None:
    """A file larger than the cache entry limit is streamed and arrives byte-exact."""
    expected = (site / "big.bin").read_bytes()
    resp = get(server.port, "/big.bin")
    assert resp.status == 200
    assert resp.header("content-length") == str(len(expected))
    assert resp.body == expected


def test_big_file_twice_then_pipelined_small(server: RunningServer, site: Path) -> None:
    """Two big responses and a small one pipelined on one keep-alive connection."""
    expected = (site / "big.bin").read_bytes()
    data = request("/big.bin") + request("/big.bin") + request("/hello.txt")
    with connect(server.port, timeout=10) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        for _ in range(2):
            resp = reader.read_response()
            assert resp.status == 200
            assert len(resp.body) == len(expected)
            assert resp.body == expected
        small = reader.read_response()
        assert (small.status, small.body) == (200, b"hello, world\n")


def test_big_file_with_small_sendfile_chunks(start_server: StartServer, site: Path) -> None:
    """Many sendfile rounds (64 KiB each) still give the exact file and a usable connection."""
    srv = start_server(sendfile_chunk=64 * 1024)
    expected = (site / "big.bin").read_bytes()
    resps = exchange(srv.port, request("/big.bin") + request("/data.json"), count=2, timeout=10)
    assert resps[0].body == expected
    assert resps[1].body == b'{"ok": true}\n'


# -- timeouts ---------------------------------------------------------------------------------

def test_stalled_head_gets_408_then_close(start_server: StartServer) -> None:
    """A head left unfinished is answered 408 and closed within header_timeout."""
    srv = start_server(header_timeout=0.3)
    with connect(srv.port) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: te")
        reader = Reader(sock)
        resp = reader.read_response()
        elapsed = time.monotonic() - start
        assert resp.status == 408
        assert resp.header("connection") == "close"
        assert reader.at_eof()
    assert 0.25 <= elapsed < 1.5, elapsed


def test_trickled_head_is_not_extended(start_server: StartServer) -> None:
    """Slowloris: a byte every 0.1 s does not push the header deadline back; 408 comes at
    header_timeout from the first byte."""
    srv = start_server(header_timeout=0.3)
    got = b""
    with connect(srv.port) as sock:
        sock.settimeout(0.1)  # each recv below doubles as the pause between bytes
        start = time.monotonic()
        for byte in b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30:
            try:
                sock.send(bytes([byte]))
                got += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if got:
                break
        elapsed = time.monotonic() - start
    assert got.startswith(b"HTTP/1.1 408 "), got[:60]
    assert elapsed < 1.0, elapsed


def test_idle_keepalive_is_closed_silently(start_server: StartServer) -> None:
    """After keepalive_timeout with no new request, the server closes and sends nothing."""
    srv = start_server(keepalive_timeout=0.3)
    with connect(srv.port) as sock:
        sock.sendall(request("/hello.txt"))
        reader = Reader(sock)
        assert reader.read_response().status == 200
        start = time.monotonic()
        assert reader.at_eof(timeout=2.0)  # at_eof also checks that no bytes came
        elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 1.5, elapsed


# -- header injection -------------------------------------------------------------------------

def _assert_no_injection(raw: bytes) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 ")
    for line in lines[1:]:
        assert not line.lower().startswith(b"set-cookie"), raw[:300]
        assert b"\r" not in line and b"\n" not in line


@pytest.mark.parametrize("target", [
    "/%0d%0aSet-Cookie:%20x",
    "/%0D%0ASet-Cookie:%20x/",
    "/sub?%0d%0aSet-Cookie:%20x",
    "/sub%0d%0aSet-Cookie:%20x",
    "/%0aSet-Cookie:%20x",
    "/hello.txt%00%0d%0aSet-Cookie:%20x",
])
def test_encoded_crlf_never_injects_a_header(server: RunningServer, target: str) -> None:
    """Percent-encoded CR/LF in the target never becomes a header of the response."""
    raw = read_all(server.port, request(target, close=True))
    _assert_no_injection(raw)


def test_crlf_in_directory_name_redirect_is_encoded(start_server: StartServer,
                                                    tmp_path: Path) -> None:
    """The 301 Location for a directory whose name holds CR LF stays percent-encoded."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a\r\nSet-Cookie: x").mkdir()
    srv = start_server(docroot=str(root))
    resp = get(srv.port, "/a%0d%0aSet-Cookie:%20x?q=1")
    assert resp.status == 301
    assert resp.header("location") == "/a%0D%0ASet-Cookie%3A%20x/?q=1"
    _assert_no_injection(resp.head)


def test_raw_control_bytes_in_target_are_400(server: RunningServer) -> None:
    """Raw control bytes in the request target (a CR here; each of them: unit tests) are
    refused before any lookup."""
    raw = read_all(server.port, request(b"/a\rb", host="t"))
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:60]


# -- more framing and persistence edges -------------------------------------------------------

def test_absolute_form_target(server: RunningServer) -> None:
    """An absolute-form target (RFC 9112 §3.2.2) names the path after the authority."""
    resp = get(server.port, "http://test/hello.txt")
    assert (resp.status, resp.body) == (200, b"hello, world\n")


@pytest.mark.parametrize("headers, status", [
    ("Transfer-Encoding: gzip, chunked\r\n", 501),
    ("Content-Length: 99999999999\r\n", 413),  # over the configured max_body
])
def test_framing_errors_close(server: RunningServer, headers: str, status: int) -> None:
    """A coding we cannot undo, an oversize body: the status, then close."""
    data = request("/hello.txt", headers=headers) + request("/hello.txt")
    resp = _error_then_close(server.port, data)
    assert resp.status == status


def test_tls_client_hello_is_refused(server: RunningServer) -> None:
    """Binary junk such as a TLS ClientHello is 400 and closed, never waited on."""
    resp = _error_then_close(server.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert resp.status == 400


def test_error_after_good_pipelined_request(server: RunningServer) -> None:
    """A good request answered in full, then the malformed one after it gets 400 and close."""
    with connect(server.port) as sock:
        sock.sendall(request("/hello.txt") + b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n"
                     + request("/"))
        reader = Reader(sock)
        first = reader.read_response()
        second = reader.read_response()
        assert (first.status, first.body) == (200, b"hello, world\n")
        assert second.status == 400
        assert reader.at_eof()


def test_half_close_after_pipelined_requests(server: RunningServer, site: Path) -> None:
    """A client that sends its requests and then shuts its write side gets every answer."""
    with connect(server.port) as sock:
        sock.sendall(request("/hello.txt") + request("/big.bin") + request("/data.json"))
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        resps = [reader.read_response() for _ in range(3)]
        assert reader.at_eof()
    assert [r.status for r in resps] == [200, 200, 200]
    assert resps[1].body == (site / "big.bin").read_bytes()
    assert resps[2].body == b'{"ok": true}\n'


def test_max_keepalive_requests(start_server: StartServer) -> None:
    """After max_keepalive_requests the last response says close and the server closes."""
    srv = start_server(max_keepalive_requests=3)
    with connect(srv.port) as sock:
        sock.sendall(request("/hello.txt") * 4)
        reader = Reader(sock)
        resps = [reader.read_response() for _ in range(3)]
        assert reader.at_eof()
    assert [r.status for r in resps] == [200, 200, 200]
    assert [r.header("connection") for r in resps] == [None, None, "close"]


def test_accepted_sockets_get_nodelay_and_the_capped_send_buffer(
        start_server: Callable[..., RunningServer]) -> None:
    """TCP_NODELAY and SO_SNDBUF are set once on the listener and every accepted socket
    has them (Linux inherits both), so no connection costs two more system calls."""
    running = start_server(send_buffer=96 * 1024)
    with connect(running.port) as sock:
        sock.sendall(request("/hello.txt", host="x"))
        assert Reader(sock).read_response().status == 200
        (conn,) = running.server.connections  # read-only look from the test thread
        accepted = conn._sock
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        # The kernel doubles the value it is given (socket(7)); autotuning would exceed it.
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 96 * 1024
