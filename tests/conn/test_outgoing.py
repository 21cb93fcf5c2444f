"""Layer 2: the response in flight (`evserver.outgoing.Outgoing`) on a fake socket: partial
sends, sendmsg gathering, sendfile chunks, TLS chunks read by the pool, files that end
short, read-ahead, send-buffer growth, and the fd it owns."""
from __future__ import annotations

import os
import socket
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from evserver.config import Config
from evserver.files import read_ahead
from evserver.outgoing import (
    BLOCKED,
    DONE,
    ENDED_SHORT,
    NEEDS_CHUNK,
    Outgoing,
    Piece,
    pieces_of,
)

from .fakes import FakeLoop, FakeSocket, is_closed_fd

CFG = replace(Config(host="127.0.0.1", port=0, access_log=None), sendfile_chunk=1000,
              readahead=0, send_buffer=4000, send_buffer_max=64_000)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(5000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def opened(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def outgoing(pieces: list[Piece], sock: FakeSocket, *, cfg: Config = CFG, tls: bool = False,
             fd: int = -1, loop: FakeLoop | None = None, size: int = 0) -> Outgoing:
    return Outgoing(pieces, cfg, loop or FakeLoop(),  # type: ignore[arg-type]
                    None if tls else sock.sendfile, fd=fd, path="/srv/data.bin", size=size)


def write_all(out: Outgoing, sock: FakeSocket, limit: int = 100) -> list[int]:
    results = []
    for _ in range(limit):
        result = out.write(sock)  # type: ignore[arg-type]
        results.append(result)
        if result != BLOCKED:
            return results
    raise AssertionError("never finished")


def test_partial_sends_reslice_the_same_buffer_never_copy() -> None:
    body = bytes(range(256)) * 40
    sock = FakeSocket()
    sock.send_limit = 1000
    out = outgoing([memoryview(body)], sock, tls=True)  # one view: plain send
    sock.block()
    assert out.write(sock) == BLOCKED and out.sent == 0  # type: ignore[arg-type]
    sock.unblock()
    assert write_all(out, sock)[-1] == DONE
    assert bytes(sock.sent) == body and out.sent == len(body)
    assert all(isinstance(v, memoryview) and v.obj is body for v in sock.send_views)


def test_views_are_gathered_into_one_sendmsg_up_to_a_file_segment(
        data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sock = FakeSocket()
    out = outgoing(pieces_of(HEAD, [b"part one ", b"part two ", (0, 10), b"tail"]), sock,
                   fd=opened(path), size=len(data))
    assert out.write(sock) == BLOCKED  # type: ignore[arg-type]  # one sendfile chunk per call
    assert sock.writes == [("sendmsg", len(HEAD) + 18), ("sendfile", 10)]
    assert out.write(sock) == DONE  # type: ignore[arg-type]
    assert bytes(sock.sent) == HEAD + b"part one part two " + data[:10] + b"tail"
    out.release()


def test_tls_never_uses_sendmsg_or_sendfile() -> None:
    sock = FakeSocket()
    out = outgoing(pieces_of(HEAD, [b"body"]), sock, tls=True)
    assert out.write(sock) == DONE  # type: ignore[arg-type]
    assert [kind for kind, _ in sock.writes] == ["send", "send"]


def test_sendfile_goes_one_capped_chunk_per_write(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    sock = FakeSocket()
    out = outgoing(pieces_of(HEAD, [(0, len(data))]), sock, fd=opened(path), size=len(data))
    results = write_all(out, sock)
    assert results == [BLOCKED] * 4 + [DONE]
    assert [count for _, count, _ in sock.sendfile_calls] == [1000] * 5
    assert bytes(sock.sent) == HEAD + data and out.sent == len(HEAD) + len(data)
    out.release()


def test_a_file_that_shrank_ends_the_response_short(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"x" * 300)
    sock = FakeSocket()
    out = outgoing(pieces_of(HEAD, [(0, 1000), b"after"]), sock, fd=opened(path), size=1000)
    assert write_all(out, sock)[-1] == ENDED_SHORT
    assert "/srv/data.bin shrank while being sent" == out.short
    assert bytes(sock.sent) == HEAD + b"x" * 300  # nothing after the hole is sent
    out.release()


def read_args(out: Outgoing) -> tuple[object, ...]:
    """What the next pool job of `out` reads: (fd, offset, size)."""
    job = out.read_job()
    assert isinstance(job, partial)
    return job.args


def test_tls_file_segments_are_read_by_the_pool_in_chunks(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    fd = opened(path)
    sock = FakeSocket()
    out = outgoing(pieces_of(HEAD, [(100, 4900)]), sock, tls=True, fd=fd)
    assert out.write(sock) == NEEDS_CHUNK  # type: ignore[arg-type]
    assert bytes(sock.sent) == HEAD
    assert read_args(out) == (fd, 100, 4900)
    assert out.fill((3000, os.pread(fd, 3000, 100)))  # a short read: the rest stays a segment
    assert out.write(sock) == NEEDS_CHUNK  # type: ignore[arg-type]
    assert read_args(out) == (fd, 3100, 1900)
    assert out.fill(out.read_job()())
    assert out.write(sock) == DONE  # type: ignore[arg-type]
    assert bytes(sock.sent) == HEAD + data[100:]
    out.release()


def test_tls_chunks_are_capped(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    fd = opened(path)
    out = outgoing([(0, 10 * 1024 * 1024)], FakeSocket(), tls=True, fd=fd)
    assert read_args(out) == (fd, 0, 256 * 1024)
    out.release()


def test_an_empty_or_failed_chunk_read_ends_short() -> None:
    out = outgoing([(0, 10)], FakeSocket(), tls=True)
    assert not out.fill((0, b"")) and "shrank" in out.short
    other = outgoing([(0, 10)], FakeSocket(), tls=True)
    other.failed_read(OSError(5, "Input/output error"))
    assert "could not be read" in other.short and "Input/output error" in other.short


def test_read_ahead_asks_the_pool_one_window_at_a_time(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    loop = FakeLoop()
    sock = FakeSocket()
    cfg = replace(CFG, readahead=2000)
    out = outgoing([(0, len(data))], sock, cfg=cfg, fd=opened(path), loop=loop, size=len(data))
    write_all(out, sock)
    starts = [(job.fn, job.args[1], job.args[2]) for job in loop.jobs]
    # A new window when the sent offset comes within half a window of the last one's end.
    assert starts == [(read_ahead, 1000, 2000), (read_ahead, 3000, 2000),
                      (read_ahead, 5000, 2000)]
    out.release()


def test_the_send_buffer_grows_for_a_reader_that_keeps_up(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    cfg = replace(CFG, sendfile_chunk=5000, send_buffer=1000, send_buffer_max=9000)
    fast, slow = FakeSocket(), FakeSocket()
    slow.send_limit = 500  # never frees half the buffer between two events
    for sock in (fast, slow):
        out = outgoing([(0, 1000)] * 4, sock, cfg=cfg, fd=opened(path), size=len(data))
        write_all(out, sock)
        out.release()
    assert fast.sockopts == [(socket.SOL_SOCKET, socket.SO_SNDBUF, 9000)]
    assert slow.sockopts == []


def test_release_closes_the_fd_once(data_file: tuple[Path, bytes]) -> None:
    fd = opened(data_file[0])
    out = outgoing([(0, 10)], FakeSocket(), fd=fd)
    out.release()
    assert is_closed_fd(fd)
    out.release()  # a second release does nothing (the fd number may be someone else's now)


def test_pieces_of_slices_data_in_memory_or_keeps_segments() -> None:
    data = b"0123456789"
    in_memory = pieces_of(b"H", [b"<", (2, 3), b">"], data)
    assert [bytes(p) for p in in_memory if isinstance(p, memoryview)] == [b"H", b"<", b"234",
                                                                          b">"]
    assert in_memory[2].obj is data  # type: ignore[union-attr]  # a slice, not a copy
    from_file = pieces_of(b"H", [(2, 3)])
    assert from_file[1] == (2, 3)
