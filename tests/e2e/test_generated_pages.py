"""Every page evserver draws itself, as a person meets it: headless Chromium (Debian's
package, through Playwright) at a laptop's 1280 px and a phone's 390 and 360 px, light and
dark.

The pages: directory listings (`--listing`, with long and hostile names), evserver's own
error pages (a root without 404.html), and the status page. The stats report, drawn from a
log file rather than served, has its test in test_stats_report.py.

Each page must not scroll sideways, log no console error, fetch nothing that fails, and
wear the same look as www/: the same background, text colour and font family as the site's
home page in the same colour scheme, and a header with the brand. The PNGs
(`page-NAME-WIDTH[-dark].png`) go to the test's tmp folder and to $EVSERVER_ARTIFACTS if set.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import CHROMIUM_FLAGS, artifacts, collect_errors, need_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

WIDTHS = (1280, 390, 360)  # a laptop, an iPhone 12 to 15, the narrowest common Android
LONG_NAME = "a-very-long-file-name-that-no-phone-can-show-on-one-line-without-wrapping.txt"
# The look, as the browser computed it: what must match www/'s home page.
LOOK_JS = """() => {
  const body = getComputedStyle(document.body);
  return {background: body.backgroundColor, color: body.color, font: body.fontFamily};
}"""
OVERFLOW_JS = """() => ({scroll: document.documentElement.scrollWidth, inner: innerWidth,
  wide: [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect(); return r.right > innerWidth + 1 && r.width > 0;
  }).slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 40))
})"""


def build_root(root: Path) -> None:
    """A root without index.html or 404.html: folders, files of several sizes, a long name,
    names that are markup, a symlink out of the root (never listed)."""
    (root / "docs" / "nested folder").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text("# guide\n" * 200)
    (root / "docs" / LONG_NAME).write_text("long\n")
    (root / "docs" / "<b>bold<b> & 'quoted'.txt").write_text("x\n")
    (root / "docs" / "nested folder" / "deep.txt").write_text("deep\n")
    (root / "photo.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (root / "notes.txt").write_text("notes\n")
    outside = root.parent / "outside.txt"
    outside.write_text("outside\n")
    (root / "docs" / "escape.txt").symlink_to(outside)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def visit(browser: Browser, url: str, width: int, scheme: str, shot: list[Path],
          errors: list[str], expect: int = 200) -> dict[str, str]:
    """Load `url` at `width` px in `scheme`; check it does not scroll sideways; save the
    screenshot to each of `shot`; return the page's computed look."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  device_scale_factor=1, color_scheme=scheme,  # type: ignore[arg-type]
                                  locale="en-US", timezone_id="UTC")
    page: Page = context.new_page()
    collect_errors(page, errors, url)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == expect, url
    if expect == 404:  # Chromium reports the error page's own status on the console
        errors[:] = [e for e in errors if e != f"{url}: console error: Failed to load "
                     "resource: the server responded with a status of 404 (Not Found)"]
    overflow = page.evaluate(OVERFLOW_JS)
    assert overflow["scroll"] <= overflow["inner"], (url, width, overflow)
    assert page.locator(".site-header .brand").count() == 1, url  # www/'s header, or ours
    for path in shot:
        page.screenshot(path=str(path), full_page=True)
    look: dict[str, str] = page.evaluate(LOOK_JS)
    context.close()
    return look


def check_names_have_the_width(browser: Browser, url: str, width: int) -> None:
    """A name gets most of the listing's width (on a phone, a line of its own), so a long
    one wraps a few times rather than after every few letters."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(url)
    ratio = page.evaluate("""() => {
      const cells = [...document.querySelectorAll('.listing td.name')];
      const table = document.querySelector('.listing table').getBoundingClientRect().width;
      return Math.min(...cells.map(c => c.getBoundingClientRect().width)) / table;
    }""")
    context.close()
    assert ratio >= (0.6 if width > 800 else 0.95), (url, width, ratio)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_generated_page_wears_the_sites_look_at_laptop_and_phone_width(
        browser: Browser, start_process: Callable[..., ServerProcess], tmp_path: Path,
        scheme: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    build_root(root)
    site = start_process(root=REPO / "www")
    proc = start_process("--listing", "--status-path", "/_status", root=root)
    base = f"http://127.0.0.1:{proc.port}"
    pages = {"listing-root": ("/", 200), "listing": ("/docs/", 200),
             "listing-nested": ("/docs/nested%20folder/", 200),
             "error-404": ("/missing/page.html", 404), "status": ("/_status", 200)}
    folders = artifacts(tmp_path)
    errors: list[str] = []
    suffix = "" if scheme == "light" else "-dark"
    for width in WIDTHS:
        site_look = visit(browser, f"http://127.0.0.1:{site.port}/", width, scheme, [], errors)
        for name, (path, status) in pages.items():
            shots = [folder / f"page-{name}-{width}{suffix}.png" for folder in folders]
            look = visit(browser, base + path, width, scheme, shots, errors, status)
            if name == "listing":
                check_names_have_the_width(browser, base + path, width)
            assert look == site_look, (name, width, scheme)
    assert errors == []
