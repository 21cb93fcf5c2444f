"""How an option is declared, and how its values are read and checked.

Owns: `Kind` and the kinds (`Text`, `Choice`, `FilePath`, `Switch`, `Count`, `Port`,
`Workers`, `Seconds`, `Unset`, `Each`, `MimeTypes`, `Logins`), the value rules they use
(`header_line`, `origin`, `network`, ...), `BadValue`, `Flag`, `Option`, `option()`, `fixed()`
and `GROUPS`. Imports `auth` (so `--auth` is parsed exactly as the server will).

A kind converts a flag's text or a TOML value and checks any value, raising `BadValue` with
what is wrong but not the option's name: config.py, whose `Config` fields are declared with
`option()` and `fixed()`, adds it. Knows nothing of `Config` itself: a `Rule` is handed the
configuration as an `object`.
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .auth import Credentials

T = TypeVar("T")


class BadValue(Exception):
    """What is wrong with a value, without the option's name (a kind does not know it)."""


# --- kinds: how one field's values are read and checked ----------------------------------------

class Kind:
    """Converts and checks the values of one field, however they arrive: `parse` a flag's text,
    `from_toml` a file's value (a file may hold any type), then `check` any value (a flag's, a
    file's or `Config(...)`'s) into its stored form, or raise `BadValue`."""

    annotation: Any = str  # the field's type as declared on Config (a unit test compares them)
    expects = "a string"  # "must be <expects>, not <value>"
    toml_type = "string"  # for docs/options.md
    switch = False  # a flag without a value: given means true
    repeatable = False  # a flag given once per value; an array in a file

    def parse(self, text: str) -> object:
        return text

    def from_toml(self, value: object, key: str) -> object:
        return value

    def check(self, value: object) -> object:
        raise NotImplementedError

    def wrong(self, value: object) -> BadValue:
        return BadValue(f"must be {self.expects}, not {value!r}")


class Text(Kind):
    """A string, normalised or refused by `rule` (which raises `BadValue`)."""

    def __init__(self, rule: Callable[[str], str] | None = None) -> None:
        self.rule = rule

    def check(self, value: object) -> object:
        if not isinstance(value, str):
            raise self.wrong(value)
        return value if self.rule is None else self.rule(value)


class Choice(Text):
    """One of a few words."""

    def __init__(self, *choices: str) -> None:
        super().__init__()
        self.choices = choices

    def check(self, value: object) -> object:
        text = super().check(value)
        if text not in self.choices:
            spelled = ", ".join(self.choices[:-1]) + " or " + self.choices[-1]
            raise BadValue(f"must be {spelled}, not {text!r}")
        return text


class FilePath(Text):
    """A path (relative ones are read from a configuration file's folder). A file's path may
    not end with '/'; `folder=True` allows it."""

    def __init__(self, folder: bool = False) -> None:
        super().__init__()
        self.folder = folder

    def check(self, value: object) -> object:
        path = super().check(value)
        assert isinstance(path, str)
        if not path or "\0" in path or path.endswith("/") and not self.folder:
            raise BadValue(f"must be a path, not {path!r}")
        return path


class Switch(Kind):
    annotation = bool
    expects = "true or false"
    toml_type = "true or false"
    switch = True

    def check(self, value: object) -> object:
        if not isinstance(value, bool):
            raise self.wrong(value)
        return value


class Count(Kind):
    """A positive integer; with `zero_off`, 0 turns the feature off."""

    annotation = int
    expects = "an integer"
    toml_type = "integer"

    def __init__(self, zero_off: bool = False) -> None:
        self.zero_off = zero_off

    def parse(self, text: str) -> object:
        try:
            return int(text)
        except ValueError:
            raise self.wrong(text) from None

    def integer(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(value)
        return value

    def check(self, value: object) -> object:
        number = self.integer(value)
        if number < 0 or number == 0 and not self.zero_off:
            raise BadValue(f"must be positive, not {number}")
        return number


class Port(Count):
    def check(self, value: object) -> object:
        number = self.integer(value)
        if not 0 <= number <= 65535:
            raise BadValue(f"must be between 0 and 65535, not {number}")
        return number


def _cpus() -> int:
    return os.cpu_count() or 1


class Workers(Count):
    """A count, or 'auto': one per CPU (on the command line and in a file alike)."""

    def parse(self, text: str) -> object:
        return _cpus() if text == "auto" else super().parse(text)

    def from_toml(self, value: object, key: str) -> object:
        return _cpus() if value == "auto" else value


class Seconds(Kind):
    """A positive number of seconds, stored as a float (an integer is accepted)."""

    annotation = float
    expects = "a number"
    toml_type = "number"

    def parse(self, text: str) -> object:
        try:
            return float(text)
        except ValueError:
            raise self.wrong(text) from None

    def check(self, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.wrong(value) from None
        if not isinstance(value, float):
            raise self.wrong(value)
        # `not value > 0` rather than `value <= 0`: NaN (`--header-timeout nan`) compares
        # false both ways and would otherwise reach the timer heap, whose order it breaks.
        if not value > 0:
            raise BadValue(f"must be positive, not {value}")
        return value


class Unset(Kind):
    """`inner`, or None: not set."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner
        self.annotation = inner.annotation | None
        self.expects, self.toml_type = inner.expects, inner.toml_type

    def parse(self, text: str) -> object:
        return self.inner.parse(text)

    def check(self, value: object) -> object:
        return None if value is None else self.inner.check(value)


class Each(Kind):
    """Strings, each normalised or refused by `rule`: a flag repeated, an array in a file (a
    single string there is one value)."""

    annotation = tuple[str, ...]
    expects = "a list of strings"
    toml_type = "array of strings"
    repeatable = True

    def __init__(self, rule: Callable[[str], str] | None = None) -> None:
        self.rule = rule

    def from_toml(self, value: object, key: str) -> object:
        return [value] if isinstance(value, str) else value

    def check(self, value: object) -> object:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.wrong(value)
        return tuple(value if self.rule is None else (self.rule(v) for v in value))


class MimeTypes(Each):
    """'.ext=type/subtype' lines; in a file also a table of ".ext" = "type/subtype"."""

    def __init__(self) -> None:
        super().__init__(_mime_line)

    def from_toml(self, value: object, key: str) -> object:
        if not isinstance(value, dict):
            return super().from_toml(value, key)
        entries = []
        for ext, ctype in value.items():
            if not isinstance(ctype, str):
                raise BadValue(f"{key}.\"{ext}\" must be a string, not {ctype!r}")
            entries.append(f"{ext}={ctype}")
        return entries


class Logins(Each):
    """USER:PASSWORD pairs, parsed by `auth.Credentials` itself: the rules cannot drift."""

    def check(self, value: object) -> object:
        pairs = super().check(value)
        assert isinstance(pairs, tuple)
        if pairs:
            try:
                Credentials(pairs)
            except ValueError as err:  # "--auth #2: ...": the option's name is added back
                raise BadValue(_without_option(str(err))) from None
        return pairs


def _without_option(message: str) -> str:
    first, _, rest = message.partition(" ")
    return rest if first.startswith("--") and rest else message


# --- the rules kinds use -------------------------------------------------------------------------
# Each takes a value's text and returns it normalised or raises BadValue; config.py's table
# hands them to a kind: `Text(origin)`, `Each(network)`.

_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_URL_PATH = re.compile(r"/[!-\"$-/0-9:;<=>@-~]*", re.ASCII)  # printable, no space, ? or #
# Headers evserver writes itself: a second copy would contradict the framing or the type.
_OWNED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date",
                            "server", "content-type"})
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
                     r"|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII)


def _printable(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


def header_value(text: str) -> str:
    if not text or not _printable(text):
        raise BadValue(f"must be printable ASCII, not {text!r}")
    return text


def realm(text: str) -> str:
    if not text or not _printable(text) or '"' in text:
        raise BadValue(f"must be printable ASCII without quotes, not {text!r}")
    return text


def url_path(text: str) -> str:
    """'' (off), or a path for a page of evserver's own."""
    if text and not text.startswith("/"):
        raise BadValue(f"must start with /, not {text!r}")
    if text and not _URL_PATH.fullmatch(text):
        raise BadValue(f"must be a path without spaces, control characters, ? or #, not {text!r}")
    return text


def path_prefix(text: str) -> str:
    if not text.startswith("/") or not _URL_PATH.fullmatch(text):
        raise BadValue(f"must be a path starting with /, not {text!r}")
    return text


def network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise BadValue(f"must be an address or a network like 10.0.0.0/8, not {text!r}") from None


def header_line(text: str) -> str:
    name, colon, value = text.partition(":")
    value = value.strip(" \t")
    if not colon or not name or not set(name) <= _TCHARS or not _printable(value):
        raise BadValue(f"must be 'Name: value' (a token, then printable ASCII), not {text!r}")
    if name.lower() in _OWNED_HEADERS:
        raise BadValue(f"cannot set {name}: evserver writes it itself")
    return f"{name}: {value}"


def _mime_line(text: str) -> str:
    ext, equals, ctype = text.partition("=")
    ctype = ctype.strip()
    essence, _, params = ctype.partition(";")
    kind, slash, subtype = essence.strip().partition("/")
    if (not equals or not ext.startswith(".") or len(ext) < 2 or not set(ext) <= _TCHARS
            or not slash or not kind or not subtype or not set(kind + subtype) <= _TCHARS
            or not _printable(params)):
        raise BadValue(f"must be '.ext=type/subtype', not {text!r}")
    return f"{ext.lower()}={ctype}"


def media_range(text: str) -> str:
    """`type/subtype` or `type/*`, lowercased (--compress-type)."""
    kind, slash, subtype = text.strip().lower().partition("/")
    if (not slash or not kind or "*" in kind or not subtype or not set(kind) <= _TCHARS
            or not (subtype == "*" or set(subtype) <= _TCHARS)):
        raise BadValue(f"must be 'type/subtype' or 'type/*', not {text!r}")
    return f"{kind}/{subtype}"


def origin(text: str) -> str:
    if text in ("", "*"):
        return text
    text = text.lower()  # browsers compare it with the serialised Origin, which is lower case
    match = _ORIGIN.fullmatch(text)
    if (match is None or match["port"] is not None and not 0 < int(match["port"]) <= 65535
            or match["ip6"] is not None and not _is_ipv6(match["ip6"])):
        raise BadValue(f"must be '*' or an origin like https://example.com[:port], not {text!r}")
    return text


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# --- declaring an option -----------------------------------------------------------------------

# `rule(cfg, name)` checks field `name` of a Config against other fields or the disk, and
# raises ConfigError; config.py declares them on its options (`relation`, `environment`).
Rule = Callable[[object, str], None]

# Group id -> title, in the order --help, --check-config and docs/options.md show them.
GROUPS = {"where": "where", "work": "work", "timeouts": "timeouts (seconds)",
          "limits": "limits", "cache": "cache", "compression": "compression",
          "responses": "responses",
          "logs": "logs and status", "access": "who may read what", "https": "HTTPS",
          "config": "configuration", "help": "help"}


@dataclass(frozen=True, kw_only=True)
class Flag:
    """A command-line flag: a Config field's option, or one that only steers the command
    (`--config`, `--check-config`, `--help`, `--help-all`, `--version`)."""

    name: str = ""  # the Config field (an option) or the argparse dest
    flags: tuple[str, ...]  # short one first, the long one last
    group: str
    help: str  # one line; `{field}` is replaced by that field's long flag
    more: str = ""  # said by --help-all and docs/options.md only
    metavar: str | None = None
    everyday: bool = False  # shown by the short --help

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"{self.long}: unknown group {self.group!r}")

    @property
    def long(self) -> str:
        return self.flags[-1]


@dataclass(frozen=True, kw_only=True)
class Option(Flag):
    """A user option: a Config field with its flag, its TOML key and all its checks."""

    kind: Kind
    const: str | None = None  # the value of the flag given without one (--cors)
    path: bool = False  # relative paths in a file are read from the file's folder
    off: tuple[str, str] | None = None  # (flag, help) of a switch that sets it to None
    alias: str | None = None  # a second TOML key (the [mime-types] table)
    relation: Rule | None = None  # a check against other fields
    environment: Rule | None = None  # a check of the disk (check_environment)
    dynamic_default: Callable[[], object] | None = None  # the command line's default
    shown_default: str | None = None  # the default as docs/options.md states it

    @property
    def key(self) -> str:
        """The TOML key: the long flag without its dashes."""
        return self.long[2:]

    @property
    def off_key(self) -> str | None:
        return None if self.off is None else self.off[0][2:]

    @property
    def off_value(self) -> object:
        """What the off switch sets: False for a switch (--no-compress), else None."""
        return False if self.kind.switch else None


def option(default: T, kind: Kind, *flags: str, group: str, help: str, more: str = "",
           metavar: str | None = None, everyday: bool = False, const: str | None = None,
           path: bool = False, off: tuple[str, str] | None = None, alias: str | None = None,
           relation: Rule | None = None, environment: Rule | None = None,
           dynamic_default: Callable[[], object] | None = None,
           shown_default: str | None = None) -> T:
    """A field that users set: `default`, how its values are checked (`kind`), its flags
    (`"-p", "--port"`), and the rest of `Option` (see there)."""
    spec = Option(kind=kind, flags=flags, group=group, help=help, more=more, metavar=metavar,
                  everyday=everyday, const=const, path=path, off=off, alias=alias,
                  relation=relation, environment=environment,
                  dynamic_default=dynamic_default, shown_default=shown_default)
    return field(default=default, metadata={"kind": kind, "option": spec})


def fixed(default: T, kind: Kind) -> T:
    """A field no option sets (a tuning constant, or set by evserver itself)."""
    return field(default=default, metadata={"kind": kind})

