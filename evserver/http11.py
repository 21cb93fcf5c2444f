"""Sans-IO HTTP/1.x for a server: request parsing, response heads, HTTP dates.

Owns: `Request`, `RequestParser`, `HTTPError`, `build_head()`, `DateLine`, `http_date()`,
`parse_http_date()`.
Imports nothing from evserver, and knows no socket, clock, thread or logger: it is fed bytes
and returns values, so every behaviour can be tested as a pure function over bytes.
"""
from __future__ import annotations

import calendar
import ipaddress
import re
import time
from collections.abc import Iterable
from enum import Enum
from http import HTTPStatus
from typing import Any

# RFC 9110 §5.6.2: tchar.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values are visible characters, SP and HTAB (obs-text allowed).
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 §3.2: a request-target holds no whitespace or control characters.
_BAD_TARGET_BYTE = re.compile(rb"[\x00-\x20\x7f]")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_BLANK_LINE = re.compile(rb"\n\r?\n")  # RFC 9112 §2.2: a bare LF may end a line
# A valid field line (RFC 9112 §5): token, colon, optional whitespace, a value of visible
# characters, SP, HTAB and obs-text, optional whitespace, (CR)LF. The value is captured
# without its surrounding whitespace.
# The value starts and ends with a non-blank, so that no backtracking is ambiguous: the
# match is linear in the line's length even on hostile input.
_FIELD_TEXT = (rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
               rb"((?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)?)[ \t]*")
_FIELD_LINE = re.compile(_FIELD_TEXT + rb"\r?\n")
_FIELD_SECTION = re.compile(rb"(?:" + _FIELD_TEXT + rb"\r?\n)*")
# The fast path's request line: GET or HEAD of an origin-form target, HTTP/1.0 or 1.1, CRLF.
_SIMPLE_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[^\x00-\x20\x7f]*) HTTP/1\.([01])\r\n")
# Bytes a field line may hold (RFC 9110 §5.5, RFC 9112 §5): VCHAR, SP, HTAB, obs-text.
# bytes.translate deletes them in C, at a byte per cycle or so; a regex walks the section
# several times slower (measured: 2 µs against 0.3 for a browser's 400-byte head).
_FIELD_BYTES = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Header names the framing pass looks at; the others pass with one set lookup.
_FRAMING = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection"))
_EMPTY_LINES = re.compile(rb"(?:\r?\n)+")  # CRLF or LF; a bare CR ends no line
# RFC 9112 §3.2 and RFC 3986 §3.2.2: Host is uri-host [ ":" port ]; uri-host an IP-literal in
# brackets or a reg-name (unreserved, pct-encoded, sub-delims; an IPv4 address is one too),
# port *DIGIT. Brackets hold an IPv6 address or an IPvFuture (checked loosely here, and
# exactly by _valid_host).
_HOST = re.compile(rb"(?:\[([vV][0-9A-Fa-f]+\.[!$&'()*+,;=:\w.~-]+|[0-9A-Fa-f:.]+)\]"
                   rb"|(?:[\w.~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?", re.ASCII)
_VALID_HOSTS: set[bytes] = set()  # Host values _valid_host has passed
_VALID_HOSTS_MAX = 256
_CL_DIGITS_MAX = 18  # h11 caps Content-Length digits too: int() of 10**6 digits is a DoS
# Heads seen before, byte for byte, and the Request the fast path made of each: browsers and
# load testers repeat theirs, so most heads are parsed once. One memo per set of limits (the
# verdict depends on them); only heads without a body are kept, so a hit arms nothing. A
# Request is never changed once made, so one object serves every connection that sends it.
_HEAD_MEMOS: dict[tuple[int, int, int, int], dict[bytes, Request]] = {}
_HEAD_MEMO_MAX = 256  # heads kept per memo; when full it starts again (bounded, and cheap)
_HEAD_MEMO_BYTES = 4096  # longer heads are not kept: at most 1 MiB of heads per memo

# Chunked framing limits: a chunk-size line with extensions, and the trailer section.
_MAX_CHUNK_LINE = 4096
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class HTTPError(Exception):
    """A request that gets an error response: the only exception that reaches a client.

    `detail` is for the log, never echoed; `close` says whether framing is lost (the
    connection must close after the response). `body` replaces the generic error page.
    """

    def __init__(self, status: HTTPStatus, detail: str = "", *,
                 headers: tuple[tuple[bytes, bytes], ...] = (), close: bool = True,
                 body: bytes | None = None) -> None:
        super().__init__(f"{status.value} {status.phrase}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = headers
        self.close = close
        self.body = body
        self.request_line = b""  # what the parser could read of the request line, for the log
        # Set when the error is in the body of a request that already has its response:
        # a second response would be taken as the next request's, so the connection closes
        # without one (one answer per request, never more).
        self.answered = False


# Any of these makes a request conditional or ranged (RFC 9110 §13.1, §14.2): the connection
# asks `file_plan` only when one is present, so a plain GET costs one set test.
CONDITIONAL = frozenset((b"if-match", b"if-none-match", b"if-modified-since",
                         b"if-unmodified-since", b"if-range", b"range"))
# ... and with these, the fields that may change the answer to a GET of a file.
_NOT_PLAIN = CONDITIONAL | {b"expect", b"cache-control"}


class Request:
    """One parsed request head. Header names are lower-cased; values are stripped bytes.

    A plain slotted class, not a frozen dataclass: one is built per request, and a frozen
    dataclass's __init__ costs a call per field. `fields` maps each name to its first value,
    built in C, so that the server's lookups are dict lookups, not scans of `headers`.

    What the server asks of every request is found here once (`line`, `referer`,
    `user_agent`, `plain`): a Request from the memo of heads seen is made once and answered
    many times. For the same reason it keeps `routed`, the route the connection found for it
    (`files.route`, a pure function of the request and the document root) with that root.
    """

    __slots__ = ("method", "target", "version", "headers", "keep_alive", "fields", "line",
                 "referer", "user_agent", "plain", "routed")

    def __init__(self, method: bytes, target: bytes, version: bytes,
                 headers: tuple[tuple[bytes, bytes], ...], keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.fields: dict[bytes, bytes] = dict(reversed(headers))  # the first value wins
        # The request line, as logged: made once, so a Request from the memo of heads seen
        # hands the log the same object (whose hash is then already known) every time.
        self.line = b"%s %s %s" % (method, target, version)
        self.referer = self.fields.get(b"referer")
        self.user_agent = self.fields.get(b"user-agent")
        # A keep-alive HTTP/1.1 GET or HEAD with no field that may change the answer: what
        # the connection's hot path answers.
        self.plain = (keep_alive and version == b"HTTP/1.1"
                      and (method == b"GET" or method == b"HEAD")
                      and _NOT_PLAIN.isdisjoint(self.fields))
        # (document root, files.Route), which this module cannot name: set by the connection.
        self.routed: tuple[str, tuple[Any, str, tuple[str, ...]]] | None = None

    def get(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower-case), or None."""
        return self.fields.get(name)

    def _key(self) -> tuple[object, ...]:
        return (self.method, self.target, self.version, self.headers, self.keep_alive)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Request{self._key()!r}"


class _Body(Enum):
    """What the parser is doing with the bytes after the current head."""

    NONE = 0
    LENGTH = 1  # discarding `_body_left` bytes
    CHUNK_SIZE = 2  # waiting for a chunk-size line
    CHUNK_DATA = 3  # discarding `_body_left` bytes of chunk data
    CHUNK_END = 4  # waiting for the empty line (CRLF) that must follow chunk data
    TRAILER = 5  # discarding trailer lines until the empty one


_NO_BODY = _Body.NONE  # a module global: Enum member lookups are slow in 3.11


class RequestParser:
    """Incremental request parser: `feed()` bytes in any split, then call `maybe_next()`.

    Request bodies are read and discarded (evserver serves no method that takes one), so
    the next pipelined request always parses. After an `HTTPError` whose `close` is set,
    the parser is in a sink state and raises that error again.
    """

    # One per connection, idle ones included: slots keep it small.
    __slots__ = ("max_head", "max_request_line", "max_headers", "max_body", "max_field", "_buf",
                 "_scanned", "_body", "_body_left", "_body_total", "_error", "_seen")

    def __init__(self, max_head: int = 16 * 1024, max_request_line: int = 8 * 1024,
                 max_headers: int = 100, max_body: int = 1024 * 1024,
                 max_field: int = 8 * 1024) -> None:
        self.max_head = max_head
        self.max_request_line = max_request_line
        self.max_headers = max_headers
        self.max_body = max_body
        self.max_field = max_field  # one header field line (nginx large_client_header_buffers)
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the blank line (O(n) trickle)
        self._body = _NO_BODY
        self._body_left = 0
        self._body_total = 0
        self._error: HTTPError | None = None
        self._seen = _HEAD_MEMOS.setdefault(
            (max_head, max_request_line, max_headers, max_field), {})

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed (a partial request, or pipelined ones)."""
        return len(self._buf)

    @property
    def empty(self) -> bool:
        """True when no byte waits and no body is being discarded: between requests."""
        return not self._buf and self._body is _NO_BODY

    @property
    def in_body(self) -> bool:
        """True while the previous request's body is still being discarded."""
        return self._body is not _NO_BODY

    def partial_line(self, limit: int = 200) -> bytes:
        """The start of an unfinished request line, to log a request that timed out."""
        if self._body is not _NO_BODY:
            return b""
        end = self._buf.find(b"\n", 0, limit)
        return bytes(self._buf[: end if end >= 0 else limit]).rstrip(b"\r")

    def feed(self, data: bytes) -> None:
        self._buf += data

    def remembered(self, data: bytes) -> Request | None:
        """The Request of `data` if it is exactly one whole head seen before, arriving
        between requests (as a keep-alive client's next request does): taken from the memo
        of heads seen, neither fed nor parsed. None otherwise: then `feed(data)`."""
        if self._buf or self._body is not _NO_BODY or self._error is not None:
            return None
        return self._seen.get(data)

    def maybe_next(self) -> Request | None:
        """The next complete request, or None until more bytes arrive. Raises HTTPError."""
        if self._error is not None:
            raise self._error
        try:
            if self._body is not _NO_BODY:
                try:
                    if not self._skip_body():
                        return None
                except HTTPError as err:
                    err.answered = True  # the body's request was returned, so answered
                    raise
            elif not self._scanned and self._buf:
                # The usual case: a whole new request in a fresh buffer.
                simple = self._maybe_simple_head()
                if simple is not None:
                    return simple
            return self._maybe_head()
        except HTTPError as err:
            if err.close:
                self._error = err
                self._buf.clear()
            raise

    # -- the head -----------------------------------------------------------------------

    def _maybe_head(self) -> Request | None:
        buf = self._buf
        if buf and buf[0] in (0x0D, 0x0A):
            # RFC 9112 §2.2: ignore empty lines before a request line (old clients' extra CRLF).
            # Only whole CRLF/LF lines: lstrip(b"\r\n") also dropped bare CRs, so "\rGET / ..."
            # was accepted (found by tests/fuzz); a bare CR left here is a 400 below.
            empty = _EMPTY_LINES.match(buf)
            if empty is not None:
                del buf[: empty.end()]
                self._scanned = 0
            if buf == b"\r":
                return None  # perhaps the first half of one more CRLF
        if not buf:
            return None
        if buf[0] < 0x21:
            # h11's early check: a TLS ClientHello or binary junk never becomes a request.
            raise HTTPError(HTTPStatus.BAD_REQUEST, "request line starts with a control byte")
        blank = _BLANK_LINE.search(buf, max(0, self._scanned - 2))
        if blank is None:
            self._scanned = len(buf)
            self._check_limits(len(buf))
            return None
        # Judge a complete head exactly as its longest incomplete prefix was judged, so the
        # verdict (414, 431 or fine) does not depend on how the bytes were split. (Before,
        # a head of exactly max_head bytes, or a request line of exactly max_request_line
        # bytes ending in CRLF, passed when fed whole but not when fed byte by byte.)
        self._check_limits(blank.end() - 1)
        head = bytes(buf[: blank.start()])
        del buf[: blank.end()]
        self._scanned = 0
        return self._parse_head(head)

    def _maybe_simple_head(self) -> Request | None:
        """The fast path: the whole common request, or None to take the general path.

        A head seen before byte for byte (by any parser with these limits) is answered from
        the memo of heads seen, with the Request made the first time. Otherwise it takes
        only what it can judge cheaply: a request line matching the pattern,
        CRLF line ends, valid field lines, well inside every limit. Anything else (a bare
        LF, a bad byte, a limit near) goes to the general path, which reaches the same
        verdict slowly; tests/unit check that the two agree.
        """
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self.max_head:
            return None
        head = bytes(buf[:end + 4]) if end + 4 < len(buf) else bytes(buf)
        seen = self._seen.get(head)
        if seen is not None:
            if end + 4 == len(buf):
                buf.clear()
            else:
                del buf[:end + 4]
            return seen
        m = _SIMPLE_REQUEST_LINE.match(buf)
        if m is None or m.end() - 2 > self.max_request_line:
            return None
        start = m.end()
        section = bytes(buf[start:end + 2]) if start <= end else b""  # lines with CRLFs
        lines = section.split(b"\r\n")
        lines.pop()  # the empty string after the last CRLF
        # Only CR LF pairs may remain once every allowed byte is deleted.
        if (len(lines) > self.max_headers or len(section) > self.max_field
                or section.translate(None, _FIELD_BYTES) != b"\r\n" * len(lines)):
            return None
        headers = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if not name or not colon or name.translate(None, TCHAR):
                return None  # no colon, an empty name, a space before the colon, obs-fold
            headers.append((name.lower(), value.strip(b" \t")))
        method, target, minor = m.group(1, 2, 3)
        if minor == b"1":
            version, keep_default = b"HTTP/1.1", True
        else:
            version, keep_default = b"HTTP/1.0", False
        fields = tuple(headers)
        try:
            keep_alive = self._frame(method, version, fields, keep_default)
        except HTTPError as err:
            err.request_line = bytes(buf[: min(start - 2, 200)])
            raise
        if end + 4 == len(buf):
            buf.clear()
        else:
            del buf[:end + 4]
        req = Request(method, target, version, fields, keep_alive)
        # A head that arms a body is parsed each time (the body must be armed each time).
        if self._body is _NO_BODY and len(head) <= _HEAD_MEMO_BYTES:
            if len(self._seen) >= _HEAD_MEMO_MAX:
                self._seen.clear()
            self._seen[head] = req
        return req

    def _check_limits(self, n: int) -> None:
        """Raise 414/431 if the first `n` bytes of an unfinished head already break a limit.

        max_request_line bounds the request line without its CRLF (a trailing CR may still
        turn out to be the line's end); max_head bounds the whole head including the blank
        line, so an unfinished one may hold at most max_head - 1 bytes. Judging only the
        first max_head bytes gives the verdict a byte-by-byte feed would have reached first.
        """
        buf = self._buf
        n = min(n, self.max_head)
        k = min(n, self.max_request_line + 2)
        end = buf.find(b"\n", 0, k)
        if end < 0:  # the line goes on for at least k bytes, the last perhaps its CR
            end = k
        if end - (buf[end - 1] == 0x0D) > self.max_request_line:
            err = HTTPError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
        elif n >= self.max_head:
            err = HTTPError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "head too large")
        else:
            return
        # The line's start, for the log and for the method: a HEAD's error has no body.
        err.request_line = bytes(buf[:min(end, 200)]).rstrip(b"\r")
        raise err

    def _parse_head(self, head: bytes) -> Request:
        end = head.find(b"\n")
        request_line = head if end < 0 else head[:end]
        if request_line[-1:] == b"\r":
            request_line = request_line[:-1]
        try:
            method, target, version, keep_default = self._parse_request_line(request_line)
            headers = self._parse_fields(b"" if end < 0 else head[end + 1:] + b"\n")
            keep_alive = self._frame(method, version, headers, keep_default)
        except HTTPError as err:
            err.request_line = request_line[:200]
            raise
        return Request(method, target, version, headers, keep_alive)

    def _parse_fields(self, block: bytes) -> tuple[tuple[bytes, bytes], ...]:
        """The header section: each line ends in LF (perhaps CRLF)."""
        if block.count(b"\n") > self.max_headers:
            raise HTTPError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers")
        # The common case: the whole section is valid and no line can be over the field
        # limit; one regex validates it and one splits it, instead of two per line.
        if len(block) <= self.max_field and _FIELD_SECTION.fullmatch(block):
            return tuple((name.lower(), value) for name, value in _FIELD_LINE.findall(block))
        lines = block.split(b"\n")[:-1]
        if b"\r" in block:
            lines = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        if max(map(len, lines), default=0) > self.max_field:
            raise HTTPError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header too large")
        return tuple(_parse_field(line) for line in lines)  # raises the precise error

    def _parse_request_line(self, line: bytes) -> tuple[bytes, bytes, bytes, bool]:
        # Its length was already checked by _check_limits.
        parts = line.split(b" ")
        if len(parts) != 3:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "request line is not 'method target version'")
        method, target, version = parts
        if not _TOKEN.fullmatch(method):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "method is not a token")
        if not target or _BAD_TARGET_BYTE.search(target):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "bad request-target")
        match = _VERSION.fullmatch(version)
        if match is None:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "bad HTTP version")
        major, minor = match.groups()
        if major != b"1":
            if major == b"0":
                raise HTTPError(HTTPStatus.BAD_REQUEST, "HTTP/0.x")
            raise HTTPError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/2 or later over text")
        if minor == b"0":
            return method, target, b"HTTP/1.0", False
        return method, target, b"HTTP/1.1", True  # RFC 9112 §2.6: other 1.x minors act as 1.1

    def _frame(self, method: bytes, version: bytes, headers: tuple[tuple[bytes, bytes], ...],
               keep_alive: bool) -> bool:
        """Check Host and body framing (RFC 9112 §6.3) and arm body discarding.

        Returns whether the client wants the connection kept open.
        """
        hosts = 0
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        for name, value in headers:
            if name not in _FRAMING:
                continue
            if name == b"host":
                hosts += 1
                if value not in _VALID_HOSTS and not _valid_host(value):
                    raise HTTPError(HTTPStatus.BAD_REQUEST, "invalid Host")
            elif name == b"content-length":
                lengths.update(v.strip() for v in value.split(b","))
            elif name == b"transfer-encoding":
                codings.extend(v.strip().lower() for v in value.split(b","))
            elif name == b"connection":
                tokens = {t.strip().lower() for t in value.split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        if version == b"HTTP/1.1" and hosts != 1:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "HTTP/1.1 needs exactly one Host")
        if hosts > 1:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "several Host headers")
        if codings:
            self._arm_chunked(version, codings, bool(lengths))
        elif lengths:
            self._arm_length(lengths)
        return keep_alive

    def _arm_length(self, lengths: set[bytes]) -> None:
        if len(lengths) != 1:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "differing Content-Length values")
        (text,) = lengths
        if not text.isdigit() or len(text) > _CL_DIGITS_MAX:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        length = int(text)
        if length > self.max_body:
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body over the limit")
        if length:
            self._body, self._body_left, self._body_total = _Body.LENGTH, length, length

    def _arm_chunked(self, version: bytes, codings: list[bytes], has_length: bool) -> None:
        if has_length:  # stricter than h11: both framings at once is a smuggling attempt
            raise HTTPError(HTTPStatus.BAD_REQUEST, "Transfer-Encoding with Content-Length")
        if version == b"HTTP/1.0":
            raise HTTPError(HTTPStatus.BAD_REQUEST, "Transfer-Encoding in HTTP/1.0")
        codings = [c for c in codings if c]  # RFC 9110 §5.6.1: empty elements don't count
        if codings != [b"chunked"]:
            # chunked must be applied exactly once, last (RFC 9112 §6.1); anything else is
            # broken framing (400), except codings we cannot undo before it (501).
            if not codings or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
                raise HTTPError(HTTPStatus.BAD_REQUEST, "chunked is not the last coding, once")
            raise HTTPError(HTTPStatus.NOT_IMPLEMENTED, "unsupported transfer coding")
        self._body, self._body_left, self._body_total = _Body.CHUNK_SIZE, 0, 0

    # -- bodies, read and discarded -----------------------------------------------------

    def _skip_body(self) -> bool:
        """Discard body bytes; True once the whole body has gone."""
        buf = self._buf
        while True:
            if self._body in (_Body.LENGTH, _Body.CHUNK_DATA):
                n = min(self._body_left, len(buf))
                del buf[:n]
                self._body_left -= n
                if self._body_left:
                    return False
                if self._body is _Body.LENGTH:
                    self._body = _NO_BODY
                    return True
                self._body = _Body.CHUNK_END
            else:
                line = self._maybe_line()
                if line is None:
                    return False
                if self._body is _Body.CHUNK_SIZE:
                    self._start_chunk(line)
                elif self._body is _Body.CHUNK_END:
                    # RFC 9112 §7.1: chunk-data is followed by CRLF. Skipping two bytes
                    # unchecked (as before) let "5\r\nhelloXY..." reframe the stream.
                    if line:
                        raise HTTPError(HTTPStatus.BAD_REQUEST, "chunk data not followed by CRLF")
                    self._body = _Body.CHUNK_SIZE
                elif not line:
                    self._body = _NO_BODY  # the empty line that ends the trailer section
                    return True
                else:
                    # RFC 9112 §7.1.2: trailer lines are field lines. Unchecked (as before),
                    # any line was skipped, even "GET /x HTTP/1.1" or one with a NUL in it.
                    _parse_field(line)

    def _maybe_line(self) -> bytes | None:
        buf = self._buf
        # The limit applies to a complete line too (the LF at most at index _MAX_CHUNK_LINE),
        # so the verdict does not depend on whether the line arrived at once or in pieces.
        end = buf.find(b"\n", 0, _MAX_CHUNK_LINE + 1)
        if end < 0:
            if len(buf) > _MAX_CHUNK_LINE:
                raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "chunk line too long")
            return None
        line = bytes(buf[:end])
        # Drop one CR, the line end's. rstrip(b"\r") also took bare CRs ("3\r\r\n", "\r\r\n"
        # after chunk data), which RFC 9112 §2.2 makes invalid; no other CTL belongs in a
        # chunk-size line, a chunk extension or a trailer either.
        if line.endswith(b"\r"):
            line = line[:-1]
        if _BAD_VALUE_BYTE.search(line):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "control character in chunked framing")
        del buf[: end + 1]
        # Framing bytes (sizes, extensions, trailers) count toward the body limit too, so
        # endless trailer lines cannot keep a connection busy for free.
        self._body_total += end + 1
        if self._body_total > self.max_body:
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body over the limit")
        return line

    def _start_chunk(self, line: bytes) -> None:
        # Chunk extensions are ignored. BWS may precede ";" (RFC 9112 §7.1.1), but nothing
        # may precede the size: strip(b" \t") accepted " 5".
        size_text = line.split(b";", 1)[0].rstrip(b" \t")
        # Only HEXDIG: int(x, 16) alone also takes "0x5", "+5", "5_0" and surrounding space.
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "bad chunk size")
        size = int(size_text, 16)
        self._body_total += size
        if self._body_total > self.max_body:
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body over the limit")
        if size == 0:
            self._body = _Body.TRAILER
        else:
            self._body, self._body_left = _Body.CHUNK_DATA, size


def _valid_host(value: bytes) -> bool:
    """RFC 9112 §3.2: whether a Host value is `uri-host [ ":" port ]` (empty is allowed).

    Valid values are remembered (a few hundred at most): a client sends the same Host on
    every request, and the regex costs about 7,000 instructions of a cached GET's 74,000
    (loadtests/instructions.py), a set lookup under 100.
    """
    match = _HOST.fullmatch(value)
    if match is None:
        return False
    literal = match.group(1)
    if literal is not None and literal[:1] not in b"vV":
        try:
            ipaddress.IPv6Address(literal.decode("ascii"))
        except ValueError:
            return False
    if len(_VALID_HOSTS) >= _VALID_HOSTS_MAX:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(value)
    return True


def _parse_field(line: bytes) -> tuple[bytes, bytes]:
    if line[:1] in (b" ", b"\t"):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "obsolete line folding")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "bad header name")
    value = value.strip(b" \t")
    if _BAD_VALUE_BYTE.search(value):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "control character in a header value")
    return name.lower(), value


# -- responses ---------------------------------------------------------------------------

_STATUS_LINES = {s: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


def build_head(status: HTTPStatus, headers: bytes | Iterable[tuple[bytes, bytes]], *,
               keep_alive: bool, http10: bool = False) -> bytes:
    """A response head: status line, `headers` (pairs, or lines already rendered), then
    `Connection`.

    HTTP/1.1 keeps the connection unless told otherwise, so `Connection` is sent only to
    close it, or to confirm keep-alive to an HTTP/1.0 client (RFC 9112 §9.3).
    """
    if not isinstance(headers, bytes):
        headers = b"".join(b"%s: %s\r\n" % pair for pair in headers)
    if not keep_alive:
        connection = b"Connection: close\r\n\r\n"
    elif http10:
        connection = b"Connection: keep-alive\r\n\r\n"
    else:
        connection = b"\r\n"
    return b"".join((_STATUS_LINES[status], headers, connection))


# -- dates (RFC 9110 §5.6.7) -----------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {m.encode(): i + 1 for i, m in enumerate(_MONTHS)}
_TIME = rb"(\d\d):(\d\d):(\d\d)"
_IMF_FIXDATE = re.compile(rb"[A-Z][a-z]{2}, (\d\d) ([A-Z][a-z]{2}) (\d{4}) " + _TIME + rb" GMT")
_RFC850 = re.compile(rb"[A-Z][a-z]{5,8}, (\d\d)-([A-Z][a-z]{2})-(\d\d) " + _TIME + rb" GMT")
_ASCTIME = re.compile(rb"[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) " + _TIME + rb" (\d{4})")


def http_date(timestamp: float) -> bytes:
    """IMF-fixdate, the one format a server sends: `Sun, 06 Nov 1994 08:49:37 GMT`."""
    t = time.gmtime(timestamp)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


class DateLine:
    """`Date: ...` CRLF for the current second (RFC 9110 §6.6.1: the wall clock), formatted
    once per second however many responses share it."""

    __slots__ = ("_second", "_line")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def at(self, wall: float) -> bytes:
        second = int(wall)
        if second != self._second:
            self._second = second
            self._line = b"Date: %s\r\n" % http_date(second)
        return self._line


def parse_http_date(value: bytes, now_year: int | None = None) -> int | None:
    """Seconds since the epoch for any of the three formats RFC 9110 allows, else None.

    `now_year` resolves RFC 850's two-digit years: a year more than 50 years ahead of it
    is taken as the past century's (RFC 9110 §5.6.7).
    """
    value = value.strip()
    if m := _IMF_FIXDATE.fullmatch(value):
        day, mon, year, hh, mm, ss = m.groups()
    elif m := _ASCTIME.fullmatch(value):
        mon, day, hh, mm, ss, year = m.groups()
    elif m := _RFC850.fullmatch(value):
        day, mon, yy, hh, mm, ss = m.groups()
        if now_year is None:
            now_year = time.gmtime().tm_year
        # A sliding window (now_year - 49 .. now_year + 50): the RFC's "more than 50 years
        # ahead means the past century", and, near a century's end, a small two-digit
        # year is the next century (in 2090, "10" is 2110 rather than 80 years ago).
        full = now_year - now_year % 100 + int(yy)
        if full > now_year + 50:
            full -= 100
        elif full <= now_year - 50:
            full += 100
        year = str(full).encode()
    else:
        return None
    month = _MONTH_NUMBER.get(mon)
    fields = (int(year), month or 0, int(day), int(hh), int(mm), int(ss))
    # Year 0 made calendar.timegm raise ValueError (a 500 for "If-Modified-Since: ...
    # 0000 ..."), and day 31 of a 30-day month was silently moved into the next month.
    if month is None or fields[0] < 1 or not (
            1 <= fields[2] <= calendar.monthrange(fields[0], month)[1]
            and fields[3] < 24 and fields[4] < 60 and fields[5] < 61):
        return None
    return calendar.timegm(fields)
