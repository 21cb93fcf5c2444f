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


_MAY_BE_ZERO = frozenset({"cache_max_open", "readahead"})  # 0 turns the feature off


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
    workers: int = 1  # processes, each with its own loop and pool (SO_REUSEPORT)
    reuse_port: bool = False  # set for the workers of --workers, not a user option
    max_pending_jobs: int = 1024
    recv_size: int = 64 * KIB
    max_head: int = 16 * KIB
    max_request_line: int = 8 * KIB
    max_headers: int = 100
    max_header_size: int = 8 * KIB  # one header field line (431)
    max_body: int = 1 * MIB
    header_timeout: float = 10.0
    body_timeout: float = 30.0  # the rest of a request body once its head was answered
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
    # Files over cache_max_entry stay open instead (nginx's open_file_cache): sent with
    # sendfile from a dup of the cached fd, with no pool hop, open or stat per request.
    cache_max_open: int = 256
    cache_control: str = "max-age=600"  # modest: a changed asset shows within 10 minutes
    cache_control_html: str = "no-cache"  # pages revalidate every time (ETag makes it cheap)
    listing: bool = False
    follow_symlinks: bool = False  # True: serve symlinks even when they lead out of the root
    max_ranges: int = 100  # more ranges in one request are ignored: 200 with the whole file
    sendfile_chunk: int = 1 * MIB
    # How far ahead of a download the pool asks the kernel to read the file: sendfile on
    # the loop then finds the pages of a cold file already (or nearly) in the page cache.
    readahead: int = 4 * MIB
    # Caps each socket's kernel send queue (Linux doubles it): 1,000 slow readers would
    # otherwise pin gigabytes of TCP memory and stall everyone (measured: 2.1 GiB).
    send_buffer: int = 256 * KIB
    # ...but a reader that keeps draining it earns a bigger one (fewer wakeups and system
    # calls per byte, as kernel autotuning would give): see Connection._write_file.
    send_buffer_max: int = 4 * MIB
    # What users ask for (each off by default):
    spa: bool = False  # unknown extensionless paths answer 200 with /index.html
    headers: tuple[str, ...] = ()  # extra response header lines, "Name: value"
    cors: str = ""  # Access-Control-Allow-Origin value ("*" for --cors alone)
    no_cache: bool = False  # Cache-Control: no-store everywhere (development)
    mime_types: tuple[str, ...] = ()  # ".ext=type/subtype" overrides of the built-in table
    log_format: str = "combined"  # combined, common or json
    verbose: bool = False  # a coloured line per request on a terminal's stderr
    status_path: str = ""  # e.g. /_status: counters as HTML and JSON (off when empty)
    status_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # who may read it (CIDR)
    pidfile: str | None = None
    qr: bool = False  # print a QR code of the LAN URL in the banner
    debug: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, not {self.port}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or f.name == "port":
                continue
            # `not value > 0` rather than `value <= 0`: NaN (`--header-timeout nan`) compares
            # false both ways and would otherwise reach the timer heap, whose order it breaks.
            if f.name in _MAY_BE_ZERO and value == 0:
                continue
            if isinstance(value, (int, float)) and not value > 0:
                option = "--" + f.name.replace("_", "-")
                raise ConfigError(f"{option} must be positive, not {value}")
        for name in ("cache_control", "cache_control_html"):
            value = getattr(self, name)
            if not value or any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
                option = "--" + name.replace("_", "-")
                raise ConfigError(f"{option} must be printable ASCII, not {value!r}")
        if self.max_request_line > self.max_head:
            raise ConfigError("--max-request-line must not exceed --max-head")

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> Config:
        """Parse a command line; a bad one raises SystemExit(2) after one line on stderr."""
        args = _build_parser().parse_args(argv)
        values = {k: v for k, v in vars(args).items() if v is not None}
        if values.pop("no_log", False):
            values["access_log"] = None
        for name in ("headers", "mime_types", "status_allow"):
            if name in values:
                values[name] = tuple(values[name])
        try:
            return cls(**values)
        except ConfigError as err:
            _fail(str(err))


def _fail(message: str) -> NoReturn:
    print(f"evserver: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _workers(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count: {text!r} (a number or 'auto')") from None


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
    where.add_argument("--root", dest="docroot", metavar="DIR", default=default_docroot(),
                       help="document root")
    log = where.add_mutually_exclusive_group()
    log.add_argument("--log", dest="access_log", metavar="FILE", default=d.access_log,
                     help="access log file, '-' for standard output")
    log.add_argument("--no-log", action="store_true", help="write no access log")
    work = p.add_argument_group("work")
    work.add_argument("--threads", type=int, metavar="N", default=d.threads,
                      help="file-reading pool size")
    work.add_argument("--workers", type=_workers, metavar="N|auto", default=d.workers,
                      help="server processes sharing the port ('auto': one per CPU)")
    work.add_argument("--max-connections", type=int, metavar="N", default=d.max_connections,
                      help="open connections before accepting pauses")
    work.add_argument("--max-pending-jobs", type=int, metavar="N", default=d.max_pending_jobs,
                      help="queued file reads before answering 503")
    work.add_argument("--send-buffer", type=int, metavar="BYTES", default=d.send_buffer,
                      help="kernel send buffer per connection (bounds TCP memory)")
    work.add_argument("--send-buffer-max", type=int, metavar="BYTES",
                      default=d.send_buffer_max,
                      help="send buffer a client that reads fast grows to (big downloads)")
    timeouts = p.add_argument_group("timeouts (seconds)")
    for name, help_text in (("header-timeout", "whole request head, from its first byte (408)"),
                            ("body-timeout", "rest of a request body after its head (408)"),
                            ("keepalive-timeout", "idle time between requests"),
                            ("send-timeout", "longest stall of a response's progress"),
                            ("shutdown-grace", "time for responses in flight at SIGINT/SIGTERM")):
        timeouts.add_argument("--" + name, type=float, metavar="S", help=help_text,
                              default=getattr(d, name.replace("-", "_")))
    limits = p.add_argument_group("limits")
    for name, help_text in (("max-head", "request head bytes (431)"),
                            ("max-request-line", "request line bytes (414)"),
                            ("max-headers", "header fields per request (431)"),
                            ("max-header-size", "bytes of one header field (431)"),
                            ("max-body", "request body bytes read and discarded (413)"),
                            ("max-keepalive-requests", "requests per connection")):
        limits.add_argument("--" + name, type=int, metavar="N", help=help_text,
                            default=getattr(d, name.replace("-", "_")))
    cache = p.add_argument_group("cache")
    cache.add_argument("--cache-ttl", type=float, metavar="S", default=d.cache_ttl,
                       help="seconds a cached file is served before it is checked again")
    cache.add_argument("--cache-max-bytes", type=int, metavar="N", default=d.cache_max_bytes,
                       help="memory for cached files")
    cache.add_argument("--cache-max-entry", type=int, metavar="N", default=d.cache_max_entry,
                       help="largest file kept in memory; larger ones stream from disk")
    cache.add_argument("--readahead", type=int, metavar="BYTES", default=d.readahead,
                       help="read a download this far ahead in the pool (0: off)")
    cache.add_argument("--cache-max-open", type=int, metavar="N", default=d.cache_max_open,
                       help="larger files kept open for sendfile (0: open per request)")
    http = p.add_argument_group("responses")
    http.add_argument("--cache-control", metavar="VALUE", default=d.cache_control,
                      help="Cache-Control of files other than HTML")
    http.add_argument("--cache-control-html", metavar="VALUE", default=d.cache_control_html,
                      help="Cache-Control of HTML files")
    http.add_argument("--listing", action="store_true",
                      help="list directories that have no index.html")
    http.add_argument("--follow-symlinks", action="store_true",
                      help="serve symlinks that lead outside the root (refused by default)")
    http.add_argument("--max-ranges", type=int, metavar="N", default=d.max_ranges,
                      help="ranges honoured in one request (more: 200 with the whole file)")
    http.add_argument("--spa", action="store_true",
                      help="answer unknown paths without an extension with /index.html (200)")
    http.add_argument("--header", dest="headers", metavar="'NAME: VALUE'", action="append",
                      type=_header, help="add a header to every response (repeatable)")
    http.add_argument("--cors", metavar="ORIGIN", nargs="?", const="*", default=d.cors,
                      help="allow cross-origin requests from ORIGIN ('*' without a value)")
    http.add_argument("--no-cache", action="store_true",
                      help="Cache-Control: no-store on everything (development)")
    http.add_argument("--mime-type", dest="mime_types", metavar=".EXT=TYPE", action="append",
                      type=_mime_type, help="content type of an extension (repeatable)")
    out = p.add_argument_group("logs and status")
    out.add_argument("--log-format", choices=("combined", "common", "json"),
                     default=d.log_format, help="access log line format")
    out.add_argument("--verbose", action="store_true",
                     help="print each request on a terminal's stderr, coloured by status")
    out.add_argument("--status-path", metavar="PATH", default=d.status_path,
                     help="serve counters at PATH (HTML, or JSON with ?json); off if empty")
    out.add_argument("--status-allow", metavar="CIDR", action="append",
                     help="clients that may read the status page (default: loopback only)")
    out.add_argument("--pidfile", metavar="FILE", help="write the process id to FILE")
    out.add_argument("--qr", action="store_true", help="show a QR code of the LAN URL")
    p.add_argument("--debug", action="store_true", help="log slow callbacks and connection errors")
    return p


def _header(text: str) -> str:
    name, colon, value = text.partition(":")
    value = value.strip()
    if (not colon or not name or any(c not in _TCHARS for c in name)
            or any(ord(c) < 0x20 or ord(c) > 0x7E for c in value)):
        raise argparse.ArgumentTypeError(f"not a header line 'Name: value': {text!r}")
    return f"{name}: {value}"


def _mime_type(text: str) -> str:
    ext, equals, ctype = text.partition("=")
    if not equals or not ext.startswith(".") or len(ext) < 2 or "/" not in ctype:
        raise argparse.ArgumentTypeError(f"not '.ext=type/subtype': {text!r}")
    return f"{ext.lower()}={ctype.strip()}"


_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
