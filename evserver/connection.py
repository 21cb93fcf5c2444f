"""One client connection as a state machine: read, parse, answer, keep alive or close.

Owns: `Connection`, `Owner`. Imports `http11` (the parser, heads, the date line),
`files` and `cache` (routes, loads, cached bodies), `responses` (every decision about what
to answer), `outgoing` (the response in flight), `opening` (the stage before HTTP),
`phases`, `addresses`, `site`, `loop`, `log`, `auth`, `status` and `config` (types).
Only the loop thread calls into a Connection; pool results arrive through `Loop.submit`'s
`on_done`, also on the loop thread.

The connection is the one owner of its phase, its selector interest and its timer. The
phase changes only in `_set_phase`, which derives the interest from it (the table of phases,
their interest and their deadlines is in `phases`); `_apply_interest` is the only code that
calls the selector; `_set_deadline` alone moves the one timer.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote_to_bytes

from .addresses import in_networks
from .auth import FailureLimiter
from .cache import FileCache
from .files import FileBody, Resolved, close_result, load, route
from .http11 import CONDITIONAL, DateLine, HTTPError, Request, RequestParser, build_head
from .live import LiveReload
from .log import AccessLog
from .loop import READ, WRITE, Loop, TimerHandle
from .metrics import (
    CLIENT,
    DONE,
    ERROR,
    LIMIT,
    REFUSED,
    RESET,
    SHUTDOWN,
    TIMEOUT,
    Counters,
    Snapshot,
)
from .opening import READY, WRAP, Opening, OpeningFailed
from .outgoing import (
    BLOCKED,
    ENDED_SHORT,
    NEEDS_CHUNK,
    Chunk,
    EncodedStream,
    Outgoing,
    Piece,
    pieces_of,
)
from .phases import (
    CLOSED,
    EVENTS,
    HEAD,
    IDLE,
    LINGER,
    OPENING,
    SEND,
    WAIT_CHUNK,
    WAIT_FILE,
    WAIT_LOGIN,
    Phase,
    interest_of,
)
from .responses import (
    Plan,
    Segment,
    error_plan,
    expectation,
    file_plan,
    health_plan,
    login_gate,
    login_refused,
    method_plan,
    metrics_plan,
    path_of,
    screen,
    spa_fallback,
    status_plan,
    whole_file_plan,
)
from .site import Site

log = logging.getLogger("evserver")

# Errors that only mean "the client went away": a quiet close, logged at debug level.
_DISCONNECTS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ECONNABORTED,
                          errno.ETIMEDOUT, errno.ESHUTDOWN})
# A client that goes away without a TLS goodbye: a quiet close, like a reset.
_QUIET_TLS_ERRORS = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
_CONCAT_MAX = 64 * 1024  # bodies up to this size are joined to the head: one send, one copy
_CLOSE_END = b"Connection: close\r\n\r\n"
_KEEP_ALIVE_END = b"Connection: keep-alive\r\n\r\n"  # an HTTP/1.0 client asked to keep it
# HTTPStatus member lookups cost 0.3 µs each in 3.11 (EnumType.__getattr__): globals instead.
_OK, _NOT_FOUND, _TIMEOUT = HTTPStatus.OK, HTTPStatus.NOT_FOUND, HTTPStatus.REQUEST_TIMEOUT
_UNAVAILABLE = HTTPStatus.SERVICE_UNAVAILABLE


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
    live: LiveReload | None

    def snapshot(self, asking: Connection | None = None) -> Snapshot: ...

    def forget(self, conn: Connection) -> None: ...

    def on_idle(self, conn: Connection, idle: bool) -> None: ...


_date = DateLine()


class Connection:
    """One client connection: the phases above, the parser, and the response in flight."""

    __slots__ = ("_sock", "peer", "_owner", "_loop", "_cfg", "_parser", "_phase", "_mask",
                 "_timer", "_deadline", "_seq", "_served", "_eof", "_req", "_request_line",
                 "_started", "_status", "_keep", "_head_len", "_sent", "_out", "_interim",
                 "_client", "_opening", "_tls", "_plain_on_tls", "_sendfile", "_live",
                 "_chunked", "_user")

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
        self._phase = CLOSED  # until start(); nothing is registered yet
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
        self._head_len = 0  # of the response in flight, and the bytes of it sent so far
        self._sent = 0  # (or out.sent, once a partial send made an Outgoing)
        self._out: Outgoing | None = None
        self._interim = b""  # a 100 Continue to send before the next response head
        self._client = peer  # the client's address: the peer, or who a trusted proxy names
        self._opening = (Opening(cfg.proxy_protocol, tls, cfg.recv_size)
                         if cfg.proxy_protocol or tls is not None else None)
        self._tls = tls is not None  # an HTTPS connection (no sendfile, no sendmsg)
        self._plain_on_tls = False  # plain HTTP arrived on the HTTPS port
        self._sendfile = sendfile  # injectable: tests fake it
        self._live: LiveReload | None = None  # the page stream this connection carries
        self._chunked = False  # that stream is chunked (HTTP/1.1) or ends at close (1.0)
        self._user: bytes | None = None  # who the request being answered logged in as

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def served(self) -> int:
        """Requests answered (or being answered) on this connection so far."""
        return self._served

    def start(self) -> None:
        """Begin reading; a client that never sends a byte is dropped after header_timeout.
        With --proxy-protocol, the balancer's preamble comes first (within the handshake
        time), and only from a --trusted-proxy address: anyone else is closed at once."""
        cfg = self._cfg
        if cfg.proxy_protocol and not in_networks(self.peer, cfg.trusted_proxies):
            log.debug("%s closed: not a trusted proxy", self.peer)
            self._sock.close()  # still CLOSED, as before start(): nothing registered
            self._owner.counters.proxy_failures += 1
            self._owner.counters.connection_closed(REFUSED, 0)
            self._owner.forget(self)
            return
        if self._opening is not None:
            self._set_phase(OPENING)
            self._set_deadline(self._loop.now + cfg.handshake_timeout)
        else:
            self._set_phase(IDLE)
            self._set_deadline(self._loop.now + cfg.header_timeout)

    # -- phases, interest and the one timer -------------------------------------------------

    def _set_phase(self, phase: Phase) -> None:
        if phase is OPENING:
            assert self._opening is not None
            mask = WRITE if self._opening.wants_write else READ
        else:
            mask = interest_of(phase)
            if mask == READ and phase is not LINGER and (
                    self._eof or self._parser.buffered >= self._cfg.max_head):
                # After EOF the socket is always readable: level triggering would spin.
                # With a head's worth of pipelined bytes already waiting, read nothing more
                # until they are answered: the kernel's buffer, not ours, holds the rest.
                mask = 0
        if (phase is IDLE) is not (self._phase is IDLE):
            self._owner.on_idle(self, phase is IDLE)  # idle ones go first under pressure
        self._phase = phase
        if mask != self._mask:
            self._apply_interest(mask)

    def _apply_interest(self, mask: int) -> None:
        """The one caller of the selector: epoll_ctl only on a real change."""
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
        if self._phase is CLOSED:
            return
        if self._loop.now < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        phase = self._phase
        if phase is HEAD and self._parser.in_body:
            # The rest of an answered request's body is late: no second response for it.
            self._shutdown()
        elif phase is HEAD:
            self._begin_refusal()
            self._request_line = self._parser.partial_line()
            self._respond_error(HTTPError(_TIMEOUT, "head not complete"))
        elif phase is EVENTS:
            return  # an event stream has no deadline: its heartbeat keeps it open
        elif phase is WAIT_FILE or phase is WAIT_LOGIN:
            self._seq += 1  # the late result is dropped (and a file's fd closed)
            what = "file work" if phase is WAIT_FILE else "password check"
            self._respond_error(HTTPError(_UNAVAILABLE, f"{what} too slow"))
        else:
            if phase is OPENING and self._opening is not None:
                self._opening_failed(self._opening.stage)
            self.close(f"{phase.value} timeout", TIMEOUT)

    # -- events and reading ---------------------------------------------------------------

    def on_event(self, mask: int) -> None:
        phase = self._phase
        try:
            if phase is SEND:
                self._flush()
            elif phase is IDLE or phase is HEAD or phase is LINGER:
                self._on_readable()
            elif phase is OPENING:
                self._open()
            elif phase is EVENTS:
                self._on_events_readable()
            # Else an earlier event of this batch closed us, or a pool job paused us.
        except Exception:
            self._on_bug()

    def _on_bug(self) -> None:
        """An exception escaped a handler: a bug. Log it, answer 500 if a request is
        waiting for its response, and close; the loop and every other connection go on.

        Only a request in hand, or one whose head has begun to arrive, gets the 500: between
        requests, or in the rest of an answered body, it would answer nothing, and the
        client would take it for the response to its next request."""
        log.exception("%s: internal error", self.peer)
        if self._phase is CLOSED:
            return
        parser = self._parser
        waiting = self._req is not None or (parser.buffered > 0 and not parser.in_body)
        if waiting and self._status is None and self._phase is not LINGER:
            if self._req is None:
                self._request_line = parser.partial_line()  # what came of it, for the log
            try:
                self._respond_error(HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "bug"))
                return
            except Exception:
                log.exception("%s: cannot even answer 500", self.peer)
        self.close("internal error", ERROR)

    def _open(self) -> None:
        """The stage before HTTP, one step per event; then HTTP begins, in IDLE."""
        opening = self._opening
        assert opening is not None
        try:
            step = opening.step(self._sock)
            if step == WRAP:
                # The SSL socket takes over the fd: let the selector forget the plain one.
                if self._mask:
                    self._apply_interest(0)
                self._sock = opening.wrap(self._sock)
                step = opening.step(self._sock)
        except OpeningFailed as err:
            self._opening_failed(err.stage)
            self.close(str(err), CLIENT if err.left else ERROR)
            return
        except OSError as err:
            self._on_socket_error(err)
            return
        if step != READY:
            self._set_phase(OPENING)  # reading or writing, as the opening asks
            return
        self._opening = None
        if opening.preamble_read:
            self._owner.counters.proxy_preambles += 1
        if opening.handshaken:
            self._owner.counters.tls_handshakes += 1
        if opening.client is not None:
            self.peer = self._client = opening.client
        if opening.plain:
            self._tls, self._plain_on_tls = False, True
        self._set_phase(IDLE)
        self._set_deadline(self._loop.now + self._cfg.header_timeout)  # the first request's
        if opening.rest:
            self._parser.feed(opening.rest)
            self._answer_from_idle()

    def _opening_failed(self, stage: str) -> None:
        counters = self._owner.counters
        if stage == "tls":
            counters.tls_failures += 1
        elif stage == "proxy":
            counters.proxy_failures += 1

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(self._cfg.recv_size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as err:
            self._on_socket_error(err)
            return
        if self._phase is LINGER:
            if not data:
                self.close("closed after the response", DONE)
            return
        if not data:
            self._eof = True
            self._set_phase(self._phase)  # drops READ interest; buffered requests still run
        else:
            if (self._tls and len(data) == self._cfg.recv_size
                    and self._sock.pending()):  # type: ignore[attr-defined]
                # Decrypted bytes OpenSSL holds raise no event: come back for them. Only a
                # read that filled the buffer can have left any: OpenSSL (without read-ahead,
                # which Python never turns on) reads one record at a time, at most 16 KiB,
                # and hands over all of it when the buffer has room.
                self._loop.call_soon(self.on_event, READ)
            if self._phase is IDLE:
                req = self._parser.remembered(data)
                if req is not None:  # the hot path: a head seen before, whole, between requests
                    self._started = self._loop.now
                    self._answer_at_once(req)
                    return
                self._parser.feed(data)
                self._answer_from_idle()
                return
            self._parser.feed(data)
        self.process()

    def _answer_from_idle(self) -> None:
        """A whole request usually comes in one read: answer it straight from IDLE and enter
        HEAD (its deadline, its idle bookkeeping) only if part of it is still missing."""
        self._started = self._loop.now
        self._process()  # the callers' on_event catches what escapes
        if self._phase is IDLE and not self._parser.empty:
            self._start_head()

    def _start_head(self) -> None:
        """A request's first byte is here (or the rest of an answered request's body is
        due): its clock, for the log, and its deadline start."""
        self._set_phase(HEAD)
        self._started = self._loop.now
        # Set at the first byte and never extended: slowloris cannot stretch it.
        timeout = self._cfg.body_timeout if self._parser.in_body else self._cfg.header_timeout
        self._set_deadline(self._started + timeout)

    def process(self) -> None:
        """Parse and answer the next buffered request, if a whole one is there."""
        if self._phase is not IDLE and self._phase is not HEAD:
            return
        try:
            self._process()
        except Exception:
            self._on_bug()

    def _process(self) -> None:
        try:
            req = self._parser.maybe_next()
        except HTTPError as err:
            if err.answered:
                # Its response is sent: half-close with no second one (it would pass for
                # the answer to a next request), lingering so the first still arrives.
                log.debug("%s: framing lost after the response: %s", self.peer, err.detail)
                self._shutdown()
                return
            self._begin_refusal()
            self._request_line = err.request_line
            self._respond_error(err)
            return
        if req is not None:
            self._answer(req)
        elif self._eof:
            self.close("client closed", CLIENT)
        elif self._phase is HEAD and not self._parser.buffered and not self._parser.in_body:
            # Only a discarded body or empty lines came: idle again, with the idle timeout.
            self._set_phase(IDLE)
            self._set_deadline(self._loop.now + self._cfg.keepalive_timeout)
        else:
            # Waiting for more input. Discarding a body may just have drained a buffer that
            # was past the backpressure mark (READ dropped in _set_phase); the phase does
            # not change here, so recompute the interest, or the rest is never read.
            self._set_phase(self._phase)

    def _begin_refusal(self) -> None:
        """A response with no parsed request to answer (the parser refused it, or its head
        timed out): it counts as served, and the connection closes after it. The caller
        sets the request line the log shows (what the parser could read of it)."""
        self._req = None
        self._served += 1
        self._keep = False

    # -- what to answer: asked of `responses`, then carried out ----------------------------

    def _answer(self, req: Request) -> None:
        """The start of a response to `req` (once per request): what to answer, asked of
        `responses` unless the file is the answer, then carried out."""
        self._req = req
        self._request_line = req.line
        self._served = served = self._served + 1
        self._keep = (req.keep_alive and not self._owner.draining
                      and served < self._cfg.max_keepalive_requests)
        site = self._owner.site
        try:
            if b"expect" in req.fields:
                self._interim, may_keep = expectation(req, self._parser.in_body)
                self._keep = self._keep and may_keep
            if req.method != b"GET" and req.method != b"HEAD":
                self._respond(method_plan(req, site.cfg.cors, no_store=site.cfg.no_cache))
                return
            if (site.screening or self._plain_on_tls) and self._screened(site, req):
                return
        except HTTPError as err:
            self._respond_error(err)
            return
        self._serve(site, req.target)

    def _answer_at_once(self, req: Request) -> None:
        """The hot path, for a head seen before that came whole between requests: a
        keep-alive HTTP/1.1 GET or HEAD, with no precondition, range, expectation or
        Cache-Control, of a small file the cache holds fresh in memory, answered, logged and
        done in one go. Each step is the one `_answer` and what it calls take, in the same
        order (tests/conn/test_hot_path.py compares the two, byte for byte); anything else,
        or a send the socket does not take whole, goes on through them."""
        owner = self._owner
        site = owner.site
        served = self._served + 1
        if (not req.plain or site.screening or self._plain_on_tls or owner.draining
                or served >= self._cfg.max_keepalive_requests):
            self._answer(req)
            return
        self._req = req
        self._request_line = req.line
        self._served = served
        self._keep = True
        loop = self._loop
        docroot = site.docroot
        try:
            routed = req.routed
            if routed is not None and routed[0] is docroot:
                path, key, encodings = routed[1]
            else:
                found = route(docroot, req.target, req.fields.get(b"accept-encoding"))
                req.routed = (docroot, found)
                path, key, encodings = found
            fresh, stale = owner.cache.lookup(key, loop.now)
            data = fresh.data if fresh is not None else None
            # Only bytes in memory (a file kept open, or encoded as it is sent, has none),
            # small enough to join to the head, and no encoded variant (counted apart).
            if (data is None or fresh is None or len(data) > _CONCAT_MAX
                    or fresh.identity_size >= 0):
                self._serve_found(site, path, key, encodings, fresh, stale)
                return
        except HTTPError as err:
            self._respond_error(err)
            return
        method = req.method
        if method != b"GET":
            data = b""
        response = b"".join((site.tls_ok_start if self._tls else site.ok_start,
                             _date.at(loop.wall), fresh.fields, b"\r\n", data))
        if not self._sent_at_once(_OK, response, len(response) - len(data)):
            return
        # Sent: logged (`_log_response`), and waiting in IDLE for the next request (`_finish`).
        self._status = None
        self._req = None
        duration = loop.now - self._started
        owner.counters.count(method, _OK, len(data), duration)
        owner.access_log.record(self._client, loop.wall, req.line, _OK, len(data),
                                req.referer, req.user_agent, duration, self._user)
        self._set_deadline(loop.now + self._cfg.keepalive_timeout)

    def _screened(self, site: Site, req: Request) -> bool:
        """The rules that need the client's address or the path; True once answered."""
        cfg = site.cfg
        self._client = client = screen(site, req, self.peer, tls=self._tls,
                                       plain_on_tls=self._plain_on_tls)
        path = path_of(req.target)
        if path == cfg.status_path:
            self._respond(status_plan(req, client, cfg.status_allow, self._owner.snapshot(self)))
        elif path == cfg.metrics_path:
            self._respond(metrics_plan(client, cfg.status_allow, self._owner.snapshot(self)))
        elif path == cfg.health_path:
            self._respond(health_plan(self._owner.draining))
        elif path == cfg.live_reload_path and self._owner.live is not None:
            self._start_events(req, self._owner.live)
        elif site.credentials is not None and path.startswith(cfg.auth_paths):
            self._check_login(site, req, client)
        else:
            return False
        return True

    # -- --live-reload: an open page's event stream -----------------------------------------

    def _start_events(self, req: Request, live: LiveReload) -> None:
        """This request opens a page's event stream (text/event-stream): the head, then the
        connection stays in EVENTS, sending what `live` pushes, until the page goes away or
        the server stops. Chunked, or for HTTP/1.0 ended by closing; never kept alive."""
        if live.full or self._owner.draining:
            raise HTTPError(_UNAVAILABLE, "live-reload streams", close=False,
                            headers=((b"Retry-After", b"5"),))
        self._chunked = req.version != b"HTTP/1.0"
        fields = (b"Content-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                  b"X-Accel-Buffering: no\r\n")  # nginx: pass each event on at once
        if self._chunked:
            fields += b"Transfer-Encoding: chunked\r\n"
        if req.method == b"HEAD":
            self._respond(Plan(_OK, fields))
            return
        site = self._owner.site
        head = build_head(_OK, (site.tls_fields if self._tls else site.fields)
                          + _date.at(self._loop.wall) + fields, keep_alive=False)
        self._status, self._head_len, self._sent = _OK, len(head), 0
        self._live = live
        self._set_phase(EVENTS)
        first = live.subscribe(self, req.fields.get(b"last-event-id") or _last_seen(req.target))
        self._write_events(head + self._framed(first))

    def push(self, data: bytes) -> None:
        """An event (or a heartbeat) for this page."""
        if self._phase is EVENTS:
            self._write_events(self._framed(data))

    def end_events(self) -> None:
        """The server stops: end the stream cleanly (its last chunk) and close."""
        if self._phase is not EVENTS:
            return
        if self._chunked:
            self._write_events(b"0\r\n\r\n")
        if self._phase is EVENTS:
            self._leave_events()
            self._shutdown(linger=False)  # a page sends nothing on its stream

    def _framed(self, data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data

    def _write_events(self, data: bytes) -> None:
        """Events are small and few: the kernel's send buffer holds hours of them. A page
        whose stream does not drain (a frozen tab, a dead peer) is dropped rather than
        buffered here; its EventSource reconnects when it can."""
        try:
            n = self._sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError,
                ssl.SSLWantReadError):
            n = 0
        except OSError as err:
            self._leave_events()
            self._on_socket_error(err)
            return
        self._sent += n
        if n < len(data):
            self._leave_events()
            self.close("live-reload stream not read", LIMIT)

    def _on_events_readable(self) -> None:
        """A page's EventSource sends nothing after its request: EOF (or anything else)
        means the page went away."""
        try:
            data = self._sock.recv(self._cfg.recv_size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as err:
            self._leave_events()
            self._on_socket_error(err)
            return
        self._leave_events()
        self.close("page closed" if not data else "input on a live-reload stream", CLIENT)

    def _leave_events(self) -> None:
        if self._live is not None:
            self._live.unsubscribe(self)
            self._live = None

    def _check_login(self, site: Site, req: Request, client: str) -> None:
        """The password check (a slow hash by design) runs in the pool, in a phase and under
        a deadline of its own; the failure limiter makes a client that keeps failing wait."""
        assert site.credentials is not None
        now = self._loop.now
        header = login_gate(req, client, tls=self._tls, insecure=site.cfg.auth_insecure,
                            blocked=self._owner.login_failures.blocked(client, now),
                            challenge=site.challenge)
        self._seq += 1
        try:
            self._loop.submit(site.credentials.check, header, now,
                              on_done=partial(self._on_login, self._seq, site))
        except RuntimeError:
            raise HTTPError(_UNAVAILABLE, "shutting down") from None
        self._set_phase(WAIT_LOGIN)
        self._set_deadline(now + self._cfg.login_timeout)

    def _on_login(self, seq: int, site: Site, future: Future[str | None]) -> None:
        req = self._req
        if self._phase is not WAIT_LOGIN or seq != self._seq or req is None:
            return  # timed out or closed meanwhile
        try:
            user = future.result()
            failures = self._owner.login_failures
            if user is None:
                failures.failure(self._client, self._loop.now)
                self._owner.counters.login_failures += 1
                log.warning("%s: failed login for %s", self._client, path_of(req.target))
                self._respond_error(login_refused(site.challenge))
                return
            failures.success(self._client)
            # For the log line (its %u). Only a login that succeeded names a user: the name
            # of a failed one is anybody's guess, and may even be a password.
            self._user = user.encode("utf-8", "backslashreplace")
            self._serve(site, req.target)
        except Exception:
            self._on_bug()

    def _serve(self, site: Site, target: bytes, identity: bool = False) -> None:
        """GET or HEAD of a file: from the cache at once, or through the pool. `identity`:
        the file itself, whatever codings the client takes."""
        req = self._req
        assert req is not None
        try:
            accept = None if identity else req.fields.get(b"accept-encoding")
            if accept is not None and b"cache-control" in req.fields:
                # RFC 9111 §5.2.1.6: no-transform asks that nobody encode the content.
                transform = b"no-transform" not in req.fields[b"cache-control"].lower()
                path, key, encodings = route(site.docroot, target, accept, transform)
            else:
                path, key, encodings = route(site.docroot, target, accept)
            fresh, stale = self._owner.cache.lookup(key, self._loop.now)
            self._serve_found(site, path, key, encodings, fresh, stale)
        except HTTPError as err:
            self._respond_error(err)

    def _serve_found(self, site: Site, path: Resolved, key: str, encodings: tuple[str, ...],
                     fresh: FileBody | None, stale: FileBody | None) -> None:
        """`_serve` once the cache was asked: what it holds fresh, or a load in the pool."""
        if fresh is not None and fresh.fd is not None and fresh.changed_in_place():
            fresh, stale = None, fresh  # changed in place: its headers no longer fit
        if fresh is not None:
            # No thread hop, no system call but send (or dup, sendfile).
            self._respond_file(site, fresh, True)
        else:
            self._load(site, path, key, encodings, stale)

    def _load(self, site: Site, path: Resolved, key: str, encodings: tuple[str, ...],
              stale: FileBody | None) -> None:
        loop = self._loop
        cache = self._owner.cache
        self._seq += 1
        if not cache.wait_for_load(key, partial(self._after_load, self._seq)):
            if loop.pending_jobs >= self._cfg.max_pending_jobs:
                raise HTTPError(_UNAVAILABLE, "pool queue full",
                                headers=((b"Retry-After", b"1"),), close=False)
            try:
                accept = self._req.fields.get(b"accept") if path.is_dir and self._req else None
                loop.submit(load, path, site.docroot, self._cfg, stale, encodings, accept,
                            on_done=partial(self._on_loaded, self._seq, site, key))
            except RuntimeError:  # the pool is shut down: we are stopping
                raise HTTPError(_UNAVAILABLE, "shutting down") from None
            cache.load_started(key)
        self._set_phase(WAIT_FILE)
        self._set_deadline(loop.now + self._cfg.send_timeout)

    def _after_load(self, seq: int) -> None:
        """Another request's load of our file finished (and cached it, if it could be):
        look again."""
        req = self._req
        if self._phase is not WAIT_FILE or seq != self._seq or req is None:
            return  # closed or timed out meanwhile
        try:
            self._serve(self._owner.site, req.target)
        except Exception:
            self._on_bug()

    def _on_loaded(self, seq: int, site: Site, key: str, future: Future[FileBody]) -> None:
        """Our load finished: this request first (which caches the body), then the requests
        that waited for the same file look in the cache again."""
        waiting = self._owner.cache.load_finished(key)
        if self._phase is not WAIT_FILE or seq != self._seq:
            close_result(future)  # we closed or timed out meanwhile; never leak the fd
        else:
            try:
                self._use_file(site, key, future)
            except Exception:
                self._on_bug()
        for retry in waiting:
            retry()

    def _use_file(self, site: Site, key: str, future: Future[FileBody]) -> None:
        try:
            body = future.result()
        except HTTPError as err:
            if err.status is _NOT_FOUND:
                self._owner.cache.discard(key)
                assert self._req is not None
                instead = spa_fallback(site, self._req, key)
                if instead is not None:
                    self._serve(site, instead)
                    return
            self._respond_error(err)
            return
        except Exception:
            log.exception("loading %s failed", key)
            self._respond_error(HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "load failed"))
            return
        shared = bool(body.etag) and self._owner.cache.put(key, body, self._loop.now)
        self._respond_file(site, body, shared)

    def _respond_file(self, site: Site, body: FileBody, shared: bool) -> None:
        """Answer with `body`. `shared`: the cache owns its fd (a response sends from a
        dup); otherwise this response owns it and closes it whatever the answer."""
        req = self._req
        assert req is not None
        if body.etag and not CONDITIONAL.isdisjoint(req.fields):
            if body.stream:
                self._respond_stream(site, body, shared)
                return
            if self._answered_conditionally(req, body, shared):
                return
        if body.identity_size >= 0:  # an encoded variant: one test on the identity path
            if body.stream:
                self._respond_stream(site, body, shared)
                return
            if req.method == b"GET":
                self._owner.counters.encoded(body.identity_size, body.size)
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
            start = site.tls_ok_start if self._tls else site.ok_start
            response = b"".join((start, _date.at(self._loop.wall), body.fields, end, data))
            self._send_whole(_OK, response, len(response) - len(data))
            return
        self._respond(whole_file_plan(body), body, shared)

    def _answered_conditionally(self, req: Request, body: FileBody, shared: bool) -> bool:
        """A conditional or ranged request: answered with 304, 206, 412 or 416 (True), or
        False when the whole file is the answer."""
        try:
            plan = file_plan(req, body, self._cfg.max_ranges, self._loop.wall)
        except HTTPError as err:
            body.close_unless(shared)
            self._respond_error(err)
            return True
        if plan is None:
            return False
        self._respond(plan, body, shared)
        return True

    def _respond_stream(self, site: Site, body: FileBody, shared: bool) -> None:
        """A file encoded as it is sent: chunked (its length is known only at the end), or
        for HTTP/1.0, which has no chunks, ended by closing the connection. A range of it
        is a range of the file itself, as nginx's gzip filter leaves ranges to identity
        (the encoded bytes, never stored, have no offsets to seek to)."""
        req = self._req
        assert req is not None
        if b"range" in req.fields and req.method == b"GET":
            body.close_unless(shared)
            self._serve(site, req.target, identity=True)
            return
        if not CONDITIONAL.isdisjoint(req.fields) and self._answered_conditionally(
                req, body, shared):
            return
        chunked = req.version != b"HTTP/1.0"
        if not chunked and req.method == b"GET":
            self._keep = False
        fields = body.fields + b"Transfer-Encoding: chunked\r\n" if chunked else body.fields
        self._respond(Plan(_OK, fields, segments=((0, body.size),)), body, shared,
                      EncodedStream(body.stream, body.level, chunked))

    def _respond_error(self, err: HTTPError) -> None:
        if err.status is not _TIMEOUT:
            log.debug("%s %s: %s", self.peer, err.status.value, err.detail)
        site = self._owner.site
        self._respond(error_plan(err, site.error_pages, site.live_path,
                                 no_store=site.cfg.no_cache))

    # -- carrying out a plan ----------------------------------------------------------------

    def _respond(self, plan: Plan, body: FileBody | None = None, shared: bool = False,
                 stream: EncodedStream | None = None) -> None:
        """Send `plan`'s response; `body` is the file its segments come from (see
        `_respond_file` for `shared`), encoded on the way by `stream` if given. A HEAD's
        response has no body."""
        if plan.close:
            self._keep = False
        req = self._req
        site = self._owner.site
        fields = (site.tls_fields if self._tls else site.fields) + _date.at(self._loop.wall)
        head = self._interim + build_head(plan.status, fields + plan.fields,
                                          keep_alive=self._keep,
                                          http10=req is not None and req.version == b"HTTP/1.0")
        self._interim = b""
        # A request the parser refused still has a method if its line began with one: a
        # HEAD gets no body even then (RFC 9110 §9.3.2), or the page would be read as the
        # start of the next response.
        head_only = (req.method == b"HEAD" if req is not None
                     else self._request_line[:5] == b"HEAD ")
        segments: tuple[Segment, ...] = plan.segments
        if head_only or not segments:
            if body is not None:
                body.close_unless(shared)
                body = None
            data = b"" if head_only else plan.body
            if len(data) <= _CONCAT_MAX:
                self._send_whole(plan.status, head + data if data else head, len(head))
                return
            if not self._tls:
                self._send_gathered(plan.status, head, data)
                return
            segments = (data,)
        fd = -1
        if body is not None and body.data is None:
            fd = self._own_fd(body, shared)
            if fd < 0:
                return
        self._status = plan.status
        self._head_len = len(head)
        self._out = Outgoing(pieces_of(head, segments, body.data if body is not None else None),
                             self._cfg, self._loop, None if self._tls else self._sendfile,
                             fd=fd, path=body.path if body is not None else "",
                             size=body.size if body is not None else 0, stream=stream)
        self._flush()

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
            self._respond_error(HTTPError(_UNAVAILABLE, "out of fds",
                                          headers=((b"Retry-After", b"1"),), close=False))
            return -1

    def _send_whole(self, status: HTTPStatus, response: bytes, head_len: int) -> None:
        """Send a complete response in one call; only what the socket did not take becomes
        an Outgoing."""
        if self._sent_at_once(status, response, head_len):
            self._finish()

    def _sent_at_once(self, status: HTTPStatus, response: bytes, head_len: int) -> bool:
        """One `send` of a whole response: True if the socket took all of it. Otherwise
        the rest is the response in flight, or the connection closed on an error."""
        self._status = status
        self._head_len = head_len
        try:
            n = self._sock.send(response)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            n = 0
        except OSError as err:
            self._sent = 0
            self._on_socket_error(err)
            return False
        self._sent = n
        if n == len(response):
            return True
        self._send_rest([memoryview(response)[n:]], n)
        return False

    def _send_gathered(self, status: HTTPStatus, head: bytes, data: bytes) -> None:
        """`_send_whole` for a head and a large body: one sendmsg, without joining them (no
        copy). Apart from the hot path's single send, which stays free of this branching
        (measured: a merged method costs the cached 1 KiB GET 0.6 % more instructions)."""
        self._status = status
        self._head_len = len(head)
        try:
            n = self._sock.sendmsg((head, data))
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as err:
            self._sent = 0
            self._on_socket_error(err)
            return
        self._sent = n
        if n == len(head) + len(data):
            self._finish()
            return
        self._send_rest([memoryview(head)[n:], memoryview(data)] if n < len(head)
                        else [memoryview(data)[n - len(head):]], n)

    def _send_rest(self, rest: list[Piece], sent: int) -> None:
        """What a send did not take becomes the response in flight."""
        self._out = Outgoing(rest, self._cfg, self._loop, None if self._tls else self._sendfile,
                             sent=sent)
        self._flush()

    def _flush(self) -> None:
        """Write what the socket takes; the one place a send error is handled."""
        out = self._out
        assert out is not None
        sent_before = out.sent
        try:
            result = out.write(self._sock)
        except OSError as err:
            self._on_socket_error(err)
            return
        if result == BLOCKED:
            if self._phase is not SEND:
                self._set_phase(SEND)
            elif out.sent == sent_before:
                # A wakeup that moved no byte is not progress: send_timeout measures the
                # stall since the last byte went out, so a peer that stopped reading
                # cannot keep the connection alive through spurious WRITE events.
                return
            self._set_deadline(self._loop.now + self._cfg.send_timeout)
        elif result == NEEDS_CHUNK:
            self._read_chunk(out)
        else:
            if result == ENDED_SHORT:
                self._end_short(out)
            self._finish()

    def _read_chunk(self, out: Outgoing) -> None:
        """TLS, or a file encoded as it is sent: the pool reads (and encodes) the next chunk
        of the file, which then goes out like any bytes. One chunk in memory per download;
        the loop never reads the disk."""
        self._seq += 1
        try:
            self._loop.submit(out.read_job(), on_done=partial(self._on_chunk, self._seq))
        except RuntimeError:
            self.close("shutting down", SHUTDOWN)
            return
        self._set_phase(WAIT_CHUNK)
        self._set_deadline(self._loop.now + self._cfg.send_timeout)

    def _on_chunk(self, seq: int, future: Future[Chunk]) -> None:
        out = self._out
        if self._phase is not WAIT_CHUNK or seq != self._seq or out is None:
            return  # closed or timed out meanwhile
        try:
            filled = out.fill(future.result())
        except OSError as err:
            out.failed_read(err)
            filled = False
        if not filled:
            self._end_short(out)
            self._finish()
            return
        self._set_phase(SEND)
        self._flush()

    def _end_short(self, out: Outgoing) -> None:
        """The file ended before its Content-Length: the connection must close."""
        log.warning("%s", out.short)
        self._keep = False

    # -- after a response -------------------------------------------------------------------

    def _finish(self) -> None:
        """The response is sent: log it, then keep the connection or start closing it."""
        self._log_response()
        out = self._out
        if out is not None:
            if out.stream is not None and not out.short:
                self._owner.counters.encoded(out.stream.identity_bytes, out.stream.encoded_bytes)
            out.release()
            self._out = None
        client_closes = self._req is not None and not self._req.keep_alive
        self._req = None
        parser = self._parser
        draining = self._owner.draining
        if parser.empty and self._keep and not self._eof and not draining:
            # The common end of a keep-alive response: wait for the next request.
            if self._phase is not IDLE:
                self._set_phase(IDLE)  # IDLE keeps its READ interest: no change otherwise
                # A login is checked in WAIT_LOGIN, so a request that logged in never ends
                # in IDLE: its user is forgotten here, off the hot path (a cached answer
                # from IDLE), and the next request must log in again to be logged as one.
                self._user = None
            self._set_deadline(self._loop.now + self._cfg.keepalive_timeout)
            return
        if not self._keep or draining or (self._eof and not parser.buffered):
            # Draining: a response begun before the stop still ends it, lingering so that
            # the process outlives the bytes still queued in the kernel.
            self._shutdown(linger=not (client_closes and parser.empty) or draining)
            return
        # Pipelined bytes, or the rest of the body of the request just answered.
        self._user = None
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
        sent = self._out.sent if self._out is not None else self._sent
        body_bytes = max(0, sent - self._head_len)
        duration = self._loop.now - self._started
        self._owner.counters.count(req.method if req is not None else b"", status, body_bytes,
                                   duration)
        # status is an IntEnum, formatted with %d: its .value is a slow Python property.
        # The user is None unless this request logged in (`_finish` forgets it after).
        self._owner.access_log.record(
            self._client, self._loop.wall, self._request_line, status, body_bytes,
            req.referer if req is not None else None,
            req.user_agent if req is not None else None, duration, self._user)

    # -- closing --------------------------------------------------------------------------------

    def _shutdown(self, linger: bool = True) -> None:
        """Half-close and drain, so unread input cannot turn our close into an RST that
        destroys the response before the client reads it.

        A client that asked to close sends nothing more: with nothing buffered here or in
        the kernel, closing at once is as safe and saves a round trip (nginx's lingering
        close heuristic).
        """
        if self._eof or (not linger and not self._input_pending()):
            self.close("done", DONE)
            return
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close("shutdown failed", RESET)
            return
        self._set_phase(LINGER)
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
            self.close("socket error", RESET)
        else:
            log.warning("%s: %s", self.peer, err)
            self.close("socket error", ERROR)

    def close(self, reason: str, cause: str) -> None:
        """Close now: unregister, close the socket, release the file, leave the registry.
        `cause` is the class of `reason` that the metrics count (see `metrics`)."""
        if self._phase is CLOSED:
            return
        self._leave_events()
        self._log_response()  # an interrupted response is still logged, with bytes sent
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._set_phase(CLOSED)  # unregisters before the close (fd reuse, KeyError)
        self._sock.close()
        if self._out is not None:
            self._out.release()
            self._out = None
        self._owner.counters.connection_closed(cause, self._served)
        self._owner.forget(self)
        log.debug("%s closed: %s", self.peer, reason)


def _last_seen(target: bytes) -> bytes | None:
    """The `?last=` of a live-reload stream: the last event id the page's tabs saw, for a
    tab that takes the stream over (an EventSource cannot set Last-Event-ID itself)."""
    for pair in target.partition(b"?")[2].split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"last" and value:
            return unquote_to_bytes(value)
    return None
