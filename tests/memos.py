"""Module-level memos of evserver's pure functions, emptied around each fast test.

A memo filled by an earlier test (or, in a mutation run, by the unmutated suite in the
process every mutant is forked from) answers from the past: the code under test never runs.
tests/unit and tests/conn empty them before and after every test (their conftest.py).
"""
from __future__ import annotations

from evserver import files, http11, log


def forget_memos() -> None:
    files._resolve_memo.cache_clear()
    files._route_memo.cache_clear()
    http11._VALID_HOSTS.clear()
    for heads in http11._HEAD_MEMOS.values():  # parsers made earlier hold these dicts
        heads.clear()
    http11._HEAD_MEMOS.clear()
    log._SAFE.clear()
    log._PREFIXES.clear()
    log._MIDDLES.clear()
