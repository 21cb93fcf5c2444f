"""The response in flight: what is left of it, and how it reaches the socket.

Owns: `Outgoing`, the results of its `write()` (`DONE`, `BLOCKED`, `NEEDS_CHUNK`,
`ENDED_SHORT`), `EncodedStream` and `pieces_of()`. Imports `config`, `files` (`read_ahead`),
`codings` (the encoders) and `loop` (the pool that reads ahead). Loop thread only, but for
the jobs it hands the pool (`read_job()`).

A response that goes out in one `send` never builds one of these (the connection's fast
path): an `Outgoing` exists only when a send was partial or a body streams from a file.
It owns the fd it sends from and closes it in `release()`. Its pieces are views of bytes
(never copied: a partial send re-slices the view) and (offset, length) segments of the
file, which go out with `sendfile`, or, on a TLS socket (the kernel would send plaintext),
as chunks the pool reads (`NEEDS_CHUNK`, then `fill()`). A file encoded as it is sent (one
too large to keep encoded in memory) takes the second way on any socket: the pool reads
and encodes each chunk (`EncodedStream`).
"""
from __future__ import annotations

import itertools
import os
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial

from .codings import READ_SIZE, Encoder
from .config import Config
from .files import read_ahead
from .loop import Loop

# What write() says: all is sent; the socket takes no more now (wait for WRITE); the next
# piece must first be read by the pool (TLS); the file ended before its Content-Length.
DONE, BLOCKED, NEEDS_CHUNK, ENDED_SHORT = 0, 1, 2, 3
_IOV_MAX = 64  # views gathered into one sendmsg
_TLS_CHUNK = 256 * 1024  # bytes of a file read per pool job on a TLS connection
_FAST_WRITES = 3  # sendfile calls in a row that earn a bigger send buffer

Piece = memoryview | tuple[int, int]
SendFile = Callable[[int, int, int, int], int]
Chunk = tuple[int, bytes]  # (bytes of the file consumed, bytes to send): a pool job's result


class EncodedStream:
    """A file encoded while it is sent: each pool job reads a step of it and returns the
    encoded bytes, framed as one HTTP/1.1 chunk (or bare, for an HTTP/1.0 client, whose
    response ends when the connection closes). One job at a time per stream, so the
    encoder's state is touched by one thread at a time. The steps are those of
    `codings.compress_file`, so the bytes are the ones an in-memory variant would have."""

    __slots__ = ("coding", "level", "chunked", "identity_bytes", "encoded_bytes", "_encoder")

    def __init__(self, coding: str, level: int, chunked: bool) -> None:
        self.coding = coding
        self.level = level
        self.chunked = chunked
        self.identity_bytes = 0  # of the file, read and encoded so far
        self.encoded_bytes = 0  # produced so far, without the chunk framing
        self._encoder: Encoder | None = None  # made in the pool: it may import a package

    def step(self, fd: int, offset: int, length: int) -> Chunk:
        """Pool: encode the next step of the segment (offset, length) of the file."""
        if self._encoder is None:
            self._encoder = Encoder(self.coding, self.level)
        data = os.pread(fd, min(READ_SIZE, length), offset)
        if not data:
            return 0, b""
        out = self._encoder.encode(data)
        last = len(data) == length
        if last:
            out += self._encoder.finish()
        self.identity_bytes += len(data)
        self.encoded_bytes += len(out)
        if not self.chunked:
            return len(data), out
        framed = b"%x\r\n%s\r\n" % (len(out), out) if out else b""
        return len(data), framed + b"0\r\n\r\n" if last else framed


class Outgoing:
    """Queued views and file segments of one response, written as the socket takes them.

    `sendfile` is None on a TLS socket: then no sendfile and no sendmsg (an SSL socket has
    neither); file segments are read by the pool in chunks instead, as they are when a
    `stream` encodes them. `sent` counts every byte of the response sent so far, head
    included.
    """

    __slots__ = ("sent", "stream", "_pieces", "_fd", "_path", "_size", "_cfg", "_loop",
                 "_sendfile", "_read_ahead_to", "_fast_writes", "short")

    def __init__(self, pieces: Iterable[Piece], cfg: Config, loop: Loop,
                 sendfile: SendFile | None, *, sent: int = 0, fd: int = -1, path: str = "",
                 size: int = 0, stream: EncodedStream | None = None) -> None:
        self.sent = sent
        self.stream = stream
        self._pieces: deque[Piece] = deque(pieces)
        self._fd = fd  # ours to close: the file the segments come from (-1: none)
        self._path = path  # for the warning when the file ends short
        self._size = size
        self._cfg = cfg
        self._loop = loop
        self._sendfile = sendfile
        self._read_ahead_to = 0  # the file offset the pool was asked to read ahead up to
        self._fast_writes = 0  # sendfile calls in a row that filled half the send buffer
        self.short = ""  # why the file ended before its Content-Length, once it did

    def write(self, sock: socket.socket) -> int:
        """Send queued bytes and at most one sendfile chunk (nginx's sendfile_max_chunk:
        others get their turn). Raises OSError for the connection to handle."""
        pieces = self._pieces
        tls = self._sendfile is None
        while pieces:
            first = pieces[0]
            if isinstance(first, tuple):
                if tls or self.stream is not None:
                    return NEEDS_CHUNK
                return self._write_file(sock, first)
            try:
                if len(pieces) > 1 and not isinstance(pieces[1], tuple) and not tls:
                    n = sock.sendmsg(list(_leading_views(pieces)))
                else:
                    n = sock.send(first)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return BLOCKED  # TLS retries the same bytes: the view at pieces[0] is unchanged
            self.sent += n
            while n:  # drop what went out; a partial view is re-sliced, never copied
                view = pieces[0]
                assert not isinstance(view, tuple)
                if n >= len(view):
                    n -= len(view)
                    pieces.popleft()
                else:
                    pieces[0] = view[n:]
                    n = 0
        return DONE

    def _write_file(self, sock: socket.socket, segment: tuple[int, int]) -> int:
        assert self._sendfile is not None
        offset, length = segment
        cfg = self._cfg
        try:
            n = self._sendfile(sock.fileno(), self._fd, offset, min(length, cfg.sendfile_chunk))
        except BlockingIOError:
            return BLOCKED
        if n == 0:
            return self._ended_short("shrank while being sent")
        self.sent += n
        if self._size > cfg.readahead > 0:
            self._read_ahead(offset + n)
        if n >= cfg.send_buffer and self._fast_writes < _FAST_WRITES:
            self._note_fast_write(sock)
        elif n < cfg.send_buffer:
            self._fast_writes = 0
        if n < length:
            self._pieces[0] = (offset + n, length - n)
        else:
            self._pieces.popleft()
        return DONE if not self._pieces else BLOCKED

    def read_job(self) -> Callable[[], Chunk]:
        """The pool job that reads (and encodes, for a stream) the next chunk of the
        segment in front; its result goes to `fill()`."""
        offset, length = self._pieces[0]
        if self.stream is not None:
            return partial(self.stream.step, self._fd, offset, length)
        return partial(_read_chunk, self._fd, offset, min(length, _TLS_CHUNK))

    def fill(self, chunk: Chunk) -> bool:
        """Queue what a `read_job` made for the segment in front; False when the file ended
        before it (then `short` says so)."""
        consumed, data = chunk
        if not consumed:
            self._ended_short("shrank while being sent")
            return False
        offset, length = self._pieces.popleft()
        if consumed < length:
            self._pieces.appendleft((offset + consumed, length - consumed))
        if data:  # an encoder may keep a step's output for later
            self._pieces.appendleft(memoryview(data))
        return True

    def failed_read(self, err: OSError) -> None:
        """The pool could not read the next chunk: the response ends short."""
        self._ended_short(f"could not be read: {err}")

    def _ended_short(self, why: str) -> int:
        """A Content-Length that cannot be honoured: the only honest end is closing the
        connection (the client sees a short body)."""
        self.short = f"{self._path or 'a file'} {why}"
        self._pieces.clear()
        return ENDED_SHORT

    def _read_ahead(self, offset: int) -> None:
        """Keep the pool reading at least half a window ahead of what sendfile sends next,
        so a cold file's pages are (or are being) read before the loop asks for them.
        One pool job per window, not per chunk."""
        window = self._cfg.readahead
        if self._read_ahead_to >= offset + window // 2:
            return
        start = max(self._read_ahead_to, offset)
        try:
            self._loop.submit(read_ahead, self._fd, start, window, on_done=_ignore)
        except RuntimeError:
            return  # the pool is shut down: we are stopping
        self._read_ahead_to = start + window

    def _note_fast_write(self, sock: socket.socket) -> None:
        """A sendfile call found at least half the kernel buffer free (Linux doubles the
        size set) and filled it: the reader keeps up. A few in a row and the buffer grows
        to send_buffer_max, so a fast download takes fewer wakeups and calls per byte. A
        slow reader never frees that much between two events: its buffer stays capped."""
        self._fast_writes += 1
        cfg = self._cfg
        if self._fast_writes == _FAST_WRITES and cfg.send_buffer_max > cfg.send_buffer:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.send_buffer_max)
            except OSError:
                pass  # the next send meets whatever went wrong

    def release(self) -> None:
        """Close the fd this response sent from (once: later calls do nothing)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def pieces_of(head: bytes, body: Iterable[bytes | tuple[int, int]],
              data: bytes | None = None) -> list[Piece]:
    """A response as pieces: the head, then the body's bytes and (offset, length) segments
    of a file; with `data` (the file's bytes in memory) the segments become slices of it."""
    pieces: list[Piece] = [memoryview(head)]
    whole = memoryview(data) if data is not None else None
    for part in body:
        if isinstance(part, bytes):
            pieces.append(memoryview(part))
        elif whole is not None:  # slices of the cached bytes: no copy, no file
            pieces.append(whole[part[0]:part[0] + part[1]])
        else:
            pieces.append(part)
    return pieces


def _leading_views(pieces: deque[Piece]) -> Iterator[memoryview]:
    """The views at the front of `pieces`, up to the first file segment (one sendmsg)."""
    for item in itertools.islice(pieces, _IOV_MAX):
        if isinstance(item, tuple):
            return
        yield item


def _read_chunk(fd: int, offset: int, size: int) -> Chunk:
    data = os.pread(fd, size, offset)
    return len(data), data


def _ignore(future: Future[None]) -> None:
    """A read-ahead hint needs no answer."""
