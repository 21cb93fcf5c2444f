"""Every tunable of evserver in one frozen dataclass, and the command line that fills it.

Owns: `Config`, `ConfigError`, `Config.from_argv()`. Imports nothing from evserver.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NoReturn

KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    """A bad option value; the message names the option and is shown to the user as is."""


def default_docroot() -> str:
    """`www/` next to the package's checkout, else the current directory's `www/`, else `.`."""
    beside_package = Path(__file__).resolve().parent.parent / "www"
    for candidate in (beside_package, Path.cwd() / "www"):
        if candidate.is_dir():
            return str(candidate)
    return "."


@dataclass(frozen=True, slots=True)
class Config:
    """Limits, timeouts and paths; checked once in `__post_init__`, then shared read-only."""

    host: str = "0.0.0.0"
    port: int = 8080
    docroot: str = "www"
    access_log: str | None = "access.log"  # "-" is stdout, None disables it
    backlog: int = 1024
    max_connections: int = 10000
    threads: int = min(32, (os.cpu_count() or 1) + 4)
    max_pending_jobs: int = 1024
    recv_size: int = 64 * KIB
    max_head: int = 16 * KIB
    max_request_line: int = 8 * KIB
    max_headers: int = 100
    max_body: int = 1 * MIB
    header_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    send_timeout: float = 30.0
    linger_timeout: float = 2.0
    shutdown_grace: float = 10.0
    max_keepalive_requests: int = 1000
    accept_batch: int = 64
    accept_retry_delay: float = 1.0
    cache_max_entry: int = 256 * KIB
    cache_max_bytes: int = 64 * MIB
    cache_max_entries: int = 4096
    cache_ttl: float = 1.0
    sendfile_chunk: int = 1 * MIB
    debug: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, not {self.port}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or f.name == "port":
                continue
            if isinstance(value, (int, float)) and value <= 0:
                option = "--" + f.name.replace("_", "-")
                raise ConfigError(f"{option} must be positive, not {value}")
        if self.max_request_line > self.max_head:
            raise ConfigError("--max-request-line must not exceed --max-head")

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> Config:
        """Parse a command line; a bad one raises SystemExit(2) after one line on stderr."""
        args = _build_parser().parse_args(argv)
        values = {k: v for k, v in vars(args).items() if v is not None}
        if values.pop("no_log", False):
            values["access_log"] = None
        try:
            return cls(**values)
        except ConfigError as err:
            _fail(str(err))


def _fail(message: str) -> NoReturn:
    print(f"evserver: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage dump) with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"evserver: error: {message} (see --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    d = Config()
    p = _Parser(prog="evserver", description="Serve a folder over HTTP/1.1 from one event loop.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    where = p.add_argument_group("where")
    where.add_argument("--host", default=d.host, help="address to listen on (:: for IPv6 and IPv4)")
    where.add_argument("--port", type=int, default=d.port, help="TCP port (0 picks a free one)")
    where.add_argument("--root", dest="docroot", default=default_docroot(), help="document root")
    where.add_argument("--log", dest="access_log", default=d.access_log,
                       help="access log file, '-' for standard output")
    where.add_argument("--no-log", action="store_true", default=None, help="write no access log")
    work = p.add_argument_group("work")
    work.add_argument("--threads", type=int, default=d.threads, help="file-reading pool size")
    work.add_argument("--max-connections", type=int, default=d.max_connections)
    work.add_argument("--max-pending-jobs", type=int, default=d.max_pending_jobs,
                      help="queued file reads before answering 503")
    timeouts = p.add_argument_group("timeouts (seconds)")
    timeouts.add_argument("--header-timeout", type=float, default=d.header_timeout,
                          help="whole request head, from its first byte (408)")
    timeouts.add_argument("--keepalive-timeout", type=float, default=d.keepalive_timeout)
    timeouts.add_argument("--send-timeout", type=float, default=d.send_timeout,
                          help="longest stall of a response's progress")
    timeouts.add_argument("--shutdown-grace", type=float, default=d.shutdown_grace,
                          help="time given to responses in flight at SIGINT/SIGTERM")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max-head", type=int, default=d.max_head, help="request head bytes (431)")
    limits.add_argument("--max-request-line", type=int, default=d.max_request_line, help="(414)")
    limits.add_argument("--max-headers", type=int, default=d.max_headers, help="header count (431)")
    limits.add_argument("--max-body", type=int, default=d.max_body,
                        help="request body bytes read and discarded (413)")
    limits.add_argument("--max-keepalive-requests", type=int, default=d.max_keepalive_requests)
    cache = p.add_argument_group("cache")
    cache.add_argument("--cache-ttl", type=float, default=d.cache_ttl,
                       help="seconds a cached file is served before it is checked again")
    cache.add_argument("--cache-max-bytes", type=int, default=d.cache_max_bytes)
    cache.add_argument("--cache-max-entry", type=int, default=d.cache_max_entry,
                       help="largest file kept in memory; larger ones stream from disk")
    p.add_argument("--debug", action="store_true", default=None,
                   help="log slow loop callbacks and connection errors")
    return p
