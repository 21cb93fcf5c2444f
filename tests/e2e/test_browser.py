"""A real browser (headless Debian Chromium through Playwright) loads the default site.

Skipped without Chromium or Playwright, failed instead when CI is set (tests/tools.py).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import CHROMIUM_FLAGS, need_chromium

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_browser_loads_the_site_with_every_asset(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Every request the page makes succeeds, the images decode, and a later visit
    revalidates (the browser sends If-Modified-Since / If-None-Match and gets 304s)."""
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright
    proc = start_process(root=REPO / "www")
    base = f"http://127.0.0.1:{proc.port}"
    statuses: dict[str, int] = {}
    failures: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("response", lambda r: statuses.__setitem__(r.url, r.status))
        # A media download the browser abandons when we navigate on is not a failure.
        page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
                else failures.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/", wait_until="load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        stylesheet_applied = page.evaluate(
            "getComputedStyle(document.body).fontFamily !== ''")
        page.screenshot(path=str(tmp_path / "home.png"))
        page.click("a[href='/about/']")
        page.wait_for_load_state("load")
        title = page.title()
        errors_before_404 = list(errors)
        page.goto(base + "/no/such/page")
        not_found_text = page.inner_text("body")
        browser.close()
    assert not failures and not errors_before_404, (failures, errors_before_404)
    assert statuses[base + "/"] == 200
    for asset in ("/css/style.css", "/js/app.js", "/img/logo.png", "/img/photo.jpg",
                  "/img/icon.svg"):
        assert statuses.get(base + asset) in (200, 304), (asset, statuses)
    assert all(w > 0 for w in widths) and len(widths) >= 3
    assert stylesheet_applied
    assert "About" in title
    assert statuses[base + "/no/such/page"] == 404 and "404" in not_found_text
    assert (tmp_path / "home.png").stat().st_size > 1000
    assert proc.terminate() == 0
    log = proc.log_path.read_text()
    assert '"GET /about/ HTTP/1.1" 200' in log and '"GET /no/such/page HTTP/1.1" 404' in log
