"""Fixtures for the connection tests."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .fakes import is_closed_fd


def _open_fds() -> set[int]:
    # The listing itself holds an fd while it runs: keep only those still open after it.
    return {int(fd) for fd in os.listdir("/proc/self/fd") if not is_closed_fd(int(fd))}


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Every fd a test's pool jobs opened is closed by its end, whatever happened."""
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    assert not leaked, [os.readlink(f"/proc/self/fd/{fd}") for fd in leaked]
