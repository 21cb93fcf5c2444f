"""`python3 -m evserver stats LOGFILE...`: statistics of an access log, as text, JSON or HTML.

Owns: `main()`, `parse_line()`, `Stats`, `build_report()`, `render_text()`, `render_html()`.
Imports only `look` (the design every evserver page shares) from evserver: it reads nginx's
and Apache's combined/common logs as well as the three formats evserver writes (combined plus
a duration, common, JSON), detected per line. Files are read as a stream, so memory grows with
the distinct paths and clients (each table capped) and time buckets (capped too), never with
the number of lines. Every string read from a log is made printable ASCII at parse time and
HTML-escaped on output: a log line is attacker-controlled input.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import html
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import NoReturn, Protocol

from .. import look

MAX_KEYS = 100_000  # distinct paths, clients or 404 paths kept in each table
MAX_LINE = 64 * 1024  # longer lines are skipped, never held whole in memory
MAX_ROWS = 60  # rows of the requests-over-time chart
MIN_UNIT_ROWS = 24  # a second, minute, hour or day is the bucket if it still gives this many
# Distinct time buckets kept before they are merged into wider ones. More than MAX_ROWS × 60
# (the widest step between two _RESOLUTIONS), so a merge never coarsens the chart: a log
# with that many distinct seconds spans so long that its rows are minutes or more anyway.
TIMELINE_KEYS = 10_000
WIDTH = 100  # columns of the text report
BAR_WIDTH = 60

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_QUOTED = r'"((?:[^"\\]|\\.)*)"'  # Apache writes \" inside a field, nginx and evserver \x22
# host ident user [time] "request" status bytes, then for combined "referer" "agent", then
# evserver's duration, then whatever fields a custom nginx format appends.
_CLF = re.compile(
    rf'(\S+) \S+ \S+ \[([^\]]*)\] {_QUOTED} (\d{{3}}) (\d+|-)'
    rf'(?: {_QUOTED} {_QUOTED}(?: (\d+(?:\.\d*)?|-))?(?: .*)?)?[ \t]*')
_CLF_TIME = re.compile(r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
# Chart bucket sizes a reader takes in at a glance, in seconds (1 second to 30 days): a log of
# a minute is charted per second, one of an hour per minute or two, one of a month per day.
_NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                 43200, 86400, 172800, 604800, 1209600, 2592000)
# What the timeline counts per: a second at first, then (past TIMELINE_KEYS buckets, a log of
# hours) minutes, hours, days, weeks. Each divides the next, so counts merge exactly.
_RESOLUTIONS = (1, 60, 3600, 86400, 604800)
# The units a reader counts in: a log of a day is charted per hour, a month per day.
_UNITS = (1, 60, 3600, 86400)


# -- parsing ------------------------------------------------------------------------------

@dataclass(slots=True)  # not frozen: a frozen __init__ costs a setattr call per field
class Entry:
    """One request read from a log line; strings are printable ASCII."""

    fmt: str  # "combined", "common" or "json"
    time: int  # Unix seconds
    client: str
    request: str  # the request line, "-" when the client never completed one
    method: str
    target: str  # "" when there is no request line
    protocol: str
    status: int
    bytes: int
    referer: str = "-"
    user_agent: str = "-"
    duration: float | None = None


def parse_line(line: str) -> Entry | None:
    """The request a log line records, in whichever format it is; None for junk."""
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        return _parse_json(line)
    return _parse_clf(line)


def clean(text: str) -> str:
    """Printable ASCII stays; anything else becomes `\\xHH` (or `\\uHHHH`) as in evserver's
    log, so no control character reaches a terminal."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def _parse_clf(line: str) -> Entry | None:
    m = _CLF.fullmatch(line)
    if m is None:
        return None
    client, when, request, status, size, referer, agent, duration = m.groups()
    seconds = clf_time(when)
    if seconds is None:
        return None
    referer, agent = referer or "-", agent or "-"
    if _UNPRINTABLE.search(line) is not None:  # one search for the usual, clean line
        client, request, referer, agent = map(clean, (client, request, referer, agent))
    method, target, protocol = split_request(request)
    return Entry(
        fmt="common" if m.group(6) is None else "combined", time=seconds, client=client,
        request=request, method=method, target=target, protocol=protocol, status=int(status),
        bytes=0 if size == "-" else int(size), referer=referer, user_agent=agent,
        duration=None if duration in (None, "-") else float(duration))


def _parse_json(line: str) -> Entry | None:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the limit
        return None
    if not isinstance(obj, dict):
        return None
    when = obj.get("time")
    status = obj.get("status")
    seconds = iso_time(when) if isinstance(when, str) else None
    if seconds is None or isinstance(status, bool) or not isinstance(status, int) \
            or not 0 <= status <= 999:
        return None
    request = _json_str(obj, "request") or "-"
    method, target, protocol = split_request(request)
    return Entry(
        fmt="json", time=seconds, client=_json_str(obj, "client") or "-", request=request,
        method=_json_str(obj, "method") or method, target=_json_str(obj, "target") or target,
        protocol=_json_str(obj, "protocol") or protocol, status=status,
        bytes=max(0, obj["bytes"]) if _is_int(obj.get("bytes")) else 0,
        referer=_json_str(obj, "referer") or "-", user_agent=_json_str(obj, "user_agent") or "-",
        duration=_json_duration(obj.get("duration")))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_str(obj: dict[str, object], key: str) -> str:
    value = obj.get(key)
    return clean(value) if isinstance(value, str) else ""


def _json_duration(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # "" for a missing value
    duration = float(value)
    return duration if math.isfinite(duration) and duration >= 0 else None


def split_request(request: str) -> tuple[str, str, str]:
    """`GET /a HTTP/1.1` → (method, target, protocol); a target with spaces stays whole
    when the line ends in a protocol."""
    if request in ("", "-"):
        return "", "", ""
    parts = request.split(" ")
    if len(parts) == 3:  # as evserver's JSON log splits it
        return parts[0], parts[1], parts[2]
    method, _, rest = request.partition(" ")
    target, _, protocol = rest.rpartition(" ")
    if not protocol.startswith("HTTP/"):  # HTTP/0.9 `GET /`, or junk
        target, protocol = rest, ""
    return method, target, protocol


@functools.lru_cache(maxsize=4096)  # consecutive lines mostly share their second
def clf_time(text: str) -> int | None:
    """`26/Nov/2026:13:37:01 +0100` → Unix seconds; None if it is not a valid time.
    Parsed by hand: strptime's %b depends on the locale."""
    m = _CLF_TIME.fullmatch(text)
    month = _MONTHS.get(m.group(2).lower(), 0) if m else 0
    if m is None or month == 0:
        return None
    day, _, year, hour, minute, second, sign, off_h, off_m = m.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    try:
        when = datetime(int(year), month, int(day), int(hour), int(minute), int(second),
                        tzinfo=timezone(offset))
    except ValueError:  # 31 Feb, hour 25, an offset of a day or more
        return None
    return _unix(when)


@functools.lru_cache(maxsize=4096)
def iso_time(text: str) -> int | None:
    """`2026-11-26T13:37:01Z` (or with an offset) → Unix seconds; no zone means UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _unix(when if when.tzinfo else when.replace(tzinfo=UTC))


def _unix(when: datetime) -> int | None:
    try:
        return math.floor(when.timestamp())
    except (OverflowError, ValueError):  # year 1 with a positive offset, and such
        return None


# -- aggregation --------------------------------------------------------------------------

class Table:
    """Requests and bytes per key for at most `cap` distinct keys. Once full, new keys are
    counted in `other` only (known keys keep counting), and `capped` says so."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.rows: dict[str, list[int]] = {}  # key → [requests, bytes]
        self.other = [0, 0]
        self.capped = False

    def add(self, key: str, nbytes: int) -> None:
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= self.cap:
                self.capped = True
                row = self.other
            else:
                row = self.rows[key] = [0, 0]
        row[0] += 1
        row[1] += nbytes

    def top(self, n: int) -> list[Row]:
        """The `n` keys with the most requests (then bytes, then first seen)."""
        ranked = sorted(self.rows.items(), key=lambda kv: (kv[1][0], kv[1][1]), reverse=True)
        return [Row(key, requests, nbytes) for key, (requests, nbytes) in ranked[:n]]


class Timeline:
    """Requests per time bucket. Starts at one second; past `cap` buckets (a log of some
    hours), it merges them into minutes, then hours, days and weeks, so memory stays bounded
    (at most `cap` buckets) and every count stays exact."""

    def __init__(self, cap: int = TIMELINE_KEYS) -> None:
        self.cap = cap
        self.resolution = _RESOLUTIONS[0]  # seconds per key
        self.counts: dict[int, int] = {}  # start // resolution → requests

    def add(self, when: int) -> None:
        key = when // self.resolution
        self.counts[key] = self.counts.get(key, 0) + 1
        while len(self.counts) > self.cap:  # once, unless the buckets are sparse
            self._coarsen()

    def _coarsen(self) -> None:
        old = self.resolution
        wider = [r for r in _RESOLUTIONS if r > old]
        self.resolution = wider[0] if wider else old * 10
        merged: dict[int, int] = {}
        for key, count in self.counts.items():
            new_key = key * old // self.resolution
            merged[new_key] = merged.get(new_key, 0) + count
        self.counts = merged

    def chart(self, first: int, last: int, max_rows: int = MAX_ROWS) -> tuple[int, list[int]]:
        """(bucket seconds, requests per bucket) from the bucket of `first` to that of
        `last`, empty buckets included, in at most `max_rows` buckets."""
        size = bucket_size(first, last, self.resolution, max_rows)
        rows = [0] * (last // size - first // size + 1)
        for key, count in self.counts.items():
            rows[key * self.resolution // size - first // size] += count
        return size, rows


def bucket_size(first: int, last: int, resolution: int = 1, max_rows: int = MAX_ROWS) -> int:
    """The bucket that charts first..last in at most `max_rows` rows (a multiple of
    `resolution`): the smallest round one, or the next of a second, minute, hour or day
    when that still gives MIN_UNIT_ROWS rows (a day's log per hour, not per 30 minutes).
    Buckets start at multiples of their size since the epoch, so at whole UTC units."""
    def rows(size: int) -> int:
        return last // size - first // size + 1

    for size in _NICE_BUCKETS:
        if size % resolution == 0 and rows(size) <= max_rows:
            unit = next((u for u in _UNITS if u >= size), size)
            return unit if unit % resolution == 0 and rows(unit) >= MIN_UNIT_ROWS else size
    keys = last // resolution - first // resolution + 1
    factor = max(1, -(-keys // (max_rows - 1)))  # ceil: spans ≤ max_rows buckets once aligned
    while last // (resolution * factor) - first // (resolution * factor) >= max_rows:
        factor += 1
    return resolution * factor


class Stats:
    """Everything the report needs, accumulated one entry at a time."""

    def __init__(self, max_keys: int = MAX_KEYS, timeline_keys: int = TIMELINE_KEYS) -> None:
        self.requests = 0
        self.bytes = 0
        self.first: int | None = None
        self.last: int | None = None
        self.lines = 0
        self.skipped = 0
        self.first_skipped: str | None = None  # "file:line" of the first junk line
        self.formats = {"combined": 0, "common": 0, "json": 0}
        self.status: dict[int, list[int]] = {}  # at most 1,000 three-digit codes: no cap
        self.files = Table(max_keys)
        self.clients = Table(max_keys)
        self.not_found = Table(max_keys)
        self.timeline = Timeline(timeline_keys)
        self.durations = 0
        self.duration_sum = 0.0
        self.duration_max = 0.0

    def add(self, entry: Entry) -> None:
        self.requests += 1
        self.bytes += entry.bytes
        when = entry.time
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when
        self.formats[entry.fmt] += 1
        row = self.status.setdefault(entry.status, [0, 0])
        row[0] += 1
        row[1] += entry.bytes
        self.clients.add(entry.client, entry.bytes)
        if entry.target:
            path = entry.target.partition("?")[0]  # /a?x=1 and /a?x=2 are the same file
            self.files.add(path, entry.bytes)
            if entry.status == 404:
                self.not_found.add(path, entry.bytes)
        self.timeline.add(entry.time)
        if entry.duration is not None:
            self.durations += 1
            self.duration_sum += entry.duration
            self.duration_max = max(self.duration_max, entry.duration)

    def feed(self, lines: Iterable[str | None], source: str = "-") -> None:
        """Parse and count lines; None stands for a line too long to read."""
        for number, line in enumerate(lines, 1):
            self.lines += 1
            entry = None if line is None else parse_line(line)
            if entry is not None:
                self.add(entry)
            elif line is None or line.strip():  # blank lines are not worth a warning
                self.skipped += 1
                if self.first_skipped is None:
                    self.first_skipped = f"{source}:{number}"


# -- reading ------------------------------------------------------------------------------

class _LineSource(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def read_lines(stream: _LineSource, limit: int = MAX_LINE) -> Iterator[str | None]:
    """Each line as Latin-1 text (one character per byte, so nothing fails to decode),
    or None for a line longer than `limit`, which is skipped without being held whole."""
    while raw := stream.readline(limit):
        if len(raw) == limit and not raw.endswith(b"\n"):
            while (rest := stream.readline(limit)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield raw.decode("latin-1")


def read_log(path: str, stats: Stats) -> None:
    """Count one log file into `stats`; gzip-compressed (rotated) logs too. Raises OSError."""
    with open(path, "rb") as raw:
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as unzipped:
                stats.feed(read_lines(unzipped), path)
                return
        raw.seek(0)
        stats.feed(read_lines(raw), path)


# -- the report ---------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    requests: int
    bytes: int


@dataclass
class StatusRow:
    status: int
    requests: int
    bytes: int
    requests_pct: float
    bytes_pct: float


@dataclass
class Chart:
    bucket_seconds: int
    start: str | None  # ISO 8601 UTC start of the first bucket
    start_unix: int | None
    counts: list[int] = field(default_factory=list)


@dataclass
class Report:
    """The statistics, as `--json` prints them and the text and HTML renderers show them."""

    files: list[str]
    requests: int
    bytes: int
    first: str | None
    last: str | None
    clients: int
    lines: int
    skipped: int
    first_skipped: str | None
    formats: dict[str, int]
    mean_duration: float | None
    max_duration: float | None
    status: list[StatusRow]
    top_files: list[Row]
    top_clients: list[Row]
    top_404: list[Row]
    timeline: Chart
    top: int
    max_keys: int
    capped: list[str]  # tables that hit max_keys: "paths", "clients", "404 paths"


def build_report(stats: Stats, top: int = 10, files: Iterable[str] = ()) -> Report:
    durations = stats.durations
    return Report(
        files=list(files), requests=stats.requests, bytes=stats.bytes,
        first=iso(stats.first), last=iso(stats.last), clients=len(stats.clients.rows),
        lines=stats.lines, skipped=stats.skipped, first_skipped=stats.first_skipped,
        formats=dict(stats.formats),
        mean_duration=round(stats.duration_sum / durations, 6) if durations else None,
        max_duration=stats.duration_max if durations else None,
        status=_status_rows(stats), top_files=stats.files.top(top),
        top_clients=stats.clients.top(top), top_404=stats.not_found.top(top),
        timeline=_chart(stats), top=top, max_keys=stats.files.cap,
        capped=[name for name, table in (("paths", stats.files), ("clients", stats.clients),
                                         ("404 paths", stats.not_found)) if table.capped])


def _status_rows(stats: Stats) -> list[StatusRow]:
    return [StatusRow(status, requests, nbytes, _pct(requests, stats.requests),
                      _pct(nbytes, stats.bytes))
            for status, (requests, nbytes) in sorted(stats.status.items())]


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def _chart(stats: Stats) -> Chart:
    if stats.first is None or stats.last is None:
        return Chart(60, None, None)
    size, counts = stats.timeline.chart(stats.first, stats.last)
    start = stats.first // size * size
    return Chart(size, iso(start), start, counts)


def iso(seconds: int | None) -> str | None:
    """Unix seconds → `2026-11-26T13:37:01Z`."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):  # a bucket floored below year 1
        return f"@{seconds}"


def human_bytes(n: int) -> str:
    """1536 → `1.5 KiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def bucket_words(seconds: int) -> str:
    """1 → `second`, 60 → `minute`, 300 → `5 minutes`, 7200 → `2 hours`."""
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % length == 0:
            count = seconds // length
            return unit if count == 1 else f"{count} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"


def _bucket_label(chart: Chart, index: int) -> str:
    """The start of bucket `index`: date and time to the second (buckets shorter than a
    minute), to the minute, or the date alone for day buckets."""
    if chart.start_unix is None:
        return "-"
    seconds = chart.start_unix + index * chart.bucket_seconds
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return f"@{seconds}"
    size = chart.bucket_seconds
    return when.strftime("%Y-%m-%d" if size % 86400 == 0 else
                         "%Y-%m-%d %H:%M" if size % 60 == 0 else "%Y-%m-%d %H:%M:%S")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# -- text ---------------------------------------------------------------------------------

def render_text(report: Report, bar: str = "█") -> str:
    """The plain-text report, at most WIDTH columns wide."""
    sections = [_text_totals(report), _text_status(report),
                _text_top(f"Top {report.top} files by requests", "Path", report.top_files),
                _text_top(f"Top {report.top} clients", "Client", report.top_clients),
                _text_top(f"Top {report.top} 404 paths", "Path", report.top_404),
                _text_timeline(report, bar)]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _text_totals(r: Report) -> list[str]:
    title = "Access log statistics: " + ", ".join(r.files)
    lines = [_fit(title, WIDTH), "", "Totals",
             f"  Requests    {r.requests:,}",
             f"  Bytes sent  {human_bytes(r.bytes)} ({r.bytes:,} bytes)",
             f"  First       {_time_words(r.first)}",
             f"  Last        {_time_words(r.last)}",
             f"  Clients     {r.clients:,} distinct",
             f"  Skipped     {_skipped_words(r)}",
             "  Formats     " + _formats_words(r)]
    if r.mean_duration is not None and r.max_duration is not None:
        lines.append(f"  Duration    mean {r.mean_duration:.3f} s, max {r.max_duration:.3f} s")
    lines += [_fit(f"  Note: {_cap_words(r, name)}", WIDTH) for name in r.capped]
    return lines


def _time_words(value: str | None) -> str:
    return "-" if value is None else value.replace("T", " ").replace("Z", " UTC")


def _formats_words(r: Report) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in r.formats.items() if v) or "-"


def _skipped_words(r: Report) -> str:
    words = f"{_plural(r.skipped, 'line')} skipped"
    return words + (f" (the first: {r.first_skipped})" if r.first_skipped else "")


def _cap_words(r: Report, name: str) -> str:
    return (f"more than {r.max_keys:,} distinct {name}: new ones after that are counted in"
            " the totals but not listed")


def _text_status(r: Report) -> list[str]:
    lines = ["By status", f"  {'Status':<8}{'Requests':>12}{'%':>9}{'Bytes':>13}{'%':>9}"]
    lines += [f"  {s.status:<8}{s.requests:>12,}{s.requests_pct:>8.1f}%"
              f"{human_bytes(s.bytes):>13}{s.bytes_pct:>8.1f}%" for s in r.status]
    return lines if r.status else lines + ["  (no requests)"]


def _text_top(title: str, what: str, rows: list[Row]) -> list[str]:
    lines = [title, f"  {'Requests':>10}  {'Bytes':>10}  {what}"]
    lines += [_fit(f"  {row.requests:>10,}  {human_bytes(row.bytes):>10}  {row.key}", WIDTH)
              for row in rows]
    return lines if rows else lines + ["  (none)"]


def _text_timeline(r: Report, bar: str) -> list[str]:
    chart = r.timeline
    lines = [f"Requests per {bucket_words(chart.bucket_seconds)} (UTC)"]
    widest = max(chart.counts, default=0)
    for i, count in enumerate(chart.counts):
        length = math.ceil(BAR_WIDTH * count / widest) if widest else 0
        label = _bucket_label(chart, i)
        lines.append(f"  {label:<16} {count:>10,} {bar * length}".rstrip())  # ≤ 93 columns
    return lines if chart.counts else lines + ["  (no requests)"]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


# -- HTML ---------------------------------------------------------------------------------
#
# One page in the look of every page evserver draws (look.py: www/'s colours and type, light
# and dark): the totals as big numbers, the requests over time as bars with both axes
# labelled, the statuses and the top lists as tables whose numbers carry their unit and
# share. Inline CSS only and no script; every string read from a log (paths, clients, file
# names) is escaped. Charts are drawn in HTML and CSS around an SVG of bars alone, so their
# text is the page's own size at any width.

_CSS = """
.lede{margin:-.4rem 0 1.25rem;color:var(--muted);overflow-wrap:anywhere}
.lede code{color:var(--fg)}
.facts{display:flex;flex-wrap:wrap;gap:.75rem 2.5rem;margin:0 0 1.5rem}
.facts div{min-width:0}
.facts dt{color:var(--muted);font-size:.8rem;font-weight:600;text-transform:uppercase;
letter-spacing:.06em}
.facts dd{margin:0;font-size:1.35rem;font-weight:700;font-variant-numeric:tabular-nums}
.note{margin:0 0 1rem;padding:.5rem 1rem;border-left:4px solid var(--warn);
background:var(--card);border-radius:0 10px 10px 0;color:var(--warn);font-weight:600}
.report{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26rem),1fr));
gap:1rem;margin-bottom:1rem}
.report .wide{grid-column:1/-1}
.card>h2{margin:0 0 .6rem;font-size:1.15rem}
.unit{color:var(--muted);font-weight:400;font-size:.9rem}
.list th,.list th+th{white-space:normal;vertical-align:bottom}
.list td.n{white-space:normal}
.list td.n .pct{display:block}
.num,.pct{white-space:nowrap}
.pct{display:inline-block;min-width:4.4em;color:var(--muted);font-size:.9em}
.bar{display:block;height:.5rem;margin:.2rem 0 .15rem;border-radius:999px;
background:var(--code-bg);overflow:hidden}
.bar>span{display:block;height:100%;min-width:2px;border-radius:inherit;background:var(--accent)}
.bar.ok>span{background:var(--ok)}.bar.warn>span{background:var(--warn)}
.bar.bad>span{background:var(--bad)}.bar.other>span{background:var(--muted)}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-weight:700}
.code.ok{color:var(--ok)}.code.warn{color:var(--warn)}.code.bad{color:var(--bad)}
.code.info{color:var(--accent)}
.status td:first-child{overflow-wrap:normal}
.phrase{color:var(--muted)}
.log td{white-space:normal}
.log td.wrap{overflow-wrap:anywhere}
.chart-note{margin:0;color:var(--muted)}
.plot{display:grid;grid-template-columns:auto minmax(0,1fr);
grid-template-areas:"ytitle ytitle" "yaxis bars" ". xaxis" ". xtitle";column-gap:.6rem;
margin-top:.75rem;font-size:.85rem;color:var(--muted);font-variant-numeric:tabular-nums}
.ytitle{grid-area:ytitle;margin-bottom:.6rem;font-weight:600}
.yaxis{grid-area:yaxis;display:flex;flex-direction:column;justify-content:space-between;
text-align:right;line-height:1.3;margin:-.65em 0}
.plot svg{grid-area:bars;display:block;width:100%;height:13rem;overflow:visible}
.plot .gl{stroke:var(--border);stroke-dasharray:3 4;vector-effect:non-scaling-stroke}
.plot .base{stroke:var(--muted);vector-effect:non-scaling-stroke}
.plot rect{fill:var(--accent)}
.plot rect:hover{opacity:.75}
.xaxis{grid-area:xaxis;position:relative;height:1.75em}
.xaxis.two{height:3em}
.xaxis>span{position:absolute;top:.35em;transform:translateX(-50%);white-space:nowrap;
text-align:center;line-height:1.3}
.xaxis>.first,.xaxis>.last{display:flex;transform:none}
.xaxis>.last{flex-direction:row-reverse}
.xaxis>.first>span,.xaxis>.last>span{margin:0 auto}
.xaxis small{display:block;font-size:1em}
.xtitle{grid-area:xtitle;margin-top:.15rem;font-weight:600}
@media (min-width:40rem){.list td.n{white-space:nowrap}.list td.n .pct{display:inline-block}
.top td.n{width:1%}}
@media (max-width:40rem){.xaxis .minor{display:none}.plot svg{height:10rem}
.facts{gap:.5rem 1.5rem}.facts dd{font-size:1.15rem}}
@media (max-width:30rem){.list th{letter-spacing:.02em}
.list th+th,.list td+td{padding-left:.5rem}}
"""
_NAV = ('<a href="#over-time">Time</a><a href="#status">Status</a><a href="#files">Files</a>'
        '<a href="#clients">Clients</a><a href="#not-found">404s</a>')
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_html(report: Report) -> str:
    """One self-contained page in evserver's look: inline CSS, no script, the chart of
    requests over time with labelled axes, tables whose every number says what it is, and
    every value from the log escaped."""
    names = ", ".join(report.files)
    main = "\n".join([
        "<h1>Access log statistics</h1>", _html_lede(report),
        *(f'<p class="note">Note: {_e(_cap_words(report, name))}.</p>'
          for name in report.capped),
        _html_facts(report),
        '<div class="report">', _html_timeline(report), _html_status(report),
        _html_log(report),
        _html_top("files", f"Top {report.top} files", "by requests", "Path", report.top_files,
                  report, "(none): no request in the log named a file.", wide=True),
        _html_top("clients", f"Top {report.top} clients", "by requests", "Client",
                  report.top_clients, report, "(none): the log holds no requests."),
        _html_top("not-found", f"Top {report.top} 404 paths", "by requests", "Path",
                  report.top_404, report, "(none): no request was answered 404 Not Found."),
        "</div>"])
    footer = (f"Made by <code>evserver stats</code> from {_e(_plural(report.lines, 'line'))}. "
              "Times are UTC; sizes are in binary units (1 KiB = 1,024 bytes).")
    return look.document("Access log statistics" + (f": {names}" if names else ""), main,
                         tag="log report", footer=footer, css=_CSS, nav=_NAV)


def _html_lede(r: Report) -> str:
    files = ", ".join(f"<code>{_e(name)}</code>" for name in r.files)
    if r.first is None or r.last is None:
        when = "no requests"
    else:
        first_day, _, first_time = _time_words(r.first).partition(" ")
        last_day, _, last_time = _time_words(r.last).partition(" ")
        last = [last_time] if first_day == last_day else [last_day, last_time]  # a day once
        when = (f"{_phrases(first_day, first_time.removesuffix(' UTC'))} to "
                f"{_phrases(*last)}")
    return f'<p class="lede">{files + " · " if files else ""}{when}</p>'


def _html_facts(r: Report) -> str:
    facts = [("Requests", f"{r.requests:,}"), ("Bytes sent", _bytes_html(r.bytes)),
             ("Clients", f"{r.clients:,}"), ("Time span", _e(_span_of(r)))]
    if r.mean_duration is not None:
        facts.append(("Mean response time", _e(_latency(r.mean_duration))))
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return f'<dl class="facts">{items}</dl>'


def _span_of(r: Report) -> str:
    """How long the log covers: `< 1 s`, `25 s`, `5 min 12 s`, `3 h 04 min`, `30 d 2 h`."""
    first = iso_time(r.first) if r.first else None
    last = iso_time(r.last) if r.last else None
    if first is None or last is None:
        return "–"
    days, rest = divmod(last - first, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days:,} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s" if seconds else "< 1 s"


def _latency(seconds: float) -> str:
    """A response time: 0.42 ms, 12 ms, 1.5 s; `< 1 ms` for the 0.000 of a log that
    writes milliseconds."""
    if seconds == 0:
        return "< 1 ms"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1000:.2g} ms" if seconds < 0.001 else f"{seconds * 1000:.3g} ms"


def _bytes_html(n: int) -> str:
    """`177.4 MiB`, the exact count in its title."""
    return f'<span class="num" title="{n:,} bytes">{_e(human_bytes(n))}</span>'


def _share(part: int, whole: int) -> str:
    """`94.9 %`; `< 0.1 %` and `> 99.9 %` rather than a rounded 0 or 100."""
    if not whole:
        return "–"
    share = 100 * part / whole
    if 0 < share < 0.05:
        return "&lt; 0.1 %"
    return "&gt; 99.9 %" if 99.95 <= share < 100 else f"{share:.1f} %"


def _bar(part: int, whole: int, cls: str) -> str:
    width = 100 * part / whole if whole else 0
    return (f'<span class="bar {cls}" aria-hidden="true"><span style="width:{width:.1f}%">'
            "</span></span>")


def _requests_cell(n: int, r: Report, cls: str) -> str:
    return (f'<td class="n"><span class="num">{n:,}</span> <span class="pct" title="of all '
            f'{_plural(r.requests, "request")}">{_share(n, r.requests)}</span>'
            f"{_bar(n, r.requests, cls)}</td>")


def _bytes_cell(n: int, r: Report) -> str:
    return (f'<td class="n">{_bytes_html(n)} <span class="pct" title="of all '
            f'{r.bytes:,} bytes sent">{_share(n, r.bytes)}</span></td>')


def _head(*names: str) -> str:
    return "<thead><tr>" + "".join(f'<th scope="col">{name}</th>' for name in names) + \
        "</tr></thead>"


def _section(ident: str, title: str, unit: str, content: str, wide: bool = False) -> str:
    cls = "card wide" if wide else "card"
    return (f'<section class="{cls}" id="{ident}" aria-labelledby="h-{ident}">'
            f'<h2 id="h-{ident}">{_e(title)} <span class="unit">{_e(unit)}</span></h2>\n'
            f"{content}</section>")


def _status_class(status: int) -> str:
    return {2: "ok", 3: "info", 4: "warn", 5: "bad"}.get(status // 100, "other")


def _reason(status: int) -> str:
    """`Not Found` for 404: the status's reason phrase, or nothing."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 499 (nginx), 999: no standard name
        return ""


def _html_status(r: Report) -> str:
    if not r.status:
        return _section("status", "By status", "requests and bytes sent",
                        '<p class="none">(none): the log holds no requests.</p>')
    rows = []
    for s in r.status:
        cls = _status_class(s.status)
        reason = _reason(s.status)
        name = f' <span class="phrase">{_e(reason)}</span>' if reason else ""
        rows.append(f'<tr><td><span class="code {cls}">{s.status}</span>{name}</td>'
                    f"{_requests_cell(s.requests, r, cls)}{_bytes_cell(s.bytes, r)}</tr>")
    table = (f'<table class="list status">{_head("Status", "Requests", "Bytes sent")}'
             f'<tbody>{"".join(rows)}</tbody></table>')
    return _section("status", "By status", "requests and bytes sent", table)


def _html_log(r: Report) -> str:
    def time_row(name: str, value: str | None) -> tuple[str, str, str]:
        day, _, clock = _time_words(value).partition(" ")  # wraps between date and time
        return name, _phrases(day, clock), "time"

    skipped = _e(_plural(r.skipped, "line"))
    if r.first_skipped:
        skipped += f" (the first: {_e(r.first_skipped)})"
    rows = [time_row("First request", r.first), time_row("Last request", r.last),
            ("Lines read", _phrases(_plural(r.lines, "line")), "count"),
            ("Lines skipped", skipped, "wrap"),
            ("Formats", ", ".join(_phrases(f"{name}:", _plural(n, "line"))
                                  for name, n in r.formats.items() if n) or "–", "formats")]
    if r.mean_duration is not None and r.max_duration is not None:
        rows.append(("Response time", _phrases(f"mean {_latency(r.mean_duration)},",
                                               f"max {_latency(r.max_duration)}"), "duration"))
    body = "".join(f'<tr><th scope="row">{name}</th><td class="{cls}">{value}</td></tr>'
                   for name, value, cls in rows)
    return _section("log", "The log", "what was read",
                    f'<table class="kv log"><tbody>{body}</tbody></table>')


def _phrases(*parts: str) -> str:
    """Words that stay together, the line free to wrap between them."""
    return " ".join(f'<span class="num">{_e(part)}</span>' for part in parts)


def _html_top(ident: str, title: str, unit: str, what: str, rows: list[Row], r: Report,
              none: str, wide: bool = False) -> str:
    if not rows:
        return _section(ident, title, unit, f'<p class="none">{_e(none)}</p>', wide)

    def key(text: str) -> str:  # a path wraps after a slash before anywhere else
        return _e(text).replace("/", "/<wbr>") if what == "Path" else _e(text)

    body = "".join(f"<tr><td>{key(row.key)}</td>{_requests_cell(row.requests, r, 'top')}"
                   f"{_bytes_cell(row.bytes, r)}</tr>" for row in rows)
    table = (f'<table class="list top">{_head(what, "Requests", "Bytes sent")}'
             f"<tbody>{body}</tbody></table>")
    return _section(ident, title, unit, table, wide)


# -- the chart of requests over time --

def _nice_top(value: int) -> int:
    """The top of a chart's scale: the smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
    power of ten that is a whole number and at least `value`."""
    power = 1
    while True:
        for step in (10, 15, 20, 25, 30, 40, 50, 60, 80):
            if step * power % 10 == 0 and step * power // 10 >= value:
                return step * power // 10
        power *= 10


def _ticks(n: int) -> list[int]:
    """The bars of `n` the time axis labels: the first, the last, the middle and the
    quarters (fewer when there are few bars)."""
    return sorted({round((n - 1) * k / 4) for k in range(5)})


def _utc_of(seconds: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _day(when: datetime) -> str:
    return f"{_MONTH_NAMES[when.month - 1]} {when.day}"


def _html_timeline(r: Report) -> str:
    """Requests per bucket as bars: the y axis in requests per bucket (0, the middle and a
    round top), the x axis in UTC (bars labelled by when they start), and a sentence of
    the bars, their span and the highest."""
    chart = r.timeline
    size, counts, start = chart.bucket_seconds, chart.counts, chart.start_unix
    per = bucket_words(size)
    title, unit = "Requests over time", f"per {per}, UTC"
    begin = None if start is None else _utc_of(start)
    end = None if start is None else _utc_of(start + len(counts) * size - 1)
    if not counts or begin is None or end is None:
        return _section("over-time", title, unit,
                        '<p class="none">(none): no requests, nothing to chart.</p>', True)
    if len(counts) == 1:
        within = "the same second" if size == 1 else f"one bucket of {per}"
        return _section("over-time", title, unit, (
            f'<p class="none">All {_plural(counts[0], "request")} came within {within}, '
            f"from {_e(_bucket_label(chart, 0))} UTC: nothing to chart over time.</p>"), True)
    days = size % 86400 == 0
    same_day = begin.date() == end.date()

    def when(index: int) -> str:  # a bar's start, unbroken; the time alone within one day
        label = _bucket_label(chart, index)
        return _phrases(label[11:] if same_day and not days else label)

    highest = max(counts)
    note = (f'<p class="chart-note">One bar per {_e(per)}: {len(counts)} bars from '
            f"{when(0)} to {when(len(counts) - 1)} UTC. The highest, "
            f"{_plural(highest, 'request')}, {'on' if days else 'at'} "
            f"{when(counts.index(highest))}.</p>")
    top = _nice_top(highest)
    yaxis = "".join(f"<span>{label}</span>" for label in
                    [f"{top:,}", *([f"{top // 2:,}"] if top % 2 == 0 else []), "0"])
    if days:
        years = sorted({begin.year, end.year})
        xtitle = "date (UTC), " + " to ".join(str(y) for y in years)
    elif same_day:
        xtitle = f"time (UTC) on {begin:%Y-%m-%d}"
    else:
        xtitle = f"time (UTC), {begin:%Y-%m-%d} to {end:%Y-%m-%d}"
    two_lines = not days and not same_day
    plot = (f'<div class="plot"><span class="ytitle">requests per {_e(per)}</span>'
            f'<div class="yaxis" aria-hidden="true">{yaxis}</div>{_bars_svg(chart, top)}'
            f'<div class="xaxis{" two" if two_lines else ""}" aria-hidden="true">'
            f'{_xaxis(chart, days, two_lines)}</div>'
            f'<span class="xtitle">{_e(xtitle)}</span></div>')
    return _section("over-time", title, unit, note + plot, True)


def _bars_svg(chart: Chart, top: int) -> str:
    """The bars alone, stretched to the plot (their text is HTML around them): 10 units
    a bar, 100 high; dashed lines at the top, the middle and the labelled bars."""
    counts = chart.counts
    width, height = 10 * len(counts), 100
    lines = [f'<line class="gl" x1="0" y1="0" x2="{width}" y2="0"/>']
    if top % 2 == 0:
        lines.append(f'<line class="gl" x1="0" y1="50" x2="{width}" y2="50"/>')
    lines += [f'<line class="gl" x1="{10 * i + 5}" y1="0" x2="{10 * i + 5}" y2="{height}"/>'
              for i in _ticks(len(counts))[1:-1]]
    bars = []
    thick = min(8, 10 * len(counts) / 12)  # a few bars are no wider than 1/12 of the plot
    for i, count in enumerate(counts):
        if count:
            tall = max(height * count / top, 0.8)  # a single request still shows
            bars.append(f'<rect x="{10 * i + 5 - thick / 2:g}" y="{height - tall:.2f}" '
                        f'width="{thick:g}" '
                        f'height="{tall:.2f}"><title>{_e(_bucket_label(chart, i))} UTC: '
                        f"{_plural(count, 'request')}</title></rect>")
    per = bucket_words(chart.bucket_seconds)
    label = (f"Bar chart of requests per {per} from {_bucket_label(chart, 0)} to "
             f"{_bucket_label(chart, len(counts) - 1)} UTC; the highest bar is "
             f"{_plural(max(counts), 'request')}")
    return (f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
            f'aria-label="{_e(label)}">{"".join(lines)}{"".join(bars)}'
            f'<line class="base" x1="0" y1="{height}" x2="{width}" y2="{height}"/></svg>')


def _xaxis(chart: Chart, days: bool, two_lines: bool) -> str:
    """The labels under the bars: the middle one centred under its bar, the quarters too on
    a wide screen (class `minor`); the first and the last centred under their bar too when
    it is wide enough, else from the plot's end (a label centred in its bar's slot with
    auto margins, which fall to 0 on the plot's side when the label is wider)."""
    n, start, size = len(chart.counts), chart.start_unix or 0, chart.bucket_seconds
    ticks = _ticks(n)
    middle = round((n - 1) / 2)
    spans = []
    for i in ticks:
        at = _utc_of(start + i * size)
        if at is None:
            continue
        text = _day(at) if days else at.strftime("%H:%M" if size % 60 == 0 else "%H:%M:%S")
        if two_lines:
            text += f"<small>{_day(at)}</small>"
        if i in (0, n - 1):
            cls, place = ("first", "left") if i == 0 else ("last", "right")
            style = f"{place}:0;width:{100 / n:.2f}%"
        else:
            cls, style = "" if i == middle else "minor", f"left:{100 * (i + 0.5) / n:.2f}%"
        spans.append(f'<span class="{cls}" style="{style}"><span>{text}</span></span>')
    return "".join(spans)


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
