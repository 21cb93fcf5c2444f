"""loop.py: timers on a fake clock, callbacks, the wakeup socketpair, the pool bridge, dispatch."""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from evserver import loop as loop_module
from evserver.loop import READ, WRITE, Loop
from tests.unit.conftest import ListHandler


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["epoll", "selectors"])
def loop(clock: FakeClock, request: pytest.FixtureRequest,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    """A loop reading events from epoll itself (Linux), and one reading them through the
    selector's select(), as on other platforms."""
    if request.param == "selectors":
        monkeypatch.setattr(loop_module, "_epoll_of", lambda selector: None)
    elif not hasattr(select, "epoll"):
        pytest.skip("epoll is Linux's")
    lp = Loop(2, clock=clock)
    assert (lp._epoll is None) == (request.param == "selectors")
    try:
        yield lp
    finally:
        lp.close()


def tick(loop: Loop) -> None:
    """One non-blocking step: a queued no-op makes select() poll instead of wait."""
    loop.call_soon(lambda: None)
    loop._tick()


class LoopThread:
    """A real-clock loop running in a thread."""

    def __init__(self, threads: int = 4) -> None:
        self.loop = Loop(threads)
        self.ident: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        started = threading.Event()
        self.loop.call_soon_threadsafe(started.set)
        assert started.wait(5), "loop did not start"

    def _run(self) -> None:
        self.ident = threading.get_ident()
        self.loop.run()

    def call(self, fn: Callable[[], object], timeout: float = 5.0) -> None:
        """Run fn on the loop and wait for it."""
        done = threading.Event()

        def wrapped() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(wrapped)
        assert done.wait(timeout), "loop did not run the callback"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        assert not self.thread.is_alive(), "run() did not return after stop()"
        self.loop.close()


@pytest.fixture
def running() -> Iterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        if lt.thread.is_alive():
            lt.stop()


# -- timers ---------------------------------------------------------------------------------

def test_timers_fire_in_time_order(loop: Loop, clock: FakeClock) -> None:
    """Timers scheduled out of order fire by deadline, and none before it."""
    fired: list[str] = []
    loop.call_at(clock.now + 3, fired.append, "c")
    loop.call_at(clock.now + 1, fired.append, "a")
    loop.call_later(2, fired.append, "b")
    tick(loop)
    assert fired == []
    clock.now += 1.5
    tick(loop)
    assert fired == ["a"]
    clock.now += 10
    tick(loop)
    assert fired == ["a", "b", "c"]
    assert loop._timers == []


def test_timers_same_deadline_fifo(loop: Loop, clock: FakeClock) -> None:
    """Timers with the same deadline fire in the order they were scheduled."""
    fired: list[int] = []
    for i in range(20):
        loop.call_at(clock.now + 1, fired.append, i)
    clock.now += 1  # exactly the deadline: due
    tick(loop)
    assert fired == list(range(20))


def test_timer_cancel(loop: Loop, clock: FakeClock) -> None:
    """A cancelled timer never fires; cancelling a fired one is harmless."""
    fired: list[str] = []
    keep = loop.call_later(1, fired.append, "keep")
    drop = loop.call_later(1, fired.append, "drop")
    drop.cancel()
    drop.cancel()
    clock.now += 2
    tick(loop)
    assert fired == ["keep"]
    keep.cancel()
    assert loop._cancelled_timers == 0


def test_select_timeout_follows_next_timer() -> None:
    """With a real clock, run() wakes for a short timer well before the 1 s select cap."""
    lt = LoopThread()
    try:
        fired = threading.Event()
        start = time.monotonic()
        lt.loop.call_soon_threadsafe(lt.loop.call_later, 0.05, fired.set)
        assert fired.wait(2)
        assert time.monotonic() - start < 0.5
    finally:
        lt.stop()


def test_cancelled_timers_purged(loop: Loop, clock: FakeClock) -> None:
    """More than half of over 100 timers cancelled: the heap is rebuilt without them."""
    handles = [loop.call_later(10 + i, lambda: None) for i in range(200)]
    for h in handles[:100]:
        h.cancel()
    assert len(loop._timers) == 200  # exactly half: not yet
    handles[100].cancel()
    assert len(loop._timers) == 99
    assert loop._cancelled_timers == 0
    assert all(not t[2].cancelled for t in loop._timers)


def test_small_heap_not_purged(loop: Loop) -> None:
    """With 100 timers or fewer, cancelled ones are left for lazy removal."""
    handles = [loop.call_later(10 + i, lambda: None) for i in range(100)]
    for h in handles:
        h.cancel()
    assert len(loop._timers) == 100


def test_purge_during_firing_keeps_heap_consistent(loop: Loop, clock: FakeClock) -> None:
    """A timer callback that triggers a purge: survivors fire once, bookkeeping stays exact."""
    fired: list[int] = []
    handles = [loop.call_at(clock.now + 2 + i / 1000, fired.append, i) for i in range(200)]

    def cancel_most() -> None:
        for h in handles[:150]:
            h.cancel()

    loop.call_at(clock.now + 1, cancel_most)
    clock.now += 5  # everything is due in one tick
    tick(loop)
    assert fired == list(range(150, 200))
    assert loop._timers == []
    assert loop._cancelled_timers == 0
    # and the purge rule still works afterwards
    later = [loop.call_later(100 + i, lambda: None) for i in range(200)]
    for h in later[:150]:
        h.cancel()
    assert len(loop._timers) <= 100


def test_timer_exception_logged_and_others_fire(loop: Loop, clock: FakeClock,
                                                evlog: ListHandler) -> None:
    """A failing timer is logged; the next timers and callbacks still run."""
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("timer failed")

    loop.call_later(1, boom)
    loop.call_later(1, fired.append, "after")
    loop.call_soon(fired.append, "soon")
    clock.now += 1
    loop._tick()
    assert fired == ["after", "soon"]
    errors = [r for r in evlog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


# -- callbacks ---------------------------------------------------------------------------

def test_call_soon_fifo(loop: Loop) -> None:
    """call_soon callbacks run in order with their arguments."""
    seen: list[tuple[object, ...]] = []
    for i in range(10):
        loop.call_soon(lambda *a: seen.append(a), i, str(i))
    loop._tick()
    assert seen == [(i, str(i)) for i in range(10)]


def test_requeueing_callback_does_not_starve(loop: Loop, clock: FakeClock) -> None:
    """Only callbacks ready when a tick starts run in it: timers and events still get in."""
    runs = 0
    log: list[str] = []

    def again() -> None:
        nonlocal runs
        runs += 1
        loop.call_soon(again)

    a, b = socket.socketpair()
    try:
        class H:
            def on_event(self, mask: int) -> None:
                log.append("event")
                a.recv(100)

        loop.register(a, READ, H())
        loop.call_soon(again)
        loop.call_later(1, log.append, "timer")
        loop._tick()
        assert runs == 1
        b.send(b"x")
        clock.now += 2
        loop._tick()
        assert runs == 2
        assert log == ["event", "timer"]
        loop.unregister(a)
    finally:
        a.close()
        b.close()


def test_callback_exception_logged_and_loop_goes_on(loop: Loop, evlog: ListHandler) -> None:
    """A failing callback is logged with its traceback; the following ones still run."""
    seen: list[int] = []

    def boom() -> None:
        raise ValueError("broken callback")

    loop.call_soon(seen.append, 1)
    loop.call_soon(boom)
    loop.call_soon(seen.append, 2)
    loop._tick()
    assert seen == [1, 2]
    assert [r.exc_info[0] for r in evlog.records if r.exc_info] == [ValueError]


def test_run_survives_exceptions(running: LoopThread, evlog: ListHandler) -> None:
    """In run(), an exception in a callback does not end the loop."""
    def boom() -> None:
        raise KeyError("x")

    for _ in range(3):
        running.loop.call_soon_threadsafe(boom)
    ok = threading.Event()
    running.loop.call_soon_threadsafe(ok.set)
    assert ok.wait(5)
    assert running.thread.is_alive()
    assert sum(1 for r in evlog.records if r.exc_info) == 3


def test_slow_callback_warned_in_debug(clock: FakeClock, evlog: ListHandler) -> None:
    """In debug mode a callback longer than 100 ms is reported."""
    lp = Loop(1, clock=clock, debug=True)
    try:
        def slow() -> None:
            clock.now += 0.25

        lp.call_soon(slow)
        lp.call_soon(lambda: None)
        lp._tick()
    finally:
        lp.close()
    warnings = [r for r in evlog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "slow callback" in warnings[0].getMessage()


# -- the wakeup socketpair ------------------------------------------------------------------

def test_wakeups_coalesced(loop: Loop) -> None:
    """Many call_soon_threadsafe calls before the loop runs write a single doorbell byte."""
    seen: list[int] = []
    for i in range(100):
        loop.call_soon_threadsafe(seen.append, i)
    assert loop._wake_r.recv(4096) == b"\0"
    with pytest.raises(BlockingIOError):
        loop._wake_r.recv(4096)
    loop._wake_w.send(b"\0")  # put the consumed doorbell back
    loop._tick()
    assert seen == list(range(100))
    loop.call_soon_threadsafe(seen.append, 100)  # flag cleared: a new byte
    assert loop._wake_r.recv(4096) == b"\0"


def test_threadsafe_from_many_threads(running: LoopThread) -> None:
    """1,000 callbacks from 8 threads all run, with no more doorbell bytes than callbacks."""
    loop = running.loop
    writes = 0
    original = loop._write_wakeup
    count_lock = threading.Lock()

    def counting_write() -> None:
        nonlocal writes
        with count_lock:
            writes += 1
        original()

    loop._write_wakeup = counting_write  # type: ignore[method-assign]
    done = threading.Event()
    seen: list[tuple[int, int]] = []
    total = 8 * 125

    def record(t: int, i: int) -> None:
        assert threading.get_ident() == running.ident
        seen.append((t, i))
        if len(seen) == total:
            done.set()

    barrier = threading.Barrier(8)

    def producer(t: int) -> None:
        barrier.wait()
        for i in range(125):
            loop.call_soon_threadsafe(record, t, i)

    producers = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    assert done.wait(5), f"only {len(seen)} of {total} callbacks ran"
    assert len(seen) == total
    for t in range(8):  # each thread's callbacks ran in its order
        assert [i for (tt, i) in seen if tt == t] == list(range(125))
    assert 1 <= writes <= total


def test_threadsafe_wakes_blocked_run_promptly(running: LoopThread) -> None:
    """A blocked run() (idle: 1 s select) wakes at once for call_soon_threadsafe."""
    for _ in range(3):
        time.sleep(0.05)  # let the loop go back to sleep in select()
        ran = threading.Event()
        start = time.monotonic()
        running.loop.call_soon_threadsafe(ran.set)
        assert ran.wait(2)
        assert time.monotonic() - start < 0.5  # without the doorbell: up to 1 s


def test_signal_wakes_run(evlog: ListHandler) -> None:
    """In the main thread a signal wakes select() at once (set_wakeup_fd), and run() restores
    the previous wakeup fd."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    lp = Loop(1)
    stopped_at: list[float] = []

    def on_signal(signum: int, frame: object) -> None:
        lp.stop()  # the handler only sets a flag, like __main__'s

    old_handler = signal.signal(signal.SIGUSR1, on_signal)
    old_fd = signal.set_wakeup_fd(-1)
    sent_at: list[float] = []

    def send() -> None:
        sent_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGUSR1)

    timer = threading.Timer(0.15, send)
    try:
        timer.start()
        lp.run()
        stopped_at.append(time.monotonic())
        assert signal.set_wakeup_fd(-1) == -1  # what run() found is put back
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, old_handler)
        signal.set_wakeup_fd(old_fd)
        lp.close()
    assert stopped_at[0] - sent_at[0] < 0.5


# -- the pool bridge --------------------------------------------------------------------------

def test_submit_runs_in_pool_and_returns_on_loop(loop: Loop) -> None:
    """fn runs in a pool thread; on_done runs on the loop's thread; pending_jobs counts."""
    gate = threading.Event()
    fn_threads: list[int] = []
    done_threads: list[int] = []
    results: list[int] = []

    def work(x: int) -> int:
        fn_threads.append(threading.get_ident())
        gate.wait(5)
        return x * 2

    def on_done(fut: Future[int]) -> None:
        done_threads.append(threading.get_ident())
        results.append(fut.result())

    futures = [loop.submit(work, i, on_done=on_done) for i in range(3)]
    assert loop.pending_jobs == 3
    gate.set()
    deadline = time.monotonic() + 5
    while len(results) < 3 and time.monotonic() < deadline:
        loop._tick()  # the loop runs here, in the test's thread
    assert sorted(results) == [0, 2, 4]
    assert loop.pending_jobs == 0
    assert all(f.done() for f in futures)
    me = threading.get_ident()
    assert done_threads == [me] * 3
    assert fn_threads and me not in fn_threads


def test_submit_exception_reaches_on_done(loop: Loop) -> None:
    """A job that raises still calls on_done (with the exception) and is uncounted."""
    outcomes: list[BaseException | None] = []

    def fail() -> None:
        raise OSError("disk")

    loop.submit(fail, on_done=lambda f: outcomes.append(f.exception()))
    deadline = time.monotonic() + 5
    while not outcomes and time.monotonic() < deadline:
        loop._tick()
    assert len(outcomes) == 1 and isinstance(outcomes[0], OSError)
    assert loop.pending_jobs == 0


def test_submit_on_running_loop(running: LoopThread) -> None:
    """With run() in a thread, on_done runs on that thread."""
    got = threading.Event()
    where: list[int] = []

    def on_done(fut: Future[int]) -> None:
        where.append(threading.get_ident())
        got.set()

    running.call(lambda: running.loop.submit(threading.get_ident, on_done=on_done))
    assert got.wait(5)
    assert where == [running.ident]


# -- stop and close ------------------------------------------------------------------------

def test_stop_ends_run() -> None:
    """stop() from a callback ends run() at once, even while idle timers are pending."""
    lt = LoopThread()
    lt.loop.call_soon_threadsafe(lt.loop.call_later, 60, lambda: None)
    start = time.monotonic()
    lt.loop.call_soon_threadsafe(lt.loop.stop)
    lt.thread.join(2)
    assert not lt.thread.is_alive()
    assert time.monotonic() - start < 0.5
    lt.loop.close()


def test_close_returns_leftovers(clock: FakeClock) -> None:
    """close() hands back callbacks still queued, in order."""
    lp = Loop(1, clock=clock)

    def f(*args: object) -> None:
        pass

    lp.call_soon(f, 1)
    lp.call_soon_threadsafe(f, 2)
    leftovers = lp.close()
    assert leftovers == [(f, (1,)), (f, (2,))]


def test_close_returns_late_results(clock: FakeClock) -> None:
    """A job running at close() finishes; its on_done comes back as a leftover to run."""
    lp = Loop(1, clock=clock)
    started = threading.Event()
    results: list[str] = []

    def work() -> str:
        started.set()
        time.sleep(0.1)
        return "late"

    lp.submit(work, on_done=lambda f: results.append(f.result()))
    assert started.wait(5)
    leftovers = lp.close()
    assert len(leftovers) == 1
    fn, args = leftovers[0]
    fn(*args)
    assert results == ["late"]


def test_after_close_threadsafe_does_not_raise(clock: FakeClock) -> None:
    """call_soon_threadsafe after close() (a late worker) is harmless; submit refuses."""
    lp = Loop(1, clock=clock)
    lp.close()
    lp.call_soon_threadsafe(lambda: None)  # flag clear: writes to the closed socket
    lp.call_soon_threadsafe(lambda: None)
    lp2 = Loop(1, clock=clock)
    lp2.call_soon_threadsafe(lambda: None)
    lp2.close()
    lp2.call_soon_threadsafe(lambda: None)  # flag still set from before close
    with pytest.raises(RuntimeError):
        lp.submit(lambda: None, on_done=lambda f: None)


# -- the selector ------------------------------------------------------------------------

class Recorder:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.masks: list[int] = []

    def on_event(self, mask: int) -> None:
        self.masks.append(mask)
        if mask & READ:
            self.sock.recv(4096)


def test_register_modify_unregister(loop: Loop) -> None:
    """Events reach the handler stored in the key, with the mask that is ready."""
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        ha, hc = Recorder(a), Recorder(c)
        loop.register(a, READ, ha)
        loop.register(c, READ, hc)
        tick(loop)
        assert ha.masks == [] and hc.masks == []
        b.send(b"ping")
        tick(loop)
        assert ha.masks == [READ] and hc.masks == []
        loop.modify(a, WRITE, ha)
        tick(loop)
        assert ha.masks == [READ, WRITE]
        b.send(b"more")
        ha.masks.clear()
        loop.modify(a, READ | WRITE, ha)
        tick(loop)
        assert ha.masks == [READ | WRITE]
        replacement = Recorder(a)
        loop.modify(a, WRITE, replacement)  # a new handler through the key
        tick(loop)
        assert replacement.masks == [WRITE] and ha.masks == [READ | WRITE]
        loop.unregister(a)
        d.send(b"x")
        b.send(b"ignored")
        tick(loop)
        assert replacement.masks == [WRITE]
        assert hc.masks == [READ]
        loop.unregister(c)
    finally:
        for s in (a, b, c, d):
            s.close()


def test_a_hang_up_is_readable_and_writable_within_what_was_registered(loop: Loop) -> None:
    """As selectors reports it: the peer gone, a READ handler sees READ (its recv then says
    so), a WRITE handler WRITE, and one registered for both, both."""
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        recorders = [Recorder(a) for a, _ in pairs]
        for (a, b), recorder, mask in zip(pairs, recorders, (READ, WRITE, READ | WRITE),
                                          strict=True):
            loop.register(a, mask, recorder)
            b.close()
        tick(loop)
        assert [r.masks for r in recorders] == [[READ], [WRITE], [READ | WRITE]]
        for a, _ in pairs:
            loop.unregister(a)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_handler_unregistered_earlier_in_the_tick_gets_no_event(loop: Loop) -> None:
    """Two sockets ready in one tick; whichever handler runs first unregisters the other."""
    (a, b), (c, d) = socket.socketpair(), socket.socketpair()
    seen: list[str] = []

    class Closer:
        def __init__(self, name: str, other: socket.socket) -> None:
            self.name, self.other = name, other

        def on_event(self, mask: int) -> None:
            seen.append(self.name)
            loop.unregister(self.other)

    try:
        loop.register(a, READ, Closer("a", c))
        loop.register(c, READ, Closer("c", a))
        b.send(b"x")
        d.send(b"x")
        tick(loop)
        assert seen in (["a"], ["c"])
    finally:
        for s in (a, b, c, d):
            s.close()


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's")
def test_a_tick_takes_a_bounded_number_of_events(clock: FakeClock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _MAX_EVENTS ready descriptors, the rest are taken at the next tick (epoll's
    buffer stays bounded however many connections are open)."""
    monkeypatch.setattr(loop_module, "_MAX_EVENTS", 2)
    loop = Loop(2, clock=clock)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        recorders = [Recorder(a) for a, _ in pairs]
        for (a, b), recorder in zip(pairs, recorders, strict=True):
            loop.register(a, READ, recorder)
            b.send(b"x")
        tick(loop)
        assert sum(len(r.masks) for r in recorders) == 2
        tick(loop)
        assert [r.masks for r in recorders] == [[READ]] * 3
        for a, _ in pairs:
            loop.unregister(a)
    finally:
        loop.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_handler_exception_logged(loop: Loop, evlog: ListHandler) -> None:
    """A handler that raises is logged; other handlers and callbacks still run."""
    a, b = socket.socketpair()
    try:
        class Bad:
            def on_event(self, mask: int) -> None:
                raise RuntimeError("handler failed")

        loop.register(a, WRITE, Bad())
        seen: list[int] = []
        loop.call_soon(seen.append, 1)
        loop._tick()
        loop._tick()
        assert seen == [1]
        errors = [r for r in evlog.records if r.exc_info]
        assert len(errors) == 2 and errors[0].exc_info is not None
        assert errors[0].exc_info[0] is RuntimeError
        loop.unregister(a)
    finally:
        a.close()
        b.close()
