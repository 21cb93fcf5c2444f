"""One client socket as a state machine: read, parse, find the file, write, keep-alive.

Owns: `Connection`, `Phase`, `Owner`. Imports `config`, `http11`, `files`, `semantics`, `log`,
and `loop` for its event masks and types. Only the loop thread calls into a Connection; pool
results arrive through `Loop.submit`'s `on_done`, also on the loop thread.

Phases and their interest / deadline:

    IDLE      READ   before a request's first byte: header_timeout at first, keepalive later
    HEAD      READ   a request is arriving: header_timeout from its first byte (408)
    WAIT_FILE none   the pool is opening the file: send_timeout (503)
    SEND      WRITE  a response is going out: send_timeout since the last progress
    LINGER    READ   our side is shut; drain the client's input until EOF: linger_timeout
    CLOSED    none   a sink: every entry point returns at once
"""
from __future__ import annotations

import errno
import itertools
import logging
import os
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from enum import Enum
from functools import partial
from http import HTTPStatus
from typing import Protocol

from .addresses import forwarded_client, in_networks
from .auth import FailureLimiter
from .cache import FileCache
from .files import FileBody, Resolved, load, read_ahead, route
from .http11 import TCHAR, HTTPError, Request, RequestParser, build_head, http_date
from .log import AccessLog
from .loop import READ, WRITE, Loop, TimerHandle
from .proxyproto import PreambleParser, ProxyError, preamble_part
from .semantics import (
    Validators,
    content_range,
    if_range_allows,
    multipart_boundary,
    multipart_plan,
    parse_range,
    precondition_status,
    unsatisfied_range,
)
from .site import Site
from .status import Counters, Snapshot, render_html, render_json

log = logging.getLogger("evserver")

# Errors that only mean "the client went away": a quiet close, logged at debug level.
_DISCONNECTS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ECONNABORTED,
                          errno.ETIMEDOUT, errno.ESHUTDOWN})
_CONCAT_MAX = 64 * 1024  # bodies up to this size are joined to the head: one send, one copy
_ALLOW = b"GET, HEAD, OPTIONS"
# Registered methods (IANA) that exist but are not allowed on static files: 405, not 501.
_KNOWN_METHODS = frozenset(b"POST PUT DELETE PATCH TRACE CONNECT PROPFIND PROPPATCH MKCOL COPY "
                           b"MOVE LOCK UNLOCK SEARCH QUERY".split())
# nosniff on every response: browsers must trust our Content-Type, never guess one.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE_END = b"Connection: close\r\n\r\n"
_KEEP_ALIVE_END = b"Connection: keep-alive\r\n\r\n"  # an HTTP/1.0 client asked to keep it
# Any of these makes a request conditional or ranged (RFC 9110 §13.1, §14.2).
_CONDITIONAL = frozenset((b"if-match", b"if-none-match", b"if-modified-since",
                          b"if-unmodified-since", b"if-range", b"range"))
_IOV_MAX = 64  # views gathered into one sendmsg
_TLS_CHUNK = 256 * 1024  # bytes of a file read per pool job on a TLS connection
# A client that goes away without a TLS goodbye: a quiet close, like a reset.
_QUIET_TLS_ERRORS = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
_FAST_WRITES = 3  # sendfile calls in a row that earn a bigger send buffer
_NO_FIELDS: dict[bytes, bytes] = {}
_NO_OUTPUT: deque[memoryview | tuple[int, int]] = deque(maxlen=0)  # shared, and stays empty


class Phase(Enum):
    PREAMBLE = "preamble"
    HANDSHAKE = "handshake"  # TLS: waiting to read (the client's next handshake bytes)
    HANDSHAKE_OUT = "handshake_out"  # TLS: waiting to write handshake bytes
    IDLE = "idle"
    HEAD = "head"
    WAIT_FILE = "wait_file"
    SEND = "send"
    READ_CHUNK = "read_chunk"  # TLS: the pool reads the next chunk of a file to encrypt
    LINGER = "linger"
    CLOSED = "closed"


# In Python 3.11 every `Enum.MEMBER` lookup runs EnumType.__getattr__ (about 0.1 µs, and
# 0.3 µs for HTTPStatus): the hot path names the members it uses through module globals.
_PREAMBLE, _IDLE, _HEAD, _WAIT_FILE = Phase.PREAMBLE, Phase.IDLE, Phase.HEAD, Phase.WAIT_FILE
_SEND, _LINGER, _CLOSED = Phase.SEND, Phase.LINGER, Phase.CLOSED
_HANDSHAKE, _HANDSHAKE_OUT, _READ_CHUNK = Phase.HANDSHAKE, Phase.HANDSHAKE_OUT, Phase.READ_CHUNK
_OK, _NOT_MODIFIED = HTTPStatus.OK, HTTPStatus.NOT_MODIFIED


def _mask_of(phase: Phase) -> int:
    # Identity tests, not a dict: hashing an Enum member runs Python code.
    if phase is _SEND or phase is _HANDSHAKE_OUT:
        return WRITE
    if phase is _WAIT_FILE or phase is _CLOSED or phase is _READ_CHUNK:
        return 0
    return READ


class Owner(Protocol):
    """What a Connection needs from its server: the site as it is now, the shared loop and
    cache, where answered requests are counted and logged, and the registry."""

    site: Site
    loop: Loop
    cache: FileCache
    access_log: AccessLog
    counters: Counters
    login_failures: FailureLimiter
    draining: bool

    def snapshot(self) -> Snapshot: ...

    def forget(self, conn: Connection) -> None: ...

    def on_idle(self, conn: Connection, idle: bool) -> None: ...


class _DateLine:
    """`Date: ...` for the current second; wall clock, as RFC 9110 §6.6.1 wants."""

    __slots__ = ("second", "line")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def at(self, wall: float) -> bytes:
        second = int(wall)
        if second != self.second:
            self.second = second
            self.line = b"Date: %s\r\n" % http_date(second)
        return self.line


_date = _DateLine()
_error_pages: dict[HTTPStatus, bytes] = {}


def _error_page(status: HTTPStatus) -> bytes:
    page = _error_pages.get(status)
    if page is None:
        title = b"%d %s" % (status.value, status.phrase.encode())
        page = (b'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>%s</title>'
                b"</head>\n<body><h1>%s</h1><p>%s</p><hr><p>evserver</p></body></html>\n"
                % (title, title, status.description.encode()))
        _error_pages[status] = page
    return page


class Connection:
    """One client connection. Invariant: `_set_phase` alone changes the phase and the mask."""

    __slots__ = ("_sock", "peer", "_owner", "_loop", "_cfg", "_parser", "_phase", "_mask",
                 "_timer", "_deadline", "_seq", "_served", "_eof", "_req", "_started",
                 "_status", "_keep", "_out", "_head_len", "_sent", "_file", "_interim",
                 "_request_line", "_sendfile", "_fast_writes", "_file_fd",
                 "_read_ahead_to", "_client", "_preamble", "_tls",
                 "_tls_context", "_plain_on_tls")

    def __init__(self, sock: socket.socket, peer: str, owner: Owner, *,
                 sendfile: Callable[[int, int, int, int], int] = os.sendfile,
                 tls: ssl.SSLContext | None = None) -> None:
        cfg = owner.site.cfg
        self._sock = sock
        self.peer = peer
        self._owner = owner
        self._loop = owner.loop
        self._cfg = cfg
        self._parser = RequestParser(cfg.max_head, cfg.max_request_line, cfg.max_headers,
                                     cfg.max_body, cfg.max_header_size)
        self._phase = _CLOSED  # until start(); nothing is registered yet
        self._mask = 0
        self._timer: TimerHandle | None = None
        self._deadline = 0.0
        self._seq = 0  # numbers pool jobs, so a late result for an old request is dropped
        self._served = 0
        self._eof = False
        self._req: Request | None = None
        self._request_line = b""
        self._started = 0.0
        self._status: HTTPStatus | None = None  # set while a response is being sent
        self._keep = False
        # The response in flight: views of bytes, and (offset, length) segments of _file.
        # Idle connections share one empty deque (a deque costs ~600 bytes).
        self._out: deque[memoryview | tuple[int, int]] = _NO_OUTPUT
        self._head_len = 0
        self._sent = 0
        self._file: FileBody | None = None
        self._file_fd = -1  # the fd the response in flight sends from; ours to close
        self._read_ahead_to = 0  # the file offset the pool was asked to read ahead up to
        self._client = peer  # the client's address: the peer, or who a trusted proxy names
        self._preamble: PreambleParser | None = None  # until a PROXY preamble is read
        self._tls = tls is not None  # an HTTPS connection (no sendfile, no sendmsg)
        self._tls_context = tls  # until the socket is wrapped
        self._plain_on_tls = False  # plain HTTP arrived on the HTTPS port
        self._interim = b""  # a 100 Continue to send before the next response head
        self._sendfile = sendfile  # injectable: tests fake it, a TLS socket cannot use it
        self._fast_writes = 0  # sendfile calls in a row that filled half the send buffer

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def _fields(self) -> bytes:
        """The header lines every response of this connection carries (HSTS over TLS)."""
        site = self._owner.site
        return site.tls_fields if self._tls else site.fields

    @property
    def served(self) -> int:
        """Requests answered (or being answered) on this connection so far."""
        return self._served

    def start(self) -> None:
        """Begin reading; a client that never sends a byte is dropped after header_timeout.
        With --proxy-protocol, the balancer's preamble comes first (within the same time),
        and only from a --trusted-proxy address: anyone else is closed at once, silently."""
        cfg = self._cfg
        if cfg.proxy_protocol:
            if not in_networks(self.peer, cfg.trusted_proxies):
                log.debug("%s closed: not a trusted proxy", self.peer)
                self._sock.close()  # still CLOSED, as before start(): nothing registered
                self._owner.forget(self)
                return
            self._preamble = PreambleParser()
            self._set_phase(_PREAMBLE)
        elif self._tls:
            self._set_phase(_HANDSHAKE)
        else:
            self._set_phase(_IDLE)
            self._set_deadline(self._loop.now + cfg.header_timeout)
            return
        # The preamble and the TLS handshake share one deadline of their own.
        self._set_deadline(self._loop.now + cfg.handshake_timeout)

    # -- phases, interest and the one timer -------------------------------------------------

    def _set_phase(self, phase: Phase) -> None:
        mask = _mask_of(phase)
        if mask == READ and phase is not _LINGER and (
                self._eof or self._parser.buffered >= self._cfg.max_head):
            # After EOF the socket is always readable: level triggering would spin. With a
            # head's worth of pipelined bytes already waiting, read nothing more until they
            # are answered: the kernel's buffer, not ours, holds the rest (bounded memory).
            mask = 0
        if (phase is _IDLE) is not (self._phase is _IDLE):
            self._owner.on_idle(self, phase is _IDLE)  # idle ones go first under pressure
        self._phase = phase
        if mask != self._mask:
            # epoll_ctl only on a real change; level triggering means a stale WRITE interest
            # would spin the loop, so SEND is the only phase that asks for it.
            if self._mask == 0:
                self._loop.register(self._sock, mask, self)
            elif mask == 0:
                self._loop.unregister(self._sock)
            else:
                self._loop.modify(self._sock, mask, self)
            self._mask = mask

    def _set_deadline(self, when: float) -> None:
        # Activity only moves `_deadline`; the timer re-arms itself when it fires early, so
        # the heap sees one entry per connection per timeout period, not one per event.
        self._deadline = when
        timer = self._timer
        if timer is None or timer.when > when:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase is _CLOSED:
            return
        if self._loop.now < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        phase = self._phase
        if phase is _HEAD:
            self._begin_response(None)
            self._request_line = self._parser.partial_line()
            self._respond_error(HTTPError(HTTPStatus.REQUEST_TIMEOUT, "head not complete"))
        elif phase is _WAIT_FILE:
            self._seq += 1  # the late result is dropped and its fd closed in _on_file
            self._respond_error(HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "file work too slow"))
        else:
            self.close(f"{phase.value} timeout")

    # -- events ---------------------------------------------------------------------------

    def on_event(self, mask: int) -> None:
        phase = self._phase
        if phase is _CLOSED or phase is _WAIT_FILE:
            return  # an earlier event of this batch closed us, or paused us
        try:
            if phase is _SEND:
                self._flush()
            elif phase is _HANDSHAKE or phase is _HANDSHAKE_OUT:
                self._handshake()
            else:
                self._on_readable()
        except Exception:
            self._on_bug()

    def _on_bug(self) -> None:
        """An exception escaped a handler: a bug. Log it, answer 500 if no response has
        started, and close; the loop and every other connection go on."""
        log.exception("%s: internal error", self.peer)
        if self._phase is _CLOSED:
            return
        if self._status is None and self._phase is not _LINGER:
            try:
                self._respond_error(HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "bug"))
                return
            except Exception:
                log.exception("%s: cannot even answer 500", self.peer)
        self.close("internal error")

    def _on_readable(self) -> None:
        try:
            if self._phase is _PREAMBLE and self._tls:
                # Before TLS: read only the preamble's bytes, never the ClientHello's.
                peeked = self._sock.recv(self._cfg.recv_size, socket.MSG_PEEK)
                data = self._sock.recv(preamble_part(peeked)) if peeked else b""
            else:
                data = self._sock.recv(self._cfg.recv_size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as err:
            self._on_socket_error(err)
            return
        if self._phase is _LINGER:
            if not data:
                self.close("closed after the response")
            return
        if self._phase is _PREAMBLE:
            self._on_preamble(data)
            return
        if not data:
            self._eof = True
            self._set_phase(self._phase)  # drops READ interest; buffered requests still run
        else:
            if self._tls and self._sock.pending():  # type: ignore[attr-defined]
                # Decrypted bytes OpenSSL holds raise no event: come back for them.
                self._loop.call_soon(self.on_event, READ)
            self._parser.feed(data)
            if self._phase is _IDLE:
                self._answer_from_idle()
                return
        self.process()

    def _on_preamble(self, data: bytes) -> None:
        """PROXY protocol bytes: the real client's address, then HTTP as usual. A malformed
        preamble (or a client that is not a balancer) is closed without a word: answering
        would speak HTTP to something that is not an HTTP client."""
        assert self._preamble is not None
        if not data:
            self.close("closed before its PROXY preamble")
            return
        try:
            preamble = self._preamble.feed(data)
        except ProxyError as err:
            self.close(f"bad PROXY preamble: {err}")
            return
        if preamble is None:
            return
        self._preamble = None
        if preamble.client is not None:  # LOCAL (a health check): the balancer itself
            self.peer = self._client = preamble.client
        if self._tls:  # the preamble comes before the TLS handshake (same deadline)
            if preamble.rest:
                log.debug("%s: TLS bytes in the preamble's packet: refused", self.peer)
                self.close("data after the PROXY preamble on a TLS port")
                return
            self._set_phase(_HANDSHAKE)
            return
        self._set_phase(_IDLE)
        self._set_deadline(self._loop.now + self._cfg.header_timeout)
        if preamble.rest:
            self._parser.feed(preamble.rest)
            self._answer_from_idle()

    def _answer_from_idle(self) -> None:
        """A whole request usually comes in one read: answer it straight from IDLE and enter
        HEAD (its deadline, its idle bookkeeping) only if part of it is still missing."""
        self._started = self._loop.now
        self._process()  # the callers' on_event catches what escapes
        if self._phase is _IDLE and not self._parser.empty:
            self._start_head()

    def _start_head(self) -> None:
        """A request's first byte is here (or the rest of an answered request's body is
        due): its clock, for the log, and its deadline start."""
        self._set_phase(_HEAD)
        self._started = self._loop.now
        # Set at the first byte and never extended: slowloris cannot stretch it.
        timeout = self._cfg.body_timeout if self._parser.in_body else self._cfg.header_timeout
        self._set_deadline(self._started + timeout)

    def process(self) -> None:
        """Parse and answer the next buffered request, if a whole one is there."""
        if self._phase is not _IDLE and self._phase is not _HEAD:
            return
        try:
            self._process()
        except Exception:
            self._on_bug()

    def _process(self) -> None:
        try:
            req = self._parser.maybe_next()
        except HTTPError as err:
            self._begin_response(None)
            self._request_line = err.request_line
            self._respond_error(err)
            return
        if req is not None:
            # _begin_response(req), inline: this runs once per request.
            self._req = req
            self._request_line = req.line
            self._served = served = self._served + 1
            self._keep = (req.keep_alive and not self._owner.draining
                          and served < self._cfg.max_keepalive_requests)
            self._dispatch(req)
        elif self._eof:
            self.close("client closed")
        elif self._phase is _HEAD and not self._parser.buffered and not self._parser.in_body:
            # Only a discarded body or empty lines came: idle again, with the idle timeout.
            self._set_phase(_IDLE)
            self._set_deadline(self._loop.now + self._cfg.keepalive_timeout)
        else:
            # Waiting for more input. Discarding a body may just have drained a buffer that
            # was past the backpressure mark (READ dropped in _set_phase); the phase does
            # not change here, so recompute the interest, or the rest is never read.
            self._set_phase(self._phase)

    def _begin_response(self, req: Request | None) -> None:
        self._req = req
        self._request_line = req.line if req is not None else b""
        self._served += 1
        self._keep = (req is not None and req.keep_alive and not self._owner.draining
                      and self._served < self._cfg.max_keepalive_requests)

    # -- choosing the response ------------------------------------------------------------

    def _dispatch(self, req: Request) -> None:
        method = req.method
        if b"expect" in req.fields and not self._expectation_met(req):
            return
        if method != b"GET" and method != b"HEAD":
            self._respond_other_method(req)
            return
        cfg = self._cfg
        site = self._owner.site
        if site.screening:  # a per-request rule is configured: one flag when none
            if not self._screen(req):
                return
            path = _path_of(req.target)
            if path == cfg.status_path:
                self._respond_status(req)
                return
            if path == cfg.health_path:
                self._respond_health(req)
                return
            if site.credentials is not None and path.startswith(cfg.auth_paths):
                self._authenticate(req)
                return
        self._serve_target(req, req.target)

    def _serve_target(self, req: Request, request_target: bytes) -> None:
        """GET or HEAD of a file: from the cache at once, or through the pool."""
        try:
            target, key, encodings = route(self._owner.site.docroot, request_target,
                                            req.fields.get(b"accept-encoding"))
        except HTTPError as err:
            self._respond_error(err)
            return
        fresh, stale = self._owner.cache.lookup(key, self._loop.now)
        if fresh is not None and fresh.fd is not None and not _unchanged(fresh):
            fresh, stale = None, fresh  # changed in place: its headers no longer fit
        if fresh is not None:
            # The fast path: no thread hop, no system call but send (or a dup and sendfile).
            self._respond_file(fresh, shared=True)
        else:
            self._load(target, key, encodings, stale)

    def _expectation_met(self, req: Request) -> bool:
        """RFC 9110 §10.1.1: answer `Expect: 100-continue`; refuse other expectations."""
        expect = req.fields.get(b"expect")
        if expect is None or req.version == b"HTTP/1.0":
            return True  # an HTTP/1.0 client cannot have meant it: ignore (§10.1.1)
        if expect.lower() != b"100-continue":
            self._respond_error(HTTPError(HTTPStatus.EXPECTATION_FAILED, "expectation",
                                          close=self._parser.in_body))
            return False
        if self._parser.in_body:
            if req.method == b"GET" or req.method == b"HEAD":
                self._interim = _CONTINUE  # let the body come; the parser discards it
            else:
                self._keep = False  # answered without the body: close instead of reading it
        return True

    def _respond_other_method(self, req: Request) -> None:
        if req.method == b"OPTIONS":
            fields = b"%s%sAllow: %s\r\n%s" % (self._fields,
                                               _date.at(self._loop.wall), _ALLOW,
                                               self._preflight(req))
            self._send(HTTPStatus.NO_CONTENT, fields)
        elif req.method in _KNOWN_METHODS:
            self._respond_error(HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, "method",
                                          headers=((b"Allow", _ALLOW),), close=False))
        else:
            self._respond_error(HTTPError(HTTPStatus.NOT_IMPLEMENTED, "unknown method",
                                          close=False))

    def _preflight(self, req: Request) -> bytes:
        """The CORS preflight answer (Fetch standard) when --cors is on and this OPTIONS
        is one: the methods we serve, the request headers asked for, cached a day.
        Access-Control-Allow-Origin itself is in response_fields already."""
        if not self._cfg.cors or b"access-control-request-method" not in req.fields:
            return b""
        asked = req.fields.get(b"access-control-request-headers", b"")
        # Echo only a clean list of tokens: the value goes back into our head.
        names = [n.strip() for n in asked.split(b",") if n.strip()]
        allow_headers = b", ".join(n for n in names if _is_token(n))
        lines = b"Access-Control-Allow-Methods: %s\r\nAccess-Control-Max-Age: 86400\r\n" % _ALLOW
        if allow_headers:
            lines += b"Access-Control-Allow-Headers: %s\r\n" % allow_headers
        return lines

    def _respond_status(self, req: Request) -> None:
        """--status-path: the counters, as HTML, or JSON with `?json`; only to the
        addresses --status-allow names (loopback by default), 403 to others."""
        if not in_networks(self._client, self._cfg.status_allow):
            self._respond_error(HTTPError(HTTPStatus.FORBIDDEN, "status page", close=False))
            return
        snapshot = self._owner.snapshot()
        if req.target.partition(b"?")[2] == b"json":
            body, ctype = render_json(snapshot), b"application/json"
        else:
            body, ctype = render_html(snapshot), b"text/html; charset=utf-8"
        fields = (b"%s%sContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
                  % (self._fields, _date.at(self._loop.wall), ctype, len(body)))
        self._send(_OK, fields, body if req.method == b"GET" else b"")

    def _screen(self, req: Request) -> bool:
        """The rules that need the client's address: who it really is (behind a trusted
        proxy, from X-Forwarded-For), then --deny and --allow. False once answered 403."""
        cfg = self._cfg
        if self._plain_on_tls:
            self._respond_error(HTTPError(HTTPStatus.BAD_REQUEST, "plain HTTP to HTTPS",
                                          body=_PLAIN_ON_TLS))
            return False
        if cfg.tls_redirect and not self._tls and self._owner.site.tls_port:
            self._redirect_to_https(req)
            return False
        client = self.peer
        if cfg.trusted_proxies and b"x-forwarded-for" in req.fields:
            client = forwarded_client(self.peer, [v for k, v in req.headers
                                                  if k == b"x-forwarded-for"],
                                      cfg.trusted_proxies)
        self._client = client
        if (cfg.deny and in_networks(client, cfg.deny)) or (cfg.allow
                                                         and not in_networks(client, cfg.allow)):
            self._respond_error(HTTPError(HTTPStatus.FORBIDDEN, "address rule", close=False))
            return False
        return True

    def _authenticate(self, req: Request) -> None:
        """HTTP Basic authentication (RFC 7617) before a protected path is served. The
        password check (a slow hash by design) runs in the pool; the limiter makes a client
        that keeps failing wait, and each failure is logged."""
        client = self._client
        owner = self._owner
        site = owner.site
        if not self._tls and not self._cfg.auth_insecure and not _loopback(client):
            self._respond_error(HTTPError(HTTPStatus.FORBIDDEN, "login over plain HTTP",
                                          close=False, body=_PLAIN_HTTP_LOGIN))
            return
        if owner.login_failures.blocked(client, self._loop.now):
            self._respond_error(HTTPError(HTTPStatus.TOO_MANY_REQUESTS, "failed logins",
                                          headers=((b"Retry-After", b"60"),), close=False))
            return
        header = req.fields.get(b"authorization")
        if header is None:
            self._respond_error(HTTPError(HTTPStatus.UNAUTHORIZED, "no credentials",
                                          headers=((b"WWW-Authenticate", site.challenge),),
                                          close=False))
            return
        assert site.credentials is not None
        self._seq += 1
        try:
            self._loop.submit(site.credentials.check, header, self._loop.now,
                              on_done=partial(self._on_login, self._seq))
        except RuntimeError:
            self._respond_error(HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down"))
            return
        self._set_phase(_WAIT_FILE)
        self._set_deadline(self._loop.now + self._cfg.send_timeout)

    def _on_login(self, seq: int, future: Future[str | None]) -> None:
        if self._phase is not _WAIT_FILE or seq != self._seq:
            return  # timed out or closed meanwhile
        req = self._req
        assert req is not None
        owner = self._owner
        try:
            user = future.result()
        except Exception:
            self._on_bug()
            return
        if user is None:
            owner.login_failures.failure(self._client, self._loop.now)
            log.warning("%s: failed login for %s", self._client, _path_of(req.target))
            self._respond_error(HTTPError(HTTPStatus.UNAUTHORIZED, "wrong credentials",
                                          headers=((b"WWW-Authenticate",
                                                    owner.site.challenge),),
                                          close=False))
            return
        owner.login_failures.success(self._client)
        self._serve_target(req, req.target)

    def _redirect_to_https(self, req: Request) -> None:
        """--tls-redirect: plain HTTP gets a 301 to the same path on the HTTPS port, at the
        host name the client used (when it is a plain name or address)."""
        host_field = req.fields.get(b"host", b"")
        if host_field.startswith(b"["):  # [v6]:port
            host = host_field.partition(b"]")[0] + b"]"
        else:
            host = host_field.partition(b":")[0]
        if not host or host.translate(None, _HOST_BYTES):
            host = b"localhost"
        target = req.target if req.target.startswith(b"/") else b"/"
        location = b"https://%s:%d%s" % (host, self._owner.site.tls_port, target)
        self._respond_error(HTTPError(HTTPStatus.MOVED_PERMANENTLY, "to https",
                                      headers=((b"Location", location),), close=False))

    def _respond_health(self, req: Request) -> None:
        """--health-path: 200 `ok` while serving, 503 `draining` once a stop began, so a
        load balancer takes this server out before it goes (HAProxy's `option httpchk`
        sends HTTP/1.0 without Host: fine here)."""
        draining = self._owner.draining
        status = HTTPStatus.SERVICE_UNAVAILABLE if draining else _OK
        body = b"draining\n" if draining else b"ok\n"
        fields = (b"%s%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                  b"Cache-Control: no-store\r\n" % (self._fields,
                                                     _date.at(self._loop.wall), len(body)))
        self._send(status, fields, body if req.method == b"GET" else b"")

    def _load(self, target: Resolved, key: str, encodings: tuple[str, ...],
              stale: FileBody | None) -> None:
        loop = self._loop
        cache = self._owner.cache
        self._seq += 1
        if cache.wait_for_load(key, partial(self._after_load, self._seq)):
            # The same file is being loaded for another request: wait for that job and
            # look in the cache again (see FileCache).
            self._set_phase(_WAIT_FILE)
            self._set_deadline(loop.now + self._cfg.send_timeout)
            return
        if loop.pending_jobs >= self._cfg.max_pending_jobs:
            self._respond_error(HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "pool queue full",
                                          headers=((b"Retry-After", b"1"),), close=False))
            return
        try:
            loop.submit(load, target, self._owner.site.docroot, self._cfg, stale, encodings,
                        on_done=partial(self._on_loaded, self._seq, key))
        except RuntimeError:  # the pool is shut down: we are stopping
            self._respond_error(HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down"))
            return
        cache.load_started(key)
        self._set_phase(_WAIT_FILE)
        self._set_deadline(loop.now + self._cfg.send_timeout)

    def _on_loaded(self, seq: int, key: str, future: Future[FileBody]) -> None:
        """Our load finished: this request first (which caches the body), then the requests
        that waited for the same file look in the cache again."""
        waiting = self._owner.cache.load_finished(key)
        self._on_file(seq, key, future)
        for retry in waiting:
            retry()

    def _after_load(self, seq: int) -> None:
        """Another request's load of our file finished (and cached it, if it could be):
        look again."""
        req = self._req
        if self._phase is not _WAIT_FILE or seq != self._seq or req is None:
            return  # closed or timed out meanwhile
        try:
            self._serve_target(req, req.target)
        except Exception:
            self._on_bug()

    def _on_file(self, seq: int, key: str, future: Future[FileBody]) -> None:
        if self._phase is not _WAIT_FILE or seq != self._seq:
            _release(future)  # we closed or timed out meanwhile; never leak the fd
            return
        try:
            self._use_file(key, future)
        except Exception:
            self._on_bug()

    def _use_file(self, key: str, future: Future[FileBody]) -> None:
        try:
            body = future.result()
        except HTTPError as err:
            if err.status is HTTPStatus.NOT_FOUND:
                self._owner.cache.discard(key)
                if self._spa_fallback(key):
                    return
            self._respond_error(err)
            return
        except Exception:
            log.exception("loading %s failed", key)
            self._respond_error(HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "load failed"))
            return
        shared = bool(body.etag) and self._owner.cache.put(key, body, self._loop.now)
        self._respond_file(body, shared)

    def _spa_fallback(self, missing_key: str) -> bool:
        """--spa: a path with no file extension that found nothing gets /index.html, so
        a single-page app's client-side routes survive a reload. True if taken."""
        req = self._req
        if not self._cfg.spa or req is None:
            return False
        if "." in _path_of(req.target).rpartition("/")[2]:
            return False  # a missing asset stays a 404
        accept_encoding = req.fields.get(b"accept-encoding")
        if route(self._owner.site.docroot, _SPA_INDEX, accept_encoding)[1] == missing_key:
            return False  # the index itself is missing: 404, not a loop
        self._serve_target(req, _SPA_INDEX)
        return True

    def _respond_file(self, body: FileBody, shared: bool) -> None:
        """Answer with `body`. `shared`: the cache owns its fd (a response sends from a
        dup); otherwise this response owns it and closes it whatever the answer."""
        req = self._req
        assert req is not None
        if body.etag and not _CONDITIONAL.isdisjoint(req.fields):
            validators = Validators(body.etag, body.mtime)
            now = self._loop.wall
            status = precondition_status(req, validators, now)
            if status is _NOT_MODIFIED:
                _drop(body, shared)
                self._send(status, self._fields + _date.at(self._loop.wall)
                           + body.meta)
                return
            if status is not None:
                _drop(body, shared)
                self._respond_error(HTTPError(status, "precondition failed", close=False))
                return
            spec = req.get(b"range")
            # RFC 9110 §14.2: GET is the only method with range handling; HEAD ignores Range.
            if spec is not None and req.method == b"GET" and if_range_allows(
                    req.get(b"if-range"), validators, now):
                ranges = parse_range(spec, body.size, self._cfg.max_ranges)
                if ranges is not None:
                    self._respond_ranges(body, ranges, shared)
                    return
        data = body.data
        if data is not None and len(data) <= _CONCAT_MAX and not self._interim:
            # The fast path: status line to body in one join, then one send.
            if req.method != b"GET":
                data = b""  # HEAD
            if not self._keep:
                end = _CLOSE_END
            elif req.version == b"HTTP/1.0":
                end = _KEEP_ALIVE_END
            else:
                end = b"\r\n"
            site = self._owner.site
            start = site.tls_ok_start if self._tls else site.ok_start
            response = b"".join((start, _date.at(self._loop.wall), body.fields,
                                 end, data))
            self._send_whole(_OK, response, len(response) - len(data))
            return
        fields = self._fields + _date.at(self._loop.wall) + body.fields
        if req.method == b"HEAD":
            _drop(body, shared)
            self._send(_OK, fields)
        elif data is not None:
            self._send(_OK, fields, data)  # after a 100 Continue
        else:
            fd = self._own_fd(body, shared)
            if fd >= 0:
                self._send(_OK, fields, pieces=[(0, body.size)], file=body, fd=fd)

    def _own_fd(self, body: FileBody, shared: bool) -> int:
        """An fd of `body` this response may close: its own, or a dup of the cache's (which
        the cache may close while we send). -1 after answering 503 if none is left."""
        assert body.fd is not None
        if not shared:
            return body.fd
        try:
            return os.dup(body.fd)
        except OSError as err:
            log.warning("cannot dup the fd of %s: %s", body.path, err)
            self._respond_error(HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "out of fds",
                                          headers=((b"Retry-After", b"1"),), close=False))
            return -1

    def _respond_ranges(self, body: FileBody, ranges: list[tuple[int, int]],
                        shared: bool) -> None:
        size = body.size
        if not ranges:
            _drop(body, shared)
            self._respond_error(HTTPError(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "range",
                headers=((b"Content-Range", unsatisfied_range(size)),), close=False))
            return
        if len(ranges) == 1:
            first, last = ranges[0]
            pieces: list[bytes | tuple[int, int]] = [(first, last - first + 1)]
            length, ctype = last - first + 1, body.ctype
            extra = b"Content-Range: %s\r\n" % content_range(first, last, size)
        else:
            # A fresh boundary per response: nobody can plant it in a file beforehand.
            boundary = multipart_boundary()
            pieces, length = multipart_plan(ranges, size, body.ctype, boundary)
            ctype, extra = b"multipart/byteranges; boundary=" + boundary, b""
        fields = b"%s%sContent-Type: %s\r\nContent-Length: %d\r\n%s%sAccept-Ranges: bytes\r\n%s" % (
            self._fields, _date.at(self._loop.wall), ctype, length, extra,
            body.coding, body.meta)
        if body.data is not None:
            view = memoryview(body.data)  # slices of the cached bytes: no copy, no file
            views = [p if isinstance(p, bytes) else view[p[0]:p[0] + p[1]] for p in pieces]
            self._send(HTTPStatus.PARTIAL_CONTENT, fields, pieces=views)
        else:
            fd = self._own_fd(body, shared)
            if fd >= 0:
                self._send(HTTPStatus.PARTIAL_CONTENT, fields, pieces=pieces, file=body, fd=fd)

    def _respond_error(self, err: HTTPError) -> None:
        if err.close:
            self._keep = False
        status = err.status
        body = err.body
        if body is None:
            body = self._owner.site.error_pages.get(status) or _error_page(status)
        extra = b"".join(b"%s: %s\r\n" % pair for pair in err.headers)
        fields = b"%s%sContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n%s" % (
            self._fields, _date.at(self._loop.wall), len(body), extra)
        if self._req is not None and self._req.method == b"HEAD":
            body = b""
        if status is not HTTPStatus.REQUEST_TIMEOUT:
            log.debug("%s %s: %s", self.peer, status.value, err.detail)
        self._send(status, fields, body)

    # -- writing ----------------------------------------------------------------------------

    def _send(self, status: HTTPStatus, fields: bytes, body: bytes = b"", *,
              pieces: Sequence[bytes | memoryview | tuple[int, int]] = (),
              file: FileBody | None = None, fd: int = -1) -> None:
        """Queue one response and write as much as the socket takes right now.

        The body is `body`, or `pieces`: bytes and (offset, length) segments of `file`,
        which go out with sendfile from `fd`. The connection owns `fd` from here on.
        """
        req = self._req
        head = self._interim + build_head(status, fields, keep_alive=self._keep,
                                          http10=req is not None and req.version == b"HTTP/1.0")
        self._interim = b""
        self._status = status
        self._head_len = len(head)
        self._sent = 0
        out: deque[memoryview | tuple[int, int]] = deque()
        if pieces:
            out.append(memoryview(head))
            out.extend(p if isinstance(p, tuple) else memoryview(p) for p in pieces)
        elif len(body) <= _CONCAT_MAX:
            out.append(memoryview(head + body) if body else memoryview(head))
        else:
            out.extend((memoryview(head), memoryview(body)))  # sendmsg gathers: no copy
        self._out = out
        self._file = file
        self._file_fd = fd
        self._read_ahead_to = 0
        self._flush()

    def _send_whole(self, status: HTTPStatus, response: bytes, head_len: int) -> None:
        """Send a complete response in one call; queue only what the socket did not take."""
        self._status = status
        self._head_len = head_len
        try:
            n = self._sock.send(response)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            n = 0
        except OSError as err:
            self._on_socket_error(err)
            return
        if n == len(response):
            self._sent = n
            self._finish()
            return
        self._sent = n
        self._out = deque((memoryview(response)[n:],))
        self._flush()

    def _flush(self) -> None:
        """Write what the socket takes; the one place a send error is handled."""
        sent_before = self._sent
        try:
            done = self._write()
        except OSError as err:
            self._on_socket_error(err)
            return
        if done:
            self._finish()
            return
        if self._phase is _READ_CHUNK:
            return  # the pool is reading the next chunk; _on_chunk flushes again
        if self._phase is not _SEND:
            self._set_phase(_SEND)
        elif self._sent == sent_before:
            # A wakeup that moved no byte is not progress: send_timeout measures the stall
            # since the last byte went out, so a peer that stopped reading cannot keep the
            # connection alive through spurious WRITE events.
            return
        self._set_deadline(self._loop.now + self._cfg.send_timeout)

    def _write(self) -> bool:
        """Send queued bytes and at most one sendfile chunk; True when all is sent."""
        out = self._out
        sock = self._sock
        while out:
            first = out[0]
            if isinstance(first, tuple):
                return self._write_file(first)
            try:
                if len(out) > 1 and not isinstance(out[1], tuple) and not self._tls:
                    n = sock.sendmsg(list(_leading_views(out)))
                else:
                    n = sock.send(first)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False  # TLS retries the same bytes: the view at out[0] is unchanged
            self._sent += n
            while n:  # drop what went out; a partial view is re-sliced, never copied
                view = out[0]
                assert not isinstance(view, tuple)
                if n >= len(view):
                    n -= len(view)
                    out.popleft()
                else:
                    out[0] = view[n:]
                    n = 0
        return True

    def _write_file(self, segment: tuple[int, int]) -> bool:
        file = self._file
        assert file is not None and self._file_fd >= 0
        offset, length = segment
        if self._tls:
            self._read_chunk(offset, length)
            return False
        try:
            n = self._sendfile(self._sock.fileno(), self._file_fd, offset,
                               min(length, self._cfg.sendfile_chunk))
        except BlockingIOError:
            return False
        if n == 0:
            self._end_short(f"{file.path} shrank while being sent")
            return True
        self._sent += n
        if file.size > self._cfg.readahead > 0:
            self._read_ahead(offset + n)
        if n >= self._cfg.send_buffer and self._fast_writes < _FAST_WRITES:
            self._note_fast_write()
        elif n < self._cfg.send_buffer:
            self._fast_writes = 0
        if n < length:
            self._out[0] = (offset + n, length - n)
        else:
            self._out.popleft()
        # One chunk per event at most (nginx sendfile_max_chunk): others get their turn.
        return not self._out

    def _read_chunk(self, offset: int, length: int) -> None:
        """TLS cannot use sendfile (the kernel would send plaintext): the pool reads the
        next chunk, which then goes out through the SSL socket like any bytes. One chunk in
        memory per download; the loop never reads the disk."""
        self._seq += 1
        size = min(length, _TLS_CHUNK)
        try:
            self._loop.submit(os.pread, self._file_fd, size, offset,
                              on_done=partial(self._on_chunk, self._seq, offset, length))
        except RuntimeError:
            self.close("shutting down")
            return
        self._set_phase(_READ_CHUNK)
        self._set_deadline(self._loop.now + self._cfg.send_timeout)

    def _on_chunk(self, seq: int, offset: int, length: int, future: Future[bytes]) -> None:
        if self._phase is not _READ_CHUNK or seq != self._seq:
            return  # closed or timed out meanwhile
        path = self._file.path if self._file is not None else "?"
        try:
            data = future.result()
        except OSError as err:
            self._end_short(f"reading {path} failed: {err}")
            self._finish()
            return
        out = self._out
        if not data:  # as with sendfile
            self._end_short(f"{path} shrank while being sent")
            self._finish()
            return
        out.popleft()
        if len(data) < length:
            out.appendleft((offset + len(data), length - len(data)))
        out.appendleft(memoryview(data))
        self._set_phase(_SEND)
        self._flush()

    def _end_short(self, why: str) -> None:
        """The file ended before its Content-Length: that cannot be honoured, so the only
        honest end is closing the connection (the client sees a short body)."""
        log.warning("%s", why)
        self._keep = False
        self._out.clear()

    def _handshake(self) -> None:
        """The TLS handshake, driven by the selector: OpenSSL says whether it waits to read
        or to write. Plain HTTP sent to this port gets a clean 400 instead."""
        if self._tls_context is not None:  # the first event: look before wrapping
            try:
                first = self._sock.recv(1, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                self._on_socket_error(err)
                return
            if not first:
                self.close("closed before the TLS handshake")
                return
            if first != b"\x16":  # not a TLS handshake record: plain HTTP, or junk
                self._tls_context = None
                self._tls = False
                self._plain_on_tls_port()
                return
            self._loop.unregister(self._sock)  # the SSL socket registers itself below
            self._mask = 0
            context, self._tls_context = self._tls_context, None
            try:
                self._sock = context.wrap_socket(self._sock, server_side=True,
                                                 do_handshake_on_connect=False)
            except OSError as err:  # reset already (wrap_socket asks for the peer's name)
                self._on_socket_error(err)
                return
        try:
            self._sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._set_phase(_HANDSHAKE)
            return
        except ssl.SSLWantWriteError:
            self._set_phase(_HANDSHAKE_OUT)
            return
        except (ssl.SSLError, OSError) as err:
            log.debug("%s: TLS handshake failed: %s", self.peer, err)
            self.close("TLS handshake failed")
            return
        self._set_phase(_IDLE)
        self._set_deadline(self._loop.now + self._cfg.header_timeout)  # the first request's

    def _plain_on_tls_port(self) -> None:
        """Plain HTTP on the HTTPS port: answer its requests with 400 and a pointer to
        https://, in plaintext (a browser shows it), then close."""
        self._plain_on_tls = True
        self._set_phase(_IDLE)

    def _read_ahead(self, offset: int) -> None:
        """Keep the pool reading at least half a window ahead of what sendfile sends next,
        so a cold file's pages are (or are being) read before the loop asks for them.
        One pool job per window, not per chunk."""
        window = self._cfg.readahead
        if self._read_ahead_to >= offset + window // 2:
            return
        start = max(self._read_ahead_to, offset)
        try:
            self._loop.submit(read_ahead, self._file_fd, start, window, on_done=_ignore)
        except RuntimeError:
            return  # the pool is shut down: we are stopping
        self._read_ahead_to = start + window

    def _note_fast_write(self) -> None:
        """A sendfile call found at least half the kernel buffer free (Linux doubles the
        size set) and filled it: the reader keeps up. A few in a row and the buffer grows
        to send_buffer_max, so a fast download takes fewer wakeups and calls per byte. A
        slow reader never frees that much between two events: its buffer stays capped."""
        self._fast_writes += 1
        if self._fast_writes == _FAST_WRITES and self._cfg.send_buffer_max > self._cfg.send_buffer:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                      self._cfg.send_buffer_max)
            except OSError:
                pass  # the next send meets whatever went wrong

    def _finish(self) -> None:
        """The response is sent: log it, then keep the connection or start closing it."""
        self._log_response()
        if self._file is not None:
            self._release_file()
        client_closes = self._req is not None and not self._req.keep_alive
        self._req = None
        self._out = _NO_OUTPUT
        parser = self._parser
        if parser.empty and self._keep and not self._eof and not self._owner.draining:
            # The common end of a keep-alive response: wait for the next request.
            if self._phase is not _IDLE:
                self._set_phase(_IDLE)  # IDLE keeps its READ interest: no change otherwise
            self._set_deadline(self._loop.now + self._cfg.keepalive_timeout)
            return
        if not self._keep or self._owner.draining or (self._eof and not parser.buffered):
            # Draining: a response begun before the stop still ends it, lingering so that
            # the process outlives the bytes still queued in the kernel.
            self._shutdown(linger=not (client_closes and parser.empty)
                           or self._owner.draining)
            return
        # Pipelined bytes, or the rest of the body of the request just answered.
        self._start_head()
        if parser.buffered:
            # Pipelined bytes raise no READ event: they are in our buffer, not the kernel's.
            self._loop.call_soon(self.process)

    def _log_response(self) -> None:
        status = self._status
        if status is None:
            return
        self._status = None
        req = self._req
        fields = req.fields if req is not None else _NO_FIELDS
        body_bytes = max(0, self._sent - self._head_len)
        self._owner.counters.count(status, body_bytes)
        # status is an IntEnum, formatted with %d: its .value is a slow Python property.
        self._owner.access_log.record(
            self._client, self._loop.wall, self._request_line, status, body_bytes,
            fields.get(b"referer"), fields.get(b"user-agent"), self._loop.now - self._started)

    def _release_file(self) -> None:
        self._file = None
        fd = self._file_fd
        if fd >= 0:
            self._file_fd = -1
            os.close(fd)

    # -- closing --------------------------------------------------------------------------------

    def _shutdown(self, linger: bool = True) -> None:
        """Half-close and drain, so unread input cannot turn our close into an RST that
        destroys the response before the client reads it.

        A client that asked to close sends nothing more: with nothing buffered here or in
        the kernel, closing at once is as safe and saves a round trip (nginx's lingering
        close heuristic).
        """
        if self._eof or (not linger and not self._input_pending()):
            self.close("done")
            return
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close("shutdown failed")
            return
        self._set_phase(_LINGER)
        self._set_deadline(self._loop.now + self._cfg.linger_timeout)

    def _input_pending(self) -> bool:
        """Whether the kernel holds unread input (or an error) for this socket (or, over
        TLS, OpenSSL holds decrypted bytes)."""
        try:
            if self._tls:  # SSLSocket.recv takes no flags: peek below the TLS layer
                return self._sock.pending() > 0 or bool(  # type: ignore[attr-defined]
                    socket.socket.recv(self._sock, 1, socket.MSG_PEEK))
            return bool(self._sock.recv(1, socket.MSG_PEEK))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True  # let the lingering path meet the error

    def _on_socket_error(self, err: OSError) -> None:
        if err.errno in _DISCONNECTS or isinstance(err, _QUIET_TLS_ERRORS):
            log.debug("%s disconnected: %s", self.peer, err)
        else:
            log.warning("%s: %s", self.peer, err)
        self.close("socket error")

    def close(self, reason: str = "") -> None:
        """Close now: unregister, close the socket, release the file, leave the registry."""
        if self._phase is _CLOSED:
            return
        self._log_response()  # an interrupted response is still logged, with bytes sent
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._set_phase(_CLOSED)  # unregisters before the close (fd reuse, KeyError)
        self._sock.close()
        self._release_file()
        self._out = _NO_OUTPUT
        self._owner.forget(self)
        log.debug("%s closed: %s", self.peer, reason)


def _unchanged(body: FileBody) -> bool:
    """Whether a cached open file still has the size and mtime its headers announce: a
    file truncated or rewritten in place would otherwise be sent with a wrong length.
    fstat of an open fd reads the in-memory inode; it does not wait on the disk."""
    assert body.fd is not None
    try:
        return body.identical(os.fstat(body.fd))
    except OSError:
        return False


def _path_of(target: bytes) -> str:
    """The path of a request target, without its query, as text (for the options that
    name paths: --status-path, --spa)."""
    return target.partition(b"?")[0].decode("latin-1")


def _loopback(address: str) -> bool:
    return address == "127.0.0.1" or address == "::1" or address.startswith("127.")


_PLAIN_HTTP_LOGIN = (b"<!doctype html><title>403 Forbidden</title><h1>403 Forbidden</h1>"
                     b"<p>This server asks for a password, and this connection would carry it "
                     b"unencrypted across the network, so it is refused. The operator can "
                     b"serve HTTPS or allow it with --auth-insecure.</p>\n")


def _is_token(name: bytes) -> bool:
    return bool(name) and not name.translate(None, TCHAR)


_SPA_INDEX = b"/index.html"
_HOST_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:"
_PLAIN_ON_TLS = (b"<!doctype html><title>400 Bad Request</title><h1>400 Bad Request</h1>"
                 b"<p>This port speaks HTTPS: use an https:// address.</p>\n")


def _ignore(future: Future[None]) -> None:
    """A read-ahead hint needs no answer."""


def _drop(body: FileBody, shared: bool) -> None:
    """Done with `body` without sending from its fd: close the fd unless the cache owns it."""
    if not shared:
        _close_fd(body)


def _close_fd(body: FileBody) -> None:
    if body.fd is not None:
        os.close(body.fd)


def _leading_views(out: deque[memoryview | tuple[int, int]]) -> Iterator[memoryview]:
    """The views at the front of `out`, up to the first file segment (for one sendmsg)."""
    for item in itertools.islice(out, _IOV_MAX):
        if isinstance(item, tuple):
            return
        yield item


def _release(future: Future[FileBody]) -> None:
    """Close the fd a dropped pool result carries."""
    if future.cancelled() or future.exception() is not None:
        return
    body = future.result()
    if body.fd is not None:
        os.close(body.fd)
