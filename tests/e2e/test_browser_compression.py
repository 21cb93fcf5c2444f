"""Headless Chromium (Debian's package, through Playwright) against a live evserver serving a
copy of www/, with compression on the fly: what a browser sees of it.

Every text asset of 1 KiB or more travels encoded (the browser's Content-Encoding, and the
access log's body bytes below the size on disk), the pages render pixel for pixel as they do
from a `--no-compress` server, the encoded variants' ETags revalidate to 304, and no page logs
a console error. Screenshots go to the test's tmp folder and to $EVSERVER_ARTIFACTS if set.
"""
from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import CHROMIUM_FLAGS, artifacts, need_chromium

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Page,
        Playwright,
        Response,
        ViewportSize,
    )

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MIN_SIZE = 1024  # --compress-min-size's default: smaller files are not worth encoding
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
FIXED_TIME = "2026-01-02T03:04:05Z"  # the home page's clock shows the time: freeze it
CODINGS = ("br", "zstd", "gzip")
# A variant encoded here ends its tag in -<coding><level>; a precompressed sibling's in
# -<coding>.
ENCODED_TAG = re.compile(r'-(?:br|zstd|gzip)\d*"$')
_LOGGED = re.compile(r'"(GET|HEAD) (\S+) HTTP/1\.[01]" (\d{3}) (\d+) ')
# The types that shrink, named here rather than taken from evserver.codings: the browser's
# view of "a text asset". Images (PNG, JPEG, WebP, AVIF, and the favicon, which holds PNGs)
# and video are already compressed.
_TEXT_TYPES = ("application/javascript", "application/json", "application/xml",
               "image/svg+xml")


def is_text(content_type: str) -> bool:
    base = content_type.partition(";")[0].strip().lower()
    return base.startswith("text/") or base in _TEXT_TYPES or base.endswith(("+json", "+xml"))


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it (tests/tools.py: skip, or fail in CI)."""
    return need_chromium()


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """A copy of the repository's www/, so nothing a server does can touch the original."""
    return Path(shutil.copytree(REPO / "www", tmp_path / "www"))


def on_disk(www: Path, path: str) -> Path:
    """The file a URL path of the site is served from (a folder by its index.html)."""
    file = www / path.lstrip("/")
    return file / "index.html" if path.endswith("/") else file


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int
    body_bytes: int


def logged(proc: ServerProcess) -> list[Logged]:
    """The access log's requests, in order (read it after the server stopped: that flushes)."""
    return [Logged(m[1], urlsplit(m[2]).path, int(m[3]), int(m[4]))
            for m in _LOGGED.finditer(proc.log_path.read_text())]


def launch(p: Playwright, chromium: str) -> Browser:
    return p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)


def new_page(browser: Browser, errors: list[str]) -> tuple[BrowserContext, Page]:
    """A fresh context (empty cache) with a fixed viewport, no motion, a frozen clock, and
    every console error, uncaught exception and failed request collected in `errors`."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="en-US",
                                  timezone_id="UTC", reduced_motion="reduce",
                                  color_scheme="light")
    page = context.new_page()
    page.clock.set_fixed_time(FIXED_TIME)
    page.on("console", lambda m: errors.append(f"{page.url}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: uncaught {e}"))
    # A media download the browser abandons when we navigate on is not a failure.
    page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
            else errors.append(f"{page.url}: request failed: {r.url} {r.failure}"))
    return context, page


def site_pages(page: Page) -> list[str]:
    """The home page, then every page its main navigation links to (same site, in order)."""
    hrefs: list[str] = page.eval_on_selector_all(
        "header nav a[href]", "links => links.map(a => a.getAttribute('href'))")
    pages = ["/"]
    for href in hrefs:
        if href.startswith("/") and href not in pages:
            pages.append(href)
    return pages


def settle(page: Page) -> None:
    """Wait until the page is still: fonts loaded, every image decoded (lazy ones made eager,
    so a full-page screenshot does not start loads of its own), videos past their metadata,
    the gallery's sizes filled in. Then hide the videos' controls, which draw how much of the
    clip is buffered: with preload=metadata Chromium stops buffering at a point of its own
    choosing (anywhere from 0.4 s to 6.5 s of the 30 s clip, from the same server), and the
    clip is sent as it is by both servers (a range of an MP4)."""
    page.evaluate("document.querySelectorAll('img[loading=lazy]')"
                  ".forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function(
        "document.fonts.status === 'loaded'"
        " && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        " && Array.from(document.querySelectorAll('video'))"
        "      .every(v => v.readyState >= 1 || v.error !== null)"
        " && Array.from(document.querySelectorAll('[data-size-of]'))"
        "      .every(s => s.textContent.trim() !== '')", timeout=15_000)
    page.wait_for_load_state("networkidle")
    page.evaluate("document.querySelectorAll('video').forEach(v => { v.controls = false; })")


# -- 1. every text asset arrives encoded ------------------------------------------------------

@dataclass
class Seen:
    """What the browser saw of one response (the first one for its path)."""

    path: str
    status: int
    content_type: str
    coding: str
    vary: str
    etag: str
    accept_encoding: str
    body_size: int  # the encoded bytes Chromium received, as its network layer counts them
    decoded: bytes | None  # the body after Chromium decoded it


def observe(responses: list[Response], seen: dict[str, Seen]) -> None:
    """Record the responses of the page just loaded, while Chromium still has their bodies."""
    for r in responses:
        path = urlsplit(r.url).path
        if path in seen or r.request.method != "GET":
            continue
        headers = r.all_headers()
        try:
            decoded: bytes | None = r.body()
        except Exception:  # a media range Chromium did not keep
            decoded = None
        seen[path] = Seen(path, r.status, headers.get("content-type", ""),
                          headers.get("content-encoding", ""), headers.get("vary", ""),
                          headers.get("etag", ""),
                          r.request.all_headers().get("accept-encoding", ""),
                          r.request.sizes()["responseBodySize"], decoded)
    responses.clear()


# Two ways a variant is made: encoded once and kept in memory (the default), or, for a file
# over a quarter of --compress-cache-bytes, encoded as it is sent, chunked (a 4 KiB budget
# streams every page of the site).
HOW = pytest.mark.parametrize("options", [(), ("--compress-cache-bytes", "4096")],
                              ids=["kept-in-memory", "encoded-as-sent"])


@HOW
def test_every_text_asset_of_the_site_arrives_encoded(
        start_process: Callable[..., ServerProcess], www: Path, chromium: str,
        options: tuple[str, ...]) -> None:
    """The home page and every page of its navigation, with an empty cache: each text asset
    (HTML, CSS, JS, SVG, ...) of at least 1 KiB reaches Chromium with a Content-Encoding it
    offered and Vary: Accept-Encoding, decodes to the file on disk, and has fewer body bytes
    in the access log than the file has on disk (as many as Chromium received; encoded as
    sent, the chunks' framing counts too). Smaller text files and images come as they
    are."""
    proc = start_process(*options, root=www)
    base = f"http://127.0.0.1:{proc.port}"
    errors: list[str] = []
    responses: list[Response] = []
    seen: dict[str, Seen] = {}
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, errors)
        page.on("response", lambda r: responses.append(r))
        page.goto(base + "/", wait_until="networkidle")
        observe(responses, seen)
        pages = site_pages(page)
        for path in pages[1:]:
            page.goto(base + path, wait_until="networkidle")
            observe(responses, seen)
        context.close()
        browser.close()
    assert proc.terminate() == 0
    assert not errors, errors
    assert len(pages) >= 4, pages  # home, gallery, about, tools

    log = logged(proc)
    rows: list[tuple[str, int, str, str]] = []
    encoded: list[str] = []
    for path, s in sorted(seen.items()):
        if s.status != 200:
            continue  # the video's 206 ranges: identity by design, and not text
        size = on_disk(www, path).stat().st_size
        sent = [e.body_bytes for e in log if (e.method, e.path, e.status) == ("GET", path, 200)]
        assert sent, (path, "not in the access log")
        rows.append((path, size, ",".join(map(str, sorted(set(sent)))), s.coding or "identity"))
        if s.decoded is not None:
            assert s.decoded == on_disk(www, path).read_bytes(), (path, "decodes to other bytes")
        if is_text(s.content_type) and size >= MIN_SIZE:
            encoded.append(path)
            assert s.decoded is not None, (path, "Chromium kept no body")
            offered = [c.strip() for c in s.accept_encoding.split(",")]
            assert s.coding in CODINGS and s.coding in offered, (path, s.coding, offered)
            assert "accept-encoding" in s.vary.lower(), (path, s.vary)
            assert ENCODED_TAG.search(s.etag), (path, s.etag)
            assert all(n < size for n in sent), (path, size, sent)
            assert s.body_size in sent, (path, "Chromium received", s.body_size, sent)
        else:
            # Below 1 KiB, or an image or video: sent as it is on disk.
            assert s.coding == "", (path, s.content_type, size, s.coding)
            assert all(n == size for n in sent), (path, size, sent)
    # The favicon is fetched by the browser itself, outside the page's events: in the table
    # from the log only. It is an image (exempt), and it holds PNGs, so encoding it does not
    # pay: kept in memory it goes as it is; encoded as sent it may grow by a few bytes, since
    # that path cannot know beforehand.
    for e in log:
        if e.method == "GET" and e.status == 200 and e.path not in seen:
            size = on_disk(www, e.path).stat().st_size
            rows.append((e.path, size, str(e.body_bytes), "(the browser's own request)"))
    for page_path in pages:
        assert page_path in encoded, (page_path, "HTML of 1 KiB or more not encoded", encoded)
    assert {"/css/style.css", "/js/app.js", "/img/gallery/architecture.svg"} <= set(encoded)

    width = max(len(r[0]) for r in rows)
    print(f"\nevserver {' '.join(options) or '(defaults)'}; Accept-Encoding sent by "
          f"Chromium: {seen['/'].accept_encoding}")
    print(f"{'path':<{width}}  {'on disk':>8}  {'logged':>8}  coding")
    for path, size, sent_text, coding in rows:
        print(f"{path:<{width}}  {size:>8}  {sent_text:>8}  {coding}")


# -- 2. the same pixels with and without compression -----------------------------------------

_PIXEL_DIFF = """async ([a, b]) => {
  const load = src => new Promise((ok, bad) => {
    const img = new Image();
    img.onload = () => ok(img);
    img.onerror = () => bad(new Error('cannot decode a screenshot'));
    img.src = src;
  });
  const pixels = img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const [x, y] = await Promise.all([load(a), load(b)]);
  if (x.naturalWidth !== y.naturalWidth || x.naturalHeight !== y.naturalHeight) return -1;
  const p = pixels(x), q = pixels(y);
  let differing = 0;
  for (let k = 0; k < p.length; k += 4) {
    if (p[k] !== q[k] || p[k + 1] !== q[k + 1] || p[k + 2] !== q[k + 2]
        || p[k + 3] !== q[k + 3]) differing++;
  }
  return differing;
}"""


def pixels_differing(page: Page, a: bytes, b: bytes) -> int:
    """How many pixels two PNGs differ in (decoded by Chromium); -1 if their sizes differ."""
    urls = ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in (a, b)]
    result = page.evaluate(_PIXEL_DIFF, urls)
    assert isinstance(result, int)
    return result


def render(browser: Browser, base: str, path: str,
           errors: list[str]) -> tuple[bytes, dict[str, str], str]:
    """A full-page screenshot of `path` once it is still; the gallery's size captions (read,
    then replaced by one placeholder) and the page's own Content-Encoding."""
    context, page = new_page(browser, errors)
    response = page.goto(base + path, wait_until="networkidle")
    assert response is not None and response.status == 200, (path, response)
    settle(page)
    # The gallery shows each image's Content-Length from a HEAD request: with compression
    # on, an SVG's is its encoded length, as it should be. The captions are compared apart.
    sizes: dict[str, str] = page.eval_on_selector_all(
        "[data-size-of]", "spans => Object.fromEntries(spans.map(s => "
        "[s.getAttribute('data-size-of'), s.textContent.trim()]))")
    page.eval_on_selector_all("[data-size-of]",
                              "spans => spans.forEach(s => { s.textContent = 'n KiB'; })")
    # The pages show their own address (port included), which differs between the servers.
    page.eval_on_selector_all("[data-origin]",
                              "els => els.forEach(e => { e.textContent = 'http://host:port'; })")
    png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    coding = response.all_headers().get("content-encoding", "")
    context.close()
    return png, sizes, coding


@pytest.mark.timeout(180)
def test_pages_render_the_same_with_and_without_compression(
        start_process: Callable[..., ServerProcess], www: Path, tmp_path: Path,
        chromium: str) -> None:
    """Each page of the site, screenshotted whole in a 1280x800 viewport from a server that
    encodes and from one started with --no-compress: no pixel differs. The gallery's captions,
    which show each image's Content-Length, differ only for the SVG, smaller when encoded."""
    compressing = start_process(root=www)
    plain = start_process("--no-compress", root=www)
    folders = artifacts(tmp_path)
    errors: list[str] = []
    results: dict[str, tuple[int, bool]] = {}
    captions: dict[str, tuple[str, str]] = {}
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, errors)
        page.goto(f"http://127.0.0.1:{compressing.port}/", wait_until="networkidle")
        pages = site_pages(page)
        context.close()
        shots: dict[str, tuple[bytes, bytes]] = {}
        for path in pages:
            encoded, encoded_sizes, encoded_coding = render(
                browser, f"http://127.0.0.1:{compressing.port}", path, errors)
            identity, identity_sizes, identity_coding = render(
                browser, f"http://127.0.0.1:{plain.port}", path, errors)
            # The comparison means something: one page travelled encoded, the other not.
            assert encoded_coding in CODINGS and identity_coding == "", (
                path, encoded_coding, identity_coding)
            name = path.strip("/") or "home"
            for folder in folders:
                (folder / f"{name}-compressed.png").write_bytes(encoded)
                (folder / f"{name}-no-compress.png").write_bytes(identity)
            shots[path] = encoded, identity
            if encoded_sizes or identity_sizes:
                assert encoded_sizes.keys() == identity_sizes.keys()
                for src, caption in encoded_sizes.items():
                    captions[src] = caption, identity_sizes[src]
                    if src.endswith(".svg"):
                        assert float(caption.split()[0]) < float(
                            identity_sizes[src].split()[0]), (src, caption, identity_sizes)
                    else:
                        assert caption == identity_sizes[src], (src, caption, identity_sizes)
        # Compare in a blank page of its own (decoding PNGs in a canvas, no network).
        context, page = new_page(browser, errors)
        for path, (encoded, identity) in shots.items():
            results[path] = pixels_differing(page, encoded, identity), encoded == identity
        # The comparison can tell pages apart: the home page against itself minus its logo.
        home, _ = shots["/"]
        other_context, other = new_page(browser, errors)
        other.goto(f"http://127.0.0.1:{plain.port}/", wait_until="networkidle")
        settle(other)
        other.add_style_tag(content=".brand img { visibility: hidden; }")
        without_logo = other.screenshot(full_page=True, animations="disabled", caret="hide")
        other_context.close()
        assert pixels_differing(page, home, without_logo) > 0
        context.close()
        browser.close()
    assert compressing.terminate() == 0 and plain.terminate() == 0
    assert not errors, errors
    print("\npage        pixels differing  same PNG bytes")
    for path, (diff, same) in results.items():
        print(f"{path:<10}  {diff:>16}  {same}")
    print(f"gallery captions: {captions}")
    assert set(results) == set(pages) and len(pages) >= 4, (results, pages)
    assert all(diff == 0 for diff, _ in results.values()), results


# -- 3. the encoded ETags revalidate ---------------------------------------------------------

@HOW
def test_a_reload_revalidates_each_page_with_its_encoded_etag(
        start_process: Callable[..., ServerProcess], www: Path, chromium: str,
        options: tuple[str, ...]) -> None:
    """Each page of the site (HTML, served no-cache and encoded here), loaded then reloaded:
    the first response's ETag has the coding suffix (-br5, -gzip6, ...), the reload sends it
    back in If-None-Match, the server answers 304 (a 200 would be the answer if the tag did
    not match, whatever If-Modified-Since says), and the page renders from the cache: its
    heading visible, its stylesheet applied, its script run."""
    proc = start_process(*options, root=www)
    base = f"http://127.0.0.1:{proc.port}"
    errors: list[str] = []
    tags: dict[str, tuple[str, str]] = {}
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, errors)
        first = page.goto(base + "/", wait_until="networkidle")
        pages = site_pages(page)
        for path in pages:
            if path != "/":
                first = page.goto(base + path, wait_until="networkidle")
            assert first is not None and first.status == 200
            etag = first.all_headers().get("etag", "")
            again = page.reload(wait_until="networkidle")
            assert again is not None
            tags[path] = etag, again.request.all_headers().get("if-none-match", "")
            assert page.locator("main h1").is_visible(), path
            assert page.evaluate(
                "getComputedStyle(document.querySelector('.skip-link')).position") == "absolute"
            assert page.evaluate("document.getElementById('theme-toggle').hidden") is False
            if path == "/":
                assert page.inner_text("#clock") not in ("", "\u2026")  # app.js ran
        context.close()
        browser.close()
    assert proc.terminate() == 0
    assert not errors, errors
    for path, (etag, if_none_match) in tags.items():
        assert re.search(r'-(?:br|zstd|gzip)\d+"$', etag), (path, etag)
        assert if_none_match == etag, (path, etag, if_none_match)
    log = logged(proc)
    for path in pages:
        statuses = [e.status for e in log if (e.method, e.path) == ("GET", path)]
        assert statuses == [200, 304], (path, statuses)


def test_encoded_subresources_revalidate_with_their_etags(
        start_process: Callable[..., ServerProcess], www: Path, chromium: str) -> None:
    """Sub-resources kept in Chromium's cache and fetched again with `cache: 'no-cache'`:
    the SVG encoded here (tag -br5, or the coding Chromium preferred) and the stylesheet's
    precompressed sibling (tag -gzip) are revalidated with their own tags and get 304; the
    page's script sees each as a 200 with the cached body, decoded to the file's size."""
    proc = start_process(root=www)
    base = f"http://127.0.0.1:{proc.port}"
    errors: list[str] = []
    firsts: dict[str, str] = {}
    revalidations: dict[str, tuple[str, list[int]]] = {}
    assets = {"/img/gallery/architecture.svg": r'-(?:br|zstd|gzip)\d+"$',
              "/css/style.css": r'-gzip"$'}
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, errors)

        def first_tag(r: Response) -> None:
            firsts.setdefault(urlsplit(r.url).path, r.headers.get("etag", ""))

        page.on("response", first_tag)
        page.goto(base + "/about/", wait_until="networkidle")  # has the SVG and the CSS
        for path in assets:
            with page.expect_request(base + path) as request_info:
                status_and_size = page.evaluate(
                    "async url => { const r = await fetch(url, {cache: 'no-cache'});"
                    " return [r.status, (await r.arrayBuffer()).byteLength]; }", path)
            revalidations[path] = (
                request_info.value.all_headers().get("if-none-match", ""), status_and_size)
        context.close()
        browser.close()
    assert proc.terminate() == 0
    assert not errors, errors
    log = logged(proc)
    for path, pattern in assets.items():
        assert re.search(pattern, firsts[path]), (path, firsts[path])
        size = on_disk(www, path).stat().st_size
        assert revalidations[path] == (firsts[path], [200, size]), (path, revalidations[path])
        statuses = [e.status for e in log if (e.method, e.path) == ("GET", path)]
        assert statuses == [200, 304], (path, statuses)
