"""Every tunable of evserver in one frozen dataclass, and the command line and TOML file
that fill it.

Owns: `Config`, `ConfigError`, `Config.from_argv()` (flags, `--config FILE`,
`--check-config`), `Config.to_toml()` and `load_toml()`. Imports nothing from evserver.

Values reach `Config` from three places (defaults, a TOML file, flags: later ones win) and
are all checked by `Config.__post_init__`, so a value is valid however it arrives.
"""
from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    """A bad option value; the message names the option and is shown to the user as is.

    `field` and `problem` (the message without the option's name) let `from_argv` report a
    value that came from a configuration file under the file's key instead of the flag."""

    def __init__(self, message: str, field: str = "", problem: str = "", other: str = ""
                 ) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem or message
        self.other = other  # the other field of a conflict between two


def _invalid(field: str, problem: str, other: str = "") -> ConfigError:
    return ConfigError(f"{_flag(field)} {problem}", field, problem, other)


# Fields whose flag is not simply the field's name with dashes.
_FLAG_OF = {"docroot": "--root", "access_log": "--log", "headers": "--header",
            "mime_types": "--mime-type", "trusted_proxies": "--trusted-proxy",
            "auth_paths": "--auth-path"}


def _flag(field: str) -> str:
    return _FLAG_OF.get(field, "--" + field.replace("_", "-"))


def default_docroot() -> str:
    """`www/` next to the package's checkout, else the current directory's `www/`, else `.`."""
    beside_package = Path(__file__).resolve().parent.parent / "www"
    for candidate in (beside_package, Path.cwd() / "www"):
        if candidate.is_dir():
            return str(candidate)
    return "."


_MAY_BE_ZERO = frozenset({"cache_max_open", "readahead", "hsts"})  # 0 turns the feature off


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
    health_path: str = ""  # e.g. /healthz: 200 while serving, 503 while draining
    allow: tuple[str, ...] = ()  # client networks that may be served (CIDR; empty: all)
    deny: tuple[str, ...] = ()  # client networks refused with 403 (wins over allow)
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For is believed (CIDR)
    proxy_protocol: bool = False  # a PROXY v1/v2 preamble from a trusted proxy first
    auth: tuple[str, ...] = ()  # USER:PASSWORD pairs for HTTP Basic authentication
    auth_file: str | None = None  # lines of user:hash (python3 -m evserver hash-password)
    auth_paths: tuple[str, ...] = ("/",)  # path prefixes that need a login
    auth_realm: str = "evserver"
    auth_insecure: bool = False  # allow Basic auth over plain HTTP to non-loopback clients
    tls_cert: str | None = None  # PEM certificate chain: the port (or --tls-port) is HTTPS
    tls_key: str | None = None  # its PEM private key
    tls_port: int | None = None  # HTTPS on this port beside plain HTTP on --port
    tls_redirect: bool = False  # plain HTTP answers 301 to the HTTPS port
    handshake_timeout: float = 10.0  # a TLS handshake (and a PROXY preamble) must end by then
    login_timeout: float = 10.0  # a password check in the pool must end by then (503)
    hsts: int = 0  # Strict-Transport-Security max-age over HTTPS (0: not sent)
    tls_self_signed: bool = False  # make (and keep) a certificate for this machine
    status_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # who may read it (CIDR)
    pidfile: str | None = None
    qr: bool = False  # print a QR code of the LAN URL in the banner
    debug: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            typed = _typed(f.name, value)
            if typed is not value:  # an int for a float, a list for a tuple: stored as declared
                object.__setattr__(self, f.name, typed)
        if not 0 <= self.port <= 65535:
            raise _invalid("port", f"must be between 0 and 65535, not {self.port}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or f.name in ("port", "tls_port"):
                continue
            # `not value > 0` rather than `value <= 0`: NaN (`--header-timeout nan`) compares
            # false both ways and would otherwise reach the timer heap, whose order it breaks.
            if f.name in _MAY_BE_ZERO and value == 0:
                continue
            if isinstance(value, (int, float)) and not value > 0:
                raise _invalid(f.name, f"must be positive, not {value}")
        for name in ("cache_control", "cache_control_html"):
            value = getattr(self, name)
            if not value or not _printable(value):
                raise _invalid(name, f"must be printable ASCII, not {value!r}")
        if self.max_request_line > self.max_head:
            raise _invalid("max_request_line", f"must not exceed --max-head ({self.max_head})",
                           other="max_head")
        for name in ("docroot", "access_log", "pidfile"):
            path = getattr(self, name)
            if path is not None and (not path or "\0" in path or path.endswith("/")
                                     and name != "docroot"):
                raise _invalid(name, f"must be a path, not {path!r}")
        if self.log_format not in _LOG_FORMATS:
            raise _invalid("log_format", f"must be combined, common or json, not "
                                         f"{self.log_format!r}")
        for name in ("status_path", "health_path"):
            path = getattr(self, name)
            if not path:
                continue
            if not path.startswith("/"):
                raise _invalid(name, f"must start with /, not {path!r}")
            if not _URL_PATH.fullmatch(path):
                raise _invalid(name, "must be a path without spaces, control "
                                     f"characters, ? or #, not {path!r}")
        if self.tls_self_signed and self.tls_cert is not None:
            raise _invalid("tls_self_signed", "and --tls-cert exclude each other",
                           other="tls_cert")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise _invalid("tls_cert" if self.tls_cert is None else "tls_key",
                           "is needed too: give --tls-cert and --tls-key together")
        if self.tls_port is not None:
            if self.tls_cert is None and not self.tls_self_signed:
                raise _invalid("tls_port", "needs --tls-cert and --tls-key")
            if not 0 <= self.tls_port <= 65535:
                raise _invalid("tls_port", f"must be between 0 and 65535, not {self.tls_port}")
        if self.tls_redirect and self.tls_port is None:
            raise _invalid("tls_redirect", "needs --tls-port (plain HTTP then redirects to it)")
        for prefix in self.auth_paths:
            if not prefix.startswith("/") or not _URL_PATH.fullmatch(prefix):
                raise _invalid("auth_paths", f"must be a path starting with /, not {prefix!r}")
        if not self.auth_realm or not _printable(self.auth_realm) or '"' in self.auth_realm:
            raise _invalid("auth_realm", "must be printable ASCII without quotes, not "
                                         f"{self.auth_realm!r}")
        if self.health_path and self.health_path == self.status_path:
            raise _invalid("health_path", "must differ from --status-path",
                           other="status_path")
        # Stored normalised: what other modules read is always in the one canonical form.
        for name in ("status_allow", "allow", "deny", "trusted_proxies"):
            object.__setattr__(self, name, tuple(_network(n, name) for n in getattr(self, name)))
        object.__setattr__(self, "headers", tuple(_header_line(h) for h in self.headers))
        object.__setattr__(self, "mime_types", tuple(_mime_line(m) for m in self.mime_types))
        object.__setattr__(self, "cors", _origin(self.cors))

    def check_paths(self) -> None:
        """What a start would find wrong on disk, found without binding or opening anything:
        the root is a folder, the log and the pidfile have one to go in."""
        if not os.path.isdir(self.docroot):
            raise _invalid("docroot", f"{self.docroot!r} is not a directory")
        for name in ("access_log", "pidfile"):
            path = getattr(self, name)
            if path is not None and path != "-" and not os.path.isdir(
                    os.path.dirname(os.path.abspath(path))):
                raise _invalid(name, f"{path!r} is in a folder that does not exist")

    def to_toml(self) -> str:
        """Every field as a file that `--config` reads back into an equal Config (paths made
        absolute, so the file may live anywhere). Fields with no option are comments."""
        parser = _build_parser()
        lines = ["# evserver configuration: python3 -m evserver --config FILE", ""]
        written: set[str] = set()
        for group in parser._action_groups:
            entries = []
            for action in group._group_actions:
                name = action.dest
                if name not in _KINDS:
                    continue  # --no-log (shown through log), --help, --config...
                written.add(name)
                key = _flag(name)[2:]
                value = getattr(self, name)
                if name in _PATHS and value not in (None, "-"):
                    value = os.path.abspath(value)
                if name == "access_log" and value is None:
                    entries.append("no-log = true")
                elif value is None:
                    entries.append(f"# {key} is not set")
                else:
                    entries.append(f"{key} = {_toml_value(value)}")
            if entries:
                lines += [f"# {group.title}", *entries, ""]
        fixed = [f"#   {f.name} = {_toml_value(getattr(self, f.name))}"
                 for f in fields(self) if f.name not in written]
        lines += ["# not options (fixed in evserver/config.py):", *fixed]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> Config:
        """Parse a command line and the `--config` file it names (flags win over the file,
        the file over the defaults). A bad one raises SystemExit(2) after one line on
        stderr; `--check-config` prints the result as TOML and raises SystemExit(0)."""
        args = vars(_build_parser().parse_args(argv))
        config_file: str | None = args.pop("config", None)
        check: bool = args.pop("check_config", False)
        if args.pop("no_log", False):
            args["access_log"] = None
        keys: dict[str, str] = {}  # field -> its key as written in the file
        values: dict[str, Any] = {}
        if config_file is not None:
            try:
                values, keys = load_toml(config_file)
            except ConfigError as err:
                _fail(str(err))
        values.update(args)
        values.setdefault("docroot", default_docroot())
        try:
            cfg = cls(**values)
            if check:
                cfg.check_paths()
        except ConfigError as err:
            if err.field in keys and err.field not in args:
                _fail(f"{config_file}: {keys[err.field]} {err.problem}")
            if err.field not in args and err.other in keys and err.other not in args:
                _fail(f"{config_file}: {keys[err.other]}: {err}")  # a default vs the file
            _fail(str(err))
        if check:
            sys.stdout.write(cfg.to_toml())
            raise SystemExit(0)
        return cfg


_KINDS: dict[str, str] = {f.name: str(f.type) for f in fields(Config)}
# Relative to a configuration file's folder.
_PATHS = ("docroot", "access_log", "pidfile", "auth_file", "tls_cert", "tls_key")
_LOG_FORMATS = ("combined", "common", "json")
_KIND_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number",
               "str": "a string", "str | None": "a string", "tuple[str, ...]": "a list of strings",
               "int | None": "an integer"}


def _typed(name: str, value: object) -> object:
    """`value` as the field's declared type (int for float, list for tuple), or ConfigError:
    a TOML file can hold any type, and a wrong one must not reach a comparison."""
    kind = _KINDS[name]
    number = isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind in ("int", "int | None"):
        ok = number or value is None and kind != "int"
    elif kind == "float":
        if number:
            try:
                return float(value)  # type: ignore[arg-type]
            except OverflowError:
                ok = False
        else:
            ok = isinstance(value, float)
    elif kind in ("str", "str | None"):
        ok = isinstance(value, str) or value is None and kind != "str"
    elif kind == "tuple[str, ...]":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        ok = False
    else:
        return value  # a kind this table does not know: the checks that follow apply
    if not ok:
        raise _invalid(name, f"must be {_KIND_NAMES[kind]}, not {value!r}")
    return value


def _printable(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_URL_PATH = re.compile(r"/[!-\"$-/0-9:;<=>@-~]*", re.ASCII)  # printable, no space, ? or #
# Headers evserver writes itself: a second copy would contradict the framing or the type.
_OWNED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date",
                            "server", "content-type"})
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
                     r"|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII)


def _network(text: str, name: str = "status_allow") -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise _invalid(name, "must be an address or a network like 10.0.0.0/8, "
                             f"not {text!r}") from None


def _header_line(text: str) -> str:
    name, colon, value = text.partition(":")
    value = value.strip(" \t")
    if not colon or not name or not set(name) <= _TCHARS or not _printable(value):
        raise _invalid("headers", "must be 'Name: value' (a token, then printable ASCII), "
                                  f"not {text!r}")
    if name.lower() in _OWNED_HEADERS:
        raise _invalid("headers", f"cannot set {name}: evserver writes it itself")
    return f"{name}: {value}"


def _mime_line(text: str) -> str:
    ext, equals, ctype = text.partition("=")
    ctype = ctype.strip()
    essence, _, params = ctype.partition(";")
    kind, slash, subtype = essence.strip().partition("/")
    if (not equals or not ext.startswith(".") or len(ext) < 2 or not set(ext) <= _TCHARS
            or not slash or not kind or not subtype or not set(kind + subtype) <= _TCHARS
            or not _printable(params)):
        raise _invalid("mime_types", f"must be '.ext=type/subtype', not {text!r}")
    return f"{ext.lower()}={ctype}"


def _origin(text: str) -> str:
    if text in ("", "*"):
        return text
    text = text.lower()  # browsers compare it with the serialised Origin, which is lower case
    match = _ORIGIN.fullmatch(text)
    if (match is None or match["port"] is not None and not 0 < int(match["port"]) <= 65535
            or match["ip6"] is not None and not _is_ipv6(match["ip6"])):
        raise _invalid("cors", f"must be '*' or an origin like https://example.com[:port], "
                               f"not {text!r}")
    return text


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # a float's repr always has '.', 'e', inf or nan: TOML reads a float
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c < " " or c == "\x7f":  # TOML allows no raw control characters in a string
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def load_toml(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The field values a configuration file sets, and each field's key as written there.

    Keys are the long options without their dashes, spelled with dashes or underscores;
    `[mime-types]` may also be a table of ".ext" = "type/subtype". Paths are resolved from
    the file's folder. Types and values are checked later, by Config, like the flags'."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"cannot read the configuration file {path!r}: "
                          f"{err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None  # the message has the line and column
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    options = _file_keys()
    folder = os.path.dirname(os.path.abspath(path))
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    no_log = False
    for written, value in data.items():
        key = written.replace("_", "-")
        name = options.get(key)
        if name is None:
            raise ConfigError(f"{path}: unknown key {written!r}{_did_you_mean(key, options)}")
        if name in keys or name == "access_log" and no_log:
            first = "no-log" if no_log and name == "access_log" else keys[name]
            raise ConfigError(f"{path}: {written} and {first} set the same option")
        if name == "no_log":
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {written} must be true or false, not {value!r}")
            if value and "access_log" in keys:
                raise ConfigError(f"{path}: {written} and {keys['access_log']} set the "
                                  f"same option")
            if value:
                no_log = True
                values["access_log"], keys["access_log"] = None, written
            continue
        if name == "mime_types" and isinstance(value, dict):
            value = [_mime_entry(path, written, ext, ctype) for ext, ctype in value.items()]
        elif _KINDS[name] == "tuple[str, ...]" and isinstance(value, str):
            value = [value]  # a repeatable option given once
        elif name == "workers" and value == "auto":
            value = os.cpu_count() or 1
        elif name in _PATHS and isinstance(value, str) and value and value != "-":
            value = os.path.join(folder, os.path.expanduser(value))
        values[name], keys[name] = value, written
    return values, keys


def _mime_entry(path: str, table: str, ext: str, ctype: object) -> str:
    if not isinstance(ctype, str):
        raise ConfigError(f"{path}: {table}.\"{ext}\" must be a string, not {ctype!r}")
    return f"{ext}={ctype}"


def _file_keys() -> dict[str, str]:
    """Key (a long option without its dashes) -> the field it sets; `no-log` -> no_log."""
    keys = {"mime-types": "mime_types"}
    for action in _build_parser()._actions:
        if action.dest in _KINDS or action.dest == "no_log":
            for option in action.option_strings:
                if option.startswith("--"):
                    keys[option[2:]] = action.dest
    return keys


_FIELD_ALIASES = {"docroot": "root", "access-log": "log", "headers": "header"}


def _did_you_mean(key: str, options: dict[str, str]) -> str:
    guess = _FIELD_ALIASES.get(key) or next(iter(difflib.get_close_matches(key, options, 1)),
                                             None)
    return f" (did you mean {guess!r}?)" if guess else ""


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


def _shown(value: object) -> str:
    """' (default: X)' for --help, left out for off switches and empty values."""
    if value is None or value is False or value in ("", ()):
        return ""
    if isinstance(value, tuple):
        value = ", ".join(value)
    return f" (default: {value})".replace("%", "%%")  # help strings are %-formatted


def _build_parser() -> argparse.ArgumentParser:
    d = Config()
    # No argparse defaults: what is absent from the parsed namespace was not given, so a
    # configuration file's value (or Config's default) stays. --help shows them via _shown.
    p = _Parser(prog="evserver", description="Serve a folder over HTTP/1.1 from one event loop.",
                argument_default=argparse.SUPPRESS)
    where = p.add_argument_group("where")
    where.add_argument("--host", help="address to listen on (:: for IPv6 and IPv4)"
                       + _shown(d.host))
    where.add_argument("--port", type=int, help="TCP port (0 picks a free one)" + _shown(d.port))
    where.add_argument("--root", dest="docroot", metavar="DIR",
                       help="document root" + _shown(default_docroot()))
    log = where.add_mutually_exclusive_group()
    log.add_argument("--log", dest="access_log", metavar="FILE",
                     help="access log file, '-' for standard output" + _shown(d.access_log))
    log.add_argument("--no-log", action="store_true", help="write no access log")
    work = p.add_argument_group("work")
    work.add_argument("--threads", type=int, metavar="N",
                      help="file-reading pool size" + _shown(d.threads))
    work.add_argument("--workers", type=_workers, metavar="N|auto",
                      help="server processes sharing the port ('auto': one per CPU)"
                      + _shown(d.workers))
    work.add_argument("--max-connections", type=int, metavar="N",
                      help="open connections before accepting pauses"
                      + _shown(d.max_connections))
    work.add_argument("--max-pending-jobs", type=int, metavar="N",
                      help="queued file reads before answering 503" + _shown(d.max_pending_jobs))
    work.add_argument("--send-buffer", type=int, metavar="BYTES",
                      help="kernel send buffer per connection (bounds TCP memory)"
                      + _shown(d.send_buffer))
    work.add_argument("--send-buffer-max", type=int, metavar="BYTES",
                      help="send buffer a client that reads fast grows to (big downloads)"
                      + _shown(d.send_buffer_max))
    timeouts = p.add_argument_group("timeouts (seconds)")
    for name, help_text in (("header-timeout", "whole request head, from its first byte (408)"),
                            ("body-timeout", "rest of a request body after its head (408)"),
                            ("keepalive-timeout", "idle time between requests"),
                            ("send-timeout", "longest stall of a response's progress"),
                            ("shutdown-grace", "time for responses in flight at SIGINT/SIGTERM")):
        timeouts.add_argument("--" + name, type=float, metavar="S",
                              help=help_text + _shown(getattr(d, name.replace("-", "_"))))
    limits = p.add_argument_group("limits")
    for name, help_text in (("max-head", "request head bytes (431)"),
                            ("max-request-line", "request line bytes (414)"),
                            ("max-headers", "header fields per request (431)"),
                            ("max-header-size", "bytes of one header field (431)"),
                            ("max-body", "request body bytes read and discarded (413)"),
                            ("max-keepalive-requests", "requests per connection")):
        limits.add_argument("--" + name, type=int, metavar="N",
                            help=help_text + _shown(getattr(d, name.replace("-", "_"))))
    cache = p.add_argument_group("cache")
    cache.add_argument("--cache-ttl", type=float, metavar="S",
                       help="seconds a cached file is served before it is checked again"
                       + _shown(d.cache_ttl))
    cache.add_argument("--cache-max-bytes", type=int, metavar="N",
                       help="memory for cached files" + _shown(d.cache_max_bytes))
    cache.add_argument("--cache-max-entry", type=int, metavar="N",
                       help="largest file kept in memory; larger ones stream from disk"
                       + _shown(d.cache_max_entry))
    cache.add_argument("--readahead", type=int, metavar="BYTES",
                       help="read a download this far ahead in the pool (0: off)"
                       + _shown(d.readahead))
    cache.add_argument("--cache-max-open", type=int, metavar="N",
                       help="larger files kept open for sendfile (0: open per request)"
                       + _shown(d.cache_max_open))
    http = p.add_argument_group("responses")
    http.add_argument("--cache-control", metavar="VALUE",
                      help="Cache-Control of files other than HTML" + _shown(d.cache_control))
    http.add_argument("--cache-control-html", metavar="VALUE",
                      help="Cache-Control of HTML files" + _shown(d.cache_control_html))
    http.add_argument("--listing", action="store_true",
                      help="list directories that have no index.html")
    http.add_argument("--follow-symlinks", action="store_true",
                      help="serve symlinks that lead outside the root (refused by default)")
    http.add_argument("--max-ranges", type=int, metavar="N",
                      help="ranges honoured in one request (more: 200 with the whole file)"
                      + _shown(d.max_ranges))
    http.add_argument("--spa", action="store_true",
                      help="answer unknown paths without an extension with /index.html (200)")
    http.add_argument("--header", dest="headers", metavar="'NAME: VALUE'", action="append",
                      help="add a header to every response (repeatable)")
    http.add_argument("--cors", metavar="ORIGIN", nargs="?", const="*",
                      help="allow cross-origin requests from ORIGIN ('*' without a value)")
    http.add_argument("--no-cache", action="store_true",
                      help="Cache-Control: no-store on everything (development)")
    http.add_argument("--mime-type", dest="mime_types", metavar=".EXT=TYPE", action="append",
                      help="content type of an extension (repeatable)")
    out = p.add_argument_group("logs and status")
    out.add_argument("--log-format", metavar="|".join(_LOG_FORMATS),
                     help="access log line format" + _shown(d.log_format))
    out.add_argument("--verbose", action="store_true",
                     help="print each request on a terminal's stderr, coloured by status")
    out.add_argument("--status-path", metavar="PATH",
                     help="serve counters at PATH (HTML, or JSON with ?json); off if empty")
    out.add_argument("--status-allow", metavar="CIDR", action="append",
                     help="clients that may read the status page (repeatable)"
                     + _shown(d.status_allow))
    out.add_argument("--health-path", metavar="PATH",
                     help="answer PATH with 200 while serving, 503 while stopping (load "
                     "balancer health checks); off if empty")
    who = p.add_argument_group("who may read what")
    who.add_argument("--allow", metavar="CIDR", action="append",
                     help="serve only clients in these networks (repeatable; default: all)")
    who.add_argument("--deny", metavar="CIDR", action="append",
                     help="refuse clients in these networks with 403 (repeatable; wins)")
    who.add_argument("--trusted-proxy", dest="trusted_proxies", metavar="CIDR",
                     action="append", help="proxies whose X-Forwarded-For is believed: the "
                     "log and the rules above then see the client (repeatable)")
    who.add_argument("--auth", metavar="USER:PASSWORD", action="append",
                     help="require HTTP Basic authentication (repeatable; visible in ps: "
                     "prefer --auth-file)")
    who.add_argument("--auth-file", metavar="FILE",
                     help="users and password hashes, one 'user:hash' per line (make the "
                     "hashes with: python3 -m evserver hash-password)")
    who.add_argument("--auth-path", dest="auth_paths", metavar="PREFIX", action="append",
                     help="only paths under PREFIX need a login (repeatable; default: all)")
    who.add_argument("--auth-realm", metavar="NAME", help="the realm browsers show"
                     + _shown(d.auth_realm))
    who.add_argument("--auth-insecure", action="store_true",
                     help="allow logins over plain HTTP from other machines (passwords "
                     "then cross the LAN readable)")
    tls = p.add_argument_group("HTTPS")
    tls.add_argument("--tls-cert", metavar="FILE",
                     help="PEM certificate (chain): serve HTTPS (on --port, or on --tls-port)")
    tls.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    tls.add_argument("--tls-port", type=int, metavar="PORT",
                     help="serve HTTPS on PORT and plain HTTP on --port")
    tls.add_argument("--handshake-timeout", type=float, metavar="S",
                     help="time for a PROXY preamble and a TLS handshake, from the connection"
                     + _shown(d.handshake_timeout))
    tls.add_argument("--tls-redirect", action="store_true",
                     help="answer plain HTTP with a 301 to the HTTPS port")
    tls.add_argument("--tls-self-signed", action="store_true",
                     help="make a certificate for this machine's names and LAN addresses "
                     "(kept in ~/.local/state/evserver; needs the optional cryptography "
                     "package) and print its fingerprint")
    tls.add_argument("--hsts", type=int, metavar="SECONDS",
                     help="send Strict-Transport-Security: max-age=SECONDS over HTTPS (browsers "
                     "then refuse plain HTTP to this host for that long)" + _shown(d.hsts))
    who.add_argument("--proxy-protocol", action="store_true",
                     help="expect a PROXY protocol v1/v2 preamble (from --trusted-proxy "
                     "addresses only) before each connection's first request")
    out.add_argument("--pidfile", metavar="FILE", help="write the process id to FILE")
    out.add_argument("--qr", action="store_true", help="show a QR code of the LAN URL")
    out.add_argument("--debug", action="store_true",
                     help="log slow callbacks and connection errors")
    conf = p.add_argument_group("configuration")
    conf.add_argument("--config", metavar="FILE",
                      help="read options from a TOML file (keys are the long options: "
                      "port = 8080); flags given here win over it")
    conf.add_argument("--check-config", action="store_true",
                      help="check the options, print them as TOML for --config and exit "
                      "(binds nothing, writes nothing)")
    return p
