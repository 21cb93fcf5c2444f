"""The connection tests' rig: a real `Connection` wired to the fakes, and the files it serves.

`Rig` starts one Connection on a FakeSocket, a FakeLoop and a FakeOwner and drives it (deliver
bytes, run pool jobs, call_soon turns and WRITE events); `replies()` parses what it sent.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evserver.connection import Connection
from evserver.loop import READ, WRITE
from evserver.phases import Phase
from evserver.site import Site
from tests.wire import Response, parse_responses

from .fakes import FakeLoop, FakeOwner, FakeSocket, FakeTLSContext, FakeTLSSocket, Journal

PEER = "203.0.113.9"
HELLO = b"hello, world\n"
INDEX = b"<!doctype html><title>home</title><p>home</p>\n"
BIG_SIZE = 35_000  # > cache_max_entry (4096): streamed from an fd with the fake sendfile
MID_SIZE = 100_000  # > the 64 KiB concat limit: head and body go out with sendmsg
_LOG = re.compile(rb'^(\S+) - - \[[^\]]+\] "([^"]*)" (\d+) (\d+) "[^"]*" "[^"]*" [\d.]+\n$')

class Rig:
    """One Connection wired to a FakeSocket, a FakeLoop and a FakeOwner, already started."""

    def __init__(self, docroot: Path, **overrides: Any) -> None:
        self.docroot = docroot
        self.journal: Journal = []
        self.loop = FakeLoop(self.journal)
        self.sock = FakeSocket(self.journal)
        self.owner = FakeOwner(docroot, self.loop, **overrides)
        self.conn = Connection(self.sock, PEER, self.owner,  # type: ignore[arg-type]
                               sendfile=self.sock.sendfile)
        self.conn.start()

    @property
    def phase(self) -> Phase:
        return self.conn.phase

    @property
    def mask(self) -> int:
        return self.loop.mask(self.sock)

    def receive(self, *chunks: bytes | BaseException) -> None:
        """Each chunk arrives on its own and gets its own READ event."""
        for chunk in chunks:
            self.sock.feed(chunk)
            self.conn.on_event(READ)

    def writable(self) -> None:
        self.conn.on_event(WRITE)

    def run_jobs(self) -> list[Any]:
        """Complete every pending pool job for real; returns their futures."""
        return [job.run() for job in self.loop.undelivered()]

    def replies(self, head_only: tuple[bool, ...] = ()) -> list[Response]:
        return parse_responses(bytes(self.sock.sent), head_only)

    def log(self) -> list[tuple[bytes, int, int]]:
        """(request line, status, body bytes) of each access-log line."""
        out = []
        for line in self.owner.access_log.lines:
            m = _LOG.match(line)
            assert m is not None, line
            assert m.group(1) == PEER.encode()
            out.append((m.group(2), int(m.group(3)), int(m.group(4))))
        return out

    def serve(self, request: bytes) -> None:
        """Deliver a request, then run pool jobs, call_soon turns and WRITE events (with
        the socket's current window) until the connection has nothing more to do."""
        self.receive(request)
        self.settle()

    def settle(self) -> None:
        for _ in range(10_000):  # enough WRITE events for a big response through tiny windows
            if self.loop.undelivered():
                self.run_jobs()
            elif self.loop.soon:
                self.loop.run_soon()
            elif self.phase is Phase.SEND and self.sock.window != 0:
                self.writable()
            else:
                return
        raise AssertionError("the connection never settled")

    def file(self, name: str) -> bytes:
        return (self.docroot / name).read_bytes()

    def index_of(self, *entry: Any) -> int:
        return next(i for i, e in enumerate(self.journal) if e[:len(entry)] == entry)


class TLSRig(Rig):
    """A Rig on a TLS port with a faked handshake: `plain` is the accepted socket, `sock`
    the FakeTLSSocket it becomes (the plaintext HTTP goes through it)."""

    def __init__(self, docroot: Path, **overrides: Any) -> None:
        self.docroot = docroot
        self.journal = []
        self.loop = FakeLoop(self.journal)
        self.plain = FakeSocket(self.journal)
        self.sock = FakeTLSSocket(self.journal)
        self.context = FakeTLSContext(self.sock)
        self.owner = FakeOwner(docroot, self.loop, **overrides)
        site = self.owner.site
        self.owner.site = Site.build(site.cfg, site.docroot, credentials=site.credentials)
        self.conn = Connection(self.plain, PEER, self.owner,  # type: ignore[arg-type]
                               sendfile=self.sock.sendfile, tls=self.context)  # type: ignore
        self.conn.start()

    def handshake(self) -> None:
        """A ClientHello arrives on the plain socket: wrapped, handshaken, HTTP begins."""
        self.plain.feed(b"\x16\x03\x01")
        self.conn.on_event(READ)
