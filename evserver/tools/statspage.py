"""The `stats --html` report drawn: one self-contained page of a log's statistics.

Owns: `render_html()`. Imports `look` (the generated pages' one style) and the report's
shape from `tools.logstats`.
"""
from __future__ import annotations

import html
from datetime import UTC, datetime
from http import HTTPStatus

from .. import look
from ..look import bar, duration, share
from .logstats import (
    Chart,
    Report,
    Row,
    bucket_label,
    bucket_words,
    cap_words,
    human_bytes,
    iso_time,
    plural,
    time_words,
)

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
.facts dd{font-size:1.35rem;font-weight:700}
.note{margin:0 0 1rem;padding:.5rem 1rem;border-left:4px solid var(--warn);
background:var(--card);border-radius:0 10px 10px 0;color:var(--warn);font-weight:600}
.report{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26rem),1fr));
gap:1rem;margin-bottom:1rem}
.report .wide{grid-column:1/-1}
.card>h2{margin:0 0 .6rem;font-size:1.15rem}
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
.code{font-weight:700}
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
        *(f'<p class="note">Note: {_e(cap_words(report, name))}.</p>'
          for name in report.capped),
        _html_facts(report),
        '<div class="report">', _html_timeline(report), _html_status(report),
        _html_log(report),
        _html_top("files", f"Top {plural(report.top, 'file')}", "by requests", "Path",
                  report.top_files, report, "(none): no request in the log named a file.",
                  wide=True),
        _html_top("clients", f"Top {plural(report.top, 'client')}", "by requests", "Client",
                  report.top_clients, report, "(none): the log holds no requests."),
        _html_top("not-found", f"Top {plural(report.top, '404 path')}", "by requests", "Path",
                  report.top_404, report, "(none): no request was answered 404 Not Found."),
        "</div>"])
    footer = (f"Made by <code>evserver stats</code> from {_e(plural(report.lines, 'line'))}. "
              "Times are UTC; sizes are in binary units (1 KiB = 1,024 bytes).")
    return look.document("Access log statistics" + (f": {names}" if names else ""), main,
                         tag="log report", footer=footer, css=_CSS, nav=_NAV)


def _html_lede(r: Report) -> str:
    files = ", ".join(f"<code>{_e(name)}</code>" for name in r.files)
    if r.first is None or r.last is None:
        when = "no requests"
    else:
        first_day, _, first_time = time_words(r.first).partition(" ")
        last_day, _, last_time = time_words(r.last).partition(" ")
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
    return duration(last - first) if last > first else "< 1 s"


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
    return f'<span class="num" title="{plural(n, "byte")}">{_e(human_bytes(n))}</span>'


def _requests_cell(n: int, r: Report, cls: str) -> str:
    return (f'<td class="n"><span class="num">{n:,}</span> <span class="pct" title="of all '
            f'{plural(r.requests, "request")}">{share(n, r.requests)}</span>'
            f"{bar(n, r.requests, cls)}</td>")


def _bytes_cell(n: int, r: Report) -> str:
    return (f'<td class="n">{_bytes_html(n)} <span class="pct" title="of all '
            f'{r.bytes:,} bytes sent">{share(n, r.bytes)}</span></td>')


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
        day, _, clock = time_words(value).partition(" ")  # wraps between date and time
        return name, _phrases(day, clock), "time"

    skipped = _e(plural(r.skipped, "line"))
    if r.first_skipped:
        skipped += f" (the first: {_e(r.first_skipped)})"
    rows = [time_row("First request", r.first), time_row("Last request", r.last),
            ("Lines read", _phrases(plural(r.lines, "line")), "count"),
            ("Lines skipped", skipped, "wrap"),
            ("Formats", ", ".join(_phrases(f"{name}:", plural(n, "line"))
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
            f'<p class="none">All {plural(counts[0], "request")} came within {within}, '
            f"from {_e(bucket_label(chart, 0))} UTC: nothing to chart over time.</p>"), True)
    days = size % 86400 == 0
    same_day = begin.date() == end.date()

    def when(index: int) -> str:  # a bar's start, unbroken; the time alone within one day
        label = bucket_label(chart, index)
        return _phrases(label[11:] if same_day and not days else label)

    highest = max(counts)
    note = (f'<p class="chart-note">One bar per {_e(per)}: {len(counts)} bars from '
            f"{when(0)} to {when(len(counts) - 1)} UTC. The highest, "
            f"{plural(highest, 'request')}, {'on' if days else 'at'} "
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
                        f'height="{tall:.2f}"><title>{_e(bucket_label(chart, i))} UTC: '
                        f"{plural(count, 'request')}</title></rect>")
    per = bucket_words(chart.bucket_seconds)
    label = (f"Bar chart of requests per {per} from {bucket_label(chart, 0)} to "
             f"{bucket_label(chart, len(counts) - 1)} UTC; the highest bar is "
             f"{plural(max(counts), 'request')}")
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

