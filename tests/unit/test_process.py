"""process.py: what a server says when it stops."""
from __future__ import annotations

import pytest

from evserver.process import stop_lines


@pytest.mark.parametrize(("accepted", "line"), [(0, "stopped after 0 connections"),
                                                (1, "stopped after 1 connection"),
                                                (2, "stopped after 2 connections")])
def test_the_stop_line_counts_connections_in_words(accepted: int, line: str) -> None:
    """One connection is `1 connection`; none and several take the plural. Nothing was
    encoded: no compression line."""
    assert stop_lines(accepted, 0, 0, 0) == [line]


@pytest.mark.parametrize(("responses", "words"), [(1, "in 1 encoded response"),
                                                  (3, "in 3 encoded responses")])
def test_the_compression_line_counts_responses_in_words(responses: int, words: str) -> None:
    assert stop_lines(5, responses, 4096, 1024) == [
        "stopped after 5 connections",
        f"compression saved 3.0 KiB of 4.0 KiB (75 %) {words}"]
