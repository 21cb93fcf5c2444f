"""The listener, the connection registry, and a graceful stop.

Owns: `Server`: what changes while serving (the connections, the file cache, the counters,
draining) and the current `Site`. Imports `config`, `connection`, `site`, `cache`, `files`,
`auth`, `log`, `loop`, `status`.
"""
from __future__ import annotations

import errno
import logging
import mimetypes
import os
import socket
import ssl
import time
from concurrent.futures import Future

from .auth import Credentials, FailureLimiter
from .cache import FileCache
from .config import Config
from .connection import Connection
from .files import load_error_pages
from .live import HEARTBEAT, LiveReload
from .log import AccessLog
from .loop import READ, Loop, TimerHandle
from .phases import IDLE
from .site import Site
from .status import Counters, Snapshot
from .watch import Watcher, watch

log = logging.getLogger("evserver")

# accept() failures that mean "out of a resource": back off instead of spinning, since a
# level-triggered listener stays readable while the queue is full (asyncio does the same).
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Server:
    """Accepts connections into one Loop and tracks them until they close."""

    def __init__(self, cfg: Config, loop: Loop | None = None,
                 access_log: AccessLog | None = None) -> None:
        self.cfg = cfg
        self.loop = loop or Loop(cfg.threads, debug=cfg.debug)
        self.cache = FileCache(cfg.cache_max_bytes, cfg.cache_max_entries, cfg.cache_ttl,
                               cfg.cache_max_open, cfg.compress_cache_bytes)
        self.access_log = access_log or AccessLog(None)
        self.draining = False
        self.connections: set[Connection] = set()
        # Connections waiting for a request, oldest first: closed first at the cap.
        self.idle: dict[Connection, None] = {}
        self.accepted = 0
        self.counters = Counters()
        self.login_failures = FailureLimiter()
        self.started = time.time()
        docroot = os.path.realpath(cfg.docroot)
        # Raises ValueError or OSError for a bad --auth or --auth-file: before the bind.
        credentials = (Credentials(cfg.auth, cfg.auth_file)
                       if cfg.auth or cfg.auth_file else None)
        # Raises ssl.SSLError or OSError for an unusable certificate: before the bind too.
        self.tls_context = _tls_context(cfg) if cfg.tls_cert else None
        self._accepting = False
        self._accept_error_logged = False
        self._accept_retry: TimerHandle | None = None  # set while backing off after EMFILE
        self._grace_timer: TimerHandle | None = None
        mimetypes.init()  # reads /etc/mime.types now, never on the loop later
        self.listener = _listen(cfg, cfg.port)
        host, port = self.listener.getsockname()[:2]
        self._address: tuple[str, int] = (host, port)  # still known once stop() closed it
        # With --tls-port, HTTPS has a listener of its own; without, --port is the HTTPS one.
        self.tls_listener: socket.socket | None = None
        self._main_tls = self.tls_context if cfg.tls_port is None else None
        self.tls_port = port if self._main_tls is not None else 0
        if cfg.tls_port is not None:
            try:
                self.tls_listener = _listen(cfg, cfg.tls_port)
            except BaseException:
                self.listener.close()
                raise
            self.tls_port = self.tls_listener.getsockname()[1]
            self._tls_acceptor = _TLSAcceptor(self)
        self.site = Site.build(cfg, docroot, tls_port=self.tls_port,
                               tls=self.tls_context is not None,
                               error_pages=load_error_pages(docroot),  # before the loop runs
                               credentials=credentials)
        self.live: LiveReload | None = None
        self._watcher: Watcher | None = None
        self._heartbeat: TimerHandle | None = None
        if cfg.live_reload:
            self._start_live_reload(docroot)
        self._resume_accept()

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def snapshot(self) -> Snapshot:
        """The counters the status page shows."""
        lookups = self.cache.hits + self.cache.misses
        return {
            "uptime_seconds": round(time.time() - self.started),
            "connections_open": len(self.connections),
            "connections_idle": len(self.idle),
            "connections_total": self.accepted,
            "requests_total": sum(self.counters.by_status.values()),
            "requests_by_status": {str(k): v for k, v in sorted(self.counters.by_status.items())},
            "bytes_sent": self.counters.bytes_sent,
            "pool_jobs_pending": self.loop.pending_jobs,
            "pool_jobs_queued": self.loop.queued_jobs,
            "cache_entries": len(self.cache),
            "cache_open_files": self.cache.open_files,
            "cache_hit_ratio": round(self.cache.hits / lookups, 3) if lookups else None,
            "cache_encoded_entries": self.cache.encoded_entries,
            "cache_encoded_bytes": self.cache.encoded_bytes,
            "compression": self.counters.compression(),
            **({"live_reload_pages": len(self.live)} if self.live is not None else {}),
            "draining": self.draining,
        }

    def reload(self) -> None:
        """SIGHUP: build the site again in the pool (it reads the error pages and the auth
        file; the loop never reads files), then swap it in whole."""
        def swap(future: Future[Site]) -> None:
            if (err := future.exception()) is not None:
                log.error("SIGHUP: the site was not read again: %s", err)
            else:
                self.site = future.result()
        try:
            self.loop.submit(self.site.reloaded, on_done=swap)
        except RuntimeError:
            pass  # stopping

    def serve_forever(self) -> None:
        """Run the loop until `stop()` has drained every connection, then release all."""
        try:
            self.loop.run()
        finally:
            self._close()

    # -- accepting ----------------------------------------------------------------------------

    def on_event(self, mask: int) -> None:
        if self._accepting:
            self._accept_batch(self.listener, self._main_tls)

    def _accept_batch(self, listener: socket.socket, tls: ssl.SSLContext | None, *,
                      drain: bool = False) -> None:
        # A bounded batch: a flood of connects neither starves the open connections nor
        # waits one accept per loop tick (`drain`, at a stop: the whole backlog).
        for _ in range(self.cfg.backlog + 1 if drain else self.cfg.accept_batch):
            at_cap = len(self.connections) >= self.cfg.max_connections
            if at_cap and not self.idle:
                self._pause_accept()  # resumed by forget() when one closes
                return
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:
                self._on_accept_error(err)
                return
            if at_cap:
                # Make room by closing the connection idle the longest (nginx reuses idle
                # keep-alive connections the same way when it runs out of them).
                next(iter(self.idle)).close("connection limit: idle the longest")
            self._accept_error_logged = False  # resources are back: a new episode logs again
            self._adopt(sock, addr[0], tls)

    def _adopt(self, sock: socket.socket, host: str, tls: ssl.SSLContext | None) -> None:
        sock.setblocking(False)  # TCP_NODELAY and SO_SNDBUF come from the listener
        conn = Connection(sock, host.removeprefix("::ffff:"), self, tls=tls)
        self.connections.add(conn)
        self.accepted += 1
        conn.start()

    def _on_accept_error(self, err: OSError) -> None:
        if err.errno not in _RESOURCE_ERRNOS:
            log.warning("accept failed: %s", err)
            return
        if not self._accept_error_logged:
            log.error("accept failed (%s): pausing accepts for %.1f s", err,
                      self.cfg.accept_retry_delay)
            self._accept_error_logged = True
        self._pause_accept()
        if self._accept_retry is None:
            self._accept_retry = self.loop.call_later(self.cfg.accept_retry_delay,
                                                      self._retry_accept)

    def _retry_accept(self) -> None:
        self._accept_retry = None
        self._resume_accept()

    def _pause_accept(self) -> None:
        if self._accepting:
            self.loop.unregister(self.listener)
            if self.tls_listener is not None:
                self.loop.unregister(self.tls_listener)
            self._accepting = False

    def _resume_accept(self) -> None:
        if not self._accepting and not self.draining:
            self.loop.register(self.listener, READ, self)
            if self.tls_listener is not None:
                self.loop.register(self.tls_listener, READ, self._tls_acceptor)
            self._accepting = True

    # -- --live-reload ---------------------------------------------------------------------------

    def _start_live_reload(self, docroot: str) -> None:
        """Watch the root (the watcher's disk work runs in the pool) and tell every open
        page of each coalesced burst of changes; a heartbeat keeps idle streams open."""
        self.live = LiveReload(self.cfg.live_reload_max)
        self._watcher = watch(self.loop, docroot, self._changed)
        self._watcher.start()
        self._heartbeat = self.loop.call_later(HEARTBEAT, self._beat)

    def _changed(self, paths: list[str]) -> None:
        """Files changed: what the cache holds is checked again before it is served (or a
        page reloading at once would get what it had), then every open page is told."""
        self.cache.expire()
        if self.live is not None:
            self.live.changed(paths)

    def _beat(self) -> None:
        if self.live is not None and not self.draining:
            self.live.heartbeat()
            self._heartbeat = self.loop.call_later(HEARTBEAT, self._beat)

    def _stop_live_reload(self) -> None:
        """The streams end at once: a stop does not wait for open pages."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self.live is not None:
            self.live.close()

    def on_idle(self, conn: Connection, idle: bool) -> None:
        """A connection entered (or left) the idle phase."""
        if idle:
            self.idle[conn] = None
        else:
            self.idle.pop(conn, None)

    def forget(self, conn: Connection) -> None:
        """Called by a connection once it has closed."""
        self.connections.discard(conn)
        if self.draining:
            if not self.connections:
                self.loop.stop()
        elif (not self._accepting and self._accept_retry is None
              and len(self.connections) < self.cfg.max_connections):
            self._resume_accept()  # below the cap again (an EMFILE back-off waits its timer)

    # -- stopping -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop accepting, close idle connections, let responses in flight finish within
        `shutdown_grace`, then stop the loop. Safe to call more than once; loop thread only."""
        if self.draining:
            return
        # Connections the kernel already completed (and whose request may be waiting) are
        # taken in first: closing the listener would reset them, and a balancer that had
        # already sent them a request would answer its client 502 (found with HAProxy).
        if self._accepting:
            self._accept_batch(self.listener, self._main_tls, drain=True)
            if self.tls_listener is not None:
                self._accept_batch(self.tls_listener, self.tls_context, drain=True)
        self._pause_accept()
        # Close the listener now, not at the end of the drain: an open listener lets the
        # kernel complete handshakes that nobody will accept, so new clients would hang for
        # the whole grace period and then get a reset. Closed, they are refused at once
        # (and, with SO_REUSEPORT siblings, routed to a process that still serves).
        self.listener.close()
        if self.tls_listener is not None:
            self.tls_listener.close()
        self.draining = True
        self._stop_live_reload()
        for conn in list(self.connections):
            # Idle between requests: close. Not yet asked anything: its first request may be
            # on its way (it gets its answer, with Connection: close, within the grace).
            if conn.phase is IDLE and conn.served:
                conn.close("shutting down")
        if not self.connections:
            self.loop.stop()
        else:
            self._grace_timer = self.loop.call_later(self.cfg.shutdown_grace, self._force_stop)

    def _force_stop(self) -> None:
        for conn in list(self.connections):
            conn.close("shutdown grace expired")
        self.loop.stop()

    def _close(self) -> None:
        self._stop_live_reload()
        for conn in list(self.connections):
            conn.close("server closed")
        self.listener.close()
        if self.tls_listener is not None:
            self.tls_listener.close()
        # Pool jobs that finish during shutdown hand their results to callbacks that are
        # now run once, so every fd they opened is closed (by _on_file's drop path).
        for fn, args in self.loop.close():
            try:
                fn(*args)
            except Exception:
                log.exception("while releasing %r", fn)
        self.cache.close()


class _TLSAcceptor:
    """The selector's handler for the --tls-port listener."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def on_event(self, mask: int) -> None:
        server = self._server
        if server._accepting and server.tls_listener is not None:
            server._accept_batch(server.tls_listener, server.tls_context)


def _tls_context(cfg: Config) -> ssl.SSLContext:
    """TLS 1.2 at least, ALPN http/1.1 (we speak nothing else), the certificate loaded now:
    a bad one is a start-up error, not a failure at the first client."""
    assert cfg.tls_cert is not None and cfg.tls_key is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return context


def _listen(cfg: Config, port: int) -> socket.socket:
    """A non-blocking listener; `::` is dual-stack, so it serves IPv4 too."""
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if cfg.reuse_port:  # --workers: the kernel spreads connections over the workers
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Accepted sockets inherit these (Linux): two system calls fewer per connection.
        # No Nagle delay for a head sent before a sendfile body; and a capped send buffer
        # bounds the kernel memory a slow reader can pin (autotuning would grow it to MiBs).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.send_buffer)
        sock.bind((cfg.host, port))
        sock.listen(cfg.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
