"""The command line and the configuration file: how `python3 -m evserver ...` becomes a Config.

Owns: `parse()` (flags, `--config FILE`, `--check-config`, `--help`, `--help-all`,
`--version`), `FLAGS` (the flags that only steer the command), `load_toml()`, `to_toml()`,
`help_text()`, `toml_text()`, the did-you-mean suggestion for a misspelt key and the one-line
failure. Imports `config` (the table all of it is derived from), `options` (the declarations
it reads) and the version.

Nothing here checks a value: a flag's text and a file's value are converted by the option's
kind, then `Config(...)` checks them all. What is added is where a value came from, so a
file's bad value is reported under the file's name and key, not the flag.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NoReturn

from evserver import __version__
from evserver.config import OPTIONS, Config, ConfigError
from evserver.options import GROUPS, BadValue, Flag, Option

_OPTION: dict[str, Option] = {opt.name: opt for opt in OPTIONS}
# The flags that only steer the command; their names are the argparse dests.
FLAGS: tuple[Flag, ...] = (
    Flag(name="config", flags=("--config",), group="config", metavar="FILE", everyday=True,
         help="read options from a TOML file (flags win over it)",
         more="Keys are the long options without dashes: port = 8080."),
    Flag(name="check_config", flags=("--check-config",), group="config", everyday=True,
         help="check the options, print them as TOML and exit",
         more="Binds nothing and writes nothing; --config reads the output back."),
    Flag(name="help", flags=("-h", "--help"), group="help", everyday=True,
         help="show the everyday options and exit"),
    Flag(name="help_all", flags=("--help-all",), group="help", everyday=True,
         help="show every option, grouped, with defaults, and exit"),
    Flag(name="version", flags=("--version",), group="help", everyday=True,
         help="print the version and exit"),
)
_FLAG_NAMES = {flag.name: flag.long for flag in (*OPTIONS, *FLAGS)}
for _entry in (*OPTIONS, *FLAGS):
    _entry.help.format_map(_FLAG_NAMES)  # a misspelt {field} fails at import, not at --help
    _entry.more.format_map(_FLAG_NAMES)
# TOML key -> (option, whether it is the option's off switch): `no-log = true`.
_TOML_KEYS: dict[str, tuple[Option, bool]] = {}
for _opt in OPTIONS:
    _TOML_KEYS[_opt.key] = (_opt, False)
    if _opt.alias is not None:
        _TOML_KEYS[_opt.alias] = (_opt, False)
    if _opt.off_key is not None:
        _TOML_KEYS[_opt.off_key] = (_opt, True)
# A field's own name used as a key ("docroot") suggests the option's key ("root").
_KEY_ALIASES = {opt.name.replace("_", "-"): opt.key for opt in OPTIONS
                if opt.name.replace("_", "-") not in _TOML_KEYS}


def _flag(name: str) -> str:
    """An option's or a flag's long flag, as messages name it."""
    return _FLAG_NAMES[name]


def help_text(entry: Flag, full: bool = True) -> str:
    """An entry's help with the flags it mentions filled in (`more` too when `full`)."""
    text = entry.help if not (full and entry.more) else f"{entry.help}. {entry.more}"
    return text.format_map(_FLAG_NAMES)


def parse(argv: Sequence[str] | None = None, *, check_environment: bool = False) -> Config:
    """Parse a command line and the `--config` file it names (flags win over the file,
    the file over the defaults). A bad one raises SystemExit(2) after one line on
    stderr; `--check-config` prints the result as TOML and raises SystemExit(0).
    `--check-config` and `check_environment` (a real start) also run
    `check_environment()`, so both refuse the same things with the same message."""
    given = vars(_build_parser().parse_args(argv))
    config_file: str | None = given.pop("config", None)
    check: bool = given.pop("check_config", False)
    args: dict[str, Any] = {}
    for name, raw in given.items():
        if isinstance(raw, str):
            try:
                args[name] = _OPTION[name].kind.parse(raw)
            except BadValue as problem:
                _fail(f"{_flag(name)} {problem}")
        else:  # a switch's True, a repeated flag's list, None from an off switch
            args[name] = tuple(raw) if isinstance(raw, list) else raw
    keys: dict[str, str] = {}  # field -> its key as written in the file
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values, keys = load_toml(config_file)
        except ConfigError as err:
            _fail(str(err))
    values.update(args)
    for opt in OPTIONS:
        if opt.dynamic_default is not None and opt.name not in values:
            values[opt.name] = opt.dynamic_default()
    try:
        cfg = Config(**values)
        if check or check_environment:
            cfg.check_environment()
    except ConfigError as err:
        if err.field in keys and err.field not in args:
            _fail(f"{config_file}: {keys[err.field]} {err.problem}")
        if err.field not in args and err.other in keys and err.other not in args:
            _fail(f"{config_file}: {keys[err.other]}: {err}")  # a default vs the file
        _fail(str(err))
    if check:
        sys.stdout.write(to_toml(cfg))
        raise SystemExit(0)
    return cfg


# --- the configuration file --------------------------------------------------------------------

def to_toml(cfg: Config) -> str:
    """Every field as a file that `--config` reads back into an equal Config (paths made
    absolute, so the file may live anywhere). Fields with no option are comments."""
    lines = ["# evserver configuration: python3 -m evserver --config FILE", ""]
    for group, title in GROUPS.items():
        entries = []
        for opt in OPTIONS:
            if opt.group != group:
                continue
            value = getattr(cfg, opt.name)
            if opt.path and value not in (None, "-"):
                value = os.path.abspath(value)
            if value is None and opt.off is not None:
                entries.append(f"{opt.off_key} = true")
            elif value is None:
                entries.append(f"# {opt.key} is not set")
            else:
                entries.append(f"{opt.key} = {toml_text(value)}")
        if entries:
            lines += [f"# {title}", *entries, ""]
    constants = [f"#   {f.name} = {toml_text(getattr(cfg, f.name))}"
                 for f in fields(Config) if f.name not in _OPTION]
    lines += ["# not options (fixed in evserver/config.py):", *constants]
    return "\n".join(lines) + "\n"


def toml_text(value: object) -> str:
    """`value` as TOML (to_toml() writes values, and docs/options.md shows defaults, so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # a float's repr always has '.', 'e', inf or nan: TOML reads a float
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
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
    the file's folder. Values are checked later, by Config, like the flags'."""
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
    folder = os.path.dirname(os.path.abspath(path))
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for written, value in data.items():
        key = written.replace("_", "-")
        found = _TOML_KEYS.get(key)
        if found is None:
            raise ConfigError(f"{path}: unknown key {written!r}{_did_you_mean(key)}")
        opt, off = found
        if off:
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {written} must be true or false, not {value!r}")
            if not value:
                continue  # `no-log = false` changes nothing
        if opt.name in keys:
            raise ConfigError(f"{path}: {written} and {keys[opt.name]} set the same option")
        if off:
            value = opt.off_value
        else:
            try:
                value = opt.kind.from_toml(value, written)
            except BadValue as problem:
                raise ConfigError(f"{path}: {problem}") from None
            if opt.path and isinstance(value, str) and value and value != "-":
                value = os.path.join(folder, os.path.expanduser(value))
        values[opt.name], keys[opt.name] = value, written
    return values, keys


def _did_you_mean(key: str) -> str:
    guess = _KEY_ALIASES.get(key) or _nearest(key, _TOML_KEYS)
    return f" (did you mean {guess!r}?)" if guess else ""


def _nearest(word: str, choices: Sequence[str] | dict[str, Any]) -> str | None:
    """The choice fewest typing slips away (a swap of two letters is one: `prot` is `port`,
    not `root`), if it is close enough to be what was meant."""
    def ratio(choice: str) -> float:
        return difflib.SequenceMatcher(None, word, choice).ratio()

    best = min(choices, key=lambda c: (_slips(word, c), -ratio(c), c), default=None)
    if best is None or _slips(word, best) > max(1, len(word) // 3) and ratio(best) < 0.6:
        return None
    return best


def _slips(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    two neighbouring letters each count one."""
    previous: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, row = previous, row, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]


def _fail(message: str) -> NoReturn:
    print(f"evserver: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- the command line ----------------------------------------------------------------------

_USAGE = "%(prog)s [OPTION]... | %(prog)s COMMAND ..."
_DESCRIPTION = "Serve a folder over HTTP/1.1 from one event loop."
_COMMANDS = """\
commands:
  stats LOGFILE...      statistics of an access log, as text, JSON or HTML
  hash-password         print a password hash for an auth file"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage dump) with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"evserver: error: {message} (see {_flag('help')})\n")


class _ShortHelp(argparse.Action):
    """--help: the everyday options only."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        _build_parser(everyday=True).print_help()
        parser.exit()


class _FullHelp(_ShortHelp):
    """--help-all: every option, with its default."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.print_help()
        parser.exit()


def _shown(value: object) -> str:
    """' (default: X)' for --help-all, left out for off switches and empty values."""
    if value is None or value is False or value in ("", ()):
        return ""
    if value is True:
        return " (on by default)"
    if isinstance(value, tuple):
        value = ", ".join(value)
    return f" (default: {value})"


def _build_parser(everyday: bool = False) -> argparse.ArgumentParser:
    """The parser of the command line, from the table; `everyday` leaves out what the short
    --help does not show (it is then only printed, never used to parse)."""
    if everyday:
        footer = f"All options, with defaults: {_flag('help_all')}; explained: docs/options.md"
    else:
        footer = "All of them explained, and the TOML file: docs/options.md"
    # No argparse defaults: what is absent from the parsed namespace was not given, so a
    # configuration file's value (or Config's default) stays. --help-all shows them via _shown.
    p = _Parser(prog="evserver", usage=_USAGE, description=_DESCRIPTION,
                epilog=f"{_COMMANDS}\n\n{footer}", add_help=False,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                argument_default=argparse.SUPPRESS)
    sections = {group: p.add_argument_group(title) for group, title in GROUPS.items()}
    defaults = Config()
    for opt in OPTIONS:
        if everyday and not opt.everyday:
            continue
        section: Any = sections[opt.group]
        if opt.off is not None:
            section = section.add_mutually_exclusive_group()
        value = opt.dynamic_default() if opt.dynamic_default else getattr(defaults, opt.name)
        helped = help_text(opt, full=not everyday) + ("" if everyday else _shown(value))
        kwargs: dict[str, Any] = {"dest": opt.name, "help": helped.replace("%", "%%")}
        if opt.kind.switch:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = opt.metavar or opt.key.upper()
            if opt.kind.repeatable:
                kwargs["action"] = "append"
            if opt.const is not None:
                kwargs.update(nargs="?", const=opt.const)
        section.add_argument(*opt.flags, **kwargs)
        if opt.off is not None:
            section.add_argument(opt.off[0], dest=opt.name, action="store_const",
                                 const=opt.off_value, help=opt.off[1])
    actions: dict[str, dict[str, Any]] = {
        "config": {}, "check_config": {"action": "store_true"}, "help": {"action": _ShortHelp},
        "help_all": {"action": _FullHelp},
        "version": {"action": "version", "version": f"evserver {__version__}"}}
    for flag in FLAGS:
        if everyday and not flag.everyday:
            continue
        kwargs = {"dest": flag.name, **actions[flag.name],
                  "help": help_text(flag, full=not everyday).replace("%", "%%")}
        if flag.metavar is not None:
            kwargs["metavar"] = flag.metavar
        sections[flag.group].add_argument(*flag.flags, **kwargs)
    return p
