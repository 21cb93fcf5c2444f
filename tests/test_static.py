"""The code keeps its promises to readers: strict typing and lint-clean."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.timeout(180)
def test_mypy_strict_passes() -> None:
    """`mypy --strict` (configured in setup.cfg) finds nothing in evserver/."""
    pytest.importorskip("mypy")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True, timeout=170)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    """ruff (configured in pyproject.toml) finds nothing in evserver/ or the tests."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    result = subprocess.run([ruff, "check", "evserver", "loadtests", "tests"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
