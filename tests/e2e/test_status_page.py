"""Headless Chromium (Debian's package, through Playwright) on the status page of a live
evserver (`--status-path /_status`): how it looks at a desktop and a phone width, and that
it updates itself without a navigation.

Each run checks that nothing logs a console error or fails to load, that the page never
scrolls sideways, that the three charts are drawn, and that requests sent after the page
opened show up in its request total within a few seconds while the page stays the same
document. Full-page screenshots (status-1280.png, status-390.png, and the dark variant of the
desktop one) go to the test's tmp folder and to $EVSERVER_ARTIFACTS if set.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import RunningServer
from tests.tools import CHROMIUM_FLAGS, artifacts, collect_errors, need_chromium
from tests.wire import get

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

Start = Callable[..., RunningServer]
STATUS = "/_status"
CHARTS = "svg[role=img]"
TOTAL = "#requests-total"
# The total as a number ("1,234" on the page).
READ_TOTAL = ("() => { const e = document.querySelector('#requests-total');"
              " return e ? parseInt(e.textContent.replace(/[^0-9]/g, ''), 10) : -1; }")


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it (tests/tools.py: skip, or fail in CI)."""
    return need_chromium()


def launch(p: Playwright, chromium: str) -> Browser:
    return p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)


def new_page(browser: Browser, viewport: ViewportSize, errors: list[str],
             color_scheme: str = "light") -> tuple[BrowserContext, Page]:
    """A fresh context at `viewport`, every console error, uncaught exception, failed
    request and error response collected in `errors`."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1, locale="en-US",
                                  timezone_id="UTC", reduced_motion="reduce",
                                  color_scheme=color_scheme)  # type: ignore[arg-type]
    page = context.new_page()
    collect_errors(page, errors, f"{viewport['width']} px")
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    return context, page


def some_traffic(port: int, n: int) -> None:
    """`n` requests of a few kinds: files, a miss, a HEAD."""
    paths = ["/hello.txt", "/index.html", "/data.json", "/nope", "/sub/page.html"]
    for i in range(n):
        path = paths[i % len(paths)]
        method = "HEAD" if i % 7 == 6 else "GET"
        assert get(port, path, method=method).status in (200, 404)


def no_sideways_scroll(page: Page) -> bool:
    result = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert isinstance(result, bool)
    return result


def read_total(page: Page) -> int:
    total = page.evaluate(READ_TOTAL)
    assert isinstance(total, int)
    return total


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)], ids=["1280", "390"])
def test_status_page_renders_and_updates_itself(
        start_server: Start, chromium: str, tmp_path: Path, width: int, height: int) -> None:
    """The page at `width`: no console error, no failed or refused request, no sideways
    scrolling, the three charts (once the history has two samples: the page fetches itself
    every 2 s, so they appear without a reload). Then 25 more requests: the total shown
    rises by at least as many within 6 s, and `window.__marker` set before is still there,
    so it was the same document, updated in place. The browser asked for no favicon."""
    running = start_server(status_path=STATUS)
    some_traffic(running.port, 12)
    url = f"http://127.0.0.1:{running.port}{STATUS}"
    errors: list[str] = []
    folders = artifacts(tmp_path)
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, {"width": width, "height": height}, errors)
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200
        assert page.title() == "evserver status"
        assert read_total(page) >= 12
        page.wait_for_function(f"() => document.querySelectorAll('{CHARTS}').length === 3",
                               timeout=6_000)
        assert no_sideways_scroll(page), width

        page.evaluate("window.__marker = 1")
        before = read_total(page)
        some_traffic(running.port, 25)
        page.wait_for_function(f"() => ({READ_TOTAL})() >= {before + 25}", timeout=6_000)
        assert page.evaluate("window.__marker") == 1  # no navigation: the same document
        assert page.locator(CHARTS).count() == 3
        assert page.locator("#offline").is_hidden()
        labels = page.eval_on_selector_all(CHARTS, "s => s.map(e => e.getAttribute('aria-label'))")
        assert all(label.startswith("Line chart of ") for label in labels), labels
        assert no_sideways_scroll(page), width

        png = page.screenshot(full_page=True, animations="disabled", caret="hide")
        for folder in folders:
            (folder / f"status-{width}.png").write_bytes(png)
        if width == 1280:  # the dark scheme too, for a person to look at
            page.emulate_media(color_scheme="dark")
            dark = page.screenshot(full_page=True, animations="disabled", caret="hide")
            for folder in folders:
                (folder / f"status-{width}-dark.png").write_bytes(dark)
        context.close()
        browser.close()
    assert not errors, errors
    log = "\n".join(running.log_lines())
    assert "favicon" not in log
    assert log.count(f"GET {STATUS} ") >= 3  # the page, then its own fetches


def test_status_page_says_when_the_server_is_gone(
        start_server: Start, chromium: str) -> None:
    """The server stops under an open page: within a few seconds the page shows its
    "server unreachable, retrying" note, and the numbers it had stay on the page."""
    running = start_server(status_path=STATUS)
    some_traffic(running.port, 3)
    errors: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = launch(p, chromium)
        context, page = new_page(browser, {"width": 390, "height": 844}, errors)
        page.goto(f"http://127.0.0.1:{running.port}{STATUS}", wait_until="load")
        assert page.locator("#offline").is_hidden()
        page.evaluate("window.__marker = 1")
        running.stop()
        page.wait_for_selector("#offline", state="visible", timeout=6_000)
        assert "unreachable" in page.inner_text("#offline").lower()
        assert page.evaluate("window.__marker") == 1
        assert read_total(page) >= 3
        context.close()
        browser.close()
    # What the browser reports of the refused fetches, and nothing else.
    unexpected = [e for e in errors if "ERR_CONNECTION_REFUSED" not in e]
    assert not unexpected, unexpected
