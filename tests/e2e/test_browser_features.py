"""Headless Chromium (Debian's package, through Playwright) against a live evserver on www/:
what a browser user of issue 6's features sees. Screenshots go to $EVSERVER_ARTIFACTS
(default: the test's tmp folder).
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import CHROMIUM_FLAGS, need_chromium, need_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
_LOGGED = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) ')


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, with Playwright to drive it (tests/tools.py: skip, or fail in CI)."""
    return need_chromium()


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EVSERVER_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def logged(proc: ServerProcess) -> list[tuple[str, int]]:
    return [(m[1], int(m[2])) for m in _LOGGED.finditer(proc.log_path.read_text())]


def test_every_browser_request_is_logged_and_a_revisit_gets_304(
        start_process: Callable[..., ServerProcess], tmp_path: Path, chromium: str) -> None:
    """A first visit with an empty cache: every request the page makes reaches the server,
    succeeds, and has its line in the log with the same status. A second visit
    revalidates the page (HTML is `no-cache`): the browser's If-None-Match gets a 304."""
    proc = start_process(root=REPO / "www")
    base = f"http://127.0.0.1:{proc.port}"
    seen: list[tuple[str, int]] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_context().new_page()
        page.on("response", lambda r: seen.append((urlsplit(r.url).path, r.status)))
        page.goto(base + "/", wait_until="networkidle")
        page.screenshot(path=str(artifacts(tmp_path) / "home.png"), full_page=True)
        first_visit = list(seen)
        page.goto(base + "/about/", wait_until="networkidle")
        page.goto(base + "/", wait_until="networkidle")
        browser.close()
    assert proc.terminate() == 0
    assert first_visit and all(status == 200 for _, status in first_visit), first_visit
    in_log = logged(proc)
    for path, status in first_visit:
        assert (path, status) in in_log, (path, status, in_log)
    assert in_log.count(("/", 304)) == 1, in_log  # the revisit
    assert (artifacts(tmp_path) / "home.png").stat().st_size > 1000


def test_spa_route_renders_the_index_in_the_browser(
        start_process: Callable[..., ServerProcess], tmp_path: Path, chromium: str) -> None:
    """--spa: opening a client-side route directly (a reload, a shared link) renders the
    site's index page with its assets, status 200."""
    proc = start_process("--spa", root=REPO / "www")
    base = f"http://127.0.0.1:{proc.port}"
    failures: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("requestfailed", lambda r: failures.append(r.url))
        page.goto(base + "/", wait_until="networkidle")
        home_title = page.title()
        response = page.goto(base + "/app/settings/profile", wait_until="networkidle")
        assert response is not None and response.status == 200
        index_title = page.title()
        page.screenshot(path=str(artifacts(tmp_path) / "spa-route.png"))
        missing = page.goto(base + "/missing-asset.js")
        assert missing is not None and missing.status == 404
        browser.close()
    assert index_title == home_title and "evserver" in home_title
    assert not failures, failures
    assert proc.terminate() == 0
    assert ("/app/settings/profile", 200) in logged(proc)


def test_the_site_over_https(start_process: Callable[..., ServerProcess], tmp_path: Path,
                             chromium: str) -> None:
    """--tls-cert/--tls-key: Chromium loads www/ over HTTPS (a self-signed certificate,
    accepted for the test), every sub-resource included, and it is a secure context."""
    openssl = need_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    proc = start_process("--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", "0",
                         root=REPO / "www")
    match = re.search(r"https://127\.0\.0\.1:(\d+)/", proc.stderr())
    assert match is not None
    base = f"https://127.0.0.1:{match.group(1)}"
    seen: list[tuple[str, int]] = []
    failures: list[str] = []
    from playwright.sync_api import sync_playwright  # importable: the fixture checked
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.on("response", lambda r: seen.append((urlsplit(r.url).path, r.status)))
        page.on("requestfailed", lambda r: failures.append(r.url))
        page.goto(base + "/", wait_until="networkidle")
        secure = page.evaluate("window.isSecureContext")
        page.screenshot(path=str(artifacts(tmp_path) / "home-https.png"))
        browser.close()
    assert not failures, failures
    assert secure is True
    assert ("/", 200) in seen and len(seen) >= 4 and all(s == 200 for _, s in seen), seen
    assert proc.terminate() == 0
