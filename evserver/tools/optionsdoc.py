"""`python3 -m evserver.tools.optionsdoc > docs/options.md`: the option reference, made from
the table in config.py (tests/unit/test_options_doc.py fails when docs/options.md is stale).

Owns: `render()`, `main()`. Imports `config` (the table), `options` (its declarations) and
`cmdline` (help texts, TOML values). Never runs while serving.
"""
from __future__ import annotations

import sys
from dataclasses import fields

from ..cmdline import FLAGS, help_text, toml_text
from ..config import OPTIONS, Config
from ..options import GROUPS, Flag, Option, Workers

COMMAND = "python3 -m evserver.tools.optionsdoc > docs/options.md"


def render() -> str:
    """docs/options.md: every option with its flags, TOML key, default and help, grouped as
    `--help-all` shows them, then the rules of the TOML file."""
    defaults = Config()
    out = [
        "# Options",
        "",
        f"<!-- Made by `{COMMAND}` from the table in evserver/config.py: edit that, then run "
        "it again. -->",
        "",
        "Every option of `python3 -m evserver`, grouped as `--help-all` shows them. Each one "
        "can be given as a flag or as a key of the TOML file read with `--config FILE` (see "
        "[the TOML file](#the-toml-file) below and [configuration.md](configuration.md)). The "
        "everyday ones, which the short `--help` shows, are in **bold**.",
        "",
    ]
    for group, title in GROUPS.items():
        rows = [_row(opt, defaults) for opt in OPTIONS if opt.group == group]
        rows += [_off_row(opt) for opt in OPTIONS if opt.group == group and opt.off]
        rows += [_flag_row(flag) for flag in FLAGS if flag.group == group]
        if not rows:
            continue
        out += [f"## {title}", "", "| Flag | TOML key | Default | What it does |",
                "|---|---|---|---|", *rows, ""]
    out += _file_rules(defaults)
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _flags(entry: Flag, metavar: str | None) -> str:
    spelled = []
    for flag in entry.flags:
        if metavar is None:
            spelled.append(f"`{flag}`")
        elif isinstance(entry, Option) and entry.const is not None:
            spelled.append(f"`{flag} [{metavar}]`")
        else:
            spelled.append(f"`{flag} {metavar}`")
    text = ", ".join(spelled)
    return f"**{text}**" if entry.everyday else text


def _row(opt: Option, defaults: Config) -> str:
    metavar = None if opt.kind.switch else opt.metavar or opt.key.upper()
    kind = opt.kind.toml_type
    if isinstance(opt.kind, Workers):
        kind += ' or "auto"'
    if opt.alias is not None:
        kind += f", or a `[{opt.alias}]` table"
    key = f"`{opt.key}` ({kind})"
    return "| " + " | ".join(_cell(part) for part in (
        _flags(opt, metavar), key, _default(opt, defaults), help_text(opt))) + " |"


def _off_row(opt: Option) -> str:
    assert opt.off is not None and opt.off_key is not None
    flag, text = opt.off
    return f"| `{flag}` | `{opt.off_key} = true` | | {_cell(text)} |"


def _flag_row(flag: Flag) -> str:
    return (f"| {_cell(_flags(flag, flag.metavar))} | (command line only) | | "
            f"{_cell(help_text(flag))} |")


def _default(opt: Option, defaults: Config) -> str:
    if opt.shown_default is not None:
        return opt.shown_default
    value = getattr(defaults, opt.name)
    if value is None or value is False or value == "":
        return "off"
    if value == ():
        return "none"
    return f"`{toml_text(value)}`"


def _keys(options: list[Option]) -> str:
    return ", ".join(f"`{opt.key}`" for opt in options)


def _file_rules(defaults: Config) -> list[str]:
    repeatable = [opt for opt in OPTIONS if opt.kind.repeatable]
    paths = [opt for opt in OPTIONS if opt.path]
    offs = [opt for opt in OPTIONS if opt.off_key is not None]
    aliased = [opt for opt in OPTIONS if opt.alias is not None]
    workers = [opt for opt in OPTIONS if isinstance(opt.kind, Workers)]
    checked = [opt for opt in OPTIONS if opt.environment is not None]
    option_names = {opt.name for opt in OPTIONS}
    lines = [
        "## The TOML file",
        "",
        "- A key is an option's long flag without its dashes (`--max-connections` is "
        "`max-connections`); dashes or underscores may be used (`max_connections`). Unknown "
        "keys are an error, which names the nearest real key.",
        "- A flag that takes no value is `true` or `false`.",
        f"- An option that may be repeated ({_keys(repeatable)}) takes an array of strings; "
        "a single string is one value.",
    ]
    lines += [f'- `{opt.key} = "auto"` is one per CPU, as on the command line.'
              for opt in workers]
    lines += [f"- `{opt.off_key} = true` is `{opt.off[0]}`: {opt.off[1]}."
              for opt in offs if opt.off is not None]
    lines += [f"- `{opt.key}` may also be a `[{opt.alias}]` table of `\".ext\" = "
              "\"type/subtype\"` entries." for opt in aliased]
    lines += [
        f"- Paths ({_keys(paths)}) are relative to the folder the file is in; `~` is "
        "expanded, and `-` (standard output) is kept.",
        "- Flags on the command line win over the file, and the file over the defaults.",
        "- `--check-config` prints the options in effect as a file `--config` reads back, "
        "without binding or writing anything. Like a real start, it refuses bad values, and "
        f"checks on this machine what these options need: {_keys(checked)}.",
        "",
        "## Not options",
        "",
        "Fixed in evserver/config.py; `--check-config` prints them as comments.",
        "",
    ]
    lines += [f"- `{f.name}` = `{toml_text(getattr(defaults, f.name))}`"
              for f in fields(Config) if f.name not in option_names]
    return [*lines, ""]


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
