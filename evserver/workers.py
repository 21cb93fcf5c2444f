"""`--workers N`: N server processes on one port (SO_REUSEPORT) under a small supervisor.

Owns: `supervise()`, `reserve_port()`, `STOP_SIGNALS`, `ended()`. Imports `config`, `board`.
The supervisor forks before any thread exists, forwards SIGTERM/SIGINT/SIGHUP to its workers,
starts a new worker when one dies (saying how it ended), and exits once all have stopped. A
worker starts with those signals blocked; its `serve` unblocks them once it handles them.
Each worker is a whole evserver (loop, pool, log writer); they share the access log file,
which every worker appends to in whole batches (one write() each, O_APPEND), so lines never
interleave.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

from .board import Board, Seat
from .config import Config

log = logging.getLogger("evserver")

_FAST_DEATH = 1.0  # a worker that dies sooner than this is restarted after a pause
_STARTUP_FAILURE = 2  # a worker's exit status for a bad start (port, log): give up
# Blocked in a new worker until its own handlers are in place (`serve` unblocks them): a
# stop sent meanwhile then waits for the worker to drain, instead of killing it unstarted.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def reserve_port(cfg: Config) -> socket.socket:
    """Bind (without listening) a SO_REUSEPORT socket on the configured address: it tells a
    port in use before any fork, names the port when 0 was asked, and keeps the port ours
    while workers restart. Raises OSError."""
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((cfg.host, cfg.port))
    except BaseException:
        sock.close()
        raise
    return sock


Serve = Callable[[Config, Callable[[], None], Seat | None], int]


def supervise(cfg: Config, reservation: socket.socket, serve: Serve,
              on_ready: Callable[[], None]) -> int:
    """Run `serve(cfg, ready, seat)` in `cfg.workers` forked processes until a stop signal;
    `on_ready()` runs once every first worker called `ready()` (is listening). With the
    status page or the metrics on, each worker has a seat on a shared board (a restarted
    worker takes the seat of the one it replaces). Returns the exit status: 0 when every
    worker stopped cleanly."""
    cfg = replace(cfg, port=reservation.getsockname()[1], reuse_port=True)
    ready_r, ready_w = os.pipe()  # each worker writes a byte once it listens
    board = Board(cfg.workers) if cfg.status_path or cfg.metrics_path else None
    children: dict[int, tuple[float, int]] = {}  # pid -> (start time, slot)
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def start_worker(slot: int) -> None:
        pid = _fork(cfg, serve, ready_w, Seat(board, slot) if board is not None else None)
        children[pid] = (time.monotonic(), slot)
        if stopping:  # the stop came while it was being forked, before it was on the list
            os.kill(pid, signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    for slot in range(cfg.workers):
        start_worker(slot)
    _await_ready(ready_r, cfg.workers)
    os.close(ready_r)
    on_ready()  # the banner: a client told the URL now finds a listener
    status = 0
    while children:
        try:
            pid, wait_status = os.wait()  # PEP 475: retried after a forwarding handler
        except ChildProcessError:
            break
        child = children.pop(pid, None)
        if child is None:
            continue
        started, slot = child
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:
            status = status or (0 if code == 0 else 1)
            continue
        if code == _STARTUP_FAILURE and time.monotonic() - started < 10:
            forward(signal.SIGTERM, None)  # it said why on stderr; the others go too
            status = _STARTUP_FAILURE
            continue
        log.warning("worker %d %s: starting another", pid, ended(wait_status))
        if time.monotonic() - started < _FAST_DEATH:
            time.sleep(_FAST_DEATH)  # no restart storm when workers die at once
        if not stopping:
            start_worker(slot)
    reservation.close()
    os.close(ready_w)
    return status


def ended(wait_status: int) -> str:
    """How a process ended, from its wait status, in words: `was killed by SIGKILL` (and
    `(core dumped)` if it did), or `exited with status 3`."""
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            name = signal.Signals(number).name
        except ValueError:  # a real-time signal has no name of its own
            name = f"signal {number}"
        return f"was killed by {name}" + (" (core dumped)" if os.WCOREDUMP(wait_status) else "")
    return f"exited with status {os.waitstatus_to_exitcode(wait_status)}"


def _await_ready(ready_r: int, workers: int, timeout: float = 10.0) -> None:
    """Wait for `workers` readiness bytes; a worker that fails at start sends none, and its
    exit is handled by the supervisor's wait loop after the timeout."""
    deadline = time.monotonic() + timeout
    got = 0
    while got < workers:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([ready_r], [], [], left)[0]:
            return
        data = os.read(ready_r, workers - got)
        if not data:
            return
        got += len(data)


def _fork(cfg: Config, serve: Serve, ready_w: int, seat: Seat | None) -> int:
    """Fork a worker, the stop signals blocked across the fork: the worker starts with them
    blocked, and `serve` unblocks them once its handlers are in place."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        return pid
    # The worker: the supervisor's handlers and stack are not ours.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    code = 1

    def ready() -> None:
        try:
            os.write(ready_w, b"!")
        except OSError:
            pass  # the supervisor stopped listening for it: a restart after start-up

    try:
        code = serve(cfg, ready, seat)
    except BaseException:
        log.exception("worker failed")
    finally:
        logging.shutdown()
        os._exit(code)
