"""Video over byte ranges: a real browser seeks in www/media/clip.mp4, a raw client checks bytes.

A server without Range support still lets a browser play a video from the start, but
`video.seekable` stays empty and a seek lands back at 0; with ranges the browser fetches the
part it needs and the access log shows 206s. The browser test is skipped without Chromium
or Playwright, and failed instead when CI is set (tests/tools.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, RunningServer, ServerProcess
from tests.tools import CHROMIUM_FLAGS, need_chromium
from tests.wire import get

CLIP = REPO / "www" / "media" / "clip.mp4"
CLIP_URL = "/media/clip.mp4"
SEEK_TO = 6.5  # seconds; the clip is 9 s long with a keyframe every second


# Resolves on `seeked`, or after 10 s with whatever state the element reached, so a server
# that breaks seeking fails an assertion instead of hanging the page.
_SEEK_JS = """async (to) => {
  const v = document.querySelector('video');
  const fired = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 10000);
    v.addEventListener('seeked', () => { clearTimeout(timer); resolve(true); }, {once: true});
    v.currentTime = to;
  });
  return {
    fired,
    currentTime: v.currentTime,
    duration: v.duration,
    seekableRanges: v.seekable.length,
    seekableEnd: v.seekable.length ? v.seekable.end(v.seekable.length - 1) : 0,
    readyState: v.readyState,
    error: v.error ? v.error.code : 0,
  };
}"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_browser_seeks_into_the_clip(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Chromium loads the about page's video, seeks to 6.5 s and lands there; the whole
    clip is seekable, and the clip was fetched with 206 Partial Content responses."""
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright
    proc = start_process(root=REPO / "www")
    base = f"http://127.0.0.1:{proc.port}"
    clip_statuses: list[int] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("response", lambda r: clip_statuses.append(r.status)
                if r.url == base + CLIP_URL else None)
        response = page.goto(base + "/about/", wait_until="load")
        assert response is not None and response.status == 200
        assert page.locator("video").count() == 1, page.content()[:2000]
        page.wait_for_function("document.querySelector('video').readyState >= 1",
                               timeout=15000)
        result = page.evaluate(_SEEK_JS, SEEK_TO)
        page.screenshot(path=str(tmp_path / "about-video.png"))
        browser.close()
    assert result["error"] == 0, result
    assert result["fired"], f"no 'seeked' event within 10 s: {result}"
    assert result["currentTime"] == pytest.approx(SEEK_TO, abs=0.1), result
    assert result["duration"] > 5, result
    assert result["seekableRanges"] == 1, result
    assert result["seekableEnd"] == pytest.approx(result["duration"], abs=0.1), result
    assert result["readyState"] >= 2, result  # the frame at 6.5 s is decoded
    # Chromium's HTTP cache answers a range request from a cached 200 with a 206 of its
    # own, so the browser's statuses prove nothing: the server's access log does.
    assert clip_statuses, "the page never fetched the clip"
    assert proc.terminate() == 0
    clip_lines = [line for line in proc.log_path.read_text().splitlines()
                  if f'"GET {CLIP_URL} HTTP/1.1"' in line]
    assert any(re.search(r'HTTP/1\.1" 206 \d+ ', line) for line in clip_lines), (
        clip_lines, clip_statuses)


@pytest.mark.parametrize("cache_max_entry", [256 * 1024, 1], ids=["in-memory", "sendfile"])
@pytest.mark.parametrize(("spec", "first", "last"), [
    pytest.param("1000-1999", 1000, 1999, id="1000-1999"),
    pytest.param("0-", 0, None, id="0-"),  # what a browser sends first for a media element
    pytest.param("200000-", 200000, None, id="200000-"),  # a seek near the end: open-ended
    pytest.param("-34", -34, None, id="suffix-34"),  # the last 34 bytes
])
def test_clip_byte_range(start_server: Callable[..., RunningServer], cache_max_entry: int,
                         spec: str, first: int, last: int | None) -> None:
    """`Range: bytes=...` on the clip gives 206 with exactly those bytes of the file and a
    matching Content-Range, whether the clip is served from memory or with sendfile."""
    data = CLIP.read_bytes()
    size = len(data)
    start = first if first >= 0 else size + first
    end = size - 1 if last is None else last
    server = start_server(docroot=str(REPO / "www"), cache_max_entry=cache_max_entry)
    resp = get(server.port, CLIP_URL, headers=f"Range: bytes={spec}\r\n")
    assert resp.status == 206, (resp.status, resp.headers)
    assert resp.header("content-range") == f"bytes {start}-{end}/{size}"
    assert resp.header("content-length") == str(end - start + 1)
    assert resp.header("content-type") == "video/mp4"
    assert resp.body == data[start:end + 1]
    lines = server.log_lines()
    assert f'"GET {CLIP_URL} HTTP/1.1" 206 {end - start + 1} ' in lines[-1], lines
