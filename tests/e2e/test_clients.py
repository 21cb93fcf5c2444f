"""Real HTTP clients against a real Server: http.client, curl and urllib.

These catch what a strict raw-socket client might tolerate but a real one would not
(and the reverse): connection reuse, HEAD handling, redirects, conditional requests.
"""
from __future__ import annotations

import http.client
import re
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import RunningServer
from tests.tools import need_tool

# -- http.client ------------------------------------------------------------------------------

def test_http_client_reuses_one_connection(server: RunningServer, site: Path) -> None:
    """Several GETs, a HEAD, a 404 and a large file all go over one kept-alive socket."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/hello.txt")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"hello, world\n")
        sock = conn.sock
        assert sock is not None

        conn.request("GET", "/data.json")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b'{"ok": true}\n')
        assert resp.getheader("Content-Type") == "application/json; charset=utf-8"

        conn.request("HEAD", "/index.html")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b""
        assert resp.getheader("Content-Length") == str((site / "index.html").stat().st_size)

        conn.request("GET", "/missing.html")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (404, (site / "404.html").read_bytes())

        conn.request("GET", "/big.bin")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == (site / "big.bin").read_bytes()

        conn.request("GET", "/sub/page.html")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, (site / "sub" / "page.html").read_bytes())
        assert conn.sock is sock, "http.client had to reconnect: keep-alive was not kept"
    finally:
        conn.close()
    lines = server.log_lines()
    assert [line.split('"')[2].split()[0] for line in lines] == [
        "200", "200", "200", "404", "200", "200"]


def test_http_client_conditional_get(server: RunningServer) -> None:
    """http.client sending the ETag back gets a 304 it can read (no body) and goes on."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/hello.txt")
        resp = conn.getresponse()
        resp.read()
        etag = resp.getheader("ETag")
        assert etag
        conn.request("GET", "/hello.txt", headers={"If-None-Match": etag})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (304, b"")
        conn.request("GET", "/hello.txt")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"hello, world\n")
    finally:
        conn.close()


# -- curl -------------------------------------------------------------------------------------

def curl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("curl"), "--noproxy", "*", "--max-time", "8", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def curl_fetch(url: str, out: Path, *extra: str) -> tuple[int, int]:
    """`curl -sS -o OUT -w '%{http_code} %{size_download}'`: (status, bytes downloaded)."""
    result = curl("-sS", "-o", str(out), "-w", "%{http_code} %{size_download}", *extra, url)
    assert result.returncode == 0, result.stderr
    code, size = result.stdout.split()
    return int(code), int(size)


def test_curl_root(server: RunningServer, site: Path, tmp_path: Path) -> None:
    """curl gets `/` as index.html, byte-exact."""
    out = tmp_path / "index"
    status, size = curl_fetch(f"http://127.0.0.1:{server.port}/", out)
    expected = (site / "index.html").read_bytes()
    assert (status, size) == (200, len(expected))
    assert out.read_bytes() == expected


def test_curl_missing_file(server: RunningServer, site: Path, tmp_path: Path) -> None:
    """curl sees the 404 status and the site's custom 404 page."""
    out = tmp_path / "missing"
    status, size = curl_fetch(f"http://127.0.0.1:{server.port}/nope.txt", out)
    expected = (site / "404.html").read_bytes()
    assert (status, size) == (404, len(expected))
    assert out.read_bytes() == expected


def test_curl_big_file(server: RunningServer, site: Path, tmp_path: Path) -> None:
    """curl downloads the large (sendfile) file byte-exact."""
    out = tmp_path / "big"
    status, size = curl_fetch(f"http://127.0.0.1:{server.port}/big.bin", out)
    expected = (site / "big.bin").read_bytes()
    assert (status, size) == (200, len(expected))
    assert out.read_bytes() == expected


def test_curl_head(server: RunningServer, site: Path) -> None:
    """`curl -I` (HEAD) gets the status and headers, with GET's Content-Length, and no body."""
    result = curl("-sS", "-I", f"http://127.0.0.1:{server.port}/hello.txt")
    assert result.returncode == 0, result.stderr
    head = result.stdout
    assert head.startswith("HTTP/1.1 200 ")
    headers = {k.lower(): v for k, v in re.findall(r"^([\w-]+): (.*?)\r?$", head, re.M)}
    assert headers["content-length"] == str((site / "hello.txt").stat().st_size)
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "etag" in headers and "last-modified" in headers
    assert "hello, world" not in head


def test_curl_http10(server: RunningServer, tmp_path: Path) -> None:
    """`curl --http1.0` sends HTTP/1.0, gets the file and a `Connection: close`."""
    out = tmp_path / "hello"
    result = curl("-sS", "-v", "--http1.0", "-o", str(out), "-w", "%{http_code}",
                  f"http://127.0.0.1:{server.port}/hello.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "200"
    assert "> GET /hello.txt HTTP/1.0" in result.stderr
    assert re.search(r"^< Connection: close", result.stderr, re.M | re.I)
    assert out.read_bytes() == b"hello, world\n"


def test_curl_time_condition(server: RunningServer, tmp_path: Path) -> None:
    """`curl -z DATE` (If-Modified-Since) gets 304 at Last-Modified and 200 well before it."""
    url = f"http://127.0.0.1:{server.port}/data.json"
    head = curl("-sS", "-I", url).stdout
    match = re.search(r"^Last-Modified: (.*?)\r?$", head, re.M | re.I)
    assert match, head
    last_modified = match.group(1)
    out = tmp_path / "data"
    assert curl_fetch(url, out, "-z", last_modified) == (304, 0)
    assert curl_fetch(url, out, "-z", "Sat, 01 Jan 2000 00:00:00 GMT") == (200, 13)
    assert out.read_bytes() == b'{"ok": true}\n'


def test_curl_reuses_the_connection(server: RunningServer, tmp_path: Path) -> None:
    """curl fetching several URLs in one run reuses the kept-alive connection."""
    base = f"http://127.0.0.1:{server.port}"
    result = curl("-sS", "-v", "-o", str(tmp_path / "a"), "-o", str(tmp_path / "b"),
                  "-o", str(tmp_path / "c"),
                  f"{base}/hello.txt", f"{base}/data.json", f"{base}/big.bin")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Re-using existing connection") == 2, result.stderr
    assert (tmp_path / "a").read_bytes() == b"hello, world\n"
    assert (tmp_path / "b").read_bytes() == b'{"ok": true}\n'
    lines = server.log_lines()
    assert len(lines) == 3


# -- urllib -----------------------------------------------------------------------------------

def test_urllib_follows_directory_redirect(server: RunningServer, site: Path) -> None:
    """urllib follows the 301 from `/sub` to `/sub/` and gets its index.html."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{server.port}/sub?k=v", timeout=5) as resp:
        assert resp.status == 200
        assert resp.geturl() == f"http://127.0.0.1:{server.port}/sub/?k=v"
        assert resp.read() == (site / "sub" / "index.html").read_bytes()
    lines = server.log_lines()
    assert ['"GET /sub?k=v HTTP/1.1" 301', '"GET /sub/?k=v HTTP/1.1" 200'] == [
        re.search(r'"[^"]*" \d{3}', line).group(0) for line in lines  # type: ignore[union-attr]
    ]
