"""Fixtures for the unit tests: a recorder for the `evserver` logger."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.memos import forget_memos


@pytest.fixture(autouse=True)
def fresh_memos() -> Iterator[None]:
    """Each test computes what it asks afresh (tests/memos.py says why)."""
    forget_memos()
    yield
    forget_memos()


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal that takes colour unless a test says otherwise, whatever the terminal (or
    CI's lack of one) that runs the tests: NO_COLOR unset, TERM not `dumb`."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def evlog() -> Iterator[ListHandler]:
    """Records of the `evserver` logger, attached directly (propagation may be off)."""
    logger = logging.getLogger("evserver")
    handler = ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
