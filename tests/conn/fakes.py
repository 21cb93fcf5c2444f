"""Fakes for driving `evserver.connection.Connection` without a network or a real loop.

`FakeSocket` plays the client's socket (scripted recv results, a send window the test
opens and closes, a record of every byte sent), `FakeLoop` the parts of `Loop` a connection
uses (a manual clock, timers the test fires by advancing it, a call_soon queue the test
runs one turn at a time, pool jobs the test completes), and `FakeOwner` the server (a real
`Config`, a real `FileCache`, an access-log recorder, a `forget` recorder).

A `Journal` shared by the socket and the loop records the order of unregister/close/shutdown.
"""
from __future__ import annotations

import errno
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from evserver.auth import Credentials, FailureLimiter
from evserver.cache import FileCache
from evserver.config import Config
from evserver.live import LiveReload
from evserver.log import access_line
from evserver.loop import READ, WRITE
from evserver.metrics import Counters, TimedCounters
from evserver.site import Site

Journal = list[tuple[Any, ...]]


def _bad_fd() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


# -- the socket ---------------------------------------------------------------------------


class FakeSocket:
    """A non-blocking client socket with scripted input and a controllable send window.

    recv: pops `feed()`-ed items; bytes are returned (split if larger than the request),
    `b""` is EOF, an exception instance is raised; an empty script raises BlockingIOError.
    send/sendmsg/sendfile: accept at most `send_limit` bytes per call and, while `window`
    is not None, at most `window` bytes in all before raising BlockingIOError; `fail_send`
    makes the next write raise that error. Every operation on a closed socket raises EBADF.
    """

    def __init__(self, journal: Journal | None = None, fd: int = 4242) -> None:
        self.journal: Journal = journal if journal is not None else []
        self._fd = fd
        self.script: deque[bytes | BaseException] = deque()
        self.recv_calls = 0
        self.sent = bytearray()
        self.writes: list[tuple[str, int]] = []  # (kind, bytes accepted) per successful call
        self.send_views: list[Any] = []  # the objects passed to send()/sendmsg()
        self.send_limit: int | None = None
        self.window: int | None = None
        self.fail_send: OSError | None = None
        self.sendfile_calls: list[tuple[int, int, int]] = []  # (offset, count, accepted)
        self.shut: list[int] = []
        self.fail_shutdown: OSError | None = None
        self.sockopts: list[tuple[int, int, int]] = []
        self.closed = False

    # scripting
    def feed(self, *items: bytes | BaseException) -> None:
        self.script.extend(items)

    def block(self) -> None:
        """The client stops reading: nothing more is accepted until `unblock()`."""
        self.window = 0

    def unblock(self, n: int | None = None) -> None:
        """Let `n` more bytes through (None: no limit at all)."""
        self.window = None if n is None else (self.window or 0) + n

    def _check_open(self) -> None:
        if self.closed:
            raise _bad_fd()

    def _accept(self, wanted: int) -> int:
        """How many of `wanted` bytes one write call takes; raises like a real socket."""
        self._check_open()
        if self.fail_send is not None:
            err, self.fail_send = self.fail_send, None
            raise err
        n = wanted
        if self.send_limit is not None:
            n = min(n, self.send_limit)
        if self.window is not None:
            n = min(n, self.window)
        if n == 0 and wanted:
            raise BlockingIOError(errno.EAGAIN, "fake send window closed")
        if self.window is not None:
            self.window -= n
        return n

    # the socket API Connection uses
    def fileno(self) -> int:
        return -1 if self.closed else self._fd

    def recv(self, size: int, flags: int = 0) -> bytes:
        self.recv_calls += 1  # counted even when closed: any recv after close is a bug
        self._check_open()
        if not self.script:
            raise BlockingIOError(errno.EAGAIN, "nothing to read")
        if flags & socket.MSG_PEEK:
            first = self.script[0]
            if isinstance(first, BaseException):
                raise first
            return first[:size]
        item = self.script.popleft()
        if isinstance(item, BaseException):
            raise item
        if len(item) > size:
            self.script.appendleft(item[size:])
            item = item[:size]
        return item

    def send(self, data: Any) -> int:
        self.send_views.append(data)
        view = memoryview(data).cast("B")
        n = self._accept(len(view))
        self.sent += view[:n]
        self.writes.append(("send", n))
        return n

    def sendmsg(self, buffers: Iterable[Any], *_: Any) -> int:
        views = [memoryview(b).cast("B") for b in buffers]
        self.send_views.append(list(buffers))
        n = self._accept(sum(len(v) for v in views))
        left = n
        for v in views:
            take = min(left, len(v))
            self.sent += v[:take]
            left -= take
        self.writes.append(("sendmsg", n))
        return n

    def sendfile(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        """Stands in for os.sendfile: copies from the real file with os.pread."""
        assert out_fd == self._fd, "sendfile to another socket"
        n = self._accept(count)
        data = os.pread(in_fd, n, offset)
        self.sent += data
        self.sendfile_calls.append((offset, count, len(data)))
        self.writes.append(("sendfile", len(data)))
        return len(data)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._check_open()
        self.sockopts.append((level, option, value))

    def shutdown(self, how: int) -> None:
        self._check_open()
        if self.fail_shutdown is not None:
            raise self.fail_shutdown
        self.shut.append(how)
        self.journal.append(("shutdown", self, how))

    def close(self) -> None:
        self.journal.append(("close", self))
        self.closed = True


# -- the loop -------------------------------------------------------------------------------


class FakeTimer:
    """A `call_at` handle: `.when`, `.cancel()`; fired by `FakeLoop.advance`."""

    def __init__(self, when: float, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def live(self) -> bool:
        return not self.cancelled and not self.fired


class FakeJob:
    """A `submit()`ted job; the test decides when and how it completes."""

    def __init__(self, loop: FakeLoop, fn: Callable[..., Any], args: tuple[Any, ...],
                 on_done: Callable[[Future[Any]], object]) -> None:
        self.loop = loop
        self.fn = fn
        self.args = args
        self.on_done = on_done
        self.future: Future[Any] = Future()
        self.delivered = False

    def run(self) -> Future[Any]:
        """Run the job for real (as a worker would), then hand it to the loop."""
        try:
            result = self.fn(*self.args)
        except BaseException as err:  # noqa: BLE001 - a worker stores any exception
            self.future.set_exception(err)
        else:
            self.future.set_result(result)
        self.deliver()
        return self.future

    def compute(self) -> Any:
        """Run the job for real but do not deliver it yet; returns its result."""
        result = self.fn(*self.args)
        self.future.set_result(result)
        return result

    def fail(self, err: BaseException) -> None:
        self.future.set_exception(err)
        self.deliver()

    def deliver(self) -> None:
        """The loop's `_job_done`: count the job finished, then call `on_done`."""
        assert self.future.done() and not self.delivered
        self.delivered = True
        self.loop.pending_jobs -= 1
        self.on_done(self.future)


class FakeLoop:
    """The parts of `evserver.loop.Loop` a Connection uses, under the test's control.

    register/modify/unregister behave like `selectors`: registering twice, modifying or
    unregistering an unregistered socket raise KeyError, a zero mask raises ValueError.
    """

    def __init__(self, journal: Journal | None = None, now: float = 1000.0) -> None:
        self.journal: Journal = journal if journal is not None else []
        self.now = now
        self.keys: dict[Any, tuple[int, Any]] = {}
        self.history: list[tuple[str, int]] = []  # (op, mask)
        self.soon: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self.timers: list[FakeTimer] = []
        self.jobs: list[FakeJob] = []
        self.pending_jobs = 0
        self.pool_closed = False  # submit() then raises RuntimeError, as a shut-down pool does

    def time(self) -> float:
        return self.now

    @property
    def wall(self) -> float:
        return time.time()

    # selector
    def register(self, sock: Any, mask: int, handler: Any) -> None:
        if sock in self.keys:
            raise KeyError(f"{sock!r} is already registered")
        if not mask or mask & ~(READ | WRITE):
            raise ValueError(f"invalid events: {mask!r}")
        if getattr(sock, "closed", False):
            raise ValueError("register of a closed socket")
        self.keys[sock] = (mask, handler)
        self.history.append(("register", mask))
        self.journal.append(("register", sock, mask))

    def modify(self, sock: Any, mask: int, handler: Any) -> None:
        if sock not in self.keys:
            raise KeyError(f"{sock!r} is not registered")
        if not mask or mask & ~(READ | WRITE):
            raise ValueError(f"invalid events: {mask!r}")
        self.keys[sock] = (mask, handler)
        self.history.append(("modify", mask))
        self.journal.append(("modify", sock, mask))

    def unregister(self, sock: Any) -> None:
        if sock not in self.keys:
            raise KeyError(f"{sock!r} is not registered")
        del self.keys[sock]
        self.history.append(("unregister", 0))
        self.journal.append(("unregister", sock))

    def mask(self, sock: Any) -> int:
        """The interest currently registered for `sock` (0: not registered)."""
        return self.keys[sock][0] if sock in self.keys else 0

    # callbacks
    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self.soon.append((fn, args))

    def run_soon(self) -> int:
        """One loop turn of callbacks: only those queued when it starts; returns how many."""
        n = len(self.soon)
        for _ in range(n):
            fn, args = self.soon.popleft()
            fn(*args)
        return n

    # timers
    def call_at(self, when: float, fn: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(when, fn, args)
        self.timers.append(timer)
        return timer

    def live_timers(self) -> list[FakeTimer]:
        return [t for t in self.timers if t.live]

    def advance(self, seconds: float) -> None:
        """Move the clock and fire every timer due by then, in order of `when`."""
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        while True:
            due = [t for t in self.timers if t.live and t.when <= when]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.now = max(self.now, timer.when)
            timer.fired = True
            timer.fn(*timer.args)
        self.now = max(self.now, when)

    # the pool
    def submit(self, fn: Callable[..., Any], *args: Any,
               on_done: Callable[[Future[Any]], object]) -> Future[Any]:
        if self.pool_closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        job = FakeJob(self, fn, args, on_done)
        self.jobs.append(job)
        self.pending_jobs += 1
        return job.future

    def undelivered(self) -> list[FakeJob]:
        return [j for j in self.jobs if not j.delivered]


# -- the server -----------------------------------------------------------------------------


class FakeAccessLog:
    """Records access lines (`AccessLog.record`), in the combined format."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def record(self, *fields: Any) -> None:
        self.lines.append(access_line(*fields))


# Distinct values, so a test can tell which deadline applies.
TEST_CONFIG = dict(header_timeout=5.0, keepalive_timeout=7.0, send_timeout=11.0,
                   linger_timeout=2.0, cache_max_entry=4096, sendfile_chunk=10_000,
                   cache_ttl=1.0, threads=1,
                   cache_max_open=0)  # large files stream from their own fd; see test_open_files


class FakeOwner:
    """What a Connection needs from its Server (`connection.Owner`): a real Config, Site and
    FileCache; the log, the registry and the snapshot recorded."""

    def __init__(self, docroot: Path, loop: FakeLoop, **overrides: Any) -> None:
        cfg = Config(host="127.0.0.1", port=0, docroot=str(docroot), access_log=None)
        self.cfg = cfg = replace(cfg, **{**TEST_CONFIG, **overrides})
        self.loop = loop
        self.cache = FileCache(cfg.cache_max_bytes, cfg.cache_max_entries, cfg.cache_ttl,
                               cfg.cache_max_open, cfg.compress_cache_bytes)
        self.access_log = FakeAccessLog()
        credentials = (Credentials(cfg.auth, cfg.auth_file)
                       if cfg.auth or cfg.auth_file else None)
        self.site = Site.build(cfg, os.path.realpath(docroot), credentials=credentials)
        self.draining = False
        self.live = LiveReload(cfg.live_reload_max) if cfg.live_reload else None
        self.login_failures = FailureLimiter()
        self.counters = (TimedCounters() if cfg.status_path or cfg.metrics_path
                         else Counters())  # as the server chooses
        self.forgotten: list[Any] = []
        self.idle_changes: list[bool] = []  # on_idle() calls, in order

    def forget(self, conn: Any) -> None:
        self.forgotten.append(conn)

    def snapshot(self, asking: object = None) -> dict[str, object]:
        self.snapshot_asked_by = asking
        return self.counters.snapshot()

    def on_idle(self, conn: Any, idle: bool) -> None:
        self.idle_changes.append(idle)


# -- helpers --------------------------------------------------------------------------------


def is_closed_fd(fd: int) -> bool:
    """True if `fd` is not an open descriptor (os.fstat fails with EBADF)."""
    try:
        os.fstat(fd)
    except OSError as err:
        return err.errno == errno.EBADF
    return False


SHUT_WR = socket.SHUT_WR


# -- TLS, faked -------------------------------------------------------------------------------


class FakeTLSSocket(FakeSocket):
    """The `SSLSocket` a `FakeTLSContext` wraps a FakeSocket into: it carries the plaintext
    (scripted like a FakeSocket), `pending()` says how many decrypted bytes OpenSSL holds,
    and `do_handshake()` raises the scripted `handshake` errors first, one per call."""

    def __init__(self, journal: Journal | None = None, fd: int = 4242) -> None:
        super().__init__(journal, fd)
        self.handshake: deque[BaseException] = deque()
        self.pending_bytes = 0

    def do_handshake(self) -> None:
        if self.handshake:
            raise self.handshake.popleft()

    def pending(self) -> int:
        return self.pending_bytes


class FakeTLSContext:
    """An `ssl.SSLContext` whose `wrap_socket` hands back a prepared FakeTLSSocket."""

    def __init__(self, wrapped: FakeTLSSocket) -> None:
        self.wrapped = wrapped
        self.wrapped_from: list[Any] = []

    def wrap_socket(self, sock: Any, **kwargs: Any) -> FakeTLSSocket:
        self.wrapped_from.append((sock, kwargs))
        return self.wrapped


class KernelTLSSocket(FakeTLSSocket, socket.socket):
    """A FakeTLSSocket that also is a real socket (one end of a socketpair), for the peek
    below the TLS layer (`socket.socket.recv(sock, 1, MSG_PEEK)`): it sees what the test
    writes to `peer`. `release()` closes both ends."""

    def __init__(self, journal: Journal | None = None) -> None:
        mine, self.peer = socket.socketpair()
        socket.socket.__init__(self, mine.family, mine.type, mine.proto, mine.detach())
        self.setblocking(False)
        FakeTLSSocket.__init__(self, journal)

    def release(self) -> None:
        socket.socket.close(self)
        self.peer.close()
