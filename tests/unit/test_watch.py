"""evserver.watch: which URL a changed path stands for, bursts on a manual clock, inotify
(the real kernel's, and a pipe playing it for events hard to cause), the fallback to polling
and polling's bounded steps. Pool jobs run by hand on a FakeLoop; one test runs a real Loop.
Nothing sleeps: the kernel's events are waited for with select, bounded."""
from __future__ import annotations

import errno
import logging
import math
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evserver import watch as watch_mod
from evserver.loop import READ, Loop
from evserver.watch import (
    EVENT,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Burst,
    Scanned,
    served_change,
    watch,
)

# Every watcher closes its inotify fd (and a test its loop): the connection tests' check,
# an autouse fixture that applies here once imported.
from tests.conn.conftest import no_fd_leak  # noqa: F401
from tests.conn.fakes import FakeJob, FakeLoop, is_closed_fd
from tests.unit.conftest import ListHandler


def _inotify_works() -> bool:
    if sys.platform != "linux":
        return False
    try:
        os.close(watch_mod._inotify_init())
    except OSError:
        return False
    return True


needs_inotify = pytest.mark.skipif(
    not _inotify_works(),
    reason="inotify is not available here (not Linux, no inotify_init1 in libc, or no "
           "instance left under fs.inotify.max_user_instances)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small site: a page, a text, a stylesheet in a folder, and a .git beside them."""
    www = tmp_path / "www"
    (www / "css").mkdir(parents=True)
    (www / "index.html").write_text("<p>hi</p>")
    (www / "old.txt").write_text("old")
    (www / "css" / "site.css").write_text("p {}")
    (www / ".git").mkdir()
    (www / ".git" / "HEAD").write_text("ref: main")
    return Path(os.path.realpath(www))


class Rig:
    """A watcher on a FakeLoop; `calls` are its on_change calls."""

    def __init__(self, root: Path, **options: Any) -> None:
        self.loop = FakeLoop()
        self.calls: list[list[str]] = []
        self.watcher = watch(self.loop, str(root), self.calls.append,  # type: ignore[arg-type]
                             **options)

    def run_jobs(self) -> int:
        """Run every pool job, including those the results submit; how many ran."""
        ran = 0
        while self.loop.undelivered():
            self.loop.undelivered()[0].run()
            ran += 1
        return ran

    def only_job(self) -> FakeJob:
        jobs = self.loop.undelivered()
        assert len(jobs) == 1, jobs
        return jobs[0]

    @property
    def inotify_fd(self) -> int:
        (registered,) = self.loop.keys
        fd: int = registered.fileno()
        return fd

    def drain(self) -> None:
        """The kernel's events for what the test just did, handled as the loop would."""
        ready, _, _ = select.select([self.inotify_fd], [], [], 2.0)
        assert ready, "no inotify event within 2 s"
        (registered,) = self.loop.keys
        self.loop.keys[registered][1].on_event(READ)

    def burst(self) -> list[str]:
        """The call the quiet period then makes (exactly one)."""
        before = len(self.calls)
        self.loop.advance(0.1)
        assert len(self.calls) == before + 1, self.calls[before:]
        return self.calls[-1]


def watches(fd: int) -> int:
    """The watches an inotify fd holds, as the kernel lists them."""
    with open(f"/proc/self/fdinfo/{fd}") as info:
        return sum(line.startswith("inotify wd:") for line in info)


# -- served_change ------------------------------------------------------------------------------


@pytest.mark.parametrize(("root", "path", "url"), [
    ("/srv/www", "/srv/www/css/site.css", "/css/site.css"),
    ("/srv/www", "/srv/www/a/b/c/page.html", "/a/b/c/page.html"),
    ("/srv/www", "/srv/www", "/"),
    ("/srv/www/", "/srv/www", "/"),
    ("/srv/www", "/srv/www/", "/"),
    ("/", "/etc/hosts", "/etc/hosts"),
    ("/srv/www", "/srv/www/a b/é.html", "/a%20b/%C3%A9.html"),
    ("/srv/www", os.fsdecode(b"/srv/www/latin-\xe9.txt"), "/latin-%E9.txt"),
    ("/srv/www", "/srv/www/a..b/c", "/a..b/c"),
    ("/srv/www", "/srv/www/x/../y.css", "/y.css"),
    ("/srv/www", "/srv/www/.git/HEAD", None),
    ("/srv/www", "/srv/www/.index.html.swp", None),
    ("/srv/www", "/srv/www/css/.site.css.tmp", None),
    ("/srv/www", "/srv/www/a/.hidden/b.css", None),
    ("/srv/www", "/srv/www/..foo", None),
    ("/srv/www", "/srv/wwwx/a.html", None),
    ("/srv/www", "/srv/other/a.html", None),
    ("/srv/www", "/srv", None),
    ("/srv/www", "/srv/www/../etc/passwd", None),
])
def test_served_change(root: str, path: str, url: str | None) -> None:
    assert served_change(root, path) == url


# -- Burst ----------------------------------------------------------------------------------------


def timed_burst(loop: FakeLoop, quiet: float = 0.1,
                longest: float = 1.0) -> tuple[Burst, list[tuple[float, list[str]]]]:
    calls: list[tuple[float, list[str]]] = []
    burst = Burst(loop, lambda paths: calls.append((loop.now, paths)),  # type: ignore[arg-type]
                  quiet=quiet, longest=longest)
    return burst, calls


def test_changes_within_quiet_are_one_call() -> None:
    loop = FakeLoop(now=1000.0)
    burst, calls = timed_burst(loop)
    burst.add(["/a.css"])
    loop.advance(0.05)
    burst.add(["/b.js"])
    loop.advance(0.05)
    burst.add(["/c.html"])
    loop.advance(0.09)
    assert calls == []
    loop.advance(0.02)
    assert calls == [(pytest.approx(1000.2), ["/a.css", "/b.js", "/c.html"])]
    assert len(loop.live_timers()) == 0


def test_a_stream_that_never_pauses_is_reported_at_longest() -> None:
    loop = FakeLoop(now=1000.0)
    burst, calls = timed_burst(loop, quiet=0.25, longest=1.0)
    for i in range(24):  # a change every 1/8 s for 3 s (binary fractions: exact times)
        burst.add([f"/f{i:02}.js"])
        assert len(loop.live_timers()) == 1  # one timer, moved, not one per change
        loop.advance(0.125)
    loop.advance(1.0)
    assert calls == [(1000.0 + n, [f"/f{i:02}.js" for i in range(8 * n - 8, 8 * n)])
                     for n in (1, 2, 3)]


def test_two_bursts_two_calls() -> None:
    loop = FakeLoop()
    burst, calls = timed_burst(loop)
    burst.add(["/a.html"])
    loop.advance(0.5)
    burst.add(["/b.html"])
    loop.advance(0.5)
    assert [paths for _, paths in calls] == [["/a.html"], ["/b.html"]]


def test_duplicates_merged_and_sorted() -> None:
    loop = FakeLoop()
    burst, calls = timed_burst(loop)
    burst.add(["/z.css", "/a.html", "/z.css"])
    burst.add(["/a.html", "/m/"])
    loop.advance(1.0)
    assert [paths for _, paths in calls] == [["/a.html", "/m/", "/z.css"]]


def test_a_repeated_change_extends_the_quiet_period() -> None:
    loop = FakeLoop(now=1000.0)
    burst, calls = timed_burst(loop)
    burst.add(["/a.html"])
    loop.advance(0.08)
    burst.add(["/a.html"])  # saved again: still changing
    loop.advance(0.08)
    assert calls == []
    loop.advance(0.02)
    assert calls == [(pytest.approx(1000.18), ["/a.html"])]


def test_a_hold_keeps_the_burst_open_until_released_or_longest() -> None:
    loop = FakeLoop(now=1000.0)
    burst, calls = timed_burst(loop, quiet=0.25, longest=1.0)
    burst.add(["/sub/"])
    burst.hold()  # the new folder's walk, in the pool
    loop.advance(0.5)
    assert calls == []  # quiet, but the walk will add to this burst
    burst.add(["/sub/a.txt"])
    burst.release()
    loop.advance(0.2)
    assert calls == []
    loop.advance(0.05)
    assert calls == [(pytest.approx(1000.75), ["/sub/", "/sub/a.txt"])]

    burst.add(["/slow/"])
    burst.hold()
    loop.advance(2.0)  # a walk that never ends is cut off at longest, as a stream is
    assert calls[1:] == [(pytest.approx(1001.75), ["/slow/"])]
    burst.release()
    assert len(loop.live_timers()) == 0


def test_nothing_added_starts_nothing_and_close_cancels() -> None:
    loop = FakeLoop()
    burst, calls = timed_burst(loop)
    burst.add([])
    assert loop.live_timers() == []
    burst.add(["/a.html"])
    burst.close()
    burst.close()
    burst.add(["/b.html"])
    loop.advance(5.0)
    assert calls == [] and loop.live_timers() == []


# -- inotify, the real kernel -------------------------------------------------------------------


@needs_inotify
def test_inotify_writes_saves_deletions_and_dotfiles(root: Path) -> None:
    rig = Rig(root)
    rig.watcher.start()
    assert rig.run_jobs() == 1  # the walk, in the pool
    assert watches(rig.inotify_fd) == 2  # the root and css/, not .git/

    (root / "index.html").write_text("<p>changed</p>")
    rig.drain()
    assert rig.burst() == ["/index.html"]

    temp = root / "css" / ".site.css.tmp"  # an editor's atomic save
    temp.write_text("p { color: red }")
    os.replace(temp, root / "css" / "site.css")
    rig.drain()
    assert rig.burst() == ["/css/site.css"]

    (root / "old.txt").unlink()
    rig.drain()
    assert rig.burst() == ["/old.txt"]

    (root / ".index.html.swp").write_text("swap")
    (root / ".git" / "HEAD").write_text("ref: other")
    (root / ".cache").mkdir()
    rig.drain()
    rig.loop.advance(2.0)
    assert len(rig.calls) == 3  # nothing more
    assert rig.loop.undelivered() == []  # no walk for a dot-folder
    rig.watcher.close()


@needs_inotify
def test_inotify_new_folder_is_watched_and_nothing_made_meanwhile_is_lost(root: Path) -> None:
    rig = Rig(root)
    rig.watcher.start()
    rig.run_jobs()
    (root / "sub").mkdir()
    rig.drain()  # the folder is reported, and a job will watch it
    walk = rig.only_job()
    (root / "sub" / "early.txt").write_text("before the watch")
    walk.compute()  # the watch exists and early.txt is listed; the loop has not heard yet
    (root / "sub" / "meanwhile.txt").write_text("after the listing, before the result")
    rig.drain()  # an event for a watch the loop does not know yet: held
    walk.deliver()
    (root / "sub" / "late.txt").write_text("after")
    rig.drain()
    assert rig.burst() == ["/sub/", "/sub/early.txt", "/sub/late.txt", "/sub/meanwhile.txt"]

    os.makedirs(root / "a" / "b")  # a tree made at once, filled before its watches exist
    (root / "a" / "b" / "deep.html").write_text("deep")
    rig.drain()
    assert rig.run_jobs() == 1
    assert rig.burst() == ["/a/", "/a/b/", "/a/b/deep.html"]
    assert watches(rig.inotify_fd) == 5  # root, css, sub, a, a/b
    (root / "a" / "b" / "deep.html").write_text("deeper")
    rig.drain()
    assert rig.burst() == ["/a/b/deep.html"]
    rig.watcher.close()


@needs_inotify
def test_a_slow_walk_of_a_new_folder_is_part_of_its_burst(root: Path) -> None:
    """A build's mkdir and the files written into it, seen by the walk (the pool busy for
    longer than the quiet period): one call, not the folder and then its files."""
    rig = Rig(root)
    rig.watcher.start()
    rig.run_jobs()
    (root / "many").mkdir()
    for n in range(3):
        (root / "many" / f"f{n}.txt").write_text(f"file {n}")
    rig.drain()
    rig.loop.advance(0.5)
    assert rig.calls == []
    rig.run_jobs()  # the walk lists them: their writes came before its watch
    assert rig.burst() == ["/many/", "/many/f0.txt", "/many/f1.txt", "/many/f2.txt"]
    rig.watcher.close()


@needs_inotify
def test_the_watch_limit_falls_back_to_polling(root: Path, monkeypatch: pytest.MonkeyPatch,
                                               evlog: ListHandler) -> None:
    def no_room(fd: int, path: str, mask: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(watch_mod, "_add_watch", no_room)
    rig = Rig(root, poll_interval=1.0)
    rig.watcher.start()
    fd = rig.inotify_fd
    assert rig.run_jobs() == 2  # the walk that fails, then polling's first scan
    warnings = [r.getMessage() for r in evlog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "fs.inotify.max_user_watches" in warnings[0] and str(root) in warnings[0]
    assert rig.loop.keys == {} and is_closed_fd(fd)

    (root / "index.html").write_text("<p>a longer page than before</p>")
    rig.loop.advance(1.0)
    assert rig.run_jobs() == 1
    assert rig.burst() == ["/index.html"]
    rig.watcher.close()
    assert rig.loop.live_timers() == []


@pytest.mark.parametrize(("err", "says"), [
    (OSError(errno.EMFILE, "Too many open files"), "fs.inotify.max_user_instances"),
    (OSError(errno.ENOSYS, "inotify is not available in this C library"), "not available"),
])
def test_no_inotify_falls_back_to_polling(root: Path, monkeypatch: pytest.MonkeyPatch,
                                          evlog: ListHandler, err: OSError, says: str) -> None:
    def fail() -> int:
        raise err

    monkeypatch.setattr(watch_mod, "_inotify_init", fail)
    rig = Rig(root)
    rig.watcher.start()
    warnings = [r.getMessage() for r in evlog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and says in warnings[0]
    assert rig.loop.keys == {}
    assert rig.run_jobs() == 1  # a scan
    assert isinstance(rig.loop.jobs[0].future.result(), Scanned)
    rig.watcher.close()


@needs_inotify
def test_a_real_loop(root: Path) -> None:
    """The registration, the pool and the timers of a real Loop, bounded to 2 s a step."""
    loop = Loop(2)
    calls: list[list[str]] = []
    watcher = watch(loop, str(root), calls.append, quiet=0.02)

    def run_until(done: Callable[[], bool], timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout

        def check() -> None:
            if done() or time.monotonic() > deadline:
                loop.stop()
            else:
                loop.call_later(0.01, check)

        loop.call_soon(check)
        loop.run()
        assert done(), "timed out"

    try:
        watcher.start()
        run_until(lambda: loop.pending_jobs == 0)
        (root / "css" / "site.css").write_text("p { margin: 0 }")
        run_until(lambda: bool(calls))
        assert calls == [["/css/site.css"]]
    finally:
        watcher.close()
        loop.close()


@needs_inotify
def test_close_releases_everything_and_ignores_late_walks(root: Path) -> None:
    rig = Rig(root)
    rig.watcher.start()
    fd = rig.inotify_fd
    rig.watcher.close()
    assert rig.loop.keys == {} and is_closed_fd(fd)
    rig.run_jobs()  # the walk finds the fd closed; its result is dropped
    rig.watcher.close()
    assert rig.loop.live_timers() == [] and rig.calls == []


# -- inotify, a pipe playing the kernel ------------------------------------------------------------


class FakeKernel:
    """inotify's fd is a pipe the test writes `struct inotify_event`s into; a watch is a
    number per folder path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read_end, self.write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wds: dict[str, int] = {}
        monkeypatch.setattr(watch_mod, "_inotify_init", lambda: self.read_end)
        monkeypatch.setattr(watch_mod, "_add_watch", self.add)

    def add(self, fd: int, path: str, mask: int) -> int:
        assert fd == self.read_end
        return self.wds.setdefault(path, len(self.wds) + 1)

    def send(self, wd: int, mask: int, name: str = "") -> None:
        raw = os.fsencode(name)
        padded = raw + b"\0" * (16 - len(raw) % 16) if raw else b""
        os.write(self.write_end, EVENT.pack(wd, mask, 0, len(padded)) + padded)

    def close(self) -> None:
        os.close(self.write_end)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKernel]:
    fake = FakeKernel(monkeypatch)
    yield fake
    fake.close()


def started(root: Path) -> Rig:
    rig = Rig(root)
    rig.watcher.start()
    rig.run_jobs()
    return rig


def test_an_overflow_reports_the_root_and_walks_again(root: Path, kernel: FakeKernel) -> None:
    rig = started(root)
    kernel.send(-1, IN_Q_OVERFLOW)
    rig.drain()
    assert len(rig.loop.undelivered()) == 1  # new folders may have no watch: walk again
    assert rig.burst() == ["/"]
    rig.run_jobs()
    rig.loop.advance(1.0)
    assert len(rig.calls) == 1  # the walk reports nothing more
    rig.watcher.close()


def test_events_parsed_from_one_read(root: Path, kernel: FakeKernel) -> None:
    rig = started(root)
    css = kernel.wds[str(root / "css")]
    kernel.send(kernel.wds[str(root)], IN_CLOSE_WRITE, "index.html")
    kernel.send(css, IN_MOVED_FROM, ".site.css.swp")
    kernel.send(css, IN_MOVED_TO, "a-name-of-exactly-16")
    kernel.send(css, IN_CREATE, "é")
    rig.drain()
    assert rig.burst() == ["/css/%C3%A9", "/css/a-name-of-exactly-16", "/index.html"]
    rig.watcher.close()


def test_a_forgotten_watch_is_ignored(root: Path, kernel: FakeKernel) -> None:
    rig = started(root)
    css = kernel.wds[str(root / "css")]
    kernel.send(css, IN_IGNORED)  # css/ was deleted: its watch is gone
    kernel.send(css, IN_CLOSE_WRITE, "site.css")  # a stray event for it (no walk in flight)
    rig.drain()
    rig.loop.advance(1.0)
    assert rig.calls == []
    rig.watcher.close()


def test_a_moved_folder_is_known_by_its_new_path(root: Path, kernel: FakeKernel) -> None:
    rig = started(root)
    (root / "css" / "img").mkdir()
    kernel.send(kernel.wds[str(root / "css")], IN_CREATE | IN_ISDIR, "img")
    rig.drain()
    rig.run_jobs()
    rig.burst()
    old = {path: wd for path, wd in kernel.wds.items() if path.startswith(str(root / "css"))}
    os.rename(root / "css", root / "style")
    for path, wd in old.items():  # the kernel keeps a folder's wd wherever it moves
        kernel.wds[path.replace("/css", "/style")] = wd
    top = kernel.wds[str(root)]
    kernel.send(top, IN_MOVED_FROM | IN_ISDIR, "css")
    kernel.send(top, IN_MOVED_TO | IN_ISDIR, "style")
    kernel.send(old[str(root / "css")], IN_MOVE_SELF)
    rig.drain()
    assert rig.run_jobs() == 1  # the walk of style/ gives the same wds their new paths
    assert rig.burst() == ["/css/", "/style/", "/style/img/", "/style/site.css"]
    kernel.send(old[str(root / "css" / "img")], IN_CLOSE_WRITE, "logo.svg")
    rig.drain()
    assert rig.burst() == ["/style/img/logo.svg"]
    rig.watcher.close()


# -- polling ------------------------------------------------------------------------------------


def test_polling_snapshot_then_new_changed_and_deleted(root: Path) -> None:
    rig = Rig(root, use_inotify=False, poll_interval=1.0)
    rig.watcher.start()
    assert rig.run_jobs() == 1
    rig.loop.advance(10.0)
    assert rig.calls == []  # the first pass only takes the snapshot

    (root / "index.html").write_text("<p>longer than it was</p>")
    (root / "old.txt").unlink()
    (root / "new.txt").write_text("new")
    (root / "css" / "print.css").write_text("")
    (root / "img").mkdir()
    temp = root / "css" / ".tmp"
    temp.write_text("p {}")  # the same size: a new inode tells
    os.replace(temp, root / "css" / "site.css")
    rig.loop.advance(1.0)
    assert rig.run_jobs() == 1
    assert rig.burst() == ["/css/print.css", "/css/site.css", "/img/", "/index.html",
                           "/new.txt", "/old.txt"]
    rig.loop.advance(1.0)
    assert rig.run_jobs() == 1
    rig.loop.advance(1.0)
    assert len(rig.calls) == 1  # nothing changed since
    rig.watcher.close()


def counting_lstat(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    looked: list[str] = []
    real = os.lstat

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    return looked


@pytest.mark.parametrize("budget", [1, 4, 10, 11, 50])
def test_polling_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    """11 entries (8 files, a folder, 2 files in it): a pass takes ceil(11 / budget) jobs,
    none looking at more than `budget` entries."""
    for i in range(8):
        (tmp_path / f"f{i}.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / "sub" / "b.txt").write_text("b")
    rig = Rig(tmp_path, use_inotify=False, poll_interval=1.0, poll_budget=budget)
    looked = counting_lstat(monkeypatch)
    rig.watcher.start()
    for _ in range(2):  # the snapshot's pass and the next
        jobs = 0
        while True:
            before = len(looked)
            scanned = rig.only_job().run().result()
            jobs += 1
            assert len(looked) - before <= budget
            rig.loop.advance(1.0)
            if scanned.done:
                break
        assert jobs == math.ceil(11 / budget)
    assert len(looked) == 22
    rig.watcher.close()


def test_polling_ignores_dot_entries(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(root, use_inotify=False, poll_interval=1.0)
    looked = counting_lstat(monkeypatch)
    rig.watcher.start()
    rig.run_jobs()
    (root / ".git" / "HEAD").write_text("ref: another branch")
    (root / ".index.html.swp").write_text("swap")
    (root / "css" / ".site.css.un~").write_text("undo")
    rig.loop.advance(1.0)
    rig.run_jobs()
    rig.loop.advance(1.0)
    assert rig.calls == []
    assert looked and not [path for path in looked if "/." in path]
    rig.watcher.close()


def test_polling_one_job_in_flight(root: Path) -> None:
    rig = Rig(root, use_inotify=False, poll_interval=1.0)
    rig.watcher.start()
    rig.loop.advance(30.0)  # a slow scan: no second one meanwhile
    assert len(rig.loop.jobs) == 1 and rig.loop.live_timers() == []
    rig.run_jobs()
    assert len(rig.loop.live_timers()) == 1  # the next scan, an interval after this one
    rig.loop.advance(0.99)
    assert len(rig.loop.jobs) == 1
    rig.loop.advance(0.01)
    assert len(rig.loop.jobs) == 2
    rig.watcher.close()


def test_polling_close_cancels_and_ignores_late_results(root: Path) -> None:
    rig = Rig(root, use_inotify=False, poll_interval=1.0, quiet=5.0, longest=10.0)
    rig.watcher.start()
    rig.run_jobs()
    (root / "index.html").write_text("<p>pending change</p>")
    rig.loop.advance(1.0)
    rig.run_jobs()  # the change waits in the burst
    rig.loop.advance(1.0)  # the next scan is in flight
    assert len(rig.loop.undelivered()) == 1 and len(rig.loop.live_timers()) == 1
    rig.watcher.close()
    rig.watcher.close()
    assert rig.loop.live_timers() == []
    (root / "new.txt").write_text("new")
    rig.run_jobs()  # late: dropped
    rig.loop.advance(10.0)
    assert rig.calls == [] and rig.loop.live_timers() == [] and rig.loop.undelivered() == []


def test_a_failing_scan_is_logged_and_the_pass_starts_over(root: Path,
                                                           evlog: ListHandler) -> None:
    rig = Rig(root, use_inotify=False, poll_interval=1.0)
    rig.watcher.start()
    rig.only_job().fail(RuntimeError("boom"))
    assert [r for r in evlog.records if r.levelno == logging.ERROR]
    rig.loop.advance(1.0)
    assert rig.run_jobs() == 1  # the snapshot, taken on the next try
    (root / "old.txt").unlink()
    rig.loop.advance(1.0)
    rig.run_jobs()
    assert rig.burst() == ["/old.txt"]
    rig.watcher.close()
