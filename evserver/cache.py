"""The files kept ready in memory (or open), and the one load in flight per file.

Owns: `FileCache`. Imports `files` (for `FileBody`). Used by the loop thread only.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .files import FileBody


class FileCache:
    """Files kept ready, LRU, used by the loop thread only: those up to the in-memory limit
    as bytes (bounded in bytes and entries), larger ones as an open fd (bounded in count,
    like nginx's open_file_cache). The cache owns those fds: a response sends from a dup.
    Variants encoded here (--compress) are bytes within a budget of their own
    (`encoded_max_bytes`), so compressing cannot evict the files themselves.

    An entry younger than `ttl` is served with no I/O at all; an older one is handed back
    as `stale` for the pool to revalidate (nginx's open_file_cache_valid).

    Loads are single-flight: while one pool job loads a key, other requests for it wait
    for that job (`wait_for_load`) and then look again, instead of starting a job each.
    Every connection asking at once when a popular entry goes stale thus costs one job,
    and fewer pool threads ask the loop for the GIL.
    """

    def __init__(self, max_bytes: int, max_entries: int, ttl: float, max_open: int = 0,
                 encoded_max_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.max_open = max_open
        self.encoded_max_bytes = encoded_max_bytes
        self.ttl = ttl
        self.bytes = 0
        self.encoded_bytes = 0
        self.hits = 0
        self.misses = 0
        self.open_hits = 0  # the hits on a file kept open (counted in `hits` too)
        self.evictions = 0
        self._entries: OrderedDict[str, tuple[FileBody, float]] = OrderedDict()
        self._encoded: OrderedDict[str, tuple[FileBody, float]] = OrderedDict()
        self._open: OrderedDict[str, tuple[FileBody, float]] = OrderedDict()
        self._loading: dict[str, list[Callable[[], None]]] = {}  # key -> who waits for it

    def __len__(self) -> int:
        return len(self._entries) + len(self._encoded) + len(self._open)

    @property
    def encoded_entries(self) -> int:
        return len(self._encoded)

    @property
    def open_files(self) -> int:
        return len(self._open)

    def lookup(self, path: str, now: float) -> tuple[FileBody | None, FileBody | None]:
        """(fresh, stale): a body to serve now, or one to revalidate in the pool."""
        item = self._entries.get(path)
        if item is None:
            return self._lookup_elsewhere(path, now)
        body, loaded = item
        if now - loaded < self.ttl:
            self.hits += 1
            self._entries.move_to_end(path)
            return body, None
        self.misses += 1
        return None, body

    def _lookup_elsewhere(self, path: str, now: float
                          ) -> tuple[FileBody | None, FileBody | None]:
        """`lookup` in the encoded variants and the open files (not the hot path)."""
        table = self._encoded
        item = table.get(path)
        if item is None:
            table = self._open
            item = table.get(path)
            if item is None:
                self.misses += 1
                return None, None
        body, loaded = item
        if now - loaded < self.ttl:
            self.hits += 1
            if table is self._open:
                self.open_hits += 1
            table.move_to_end(path)
            return body, None
        self.misses += 1
        return None, body

    def put(self, path: str, body: FileBody, now: float) -> bool:
        """Cache `body` as the current content of `path`; True if it was taken (then the
        cache owns its fd, if it has one)."""
        # Drop the old entry even when the new body cannot be cached (it grew beyond
        # the in-memory limit): otherwise the obsolete bytes stay until evicted.
        self.discard(path)
        if body.fd is not None:
            if self.max_open <= 0:
                return False
            self._open[path] = (body, now)
            while len(self._open) > self.max_open:
                _, (old, _) = self._open.popitem(last=False)
                old.close_fd()
                self.evictions += 1
            return True
        if body.encoded_here:
            return self._put_encoded(path, body, now)
        if body.data is None or len(body.data) > self.max_bytes:
            return False
        self._entries[path] = (body, now)
        self.bytes += len(body.data)
        while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
            _, (old, _) = self._entries.popitem(last=False)
            self.bytes -= len(old.data or b"")
            self.evictions += 1
        return True

    def _put_encoded(self, path: str, body: FileBody, now: float) -> bool:
        size = len(body.data or b"")
        if body.data is None or size > self.encoded_max_bytes:
            return False
        self._encoded[path] = (body, now)
        self.encoded_bytes += size
        while self.encoded_bytes > self.encoded_max_bytes or len(self._encoded) > self.max_entries:
            _, (old, _) = self._encoded.popitem(last=False)
            self.encoded_bytes -= len(old.data or b"")
            self.evictions += 1
        return True

    def expire(self) -> None:
        """Make every entry stale: each is checked against the disk before it is served
        again (--live-reload, after a change). The bodies stay: an unchanged file is not
        read again."""
        for table in (self._entries, self._encoded, self._open):
            for path, (body, _) in table.items():
                table[path] = (body, float("-inf"))

    def discard(self, path: str) -> None:
        item = self._entries.pop(path, None)
        if item is not None:
            self.bytes -= len(item[0].data or b"")
        item = self._encoded.pop(path, None)
        if item is not None:
            self.encoded_bytes -= len(item[0].data or b"")
        item = self._open.pop(path, None)
        if item is not None:
            item[0].close_fd()

    def wait_for_load(self, key: str, retry: Callable[[], None]) -> bool:
        """If `key` is being loaded, call `retry` once it has been (and True); else False."""
        waiting = self._loading.get(key)
        if waiting is None:
            return False
        waiting.append(retry)
        return True

    def load_started(self, key: str) -> None:
        """A pool job now loads `key`; `load_finished` must follow, whatever its result."""
        self._loading[key] = []

    def load_finished(self, key: str) -> list[Callable[[], None]]:
        """The load of `key` is over (and its result cached, if it could be): who waited."""
        return self._loading.pop(key, [])

    def close(self) -> None:
        """Forget everything and close the cached fds (at shutdown)."""
        for body, _ in self._open.values():
            body.close_fd()
        self._open.clear()
        self._entries.clear()
        self._encoded.clear()
        self.bytes = self.encoded_bytes = 0

