"""Headless Chromium (Debian's package, through Playwright) on the page `evserver stats --html`
writes: the report of a real server process's log, and of a synthetic log of a month, as a
person meets them on a laptop (1280 px) and on phones (390 and 360 px), light and dark.

Each width checks that nothing logs a console error or fails to load, that the page never
scrolls sideways and nothing sticks out of its card, that no heading, table header or axis
label is broken inside a word, that the chart of requests over time has several bars and
readable axis labels that do not collide, that long paths wrap inside their cell, and that
markup from the log is text. Full-page screenshots (stats-report-1280.png, -390.png, -360.png,
stats-report-1280-dark.png, and stats-report-month-*.png of the month) go to the test's tmp
folder and to $EVSERVER_ARTIFACTS if set.
"""
from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import CHROMIUM_FLAGS, artifacts, collect_errors, need_chromium
from tests.wire import get

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LONG_PATH = "/archive/" + "a-very-long-folder-name-without-spaces-" * 6 + "report.pdf"
MARKUP_PATH = "/<b>bold</b>"
WIDTHS = (1280, 390, 360)

# Every word of these stays on one line: a line may break between words, never inside one.
UNBROKEN = "h1, h2, th, dt, .brand, .site-header nav a, .ytitle, .xtitle, .xaxis span, .yaxis span"
BROKEN_WORDS = """sel => {
  const broken = [];
  for (const el of document.querySelectorAll(sel)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                              .map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(el.tagName + ": " + m[0]);
      }
    }
  }
  return broken;
}"""
# Elements whose right edge passes their card's content box.
SPILLS = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.card')) {
    const box = card.getBoundingClientRect();
    const right = box.right - parseFloat(getComputedStyle(card).paddingRight) + 0.5;
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > right) out.push(card.id + " " + el.tagName + " " + el.className);
    }
  }
  return out;
}"""
# The time axis labels shown: their boxes, left to right.
AXIS_LABELS = """() => [...document.querySelectorAll('.xaxis > span > span')]
  .filter(e => getComputedStyle(e.parentElement).display !== 'none')
  .map(e => { const r = e.getBoundingClientRect();
              return {left: r.left, right: r.right, text: e.textContent}; })"""
# Font sizes of the chart's and the tables' text, in CSS pixels.
TEXT_SIZES = """() => [...document.querySelectorAll(
    '.xaxis span, .yaxis span, .ytitle, .xtitle, .chart-note, td, .pct')]
  .map(e => parseFloat(getComputedStyle(e).fontSize))"""


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it (tests/tools.py: skip, or fail in CI)."""
    return need_chromium()


def served_log(start_process: Callable[..., ServerProcess]) -> Path:
    """A real server's log over about three seconds: files, a 304, 404s (one of a very long
    path, one of a path with markup in it), then the server stopped (flushing its log)."""
    sp = start_process()
    first = get(sp.port, "/hello.txt")
    etag = first.header("etag")
    assert first.status == 200 and etag
    for round_ in range(4):
        for path in ("/", "/hello.txt", "/data.json", "/sub/page.html", "/medium.bin"):
            assert get(sp.port, path).status == 200
        assert get(sp.port, "/hello.txt", f"If-None-Match: {etag}\r\n").status == 304
        assert get(sp.port, "/nope.txt").status == 404
        if round_ % 2 == 0:
            assert get(sp.port, LONG_PATH).status == 404
            get(sp.port, MARKUP_PATH)  # a 404, or a 400: either way it is logged
        time.sleep(0.8)
    assert sp.terminate() == 0
    return sp.log_path


def month_log(path: Path) -> Path:
    """Thirty days of traffic growing day by day, from a few hundred clients: files, 304s,
    206s, redirects, 404s of probes and a long path, a few 500s."""
    rng = random.Random(2026)
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    files = ["/", "/css/style.css", "/js/app.js", "/img/logo.png", "/img/photo.jpg", "/about/",
             "/gallery/", "/media/video.mp4", "/files/report.pdf", "/favicon.ico"]
    entries = []
    for _ in range(12_000):
        when = start + int(rng.random() ** 0.7 * 30 * 86400)
        roll = rng.random()
        if roll < 0.05:
            target, status = "/wp-login.php", 404
        elif roll < 0.06:
            target, status = LONG_PATH, 404
        elif roll < 0.065:
            target, status = "/api/report", 500
        elif roll < 0.08:
            target, status = "/old-page", 301
        else:
            target, status = rng.choice(files), rng.choice([200] * 9 + [304, 206])
        size = 0 if status == 304 else rng.randint(200, 3_000_000)
        client = f"192.168.{rng.randint(0, 3)}.{rng.randint(1, 80)}"
        entries.append((when, f'{client} - - [{{}}] "GET {target} HTTP/1.1" {status} {size} '
                              f'"-" "Mozilla/5.0" 0.{rng.randint(0, 200):03d}'))
    entries.sort()
    path.write_text("".join(
        line.format(datetime.fromtimestamp(when, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"))
        + "\n" for when, line in entries))
    return path


def write_report(log: Path, out: Path) -> Path:
    result = subprocess.run([sys.executable, "-m", "evserver", "stats", str(log), "--html",
                             str(out)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return out


@contextmanager
def browser_session(chromium: str) -> Iterator[tuple[Browser, list[str]]]:
    """Headless Chromium and the list its pages collect errors in (`open_page`), which must
    be empty when the session ends."""
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=CHROMIUM_FLAGS)
        yield browser, errors
        browser.close()
    assert not errors, errors


def open_page(browser: Browser, report: Path, width: int, errors: list[str],
              color_scheme: str = "light") -> Page:
    """The report at `width`, every console error, uncaught exception and failed load
    collected in `errors`."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  device_scale_factor=1, locale="en-US", timezone_id="UTC",
                                  reduced_motion="reduce",
                                  color_scheme=color_scheme)  # type: ignore[arg-type]
    page = context.new_page()
    collect_errors(page, errors, str(width))
    page.goto(report.as_uri(), wait_until="load")
    return page


def check_layout(page: Page, width: int) -> None:
    """What a person sees at `width`: no sideways scroll, nothing out of its card, no word
    broken in a header, a chart of several bars with labels apart and readable, text no
    smaller than 12 px, long paths wrapped inside their cell, markup from the log as text."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        width, page.evaluate("document.documentElement.scrollWidth"))
    assert page.evaluate(SPILLS) == [], width
    assert page.evaluate(BROKEN_WORDS, UNBROKEN) == [], width
    assert page.locator("#over-time svg rect").count() >= 3
    assert "UTC" in page.inner_text("#over-time .xtitle")
    assert page.inner_text("#over-time .ytitle").startswith("requests per ")
    labels = page.evaluate(AXIS_LABELS)
    assert len(labels) >= 3 if width >= 1000 else len(labels) >= 2, labels
    for before, after in zip(labels, labels[1:], strict=False):
        assert before["right"] <= after["left"], (width, labels)  # apart, left to right
    assert min(page.evaluate(TEXT_SIZES)) >= 12, width
    cells = page.locator("td", has_text="a-very-long-folder-name")
    assert cells.count() >= 1
    for i in range(cells.count()):
        fits = cells.nth(i).evaluate("e => e.scrollWidth <= e.clientWidth + 1 "
                                     "&& e.getBoundingClientRect().height > 40")
        assert fits, width  # wrapped onto lines of its own, inside the cell
    assert page.locator("main b, main script, main img").count() == 0


def shoot(page: Page, name: str, folders: list[Path]) -> None:
    png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    for folder in folders:
        (folder / name).write_bytes(png)


def test_report_of_a_served_log(start_process: Callable[..., ServerProcess],
                                chromium: str, tmp_path: Path) -> None:
    """The report of a real log of a few seconds, charted per second, at each width and in
    the dark: laid out for the width, the statuses named with counts and shares, the 404
    table holding the long path and the markup as text."""
    report = write_report(served_log(start_process), tmp_path / "report.html")
    folders = artifacts(tmp_path)
    with browser_session(chromium) as (browser, errors):
        for width in WIDTHS:
            page = open_page(browser, report, width, errors)
            assert page.title().startswith("Access log statistics: ")
            assert page.inner_text(".brand .tag") == "log report"
            assert page.inner_text("#over-time h2") == "Requests over time per second, UTC"
            status = page.inner_text("#status")
            assert "Not Modified" in status and "Not Found" in status and " %" in status
            assert MARKUP_PATH in page.inner_text("#files")  # as text, not bold
            check_layout(page, width)
            shoot(page, f"stats-report-{width}.png", folders)
            page.context.close()
        dark = open_page(browser, report, 1280, errors, color_scheme="dark")
        assert dark.evaluate("getComputedStyle(document.body).backgroundColor") == \
            "rgb(18, 21, 30)"  # look.py's dark --bg
        check_layout(dark, 1280)
        shoot(dark, "stats-report-1280-dark.png", folders)
        dark.context.close()


def test_report_of_a_month(chromium: str, tmp_path: Path) -> None:
    """A month's log: a bar per day with dates on the axis, six statuses, a full top ten,
    at each width and in the dark."""
    report = write_report(month_log(tmp_path / "month.log"), tmp_path / "month.html")
    folders = artifacts(tmp_path)
    with browser_session(chromium) as (browser, errors):
        for width in WIDTHS:
            page = open_page(browser, report, width, errors)
            assert page.inner_text("#over-time h2") == "Requests over time per day, UTC"
            assert page.locator("#over-time svg rect").count() == 30
            assert page.inner_text("#over-time .xaxis .first") == "Nov 1"
            assert page.locator("#status tbody tr").count() == 6
            assert page.locator("#files tbody tr").count() == 10
            check_layout(page, width)
            shoot(page, f"stats-report-month-{width}.png", folders)
            page.context.close()
        dark = open_page(browser, report, 390, errors, color_scheme="dark")
        check_layout(dark, 390)
        shoot(dark, "stats-report-month-390-dark.png", folders)
        dark.context.close()
