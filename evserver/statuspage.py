"""The status page drawn (`--status-path`): one self-contained page of the metrics.

Owns: `render_html()`: inline CSS (the colours and fonts of www/), three inline SVG charts
of the history, tables of the numbers, and a small script that fetches the page again every
HISTORY_STEP seconds and swaps in its <main>. Imports `metrics`, `status`.
"""
from __future__ import annotations

import base64
import hashlib
import html
import math
import time
from collections.abc import Callable, Sequence
from itertools import pairwise

from .look import bar, csp, document, duration, share
from .metrics import Snapshot, compression_summary, total
from .status import HISTORY_SAMPLES, HISTORY_STEP

# -- the page -----------------------------------------------------------------------------------
#
# One self-contained document: inline CSS (the colours and fonts of www/), three inline SVG
# charts of the history, tables of the numbers, and a small script that fetches the page
# again every HISTORY_STEP seconds and swaps in its <main>: one renderer, this one.

def render_html(snapshot: Snapshot, now: float | None = None) -> bytes:
    """The status page: uptime and state, three charts of the last minutes (requests and
    bytes per second, connections open), then the numbers grouped in tables. Every value
    taken from the snapshot is escaped; families the snapshot lacks are left out. `now`
    (seconds since the epoch, the clock's by default) is when the page is drawn: the uptime
    runs to it."""
    if now is None:
        now = time.time()
    parts = [
        '<h1>evserver status</h1>',
        _facts(snapshot, now),
        _charts(snapshot),
        '<div class="groups">',
        *(group for build in _GROUPS if (group := build(snapshot))),
        '</div>',
        '<p class="json-link">The same data as JSON: <a href="?format=json">?format=json</a>'
        '</p>',
    ]
    main = "\n".join(part for part in parts if part)
    return document("evserver status", main, tag="status", footer=_FOOTER, css=_CSS, nav=_NAV,
                    policy=_CSP, head=_NO_SCRIPT, before_main=_OFFLINE,
                    after_main=f"<script>{_SCRIPT}</script>\n").encode()


# -- numbers as text ----------------------------------------------------------------------------

def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return number if math.isfinite(number) else None  # NaN, infinity: as if absent


def _value(snapshot: Snapshot, name: str) -> float | None:
    return _number(snapshot.get(name))


def _labelled(snapshot: Snapshot, name: str) -> list[dict[str, object]]:
    value = snapshot.get(name)
    if not isinstance(value, list):
        return []
    return [sample for sample in value
            if isinstance(sample, dict) and _number(sample.get("value")) is not None]


def _count(value: float) -> str:
    """A count: 1,234 (a fraction kept to two places)."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _byte_unit(value: float) -> tuple[float, str]:
    """The binary unit for `value` bytes: its size and name."""
    size, index = 1.0, 0
    while abs(value) >= size * 1024 and index < len(_BYTE_UNITS) - 1:
        size, index = size * 1024, index + 1
    return size, _BYTE_UNITS[index]


def _bytes(value: float) -> str:
    """1.50 MiB, 12.3 KiB, 999 B: three figures at most."""
    size, unit = _byte_unit(value)
    if size == 1:
        return f"{value:,.0f} B"
    scaled = value / size
    return f"{scaled:.2f} {unit}" if abs(scaled) < 10 else (
        f"{scaled:.1f} {unit}" if abs(scaled) < 100 else f"{scaled:.0f} {unit}")


def _rate(value: float) -> str:
    """Requests per second: 0, 0.5, 12.5, 1,234."""
    if value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 1 else (
        f"{value:.1f}" if value < 100 else f"{value:,.0f}")


def _span(seconds: float) -> str:
    """What a chart covers: 46 s, 3 min, 10 min."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _latency(seconds: float) -> str:
    """A duration of a request: 0.42 ms, 12 ms, 1.5 s."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1000:.2g} ms" if seconds < 0.001 else f"{seconds * 1000:.3g} ms"


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _nice_bytes(value: float) -> float:
    """A round top for a chart of bytes: a nice number of its own binary unit."""
    size, _ = _byte_unit(value)
    return _nice(value / size) * size


def _utc(when: float, form: str) -> str:
    try:
        return time.strftime(form, time.gmtime(when))
    except (OverflowError, OSError, ValueError):
        return "?"


# -- the top: uptime, workers, state ----------------------------------------------------------

def _facts(snapshot: Snapshot, now: float) -> str:
    facts: list[tuple[str, str]] = []
    started = _value(snapshot, "process_start_time_seconds")
    if started is not None:
        facts.append(("Uptime", f'<span id="uptime">{html.escape(duration(now - started))}'
                                f'</span> <span class="muted">since '
                                f'{html.escape(_utc(started, "%Y-%m-%d %H:%M UTC"))}</span>'))
    workers = _value(snapshot, "workers")
    if workers is not None:
        facts.append(("Workers", html.escape(_count(workers))))
    draining = _value(snapshot, "draining")
    if draining is not None:
        facts.append(("State", '<span class="badge bad">draining</span>' if draining >= 1
                      else '<span class="badge ok">serving</span>'))
    facts.append(("Updated", f'<time>{html.escape(_utc(now, "%H:%M:%S UTC"))}</time>'))
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return f'<dl class="facts">{items}</dl>'


# -- the charts ---------------------------------------------------------------------------------

Point = tuple[float, float]  # (wall time, value)


def _history(snapshot: Snapshot) -> tuple[float, list[tuple[float, float, float, float]]]:
    """The history's step and its well-formed samples, oldest first."""
    history = snapshot.get("history")
    if not isinstance(history, dict):
        return HISTORY_STEP, []
    step = _number(history.get("step")) or HISTORY_STEP
    samples = []
    raw = history.get("samples")
    for sample in raw if isinstance(raw, list) else []:
        if isinstance(sample, (list, tuple)) and len(sample) >= 4:
            values = [_number(v) for v in sample[:4]]
            if all(v is not None for v in values):
                when, requests, body_bytes, connections = (float(v or 0) for v in values)
                samples.append((when, requests, body_bytes, connections))
    samples.sort(key=lambda sample: sample[0])
    return step, samples


def _rates(points: list[Point]) -> list[Point]:
    """Per second, between consecutive samples of a counter, each at the later sample's
    time; a counter that went back (a restart) counts as no change."""
    rates = []
    for (t0, v0), (t1, v1) in pairwise(points):
        if t1 > t0:
            rates.append((t1, max(0.0, v1 - v0) / (t1 - t0)))
    return rates


_W, _H = 300.0, 100.0  # the charts' viewBox


def _chart(key: str, title: str, unit: str, subject: str, step: float, times: list[float],
           points: list[Point], text: Callable[[float], str],
           top: Callable[[float], float], interval: bool) -> str:
    """One chart card: its title and unit, the current value, the line over the time the
    samples cover, the top of its scale; a note while there are fewer than 2 samples.
    `interval`: each point is a rate over the interval that ends at its time (drawn at the
    interval's middle, and carried flat to both ends)."""
    head = (f'<figcaption class="chart-head"><h2>{html.escape(title)} '
            f'<span class="unit">{html.escape(unit)}</span></h2>')
    if len(times) < 2 or times[-1] <= times[0] or not points:
        return (f'<figure class="chart card" data-chart="{key}">{head}'
                '<p class="now"><span class="value">–</span></p></figcaption>'
                f'<p class="collecting">collecting… (a sample every {_span(step)})</p>'
                '</figure>')
    start, end = times[0], times[-1]
    points = [(when, max(0.0, value)) for when, value in points]
    current = points[-1][1]
    highest = max(value for _, value in points)
    scale = top(highest)

    def x(when: float) -> float:
        return (when - start) / (end - start) * _W

    def y(value: float) -> float:
        return _H - value / scale * _H

    if interval:
        previous = [start] + [when for when, _ in points[:-1]]
        drawn = [((p + when) / 2, value) for p, (when, value) in zip(previous, points, strict=True)]
        drawn = [(start, points[0][1]), *drawn, (end, points[-1][1])]
    else:
        drawn = points
    line = " ".join(f"{x(when):.1f},{y(value):.1f}" for when, value in drawn)
    area = f"M{x(drawn[0][0]):.1f},{_H:.0f} L{line} L{x(drawn[-1][0]):.1f},{_H:.0f} Z"
    span = _span(end - start)
    label = (f"Line chart of {subject} over the last {span}: now {text(current)}, "
             f"highest {text(highest)}")
    return (
        f'<figure class="chart card" data-chart="{key}">{head}'
        f'<p class="now"><span class="value">{html.escape(text(current))}</span></p>'
        '</figcaption>'
        f'<div class="plot"><span class="ymax">{html.escape(text(scale))}</span>'
        f'<svg viewBox="0 0 {_W:.0f} {_H:.0f}" preserveAspectRatio="none" role="img" '
        f'aria-label="{html.escape(label)}">'
        f'<line class="grid" x1="0" y1="0" x2="{_W:.0f}" y2="0"/>'
        f'<line class="grid" x1="0" y1="{_H / 2:.0f}" x2="{_W:.0f}" y2="{_H / 2:.0f}"/>'
        f'<line class="base" x1="0" y1="{_H:.0f}" x2="{_W:.0f}" y2="{_H:.0f}"/>'
        f'<path class="area" d="{area}"/>'
        f'<polyline class="line" points="{line}"/></svg>'
        f'<div class="xaxis"><span>last {html.escape(span)}</span><span>now</span></div>'
        '</div></figure>')


def _charts(snapshot: Snapshot) -> str:
    step, samples = _history(snapshot)
    times = [sample[0] for sample in samples]
    requests = _rates([(sample[0], sample[1]) for sample in samples])
    sent = _rates([(sample[0], sample[2]) for sample in samples])
    open_now = [(sample[0], sample[3]) for sample in samples]
    charts = [
        _chart("requests", "Requests", "per second", "requests per second", step, times,
               requests, lambda v: f"{_rate(v)} /s", _nice, True),
        _chart("bytes", "Bytes sent", "per second", "response bytes sent per second", step,
               times, sent, lambda v: f"{_bytes(v)}/s", _nice_bytes, True),
        _chart("connections", "Connections open", "now", "connections open", step, times,
               open_now, _count, lambda v: _nice(max(v, 1)), False),
    ]
    return '<div class="charts">' + "".join(charts) + "</div>"


# -- the tables ---------------------------------------------------------------------------------

Row = tuple[str, str]  # (name, value as HTML)


def _rows_of(snapshot: Snapshot, spec: list[tuple[str, str, Callable[[float], str]]]) -> list[Row]:
    """A row for each metric of `spec` (name, its label, its format) the snapshot has."""
    rows = []
    for name, label, text in spec:
        value = _value(snapshot, name)
        if value is not None:
            rows.append((label, html.escape(text(value))))
    return rows


def _table(rows: list[Row], ident: str = "") -> str:
    body = "".join(f"<tr><th scope=\"row\">{html.escape(name)}</th><td>{value}</td></tr>"
                   for name, value in rows)
    return f'<table class="kv"{ident}><tbody>{body}</tbody></table>'


def _group(title: str, *blocks: str) -> str:
    content = "".join(block for block in blocks if block)
    if not content:
        return ""
    key = title.lower().replace(" ", "-")
    return (f'<section class="group card" aria-labelledby="g-{key}">'
            f'<h2 id="g-{key}">{html.escape(title)}</h2>{content}</section>')


def _subtable(caption: str, head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    if not rows:
        return ""
    th = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return (f'<table class="list"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")


def _code_class(code: str) -> str:
    return {"2": "ok", "3": "", "4": "warn", "5": "bad"}.get(code[:1], "")


def _requests(snapshot: Snapshot) -> str:
    samples = _labelled(snapshot, "http_requests_total")
    if "http_requests_total" not in snapshot:
        return ""
    requests = sum(_number(s["value"]) or 0 for s in samples)
    by_code: dict[str, float] = {}
    by_method: dict[str, float] = {}
    for sample in samples:
        n = _number(sample["value"]) or 0
        code, method = str(sample.get("code", "?")), str(sample.get("method", "?"))
        by_code[code] = by_code.get(code, 0) + n
        by_method[method] = by_method.get(method, 0) + n
    rows = [("Total", f'<span id="requests-total">{_count(requests)}</span>')]
    rows += _rows_of(snapshot, [("http_keepalive_requests_total",
                                 "On a reused connection", _count)])
    codes = [(f'<span class="code {_code_class(code)}">{html.escape(code)}</span>',
              _count(n), share(n, requests) + bar(n, requests))
             for code, n in sorted(by_code.items()) if n]
    methods = [(html.escape(method), _count(n), share(n, requests) + bar(n, requests))
               for method, n in sorted(by_method.items(), key=lambda item: -item[1]) if n]
    return _group("Requests", _table(rows),
                  _subtable("By status code", ("Code", "Requests", "Share"), codes),
                  _subtable("By method", ("Method", "Requests", "Share"), methods))


def _traffic(snapshot: Snapshot) -> str:
    sent = _value(snapshot, "http_response_bytes_total")
    if sent is None:
        return ""
    rows = [("Response bodies", html.escape(_bytes(sent))),
            ("In bytes", html.escape(_count(sent)))]
    requests = total(snapshot, "http_requests_total")
    if requests:
        rows.append(("Mean per request", html.escape(_bytes(sent / requests))))
    return _group("Traffic", _table(rows))


_LATENCY_BOUNDS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _latency_group(snapshot: Snapshot) -> str:
    histogram = snapshot.get("http_request_duration_seconds")
    if not isinstance(histogram, dict):
        return ""
    count = _number(histogram.get("count")) or 0
    duration = _number(histogram.get("sum")) or 0
    buckets: list[tuple[float, float]] = []
    raw = histogram.get("buckets")
    for bucket in raw if isinstance(raw, list) else []:
        if isinstance(bucket, dict):
            try:
                bound = float(str(bucket.get("le")))
            except ValueError:
                continue
            n = _number(bucket.get("value"))
            if n is not None:
                buckets.append((bound, n))
    buckets.sort()
    rows: list[Row] = [("Requests timed", html.escape(_count(count)))]
    if count:
        rows.append(("Mean", html.escape(_latency(duration / count))))
        for label, q in (("50 % within", 0.5), ("99 % within", 0.99)):
            bound = next((b for b, n in buckets if n >= q * count), math.inf)
            rows.append((label, html.escape(_latency(bound)) if bound != math.inf
                         else f"over {html.escape(_latency(buckets[-2][0]))}"
                         if len(buckets) > 1 else "–"))
    shares: list[tuple[str, str, str]] = []
    for bound, n in buckets if count else []:
        if bound in _LATENCY_BOUNDS:  # a few of the bounds, up to the first that has all
            shares.append((f"≤ {html.escape(_latency(bound))}", _count(n),
                           share(n, count) + bar(n, count)))
            if n >= count:
                break
    return _group("Latency", _table(rows),
                  _subtable("Answered within", ("Time", "Requests", "Share"), shares))


def _connections(snapshot: Snapshot) -> str:
    rows = _rows_of(snapshot, [("connections_open", "Open", _count),
                               ("connections_idle", "Idle", _count),
                               ("connections_accepted_total", "Accepted", _count),
                               ("http_keepalive_requests_total", "Keep-alive reuse", _count)])
    closed = _labelled(snapshot, "connections_closed_total")
    closes = sum(_number(s["value"]) or 0 for s in closed)
    by_reason = [(str(s.get("reason", "?")), _number(s["value"]) or 0) for s in closed]
    reasons = [(html.escape(reason), _count(n), share(n, closes) + bar(n, closes))
               for reason, n in sorted(by_reason, key=lambda item: -item[1]) if n]
    never = [reason for reason, n in by_reason if not n]
    note = (f'<p class="none">None closed for: {html.escape(", ".join(never))}</p>'
            if never and closes else '<p class="none">None closed yet.</p>' if closed else "")
    return _group("Connections", _table(rows) if rows else "",
                  _subtable(f"Closed, by reason ({_count(closes)})",
                            ("Reason", "Closed", "Share"), reasons), note)


def _pool(snapshot: Snapshot) -> str:
    return _group("Pool", _table(_rows_of(snapshot, [
        ("pool_threads", "Threads", _count), ("pool_threads_busy", "Busy", _count),
        ("pool_queue_jobs", "Queued", _count)])) if any(
        name in snapshot for name in ("pool_threads", "pool_threads_busy", "pool_queue_jobs"))
        else "")


def _caches(snapshot: Snapshot) -> str:
    rows: list[Row] = []
    hits, misses = _value(snapshot, "file_cache_hits_total"), _value(
        snapshot, "file_cache_misses_total")
    if hits is not None and misses is not None:
        rows.append(("File cache hit ratio", (
            f"{share(hits, hits + misses)}{bar(hits, hits + misses)}")
            if hits + misses else "– (no lookups yet)"))
    rows += _rows_of(snapshot, [
        ("file_cache_hits_total", "Hits", _count),
        ("file_cache_misses_total", "Misses", _count),
        ("file_cache_entries", "Entries", _count),
        ("file_cache_bytes", "Bytes in memory", _bytes),
        ("file_cache_evictions_total", "Evictions", _count),
        ("open_file_cache_hits_total", "Open-file hits", _count),
        ("open_file_cache_files", "Files kept open", _count),
        ("encoded_cache_entries", "Encoded variants", _count),
        ("encoded_cache_bytes", "Encoded bytes", _bytes)])
    return _group("Caches", _table(rows) if rows else "")


def _compression(snapshot: Snapshot) -> str:
    if not any(name in snapshot for name in (
            "compression_responses_total", "compression_input_bytes_total",
            "compression_output_bytes_total")):
        return ""
    summary = compression_summary(snapshot)
    responses, before, after, saved = (_number(summary.get(key)) or 0 for key in (
        "responses", "bytes_before", "bytes_after", "bytes_saved"))
    ratio = _number(summary.get("saved_ratio"))
    rows = [("Encoded responses", html.escape(_count(responses))),
            ("Before", html.escape(_bytes(before))),
            ("After", html.escape(_bytes(after))),
            ("Saved", html.escape(_bytes(saved)))]
    if ratio is not None:
        rows.append(("Saved, share", f"{ratio * 100:.1f} %{bar(ratio, 1)}"))
    return _group("Compression", _table(rows))


def _security(snapshot: Snapshot) -> str:
    rows = _rows_of(snapshot, [
        ("tls_handshakes_total", "TLS handshakes", _count),
        ("tls_handshake_failures_total", "TLS handshake failures", _count),
        ("proxy_preambles_total", "PROXY preambles", _count),
        ("proxy_preamble_failures_total", "PROXY preamble failures", _count),
        ("login_failures_total", "Failed logins", _count)])
    return _group("Security", _table(rows) if rows else "")


def _log(snapshot: Snapshot) -> str:
    rows = _rows_of(snapshot, [("log_lines_total", "Lines written", _count),
                               ("log_lines_dropped_total", "Lines dropped", _count)])
    dropped = _value(snapshot, "log_lines_dropped_total")
    if dropped:
        rows = [(name, f'<span class="code bad">{value}</span>' if name == "Lines dropped"
                 else value) for name, value in rows]
    return _group("Log", _table(rows) if rows else "")


def _process(snapshot: Snapshot) -> str:
    rows = _rows_of(snapshot, [
        ("process_resident_memory_bytes", "Resident memory", _bytes),
        ("process_open_fds", "Open file descriptors", _count),
        ("process_cpu_seconds_total", "CPU time", lambda v: f"{v:,.1f} s")])
    return _group("Process", _table(rows) if rows else "")


def _live_reload(snapshot: Snapshot) -> str:
    if "live_reload_pages" not in snapshot:
        return ""
    return _group("Live reload", _table(_rows_of(snapshot, [
        ("live_reload_pages", "Pages open", _count),
        ("live_reload_changes_total", "Changes told", _count)])))


_GROUPS: tuple[Callable[[Snapshot], str], ...] = (
    _requests, _traffic, _latency_group, _connections, _pool, _caches, _compression,
    _security, _log, _process, _live_reload)


# -- the document around <main> ----------------------------------------------------------------

_CSS = """
:root{--c-requests:#3553c9;--c-bytes:#0f8479;--c-connections:#b4540a}
@media (prefers-color-scheme:dark){:root{--c-requests:#8aa2ff;--c-bytes:#4fd1c5;
--c-connections:#f6ad55}}
.live{display:inline-flex;align-items:center;gap:.4rem;color:var(--muted);font-size:.9rem}
.live::before{content:"";width:.55rem;height:.55rem;border-radius:50%;background:var(--ok)}
.offline{margin:0 auto;max-width:65rem;padding:.5rem 1rem;border-left:4px solid var(--bad);
background:var(--card);border-radius:0 10px 10px 0;color:var(--bad);font-weight:600}
.offline[hidden]{display:none}
.facts .muted{font-size:.95rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:1rem;
margin-bottom:1.5rem}
.chart{margin:0;display:flex;flex-direction:column}
.chart[data-chart=requests]{--c:var(--c-requests)}
.chart[data-chart=bytes]{--c:var(--c-bytes)}
.chart[data-chart=connections]{--c:var(--c-connections)}
.chart-head{display:flex;flex-direction:column}
main .chart h2{margin:0;font-size:1rem}
.now{margin:0;font-size:1.6rem;font-weight:700;font-variant-numeric:tabular-nums;
color:var(--c);white-space:nowrap}
.plot{margin-top:.35rem}
.plot svg{display:block;width:100%;height:6rem;overflow:visible}
.plot .grid{stroke:var(--border);stroke-dasharray:3 4;vector-effect:non-scaling-stroke}
.plot .base{stroke:var(--border);vector-effect:non-scaling-stroke}
.plot .area{fill:var(--c);opacity:.14}
.plot .line{fill:none;stroke:var(--c);stroke-width:2;stroke-linejoin:round;
stroke-linecap:round;vector-effect:non-scaling-stroke}
.ymax,.xaxis{display:block;color:var(--muted);font-size:.78rem;
font-variant-numeric:tabular-nums}
.ymax{line-height:1.3}
.xaxis{display:flex;justify-content:space-between;margin-top:.25rem}
.collecting{flex:1;display:flex;align-items:center;justify-content:center;text-align:center;
min-height:8.5rem;margin:.35rem 0 0;border:1px dashed var(--border);border-radius:10px;
color:var(--muted);font-size:.95rem;padding:.5rem}
.groups{columns:3 19rem;column-gap:1rem}
.group{break-inside:avoid;margin:0 0 1rem;display:inline-block;width:100%}
main .group h2{margin:0 0 .5rem;font-size:1.15rem}
.group caption{margin-top:.9rem}
.list td:last-child{white-space:nowrap;width:40%}
.bar{display:block;height:.3rem;margin-top:.15rem;border-radius:999px;background:var(--code-bg);
overflow:hidden}
.bar>span{display:block;height:100%;border-radius:inherit;background:var(--accent)}
.kv .bar{margin-left:auto;max-width:9rem}
.json-link{color:var(--muted)}
.group .none{font-size:.85rem}
@media (max-width:30rem){.facts{gap:.5rem 1.5rem}}
"""

# Every HISTORY_STEP seconds, while the page is visible: the page again, its <main> swapped
# in. A failed fetch shows the note and tries again at the next tick.
_SCRIPT = """(() => {
  const main = document.querySelector("main"), note = document.getElementById("offline");
  let timer = 0, busy = false;
  const later = () => { clearTimeout(timer); timer = setTimeout(tick, STEP_MS); };
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const r = await fetch(location.pathname,
                            {headers: {Accept: "text/html"}, cache: "no-store"});
      if (!r.ok) throw new Error("HTTP " + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.querySelector("main");
      if (!fresh) throw new Error("no <main>");
      main.replaceChildren(...fresh.childNodes);
      note.hidden = true;
    } catch (err) {
      note.hidden = false;
    } finally {
      busy = false;
    }
    later();
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  later();
})();""".replace("STEP_MS", f"{HISTORY_STEP * 1000:.0f}")

# No script but this one (by its hash), nothing fetched but the page itself.
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = csp(_SCRIPT_HASH, connect=True)

_NAV = f'<span class="live">live, every {HISTORY_STEP:.0f} s</span><a href="?format=json">JSON</a>'
_NO_SCRIPT = '<noscript><meta http-equiv="refresh" content="10"></noscript>\n'
_OFFLINE = ('<p id="offline" class="offline" role="status" hidden>Server unreachable, '
            'retrying…</p>\n')
_FOOTER = (f"evserver · counters since the server started; the charts show requests and bytes "
           f"sent per second and connections open over the last "
           f"{HISTORY_SAMPLES * HISTORY_STEP / 60:.0f} minutes, a sample every "
           f"{HISTORY_STEP:.0f} s")
