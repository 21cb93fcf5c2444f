"""HTTP/1.1 on the wire for every test layer: one request builder, one strict response parser
(of bytes already sent, or read from a socket), and a tiny raw-socket client built on them."""
from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class _Default(Enum):
    HOST = "the default Host"


def request(target: str | bytes = "/", *, method: str = "GET", version: str = "HTTP/1.1",
            headers: str = "", host: str | None | _Default = _Default.HOST,
            close: bool = False, body: bytes = b"") -> bytes:
    """Request bytes, latin-1: `Host: test` by default on HTTP/1.1 only; `headers` end in CRLF."""
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    if host is _Default.HOST:
        host = "test" if version == "HTTP/1.1" else None
    head = f"{method} {target} {version}\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    head += headers
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + body


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps the last value
    body: bytes
    head: bytes = field(repr=False, default=b"")  # as sent, with the final CRLF CRLF

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_head(head: bytes) -> Response:
    """A response head (through its blank line), strictly; the body is left empty."""
    assert head.endswith(b"\r\n\r\n"), head[-200:]
    lines = head[:-4].decode("latin-1").split("\r\n")
    version, code, reason = (lines[0].split(" ", 2) + [""])[:3]
    assert version == "HTTP/1.1", lines[0]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        assert colon, line
        headers[name.strip().lower()] = value.strip()
    return Response(int(code), reason, headers, b"", head)


def body_length(resp: Response, head_only: bool = False) -> int | None:
    """How many body bytes follow the head; None: all of them, until the server closes."""
    if head_only or resp.status in (204, 304) or resp.status < 200:
        return 0
    length = resp.header("content-length")
    return None if length is None else int(length)


def parse_responses(data: bytes, head_only: Iterable[bool] = ()) -> list[Response]:
    """Split bytes already sent into responses (strictly: leftover bytes are an error).

    `head_only[i]` says the i-th response answers HEAD (Content-Length but no body); a
    chunked body is decoded (`body` holds the content); any other response without
    Content-Length has no body.
    """
    flags = list(head_only)
    responses: list[Response] = []
    while data:
        end = data.find(b"\r\n\r\n")
        assert end >= 0, f"incomplete head: {data[:200]!r}"
        resp = parse_head(data[:end + 4])
        data = data[end + 4:]
        is_head = flags[len(responses)] if len(responses) < len(flags) else False
        if resp.header("transfer-encoding") == "chunked" and not is_head:
            resp.body, data = dechunk(data)
            responses.append(resp)
            continue
        length = body_length(resp, is_head) or 0
        assert len(data) >= length, f"short body: {len(data)} of {length}"
        resp.body, data = data[:length], data[length:]
        responses.append(resp)
    return responses


def dechunk(data: bytes) -> tuple[bytes, bytes]:
    """A chunked body's content (strictly: sizes in hex, CRLFs, a last chunk and no
    trailers), and the bytes after it."""
    content = []
    while True:
        line, crlf, data = data.partition(b"\r\n")
        assert crlf and line and not line.strip(b"0123456789abcdef"), line[:40]
        size = int(line, 16)
        if size == 0:
            assert data[:2] == b"\r\n", data[:40]
            return b"".join(content), data[2:]
        assert data[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
        content.append(data[:size])
        data = data[size + 2:]


# -- a raw-socket client ----------------------------------------------------------------------


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
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if not self._fill():
                raise ConnectionError(f"EOF before a complete head: {self.buf[:200]!r}")
        resp = parse_head(self.buf[:end + 4])
        self.buf = self.buf[end + 4:]
        length = body_length(resp, head_only)
        if length is None:
            while self._fill():
                pass
            length = len(self.buf)
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError(f"EOF after {len(self.buf)} of {length} body bytes")
        resp.body, self.buf = self.buf[:length], self.buf[length:]
        return resp

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
    """One request with `Host: test` and `Connection: close`; its response."""
    data = request(path, method=method, headers=headers, close=True)
    return exchange(port, data, head_only=method == "HEAD")[0]


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
