"""Watching the document root for `--live-reload`: which served URLs changed, in bursts.

Owns: `served_change()` (pure), `Burst`, `Watcher`, `InotifyWatcher`, `PollWatcher` and
`watch()`. Imports `loop` only.

The loop thread only reads the inotify fd and keeps the maps; everything that touches the
disk runs in the pool: walking the tree and adding a watch per folder (at start and for each
new folder), and every polling scan. Changes reach `on_change` through a `Burst`: one call
per burst of changes, once the tree is quiet, never later than `longest` after it began.

inotify (Linux, through libc with ctypes) watches every folder not hidden by a dot. When it
cannot (no inotify, too many instances, the watch limit reached) one warning says why and
the whole tree is polled instead: a scan every `poll_interval` seconds, each job looking at
no more than `poll_budget` entries, a large tree taking several jobs per pass.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import posixpath
import stat
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import quote

from .loop import READ

if TYPE_CHECKING:
    from .loop import Loop, TimerHandle

log = logging.getLogger("evserver")

# <sys/inotify.h>
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000
# IN_CREATE is reported too: a hard link, a symlink or a node made without writing gives no
# other event, and an ordinary write's IN_CLOSE_WRITE follows within the same burst. A file
# written slowly (longer than `quiet`) is then reported twice, which only reloads twice.
FOLDER_MASK = (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE
               | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW)
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_READ_SIZE = 65536  # whole events only: far more than one event with the longest name
_READS_PER_EVENT = 16  # then back to the selector: level triggering calls again
_MAX_ORPHANS = 10_000  # events held for watches not yet known; beyond, report '/'


def served_change(root: str, path: str) -> str | None:
    """The URL path ('/css/site.css') a changed filesystem path under `root` stands for, or
    None when it would never be served: outside the root, or any segment that starts with a
    dot (dotfiles and dot-folders: .git, editor swap files like .index.html.swp). Pure.

    Percent-encoded as evserver writes its own links and redirects (`urllib.parse.quote`).
    """
    root, path = posixpath.normpath(root), posixpath.normpath(path)
    if path == root:
        return "/"
    prefix = root if root.endswith("/") else root + "/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):]
    if any(part.startswith(".") for part in rest.split("/")):
        return None
    return "/" + quote(os.fsencode(rest))


def _url(root: str, path: str, folder: bool) -> str | None:
    """served_change, with a folder's URL ending in '/' as its listing's does."""
    url = served_change(root, path)
    return url + "/" if url is not None and folder and url != "/" else url


class Burst:
    """Changes gathered on the loop into one `on_change(sorted paths)` call, made once no
    change has come for `quiet` seconds, or `longest` seconds after the first change of the
    burst, whichever is sooner. One timer: a change only moves the due time (it never comes
    sooner), and the timer re-arms itself when it fires early, as a connection's does.
    While work that will add to the burst is in flight (`hold()` until `release()`: the walk
    of a folder just made), the quiet period does not end it; `longest` still does."""

    def __init__(self, loop: Loop, on_change: Callable[[list[str]], None], *,
                 quiet: float, longest: float) -> None:
        self._loop = loop
        self._on_change = on_change
        self._quiet = quiet
        self._longest = longest
        self._paths: set[str] = set()
        self._first = 0.0
        self._due = 0.0
        self._timer: TimerHandle | None = None
        self._held = 0
        self._closed = False

    def hold(self) -> None:
        self._held += 1

    def release(self) -> None:
        self._held -= 1

    def add(self, paths: Iterable[str]) -> None:
        if self._closed:
            return
        new = set(paths)
        if not new:
            return
        self._paths |= new
        now = self._loop.now
        if self._timer is None:
            self._first = now
        self._due = min(now + self._quiet, self._first + self._longest)
        if self._timer is None:
            self._timer = self._loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.now
        if self._held and now >= self._due:
            # A walk of a new folder is still listing what was written into it before its
            # watch existed; those paths belong to this burst (a build's mkdir and files).
            self._due = min(now + self._quiet, self._first + self._longest)
        if now < self._due:
            self._timer = self._loop.call_at(self._due, self._fire)
            return
        paths, self._paths = sorted(self._paths), set()
        self._on_change(paths)

    def close(self) -> None:
        self._closed = True
        self._paths.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Watcher(Protocol):
    def start(self) -> None: ...

    def close(self) -> None: ...


# -- polling --------------------------------------------------------------------------------

Signature = tuple[int, int, int]  # (mtime_ns, size, inode); a folder's size is -1


@dataclass
class _Cursor:
    """Where a pass over the tree stands: the folders still to list, the current folder and
    the names in it still to look at (last first). A job in flight owns it."""

    todo: list[str]
    folder: str = ""
    names: list[str] = field(default_factory=list)


class Scanned(NamedTuple):
    seen: dict[str, Signature]
    done: bool  # the pass is complete


def scan_step(cursor: _Cursor, budget: int) -> Scanned:
    """Pool: look at (lstat) up to `budget` more entries of the pass, from where it stopped.

    Dot entries are skipped by name without a look; symlinked folders are not followed.
    A folder's mtime is not compared: it moves when a dotfile is written in it."""
    seen: dict[str, Signature] = {}
    looked = 0
    while looked < budget:
        if not cursor.names:
            if not cursor.todo:
                break
            cursor.folder = cursor.todo.pop()
            try:
                names = os.listdir(cursor.folder)
            except OSError:
                names = []  # gone or unreadable: nothing in it is served
            cursor.names = sorted((n for n in names if not n.startswith(".")), reverse=True)
            continue
        path = os.path.join(cursor.folder, cursor.names.pop())
        looked += 1
        try:
            st = os.lstat(path)
        except OSError:
            continue  # gone since the listing: the end of the pass reports it
        if stat.S_ISDIR(st.st_mode):
            cursor.todo.append(path)
            seen[path] = (0, -1, st.st_ino)
        else:
            seen[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return Scanned(seen, not cursor.names and not cursor.todo)


class PollWatcher:
    """Polls the tree: one scan job at a time, the next `interval` seconds after the last
    one's result. The first pass only takes the snapshot; each later job reports new and
    changed entries at once, and the end of a pass reports those that were not seen."""

    def __init__(self, loop: Loop, root: str, burst: Burst, *, interval: float,
                 budget: int) -> None:
        self._loop = loop
        self._root = posixpath.normpath(root)
        self._burst = burst
        self._interval = interval
        self._budget = max(1, budget)
        self._cursor = _Cursor([self._root])
        self._previous: dict[str, Signature] | None = None
        self._current: dict[str, Signature] = {}
        self._timer: TimerHandle | None = None
        self._scanning = False
        self._closed = False

    def start(self) -> None:
        self._scan()

    def _scan(self) -> None:
        self._timer = None
        if self._closed or self._scanning:
            return
        self._loop.submit(scan_step, self._cursor, self._budget, on_done=self._scanned)
        self._scanning = True

    def _scanned(self, future: Future[Scanned]) -> None:
        if self._closed:
            return
        self._scanning = False
        self._timer = self._loop.call_at(self._loop.now + self._interval, self._scan)
        try:
            seen, done = future.result()
        except Exception:
            log.exception("live reload: scanning %s failed", self._root)
            self._cursor, self._current = _Cursor([self._root]), {}  # this pass starts over
            return
        previous = self._previous
        changed: list[tuple[str, Signature]] = []
        if previous is not None:
            changed = [(p, sig) for p, sig in seen.items() if previous.get(p) != sig]
        self._current.update(seen)
        if done:
            if previous is not None:
                changed += [(p, previous[p]) for p in previous.keys() - self._current.keys()]
            self._previous, self._current = self._current, {}
            self._cursor = _Cursor([self._root])
        urls = (_url(self._root, p, sig[1] == -1) for p, sig in changed)
        self._burst.add(u for u in urls if u is not None)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._burst.close()


# -- inotify ---------------------------------------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]  # AttributeError: no inotify in this libc
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    return libc


def _errno_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), what)


def _inotify_init() -> int:
    try:
        init = _libc().inotify_init1
    except (OSError, AttributeError):
        raise OSError(errno.ENOSYS, "inotify is not available in this C library") from None
    fd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        raise _errno_error("inotify_init1")
    return fd


def _add_watch(fd: int, path: str, mask: int) -> int:
    wd = int(_libc().inotify_add_watch(fd, os.fsencode(path), mask))
    if wd < 0:
        raise _errno_error(path)
    return wd


class _Inotify:
    """The inotify fd. Pool jobs add watches while the loop may close it: the lock keeps a
    job from adding a watch to a closed fd whose number was reused."""

    def __init__(self) -> None:
        self._fd = _inotify_init()
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._fd

    def add(self, path: str) -> int:
        with self._lock:
            if self._fd < 0:
                raise OSError(errno.EBADF, "the watcher is closed", path)
            return _add_watch(self._fd, path, FOLDER_MASK)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Walked(NamedTuple):
    added: list[tuple[int, str]]  # (wd, folder)
    found: list[tuple[str, bool]]  # (path, is a folder), when asked to report
    error: OSError | None  # the watch limit, or `top` could not be watched


def add_watches(inotify: _Inotify, top: str, report: bool) -> Walked:
    """Pool: watch `top` and every folder under it not hidden by a dot. Each folder is
    watched before it is listed, so an entry made meanwhile is in the listing or raises an
    event; with `report`, the entries listed are returned (made before the watch existed)."""
    added: list[tuple[int, str]] = []
    found: list[tuple[str, bool]] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            added.append((inotify.add(folder), folder))
        except OSError as err:
            if err.errno == errno.ENOSPC or folder == top:
                return Walked(added, found, err)
            continue  # gone, unreadable or no longer a folder: nothing to watch there
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if is_dir:
                        stack.append(entry.path)
                    if report:
                        found.append((entry.path, is_dir))
        except OSError:
            continue
    return Walked(added, found, None)


def _why(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return ("the inotify watch limit is reached; raise it with "
                "`sysctl fs.inotify.max_user_watches=524288`")
    if err.errno == errno.EMFILE:
        return ("too many inotify instances or open files; raise "
                "`sysctl fs.inotify.max_user_instances` or the open-file limit")
    return f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")


class InotifyWatcher:
    """Watches every folder of the tree with inotify; falls back to `fallback()` (polling)
    when inotify is unavailable or a watch cannot be added for lack of watches."""

    def __init__(self, loop: Loop, root: str, burst: Burst,
                 fallback: Callable[[], Watcher]) -> None:
        self._loop = loop
        self._root = posixpath.normpath(root)
        self._burst = burst
        self._fallback = fallback
        self._inotify: _Inotify | None = None  # None before start, after close or fallback
        self._folders: dict[int, str] = {}  # wd -> folder
        self._walks = 0  # walk jobs in flight
        # Events for a watch a job added but whose result the loop has not seen yet; kept
        # while walks are in flight, replayed when their wds become known.
        self._orphans: list[tuple[int, int, str]] = []
        self._polling: Watcher | None = None
        self._closed = False

    def start(self) -> None:
        try:
            self._inotify = _Inotify()
        except OSError as err:
            self._fall_back(_why(err))
            return
        self._loop.register(self._inotify, READ, self)
        self._walk(self._root, report=False, first=True)

    def _walk(self, top: str, *, report: bool, first: bool = False) -> None:
        self._loop.submit(add_watches, self._inotify, top, report,
                          on_done=functools.partial(self._walked, report, first))
        self._walks += 1
        if report:
            self._burst.hold()

    def _walked(self, report: bool, first: bool, future: Future[Walked]) -> None:
        self._walks -= 1
        if report:
            self._burst.release()
        if self._inotify is None:
            return  # closed, or polling now
        try:
            added, found, error = future.result()
        except Exception as err:
            log.exception("live reload: watching %s failed", self._root)
            if first:
                self._fall_back(repr(err))
            return
        self._folders.update(added)
        if error is not None and (first or error.errno == errno.ENOSPC):
            self._fall_back(_why(error))
            return
        urls = (_url(self._root, path, is_dir) for path, is_dir in found)
        self._burst.add(u for u in urls if u is not None)
        orphans, self._orphans = self._orphans, []
        for wd, mask, name in orphans:
            self._event(wd, mask, name)  # held again while walks are in flight, else dropped

    def on_event(self, mask: int) -> None:
        for _ in range(_READS_PER_EVENT):
            if self._inotify is None:
                return  # closed by a handler earlier in this tick
            try:
                data = os.read(self._inotify.fileno(), _READ_SIZE)
            except BlockingIOError:
                return
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, event_mask, _cookie, length = EVENT.unpack_from(data, offset)
                start = offset + EVENT.size
                name = data[start:start + length].split(b"\0", 1)[0]
                offset = start + length
                self._event(wd, event_mask, os.fsdecode(name))

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            # Events were lost: anything may have changed, new folders may lack a watch.
            self._burst.add(["/"])
            self._walk(self._root, report=False)
            return
        if mask & IN_IGNORED:
            self._folders.pop(wd, None)
            return
        folder = self._folders.get(wd)
        if folder is None:
            if self._walks and len(self._orphans) < _MAX_ORPHANS:
                self._orphans.append((wd, mask, name))
            elif self._walks:
                self._burst.add(["/"])
            return
        path = posixpath.join(folder, name) if name else folder
        is_dir = bool(mask & IN_ISDIR) or not name
        url = _url(self._root, path, is_dir)
        if url is None:
            return
        if name and is_dir and mask & (IN_CREATE | IN_MOVED_TO):
            self._walk(path, report=True)
        if mask & IN_MOVE_SELF and path != self._root:
            # Its paths are stale: forget them. Moved within the tree, its new parent's
            # IN_MOVED_TO walked it, and that job gives the same wds their new paths.
            under = path + "/"
            self._folders = {w: f for w, f in self._folders.items()
                             if f != path and not f.startswith(under)}
        self._burst.add([url])

    def _fall_back(self, why: str) -> None:
        log.warning("live reload: cannot watch %s with inotify: %s; polling it instead",
                    self._root, why)
        self._stop_inotify()
        self._polling = self._fallback()
        self._polling.start()

    def _stop_inotify(self) -> None:
        if self._inotify is not None:
            self._loop.unregister(self._inotify)
            self._inotify.close()
            self._inotify = None
        self._folders.clear()
        self._orphans.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_inotify()
        if self._polling is not None:
            self._polling.close()
        self._burst.close()


def watch(loop: Loop, root: str, on_change: Callable[[list[str]], None], *,
          quiet: float = 0.1, longest: float = 1.0, poll_interval: float = 1.0,
          poll_budget: int = 20_000, use_inotify: bool = True) -> Watcher:
    """Watch `root` (a real path) recursively and call `on_change(url_paths)` on the loop
    thread with the sorted, de-duplicated URL paths of a burst of changes, once the tree has
    been quiet for `quiet` seconds (never later than `longest` seconds after the first
    change of the burst: an editor's save or a build writing fifty files is one call).
    inotify on Linux when available (and `use_inotify`), else polling. Nothing happens
    before `start()`; `close()` stops it all."""
    burst = Burst(loop, on_change, quiet=quiet, longest=longest)

    def polling() -> Watcher:
        return PollWatcher(loop, root, burst, interval=poll_interval, budget=poll_budget)

    if use_inotify and sys.platform == "linux":
        return InotifyWatcher(loop, root, burst, polling)
    return polling()
