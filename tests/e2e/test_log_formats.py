"""End to end: `--log-format common|json`, `--verbose` and the user who logged in, through the
real command line."""
from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import threading
from collections.abc import Callable

import pytest

from evserver.tools.logstats import parse_line
from tests.conftest import ServerProcess, wait_for
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_verbose_shows_every_request_before_the_stop_line(
        start_process: Callable[..., ServerProcess], sig: int) -> None:
    """--verbose: the stop line comes after the line of every request answered, the last
    ones too (a client keeps asking until the stop closes its connection): the console lines
    are written before the server says it stopped, not flushed after."""
    sp = start_process("--verbose")
    conn = http.client.HTTPConnection("127.0.0.1", sp.port, timeout=5)
    answered: list[int] = []

    def keep_asking() -> None:
        try:
            while True:
                conn.request("GET", f"/hello.txt?n={len(answered)}")
                response = conn.getresponse()
                response.read()
                answered.append(response.status)
                if response.will_close:
                    return
        except (OSError, http.client.HTTPException):
            return  # the stop closed the connection between two requests

    client = threading.Thread(target=keep_asking)
    client.start()
    assert wait_for(lambda: len(answered) >= 20)
    sp.proc.send_signal(sig)
    client.join(10)
    conn.close()
    assert sp.proc.wait(20) == 0, sp.stderr()
    lines = sp.stderr().splitlines()
    shown = [i for i, line in enumerate(lines) if " GET /hello.txt?n=" in line]
    (stop,) = [i for i, line in enumerate(lines) if "stopped after" in line]
    assert len(shown) == len(sp.log_path.read_text().splitlines()) >= len(answered) >= 20
    assert max(shown) < stop, "\n".join(lines[stop - 2:])
    assert lines[stop] == "evserver: stopped after 1 connection"


@pytest.mark.parametrize("log_format", ["combined", "common", "json"])
def test_the_log_names_who_logged_in(start_process: Callable[..., ServerProcess],
                                     log_format: str) -> None:
    """A real Basic login (http.client): the user field is the name a login succeeded
    with, escaped as one field; `-` (JSON: "") without a login or with a failed one. The
    stats command's parser still reads every line."""
    sp = start_process("--log-format", log_format, "--auth", "alice:wonderland",
                       "--auth", "john doe:pa ss")
    conn = http.client.HTTPConnection("127.0.0.1", sp.port, timeout=5)
    statuses = []
    for login in (None, "alice:wonderland", "alice:guess", "mallory:wonderland",
                  "john doe:pa ss"):
        headers = {} if login is None else {
            "Authorization": "Basic " + base64.b64encode(login.encode()).decode()}
        conn.request("GET", "/hello.txt", headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    assert statuses == [401, 200, 401, 401, 200]
    assert sp.terminate() == 0
    lines = sp.log_path.read_text().splitlines()
    if log_format == "json":
        users = [json.loads(line)["user"] for line in lines]
        assert users == ["", "alice", "", "", "john doe"]
    else:
        users = [line.split(" ")[2] for line in lines]
        assert users == ["-", "alice", "-", "-", "john\\x20doe"]
    entries = [parse_line(line) for line in lines]
    assert [(e.status, e.request) for e in entries if e is not None] == [
        (status, "GET /hello.txt HTTP/1.1") for status in statuses]
