"""End to end: `--log-format common|json` and `--verbose`, through the real command line."""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.conftest import ServerProcess
from tests.wire import get


def test_json_log_has_one_object_per_request(
        start_process: Callable[..., ServerProcess]) -> None:
    """--log-format json: every request is one JSON object with its status and bytes."""
    sp = start_process("--log-format", "json")
    assert get(sp.port, "/hello.txt").status == 200
    assert get(sp.port, "/missing.txt").status == 404
    assert sp.terminate() == 0
    records = [json.loads(line) for line in sp.log_path.read_text().splitlines()]
    assert [(r["method"], r["target"], r["status"]) for r in records] == [
        ("GET", "/hello.txt", 200), ("GET", "/missing.txt", 404)]
    assert records[0]["bytes"] == len(b"hello, world\n") and records[0]["client"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", records[0]["time"])


def test_common_log_format(start_process: Callable[..., ServerProcess]) -> None:
    """--log-format common: NCSA lines, nothing after the byte count."""
    sp = start_process("--log-format", "common")
    assert get(sp.port, "/hello.txt").status == 200
    assert sp.terminate() == 0
    (line,) = sp.log_path.read_text().splitlines()
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /hello\.txt HTTP/1\.1" 200 13', line)


@pytest.mark.parametrize("bad", ["xml", ""])
def test_unknown_log_format_is_a_one_line_error(
        start_process: Callable[..., ServerProcess], bad: str) -> None:
    """A format that does not exist: exit status 2 and one line naming the option."""
    with pytest.raises(RuntimeError, match="log-format"):
        start_process("--log-format", bad)


def test_verbose_prints_each_request_on_the_console(
        start_process: Callable[..., ServerProcess]) -> None:
    """--verbose: a line per request on stderr (no colour codes: stderr is a file here),
    besides the log file."""
    sp = start_process("--verbose")
    assert get(sp.port, "/hello.txt").status == 200
    assert get(sp.port, "/missing.txt").status == 404
    assert sp.terminate() == 0
    stderr = sp.stderr()
    assert re.search(r"127\.0\.0\.1 GET /hello\.txt HTTP/1\.1 200 13 B \d+ ms", stderr)
    assert re.search(r"127\.0\.0\.1 GET /missing\.txt HTTP/1\.1 404 ", stderr)
    assert "\x1b[" not in stderr and len(sp.log_path.read_text().splitlines()) == 2
