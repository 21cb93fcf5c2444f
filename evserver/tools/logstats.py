"""The statistics of access logs: lines parsed, counted and reported, as text or data.

Owns: `parse_line()`, `Stats`, `read_log()`, `build_report()`, `render_text()`. Imports
nothing from evserver. It reads nginx's and Apache's combined/common logs as well as the
three formats evserver writes (combined plus a duration, common, JSON), detected per line.
Files are read as a stream, so memory grows with the distinct paths and clients (each table
capped) and time buckets (capped too), never with the number of lines. Every string read
from a log is made printable ASCII at parse time (and escaped again by whatever draws it):
a log line is attacker-controlled input.
"""
from __future__ import annotations

import functools
import gzip
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

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


def bucket_label(chart: Chart, index: int) -> str:
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


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


# -- text ---------------------------------------------------------------------------------

def render_text(report: Report, bar: str = "█") -> str:
    """The plain-text report, at most WIDTH columns wide."""
    sections = [_text_totals(report), _text_status(report),
                _text_top(f"Top {plural(report.top, 'file')} by requests", "Path",
                          report.top_files),
                _text_top(f"Top {plural(report.top, 'client')}", "Client", report.top_clients),
                _text_top(f"Top {plural(report.top, '404 path')}", "Path", report.top_404),
                _text_timeline(report, bar)]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _text_totals(r: Report) -> list[str]:
    title = "Access log statistics: " + ", ".join(r.files)
    lines = [_fit(title, WIDTH), "", "Totals",
             f"  Requests    {r.requests:,}",
             f"  Bytes sent  {human_bytes(r.bytes)} ({plural(r.bytes, 'byte')})",
             f"  First       {time_words(r.first)}",
             f"  Last        {time_words(r.last)}",
             f"  Clients     {r.clients:,} distinct",
             f"  Skipped     {_skipped_words(r)}",
             "  Formats     " + _formats_words(r)]
    if r.mean_duration is not None and r.max_duration is not None:
        lines.append(f"  Duration    mean {r.mean_duration:.3f} s, max {r.max_duration:.3f} s")
    lines += [_fit(f"  Note: {cap_words(r, name)}", WIDTH) for name in r.capped]
    return lines


def time_words(value: str | None) -> str:
    return "-" if value is None else value.replace("T", " ").replace("Z", " UTC")


def _formats_words(r: Report) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in r.formats.items() if v) or "-"


def _skipped_words(r: Report) -> str:
    words = f"{plural(r.skipped, 'line')} skipped"
    return words + (f" (the first: {r.first_skipped})" if r.first_skipped else "")


def cap_words(r: Report, name: str) -> str:
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
        label = bucket_label(chart, i)
        lines.append(f"  {label:<16} {count:>10,} {bar * length}".rstrip())  # ≤ 93 columns
    return lines if chart.counts else lines + ["  (no requests)"]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
