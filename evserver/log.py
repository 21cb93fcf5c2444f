"""Logging that never blocks the loop: diagnostics through a queue, access lines in batches.

Owns: `setup_logging()`, `AccessLog`, the line formats (`access_line()` is the default,
`FORMATS` all of them), `escape()`, `user_field()`, the words of counts (`plural()`,
`human_size()`), and whether a stream takes colour (`colour_allowed()`). Imports nothing from
evserver.
The loop thread only appends to in-memory queues; threads of this module do the writing.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import BinaryIO, Protocol, TextIO, TypeVar

log = logging.getLogger("evserver")

_UNSAFE = re.compile(rb'[^\x20-\x7e]|["\\]')
# Values escape() found nothing to escape in. Browsers send the same request lines and user
# agents again and again, and a Request from http11's memo of heads hands over the same
# objects, whose hashes are then already known: a set lookup instead of a regex search.
_SAFE: set[bytes] = set()
_SAFE_MAX = 1024  # values kept; when full it starts again
_SAFE_BYTES = 1024  # longer values are not kept: at most 1 MiB
_UNSAFE_USER = re.compile(rb'[^\x21-\x7e]|["\\]')  # the same and a space: the field is unquoted
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")
_FLUSH_INTERVAL = 0.1  # seconds between batched writes of the access log


def setup_logging(debug: bool = False) -> logging.handlers.QueueListener:
    """Route the `evserver` logger to stderr through a queue; returns the listener to stop."""
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, _stderr_handler())
    log.handlers[:] = [logging.handlers.QueueHandler(q)]
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    listener.start()
    return listener


def setup_direct_logging() -> None:
    """The `evserver` logger straight to stderr, with no thread: for the --workers
    supervisor, which must hold no thread when it forks, and runs no event loop."""
    log.handlers[:] = [_stderr_handler()]
    log.setLevel(logging.INFO)
    log.propagate = False


def _stderr_handler() -> logging.Handler:
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("evserver: %(message)s"))
    return stderr


def escape(value: bytes) -> bytes:
    """Printable ASCII stays; anything else, `"` and `\\` become `\\xHH` (as nginx does),
    so no client can forge a field or a line in the log."""
    if value in _SAFE:  # seen before and safe: a request line or user agent sent again
        return value
    if _UNSAFE.search(value) is None:
        if len(value) <= _SAFE_BYTES:
            if len(_SAFE) >= _SAFE_MAX:
                _SAFE.clear()
            _SAFE.add(value)
        return value
    return _UNSAFE.sub(lambda m: b"\\x%02X" % m.group()[0], value)


def user_field(user: bytes) -> bytes:
    """The user field (`%u`) of a Common or Combined line for the name a login succeeded
    with: escaped as `escape()` does, and a space too (`\\x20`), since the field is not
    quoted and readers split it off at a space (nginx leaves $remote_user's spaces alone, and
    such a line no longer parses). A name that is `-` is written `\\x2D`, so that `-` always
    means that nobody logged in; an empty one `""`, as Apache writes it."""
    if user == b"-":
        return b"\\x2D"
    if not user:
        return b'""'
    if _UNSAFE_USER.search(user) is None:
        return user
    return _UNSAFE_USER.sub(lambda m: b"\\x%02X" % m.group()[0], user)


def plural(count: int, noun: str) -> str:
    """`1 connection`, `0 connections`, `2 connections`: a count and its noun, which takes
    an `s` unless the count is one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Stream(Protocol):
    """Where a person reads us (stderr, the --verbose console): only whether it is a terminal
    counts."""

    def isatty(self) -> bool: ...


def colour_allowed(stream: Stream | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` takes colour escapes: a terminal, NO_COLOR unset or empty
    (https://no-color.org), and TERM not `dumb`. `environ` defaults to os.environ."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb" or stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class _LogTime:
    """`[10/Oct/2000:13:55:36 +0000]`, formatted once per second."""

    __slots__ = ("second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = b""

    def at(self, now: float) -> bytes:
        second = int(now)
        if second != self.second:
            t = time.gmtime(second)
            self.second = second
            self.text = b"[%02d/%s/%04d:%02d:%02d:%02d +0000]" % (
                t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
        return self.text


class _IsoTime(_LogTime):
    """`2000-10-10T13:55:36Z`, formatted once per second."""

    __slots__ = ()

    def at(self, now: float) -> bytes:
        second = int(now)
        if second != self.second:
            self.second = second
            self.text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
        return self.text


_log_time = _LogTime()
_iso_time = _IsoTime()

# (peer, wall-clock time, request line, status, body bytes, referer, user agent, seconds,
# the user a login succeeded with or None), the last optional
LineFormat = Callable[[str, float, bytes, int, int, "bytes | None", "bytes | None", float,
                       "bytes | None"], bytes]


def access_line(peer: str, when: float, request_line: bytes, status: int, body_bytes: int,
                referer: bytes | None, user_agent: bytes | None, duration: float,
                user: bytes | None = None) -> bytes:
    """Combined Log Format plus the request's duration in seconds (nginx $request_time).
    `user`: the name a login succeeded with (`-` without one, see `user_field`)."""
    if user is not None:
        return b'%s - %s %s "%s" %d %d "%s" "%s" %.3f\n' % (
            peer.encode("ascii", "replace"), user_field(user), _log_time.at(when),
            escape(request_line) if request_line else b"-", status, body_bytes,
            escape(referer) if referer else b"-", escape(user_agent) if user_agent else b"-",
            duration)
    # Nobody logged in (the hot path): the line is joined from parts rendered before, as
    # formatting nine fields costs more than all the rest of the line's making.
    prefix = _PREFIXES.get(peer)
    if prefix is None:
        prefix = _remember(_PREFIXES, peer, b"%s - - " % peer.encode("ascii", "replace"))
    key = (request_line, status, body_bytes, referer, user_agent)
    middle = _MIDDLES.get(key)
    if middle is None:
        middle = _remember(_MIDDLES, key, b' "%s" %d %d "%s" "%s" ' % (
            escape(request_line) if request_line else b"-", status, body_bytes,
            escape(referer) if referer else b"-", escape(user_agent) if user_agent else b"-"))
    # Answered within the tick that read it, a request took no time by the loop's clock.
    return b"".join((prefix, _log_time.at(when), middle,
                     b"0.000\n" if duration == 0.0 else b"%.3f\n" % duration))


# The parts of combined lines that repeat: each client's address (`peer - - `), and from the
# request line to the user agent (` "GET / HTTP/1.1" 200 1024 "-" "curl/8.5.0" `), which is
# the same for a client that asks again for what it asked before, as browsers and load
# testers do. Both bounded: at most _PARTS_MAX parts of at most _PART_BYTES each (the
# values a key holds are no longer than its escaped part), and each starts again when full.
_PREFIXES: dict[str, bytes] = {}
_MIDDLES: dict[tuple[bytes, int, int, bytes | None, bytes | None], bytes] = {}
_PARTS_MAX = 1024
_PART_BYTES = 1024
_Key = TypeVar("_Key")


def _remember(parts: dict[_Key, bytes], key: _Key, part: bytes) -> bytes:
    if len(part) <= _PART_BYTES:
        if len(parts) >= _PARTS_MAX:
            parts.clear()
        parts[key] = part
    return part


def common_line(peer: str, when: float, request_line: bytes, status: int, body_bytes: int,
                referer: bytes | None, user_agent: bytes | None, duration: float,
                user: bytes | None = None) -> bytes:
    """The Common Log Format (NCSA): no referer, user agent or duration."""
    return b'%s - %s %s "%s" %d %d\n' % (
        peer.encode("ascii", "replace"), b"-" if user is None else user_field(user),
        _log_time.at(when), escape(request_line) if request_line else b"-", status, body_bytes)


def json_line(peer: str, when: float, request_line: bytes, status: int, body_bytes: int,
              referer: bytes | None, user_agent: bytes | None, duration: float,
              user: bytes | None = None) -> bytes:
    """One JSON object per line. Strings hold the same text as in the other formats (escaped
    to printable ASCII without `"`), whose `\\` JSON then needs doubled; "" when there is
    none (the user too: nobody logged in)."""
    parts = request_line.split(b" ") if request_line else []
    method, target, protocol = parts if len(parts) == 3 else (b"", b"", b"")
    return (b'{"time": "%s", "client": "%s", "user": "%s", "request": "%s", "method": "%s", '
            b'"target": "%s", "protocol": "%s", "status": %d, "bytes": %d, "referer": "%s", '
            b'"user_agent": "%s", "duration": %.3f}\n' % (
                _iso_time.at(when), peer.encode("ascii", "replace"), _json_text(user or b""),
                _json_text(request_line), _json_text(method), _json_text(target),
                _json_text(protocol), status, body_bytes, _json_text(referer or b""),
                _json_text(user_agent or b""), duration))


def _json_text(value: bytes) -> bytes:
    return escape(value).replace(b"\\", b"\\\\")


FORMATS: dict[str, LineFormat] = {"combined": access_line, "common": common_line,
                                  "json": json_line}


class AccessLog:
    """Lines appended by the loop, written in batches by a thread; `close()` flushes all.

    A write error is reported once on stderr and serving goes on; lines are kept for
    the next attempt until the queue grows past `max_backlog`.

    The writer thread runs `flush_cycle()` every `flush_interval` seconds. With
    `flush_interval=None` there is no thread: the owner (a test) runs the cycles itself,
    and `close()` still writes whatever is left.
    """

    def __init__(self, out: BinaryIO | None, max_backlog: int = 100_000,
                 path: str | None = None, line_format: LineFormat = access_line,
                 console: TextIO | None = None,
                 flush_interval: float | None = _FLUSH_INTERVAL) -> None:
        self._out = out
        self.format = line_format
        # --verbose: a short line per request on the console, written by the same thread.
        self._console = console
        self._colour = colour_allowed(console)
        self._shown: deque[tuple[float, str, bytes, int, int, float]] = deque()
        self._path = path  # reopened on SIGHUP, or when it was moved or removed
        self._reopen_requested = False
        self._reopen_failed = False
        self._lines: deque[bytes] = deque()
        self._max_backlog = max_backlog
        self.written = 0  # lines written (by the writer thread; read for the metrics)
        self.dropped = 0  # lines lost: the log could not be written for too long
        self._interval = flush_interval
        self._stop = threading.Event()
        self._closed = False
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="evserver-log", daemon=True)
        if (out is not None or console is not None) and flush_interval is not None:
            self._thread.start()

    @classmethod
    def open(cls, path: str | None, log_format: str = "combined",
             console: TextIO | None = None,
             flush_interval: float | None = _FLUSH_INTERVAL) -> AccessLog:
        """`-` is standard output, None no log at all; raises OSError if unwritable.
        `console` (--verbose) also gets a short line per request."""
        line_format = FORMATS[log_format]
        if path is None:
            return cls(None, line_format=line_format, console=console,
                       flush_interval=flush_interval)
        if path == "-":
            return cls(sys.stdout.buffer, line_format=line_format, console=console,
                       flush_interval=flush_interval)
        # Unbuffered: each batch is one write() already, and a failed write leaves no
        # bytes behind in a buffer to fail again (and be reported again) at close().
        return cls(open(path, "ab", buffering=0), path=path, line_format=line_format,
                   console=console, flush_interval=flush_interval)

    def write(self, line: bytes) -> None:
        if self._out is not None:
            self._lines.append(line)  # deque.append is atomic: no lock on the loop thread

    def record(self, peer: str, when: float, request_line: bytes, status: int,
               body_bytes: int, referer: bytes | None, user_agent: bytes | None,
               duration: float, user: bytes | None = None) -> None:
        """Log one answered request in the configured format (on the loop thread); `user`
        is the name its login succeeded with, None when it had none."""
        if self._out is not None:
            self._lines.append(self.format(peer, when, request_line, status, body_bytes,
                                           referer, user_agent, duration, user))
        if self._console is not None:
            self._shown.append((when, peer, request_line, status, body_bytes, duration))

    def reopen(self) -> None:
        """Reopen the file at the next flush (SIGHUP, after logrotate); signal-safe."""
        self._reopen_requested = True

    def _run(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            self.flush_cycle()
        self._flush()
        self._show()

    def flush_cycle(self) -> None:
        """One round of the writer: reopen the file if asked to (SIGHUP) or if it was
        moved or removed, write the lines queued so far, show the console lines."""
        # Reopen before flushing: lines written to a deleted file would be lost.
        if self._path is not None:
            if self._reopen_requested:
                self._reopen_file(self._path)
            elif self._moved():
                log.warning("access log %s was moved or removed: reopening it", self._path)
                self._reopen_file(self._path)
        self._flush()
        self._show()

    def _show(self) -> None:
        """The --verbose console lines: time, client, request, status (coloured on a
        terminal), size and duration."""
        shown = self._shown
        if not shown or self._console is None:
            return
        lines = []
        for _ in range(len(shown)):
            when, peer, request_line, status, body_bytes, duration = shown.popleft()
            text = escape(request_line).decode("ascii") if request_line else "-"
            status_text = str(status)
            if self._colour:
                status_text = f"\x1b[{_STATUS_COLOURS.get(status // 100, 0)}m{status}\x1b[0m"
            lines.append(f"{time.strftime('%H:%M:%S', time.localtime(when))} {peer} {text} "
                         f"{status_text} {human_size(body_bytes)} {duration * 1000:.0f} ms\n")
        try:
            self._console.write("".join(lines))
            self._console.flush()
        except (OSError, ValueError):
            self._console = None  # the terminal went away: stop showing, keep logging

    def _moved(self) -> bool:
        """True when our path no longer names the file we write (renamed or deleted)."""
        assert self._path is not None and self._out is not None
        try:
            named = os.stat(self._path)
            ours = os.fstat(self._out.fileno())
        except FileNotFoundError:
            return True
        except (OSError, ValueError):
            return False
        return (named.st_ino, named.st_dev) != (ours.st_ino, ours.st_dev)

    def _reopen_file(self, path: str) -> None:
        self._reopen_requested = False
        try:
            new = open(path, "ab", buffering=0)
        except OSError as err:
            if not self._reopen_failed:
                log.error("cannot reopen the access log %s: %s", path, err)
                self._reopen_failed = True
            return
        if self._reopen_failed:
            log.warning("access log %s reopened", path)
        self._reopen_failed = False
        old, self._out = self._out, new
        try:
            if old is not None:
                old.close()
        except OSError:
            pass

    def _flush(self) -> None:
        lines = self._lines
        if not lines or self._out is None:
            return
        data = b"".join([lines.popleft() for _ in range(len(lines))])
        pending = memoryview(data)
        try:
            while pending:
                pending = pending[self._out.write(pending):]  # a raw file may write part
            self._out.flush()
            self._failed = False
            self.written += data.count(b"\n")
        except (OSError, ValueError) as err:
            if not self._failed:
                log.error("cannot write the access log: %s", err)
                self._failed = True
            # Requeue only what the file did not take: bytes a buffered writer accepted
            # are retried by its own next flush, and requeueing them too wrote them twice.
            unsent = pending.tobytes().count(b"\n")  # lines not (wholly) written
            self.written += data.count(b"\n") - unsent
            if pending and len(lines) < self._max_backlog:
                lines.appendleft(bytes(pending))
            else:
                self.dropped += unsent

    def close(self) -> None:
        """Stop the writer and flush every line written so far."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=10)
        else:  # no writer thread (nothing to write, or the owner runs the cycles)
            self._flush()
            self._show()
        if self._out is not None and self._out is not sys.stdout.buffer:
            try:
                self._out.close()
            except OSError as err:
                log.error("cannot close the access log: %s", err)


_STATUS_COLOURS = {2: 32, 3: 36, 4: 33, 5: 31}  # ANSI: green, cyan, yellow, red


def human_size(n: int) -> str:
    """A byte count in the short form a console line has room for."""
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
