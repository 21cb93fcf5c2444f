"""The event loop: one selector, a wakeup socketpair, a ready deque, a timer heap, a pool.

Owns: `Loop`, `Handler`, `TimerHandle`. Imports nothing from evserver and knows no HTTP.
Only the thread running `run()` touches the selector and the sockets; other threads reach
the loop through `call_soon_threadsafe()` alone.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import select
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")
log = logging.getLogger("evserver")

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
_MAX_SELECT_TIMEOUT = 1.0
# Events taken per tick at most: level-triggered, the rest come at the next tick (nginx takes
# 512). It also bounds what each wait allocates, however many connections are open.
_MAX_EVENTS = 1024
# epoll's event bits (the Linux ABI), which the loop reads whatever the platform: other
# selectors' events are turned into these.
_IN, _OUT = 0x001, 0x004
_SLOW_CALLBACK = 0.1  # seconds; asyncio's slow_callback_duration, reported in debug mode
_PURGE_MIN_TIMERS = 100


class Selectable(Protocol):
    """What the selector watches: a socket, or any object with a descriptor (inotify's)."""

    def fileno(self) -> int: ...


class Handler(Protocol):
    def on_event(self, mask: int) -> None: ...


class TimerHandle:
    """A call scheduled at a monotonic time; cancelled handles stay in the heap until popped."""

    __slots__ = ("when", "fn", "args", "cancelled", "_loop")

    def __init__(self, when: float, fn: Callable[..., object], args: tuple[object, ...],
                 loop: Loop) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self._loop = loop

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._loop._timer_cancelled()


def _bits_of(mask: int) -> int:
    """epoll's event bits for a selectors mask."""
    return (_IN if mask & READ else 0) | (_OUT if mask & WRITE else 0)


def _epoll_of(selector: selectors.BaseSelector) -> select.epoll | None:
    """The epoll instance behind `selector`, through a duplicate of the descriptor that
    `EpollSelector.fileno()` documents; None for any other kind of selector.

    Sockets are registered through the selector, which keeps checking them, but the loop
    reads the events from epoll itself: selectors' `select()` does a Python method call, a
    tuple and a list append per ready descriptor, as much work as the loop's own dispatch.
    The duplicate names the same instance, so each sees what the other registers."""
    epoll_selector = getattr(selectors, "EpollSelector", None)
    if epoll_selector is None or not isinstance(selector, epoll_selector):
        return None
    return select.epoll.fromfd(os.dup(selector.fileno()))


class Loop:
    """A level-triggered selector loop with timers and a thread-pool bridge."""

    def __init__(self, threads: int = 4, *, clock: Callable[[], float] = time.monotonic,
                 debug: bool = False) -> None:
        self.time = clock
        # The clocks as of this tick, read once after each select (as nginx caches its
        # time): connections read these instead of calling a clock several times a request.
        self.now = clock()  # monotonic: deadlines, durations, cache ages
        self.wall = time.time()  # wall clock: Date headers and the access log
        self.debug = debug
        self._selector = selectors.DefaultSelector()
        self._ready: deque[tuple[Callable[..., object], tuple[object, ...]]] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._running = False
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="evserver-io")
        self.pending_jobs = 0  # submitted and not yet completed on the loop (nginx max_queue)
        # Both ends non-blocking: a full buffer means a wakeup is already pending (asyncio).
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wakeup_pending = False
        # fd -> (handler, events registered, the epoll bits of exactly those events); None is
        # the wakeup socket's handler.
        self._handlers: dict[int, tuple[Handler | None, int, int]] = {}
        self._epoll = _epoll_of(self._selector)
        self._selector.register(self._wake_r, READ, None)
        self._handlers[self._wake_r.fileno()] = (None, READ, _IN)

    # -- selector -----------------------------------------------------------------------

    def register(self, sock: Selectable, mask: int, handler: Handler) -> None:
        key = self._selector.register(sock, mask, handler)
        self._handlers[key.fd] = (handler, mask, _bits_of(mask))

    def modify(self, sock: socket.socket, mask: int, handler: Handler) -> None:
        key = self._selector.modify(sock, mask, handler)
        self._handlers[key.fd] = (handler, mask, _bits_of(mask))

    def unregister(self, sock: Selectable) -> None:
        key = self._selector.unregister(sock)
        del self._handlers[key.fd]

    def _wait(self, timeout: float) -> list[tuple[int, int]]:
        """(fd, epoll event bits) of the descriptors ready within `timeout` seconds."""
        if self._epoll is not None:
            try:
                # Rounded up to whole milliseconds, as selectors does: at least `timeout`.
                return self._epoll.poll(math.ceil(timeout * 1e3) * 1e-3, _MAX_EVENTS)
            except InterruptedError:
                return []
        return [(key.fd, _bits_of(mask)) for key, mask in self._selector.select(timeout)]

    # -- callbacks and timers -------------------------------------------------------------

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        self._ready.append((fn, args))

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: object) -> None:
        """Queue `fn` from any thread and wake the loop; the byte is only a doorbell."""
        self._ready.append((fn, args))
        if self._wakeup_pending:
            return  # coalesced: the loop clears the flag before it drains the deque
        self._wakeup_pending = True
        self._write_wakeup()

    def _write_wakeup(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # BlockingIOError: a wakeup is pending anyway; other: closed at shutdown

    def call_at(self, when: float, fn: Callable[..., object], *args: object) -> TimerHandle:
        handle = TimerHandle(when, fn, args, self)
        heapq.heappush(self._timers, (when, next(self._timer_seq), handle))
        return handle

    def call_later(self, delay: float, fn: Callable[..., object], *args: object) -> TimerHandle:
        return self.call_at(self.time() + delay, fn, *args)

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        n = len(self._timers)
        if n > _PURGE_MIN_TIMERS and self._cancelled_timers * 2 > n:
            # asyncio's rule: rebuild the heap once most of it is dead weight. In place:
            # a timer callback may cancel others while `_tick` holds this very list, and a
            # new list would leave `_tick` popping (and counting) entries of a stale copy.
            self._timers[:] = [t for t in self._timers if not t[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled_timers = 0

    # -- the pool ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., T], *args: object,
               on_done: Callable[[Future[T]], object]) -> Future[T]:
        """Run `fn(*args)` in the pool; `on_done(future)` then runs on the loop thread.

        Raises RuntimeError once the pool is shut down.
        """
        future = self._executor.submit(fn, *args)
        self.pending_jobs += 1

        def done(f: Future[T]) -> None:
            # Runs in a worker (or here, if already done); exceptions here would be swallowed
            # by concurrent.futures, so it only hands the future to the loop.
            self.call_soon_threadsafe(self._job_done, on_done, f)

        future.add_done_callback(done)
        return future

    def _job_done(self, on_done: Callable[[Future[T]], object], future: Future[T]) -> None:
        self.pending_jobs -= 1
        on_done(future)

    @property
    def queued_jobs(self) -> int:
        """Jobs waiting for a free worker: a measure of pool saturation."""
        return self._executor._work_queue.qsize()

    # -- running ------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop()`; each tick: select, dispatch events, fire timers, run callbacks."""
        self._running = True
        old_wakeup_fd = self._install_signal_wakeup()
        try:
            while self._running:
                self._tick()
        finally:
            if old_wakeup_fd is not None:
                signal.set_wakeup_fd(old_wakeup_fd)

    def stop(self) -> None:
        self._running = False

    def _install_signal_wakeup(self) -> int | None:
        # A signal then writes a byte to the socketpair, so select() returns at once instead
        # of PEP 475 retrying it until the next timeout.
        try:
            return signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        except ValueError:
            return None  # not the main thread (tests run loops in threads)

    def _tick(self) -> None:
        if self._ready:
            timeout = 0.0
        elif self._timers:
            timeout = min(max(0.0, self._timers[0][0] - self.time()), _MAX_SELECT_TIMEOUT)
        else:
            timeout = _MAX_SELECT_TIMEOUT
        events = self._wait(timeout)
        self.now = now = self.time()
        self.wall = time.time()
        handlers = self._handlers
        for fd, bits in events:
            entry = handlers.get(fd)
            if entry is None:
                continue  # unregistered by a handler earlier in this tick
            handler, wanted, wanted_bits = entry
            if bits == wanted_bits:
                mask = wanted  # the usual event: just what was asked for
            else:  # as selectors reports them: an error or hang-up is readable and writable
                mask = ((READ if bits & ~_OUT else 0) | (WRITE if bits & ~_IN else 0)) & wanted
            if handler is None:
                self._drain_wakeup()
            elif self.debug:
                self._run_handler(handler.on_event, (mask,))
            else:
                try:
                    handler.on_event(mask)
                except Exception:  # as in _run_handler, without its per-call overhead
                    log.exception("unhandled error in %r", handler)
        timers = self._timers
        while timers and timers[0][0] <= now:
            handle = heapq.heappop(timers)[2]
            if handle.cancelled:
                self._cancelled_timers -= 1
            else:
                handle.cancelled = True  # fired: a late cancel() must not count it again
                self._run_handler(handle.fn, handle.args)
        # Only what was ready when this step began, so a callback that re-queues itself
        # cannot starve the selector (asyncio's ntodo).
        for _ in range(len(self._ready)):
            fn, args = self._ready.popleft()
            self._run_handler(fn, args)

    def _drain_wakeup(self) -> None:
        # Order matters: drain the socket, then clear the flag; the deque is drained after.
        # A completion that saw the flag still set is then in the deque before we read it.
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        self._wakeup_pending = False

    def _run_handler(self, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        start = self.time() if self.debug else 0.0
        try:
            fn(*args)
        except Exception:
            # One failing connection must never take the loop down with it.
            log.exception("unhandled error in %r", fn)
        if self.debug and self.time() - start > _SLOW_CALLBACK:
            log.warning("slow callback %r took %.3f s", fn, self.time() - start)

    def close(self, *, wait: bool = True) -> list[tuple[Callable[..., object], tuple[object, ...]]]:
        """Shut the pool down (cancelling queued jobs) and return callbacks still queued.

        The caller runs those leftovers so that late results can release their resources.
        """
        self._executor.shutdown(wait=wait, cancel_futures=True)
        leftovers = list(self._ready)
        self._ready.clear()
        if self._epoll is not None:
            self._epoll.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        return leftovers
