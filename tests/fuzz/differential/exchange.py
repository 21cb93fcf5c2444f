"""One case on both servers: each on a fresh connection, the case's bytes in one write, the
answers read with one selector and parsed as they arrive. A read ends when the server
closes, when the case's requests are answered and QUIET passes in silence, or at the
deadline. Traffic goes to 127.0.0.1 only; each case is bounded in bytes and in time.
"""
from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .cases import Case
from .reader import ResponseReader

QUIET = 0.15  # seconds of silence after the expected responses before a read ends
CASE_DEADLINE = 1.0  # seconds a case may take on one server, whatever happens
CONNECT_TIMEOUT = 2.0
MAX_RECEIVED = 4 * 1024 * 1024  # bytes read from one server for one case, at most


@dataclass(frozen=True)
class Outcome:
    """What one server did with one case."""

    statuses: tuple[int, ...]  # the final responses that arrived whole, in order
    closed: bool  # the server closed the connection (FIN or reset) before the read ended
    leftover: bytes = b""  # the start of what could not be parsed (or an unfinished response)
    leftover_size: int = 0
    interim: int = 0  # 1xx responses
    canary: bool = False  # the canary token was among the bytes received
    error: str = ""  # connecting or sending failed

    @property
    def first(self) -> int | None:
        return self.statuses[0] if self.statuses else None

    @property
    def responses(self) -> int:
        return len(self.statuses)

    @property
    def answers(self) -> int:
        """The responses, and one more for bytes that began an answer but could not be
        parsed or did not finish (nginx answers HTTP/0.9 with a bare body, for one)."""
        return len(self.statuses) + bool(self.leftover_size)

    def describe(self) -> str:
        text = f"statuses {list(self.statuses)}, {'closed' if self.closed else 'open'}"
        if self.interim:
            text += f", {self.interim} interim"
        if self.leftover_size:
            text += f", {self.leftover_size} bytes unparsed: {self.leftover!r}"
        if self.canary:
            text += ", CANARY in the bytes"
        if self.error:
            text += f", {self.error}"
        return text


class Exchange:
    """One case on one server: connect, send the bytes in one write, then read (driven by
    run_case's selector) until the server closes, the expected responses arrived and QUIET
    passed in silence, or the deadline."""

    def __init__(self, port: int, case: Case, token: bytes) -> None:
        self.case, self.token = case, token
        self.reader = ResponseReader(case.heads)
        self.received = bytearray()
        self.closed = False
        self.done = False
        self.error = ""
        self.deadline = time.monotonic() + CASE_DEADLINE
        self.last_byte = time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(CONNECT_TIMEOUT)
            self.sock.connect(("127.0.0.1", port))
        except OSError as err:
            self.error, self.done = f"connect: {err}", True
            return
        try:
            self.sock.sendall(case.data)
        except OSError as err:  # the server may have answered and closed already
            self.error = f"send: {err.__class__.__name__}"
        self.sock.setblocking(False)

    def wake_at(self) -> float:
        """When the read ends if nothing more arrives."""
        answered = len(self.reader.responses) >= self.case.requests and not self.reader.pending
        return min(self.deadline, self.last_byte + QUIET) if answered else self.deadline

    def on_readable(self, now: float) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # reset: the server is gone
            data = b""
        if not data:
            self.closed = self.done = True
            self.reader.close()
            return
        self.received += data
        self.reader.feed(data)
        self.last_byte = now
        if len(self.received) > MAX_RECEIVED:
            self.done = True

    def outcome(self) -> Outcome:
        leftover = self.reader.leftover
        return Outcome(tuple(r.status for r in self.reader.responses), self.closed,
                       leftover[:200], len(leftover), self.reader.interim,
                       self.token in self.received, self.error)


def run_case(case: Case, ports: Mapping[str, int], token: bytes) -> dict[str, Outcome]:
    """Send `case` to every server at once, each on a fresh connection; read both with one
    selector, so a case costs the slower server's time, not the sum."""
    exchanges = {name: Exchange(port, case, token) for name, port in ports.items()}
    try:
        with selectors.DefaultSelector() as selector:
            for ex in exchanges.values():
                if not ex.done:
                    selector.register(ex.sock, selectors.EVENT_READ, ex)
            _drive(selector)
    finally:
        for ex in exchanges.values():
            ex.sock.close()
    return {name: ex.outcome() for name, ex in exchanges.items()}


def _drive(selector: selectors.BaseSelector) -> None:
    """Read every registered exchange until each is done."""
    while True:
        now = time.monotonic()
        live: list[Exchange] = []
        for key in list(selector.get_map().values()):
            ex: Exchange = key.data
            if ex.done or now >= ex.wake_at():
                ex.done = True
                selector.unregister(key.fileobj)
            else:
                live.append(ex)
        if not live:
            return
        timeout = max(0.0, min(ex.wake_at() for ex in live) - now)
        for key, _ in selector.select(timeout):
            ready: Exchange = key.data
            ready.on_readable(time.monotonic())
