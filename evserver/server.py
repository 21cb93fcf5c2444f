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
from .board import Seat
from .cache import FileCache
from .config import Config
from .connection import Connection
from .files import load_error_pages
from .live import HEARTBEAT, LiveReload
from .log import AccessLog
from .loop import READ, Loop, TimerHandle
from .metrics import LIMIT, SHUTDOWN, Counters, Snapshot, TimedCounters, carried, merge
from .phases import IDLE
from .site import Site
from .status import History, merge_history
from .watch import Watcher, watch

log = logging.getLogger("evserver")

# accept() failures that mean "out of a resource": back off instead of spinning, since a
# level-triggered listener stays readable while the queue is full (asyncio does the same).
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Server:
    """Accepts connections into one Loop and tracks them until they close."""

    def __init__(self, cfg: Config, loop: Loop | None = None,
                 access_log: AccessLog | None = None, seat: Seat | None = None) -> None:
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
        # The requests' durations are kept only where a status page or metrics show them.
        self.counters = (TimedCounters() if cfg.status_path or cfg.metrics_path
                         else Counters())
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
                               error_pages=load_error_pages(docroot),  # before the loop runs
                               credentials=credentials)
        self.live: LiveReload | None = None
        self._watcher: Watcher | None = None
        self._heartbeat: TimerHandle | None = None
        if cfg.live_reload:
            self._start_live_reload(docroot)
        # --status-path, --metrics-path: the charts' history, the process's facts (read in
        # the pool) and, with --workers, this worker's numbers posted for the others.
        self.history: History | None = None
        self._seat = seat
        self._predecessor: Snapshot = {}  # the last numbers of the worker this one replaces
        self._process_facts: Snapshot = {}
        self._sampler: TimerHandle | None = None
        if cfg.status_path or cfg.metrics_path:
            self._start_sampling()
        self._resume_accept()

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def snapshot(self, asking: Connection | None = None) -> Snapshot:
        """The metrics (see `metrics`) and the charts' history: this process's, or with
        --workers the whole server's, every worker's last posted numbers added to ours.
        `asking`: the connection that will send them (being answered, it is not idle)."""
        own = self._own_snapshot(asking)
        if self._seat is None:
            return own
        self._seat.board.post(self._seat.slot, own)
        others = self._seat.others()
        whole = merge([own, *others])
        whole["history"] = merge_history([own.get("history"),
                                          *(other.get("history") for other in others)])
        return whole

    def _own_snapshot(self, asking: Connection | None = None) -> Snapshot:
        counters, cache, loop = self.counters, self.cache, self.loop
        queued = loop.queued_jobs
        snapshot = counters.snapshot()
        snapshot.update({
            # A request after a connection's first is counted as reused once the connection
            # closes; the open connections' are added here.
            "http_keepalive_requests_total": counters.reused + sum(
                conn.served - 1 for conn in self.connections if conn.served > 1),
            "connections_accepted_total": self.accepted,
            "connections_open": len(self.connections),
            "connections_idle": len(self.idle) - (asking in self.idle),
            "pool_threads": self.cfg.threads,
            "pool_threads_busy": max(0, loop.pending_jobs - queued),
            "pool_queue_jobs": queued,
            "file_cache_hits_total": cache.hits,
            "file_cache_misses_total": cache.misses,
            "file_cache_evictions_total": cache.evictions,
            "file_cache_entries": len(cache),
            "file_cache_bytes": cache.bytes,
            "open_file_cache_hits_total": cache.open_hits,
            "open_file_cache_files": cache.open_files,
            "encoded_cache_entries": cache.encoded_entries,
            "encoded_cache_bytes": cache.encoded_bytes,
            "log_lines_total": self.access_log.written,
            "log_lines_dropped_total": self.access_log.dropped,
            "draining": int(self.draining),
            "workers": 1,
            "process_start_time_seconds": self.started,
            "process_cpu_seconds_total": round(sum(os.times()[:2]), 3),
        })
        if self.live is not None:
            snapshot["live_reload_pages"] = len(self.live)
            snapshot["live_reload_changes_total"] = self.live.events_sent
        snapshot.update(self._process_facts)
        if self._predecessor:
            snapshot = carried(self._predecessor, snapshot)
        if self.history is not None:
            snapshot["history"] = self.history.json()
        return snapshot

    # -- sampling, for the status page's charts and the workers' board --------------------------

    def _start_sampling(self) -> None:
        self.history = History()
        if self._seat is not None:
            previous = self._seat.board.read(self._seat.slot)
            if previous is not None:  # this worker replaces one that died: go on from it
                self._predecessor = previous
                self.history.extend(previous.get("history"))
        self._sample()

    def _sample(self) -> None:
        """Every HISTORY_STEP seconds, at the wall clock's multiples of it: a sample of the
        totals for the charts, the process's facts read in the pool, and (--workers) our
        numbers posted."""
        assert self.history is not None
        counters = self.counters
        wall = self.loop.wall
        self.history.add(wall, counters.requests, counters.bytes_sent, len(self.connections))
        if self._seat is not None:
            self._seat.board.post(self._seat.slot, self._own_snapshot())
        try:
            self.loop.submit(process_facts, on_done=self._on_process_facts)
        except RuntimeError:
            return  # stopping
        step = self.history.step
        self._sampler = self.loop.call_later(step - wall % step, self._sample)

    def _on_process_facts(self, future: Future[Snapshot]) -> None:
        if future.exception() is None:
            self._process_facts = future.result()

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
                next(iter(self.idle)).close("connection limit: idle the longest", LIMIT)
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
                conn.close("shutting down", SHUTDOWN)
        if not self.connections:
            self.loop.stop()
        else:
            self._grace_timer = self.loop.call_later(self.cfg.shutdown_grace, self._force_stop)

    def _force_stop(self) -> None:
        for conn in list(self.connections):
            conn.close("shutdown grace expired", SHUTDOWN)
        self.loop.stop()

    def _close(self) -> None:
        self._stop_live_reload()
        if self._sampler is not None:
            self._sampler.cancel()
        for conn in list(self.connections):
            conn.close("server closed", SHUTDOWN)
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


def process_facts() -> Snapshot:
    """Resident memory and open fds, from /proc (Linux); none elsewhere. In the pool."""
    facts: Snapshot = {}
    try:
        with open("/proc/self/statm", "rb") as f:
            facts["process_resident_memory_bytes"] = int(f.read().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE")
        facts["process_open_fds"] = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError, IndexError):
        pass
    return facts
