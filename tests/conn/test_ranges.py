"""Layer 2: ranged responses and 100 Continue through the Connection's output queue.

A FakeSocket with small send windows and a FakeLoop: no network, no threads. Each test
checks the bytes that went out (byte-exact, multipart parsed back), how many sendfile
chunks each WRITE event sent, that queued bytes were sliced rather than copied, and what
happened to the file descriptor and the connection afterwards.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from evserver.files import FileBody
from evserver.loop import READ, WRITE
from evserver.phases import Phase
from tests.wire import Response, parse_responses, request

from .fakes import SHUT_WR, FakeSocket, is_closed_fd
from .rig import Rig as ConnectionRig

PEER = "198.51.100.7"
BIG_SIZE = 35_000  # > cache_max_entry (4096 in TEST_CONFIG): an fd and sendfile
SMALL_SIZE = 3_000  # cached in memory
CHUNK = 1_000  # sendfile_chunk for these tests
BIG = random.Random(7).randbytes(BIG_SIZE)
SMALL = random.Random(8).randbytes(SMALL_SIZE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.bin").write_bytes(BIG)
    (root / "small.bin").write_bytes(SMALL)
    return root


class Rig(ConnectionRig):
    """The connection tests' rig, with a small sendfile chunk so each chunk shows."""

    def __init__(self, docroot: Path, **overrides: Any) -> None:
        super().__init__(docroot, **{"sendfile_chunk": CHUNK, **overrides})

    def run_jobs(self) -> list[FileBody]:  # type: ignore[override]
        """Complete every pending pool job for real; the bodies of those that loaded."""
        futures = super().run_jobs()
        return [f.result() for f in futures if f.exception() is None]

    def log_statuses(self) -> list[tuple[int, int]]:
        out = []
        for line in self.owner.access_log.lines:
            m = re.search(rb'" (\d+) (\d+) ', line)
            assert m is not None, line
            out.append((int(m.group(1)), int(m.group(2))))
        return out


@pytest.fixture
def rig(docroot: Path) -> Rig:
    return Rig(docroot)


def parse_multipart(reply: Response) -> list[tuple[bytes, bytes]]:
    """(Content-Range, data) per part; strict about the delimiters and part headers."""
    ctype = reply.header("content-type") or ""
    m = re.fullmatch(r"multipart/byteranges; boundary=([0-9A-Za-z]+)", ctype)
    assert m, ctype
    delimiter = b"\r\n--" + m.group(1).encode()
    body = reply.body
    assert body.endswith(delimiter + b"--\r\n")
    chunks = body[:-len(delimiter) - 4].split(delimiter + b"\r\n")
    assert chunks[0] == b""
    parts = []
    for chunk in chunks[1:]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        assert sep
        lines = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        assert set(lines) == {b"Content-Type", b"Content-Range"}, lines
        parts.append((lines[b"Content-Range"], data))
    return parts


def _views(sock: FakeSocket) -> list[Any]:
    """Every buffer object handed to send()/sendmsg(), flattened."""
    out: list[Any] = []
    for item in sock.send_views:
        out.extend(item if isinstance(item, list) else [item])
    return out


def drive_one_event_at_a_time(rig: Rig, window: int) -> tuple[int, list[int]]:
    """Open the window by `window` bytes before each WRITE event; returns the number of
    events and the sendfile calls each one made."""
    per_event = []
    events = 0
    while rig.phase is Phase.SEND:
        assert rig.loop.mask(rig.sock) == WRITE
        rig.sock.unblock(window)
        calls = len(rig.sock.sendfile_calls)
        rig.conn.on_event(WRITE)
        events += 1
        per_event.append(len(rig.sock.sendfile_calls) - calls)
        assert events < 10_000
    return events, per_event


# -- multipart/byteranges over sendfile -----------------------------------------------------

RANGES = [(0, 2_499), (10_000, 14_999), (BIG_SIZE - 2_500, BIG_SIZE - 1)]
SPEC = "bytes=0-2499,10000-14999,-2500"


def test_multipart_over_sendfile_with_tiny_windows_is_byte_exact(rig: Rig) -> None:
    """A 3-part multipart/byteranges of a streamed file through 700-byte send windows and
    1000-byte sendfile chunks: exact bytes, at most one sendfile chunk per WRITE event,
    every file byte sent by sendfile, and the fd closed at the end."""
    rig.sock.block()
    rig.receive(request("/big.bin", headers=f"Range: {SPEC}\r\n"))
    (body,) = rig.run_jobs()
    assert body.fd is not None and body.data is None
    assert rig.phase is Phase.SEND and rig.sock.sent == b""
    events, per_event = drive_one_event_at_a_time(rig, 700)
    assert max(per_event) == 1, per_event
    assert all(count <= CHUNK for _, count, _ in rig.sock.sendfile_calls)
    file_bytes = sum(n for _, _, n in rig.sock.sendfile_calls)
    assert file_bytes == sum(b - a + 1 for a, b in RANGES)  # no file byte went through send()
    assert events >= file_bytes // 700
    (reply,) = rig.replies()
    assert reply.status == 206
    assert int(reply.header("content-length") or -1) == len(reply.body)
    assert parse_multipart(reply) == [(b"bytes %d-%d/%d" % (a, b, BIG_SIZE), BIG[a:b + 1])
                                      for a, b in RANGES]
    assert is_closed_fd(body.fd)
    assert rig.phase is Phase.IDLE and rig.loop.mask(rig.sock) == READ
    assert rig.log_statuses() == [(206, len(reply.body))]


def test_sendfile_offsets_follow_the_ranges_in_order(rig: Rig) -> None:
    """sendfile resumes each range where the last call stopped, part after part."""
    rig.sock.send_limit = 333  # every call short
    rig.receive(request("/big.bin", headers=f"Range: {SPEC}\r\n"))
    rig.settle()
    calls = rig.sock.sendfile_calls
    expected_offsets: list[int] = []
    for first, last in RANGES:
        offset = first
        while offset <= last:
            expected_offsets.append(offset)
            offset += min(333, last + 1 - offset)
    assert [off for off, _, _ in calls] == expected_offsets
    assert parse_multipart(rig.replies()[0])[1] == (b"bytes 10000-14999/35000", BIG[10_000:15_000])


def test_queued_bytes_are_sliced_never_copied(rig: Rig) -> None:
    """Partial sends of the head and part heads re-slice the same memoryviews: every
    buffer handed to the socket is a view of one of the few response bytes objects."""
    rig.sock.block()
    rig.receive(request("/big.bin", headers=f"Range: {SPEC}\r\n"))
    rig.run_jobs()
    drive_one_event_at_a_time(rig, 37)  # splits every head many times
    views = _views(rig.sock)
    assert len(views) > 20
    assert all(isinstance(v, memoryview) for v in views)
    owners = {id(v.obj) for v in views}
    # The response head, three part heads and the closing delimiter: 5 objects at most.
    assert len(owners) <= 5, len(owners)
    assert parse_multipart(rig.replies()[0])[0][1] == BIG[:2_500]


def test_multipart_of_a_cached_file_slices_the_cached_bytes(rig: Rig) -> None:
    """In memory, parts are views of the cached body itself, and no sendfile is used."""
    rig.receive(request("/small.bin", headers="Range: bytes=0-9,100-199,-50\r\n"))
    (body,) = rig.run_jobs()
    rig.settle()
    assert body.data is not None and body.fd is None
    assert rig.sock.sendfile_calls == []
    data_views = [v for v in _views(rig.sock) if v.obj is body.data]
    assert data_views, "the file's bytes were copied"
    assert all(isinstance(v, memoryview) for v in _views(rig.sock))
    parts = parse_multipart(rig.replies()[0])
    assert parts == [(b"bytes 0-9/3000", SMALL[:10]), (b"bytes 100-199/3000", SMALL[100:200]),
                     (b"bytes 2950-2999/3000", SMALL[-50:])]
    # A second request is a cache hit: no pool job, the same bytes object sliced.
    rig.receive(request("/small.bin", headers="Range: bytes=5-6,8-9\r\n"))
    assert rig.loop.undelivered() == []
    rig.settle()
    assert [p[1] for p in parse_multipart(rig.replies()[1])] == [SMALL[5:7], SMALL[8:10]]


def test_single_range_of_a_streamed_file_starts_at_its_offset(rig: Rig) -> None:
    """One range: sendfile from `first`, in chunks, and nothing before or after it."""
    rig.receive(request("/big.bin", headers="Range: bytes=12345-15000\r\n"))
    rig.settle()
    assert [(off, count) for off, count, _ in rig.sock.sendfile_calls] == [
        (12_345, 1_000), (13_345, 1_000), (14_345, 656)]
    (reply,) = rig.replies()
    assert reply.status == 206 and reply.body == BIG[12_345:15_001]
    assert reply.header("content-range") == "bytes 12345-15000/35000"


@pytest.mark.parametrize("headers, status", [
    ("Range: bytes=40000-\r\n", 416),
    ('If-Match: "nope"\r\n', 412),
    ("Range: bytes=0-,0-\r\n", 200),  # declined: the whole file instead
])
def test_streamed_file_answers_release_the_fd(rig: Rig, headers: str, status: int) -> None:
    """416 and 412 send no file byte and close the fd at once; a declined range streams
    the whole file; each keeps the connection."""
    rig.receive(request("/big.bin", headers=headers))
    (body,) = rig.run_jobs()
    rig.settle()
    (reply,) = rig.replies()
    assert reply.status == status
    assert is_closed_fd(body.fd or -1)
    if status == 200:
        assert reply.body == BIG
    else:
        assert rig.sock.sendfile_calls == []
    if status == 416:
        assert reply.header("content-range") == "bytes */35000"
    assert rig.phase is Phase.IDLE and rig.sock.shut == []


def test_head_with_range_on_a_streamed_file_sends_no_body(rig: Rig) -> None:
    """HEAD ignores Range: a 200 head only, the fd closed without any sendfile."""
    rig.receive(request("/big.bin", method="HEAD", headers="Range: bytes=0-9\r\n"))
    (body,) = rig.run_jobs()
    assert rig.sock.sendfile_calls == [] and is_closed_fd(body.fd or -1)
    reply = parse_responses(bytes(rig.sock.sent), [True])[0]
    assert reply.status == 200 and reply.header("content-length") == "35000"
    assert reply.header("content-range") is None


# -- a file that shrinks during a ranged send ------------------------------------------------

@pytest.mark.parametrize("spec", [SPEC, "bytes=20000-"])
def test_file_shrinking_during_a_ranged_send_closes_the_connection(
        rig: Rig, spec: str, caplog: pytest.LogCaptureFixture) -> None:
    """Once sendfile finds the promised bytes gone, Content-Length cannot be honoured:
    the connection half-closes (LINGER), the fd is closed, the log shows the short 206."""
    rig.sock.block()
    rig.receive(request("/big.bin", headers=f"Range: {spec}\r\n" + "X-Pad: 1\r\n"))
    (body,) = rig.run_jobs()
    rig.sock.unblock(3_000)  # the head and a little of the first part
    rig.conn.on_event(WRITE)
    assert rig.phase is Phase.SEND
    os.truncate(rig.docroot / "big.bin", 5_000)
    rig.sock.unblock()
    rig.settle()
    assert rig.phase is Phase.LINGER and rig.sock.shut == [SHUT_WR]
    assert rig.loop.mask(rig.sock) == READ
    assert is_closed_fd(body.fd or -1)
    assert any("shrank" in r.getMessage() for r in caplog.records)
    (status, sent), = rig.log_statuses()
    head_end = bytes(rig.sock.sent).index(b"\r\n\r\n") + 4
    assert status == 206 and sent == len(rig.sock.sent) - head_end
    declared = rig.sock.sent[:head_end].split(b"Content-Length: ")[1].split(b"\r\n")[0]
    assert sent < int(declared)
    # The client's EOF ends the linger: closed, unregistered, forgotten.
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED and rig.sock.closed
    assert rig.owner.forgotten == [rig.conn]


# -- 100 Continue ------------------------------------------------------------------------------

@pytest.mark.parametrize("target, status", [("/small.bin", 200), ("/big.bin", 200),
                                            ("/missing", 404)])
def test_100_continue_goes_out_before_the_head(rig: Rig, target: str, status: int) -> None:
    """`Expect: 100-continue` on a GET with a body: the 100 precedes the final head, even
    through a 5-byte window, and the body that follows is discarded."""
    rig.sock.send_limit = 5
    rig.receive(request(target, headers="Content-Length: 5\r\nExpect: 100-continue\r\n"))
    rig.settle()
    sent = bytes(rig.sock.sent)
    assert sent.startswith(CONTINUE + b"HTTP/1.1 %d " % status)
    assert sent.count(b"100 Continue") == 1
    reply = parse_responses(sent[len(CONTINUE):])[0]
    assert reply.status == status
    rig.receive(b"hello" + request("/small.bin"))
    rig.settle()
    second = parse_responses(bytes(rig.sock.sent)[len(CONTINUE):])[1]
    assert second.status == 200 and second.body == SMALL
    assert sent.count(b"100 Continue") == 1  # the next response has no interim
    assert rig.phase is Phase.IDLE
    assert [s for s, _ in rig.log_statuses()] == [status, 200]


def test_100_continue_on_a_cache_hit(rig: Rig) -> None:
    """The fast path (no pool job) sends the 100 first too."""
    rig.receive(request("/small.bin"))
    rig.settle()
    before = len(rig.sock.sent)
    rig.receive(request("/small.bin", headers="Content-Length: 2\r\nExpect: 100-Continue\r\n"))
    assert rig.loop.undelivered() == []
    rig.settle()
    assert bytes(rig.sock.sent[before:]).startswith(CONTINUE + b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("raw", [
    request("/small.bin", headers="Expect: 100-continue\r\n"),  # no body to wait for
    request("/small.bin", version="HTTP/1.0",
            headers="Content-Length: 2\r\nExpect: 100-continue\r\n", body=b"ab"),
])
def test_no_100_when_there_is_nothing_to_continue(rig: Rig, raw: bytes) -> None:
    """No body, or an HTTP/1.0 client (§10.1.1): no interim response."""
    rig.receive(raw)
    rig.settle()
    assert bytes(rig.sock.sent).startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in rig.sock.sent


def test_expect_on_a_post_is_405_close_without_100(rig: Rig) -> None:
    """A POST's answer does not depend on its body: 405 with Allow, no 100, then close."""
    rig.receive(request("/small.bin", method="POST",
                        headers="Content-Length: 100\r\nExpect: 100-continue\r\n"))
    rig.settle()
    (reply,) = rig.replies()
    assert reply.status == 405 and reply.header("connection") == "close"
    assert reply.header("allow") is not None
    assert not bytes(rig.sock.sent).startswith(CONTINUE)
    assert rig.phase is Phase.LINGER and rig.sock.shut == [SHUT_WR]


# -- interest after a discarded body ---------------------------------------------------------

@pytest.mark.parametrize("cached", [False, True])
def test_read_interest_returns_once_a_large_discarded_body_drains(rig: Rig,
                                                                  cached: bool) -> None:
    """A GET body larger than max_head arriving with its head fills our buffer past the
    backpressure mark; once the answer is out and those bytes are discarded, READ interest
    must come back, or the rest of the body (and the next request) is never read."""
    if cached:
        rig.receive(request("/small.bin"))
        rig.settle()
    n = 50_000
    rig.receive(request("/small.bin", headers=f"Content-Length: {n}\r\n") + b"x" * 30_000)
    rig.settle()
    assert rig.phase is Phase.HEAD
    assert rig.loop.mask(rig.sock) == READ, "waiting for the body's rest without READ interest"
    rig.receive(b"y" * (n - 30_000) + request("/small.bin", headers="X-Next: 1\r\n"))
    rig.settle()
    replies = rig.replies()
    assert [r.status for r in replies] == [200] * (3 if cached else 2)
    assert replies[-1].body == SMALL
    assert rig.phase is Phase.IDLE and rig.loop.mask(rig.sock) == READ
