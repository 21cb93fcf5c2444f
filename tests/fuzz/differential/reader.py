"""Reading responses: a sans-IO reader that splits the bytes of one connection into
responses (status, fields, body), and says what it could not parse."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)

    def header(self, name: bytes) -> bytes | None:
        """The last value of a field (name in lower case)."""
        values = [v for n, v in self.headers if n == name]
        return values[-1] if values else None


class Unparsable(Exception):
    """Bytes that are no HTTP/1.x response where one must start (or a broken body)."""


_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})(?: [^\r\n]*)?")
_MAX_RESPONSE_HEAD = 64 * 1024


class ResponseReader:
    """A sans-IO reader of the responses on one connection: `feed()` bytes as they come,
    `close()` at EOF. `head_only[i]` says the i-th final response answers a HEAD. Bodies are
    framed by Transfer-Encoding: chunked, Content-Length, or the close; none for HEAD, 1xx,
    204 and 304. 1xx responses are counted apart (`interim`). Bytes that cannot be parsed
    stop the reader (`broken`) and stay in `leftover`."""

    def __init__(self, head_only: Sequence[bool] = ()) -> None:
        self.head_only = tuple(head_only)
        self.responses: list[Response] = []
        self.interim = 0
        self.broken = False
        self._buf = bytearray()
        self._current: Response | None = None
        self._framing = ""  # "length", "chunked" or "close" while a body is read
        self._left = 0  # body bytes due (length), or of the current chunk
        self._chunk_state = "size"  # "size", "data", "data-end" or "trailer"

    @property
    def pending(self) -> bool:
        """A response has started and is not complete, or unparsed bytes wait."""
        return self._current is not None or bool(self._buf)

    @property
    def leftover(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data
        if self.broken:
            return
        try:
            while self._step():
                pass
        except Unparsable:
            self.broken = True

    def close(self) -> None:
        """The server closed: a body that runs to the close is complete."""
        if not self.broken and self._current is not None and self._framing == "close":
            self._current.body += self._buf
            self._buf.clear()
            self._complete()

    def _step(self) -> bool:
        """Advance by one head or one body; False when more bytes are needed."""
        if self._current is None:
            return self._read_head()
        if self._framing == "length":
            return self._read_length()
        if self._framing == "chunked":
            return self._read_chunked()
        return False  # "close": everything until EOF

    def _read_head(self) -> bool:
        if not self._buf:
            return False
        if not b"HTTP/".startswith(bytes(self._buf[:5])):
            raise Unparsable  # nginx answers HTTP/0.9 with a bare body, for one
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_RESPONSE_HEAD:
                raise Unparsable
            return False
        lines = bytes(self._buf[:end]).split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise Unparsable
        headers = [_header(line) for line in lines[1:]]
        del self._buf[:end + 4]
        response = Response(int(match.group(1)), headers)
        if response.status < 200:
            self.interim += 1
            return True
        self._current = response
        self._frame(response)
        return True

    def _frame(self, response: Response) -> None:
        index = len(self.responses)
        head_only = index < len(self.head_only) and self.head_only[index]
        coding = response.header(b"transfer-encoding")
        length = response.header(b"content-length")
        if head_only or response.status in (204, 304):
            self._complete()
        elif coding is not None and coding.lower().endswith(b"chunked"):
            self._framing, self._chunk_state = "chunked", "size"
        elif length is not None:
            if not length.isdigit():
                raise Unparsable
            self._framing, self._left = "length", int(length)
        else:
            self._framing = "close"

    def _complete(self) -> None:
        assert self._current is not None
        self.responses.append(self._current)
        self._current, self._framing, self._left = None, "", 0

    def _take(self) -> None:
        """Move up to `_left` bytes of the buffer into the current body."""
        assert self._current is not None
        n = min(self._left, len(self._buf))
        self._current.body += self._buf[:n]
        del self._buf[:n]
        self._left -= n

    def _read_length(self) -> bool:
        self._take()
        if self._left:
            return False
        self._complete()
        return True

    def _read_chunked(self) -> bool:
        if self._chunk_state == "data":
            self._take()
            if self._left:
                return False
            self._chunk_state = "data-end"
            return True
        line = self._line()
        if line is None:
            return False
        if self._chunk_state == "size":
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                raise Unparsable
            self._left = int(size_text, 16)
            self._chunk_state = "data" if self._left else "trailer"
        elif self._chunk_state == "data-end":
            if line:
                raise Unparsable
            self._chunk_state = "size"
        elif not line:  # the empty line that ends the trailer section
            self._complete()
        return True

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > _MAX_RESPONSE_HEAD:
                raise Unparsable
            return None
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        return line


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    if not colon:
        raise Unparsable
    return name.strip().lower(), value.strip()
