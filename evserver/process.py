"""One server process, from a checked Config to exit: the pid file, the fd limit, the
self-signed certificate, logging, signals, the banner, and serving (or, with --workers,
supervising the worker processes that serve).

Owns: `run()`, `stop_lines()`. Imports `config`, `server`, `log`, `workers`, `selfsigned`,
`banner`. Every failure a user can cause ends in one line on stderr and exit status 2.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import resource
import signal
import ssl
import sys
from collections.abc import Callable
from types import FrameType

from . import banner
from .board import Seat
from .config import Config
from .log import AccessLog, human_size, plural, setup_direct_logging, setup_logging
from .selfsigned import SelfSignedError, ensure_certificate, state_folder
from .server import Server
from .workers import STOP_SIGNALS, reserve_port, supervise

log = logging.getLogger("evserver")
_FD_RESERVE = 32  # listener, wakeup pair, log, stdio, and slack
_SUPERVISOR_CHECK = 1.0  # seconds between a worker's checks that its supervisor lives


def run(cfg: Config) -> int:
    """Serve `cfg` (already checked, the disk's checks included) until a stop signal; the
    exit status."""
    cfg = _fit_fd_limit(cfg, _raise_fd_limit())
    if cfg.tls_self_signed:
        try:
            cert, key, fingerprint = ensure_certificate(
                state_folder(), banner.ipv4_addresses() + banner.ipv6_addresses())
        except SelfSignedError as err:
            return _fail(str(err))
        # Printed now, before logging is set up: check it against what the browser shows.
        print(f"evserver: self-signed certificate {cert}\nevserver:   SHA-256 {fingerprint}",
              file=sys.stderr)
        cfg = dataclasses.replace(cfg, tls_cert=str(cert), tls_key=str(key),
                                  tls_self_signed=False)
    if cfg.pidfile is not None:
        try:
            _write_pidfile(cfg.pidfile)
        except OSError as err:
            return _fail(f"cannot write the pid file {cfg.pidfile!r}: {err.strerror}")
    try:
        return _supervise(cfg) if cfg.workers > 1 else _serve(cfg)
    finally:
        if cfg.pidfile is not None and os.getpid() == _main_pid:
            _remove_pidfile(cfg.pidfile)


_main_pid = os.getpid()  # --workers forks: only the process that wrote the pid file removes it


def _write_pidfile(path: str) -> None:
    """Write our pid atomically (a reader never sees a half-written file)."""
    global _main_pid
    _main_pid = os.getpid()
    tmp = f"{path}.{_main_pid}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{_main_pid}\n")
    os.replace(tmp, path)


def _remove_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return  # another instance owns it now
        os.unlink(path)
    except OSError:
        pass


def _serve(cfg: Config, ready: Callable[[], None] | None = None,
           seat: Seat | None = None) -> int:
    """One server process: bind, open the log, run the loop until a stop signal. Prints
    the banner itself, unless it is a worker, which calls `ready()` once it listens (and
    posts its numbers at its `seat` for the others)."""
    try:
        server = Server(cfg, seat=seat)
    except ValueError as err:  # a bad --auth or --auth-file line
        return _fail(str(err))
    except ssl.SSLError as err:
        return _fail(f"cannot use the TLS certificate and key: {err.reason or err}")
    except OSError as err:
        if err.filename is not None:  # the auth file
            return _fail(f"cannot read {err.filename!r}: {err.strerror}")
        return _fail(f"cannot listen on {cfg.host}:{cfg.port}: {err.strerror or err}")
    try:
        # Opened after the bind, so a failed start leaves no empty log file behind.
        server.access_log = access_log = AccessLog.open(
            cfg.access_log, cfg.log_format, sys.stderr if cfg.verbose else None)
    except OSError as err:
        server.listener.close()
        return _fail(f"cannot open the log file {cfg.access_log!r}: {err.strerror}")
    listener = setup_logging(cfg.debug)
    try:
        _install_signals(server, access_log)
        if ready is None:
            banner.show(*server.address, cfg, server.tls_port)
        else:
            ready()
            _watch_supervisor(server, os.getppid())
        server.serve_forever()
        # Every response is logged by now: write the last lines (and with --verbose show
        # them) before the stop says so, not after it.
        access_log.close()
        counted = server.counters
        for line in stop_lines(server.accepted, counted.encoded_responses,
                               counted.identity_bytes, counted.encoded_bytes):
            log.info("%s", line)
    finally:
        access_log.close()
        listener.stop()
    return 0


def stop_lines(accepted: int, encoded_responses: int, identity_bytes: int,
               encoded_bytes: int) -> list[str]:
    """What a server says once it stopped: its connections, and what compression saved
    (when it encoded anything)."""
    lines = [f"stopped after {plural(accepted, 'connection')}"]
    if encoded_responses:
        saved = identity_bytes - encoded_bytes
        lines.append(f"compression saved {human_size(saved)} of {human_size(identity_bytes)} "
                     f"({100 * saved / max(1, identity_bytes):.0f} %) in "
                     f"{plural(encoded_responses, 'encoded response')}")
    return lines


def _watch_supervisor(server: Server, supervisor: int) -> None:
    """A worker whose supervisor died (kill -9) is reparented: it then stops on its own
    instead of serving, unsupervised, forever. Checked once a second."""
    if os.getppid() != supervisor:
        log.warning("the supervisor is gone: stopping")
        server.stop()
    else:
        server.loop.call_later(_SUPERVISOR_CHECK, _watch_supervisor, server, supervisor)


def _supervise(cfg: Config) -> int:
    """--workers N: check the port and the log here, then fork the workers."""
    try:
        reservation = reserve_port(cfg)
    except OSError as err:
        return _fail(f"cannot listen on {cfg.host}:{cfg.port}: {err.strerror or err}")
    if cfg.access_log not in (None, "-"):
        try:
            open(cfg.access_log, "ab").close()
        except OSError as err:
            reservation.close()
            return _fail(f"cannot open the log file {cfg.access_log!r}: {err.strerror}")
    setup_direct_logging()
    host, port = reservation.getsockname()[:2]

    def show_banner() -> None:
        banner.show(host, port, cfg)  # which names the workers before "press Ctrl+C"

    return supervise(cfg, reservation, _serve, show_banner)


def _raise_fd_limit() -> int:
    """Each connection is a file descriptor: take the hard limit, not the usual 1024.
    Returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass  # keep the soft limit; EMFILE is handled by backing off
    return soft


def _fit_fd_limit(cfg: Config, fd_limit: int) -> Config:
    """Keep max_connections under the fd limit, with room for the pool's open files, the
    cache's open files and the log, so the cap (not EMFILE) is what a flood meets."""
    room = fd_limit - _FD_RESERVE - cfg.threads - cfg.cache_max_open
    if fd_limit == resource.RLIM_INFINITY or cfg.max_connections <= room:
        return cfg
    fitted = max(1, room)
    print(f"evserver: --max-connections lowered from {cfg.max_connections} to {fitted}"
          f" to fit the file-descriptor limit ({fd_limit})", file=sys.stderr)
    return dataclasses.replace(cfg, max_connections=fitted)


def _fail(message: str) -> int:
    print(f"evserver: error: {message}", file=sys.stderr)
    return 2


def _install_signals(server: Server, access_log: AccessLog) -> None:
    def on_stop(signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes: only queue the stop for the loop.
        # The loop's wakeup fd makes select() return at once.
        server.loop.call_soon(server.stop)

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        access_log.reopen()  # logrotate's postrotate: the writer thread reopens the file
        server.loop.call_soon(server.reload)  # and the error pages are read again

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hangup)
    # A worker starts with these blocked (workers.STOP_SIGNALS): one sent while it was
    # starting is delivered now, to the handlers above.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
