"""`python3 -m evserver stats LOGFILE...`: statistics of access logs, as text, JSON or HTML.

Owns: `main()`: the command line, reading the files (gzip too) and writing the report. The
statistics are `tools.logstats`'s; the HTML page is `tools.statspage`'s.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import NoReturn

from .logstats import MAX_KEYS, Stats, build_report, read_log, render_text
from .statspage import render_html

# -- the command line ---------------------------------------------------------------------

class _Failure(Exception):
    """A user-facing error: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise _Failure(message)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _build_parser() -> _Parser:
    p = _Parser(prog="evserver stats",
                description="Statistics of an access log (combined, common or JSON lines; "
                            "gzip-compressed rotated logs too).")
    p.add_argument("logfile", nargs="+", help="the access log(s) to read")
    p.add_argument("--top", type=_positive, default=10, metavar="N",
                   help="entries in each top list (default 10)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--html", metavar="FILE", help="also write them as a self-contained HTML page")
    p.add_argument("--max-keys", type=_positive, default=MAX_KEYS, metavar="N",
                   help=f"distinct paths and clients tracked (default {MAX_KEYS:,})")
    return p


def main(args: list[str]) -> int:
    """`evserver stats ...`; returns the exit status."""
    try:
        opts = _build_parser().parse_args(args)
        stats = Stats(opts.max_keys)
        for path in opts.logfile:
            _read(path, stats)
        report = build_report(stats, opts.top, opts.logfile)
        if opts.html:
            _write(opts.html, render_html(report))
    except _Failure as err:
        print(f"evserver: error: {err}", file=sys.stderr)
        return 2
    return _print(json.dumps(dataclasses.asdict(report), indent=1) + "\n" if opts.json
                  else render_text(report, _bar_char()))


def _read(path: str, stats: Stats) -> None:
    try:
        read_log(path, stats)
    except (OSError, EOFError) as err:  # EOFError: a gzip file cut short
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise _Failure(f"cannot read {path!r}: {reason}") from None


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise _Failure(f"cannot write {path!r}: {err.strerror or err}") from None


def _bar_char() -> str:
    """`█`, or `#` where standard output cannot encode it (an ASCII locale)."""
    try:
        "█".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "#"
    return "█"


def _print(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `evserver stats log | head`: the reader had enough
        # Point stdout at /dev/null so the interpreter's flush at exit fails no second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
