"""Fixtures for the connection tests."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.memos import forget_memos

from .fakes import is_closed_fd
from .rig import BIG_SIZE, HELLO, INDEX, MID_SIZE, Rig, TLSRig


@pytest.fixture(autouse=True)
def fresh_memos() -> Iterator[None]:
    """Each test computes what it asks afresh (tests/memos.py says why)."""
    forget_memos()
    yield
    forget_memos()


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


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    """The connection tests' root: a small text, an index, a streamed and a mid-size file."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_bytes(HELLO)
    (root / "index.html").write_bytes(INDEX)
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "mid.bin").write_bytes(os.urandom(MID_SIZE))
    return root


@pytest.fixture
def make_rig(docroot: Path) -> Iterator[Callable[..., Rig]]:
    """Rigs with config overrides; their caches (which own open fds) are closed at the end,
    as the server does at exit, before the fd-leak check runs."""
    rigs: list[Rig] = []

    def make(**overrides: Any) -> Rig:
        rigs.append(Rig(docroot, **overrides))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.owner.cache.close()


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()


@pytest.fixture
def make_tls(docroot: Path) -> Iterator[Callable[..., TLSRig]]:
    """TLSRigs, their handshake done: HTTP begins on the (faked) TLS socket."""
    rigs: list[TLSRig] = []

    def make(**overrides: Any) -> TLSRig:
        rigs.append(TLSRig(docroot, **overrides))
        rigs[-1].handshake()
        return rigs[-1]

    yield make
    for made in rigs:
        made.owner.cache.close()
