"""Layer 2: files over the in-memory limit kept open in the cache (nginx's open_file_cache).

Each response sends from a dup of the cached fd, so the cache may close or replace its fd
while a download is still going; the fd fixtures check that nothing leaks either way.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evserver.files import read_ahead
from evserver.phases import Phase
from tests.wire import request

from .fakes import is_closed_fd
from .rig import BIG_SIZE, Rig

SMALL_LARGE = [f"big{i}.bin" for i in range(3)]  # over cache_max_entry, each


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    for name in SMALL_LARGE:
        (root / name).write_bytes(os.urandom(5000))
    return root


@pytest.fixture
def make_rig(docroot: Path) -> Iterator[Callable[..., Rig]]:
    """Rigs whose caches are closed at the end (as the server does at exit), before the
    autouse fd-leak check runs."""
    rigs: list[Rig] = []

    def make(**overrides: Any) -> Rig:
        rigs.append(Rig(docroot, **overrides))
        return rigs[-1]

    yield make
    for made in rigs:
        made.owner.cache.close()


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig(cache_max_open=4)


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd") if not is_closed_fd(int(fd))}


def cached_fd(rig: Rig, name: str = "big.bin") -> int:
    fresh, _ = rig.owner.cache.lookup(str(rig.docroot / name), rig.loop.now)
    assert fresh is not None and fresh.fd is not None
    return fresh.fd


def test_a_large_file_is_opened_once_then_sent_from_dups(rig: Rig) -> None:
    """The first GET opens the file in the pool; the next ones need no pool job at all,
    and every response is byte-exact."""
    rig.receive(request("/big.bin"))
    assert len(rig.run_jobs()) == 1
    rig.settle()
    fds_between = open_fds()
    for _ in range(3):
        rig.receive(request("/big.bin"))
        assert not rig.loop.undelivered()  # served from the cache, on the loop
        rig.settle()
        assert open_fds() == fds_between  # each response's dup is closed when it ends
    assert [r.body for r in rig.replies()] == [rig.file("big.bin")] * 4
    assert rig.owner.cache.open_files == 1 and not is_closed_fd(cached_fd(rig))
    assert rig.phase is Phase.IDLE


@pytest.mark.parametrize("request_bytes, status", [
    (request("/big.bin", method="HEAD"), 200),
    (request("/big.bin", headers="Range: bytes=99999999-\r\n"), 416),
    (request("/big.bin", headers="If-Match: \"other\"\r\n"), 412),
    (request("/big.bin", headers="Range: bytes=10-19\r\n"), 206),
])
def test_answers_without_the_whole_body_leave_the_cached_fd_usable(
        rig: Rig, request_bytes: bytes, status: int) -> None:
    """HEAD, 416, 412 and 206 on a cached large file never close the cache's fd: the
    next full GET is still byte-exact."""
    rig.serve(request("/big.bin"))
    fd = cached_fd(rig)
    rig.serve(request_bytes)
    rig.serve(request("/big.bin"))
    replies = rig.replies(head_only=(False, request_bytes.startswith(b"HEAD"), False))
    assert [r.status for r in replies] == [200, status, 200]
    assert replies[2].body == rig.file("big.bin") and cached_fd(rig) == fd
    if status == 206:
        assert replies[1].body == rig.file("big.bin")[10:20]


def test_a_changed_large_file_is_reopened_after_the_validity(rig: Rig) -> None:
    """Within cache_ttl the cached fd serves; after it the pool revalidates, the new
    content is served and the old fd is closed."""
    rig.serve(request("/big.bin"))
    old_fd = cached_fd(rig)
    (rig.docroot / "big.bin").write_bytes(b"new" * 5000)
    rig.loop.advance(rig.owner.cfg.cache_ttl + 0.1)
    rig.receive(request("/big.bin"))
    assert len(rig.run_jobs()) == 1  # stale: revalidated in the pool
    rig.settle()
    assert rig.replies()[-1].body == b"new" * 5000
    assert is_closed_fd(old_fd) or cached_fd(rig) == old_fd  # fd numbers may be reused
    assert rig.owner.cache.open_files == 1


def test_a_download_survives_its_cached_fd_being_closed(make_rig: Callable[..., Rig]) -> None:
    """The cache closes its fd (evicted here) while a response still streams: the response
    owns a dup, so it goes on byte-exact."""
    rig = make_rig(cache_max_open=1)
    rig.sock.window = 10_000
    rig.serve(request("/big.bin"))
    assert rig.phase is Phase.SEND
    rig.owner.cache.close()  # what an eviction or shutdown of the cache does
    rig.sock.unblock()
    rig.settle()
    assert rig.replies()[0].body == rig.file("big.bin")


def test_with_cache_max_open_zero_every_request_opens_the_file(
        make_rig: Callable[..., Rig]) -> None:
    """--cache-max-open 0: a pool job per request, the fd closed after each."""
    rig = make_rig(cache_max_open=0)
    for _ in range(2):
        rig.receive(request("/big.bin"))
        assert len(rig.run_jobs()) == 1
        rig.settle()
    assert rig.owner.cache.open_files == 0
    assert [len(r.body) for r in rig.replies()] == [BIG_SIZE] * 2


def test_open_files_are_bounded_and_the_oldest_is_closed(
        make_rig: Callable[..., Rig]) -> None:
    """More large files than cache_max_open: the least recently used fd is closed."""
    rig = make_rig(cache_max_open=2)
    fds = []
    for name in SMALL_LARGE:
        rig.serve(request("/" + name))
        fds.append(cached_fd(rig, name))
    assert rig.owner.cache.open_files == 2
    assert is_closed_fd(fds[0]) or fds[0] in fds[1:]  # closed (its number maybe reused)
    assert [r.status for r in rig.replies()] == [200, 200, 200]


def test_a_large_file_changed_in_place_is_revalidated_at_once(rig: Rig) -> None:
    """Truncated in place within the validity period: the cached fd's fstat no longer
    matches the announced size, so the pool revalidates before anything is sent (a stale
    Content-Length would end in a short body)."""
    rig.serve(request("/big.bin"))
    os.truncate(rig.docroot / "big.bin", 20_000)
    rig.receive(request("/big.bin"))
    assert len(rig.run_jobs()) == 1  # no cache hit, although the entry is still fresh
    rig.settle()
    reply = rig.replies()[-1]
    assert reply.header("content-length") == "20000"
    assert reply.body == rig.file("big.bin") and rig.phase is Phase.IDLE


@pytest.mark.parametrize("cached", [False, True])
def test_the_pool_reads_a_download_ahead_of_sendfile(
        make_rig: Callable[..., Rig], cached: bool) -> None:
    """With a file larger than the read-ahead window, each time sendfile gets within half
    a window of what was asked for, one pool job asks the kernel for the next window
    (cached fd or not); the jobs are hints: run late, on a closed fd, they do no harm."""
    rig = make_rig(readahead=12_000, cache_max_open=4 if cached else 0)
    if cached:
        rig.serve(request("/big.bin"))
        for job in rig.loop.undelivered():
            job.run()
        rig.settle()
        rig.loop.jobs.clear()
    rig.receive(request("/big.bin"))
    if not cached:
        (load_job,) = rig.loop.undelivered()
        load_job.run()
    while rig.phase is Phase.SEND:
        rig.writable()
    hints = [job for job in rig.loop.undelivered() if job.fn is read_ahead]
    assert [job.args[1:] for job in hints] == [(10_000, 12_000), (22_000, 12_000),
                                               (34_000, 12_000)]
    assert rig.replies()[-1].body == rig.file("big.bin")
    for job in hints:
        assert job.run().exception() is None  # the response's fd is closed by now


def test_no_read_ahead_for_files_within_one_window(make_rig: Callable[..., Rig]) -> None:
    """A file no larger than the window was read ahead whole when the pool opened it."""
    rig = make_rig(readahead=BIG_SIZE)
    rig.serve(request("/big.bin"))
    assert not [job for job in rig.loop.jobs if job.fn is read_ahead]
    assert rig.replies()[0].body == rig.file("big.bin")
