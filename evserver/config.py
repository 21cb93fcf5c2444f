"""Every tunable of evserver in one frozen dataclass: the table of options.

Owns: `Config` (each field declared once, with everything about it), `OPTIONS`, the checks of
a field against others (`relation`) and against the disk (`environment`),
`Config.check_environment()`, `ConfigError`, `default_docroot()`, `KIB` and `MIB`. Imports
`options` (how a field is declared and its values checked) and `auth` (the auth file is
parsed exactly as the server will).

A user option is `port: int = option(8080, Port(), "-p", "--port", group="where", help=...)`:
its kind converts a flag's text or a TOML value and checks any value (types, ranges, formats),
a `relation` checks it against other fields, an `environment` check looks at the disk. The
command line, the TOML reader and writer, `--help` / `--help-all` (cmdline.py) and
docs/options.md (evserver/tools/optionsdoc.py) are all derived from it. Fields no user sets
are `fixed(default, kind)`: checked the same way.

Values reach `Config` from three places (defaults, a TOML file, flags: later ones win) and
are all checked by `Config.__post_init__`, so a value is valid however it arrives.
`check_environment()` adds what only the disk can tell (the root is a folder, the TLS files
load, the auth file parses); `--check-config` and a real start both run it before binding.
"""
from __future__ import annotations

import importlib.util
import os
import re
import ssl
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .auth import Credentials
from .codings import AUTO, CODINGS, coding_list, installed
from .options import (
    BadValue,
    Choice,
    Count,
    Each,
    FilePath,
    Kind,
    Logins,
    MimeTypes,
    Option,
    Port,
    Rule,
    Seconds,
    Switch,
    Text,
    Unset,
    Workers,
    fixed,
    header_line,
    header_value,
    media_range,
    network,
    option,
    origin,
    path_prefix,
    realm,
    url_path,
)

KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    """A bad option value; the message names the option and is shown to the user as is.

    `field` and `problem` (the message without the option's name) let `cmdline.parse` report a
    value that came from a configuration file under the file's key instead of the flag."""

    def __init__(self, message: str, field: str = "", problem: str = "", other: str = ""
                 ) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem or message
        self.other = other  # the other field of a conflict between two


def _invalid(field: str, problem: str, other: str = "") -> ConfigError:
    return ConfigError(f"{_flag(field)} {problem}", field, problem, other)


def default_docroot() -> str:
    """`www/` next to the package's checkout, else the current directory's `www/`, else `.`."""
    beside_package = Path(__file__).resolve().parent.parent / "www"
    for candidate in (beside_package, Path.cwd() / "www"):
        if candidate.is_dir():
            return str(candidate)
    return "."


# --- relations (checked after every field's kind) and environment checks (the disk) -----------
# Each is `rule(cfg, name)`, declared on the option it belongs to; it raises ConfigError.
# `cfg` is typed `object` (options.py, where `Rule` is, cannot know Config): a rule that reads
# a named field narrows it first.


def _not_above(other: str) -> Rule:
    def rule(cfg: object, name: str) -> None:
        limit = getattr(cfg, other)
        if getattr(cfg, name) > limit:
            raise _invalid(name, f"must not exceed {_flag(other)} ({limit})", other=other)
    return rule


def _differs_from(*others: str) -> Rule:
    def rule(cfg: object, name: str) -> None:
        value = getattr(cfg, name)
        for other in others:
            if value and value == getattr(cfg, other):
                raise _invalid(name, f"must differ from {_flag(other)}", other=other)
    return rule


def _excludes(other: str) -> Rule:
    def rule(cfg: object, name: str) -> None:
        if getattr(cfg, name) and getattr(cfg, other) is not None:
            raise _invalid(name, f"and {_flag(other)} exclude each other", other=other)
    return rule


def _paired_with(other: str) -> Rule:
    def rule(cfg: object, name: str) -> None:
        if (getattr(cfg, name) is None) != (getattr(cfg, other) is None):
            missing = name if getattr(cfg, name) is None else other
            raise _invalid(missing, f"is needed too: give {_flag(name)} and {_flag(other)} "
                                    "together")
    return rule


def _needs_certificate(cfg: object, name: str) -> None:
    assert isinstance(cfg, Config)
    if getattr(cfg, name) is not None and cfg.tls_cert is None and not cfg.tls_self_signed:
        raise _invalid(name, f"needs {_flag('tls_cert')} and {_flag('tls_key')}")


def _needs_tls_port(cfg: object, name: str) -> None:
    assert isinstance(cfg, Config)
    if getattr(cfg, name) and cfg.tls_port is None:
        raise _invalid(name, f"needs {_flag('tls_port')} (plain HTTP then redirects to it)")


def _is_folder(cfg: object, name: str) -> None:
    path = getattr(cfg, name)
    if not os.path.isdir(path):
        raise _invalid(name, f"{path!r} is not a directory")


def _writable(cfg: object, name: str) -> None:
    """The file may not exist yet (the start makes it), but its folder must, and the file
    (or, for a new one, the folder) must be writable. Nothing is opened or made."""
    path = getattr(cfg, name)
    if path is None or path == "-":
        return
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise _invalid(name, f"{path!r} is in a folder that does not exist")
    if os.path.isdir(path):
        raise _invalid(name, f"{path!r} is a directory")
    if not os.access(path if os.path.exists(path) else os.path.dirname(os.path.abspath(path)),
                     os.W_OK):
        raise _invalid(name, f"{path!r} cannot be written: Permission denied")


def _readable(cfg: object, name: str) -> None:
    path = getattr(cfg, name)
    if path is None:
        return
    try:
        if not os.path.isfile(path):
            os.stat(path)  # the reason: missing, or not searchable
            raise _invalid(name, f"{path!r} is not a file")
        with open(path, "rb"):
            pass
    except OSError as err:
        raise _invalid(name, f"{path!r} cannot be read: {err.strerror or err}") from None


def _users_file(cfg: object, name: str) -> None:
    """Parsed by `auth.Credentials`, with the --auth users, as the server will."""
    assert isinstance(cfg, Config)
    _readable(cfg, name)
    path = getattr(cfg, name)
    if path is None:
        return
    try:
        Credentials(cfg.auth, path)
    except (ValueError, OSError) as err:
        message = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        where = f"{path}, "  # Credentials says "FILE, line N: ..."
        problem = (f"{path!r}, {message.removeprefix(where)}" if message.startswith(where)
                   else f"{path!r}: {message}")
        raise _invalid(name, problem) from None


def _certificate_loads(cfg: object, name: str) -> None:
    """Both files readable, then loaded as server.py's `_tls_context` will load them."""
    assert isinstance(cfg, Config)
    _readable(cfg, name)
    if cfg.tls_cert is None or cfg.tls_key is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cfg.tls_cert,
                                                                            cfg.tls_key)
    except ssl.SSLError as err:
        reason = err.reason or re.sub(r" \(_ssl\.c:\d+\)$", "", str(err))
        raise _invalid("tls_cert", f"{cfg.tls_cert!r} and {_flag('tls_key')} {cfg.tls_key!r} "
                                   f"cannot be loaded: {reason}", other="tls_key") from None
    except OSError as err:
        raise _invalid(name, f"cannot be loaded: {err.strerror or err}") from None


def _coding_list(text: str) -> str:
    try:
        return coding_list(text)
    except ValueError as err:
        raise BadValue(str(err)) from None


def _codings_installed(cfg: object, name: str) -> None:
    """A coding named in --compress-encodings must have its package ('auto' takes what
    is there). Looked for, not imported."""
    spec = getattr(cfg, name)
    if spec == AUTO or not getattr(cfg, "compress", True):
        return
    for item in spec.split(","):
        coding = item.partition(":")[0]
        if not installed(coding):
            package = CODINGS[coding].package
            raise _invalid(name, f"{coding} needs the optional {package!r} package "
                                 f"(python3 -m pip install {package})")


def _cryptography_installed(cfg: object, name: str) -> None:
    """Looked for, not imported: evserver stays standard-library only."""
    if not getattr(cfg, name):
        return
    try:
        found = importlib.util.find_spec("cryptography") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise _invalid(name, "needs the optional 'cryptography' package "
                             "(python3 -m pip install cryptography)")


# --- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Config:
    """Limits, timeouts and paths; checked once in `__post_init__`, then shared read-only."""

    host: str = option(
        "0.0.0.0", Text(), "-b", "--host", group="where", metavar="ADDR", everyday=True,
        help="address to listen on (:: for IPv6 and IPv4)")
    port: int = option(
        8080, Port(), "-p", "--port", group="where", everyday=True,
        help="TCP port (0 picks a free one)")
    docroot: str = option(
        "www", FilePath(folder=True), "-d", "--root", group="where", metavar="DIR",
        everyday=True, path=True, environment=_is_folder, dynamic_default=default_docroot,
        shown_default="www/ beside the evserver package, else ./www, else .",
        help="document root: the folder to serve")
    access_log: str | None = option(  # "-" is stdout, None disables it
        "access.log", Unset(FilePath()), "--log", group="where", metavar="FILE",
        everyday=True, path=True, environment=_writable,
        off=("--no-log", "write no access log"),
        help="access log file, '-' for standard output")
    backlog: int = fixed(1024, Count())
    max_connections: int = option(
        10000, Count(), "--max-connections", group="work", metavar="N",
        help="open connections before accepting pauses")
    threads: int = option(
        min(32, (os.cpu_count() or 1) + 4), Count(), "--threads", group="work", metavar="N",
        shown_default="min(32, CPUs + 4)", help="file-reading pool size")
    workers: int = option(  # processes, each with its own loop and pool (SO_REUSEPORT)
        1, Workers(), "--workers", group="work", metavar="N|auto",
        help="server processes sharing the port ('auto': one per CPU)")
    reuse_port: bool = fixed(False, Switch())  # set for the workers of --workers
    max_pending_jobs: int = option(
        1024, Count(), "--max-pending-jobs", group="work", metavar="N",
        help="queued file reads before answering 503")
    recv_size: int = fixed(64 * KIB, Count())
    max_head: int = option(
        16 * KIB, Count(), "--max-head", group="limits", metavar="N",
        help="request head bytes (431)")
    max_request_line: int = option(
        8 * KIB, Count(), "--max-request-line", group="limits", metavar="N",
        relation=_not_above("max_head"), help="request line bytes (414)")
    max_headers: int = option(
        100, Count(), "--max-headers", group="limits", metavar="N",
        help="header fields per request (431)")
    max_header_size: int = option(  # one header field line (431)
        8 * KIB, Count(), "--max-header-size", group="limits", metavar="N",
        help="bytes of one header field (431)")
    max_body: int = option(
        1 * MIB, Count(), "--max-body", group="limits", metavar="N",
        help="request body bytes read and discarded (413)")
    header_timeout: float = option(
        10.0, Seconds(), "--header-timeout", group="timeouts", metavar="S",
        help="whole request head, from its first byte (408)")
    body_timeout: float = option(  # the rest of a request body once its head was answered
        30.0, Seconds(), "--body-timeout", group="timeouts", metavar="S",
        help="rest of a request body after its head (408)")
    keepalive_timeout: float = option(
        15.0, Seconds(), "--keepalive-timeout", group="timeouts", metavar="S",
        help="idle time between requests")
    send_timeout: float = option(
        30.0, Seconds(), "--send-timeout", group="timeouts", metavar="S",
        help="longest stall of a response's progress")
    linger_timeout: float = fixed(2.0, Seconds())
    shutdown_grace: float = option(
        10.0, Seconds(), "--shutdown-grace", group="timeouts", metavar="S",
        help="time for responses in flight at SIGINT/SIGTERM")
    max_keepalive_requests: int = option(
        1000, Count(), "--max-keepalive-requests", group="limits", metavar="N",
        help="requests per connection")
    accept_batch: int = fixed(64, Count())
    accept_retry_delay: float = fixed(1.0, Seconds())
    cache_max_entry: int = option(
        256 * KIB, Count(), "--cache-max-entry", group="cache", metavar="N",
        help="largest file kept in memory; larger ones stream from disk")
    cache_max_bytes: int = option(
        64 * MIB, Count(), "--cache-max-bytes", group="cache", metavar="N",
        help="memory for cached files")
    cache_max_entries: int = fixed(4096, Count())
    cache_ttl: float = option(
        1.0, Seconds(), "--cache-ttl", group="cache", metavar="S",
        help="seconds a cached file is served before it is checked again")
    # Files over cache_max_entry stay open instead (nginx's open_file_cache): sent with
    # sendfile from a dup of the cached fd, with no pool hop, open or stat per request.
    cache_max_open: int = option(
        256, Count(zero_off=True), "--cache-max-open", group="cache", metavar="N",
        help="larger files kept open for sendfile (0: open per request)")
    cache_control: str = option(  # modest: a changed asset shows within 10 minutes
        "max-age=600", Text(header_value), "--cache-control", group="responses",
        metavar="VALUE", help="Cache-Control of files other than HTML")
    cache_control_html: str = option(  # pages revalidate every time (ETag makes it cheap)
        "no-cache", Text(header_value), "--cache-control-html", group="responses",
        metavar="VALUE", help="Cache-Control of HTML files")
    listing: bool = option(
        False, Switch(), "--listing", group="responses", everyday=True,
        help="list directories that have no index.html")
    follow_symlinks: bool = option(  # True: serve symlinks even when they lead out of the root
        False, Switch(), "--follow-symlinks", group="responses",
        help="serve symlinks that lead outside the root (refused by default)")
    max_ranges: int = option(  # more ranges in one request are ignored: 200 with the whole file
        100, Count(), "--max-ranges", group="responses", metavar="N",
        help="ranges honoured in one request (more: 200 with the whole file)")
    sendfile_chunk: int = fixed(1 * MIB, Count())
    # How far ahead of a download the pool asks the kernel to read the file: sendfile on
    # the loop then finds the pages of a cold file already (or nearly) in the page cache.
    readahead: int = option(
        4 * MIB, Count(zero_off=True), "--readahead", group="cache", metavar="BYTES",
        help="read a download this far ahead in the pool (0: off)")
    # Caps each socket's kernel send queue (Linux doubles it): 1,000 slow readers would
    # otherwise pin gigabytes of TCP memory and stall everyone (measured: 2.1 GiB).
    send_buffer: int = option(
        256 * KIB, Count(), "--send-buffer", group="work", metavar="BYTES",
        help="kernel send buffer per connection (bounds TCP memory)")
    # ...but a reader that keeps draining it earns a bigger one (fewer wakeups and system
    # calls per byte, as kernel autotuning would give): see Connection._write_file.
    send_buffer_max: int = option(
        4 * MIB, Count(), "--send-buffer-max", group="work", metavar="BYTES",
        help="send buffer a client that reads fast grows to (big downloads)")
    # What users ask for (each off by default):
    spa: bool = option(  # unknown extensionless paths answer 200 with /index.html
        False, Switch(), "--spa", group="responses", everyday=True,
        help="answer unknown extensionless paths with /index.html")
    headers: tuple[str, ...] = option(  # extra response header lines, "Name: value"
        (), Each(header_line), "--header", group="responses", metavar="'NAME: VALUE'",
        help="add a header to every response (repeatable)")
    cors: str = option(  # Access-Control-Allow-Origin value ("*" for --cors alone)
        "", Text(origin), "--cors", group="responses", metavar="ORIGIN", const="*",
        everyday=True, help="allow cross-origin requests from ORIGIN (alone: '*')")
    # Development: pages reload (stylesheets swap in place) when a file under the root
    # changes. Off by default: without it, no response changes by a byte.
    live_reload: bool = option(
        False, Switch(), "--live-reload", group="responses", everyday=True,
        help="reload open pages when a file changes (development)",
        more="Each HTML page gets a small script before </body> that listens at "
             "/.evserver/live (server-sent events); a changed stylesheet is swapped in "
             "place, anything else reloads the page. Files are then served with "
             "Cache-Control: no-cache, so a reload fetches what changed. Behind a proxy, "
             "let /.evserver/live through unbuffered (nginx: proxy_buffering off).")
    live_reload_path: str = fixed("/.evserver/live", Text(url_path))  # a dot path: no file
    live_reload_max: int = fixed(4096, Count())  # open pages listening at once (503 after)
    no_cache: bool = option(  # Cache-Control: no-store everywhere (development)
        False, Switch(), "--no-cache", group="responses",
        help="Cache-Control: no-store on everything (development)")
    # On by default, as Caddy, serve and miniserve are: browsers always ask for it, text
    # shrinks three to ten times, and each file is encoded once (then served from memory).
    # Static files carry no secret beside attacker-chosen text, so BREACH does not apply.
    compress: bool = option(
        True, Switch(), "--compress", group="compression",
        off=("--no-compress", "never encode responses here (precompressed files still go)"),
        help="encode text responses for clients that accept it (gzip; br and zstd with "
             "their optional packages)")
    compress_encodings: str = option(
        AUTO, Text(_coding_list), "--compress-encodings", group="compression",
        metavar="CODING[:LEVEL],...", environment=_codings_installed,
        help="codings to produce, with levels (gzip 1-9, br 0-11, zstd 1-19); 'auto': "
             "every one installed at its default level (br:5, zstd:3, gzip:6)")
    compress_min_size: int = option(  # below about a packet, encoding saves no round trip
        1 * KIB, Count(), "--compress-min-size", group="compression", metavar="BYTES",
        help="smallest file worth encoding")
    compress_cache_bytes: int = option(
        32 * MIB, Count(), "--compress-cache-bytes", group="compression", metavar="BYTES",
        help="memory for encoded files; a file over a quarter of it is encoded as it is "
             "sent, each time")
    compress_types: tuple[str, ...] = option(
        (), Each(media_range), "--compress-type", group="compression", metavar="TYPE",
        help="also encode this type, or type/* (repeatable; text, JSON, XML, SVG, JavaScript, "
             "wasm and uncompressed fonts are built in)")
    mime_types: tuple[str, ...] = option(  # ".ext=type/subtype" overrides of the built-in table
        (), MimeTypes(), "--mime-type", group="responses", metavar=".EXT=TYPE",
        alias="mime-types", help="content type of an extension (repeatable)")
    log_format: str = option(
        "combined", Choice("combined", "common", "json"), "--log-format", group="logs",
        metavar="combined|common|json", help="access log line format")
    verbose: bool = option(  # a coloured line per request on a terminal's stderr
        False, Switch(), "--verbose", group="logs",
        help="print each request on a terminal's stderr, coloured by status")
    status_path: str = option(  # e.g. /_status: counters as HTML and JSON (off when empty)
        "", Text(url_path), "--status-path", group="logs", metavar="PATH",
        help="serve the metrics at PATH as a page with live charts (JSON with "
             "?format=json); off if empty")
    metrics_path: str = option(  # e.g. /metrics: the Prometheus text exposition
        "", Text(url_path), "--metrics-path", group="logs", metavar="PATH",
        relation=_differs_from("status_path", "health_path"),
        help="serve the metrics at PATH for Prometheus to scrape (to {status_allow} "
             "addresses); off if empty")
    health_path: str = option(  # e.g. /healthz: 200 while serving, 503 while draining
        "", Text(url_path), "--health-path", group="logs", metavar="PATH",
        relation=_differs_from("status_path"),
        help="answer PATH with 200 while serving, 503 while stopping (load balancer health "
             "checks); off if empty")
    allow: tuple[str, ...] = option(  # client networks that may be served (CIDR; empty: all)
        (), Each(network), "--allow", group="access", metavar="CIDR",
        help="serve only clients in these networks (repeatable; default: all)")
    deny: tuple[str, ...] = option(  # client networks refused with 403 (wins over allow)
        (), Each(network), "--deny", group="access", metavar="CIDR",
        help="refuse clients in these networks with 403 (repeatable; wins)")
    trusted_proxies: tuple[str, ...] = option(  # whose X-Forwarded-For is believed (CIDR)
        (), Each(network), "--trusted-proxy", group="access", metavar="CIDR",
        help="proxies whose X-Forwarded-For is believed: the log and the rules above then "
             "see the client (repeatable)")
    proxy_protocol: bool = option(  # a PROXY v1/v2 preamble from a trusted proxy first
        False, Switch(), "--proxy-protocol", group="access",
        help="expect a PROXY protocol v1/v2 preamble (from {trusted_proxies} addresses only) "
             "before each connection's first request")
    auth: tuple[str, ...] = option(  # USER:PASSWORD pairs for HTTP Basic authentication
        (), Logins(), "--auth", group="access", metavar="USER:PASSWORD", everyday=True,
        help="require this login (repeatable; ps shows it)",
        more="HTTP Basic authentication; prefer {auth_file}, which ps does not show.")
    auth_file: str | None = option(  # lines of user:hash (python3 -m evserver hash-password)
        None, Unset(FilePath()), "--auth-file", group="access", metavar="FILE",
        everyday=True, path=True, environment=_users_file,
        help="logins as 'user:hash' lines (see hash-password)",
        more="Make the hashes with: python3 -m evserver hash-password.")
    auth_paths: tuple[str, ...] = option(  # path prefixes that need a login
        ("/",), Each(path_prefix), "--auth-path", group="access", metavar="PREFIX",
        help="only paths under PREFIX need a login (repeatable)")
    auth_realm: str = option(
        "evserver", Text(realm), "--auth-realm", group="access", metavar="NAME",
        help="the realm browsers show")
    auth_insecure: bool = option(  # allow Basic auth over plain HTTP to non-loopback clients
        False, Switch(), "--auth-insecure", group="access",
        help="allow logins over plain HTTP from other machines (passwords then cross the "
             "LAN readable)")
    tls_cert: str | None = option(  # PEM certificate chain: the port (or --tls-port) is HTTPS
        None, Unset(FilePath()), "--tls-cert", group="https", metavar="FILE", everyday=True,
        path=True, relation=_paired_with("tls_key"), environment=_readable,
        help="PEM certificate chain: HTTPS on {port} or {tls_port}")
    tls_key: str | None = option(  # its PEM private key
        None, Unset(FilePath()), "--tls-key", group="https", metavar="FILE", everyday=True,
        path=True, environment=_certificate_loads, help="the certificate's PEM private key")
    tls_port: int | None = option(  # HTTPS on this port beside plain HTTP on --port
        None, Unset(Port()), "--tls-port", group="https", metavar="PORT",
        relation=_needs_certificate, help="serve HTTPS on PORT and plain HTTP on {port}")
    tls_redirect: bool = option(  # plain HTTP answers 301 to the HTTPS port
        False, Switch(), "--tls-redirect", group="https", relation=_needs_tls_port,
        help="answer plain HTTP with a 301 to the HTTPS port")
    handshake_timeout: float = option(  # a TLS handshake (and a PROXY preamble) must end by then
        10.0, Seconds(), "--handshake-timeout", group="https", metavar="S",
        help="time for a PROXY preamble and a TLS handshake, from the connection")
    login_timeout: float = fixed(10.0, Seconds())  # a password check in the pool (503 after)
    hsts: int = option(  # Strict-Transport-Security max-age over HTTPS (0: not sent)
        0, Count(zero_off=True), "--hsts", group="https", metavar="SECONDS",
        help="send Strict-Transport-Security: max-age=SECONDS over HTTPS (browsers then "
             "refuse plain HTTP to this host for that long)")
    tls_self_signed: bool = option(  # make (and keep) a certificate for this machine
        False, Switch(), "--tls-self-signed", group="https", everyday=True,
        relation=_excludes("tls_cert"), environment=_cryptography_installed,
        help="HTTPS with a certificate made for this machine",
        more="It covers this machine's names and LAN addresses, is kept in "
             "~/.local/state/evserver, needs the optional cryptography package, and its "
             "fingerprint is printed at the start.")
    status_allow: tuple[str, ...] = option(  # who may read it (CIDR)
        ("127.0.0.0/8", "::1/128"), Each(network), "--status-allow", group="logs",
        metavar="CIDR", help="clients that may read the status page (repeatable)")
    pidfile: str | None = option(
        None, Unset(FilePath()), "--pidfile", group="logs", metavar="FILE", path=True,
        environment=_writable, help="write the process id to FILE")
    qr: bool = option(  # print a QR code of the LAN URL in the banner
        False, Switch(), "--qr", group="logs", help="show a QR code of the LAN URL")
    debug: bool = option(
        False, Switch(), "--debug", group="logs",
        help="log slow callbacks and connection errors")

    def __post_init__(self) -> None:
        for name, kind in _KINDS.items():
            value = getattr(self, name)
            try:
                checked = kind.check(value)
            except BadValue as problem:
                raise _invalid(name, str(problem)) from None
            if checked is not value:  # an int for a float, a list for a tuple, normalised text
                object.__setattr__(self, name, checked)
        for opt in OPTIONS:
            if opt.relation is not None:
                opt.relation(self, opt.name)

    def check_environment(self) -> None:
        """What a start would find wrong on disk, found without binding, writing or serving:
        the root is a folder, the log and the pidfile have one to go in, the TLS files load,
        the auth file parses, --tls-self-signed can make its certificate. Run by
        `--check-config` and by a real start alike; raises ConfigError."""
        for opt in OPTIONS:
            if opt.environment is not None:
                opt.environment(self, opt.name)


# Derived from the table once Config exists.
_KINDS: dict[str, Kind] = {}
for _field in fields(Config):
    if "kind" not in _field.metadata:
        raise TypeError(f"Config.{_field.name}: declare it with option() or fixed()")
    _KINDS[_field.name] = _field.metadata["kind"]
OPTIONS: tuple[Option, ...] = tuple(replace(f.metadata["option"], name=f.name)
                                    for f in fields(Config) if "option" in f.metadata)
_LONG_FLAGS = {opt.name: opt.long for opt in OPTIONS}


def _flag(field: str) -> str:
    """How messages name a field: its long flag (a fixed field: as a flag would be spelt)."""
    return _LONG_FLAGS.get(field) or "--" + field.replace("_", "-")
