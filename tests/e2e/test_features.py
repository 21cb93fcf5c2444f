"""End to end: the options users ask for most (issue 6), each against a real server.

SPA fallback, custom headers and CORS, --no-cache, MIME types, error pages by status, and
the status page.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from evserver.site import Site
from tests.conftest import RunningServer, wait_for
from tests.wire import get

Start = Callable[..., RunningServer]


# -- SPA fallback ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/app/settings", "/deep/link/", "/users/42?tab=2"])
def test_spa_unknown_extensionless_paths_get_the_index(
        start_server: Start, site: Path, target: str) -> None:
    """--spa: a client-side route answers 200 with /index.html (logged as requested)."""
    running = start_server(spa=True)
    resp = get(running.port, target)
    assert resp.status == 200 and resp.body == (site / "index.html").read_bytes()
    assert resp.header("content-type") == "text/html; charset=utf-8"
    assert f'"GET {target} HTTP/1.1" 200' in running.log_lines()[0]


def test_spa_keeps_real_files_and_missing_assets(start_server: Start, site: Path) -> None:
    """--spa: existing files are served as they are; a missing file WITH an extension
    (a broken asset link) stays a 404, so errors are not hidden behind the index."""
    running = start_server(spa=True)
    assert get(running.port, "/hello.txt").body == b"hello, world\n"
    assert get(running.port, "/sub/page.html").body == b"<p>page</p>\n"
    assert get(running.port, "/app.missing.js").status == 404


def test_without_spa_unknown_paths_are_404(start_server: Start) -> None:
    assert get(start_server().port, "/app/settings").status == 404


def test_spa_without_an_index_is_a_404_not_a_loop(start_server: Start, tmp_path: Path) -> None:
    """--spa on a root that has no index.html: 404 at once (no endless fallback)."""
    root = tmp_path / "bare"
    root.mkdir()
    (root / "a.txt").write_text("a")
    running = start_server(spa=True, docroot=str(root))
    assert get(running.port, "/route").status == 404
    assert get(running.port, "/a.txt").body == b"a"


# -- headers, CORS, caching -------------------------------------------------------------------

def test_custom_headers_are_on_every_response(start_server: Start) -> None:
    """--header: on 200, 304, 404 and 405 alike."""
    running = start_server(headers=("X-Frame-Options: DENY", "X-Team: lan"))
    ok = get(running.port, "/hello.txt")
    etag = ok.header("etag")
    assert etag is not None
    not_modified = get(running.port, "/hello.txt", f"If-None-Match: {etag}\r\n")
    missing = get(running.port, "/nope")
    post = get(running.port, "/hello.txt", "Content-Length: 0\r\n", method="POST")
    assert [r.status for r in (ok, not_modified, missing, post)] == [200, 304, 404, 405]
    for resp in (ok, not_modified, missing, post):
        assert resp.header("x-frame-options") == "DENY" and resp.header("x-team") == "lan"


def test_cors_any_origin(start_server: Start) -> None:
    """--cors: Access-Control-Allow-Origin: * on responses; a preflight OPTIONS is 204 with
    the allowed methods, the requested headers (tokens only) and a max age."""
    running = start_server(cors="*")
    assert get(running.port, "/hello.txt").header("access-control-allow-origin") == "*"
    pre = get(running.port, "/hello.txt", "Origin: http://other:3000\r\n"
              "Access-Control-Request-Method: GET\r\n"
              "Access-Control-Request-Headers: x-requested-with, range, bad header\r\n",
              method="OPTIONS")
    assert pre.status == 204 and pre.body == b""
    assert pre.header("access-control-allow-origin") == "*"
    assert pre.header("access-control-allow-methods") == "GET, HEAD, OPTIONS"
    assert pre.header("access-control-allow-headers") == "x-requested-with, range"
    assert pre.header("access-control-max-age") == "86400"


def test_cors_one_origin_varies_on_origin(start_server: Start) -> None:
    """--cors ORIGIN: that origin only, and `Vary: Origin` for caches."""
    running = start_server(cors="https://app.example")
    resp = get(running.port, "/hello.txt")
    assert resp.header("access-control-allow-origin") == "https://app.example"
    assert resp.header("vary") == "Origin"


def test_no_cors_no_cors_headers(start_server: Start) -> None:
    """Off by default: no CORS header, and OPTIONS is a plain 204 with Allow."""
    running = start_server()
    assert get(running.port, "/hello.txt").header("access-control-allow-origin") is None
    pre = get(running.port, "/hello.txt",
              "Origin: http://x\r\nAccess-Control-Request-Method: GET\r\n", method="OPTIONS")
    assert pre.status == 204 and pre.header("access-control-allow-methods") is None


def test_no_cache_means_no_store_everywhere(start_server: Start) -> None:
    """--no-cache: Cache-Control: no-store on pages and assets (development)."""
    running = start_server(no_cache=True)
    assert get(running.port, "/").header("cache-control") == "no-store"
    assert get(running.port, "/hello.txt").header("cache-control") == "no-store"
    default = start_server()
    assert get(default.port, "/hello.txt").header("cache-control") == "max-age=600"


# -- MIME types --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, ctype", [
    ("app.mjs", "text/javascript; charset=utf-8"), ("mod.wasm", "application/wasm"),
    ("pic.webp", "image/webp"), ("pic.avif", "image/avif"),
    ("site.webmanifest", "application/manifest+json; charset=utf-8"),
    ("font.woff2", "font/woff2"), ("data.unknownext", "application/octet-stream"),
])
def test_builtin_mime_types_win(start_server: Start, tmp_path: Path, name: str,
                                ctype: str) -> None:
    """Modern types come from the built-in table, whatever /etc/mime.types says."""
    root = tmp_path / "types"
    root.mkdir()
    (root / name).write_bytes(b"x")
    running = start_server(docroot=str(root))
    assert get(running.port, "/" + name).header("content-type") == ctype


def test_mime_type_override(start_server: Start, tmp_path: Path) -> None:
    """--mime-type .ext=type wins over the built-in table."""
    root = tmp_path / "types"
    root.mkdir()
    (root / "notes.log").write_bytes(b"x")
    (root / "app.js").write_bytes(b"x")
    running = start_server(docroot=str(root),
                           mime_types=(".log=text/plain", ".js=application/x-custom"))
    assert get(running.port, "/notes.log").header("content-type") == "text/plain; charset=utf-8"
    assert get(running.port, "/app.js").header("content-type") == "application/x-custom"


# -- error pages -------------------------------------------------------------------------------

def test_error_pages_by_status_from_the_root(start_server: Start, tmp_path: Path) -> None:
    """NNN.html in the root is the body of every NNN response; others get the built-in
    page; 404.html still serves the 404s."""
    root = tmp_path / "errors"
    root.mkdir()
    (root / "405.html").write_text("<h1>no posting here</h1>")
    (root / "404.html").write_text("<h1>lost</h1>")
    (root / "a.txt").write_text("a")
    running = start_server(docroot=str(root))
    post = get(running.port, "/a.txt", "Content-Length: 0\r\n", method="POST")
    assert post.status == 405 and post.body == b"<h1>no posting here</h1>"
    assert int(post.header("content-length") or 0) == len(post.body)
    assert get(running.port, "/nope").body == b"<h1>lost</h1>"
    brew = get(running.port, "/a.txt", method="BREW")
    assert brew.status == 501 and b"501 Not Implemented" in brew.body


# -- the status page ---------------------------------------------------------------------------

def test_status_page_json_counts_requests(start_server: Start) -> None:
    """--status-path: JSON with the metrics' names, counted from the requests really
    answered (tests/e2e/test_metrics.py checks every metric)."""
    running = start_server(status_path="/_status")
    assert get(running.port, "/hello.txt").status == 200
    assert get(running.port, "/hello.txt").status == 200
    assert get(running.port, "/nope").status == 404
    resp = get(running.port, "/_status?json")
    assert resp.status == 200 and resp.header("content-type") == "application/json"
    assert resp.header("cache-control") == "no-store" and resp.header("vary") == "Accept"
    stats = json.loads(resp.body)
    assert stats["http_requests_total"] == [{"method": "GET", "code": "200", "value": 2},
                                            {"method": "GET", "code": "404", "value": 1}]
    assert stats["connections_accepted_total"] == 4
    assert stats["http_response_bytes_total"] >= 2 * len(b"hello, world\n")
    for key in ("process_start_time_seconds", "connections_open", "pool_queue_jobs",
                "file_cache_entries", "history"):
        assert key in stats
    assert stats["file_cache_hits_total"] > 0  # the second /hello.txt came from the cache


def test_status_page_html(start_server: Start) -> None:
    running = start_server(status_path="/_status")
    resp = get(running.port, "/_status")
    assert resp.status == 200 and resp.header("content-type") == "text/html; charset=utf-8"
    assert b"<title>evserver status</title>" in resp.body and b"Connections" in resp.body


def test_status_page_refused_outside_the_allowed_networks(start_server: Start) -> None:
    """Loopback-only by default; here only 10.0.0.0/8 may read it: 127.0.0.1 gets 403."""
    running = start_server(status_path="/_status", status_allow=("10.0.0.0/8",))
    assert get(running.port, "/_status?json").status == 403


def test_status_page_off_by_default(start_server: Start) -> None:
    assert get(start_server().port, "/_status").status == 404


def test_health_path(start_server: Start) -> None:
    """--health-path answers 200 `ok` (GET and HEAD), off by default."""
    running = start_server(health_path="/healthz")
    assert get(running.port, "/healthz").body == b"ok\n"
    assert get(running.port, "/healthz", method="HEAD").status == 200
    assert get(start_server().port, "/healthz").status == 404


def test_a_site_that_cannot_be_read_again_keeps_serving_and_says_why(
        start_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGHUP's rebuild failing for a reason of its own (not a bad auth file, which keeps
    the users and says so itself): the site in use stays, and the error is logged."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("evserver")
    logger.addHandler(handler)

    def broken(self: Site) -> Site:
        raise MemoryError("no room for the pages")

    try:
        monkeypatch.setattr(Site, "reloaded", broken)
        rs = start_server()
        before = rs.server.site
        rs.server.loop.call_soon_threadsafe(rs.server.reload)
        assert wait_for(lambda: any("not read again" in r.getMessage() for r in records))
        assert rs.server.site is before
        assert get(rs.port, "/hello.txt").status == 200
    finally:
        logger.removeHandler(handler)
