"""One policy for tests that need something this machine may lack: a system tool (a Debian
package) or a Python test extra (a pip package).

When it is missing the test is SKIPPED, with a reason that names it and the line that
installs it. When the environment variable CI is set (to anything non-empty) the test FAILS
with the same message instead: CI installs all of them (.ci/run), so a missing one there is
a broken setup, never a reason to pass quietly.

    path = need_tool("zbarimg")         # a command on PATH; returns its path
    need_module("redbot")               # a pip test extra that must import
    need_module("locust", load=False)   # ... that must only be installed (not imported here)
    chromium = need_chromium()          # Playwright and Debian's chromium; the browser's path
    folders = artifacts(tmp_path)       # where a browser test saves its screenshots
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The command -> the Debian package that provides it (as .ci/run installs them).
APT_PACKAGES = {
    "chromium": "chromium",
    "curl": "curl",
    "haproxy": "haproxy",
    "logrotate": "logrotate",
    "nginx": "nginx-light",
    "openssl": "openssl",
    "prometheus": "prometheus",
    "slowhttptest": "slowhttptest",
    "systemd-analyze": "systemd",
    "zbarimg": "zbar-tools",
}
# The Python test extras (pyproject.toml's `test`) are installed together.
PIP_INSTALL = "python3 -m pip install -e '.[test]'"

# Headless Debian Chromium for the browser tests; without the background-networking flags it
# keeps trying this machine's closed network.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def in_ci() -> bool:
    """True when the environment variable CI is set to anything non-empty."""
    return bool(os.environ.get("CI"))


def unavailable(message: str) -> NoReturn:
    """Skip the test with `message`; under CI, fail it with that message instead."""
    if in_ci():
        pytest.fail(f"{message} (CI is set: CI installs it, so this is a failure)",
                    pytrace=False)
    pytest.skip(message)


def install_line(command: str) -> str:
    return f"apt-get install -y {APT_PACKAGES[command]}"


def need_tool(command: str) -> str:
    """The path of `command` (one of APT_PACKAGES) on PATH; skip, or fail under CI, if
    there is none."""
    path = shutil.which(command)
    if path is None:
        unavailable(f"needs {command}, which is not installed: {install_line(command)}")
    return path


def need_module(name: str, *, load: bool = True) -> None:
    """A Python test extra: importable (`load`), or only installed (`load=False`, for a
    package such as locust that must not be imported into the pytest process)."""
    package = name.partition(".")[0]
    if not load:
        if importlib.util.find_spec(name) is None:
            unavailable(f"needs the Python package {package}, which is not installed: "
                        f"{PIP_INSTALL}")
        return
    try:
        importlib.import_module(name)
    except ImportError as err:
        unavailable(f"needs the Python package {package}, which cannot be imported ({err}): "
                    f"{PIP_INSTALL}")


def need_chromium() -> str:
    """Playwright (pip) driving Debian's chromium (apt); the browser's path."""
    need_module("playwright.sync_api")
    return need_tool("chromium")


def collect_errors(page: Page, errors: list[str], label: str) -> None:
    """Every console error, uncaught exception and failed request of `page` from now on,
    appended to `errors` after `label` (which page, at which width)."""
    page.on("console", lambda m: errors.append(f"{label}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{label}: uncaught {e}"))
    page.on("requestfailed", lambda r: errors.append(f"{label}: failed {r.url}: {r.failure}"))


def artifacts(tmp_path: Path) -> list[Path]:
    """Where screenshots go: the test's tmp folder, and $EVSERVER_ARTIFACTS if set."""
    folders = [tmp_path]
    if os.environ.get("EVSERVER_ARTIFACTS"):
        folders.append(Path(os.environ["EVSERVER_ARTIFACTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders
