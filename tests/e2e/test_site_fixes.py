"""The demo site www/ as a new user meets it: on whatever port the server runs, on a phone.

No link leaves the origin the page came from (the home page once linked
http://localhost:8080/ whatever the port), and the addresses the pages show are the real one
once app.js ran; the About page is right about the configuration file; every page, the 404
page included, has the same footer; the commands to copy wrap between words, never inside
one, while no page scrolls sideways at phone widths; and the sample files/notes.md is right
about compression. (The video, a clip a browser must fetch in ranges, is test_video.py's.)
The browser tests are skipped without Chromium or Playwright, and failed instead when CI is
set (tests/tools.py).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, RunningServer, ServerProcess
from tests.e2e.test_www import PAGES, WWW, parse, url_of
from tests.tools import CHROMIUM_FLAGS, artifacts, need_chromium
from tests.wire import get

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DEFAULT_PORT = 8080  # what the pages may name for a server started without -p
PHONE_WIDTHS = (390, 360)  # an iPhone 12 to 15, and the narrowest common Android
MISSING = "/no/such/page/deep"  # a 404 served below the root: its links must still work


def page_name(url: str) -> str:
    """A screenshot's name for a page: `home` for /, `about` for /about/."""
    return url.strip("/").replace("/", "-") or "home"


def served_at(path: Path) -> str:
    """The URL a visitor reads a page at (404.html: any address that has no file)."""
    if path == WWW / "404.html":
        return MISSING
    url = url_of(path)
    return url[:-len("index.html")] if path.name == "index.html" else url


VISITED = [served_at(p) for p in PAGES]


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(page: Page, url: str) -> None:
    """Load `url` and wait for app.js to have run (it shows the theme button)."""
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status in (200, 404), url
    page.wait_for_function("!document.getElementById('theme-toggle').hidden", timeout=10_000)


# --- 1. Links work on any port -------------------------------------------------------------

_LINKS_JS = """() => {
  const urls = [];
  for (const el of document.querySelectorAll('[href], [src], [action], [poster]')) {
    for (const name of ['href', 'src', 'action', 'poster']) {
      const value = el.getAttribute(name);
      if (value !== null) urls.push(new URL(value, document.baseURI).href);
    }
  }
  return {
    origin: location.origin,
    urls,
    shown: Array.from(document.querySelectorAll('[data-origin]'))
      .map(el => [el.textContent, el.getAttribute('data-origin')]),
    text: document.body.innerText,
  };
}"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_no_link_leaves_the_servers_origin(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """On a server on a random port, every link, script, image and form of every page
    points at that server (with JavaScript and without); once app.js ran, each address a
    page shows (`data-origin`) is that origin and no page still names localhost:8080."""
    proc = start_process(root=WWW)
    assert proc.port != DEFAULT_PORT
    base = f"http://127.0.0.1:{proc.port}"
    problems: list[str] = []
    shown: dict[str, list[list[str]]] = {}
    with chromium_browser() as browser:
        for scripts in (True, False):
            context = browser.new_context(java_script_enabled=scripts)
            page = context.new_page()
            for url in VISITED:
                if scripts:
                    open_page(page, base + url)
                else:
                    page.goto(base + url, wait_until="load")
                found: dict[str, Any] = page.evaluate(_LINKS_JS)
                assert found["origin"] == base
                for target in found["urls"]:
                    if re.match(r"https?:", target) and not target.startswith(base + "/"):
                        problems.append(f"{url} (scripts {scripts}): {target}")
                if scripts:
                    shown[url] = found["shown"]
                    for text, suffix in found["shown"]:
                        if text != base + suffix:
                            problems.append(f"{url}: shows {text!r}, not {base + suffix!r}")
                    if f"localhost:{DEFAULT_PORT}" in found["text"]:
                        problems.append(f"{url}: still names localhost:{DEFAULT_PORT}")
                page.screenshot(path=str(artifacts(tmp_path)[-1] / (
                    f"origin-{'js' if scripts else 'nojs'}-{page_name(url)}.png")))
            context.close()
    assert not problems, problems
    # The home page's "Run it" names the server it was loaded from, the tools page its
    # curl commands' URLs.
    assert shown["/"] == [[base + "/", "/"]], shown["/"]
    assert len(shown["/tools/"]) >= 4, shown["/tools/"]
    assert proc.terminate() == 0


def test_pages_link_nowhere_else_without_javascript() -> None:
    """In the HTML itself, no page links or loads an absolute http(s) URL (such a link
    names a host and port that need not be this server's), and an element whose text
    app.js replaces with the origin still reads sensibly without JavaScript."""
    for path in PAGES:
        page = parse(path)
        for tag, attrs in page.tags:
            for name in ("href", "src", "poster", "action"):
                value = attrs.get(name) or ""
                assert not re.match(r"(?i)(https?:)?//", value), (path.name, tag, value)
    home = (WWW / "index.html").read_text(encoding="utf-8")
    link = re.search(r'<a href="([^"]*)" data-origin="/">([^<]*)</a>', home)
    assert link is not None and link[1] == "/" and "localhost" not in link[2], link


# --- 2. The About page on configuration ----------------------------------------------------

def test_about_page_names_the_configuration_file() -> None:
    """evserver reads a TOML configuration file (--config FILE, docs/configuration.md):
    the About page's list of what evserver leaves out must not deny it, and names it."""
    words = parse(WWW / "about" / "index.html").plain()
    assert "configuration language" not in words.lower(), words
    assert "TOML" in words and "--config FILE" in words, words
    documented = (REPO / "docs" / "options.md").read_text(encoding="utf-8")
    assert "**`--config FILE`**" in documented  # the option the page names exists


# --- 4. One footer ---------------------------------------------------------------------------

def footer(path: Path) -> str:
    found = re.findall(r"<footer\b.*?</footer>", path.read_text(encoding="utf-8"), re.S)
    assert len(found) == 1, (path, found)
    return " ".join(found[0].split())


def test_every_page_has_the_same_footer() -> None:
    """The footer of every page, the 404 page included, is the same markup, and it leads
    home (a 404 visitor most of all needs a way back)."""
    footers = {p.relative_to(WWW).as_posix(): footer(p) for p in PAGES}
    assert "404.html" in footers and len(footers) >= 5, footers
    assert len(set(footers.values())) == 1, footers
    assert 'href="/"' in footers["404.html"]


# --- 5. Commands on a phone ----------------------------------------------------------------

# Every word (run of non-space characters) of every command: the tops of the lines its
# client rectangles lie on, so a word broken across lines shows two. And the widths that
# say whether the page scrolls sideways.
_WRAP_JS = """() => {
  const words = [];
  for (const code of document.querySelectorAll('pre code')) {
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(range.getClientRects())
          .filter(r => r.width > 0).map(r => Math.round(r.top)));
        words.push({word: m[0], lines: tops.size, copyable: !!code.closest('.copyable')});
      }
    }
  }
  const lines = Array.from(document.querySelectorAll('.copyable code'), code => {
    const range = document.createRange();
    range.selectNodeContents(code);
    return new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top))).size;
  });
  const doc = document.documentElement;
  return {words, lines, scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth,
          innerWidth: window.innerWidth};
}"""


def phone_problems(url: str, found: dict[str, Any]) -> list[str]:
    """What is wrong with a page at one width: it scrolls sideways, or a word of a command
    is broken across two lines."""
    problems = []
    if found["scrollWidth"] > found["clientWidth"]:
        problems.append(f"{url} at {found['innerWidth']} px: {found['scrollWidth']} px wide "
                        f"in {found['clientWidth']} px")
    broken = [w["word"] for w in found["words"] if w["lines"] > 1]
    if broken:
        problems.append(f"{url} at {found['innerWidth']} px: broken inside {broken}")
    return problems


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("width", PHONE_WIDTHS)
def test_commands_wrap_between_words_on_a_phone(
        start_process: Callable[..., ServerProcess], tmp_path: Path, width: int) -> None:
    """At phone widths no page scrolls sideways (the document is no wider than the
    window), and no word of a command (the home page's "Test it" above all) is broken
    across two lines: a command wraps at its spaces, or scrolls inside its own box."""
    proc = start_process(root=WWW)
    base = f"http://127.0.0.1:{proc.port}"
    problems: list[str] = []
    with chromium_browser() as browser:
        context = browser.new_context(viewport={"width": width, "height": 844},
                                      device_scale_factor=2)
        page = context.new_page()
        for url in VISITED:
            open_page(page, base + url)
            found: dict[str, Any] = page.evaluate(_WRAP_JS)
            page.screenshot(path=str(artifacts(tmp_path)[-1] / (
                f"phone-{width}-{page_name(url)}.png")),
                full_page=True)
            assert found["innerWidth"] == width, found
            assert found["scrollWidth"] <= found["innerWidth"], found
            problems += phone_problems(url, found)
            if url == "/":
                test_it = "python3 -m pip install -e '.[test]' && python3 -m pytest"
                assert test_it.split() == [w["word"] for w in found["words"]
                                           if w["copyable"]][-len(test_it.split()):], found
        context.close()
    assert not problems, problems
    assert proc.terminate() == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_commands_never_break_inside_a_word_at_any_phone_width(
        start_process: Callable[..., ServerProcess]) -> None:
    """Where a line ends depends on the monospace font's width, so two widths could pass
    by luck: every width from 320 to 480 px, in 2 px steps, keeps each word of every
    command whole, and no page scrolls sideways."""
    proc = start_process(root=WWW)
    base = f"http://127.0.0.1:{proc.port}"
    problems: list[str] = []
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 480, "height": 844})
        for url in VISITED:
            open_page(page, base + url)
            for width in range(320, 481, 2):
                page.set_viewport_size({"width": width, "height": 844})
                problems += phone_problems(url, page.evaluate(_WRAP_JS))
    assert not problems, problems[:20]
    assert proc.terminate() == 0


# --- The sample files say what evserver does with them ---------------------------------------

def test_notes_sample_is_right_about_compression(
        start_server: Callable[..., RunningServer]) -> None:
    """files/notes.md once said evserver "compresses nothing on the fly", which it does
    to text of 1 KiB and more: it now says why this file, under 1 KiB, goes as it is."""
    notes = WWW / "files" / "notes.md"
    text = " ".join(notes.read_text(encoding="utf-8").split())
    assert "compresses nothing" not in text and "under 1 KiB" in text, text
    server = start_server(docroot=str(WWW))
    small = get(server.port, "/files/notes.md", headers="Accept-Encoding: gzip\r\n")
    assert small.status == 200 and small.header("content-encoding") is None
    assert small.body == notes.read_bytes() and len(small.body) < 1024
    page = get(server.port, "/about/", headers="Accept-Encoding: gzip\r\n")
    assert page.header("content-encoding") == "gzip"  # text of 1 KiB and more is encoded
