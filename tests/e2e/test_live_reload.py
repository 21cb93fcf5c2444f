"""--live-reload end to end: real server processes, headless Chromium (Debian's package,
through Playwright), curl and raw sockets, all on 127.0.0.1.

1. A page of a copy of www/: a rewritten stylesheet is swapped in without a navigation, a
   rewritten page reloads with its new text, each within 1 s of the write (both timings
   printed).
2. Twenty pages (one browser, a context each) all reload once after one write.
3. A burst of a hundred writes is one event, and one reload per page.
4. The stream itself, read by curl and by raw sockets: its first lines, an event naming the
   path, nothing for dotfiles, `Last-Event-ID` replays (and another process's id reloads),
   and SIGTERM ending every stream with its last chunk, promptly, each one logged.
5. Protocol basics still hold with the flag: every test of test_protocol.py runs again here
   against a server started with live_reload (its `start_server` fixture overridden below),
   plus checks of the injected page itself on a process started with `--live-reload`.
6. Without the flag nothing changes: pages are the files, tags and Cache-Control are the
   defaults, and /.evserver/live is a 404; with it, other files are the same bytes.
7. A restart: the open page's EventSource reconnects to the new process and reloads.

Four faults found while writing these are pinned by their own tests: a stale precompressed
sibling served for a changed stylesheet, the file cache serving a changed file for up to
--cache-ttl after the change event, six open tabs of the site in one browser holding all of
its connections (the tabs now share one stream), and error pages sent without the script.
"""
from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from evserver.live import RETRY_MS, SCRIPT
from tests.conftest import REPO, RunningServer, ServerProcess, wait_for
from tests.e2e import test_protocol
from tests.tools import CHROMIUM_FLAGS, need_chromium, need_tool
from tests.wire import Reader, Response, connect, dechunk, exchange, get, parse_head, request

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request

StartProcess = Callable[..., ServerProcess]

LIVE = "/.evserver/live"
STATUS = "/_status"
INJECTED = SCRIPT % LIVE.encode()
LOGGED = re.compile(r'"(GET|HEAD) (\S+) HTTP/1\.[01]" (\d{3}) (\d+) ')
# 1 s: the bound the feature is meant for (a burst is quiet after 0.1 s, then one event).
STYLE_BOUND = 1.0
RELOAD_BOUND = 1.0

# No favicon to fetch (a data: URL): the browser's own request for one, made whenever it
# likes, would fail while test 7's server restarts.
PAGE = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}"
        "</title><link rel=\"icon\" href=\"data:,\">"
        "<link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body>\n"
        "<h1 id=\"title\">{title}</h1>\n</body>\n</html>\n")


def page_html(title: str) -> str:
    return PAGE.format(title=title)


def small_site(root: Path) -> Path:
    """A site of its own for one server: pages with a body end, a stylesheet, a fragment
    without one, a text file that mentions </body>, a page large enough to be encoded."""
    root.mkdir(parents=True)
    (root / "index.html").write_text(page_html("home"))
    (root / "other.html").write_text(page_html("other"))
    (root / "style.css").write_text("h1 { color: rgb(0, 0, 0); }\n")
    (root / "notes.txt").write_text("notes, with a </body> that is not HTML\n")
    (root / "fragment.html").write_text("<p>a fragment, with no end of body</p>\n")
    (root / "long.html").write_text(PAGE.format(title="long").replace(
        "</h1>", "</h1>\n" + "<p>a paragraph long enough to be worth encoding.</p>\n" * 60))
    (root / "sub").mkdir()
    (root / "sub" / "page.html").write_text(page_html("sub page"))
    return root


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """A copy of the repository's www/, so nothing a test writes can touch the original."""
    return Path(shutil.copytree(REPO / "www", tmp_path / "www"))


@pytest.fixture
def own_site(tmp_path: Path) -> Path:
    """A small site of the test's own (conftest's `site` is shared by a session, and
    test_protocol's tests, run again here, use that one)."""
    return small_site(tmp_path / "site")


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it (tests/tools.py: skip, or fail in CI)."""
    return need_chromium()


def live(start_process: StartProcess, root: Path, *extra: str) -> ServerProcess:
    """`python -m evserver --live-reload` on `root`, with a status page that counts the open
    streams; inotify must be in use (polling would take a second per change)."""
    proc = start_process("--live-reload", "--status-path", STATUS, *extra, root=root)
    assert "polling it instead" not in proc.stderr(), proc.stderr()
    return proc


def listening(port: int) -> int:
    """How many pages the server counts as listening (its status page)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", STATUS + "?json")
        snapshot = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    count = snapshot["live_reload_pages"]
    assert isinstance(count, int)
    return count


def wait_listening(port: int, count: int, timeout: float = 10.0) -> None:
    assert wait_for(lambda: listening(port) == count, timeout, 0.05), (listening(port), count)


def logged(proc: ServerProcess) -> list[tuple[str, str, int, int]]:
    """The access log's (method, target, status, body bytes), after the server stopped."""
    return [(m[1], m[2], int(m[3]), int(m[4]))
            for m in LOGGED.finditer(proc.log_path.read_text())]


# -- a page's stream, read with a raw socket ------------------------------------------------

def unchunk(body: bytes) -> tuple[bytes, bool]:
    """The content of the complete chunks at the start of `body` (more may be on the way),
    and whether the last chunk has come."""
    content: list[bytes] = []
    while True:
        line, crlf, rest = body.partition(b"\r\n")
        if not crlf:
            return b"".join(content), False
        assert line and not line.strip(b"0123456789abcdef"), line[:40]
        size = int(line, 16)
        if size == 0:
            return b"".join(content), rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            return b"".join(content), False
        assert rest[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
        content.append(rest[:size])
        body = rest[size + 2:]


def sse_blocks(content: bytes) -> list[dict[str, str]]:
    """The complete blocks of a text/event-stream (each ends in a blank line), as fields;
    a comment counts as the field ':'."""
    blocks = []
    for text in content.decode().split("\n\n")[:-1]:
        fields: dict[str, str] = {}
        for line in text.split("\n"):
            name, _, value = line.partition(":")
            fields[name or ":"] = value.removeprefix(" ")
        blocks.append(fields)
    return blocks


class EventStream:
    """GET /.evserver/live on a raw socket; the head, then whatever comes, read on demand."""

    def __init__(self, port: int, *, last_event_id: str | None = None,
                 version: str = "HTTP/1.1") -> None:
        headers = "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
        if last_event_id is not None:
            headers += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock = connect(port)
        self.sock.sendall(request(LIVE, version=version, headers=headers))
        self.chunked = version == "HTTP/1.1"
        self.data = b""
        self.eof = False
        assert self.wait(lambda: b"\r\n\r\n" in self.data, 5), self.data
        head, _, _ = self.data.partition(b"\r\n\r\n")
        self.head: Response = parse_head(head + b"\r\n\r\n")

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]

    def content(self) -> tuple[bytes, bool]:
        """The stream's content so far, and whether it has ended (last chunk, or EOF)."""
        if not self.chunked:
            return self.body, self.eof
        return unchunk(self.body)

    def blocks(self) -> list[dict[str, str]]:
        return sse_blocks(self.content()[0])

    def events(self) -> list[dict[str, str]]:
        return [b for b in self.blocks() if b.get("event") == "change"]

    def _read(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        except ConnectionResetError:
            data = b""
        self.data += data
        self.eof = not data

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Read until `done()` holds, EOF, or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done() and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._read(left)
        return done()

    def read_to_eof(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())

    def wait_events(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        self.wait(lambda: len(self.events()) >= count, timeout)
        return self.events()

    def close(self) -> None:
        self.sock.close()


def paths(event: dict[str, str]) -> list[str]:
    data = json.loads(event["data"])
    assert isinstance(data, dict) and isinstance(data["paths"], list)
    return [str(p) for p in data["paths"]]


# -- the browser side -----------------------------------------------------------------------

# Runs at the start of every document: a load counter that survives reloads (sessionStorage
# is per tab), and the time the document's DOM was ready.
COUNT_LOADS = """(() => {
  const loads = Number(sessionStorage.getItem('evserver-test-loads') || 0) + 1;
  sessionStorage.setItem('evserver-test-loads', String(loads));
  window.__loads = loads;
  document.addEventListener('DOMContentLoaded', () => { window.__readyAt = Date.now(); });
})();"""

# Polls a computed style every 2 ms; records the wall time (ms) and the new value once it
# differs from what it was when the watch began.
WATCH_STYLE = """([selector, property]) => {
  const element = document.querySelector(selector);
  const before = getComputedStyle(element)[property];
  window.__styleChanged = null;
  const poll = () => {
    const now = getComputedStyle(element)[property];
    if (now !== before) { window.__styleChanged = [Date.now(), now]; return; }
    setTimeout(poll, 2);
  };
  poll();
  return before;
}"""

# When the current document's DOM was ready and first painted (wall time, ms), how it was
# navigated to, and how many loads this tab has counted.
DOCUMENT = """() => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation');
  return {readyAt: window.__readyAt ?? null,
          paintedAt: paint ? performance.timeOrigin + paint.startTime : null,
          navigations: nav.length, type: nav.length ? nav[0].type : null,
          loads: window.__loads, marker: window.__marker ?? null};
}"""


@dataclass
class Tab:
    """A page in a context of its own (a connection pool of its own), with its main-frame
    navigations and load events counted as Playwright reports them."""

    context: BrowserContext
    page: Page
    errors: list[str]
    navigations: int = 0
    loads: int = 0
    live_requests: list[Request] = field(default_factory=list)  # its streams' requests

    def document(self) -> dict[str, Any]:
        info = self.page.evaluate(DOCUMENT)
        assert isinstance(info, dict)
        return info


def launch(p: Playwright, chromium: str) -> Browser:
    return p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)


def open_tab(browser: Browser, url: str, errors: list[str],
             context: BrowserContext | None = None) -> Tab:
    """`url` in a new page (in a new context unless one is given), loaded."""
    if context is None:
        context = browser.new_context(viewport={"width": 1000, "height": 700},
                                      color_scheme="light", reduced_motion="reduce")
        context.add_init_script(COUNT_LOADS)
    page = context.new_page()
    tab = Tab(context, page, errors)

    def navigated(frame: object) -> None:
        if frame is page.main_frame:
            tab.navigations += 1

    def loaded(_: object) -> None:
        tab.loads += 1

    page.on("framenavigated", navigated)
    page.on("load", loaded)
    page.on("request", lambda r: tab.live_requests.append(r)
            if r.url.partition("?")[0].endswith(LIVE) else None)
    page.on("console", lambda m: errors.append(
        f"{page.url}: console {m.type}: {m.text} ({m.location.get('url')})")
        if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: uncaught {e}"))
    # A reload aborts the old document's stream and media: not a failure.
    page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
            else errors.append(f"{page.url}: request failed: {r.url} {r.failure}"))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, (url, response)
    return tab


def pump_until(page: Page, done: Callable[[], bool], timeout: float) -> bool:
    """Wait (letting Playwright deliver its events) until `done()` holds or `timeout` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        page.wait_for_timeout(20)
    return True


# -- 1. a stylesheet swapped in place, then the page reloaded -------------------------------

OLD_RULE = "h1, h2, h3 { line-height: 1.2; }"
NEW_RULE = "h1, h2, h3 { line-height: 1.2; color: rgb(200, 30, 40); }"
OLD_HEADING = "<h1>About evserver</h1>"
NEW_HEADING = "<h1>About evserver, edited live</h1>"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_stylesheet_is_swapped_in_place_then_the_page_reloads(
        start_process: StartProcess, www: Path, chromium: str) -> None:
    """/about/ of a copy of www/ in headless Chromium. The stylesheet rewritten (the
    headings' colour): the computed colour changes within 1 s of the write, with no
    navigation (a marker set on the window stays, Playwright saw one navigation, the
    document's navigation entry is still the first load, the load counter is 1) and the
    <link> replaced by one with ?evserver-reload=. Then the page rewritten: it reloads (a
    second navigation, of type 'reload', the marker gone) and shows the new heading within
    1 s of the write, still in the new colour. Both delays are printed.
"""
    css, html = www / "css" / "style.css", www / "about" / "index.html"
    css_text, html_text = css.read_text(), html.read_text()
    assert OLD_RULE in css_text and OLD_HEADING in html_text
    proc = live(start_process, www)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tab = open_tab(browser, f"http://127.0.0.1:{proc.port}/about/", errors)
        wait_listening(proc.port, 1)
        tab.page.evaluate("window.__marker = 'set before the write'")
        before = tab.page.evaluate(WATCH_STYLE, ["main h1", "color"])
        assert before != "rgb(200, 30, 40)"

        css.write_text(css_text.replace(OLD_RULE, NEW_RULE))
        css_written = time.time()
        tab.page.wait_for_function("window.__styleChanged !== null", timeout=5000)
        changed_at, after = tab.page.evaluate("window.__styleChanged")
        style_delay = changed_at / 1000 - css_written
        doc = tab.document()
        links = tab.page.eval_on_selector_all('link[rel~="stylesheet"]',
                                              "links => links.map(l => l.href)")
        assert after == "rgb(200, 30, 40)", after
        assert doc["marker"] == "set before the write", doc
        assert (doc["type"], doc["navigations"], doc["loads"]) == ("navigate", 1, 1), doc
        assert (tab.navigations, tab.loads) == (1, 1)
        assert len(links) == 1 and "/css/style.css?evserver-reload=" in links[0], links

        html.write_text(html_text.replace(OLD_HEADING, NEW_HEADING))
        html_written = time.time()
        tab.page.locator("main h1", has_text="edited live").wait_for(timeout=5000)
        tab.page.wait_for_load_state("load")
        seen = time.time()
        doc = tab.document()
        painted = doc["paintedAt"] or doc["readyAt"]
        reload_delay = painted / 1000 - html_written
        assert doc["marker"] is None, doc
        assert (doc["type"], doc["loads"]) == ("reload", 2), doc
        assert (tab.navigations, tab.loads) == (2, 2)
        assert tab.page.evaluate(
            "getComputedStyle(document.querySelector('main h1')).color") == "rgb(200, 30, 40)"
        wait_listening(proc.port, 1)  # the reloaded page listens again
        tab.context.close()
        browser.close()
    assert proc.terminate() == 0
    assert not errors, errors
    print(f"\nwrite -> style changed (no navigation): {style_delay * 1000:.0f} ms; "
          f"write -> new text painted after the reload: {reload_delay * 1000:.0f} ms "
          f"(DOM ready {(doc['readyAt'] / 1000 - html_written) * 1000:.0f} ms, seen by the "
          f"test {(seen - html_written) * 1000:.0f} ms)")
    assert 0 < style_delay <= STYLE_BOUND, style_delay
    assert 0 < reload_delay <= RELOAD_BOUND, reload_delay




@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_stylesheet_with_a_precompressed_sibling_is_swapped_too(
        start_process: StartProcess, www: Path, chromium: str) -> None:
    """As test 1, on the copy of www/ as it is (with css/style.css.gz): the rewritten
    stylesheet's new colour shows within 3 s."""
    css = www / "css" / "style.css"
    proc = live(start_process, www)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tab = open_tab(browser, f"http://127.0.0.1:{proc.port}/about/", errors)
        wait_listening(proc.port, 1)
        tab.page.evaluate(WATCH_STYLE, ["main h1", "color"])
        css.write_text(css.read_text().replace(OLD_RULE, NEW_RULE))
        changed = pump_until(tab.page, lambda: tab.page.evaluate(
            "window.__styleChanged !== null") is True, 3.0)
        swapped = tab.page.eval_on_selector_all('link[rel~="stylesheet"]',
                                                "links => links.map(l => l.href)")
        browser.close()
    assert proc.terminate() == 0
    assert any("evserver-reload=" in href for href in swapped), swapped  # it was announced
    assert changed, "the new colour did not show within 3 s"




@pytest.mark.timeout(60)
def test_a_page_fetched_after_its_change_event_is_the_new_one(
        start_process: StartProcess, own_site: Path) -> None:
    """GET /other.html, rewrite it at once, wait for the change event on an open stream,
    GET it again: the new text (what a reloading page fetches at that moment)."""
    proc = live(start_process, own_site)
    stream = EventStream(proc.port)
    first = get(proc.port, "/other.html")
    assert first.status == 200 and b"<h1 id=\"title\">other</h1>" in first.body
    (own_site / "other.html").write_text(page_html("other, changed"))
    (event,) = stream.wait_events(1)
    assert paths(event) == ["/other.html"]
    again = get(proc.port, "/other.html")
    stream.close()
    assert proc.terminate() == 0
    assert b"other, changed" in again.body, again.body


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_saves_in_a_second_both_reach_the_page(
        start_process: StartProcess, own_site: Path, chromium: str) -> None:
    """The page open; saved once: it reloads with the new text; saved again as soon as that
    shows: it reloads again and shows the second text within 3 s."""
    proc = live(start_process, own_site)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tab = open_tab(browser, f"http://127.0.0.1:{proc.port}/", errors)
        wait_listening(proc.port, 1)
        (own_site / "index.html").write_text(page_html("first save"))
        tab.page.locator("#title", has_text="first save").wait_for(timeout=5000)
        (own_site / "index.html").write_text(page_html("second save"))
        shown = pump_until(tab.page, lambda: tab.navigations >= 3, 3.0)
        if shown:
            tab.page.wait_for_load_state("load")
            shown = tab.page.inner_text("#title") == "second save"
        title = tab.page.inner_text("#title")
        browser.close()
    assert proc.terminate() == 0
    assert shown, (tab.navigations, title)


# -- 2. twenty pages ----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
def test_twenty_open_pages_each_reload_once(
        start_process: StartProcess, own_site: Path, chromium: str) -> None:
    """Twenty pages of one browser (a context each, so twenty streams: tabs of one context
    share theirs, see the six-tab test), all listening; the page rewritten: each
    shows the new text within 3 s of the write, after exactly one reload (no other comes in
    the next 1.5 s), and listens again."""
    proc = live(start_process, own_site)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tabs = [open_tab(browser, f"http://127.0.0.1:{proc.port}/", errors) for _ in range(20)]
        wait_listening(proc.port, 20)
        (own_site / "index.html").write_text(page_html("changed for all"))
        written = time.time()
        delays = []
        for tab in tabs:
            tab.page.locator("#title", has_text="changed for all").wait_for(timeout=10_000)
            tab.page.wait_for_load_state("load")
            delays.append(tab.document()["readyAt"] / 1000 - written)
        tabs[0].page.wait_for_timeout(1500)
        counts = [(tab.navigations, tab.loads, tab.document()["loads"]) for tab in tabs]
        wait_listening(proc.port, 20)
        browser.close()
    assert proc.terminate() == 0
    assert not errors, errors
    print(f"\n20 pages: write -> new page's DOM ready: min {min(delays) * 1000:.0f} ms, "
          f"median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
    assert counts == [(2, 2, 2)] * 20, counts
    assert max(delays) <= 3.0, delays




@pytest.mark.slow
@pytest.mark.timeout(120)
def test_six_tabs_of_one_browser_all_reload(
        start_process: StartProcess, own_site: Path, chromium: str) -> None:
    """Six pages in one browser context (one connection pool of six per host), listening
    through the one stream their tabs share; the page rewritten: each reloads within 5 s."""
    proc = live(start_process, own_site)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        first = open_tab(browser, f"http://127.0.0.1:{proc.port}/", errors)
        tabs = [first] + [open_tab(browser, f"http://127.0.0.1:{proc.port}/", errors,
                                   context=first.context) for _ in range(5)]
        wait_listening(proc.port, 1)
        (own_site / "index.html").write_text(page_html("changed"))
        reloaded = pump_until(first.page, lambda: all(t.navigations >= 2 for t in tabs), 5.0)
        counts = [t.navigations for t in tabs]
        proc.terminate()  # frees the connections, so the browser can close
        browser.close()
    assert reloaded, counts


# -- 3. a burst of writes -------------------------------------------------------------------

QUIET = 0.1  # seconds without a change that end a burst (watch.watch's default)


class Writes:
    """The longest pause between the writes of a burst: this process may be descheduled for
    longer than the server's quiet period on a loaded machine, and then the server rightly
    reports two bursts."""

    def __init__(self) -> None:
        self.first = self.last = time.monotonic()
        self.longest_pause = 0.0

    def wrote(self) -> None:
        now = time.monotonic()
        self.longest_pause = max(self.longest_pause, now - self.last)
        self.last = now


def write_many(root: Path, writes: Writes) -> list[str]:
    """A hundred new files, as fast as possible; their URL paths."""
    (root / "many").mkdir()
    writes.wrote()
    for n in range(100):
        (root / "many" / f"f{n:03}.txt").write_text(f"file {n}\n")
        writes.wrote()
    return [f"/many/f{n:03}.txt" for n in range(100)] + ["/many/"]


def rewrite_one(root: Path, writes: Writes) -> list[str]:
    """The page rewritten a hundred times, as fast as possible."""
    for n in range(100):
        (root / "index.html").write_text(page_html(f"version {n}"))
        writes.wrote()
    return ["/index.html"]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("burst", [write_many, rewrite_one], ids=["100-files", "1-file-100x"])
def test_a_burst_of_a_hundred_writes_reloads_each_page_once(
        start_process: StartProcess, own_site: Path, chromium: str,
        burst: Callable[[Path, Writes], list[str]]) -> None:
    """Three pages open (and a raw stream); a hundred writes in a loop: the stream gets one
    event naming every path once, and each page reloads exactly once (counted by Playwright
    and by the pages themselves), with nothing more in the 1.5 s after. Should this process
    pause for longer than the quiet period between two writes, each path is still reported
    and each page reloads, but perhaps once per part of the burst."""
    proc = live(start_process, own_site)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tabs = [open_tab(browser, f"http://127.0.0.1:{proc.port}/", errors) for _ in range(3)]
        stream = EventStream(proc.port)
        wait_listening(proc.port, 4)
        writes = Writes()
        expected = burst(own_site, writes)
        took = writes.last - writes.first
        assert pump_until(tabs[0].page, lambda: all(t.navigations >= 2 for t in tabs), 5.0)
        for tab in tabs:
            tab.page.wait_for_load_state("load")
        tabs[0].page.wait_for_timeout(1500)
        counts = [(t.navigations, t.loads, t.document()["loads"]) for t in tabs]
        titles = [t.page.inner_text("#title") for t in tabs]
        stream.wait(lambda: False, 0.2)  # what came meanwhile
        events = stream.events()
        browser.close()
    stream.close()
    assert proc.terminate() == 0
    assert not errors, errors
    print(f"\n100 writes in {took * 1000:.0f} ms, the longest pause "
          f"{writes.longest_pause * 1000:.0f} ms: {len(events)} event(s)")
    assert took < 0.9, took  # a burst: well within the longest a burst is gathered (1 s)
    if writes.longest_pause < QUIET * 0.8:
        assert len(events) == 1, events
        assert paths(events[0]) == sorted(expected), paths(events[0])
        assert counts == [(2, 2, 2)] * 3, counts
    else:  # descheduled mid-burst (a loaded machine): the server saw two bursts, or more
        assert sorted({p for event in events for p in paths(event)}) == sorted(expected)
        assert all(n == loads == own >= 2 for n, loads, own in counts), counts
    if burst is rewrite_one:
        assert titles == ["version 99"] * 3, titles


# -- 4. the stream, with curl and raw sockets ----------------------------------------------

def read_curl(out: Path) -> tuple[Response, bytes]:
    """curl -i --raw's output so far: the head, and the body as sent (chunked)."""
    data = out.read_bytes()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    return parse_head(head + sep), body


@pytest.mark.timeout(60)
def test_the_stream_with_curl_and_raw_sockets(
        start_process: StartProcess, own_site: Path, tmp_path: Path) -> None:
    """curl -sN reads /.evserver/live: a 200 text/event-stream, chunked, not cached, not
    kept alive, opening with `retry: 1000` and `id: <instance>-0`. A write: one event, id
    -1, naming the path. A dotfile, a file in a dot folder: nothing (the next write's event
    is -2 and names only itself). Last-Event-ID -0 replays both events in order; the current
    id replays nothing; another process's id gets one event naming '/' (reload). HTTP/1.0
    gets the events unframed. SIGTERM (with a grace of 30 s): the server exits 0 within 3 s,
    every stream ends (the chunked ones with their last chunk: curl exits 0), and the access
    log has each stream's line with the bytes it sent."""
    curl = need_tool("curl")
    proc = live(start_process, own_site, "--shutdown-grace", "30")
    url = f"http://127.0.0.1:{proc.port}{LIVE}"
    out = tmp_path / "curl-stream.txt"
    with open(out, "wb") as sink, open(tmp_path / "curl-stderr.txt", "wb") as err:
        client = subprocess.Popen([curl, "-sN", "-i", "--raw", url], stdout=sink, stderr=err)
    try:
        assert wait_for(lambda: b"\n\n" in unchunk(
            out.read_bytes().partition(b"\r\n\r\n")[2])[0], 5)
        head, body = read_curl(out)
        assert head.status == 200
        assert head.header("content-type") == "text/event-stream"
        assert head.header("transfer-encoding") == "chunked"
        assert head.header("cache-control") == "no-store"
        assert head.header("connection") == "close"
        assert head.header("content-length") is None
        content, ended = unchunk(body)
        match = re.fullmatch(rb"retry: (\d+)\nid: ([0-9a-f]+)-0\n\n", content)
        assert match and not ended, content
        assert int(match[1]) == RETRY_MS
        instance = match[2].decode()

        def curl_events() -> list[dict[str, str]]:
            return [b for b in sse_blocks(unchunk(read_curl(out)[1])[0])
                    if b.get("event") == "change"]

        (own_site / "notes.txt").write_text("changed\n")
        assert wait_for(lambda: len(curl_events()) == 1, 5)
        (first,) = curl_events()
        assert first == {"id": f"{instance}-1", "event": "change",
                         "data": '{"paths":["/notes.txt"]}'}, first

        (own_site / ".hidden.txt").write_text("a dotfile\n")
        (own_site / ".git").mkdir()
        (own_site / ".git" / "config").write_text("[core]\n")
        (own_site / "sub" / ".page.html.swp").write_text("an editor's swap file\n")
        time.sleep(0.6)  # far more than the burst's quiet time: an event would be here
        assert curl_events() == [first]
        (own_site / "sub" / "page.html").write_text(page_html("sub page, changed"))
        assert wait_for(lambda: len(curl_events()) == 2, 5)
        second = curl_events()[1]
        assert second["id"] == f"{instance}-2" and paths(second) == ["/sub/page.html"]

        resumed = EventStream(proc.port, last_event_id=f"{instance}-0")
        current = EventStream(proc.port, last_event_id=f"{instance}-2")
        other = EventStream(proc.port, last_event_id="0123abcd-7")
        old = EventStream(proc.port, version="HTTP/1.0")
        resumed.wait_events(2)
        other.wait_events(1)
        current.wait(lambda: current.content()[0].endswith(b"\n\n"), 5)
        old.wait(lambda: old.content()[0].endswith(b"\n\n"), 5)
        assert resumed.content()[0] == (
            f"retry: {RETRY_MS}\nid: {instance}-2\n\n"
            f"id: {instance}-1\nevent: change\ndata: {first['data']}\n\n"
            f"id: {instance}-2\nevent: change\ndata: {second['data']}\n\n").encode()
        assert current.content()[0] == f"retry: {RETRY_MS}\nid: {instance}-2\n\n".encode()
        assert other.events() == [{"id": f"{instance}-2", "event": "change",
                                   "data": '{"paths":["/"]}'}]
        assert old.head.header("transfer-encoding") is None
        assert old.body == f"retry: {RETRY_MS}\nid: {instance}-2\n\n".encode()
        wait_listening(proc.port, 5)

        stopping = time.monotonic()
        assert proc.terminate(signal.SIGTERM) == 0
        stopped = time.monotonic() - stopping
        assert client.wait(5) == 0  # 18 had the chunked body been cut short
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)
    assert stopped < 3.0, stopped
    head, body = read_curl(out)
    content, rest = dechunk(body)  # strict: every chunk, then the last one
    assert rest == b"" and content.endswith(second["data"].encode() + b"\n\n")
    streams = (resumed, current, other, old)
    for s in streams:
        s.read_to_eof()
        assert s.eof and s.content()[1], s.data[-40:]
        if s.chunked:
            assert dechunk(s.body)[1] == b""
        s.close()
    log = [e for e in logged(proc) if e[1] == LIVE]
    sent = sorted([len(body)] + [len(s.body) for s in streams])
    assert [e[:3] for e in log] == [("GET", LIVE, 200)] * 5, log
    assert sorted(e[3] for e in log) == sent, (log, sent)
    print(f"\nSIGTERM with five streams open: exit 0 after {stopped * 1000:.0f} ms")


# -- 5. protocol basics under --live-reload -------------------------------------------------

# Every test of test_protocol.py again, here: they ask for `server` or `start_server`, and
# the override below makes each server one with live_reload on (and checks that it is).
for _name, _test in list(vars(test_protocol).items()):
    if _name.startswith("test_") and callable(_test):
        globals()[f"test_protocol_{_name.removeprefix('test_')}"] = _test
del _name, _test


@pytest.fixture
def start_server(start_server: Callable[..., RunningServer]) -> Callable[..., RunningServer]:
    """conftest's in-thread server, with --live-reload (test_protocol's tests, rerun here)."""
    def start(**overrides: object) -> RunningServer:
        running = start_server(**{"live_reload": True, **overrides})
        assert running.server.live is not None
        return running
    return start


def head_fields(resp: Response, *leave_out: str) -> list[str]:
    """The head's lines after the status line, in order, without the named fields."""
    lines = resp.head[:-4].decode("latin-1").split("\r\n")[1:]
    return [line for line in lines if line.partition(":")[0].lower() not in leave_out]


@pytest.mark.timeout(60)
def test_pages_and_files_under_the_flag_on_one_keep_alive_connection(
        start_process: StartProcess, own_site: Path) -> None:
    """A process started with --live-reload, one connection, requests pipelined: a page
    gets the script before its </body> (Content-Length counts it, the tag ends in -live,
    no-cache), HEAD has GET's fields, its tag revalidates to 304, a range of it is a range
    of the injected bytes; a fragment, a text file that mentions </body> and a stylesheet
    are their files (no-cache too), with their ranges; a missing file is 404; a HEAD of the
    stream answers and keeps the connection; a GET of the stream ends the pipeline. An
    encoded page is the injected page, encoded, with a tag of its own."""
    proc = live(start_process, own_site)
    port = proc.port
    page = (own_site / "index.html").read_bytes()
    injected = page.replace(b"</body>", INJECTED + b"</body>")
    first = exchange(port, request("/"))[0]
    etag = first.header("etag") or ""
    assert first.body == injected and re.fullmatch(r'"[^"]+-live"', etag), first
    requests = [
        (request("/"), False),
        (request("/", method="HEAD"), True),
        (request("/", headers=f"If-None-Match: {etag}\r\n"), False),
        (request("/", headers="Range: bytes=0-9\r\n"), False),
        (request("/fragment.html"), False),
        (request("/notes.txt"), False),
        (request("/notes.txt", headers="Range: bytes=-6\r\n"), False),
        (request("/style.css"), False),
        (request("/missing.html"), False),
        (request(LIVE, method="HEAD"), True),
        (request("/other.html"), False),
    ]
    with connect(port) as sock:
        sock.sendall(b"".join(r for r, _ in requests) + request(LIVE))
        reader = Reader(sock)
        (full, head, not_modified, ranged, fragment, notes, notes_tail, css, missing,
         live_head, other) = [reader.read_response(h) for _, h in requests]
        while b"\n\n" not in reader.buf:
            assert reader._fill()
    assert full.status == 200 and full.body == injected
    assert full.header("content-length") == str(len(injected))
    assert full.header("etag") == etag and full.header("cache-control") == "no-cache"
    assert head.status == 200 and head.body == b""
    assert head_fields(head, "date") == head_fields(full, "date")
    assert not_modified.status == 304 and not_modified.header("etag") == etag
    assert ranged.status == 206 and ranged.body == injected[:10]
    assert ranged.header("content-range") == f"bytes 0-9/{len(injected)}"
    for resp, name in ((fragment, "fragment.html"), (notes, "notes.txt"), (css, "style.css")):
        assert resp.status == 200 and resp.body == (own_site / name).read_bytes(), name
        assert not (resp.header("etag") or "").endswith('-live"'), name
        assert resp.header("cache-control") == "no-cache", name
    assert notes_tail.status == 206
    assert notes_tail.body == (own_site / "notes.txt").read_bytes()[-6:]
    assert missing.status == 404
    assert live_head.status == 200 and live_head.body == b""
    assert live_head.header("content-type") == "text/event-stream"
    assert live_head.header("connection") is None  # kept: the next request was answered
    assert other.body == (own_site / "other.html").read_bytes().replace(
        b"</body>", INJECTED + b"</body>")
    stream_head, _, stream_body = reader.buf.partition(b"\r\n\r\n")
    assert parse_head(stream_head + b"\r\n\r\n").header("content-type") == "text/event-stream"
    assert unchunk(stream_body)[0].startswith(b"retry: ")

    long_page = (own_site / "long.html").read_bytes()
    encoded = get(port, "/long.html", headers="Accept-Encoding: gzip\r\n")
    assert encoded.header("content-encoding") == "gzip"
    assert gzip.decompress(encoded.body) == long_page.replace(b"</body>",
                                                              INJECTED + b"</body>")
    assert re.fullmatch(r'"[^"]+-live-gzip\d+"', encoded.header("etag") or ""), encoded.headers
    assert encoded.header("vary") == "Accept-Encoding"
    assert proc.terminate() == 0




@pytest.mark.timeout(60)
def test_the_404_page_listens_too(start_process: StartProcess, own_site: Path) -> None:
    """With a 404.html that has a </body>: a missing page's 404 carries the script."""
    (own_site / "404.html").write_text(page_html("not found"))
    proc = live(start_process, own_site)
    missing = get(proc.port, "/not-made-yet.html")
    assert proc.terminate() == 0
    assert missing.status == 404 and missing.body.startswith(b"<!doctype html>")
    assert INJECTED in missing.body, missing.body


# -- 6. without the flag, nothing changes ---------------------------------------------------

def site_files(root: Path) -> list[str]:
    return sorted("/" + p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not any(s.startswith(".") for s in p.parts))


@pytest.mark.timeout(60)
def test_without_the_flag_no_response_changes(start_process: StartProcess, www: Path) -> None:
    """Every file of a copy of www/, from a server without --live-reload, asked without and
    with Accept-Encoding: gzip: the body is the file (decoded, when encoded), an HTML page
    included, byte for byte; no tag ends in -live; Cache-Control is the default (no-cache for
    HTML, max-age=600 for the rest); /.evserver/live is the site's 404. And beside it a
    server with the flag on the same files: every file but the HTML pages has the same head
    (Date and Cache-Control aside) and the same bytes, or with gzip the same content (the
    flag passes stale-prone precompressed siblings over); each page is the file with the
    script before its </body>."""
    plain = start_process(root=www)
    flagged = live(start_process, www)
    files = site_files(www)
    assert "/about/index.html" in files and "/css/style.css" in files and len(files) > 20
    html_pages = 0
    for path in files:
        on_disk = (www / path.lstrip("/")).read_bytes()
        is_html = path.endswith(".html")
        for accept in ("", "Accept-Encoding: gzip\r\n"):
            resp = get(plain.port, quote(path), headers=accept)
            assert resp.status == 200, path
            body = resp.body
            if resp.header("content-encoding") == "gzip":
                body = gzip.decompress(body)
            assert body == on_disk, (path, accept)
            etag = resp.header("etag") or ""
            assert etag and "-live" not in etag, (path, etag)
            assert resp.header("cache-control") == ("no-cache" if is_html else "max-age=600")
            assert b"evserver --live-reload" not in resp.body
            other = get(flagged.port, quote(path), headers=accept)
            assert other.status == 200, path
            assert other.header("cache-control") == "no-cache"
            if is_html:
                html_pages += 1
                assert b"</body>" in on_disk, path
                other_body = other.body
                if other.header("content-encoding") == "gzip":
                    other_body = gzip.decompress(other_body)
                end = on_disk.lower().rfind(b"</body>")
                assert other_body == on_disk[:end] + INJECTED + on_disk[end:], path
                assert re.search(r'-live(-gzip\d+)?"$', other.header("etag") or ""), path
            elif not accept:
                assert other.body == resp.body, path
                assert (head_fields(other, "date", "cache-control")
                        == head_fields(resp, "date", "cache-control")), path
            else:  # the flag passes precompressed siblings over: the same content
                other_body = other.body
                if other.header("content-encoding") == "gzip":
                    other_body = gzip.decompress(other_body)
                assert other_body == on_disk, path
    assert html_pages == 2 * 5  # the four pages and 404.html, each asked twice
    missing = get(plain.port, LIVE)
    assert missing.status == 404 and missing.body == (www / "404.html").read_bytes()
    assert "live reload" not in plain.stderr()
    assert plain.terminate() == 0 and flagged.terminate() == 0


# -- 7. a restart ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_page_reloads_when_the_server_comes_back(
        start_process: StartProcess, own_site: Path, chromium: str) -> None:
    """A page open and listening; its server stopped (SIGTERM, exit 0) and another started
    on the same port and root: the page's EventSource reconnects by itself (sending the old
    process's last id), is told to reload, and reloads once, within 5 s of the new server's
    start; then it listens to the new server."""
    first = live(start_process, own_site)
    port = first.port
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        tab = open_tab(browser, f"http://127.0.0.1:{port}/", errors)
        wait_listening(port, 1)
        tab.page.evaluate("window.__marker = 'before the restart'")
        assert first.terminate() == 0
        second = live(start_process, own_site, "--port", str(port))
        started = time.monotonic()
        assert second.port == port
        reloaded = pump_until(tab.page, lambda: tab.navigations >= 2, 5.0)
        took = time.monotonic() - started
        assert reloaded, tab.navigations
        tab.page.wait_for_load_state("load")
        doc = tab.document()
        tab.page.wait_for_timeout(1500)
        navigations = tab.navigations
        wait_listening(port, 1)
        sent = [r.all_headers().get("last-event-id") for r in tab.live_requests]
        browser.close()
    assert second.terminate() == 0
    print(f"\nrestart: the page reloaded {took * 1000:.0f} ms after the new server started; "
          f"Last-Event-ID sent by the streams: {sent}")
    assert (doc["type"], doc["loads"], doc["marker"]) == ("reload", 2, None), doc
    assert navigations == 2
    # The first stream without an id; then reconnections with the old process's "-0" (the
    # refused ones, then the one the new process answered); then the reloaded page's own.
    assert sent[0] is None and sent[-1] is None, sent
    resumed = sent[1:-1]
    assert resumed and all(i is not None and i.endswith("-0") for i in resumed), sent
    # While no server listened, only the stream's reconnections could fail (refused).
    assert all(LIVE in e and "ERR_CONNECTION_REFUSED" in e for e in errors), errors
