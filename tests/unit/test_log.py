"""log.py: the access-line format and escaping, the batched AccessLog, setup_logging."""
from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver import log as log_module
from evserver.log import (
    AccessLog,
    LineFormat,
    access_line,
    common_line,
    escape,
    json_line,
    plural,
    setup_logging,
    user_field,
)
from evserver.tools.logstats import parse_line
from tests.unit.conftest import ListHandler

REPO = Path(__file__).resolve().parents[2]

# Combined Log Format plus the duration: host ident user [time] "request" status bytes
# "referer" "user-agent" seconds
CLF = re.compile(
    rb'(?P<host>[^ ]+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    rb'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    rb'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<duration>\d+\.\d{3})\n')

WHEN = 971186136.75  # 10 Oct 2000 13:55:36 UTC


# -- access_line -------------------------------------------------------------------------

def test_access_line_fields() -> None:
    """Every field of the line in its place."""
    line = access_line("203.0.113.7", WHEN, b"GET /index.html HTTP/1.1", 200, 1234,
                       b"http://ref.example/", b"curl/8.0", 0.01234)
    m = CLF.fullmatch(line)
    assert m is not None, line
    assert m["host"] == b"203.0.113.7"
    assert m["time"] == b"10/Oct/2000:13:55:36 +0000"
    assert m["request"] == b"GET /index.html HTTP/1.1"
    assert m["status"] == b"200"
    assert m["bytes"] == b"1234"
    assert m["referer"] == b"http://ref.example/"
    assert m["agent"] == b"curl/8.0"
    assert m["duration"] == b"0.012"


def test_access_line_time_follows_when() -> None:
    """The time field follows `when`, also going back and forth (per-second cache)."""
    first = access_line("::1", WHEN, b"GET / HTTP/1.1", 200, 0, None, None, 0.0)
    later = access_line("::1", WHEN + 86400 * 40 + 3, b"GET / HTTP/1.1", 200, 0, None, None, 0.0)
    again = access_line("::1", WHEN, b"GET / HTTP/1.1", 200, 0, None, None, 0.0)
    assert b"[10/Oct/2000:13:55:36 +0000]" in first
    assert b"[19/Nov/2000:13:55:39 +0000]" in later
    assert again == first


def test_access_line_missing_fields_are_dashes() -> None:
    """No request line, referer or user agent: `-` in their quotes."""
    line = access_line("127.0.0.1", WHEN, b"", 400, 0, None, b"", 1.5)
    m = CLF.fullmatch(line)
    assert m is not None, line
    assert (m["request"], m["referer"], m["agent"]) == (b"-", b"-", b"-")
    assert (m["status"], m["bytes"], m["duration"]) == (b"400", b"0", b"1.500")


@pytest.mark.parametrize("target", [
    b'/a" 200 0 "-" "-" 0.000\n1.2.3.4 - - [01/Jan/2000:00:00:00 +0000] "GET /forged',
    b"/x\r\n127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5",
    b'/q\\" 500 1 "evil',
    b"/\xff\xfe\x00\x1b[31m",
])
def test_access_line_cannot_be_forged(target: bytes) -> None:
    """CR, LF, quotes and backslashes in any field cannot start a line or a field."""
    line = access_line("10.0.0.1", WHEN, b"GET " + target + b" HTTP/1.1", 404, 0,
                       target, target, 0.0)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert b"\r" not in line
    assert line.count(b'"') == 6
    m = CLF.fullmatch(line)
    assert m is not None, line
    assert m["status"] == b"404"
    assert m["referer"] == m["agent"] == escape(target)
    assert all(0x20 <= c < 0x7f for c in line[:-1])


@pytest.mark.parametrize(("raw", "escaped"), [
    (b"plain /path?q=1", b"plain /path?q=1"),
    (b'a"b', b"a\\x22b"),
    (b"a\\b", b"a\\x5Cb"),
    (b"a\r\nb", b"a\\x0D\\x0Ab"),
    (b"\t\x00\x1f\x7f", b"\\x09\\x00\\x1F\\x7F"),
    (b"caf\xc3\xa9", b"caf\\xC3\\xA9"),
    (b"\x80\xff", b"\\x80\\xFF"),
    (b"\\x41", b"\\x5Cx41"),  # a literal `\x41` stays distinguishable from an escape
    (b"", b""),
])
def test_escape(raw: bytes, escaped: bytes) -> None:
    """Printable ASCII stays; `"`, `\\`, controls and bytes >= 0x80 become `\\xHH`."""
    assert escape(raw) == escaped


def test_escape_covers_every_byte() -> None:
    """Exactly the bytes 0x20-0x7e except `"` and `\\` pass through unchanged."""
    for b in range(256):
        out = escape(bytes([b]))
        if 0x20 <= b <= 0x7e and b not in b'"\\':
            assert out == bytes([b])
        else:
            assert out == b"\\x%02X" % b


def test_escape_remembers_only_what_needs_no_escaping(monkeypatch: pytest.MonkeyPatch) -> None:
    """A safe value asked again is answered from the set of values seen (the regex is not
    run again); an unsafe one is escaped every time; the set is bounded."""
    from evserver import log as log_module
    assert escape(b"GET / HTTP/1.1") == b"GET / HTTP/1.1"
    assert b"GET / HTTP/1.1" in log_module._SAFE
    assert escape(b'a"b') == b"a\\x22b" and escape(b'a"b') == b"a\\x22b"
    assert b'a"b' not in log_module._SAFE
    assert escape(b"x" * 1025) == b"x" * 1025 and b"x" * 1025 not in log_module._SAFE
    monkeypatch.setattr(log_module, "_UNSAFE", None)  # any search would now fail
    assert escape(b"GET / HTTP/1.1") == b"GET / HTTP/1.1"
    monkeypatch.undo()
    monkeypatch.setattr(log_module, "_SAFE_MAX", 3)
    for i in range(10):
        assert escape(b"v%d" % i) == b"v%d" % i
        assert 1 <= len(log_module._SAFE) <= 3


# -- the other formats -----------------------------------------------------------------------

def test_common_line_is_the_ncsa_format() -> None:
    """--log-format common: the combined line without referer, user agent and duration."""
    line = common_line("203.0.113.7", WHEN, b"GET / HTTP/1.1", 304, 0, b"r", b"ua", 0.5)
    assert line == b'203.0.113.7 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 304 0\n'


def test_json_line_has_every_field() -> None:
    """--log-format json: one object per line with typed fields and an ISO 8601 time."""
    line = json_line("::1", WHEN, b"GET /a%20b?x=1 HTTP/1.1", 200, 1234, b"http://r/",
                     b"curl/8.0", 0.01234)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "time": "2000-10-10T13:55:36Z", "client": "::1", "user": "",
        "request": "GET /a%20b?x=1 HTTP/1.1",
        "method": "GET", "target": "/a%20b?x=1", "protocol": "HTTP/1.1", "status": 200,
        "bytes": 1234, "referer": "http://r/", "user_agent": "curl/8.0", "duration": 0.012}


@pytest.mark.parametrize("hostile", [b'/"}, "status": 999, "x": "', b"/\\\"\n{}", b"/\xff\x00"])
def test_json_line_cannot_be_forged(hostile: bytes) -> None:
    """Quotes, backslashes, newlines and non-ASCII in a request stay inside their string:
    the line parses, with the true status, and the escaped text."""
    line = json_line("10.0.0.1", WHEN, b"GET " + hostile + b" HTTP/1.1", 404, 0,
                     hostile, None, 0.0)
    record = json.loads(line)
    assert record["status"] == 404
    assert record["request"] == escape(b"GET " + hostile + b" HTTP/1.1").decode()
    assert record["referer"] == escape(hostile).decode() and line.count(b"\n") == 1


def test_json_line_of_a_request_without_a_line() -> None:
    """A request that never sent a whole line (a 408) has empty strings, not a crash."""
    record = json.loads(json_line("127.0.0.1", WHEN, b"", 408, 0, None, None, 10.0))
    assert (record["request"], record["method"], record["status"]) == ("", "", 408)


# -- the parts a combined line is joined from -------------------------------------------

def formatted_line(peer: str, when: float, request_line: bytes, status: int, body_bytes: int,
                   referer: bytes | None, user_agent: bytes | None, duration: float) -> bytes:
    """The combined line as one format makes it: what access_line must give, part by part."""
    return b'%s - - %s "%s" %d %d "%s" "%s" %.3f\n' % (
        peer.encode("ascii", "replace"), time_field(when),
        escape(request_line) if request_line else b"-", status, body_bytes,
        escape(referer) if referer else b"-", escape(user_agent) if user_agent else b"-",
        duration)


def time_field(when: float) -> bytes:
    return time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(int(when))).encode()


optional_bytes = st.none() | st.binary(max_size=40) | st.sampled_from([b"", b"curl/8.0"])


@settings(max_examples=300)
@given(peer=st.sampled_from(["127.0.0.1", "::1", "203.0.113.7", "é"]),
       when=st.floats(min_value=0, max_value=4e9),
       request_line=st.binary(max_size=40) | st.sampled_from([b"", b"GET / HTTP/1.1"]),
       status=st.sampled_from([HTTPStatus.OK, 200, 304, 404, 500]),
       body_bytes=st.integers(0, 10**12), referer=optional_bytes, user_agent=optional_bytes,
       duration=st.sampled_from([0.0, 0.0005, 0.0015, 1.5, 3600.0]) | st.floats(0, 1e6))
def test_a_line_from_remembered_parts_is_the_formatted_line(
        peer: str, when: float, request_line: bytes, status: int, body_bytes: int,
        referer: bytes | None, user_agent: bytes | None, duration: float) -> None:
    """The first time (its parts rendered) and the second (its parts remembered), byte for
    byte the line one format string makes; durations are never negative."""
    fields = (peer, when, request_line, status, body_bytes, referer, user_agent, duration)
    expected = formatted_line(*fields)
    assert access_line(*fields) == expected
    assert access_line(*fields) == expected


def test_parts_are_remembered_bounded_and_only_when_short() -> None:
    line = b"GET /index.html HTTP/1.1"
    access_line("192.0.2.1", WHEN, line, 200, 5, None, b"curl/8.0", 0.0)
    assert list(log_module._PREFIXES) == ["192.0.2.1"]
    assert list(log_module._MIDDLES) == [(line, 200, 5, None, b"curl/8.0")]
    long_agent = b"a" * log_module._PART_BYTES
    access_line("192.0.2.1", WHEN, line, 200, 5, None, long_agent, 0.0)
    assert len(log_module._MIDDLES) == 1  # its part is longer than a part may be
    for n in range(log_module._PARTS_MAX):
        access_line(f"192.0.2.{n}", WHEN, line, 200, n, None, None, 0.0)
    assert 0 < len(log_module._PREFIXES) <= log_module._PARTS_MAX
    assert 0 < len(log_module._MIDDLES) <= log_module._PARTS_MAX
    assert access_line("192.0.2.9", WHEN, line, 200, 9, None, None, 0.25) == formatted_line(
        "192.0.2.9", WHEN, line, 200, 9, None, None, 0.25)


# -- the user who logged in (%u) ----------------------------------------------------------

def test_the_user_who_logged_in_is_the_third_field() -> None:
    """--auth: the name a login succeeded with fills the user field of the combined and
    common lines and the JSON's "user"; without one, `-` (and "")."""
    fields = ("203.0.113.7", WHEN, b"GET /private/ HTTP/1.1", 200, 5, None, None, 0.0)
    assert access_line(*fields, b"alice").startswith(
        b'203.0.113.7 - alice [10/Oct/2000:13:55:36 +0000] "GET /private/ HTTP/1.1" 200 5 ')
    assert common_line(*fields, b"alice") == (
        b'203.0.113.7 - alice [10/Oct/2000:13:55:36 +0000] "GET /private/ HTTP/1.1" 200 5\n')
    assert json.loads(json_line(*fields, b"alice"))["user"] == "alice"
    assert access_line(*fields, None) == access_line(*fields)
    assert access_line(*fields).startswith(b"203.0.113.7 - - [")
    assert common_line(*fields).startswith(b"203.0.113.7 - - [")
    assert json.loads(json_line(*fields))["user"] == ""


@pytest.mark.parametrize(("name", "field"), [
    (b"alice", b"alice"),
    (b"john doe", b"john\\x20doe"),  # the field is unquoted: a space would end it
    (b'a"b\\c', b"a\\x22b\\x5Cc"),
    (b"tab\there\r\n", b"tab\\x09here\\x0D\\x0A"),
    ("Zoë".encode(), b"Zo\\xC3\\xAB"),
    (b"-", b"\\x2D"),  # `-` means nobody logged in: a user called `-` is not mistaken for it
    (b"", b'""'),  # as Apache writes an empty name
    (b"a-b_c.d@e", b"a-b_c.d@e"),
])
def test_user_field_is_one_printable_token(name: bytes, field: bytes) -> None:
    """The user field is escaped like the others (`\\xHH`), spaces too, so a reader that
    splits the line at spaces (stats, and any CLF parser) still finds every field."""
    assert user_field(name) == field
    assert all(0x21 <= c <= 0x7e for c in field) and b'"' not in field.strip(b'"')


@pytest.mark.parametrize("name", [b"john doe", b'x" 200 0 "-" "-" 0.000\n1.2.3.4 - evil',
                                  b"\\\"", b"-", b"", "Zoë".encode()])
@pytest.mark.parametrize("line_format", [access_line, common_line, json_line])
def test_a_line_with_any_user_still_parses(name: bytes, line_format: LineFormat) -> None:
    """Whatever the user's name, the stats parser reads the line whole: its request and
    status are the true ones, and it stays one line."""
    line = line_format("192.0.2.1", WHEN, b"GET /x HTTP/1.1", 401, 3, b"r", b"ua", 0.25, name)
    assert line.count(b"\n") == 1 and all(0x20 <= c <= 0x7e for c in line[:-1])
    entry = parse_line(line.decode("ascii"))
    assert entry is not None, line
    assert (entry.client, entry.request, entry.status, entry.bytes) == (
        "192.0.2.1", "GET /x HTTP/1.1", 401, 3)


@pytest.mark.parametrize(("count", "words"), [(0, "0 connections"), (1, "1 connection"),
                                              (2, "2 connections"), (11, "11 connections")])
def test_plural(count: int, words: str) -> None:
    assert plural(count, "connection") == words


@pytest.mark.parametrize("name, expected", [("combined", access_line), ("common", common_line),
                                            ("json", json_line)])
def test_record_writes_the_chosen_format(tmp_path: Path, name: str, expected: object) -> None:
    """AccessLog.open(path, format).record(...) writes the line that format makes."""
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path), name)
    fields = ("192.0.2.1", WHEN, b"GET /x HTTP/1.1", 200, 7, None, b"ua", 0.001)
    log.record(*fields)
    log.record(*fields, b"alice")
    log.close()
    assert callable(expected)
    assert path.read_bytes() == expected(*fields) + expected(*fields, b"alice")
    assert b"alice" in path.read_bytes().splitlines()[1]


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_verbose_console_lines_are_coloured_only_on_a_terminal(tty: bool) -> None:
    """--verbose: a short line per request on the console (even with no log file),
    the status in colour (red for 5xx, yellow for 4xx, green for 2xx) only on a terminal."""
    console = FakeTerminal(tty)
    log = AccessLog.open(None, "combined", console)
    log.record("192.0.2.1", WHEN, b"GET /ok HTTP/1.1", 200, 2048, None, None, 0.002)
    log.record("192.0.2.1", WHEN, b"GET /nope HTTP/1.1", 404, 10, None, None, 0.0)
    log.record("192.0.2.1", WHEN, b"GET /bug HTTP/1.1", 500, 10, None, None, 0.0)
    log.close()
    lines = console.getvalue().splitlines()
    assert len(lines) == 3
    assert "192.0.2.1 GET /ok HTTP/1.1" in lines[0] and "2.0 KiB" in lines[0]
    if tty:
        assert "\x1b[32m200\x1b[0m" in lines[0] and "\x1b[33m404" in lines[1]
        assert "\x1b[31m500" in lines[2]
    else:
        assert "\x1b" not in console.getvalue() and " 404 " in lines[1]


@pytest.mark.parametrize("environ", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_verbose_console_lines_are_plain_when_the_terminal_says_so(
        monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    """NO_COLOR (https://no-color.org) or TERM=dumb: no colour, even on a terminal."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    console = FakeTerminal(True)
    log = AccessLog.open(None, "combined", console)
    log.record("192.0.2.1", WHEN, b"GET /nope HTTP/1.1", 404, 10, None, None, 0.0)
    log.close()
    assert " 404 " in console.getvalue() and "\x1b" not in console.getvalue()


# -- AccessLog ------------------------------------------------------------------------------
#
# These drive the writer's flush cycles by hand (`flush_interval=None`: no thread, the test
# calls `flush_cycle()`), so each cycle happens exactly where the test says, with no sleep.
# One test runs the real writer thread, and waits on its writes rather than on the clock.


def manual(path: Path) -> AccessLog:
    """An AccessLog on `path` without a writer thread: the test runs the flush cycles."""
    return AccessLog.open(str(path), flush_interval=None)


def test_access_log_writes_every_line_in_order(tmp_path: Path) -> None:
    """10,000 lines, flushed in batches while more keep coming, are all in the file, in
    order: each cycle writes exactly what was queued before it, and close() the rest."""
    path = tmp_path / "access.log"
    log = manual(path)
    expected = [b"line %05d\n" % i for i in range(10_000)]
    for i, line in enumerate(expected):
        log.write(line)
        if i % 2000 == 1999:
            log.flush_cycle()
            assert path.read_bytes() == b"".join(expected[:i + 1])
    log.write(b"last\n")
    log.close()
    assert path.read_bytes() == b"".join(expected) + b"last\n"


def test_access_log_appends(tmp_path: Path) -> None:
    """An existing log is appended to, not truncated."""
    path = tmp_path / "access.log"
    path.write_bytes(b"old\n")
    log = manual(path)
    log.write(b"new\n")
    log.close()
    assert path.read_bytes() == b"old\nnew\n"


def test_access_log_flushes_without_close(tmp_path: Path) -> None:
    """A flush cycle puts the queued lines in the file while the log stays open; lines
    queued after it wait for the next cycle."""
    path = tmp_path / "access.log"
    log = manual(path)
    try:
        log.write(b"early\n")
        assert path.read_bytes() == b""
        log.flush_cycle()
        assert path.read_bytes() == b"early\n"
        log.write(b"later\n")
        assert path.read_bytes() == b"early\n"
        log.flush_cycle()
        assert path.read_bytes() == b"early\nlater\n"
    finally:
        log.close()


class SignallingRaw(io.RawIOBase):
    """A file that records what is written to it and signals each write."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.wrote = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        view = memoryview(b)  # type: ignore[arg-type]
        self.data += view
        self.wrote.set()
        return len(view)


def test_writer_thread_flushes_while_lines_keep_coming() -> None:
    """The production path: the writer thread, on its own, writes lines queued from
    another thread while the log stays open, batch after batch, in order."""
    raw = SignallingRaw()
    log = AccessLog(raw)  # type: ignore[arg-type]  # the default interval, a real thread
    expected = [b"line %05d\n" % i for i in range(10_000)]
    try:
        assert log._thread.is_alive()
        for start in range(0, len(expected), 5000):
            raw.wrote.clear()
            for line in expected[start:start + 5000]:
                log.write(line)
            assert raw.wrote.wait(10), "the writer thread wrote nothing"
    finally:
        log.close()
    assert bytes(raw.data) == b"".join(expected)


def test_access_log_none_writes_nothing() -> None:
    """AccessLog.open(None) keeps nothing and starts no writer thread."""
    before = {t.name for t in threading.enumerate()}
    log = AccessLog.open(None)
    for _ in range(100):
        log.write(b"x\n")
    assert len(log._lines) == 0
    assert not log._thread.is_alive()
    log.close()
    assert "evserver-log" not in {t.name for t in threading.enumerate()} - before


def test_access_log_dash_is_stdout() -> None:
    """`-` writes to standard output and does not close it."""
    code = ("from evserver.log import AccessLog\n"
            "log = AccessLog.open('-')\n"
            "for i in range(3): log.write(b'line %d\\n' % i)\n"
            "log.close()\n"
            "print('still open', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"line 0\nline 1\nline 2\nstill open\n"
    assert proc.stderr == b""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_access_log_full_disk_reported_once(evlog: ListHandler) -> None:
    """Writing to a full disk logs one error through `evserver` and never raises, however
    many cycles fail."""
    log = AccessLog.open("/dev/full", flush_interval=None)
    for i in range(3):
        log.write(b"line %d\n" % i)
        log.flush_cycle()
    log.close()
    errors = [r for r in evlog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "access log" in errors[0].getMessage()
    assert "No space" in errors[0].getMessage() or str(errno.ENOSPC) in errors[0].getMessage()


class FlakyRaw(io.RawIOBase):
    """A file that fails its first `failures` writes with ENOSPC, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.data = bytearray()
        self.attempts = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        view = memoryview(b)  # type: ignore[arg-type]
        self.data += view
        return len(view)


class ShortRaw(FlakyRaw):
    """Accepts at most 7 bytes per write, as a raw file may."""

    def write(self, b: object) -> int:
        view = memoryview(b)[:7]  # type: ignore[arg-type]
        return super().write(view)


def test_access_log_keeps_lines_through_transient_error(evlog: ListHandler) -> None:
    """After a failed write the lines are retried: each written exactly once, in order."""
    raw = FlakyRaw(failures=2)
    log = AccessLog(io.BufferedWriter(raw), flush_interval=None)
    log.write(b"one\n")
    log.flush_cycle()
    assert (raw.attempts, bytes(raw.data)) == (1, b"")
    log.write(b"two\n")
    log.flush_cycle()
    assert (raw.attempts, bytes(raw.data)) == (2, b"")
    log.write(b"three\n")
    log.close()
    assert bytes(raw.data) == b"one\ntwo\nthree\n"
    assert len([r for r in evlog.records if r.levelno >= logging.ERROR]) == 1


def test_access_log_raw_file_short_and_failed_writes() -> None:
    """With an unbuffered file, short writes are completed and nothing is duplicated."""
    raw = FlakyRaw(failures=1)
    log = AccessLog(raw, flush_interval=None)  # type: ignore[arg-type]
    log.write(b"alpha\n")
    log.flush_cycle()
    assert (raw.attempts, bytes(raw.data)) == (1, b"")
    log.write(b"beta\n")
    log.close()
    assert bytes(raw.data) == b"alpha\nbeta\n"
    short = ShortRaw(failures=0)
    log = AccessLog(short, flush_interval=None)  # type: ignore[arg-type]
    lines = [b"a fairly long line number %d\n" % i for i in range(50)]
    for line in lines:
        log.write(line)
    log.flush_cycle()
    assert bytes(short.data) == b"".join(lines)
    log.close()
    assert bytes(short.data) == b"".join(lines)


def test_access_log_write_never_raises(evlog: ListHandler) -> None:
    """A file object whose every write raises does not disturb the caller, and is
    reported once over many failed cycles."""
    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            raise OSError(errno.EIO, "I/O error")

    log = AccessLog(Broken(), flush_interval=None)  # type: ignore[arg-type]
    for _ in range(10):
        log.write(b"x\n")
        log.flush_cycle()
    log.close()
    errors = [r for r in evlog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "I/O error" in errors[0].getMessage()


# -- setup_logging --------------------------------------------------------------------------

@pytest.fixture
def restore_evserver_logger() -> Iterator[None]:
    logger = logging.getLogger("evserver")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def test_setup_logging_reaches_stderr(capsys: pytest.CaptureFixture[str],
                                      restore_evserver_logger: None) -> None:
    """Messages go through the queue to stderr; debug messages only in debug mode."""
    listener = setup_logging()
    try:
        logger = logging.getLogger("evserver")
        logger.info("hello %s", "world")
        logger.debug("not shown")
        logging.getLogger("evserver.access").warning("child too")
    finally:
        listener.stop()
    err = capsys.readouterr().err
    assert "evserver: hello world" in err
    assert "child too" in err
    assert "not shown" not in err
    listener = setup_logging(debug=True)
    try:
        logging.getLogger("evserver").debug("now shown")
    finally:
        listener.stop()
    assert "evserver: now shown" in capsys.readouterr().err


def test_setup_logging_uses_queue_handler(restore_evserver_logger: None) -> None:
    """The logger itself only has a QueueHandler: the caller's thread never writes."""
    import logging.handlers
    listener = setup_logging()
    try:
        logger = logging.getLogger("evserver")
        assert [type(h) for h in logger.handlers] == [logging.handlers.QueueHandler]
        assert logger.propagate is False
    finally:
        listener.stop()


def test_setup_logging_in_process() -> None:
    """In a fresh process a message logged after setup_logging appears on stderr."""
    code = ("import logging\n"
            "from evserver.log import setup_logging\n"
            "listener = setup_logging()\n"
            "logging.getLogger('evserver').error('disk on fire')\n"
            "listener.stop()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          timeout=10)
    assert proc.returncode == 0
    assert proc.stderr == b"evserver: disk on fire\n"
    assert proc.stdout == b""


def test_access_log_reopen_after_rotation_loses_no_line(tmp_path: Path) -> None:
    """logrotate renames the file, then SIGHUP: lines flushed before go to the old file,
    lines flushed after to the new one, and every line lands in exactly one of them."""
    path = tmp_path / "access.log"
    access = manual(path)
    access.write(b"one\n")
    access.flush_cycle()
    assert path.read_bytes() == b"one\n"
    os.rename(path, tmp_path / "access.log.1")
    access.write(b"two\n")  # queued before the reopen, flushed after it
    access.reopen()
    access.flush_cycle()
    assert path.read_bytes() == b"two\n"
    access.write(b"three\n")
    access.close()
    assert (tmp_path / "access.log.1").read_bytes() == b"one\n"
    assert path.read_bytes() == b"two\nthree\n"


def test_access_log_reopen_without_a_rename_keeps_the_file(tmp_path: Path) -> None:
    """A SIGHUP with nothing rotated reopens the same path: lines go on in that file."""
    path = tmp_path / "access.log"
    access = manual(path)
    access.write(b"one\n")
    access.reopen()
    access.flush_cycle()
    access.write(b"two\n")
    access.close()
    assert path.read_bytes() == b"one\ntwo\n"


def test_access_log_removed_is_reported_once_and_recreated(tmp_path: Path,
                                                           evlog: ListHandler) -> None:
    """A log file deleted under a running server is recreated at the next cycle, once,
    and the lines go on."""
    path = tmp_path / "access.log"
    access = manual(path)
    access.write(b"one\n")
    access.flush_cycle()
    assert path.read_bytes() == b"one\n"
    path.unlink()
    access.flush_cycle()
    assert path.exists()
    access.write(b"two\n")
    access.flush_cycle()
    access.flush_cycle()
    access.close()
    assert path.read_bytes() == b"two\n"
    moved = [r for r in evlog.records if "moved or removed" in r.getMessage()]
    assert len(moved) == 1


def test_access_log_reopen_failure_reported_once(tmp_path: Path, evlog: ListHandler) -> None:
    """When the log's directory is gone, the failure is reported once and serving goes on."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "access.log"
    access = manual(path)
    path.unlink()
    folder.rmdir()
    for _ in range(5):  # several flush cycles, each trying to reopen
        access.flush_cycle()
    access.write(b"lost\n")
    access.close()
    errors = [r for r in evlog.records if "cannot reopen" in r.getMessage()]
    assert len(errors) == 1
