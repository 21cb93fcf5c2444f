"""A tiny raw-socket HTTP/1.1 client for tests: exact bytes out, responses parsed strictly."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps the last value
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def connect(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


class Reader:
    """Reads successive responses from one socket (keep-alive and pipelining)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def read_response(self, head_only: bool = False) -> Response:
        """One response; `head_only` for HEAD requests (Content-Length but no body)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"EOF before a complete head: {self.buf[:200]!r}")
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        version, code, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(code)
        length = 0
        if not head_only and status not in (204, 304) and status >= 200:
            if "content-length" in headers:
                length = int(headers["content-length"])
            else:
                while self._fill():
                    pass
                length = len(self.buf)
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError(f"EOF after {len(self.buf)} of {length} body bytes")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(status, reason, headers, body, raw_head)

    def at_eof(self, timeout: float = 2.0) -> bool:
        """True if the server closes the connection (with nothing more sent) within timeout."""
        self.sock.settimeout(timeout)
        try:
            return not self.buf and not self._fill()
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


def exchange(port: int, data: bytes, *, count: int = 1, head_only: bool = False,
             timeout: float = 5.0) -> list[Response]:
    """Send `data` on a new connection and read `count` responses."""
    with connect(port, timeout=timeout) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        return [reader.read_response(head_only) for _ in range(count)]


def get(port: int, path: str, headers: str = "", method: str = "GET") -> Response:
    request = f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n"
    return exchange(port, request.encode(), head_only=method == "HEAD")[0]


def read_all(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data`, then read until the server closes (or the timeout passes)."""
    with connect(port, timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out
