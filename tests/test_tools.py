"""tests/tools.py: a missing tool or test extra skips the test, or fails it when CI is set,
with a message naming it and the line that installs it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import tools
from tests.conftest import REPO

SKIPPED = pytest.skip.Exception
FAILED = pytest.fail.Exception


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """No command is on PATH."""
    monkeypatch.setattr(tools.shutil, "which", lambda name, *a, **k: None)


@pytest.mark.parametrize(("command", "package"), sorted(tools.APT_PACKAGES.items()))
def test_a_missing_tool_is_skipped_with_its_apt_line(
        monkeypatch: pytest.MonkeyPatch, no_tools: None, command: str, package: str) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SKIPPED) as caught:
        tools.need_tool(command)
    assert command in str(caught.value)
    assert f"apt-get install -y {package}" in str(caught.value)


@pytest.mark.parametrize("ci", ["true", "1", "yes", "anything"])
def test_under_ci_a_missing_tool_fails_with_the_same_message(
        monkeypatch: pytest.MonkeyPatch, no_tools: None, ci: str) -> None:
    """Any non-empty CI, not only `true`, turns the skip into a failure."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SKIPPED) as skipped:
        tools.need_tool("zbarimg")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(FAILED) as failed:
        tools.need_tool("zbarimg")
    assert "needs zbarimg" in str(failed.value)
    assert "apt-get install -y zbar-tools" in str(failed.value)
    assert str(skipped.value) in str(failed.value)


def test_an_empty_ci_is_not_ci(monkeypatch: pytest.MonkeyPatch, no_tools: None) -> None:
    monkeypatch.setenv("CI", "")
    with pytest.raises(SKIPPED):
        tools.need_tool("curl")


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_present_tool_is_its_path(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    """Found on PATH: its path, whatever CI says; nothing is skipped or failed."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(tools.shutil, "which", lambda name, *a, **k: f"/opt/bin/{name}")
    assert tools.need_tool("haproxy") == "/opt/bin/haproxy"


def test_a_tool_hidden_from_path_is_missing(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """The real lookup: PATH without the tool's folder."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SKIPPED, match="apt-get install -y openssl"):
        tools.need_tool("openssl")


@pytest.mark.parametrize("load", [True, False])
def test_a_missing_test_extra_skips_or_fails_with_the_pip_line(
        monkeypatch: pytest.MonkeyPatch, load: bool) -> None:
    name = "evserver_no_such_test_extra"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SKIPPED) as skipped:
        tools.need_module(name, load=load)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(FAILED) as failed:
        tools.need_module(name, load=load)
    for caught in (skipped, failed):
        assert f"needs the Python package {name}" in str(caught.value)
        assert "python3 -m pip install -e '.[test]'" in str(caught.value)


def test_an_installed_test_extra_passes() -> None:
    tools.need_module("pytest")
    tools.need_module("pytest", load=False)


def test_chromium_needs_playwright_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Playwright the message names the pip package, not the browser."""
    monkeypatch.delenv("CI", raising=False)

    def no_playwright(name: str) -> object:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(tools.importlib, "import_module", no_playwright)
    with pytest.raises(SKIPPED, match=r"Python package playwright\b.*pip install"):
        tools.need_chromium()


def test_chromium_missing_names_its_apt_package(monkeypatch: pytest.MonkeyPatch,
                                                no_tools: None) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(tools.importlib, "import_module", lambda name: None)
    with pytest.raises(SKIPPED, match="apt-get install -y chromium"):
        tools.need_chromium()


def test_ci_installs_every_package_the_policy_names() -> None:
    """.ci/run's apt-get line installs each package tests/tools.py may ask for."""
    script = (REPO / ".ci" / "run").read_text()
    line = re.search(r"apt-get install -y .*", script)
    assert line is not None, script
    assert set(tools.APT_PACKAGES.values()) <= set(line[0].split()), line[0]
