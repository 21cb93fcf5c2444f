"""The README and docs/ as a reader meets them: short enough, links that lead somewhere, and
nothing that points outside the repository (a clone has nothing beside it)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    """The repository's files (git's list when it is a checkout, else every file)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [REPO / name for name in out.decode().split("\0") if name]


def test_the_readme_is_read_in_five_minutes() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    assert "python3 -m evserver\n" in text  # the server on www/, nothing to install
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in text
    assert "-p 8000" in text  # another port, right beside the first command


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_links_lead_to_files_that_exist(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor on the same page
        path = (page.parent / target.partition("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        assert REPO in path.parents or path == REPO, f"{page.name} links outside: {target}"


def test_nothing_points_outside_the_repository() -> None:
    """The design brief beside the repository is not in a clone: no file may refer to it."""
    outside = re.compile(r"\.\./shared|DESIGN\.md|DESIGN[ ]§|RECIPES\.md")
    offenders = []
    for path in tracked_files():
        if path.suffix in (".py", ".md", ".toml", ".cfg", ".txt", ".html", ".sh", "") and \
                path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            offenders += [f"{path.relative_to(REPO)}: {m.group()}"
                          for m in outside.finditer(text)]
    assert offenders == []
