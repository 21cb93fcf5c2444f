"""stats.py: parsing the three log formats, aggregation, the time chart, the key cap, output."""
from __future__ import annotations

import gzip
import html
import io
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver import look
from evserver.log import FORMATS
from evserver.tools.logstats import (
    MAX_ROWS,
    Stats,
    Timeline,
    bucket_size,
    bucket_words,
    build_report,
    clean,
    human_bytes,
    parse_line,
    read_lines,
    render_text,
    split_request,
)
from evserver.tools.stats import main
from evserver.tools.statspage import _nice_top, render_html

COMBINED = ('192.168.1.20 - - [26/Nov/2026:13:37:01 +0000] "GET /img/a.png HTTP/1.1" 200 1024 '
            '"http://lan/" "Mozilla/5.0" 0.002')
T0 = 1795700221  # 2026-11-26T13:37:01Z


def json_line(**fields: object) -> str:
    """A line as `--log-format json` writes it, with some fields replaced."""
    obj: dict[str, object] = {
        "time": "2026-11-26T13:37:01Z", "client": "192.168.1.20",
        "request": "GET /img/a.png HTTP/1.1", "method": "GET", "target": "/img/a.png",
        "protocol": "HTTP/1.1", "status": 200, "bytes": 1024, "referer": "http://lan/",
        "user_agent": "Mozilla/5.0", "duration": 0.002}
    obj.update(fields)
    return json.dumps(obj)


def clf(path: str, status: int, size: int, client: str = "10.0.0.1",
        when: str = "26/Nov/2026:13:37:01 +0000") -> str:
    return f'{client} - - [{when}] "GET {path} HTTP/1.1" {status} {size} "-" "ua" 0.001'


def stats_of(lines: list[str], max_keys: int = 100_000) -> Stats:
    stats = Stats(max_keys)
    stats.feed(lines, "test.log")
    return stats


# -- parsing ------------------------------------------------------------------------------

def test_combined_with_duration() -> None:
    """evserver's default line: every field, the time in Unix seconds, the duration."""
    e = parse_line(COMBINED + "\n")
    assert e is not None
    assert (e.fmt, e.time, e.client) == ("combined", T0, "192.168.1.20")
    assert (e.method, e.target, e.protocol) == ("GET", "/img/a.png", "HTTP/1.1")
    assert (e.status, e.bytes, e.referer, e.user_agent) == (200, 1024, "http://lan/",
                                                            "Mozilla/5.0")
    assert e.duration == 0.002


def test_combined_without_duration() -> None:
    """nginx's and Apache's plain combined line (no duration) is combined too."""
    e = parse_line(COMBINED.rsplit(" ", 1)[0])
    assert e is not None
    assert (e.fmt, e.status, e.bytes, e.user_agent, e.duration) == (
        "combined", 200, 1024, "Mozilla/5.0", None)


def test_combined_with_extra_fields() -> None:
    """A custom nginx format that appends fields after the agent still counts."""
    e = parse_line(COMBINED + ' "upstream=10.0.0.9" 17')
    assert e is not None and (e.fmt, e.status, e.duration) == ("combined", 200, 0.002)


def test_common_format() -> None:
    """The common format: no referer, agent or duration; `-` bytes (Apache) is 0."""
    e = parse_line('192.168.1.20 - - [26/Nov/2026:13:37:01 +0000] "GET /a HTTP/1.1" 304 -')
    assert e is not None
    assert (e.fmt, e.target, e.status, e.bytes, e.referer, e.duration) == (
        "common", "/a", 304, 0, "-", None)


def test_time_offset_is_converted_to_utc() -> None:
    """A local time with its offset is the same instant as the UTC one."""
    e = parse_line(COMBINED.replace("13:37:01 +0000", "14:37:01 +0100"))
    assert e is not None and e.time == T0


def test_escaped_quotes_stay_inside_their_field() -> None:
    """`\\x22` (evserver, nginx) and `\\"` (Apache) do not end a quoted field."""
    line = ('1.2.3.4 - - [26/Nov/2026:13:37:01 +0000] "GET /a\\x22b HTTP/1.1" 200 5 '
            '"-" "evil \\" agent\\x22 \\\\" 0.001')
    e = parse_line(line)
    assert e is not None
    assert e.target == "/a\\x22b"
    assert e.user_agent == 'evil \\" agent\\x22 \\\\'
    assert e.status == 200 and e.duration == 0.001


def test_dash_request_line() -> None:
    """`-`: a request that never completed a line has no method or target."""
    e = parse_line('10.0.0.1 - - [26/Nov/2026:13:37:01 +0000] "-" 400 0 "-" "-" 0.000')
    assert e is not None
    assert (e.request, e.method, e.target, e.status, e.user_agent) == ("-", "", "", 400, "-")


@pytest.mark.parametrize(("request_line", "parts"), [
    ("GET /a HTTP/1.1", ("GET", "/a", "HTTP/1.1")), ("GET /a", ("GET", "/a", "")),
    ("GET /a b HTTP/1.1", ("GET", "/a b", "HTTP/1.1")), ("a b c", ("a", "b", "c")),
    ("junk", ("junk", "", "")), ("-", ("", "", ""))])
def test_split_request(request_line: str, parts: tuple[str, str, str]) -> None:
    """The request line's method, target and protocol, as the JSON format splits them."""
    assert split_request(request_line) == parts


def test_json_line() -> None:
    """The JSON format: each key in its field."""
    e = parse_line(json_line())
    assert e is not None
    assert (e.fmt, e.time, e.client, e.target, e.status, e.bytes) == (
        "json", T0, "192.168.1.20", "/img/a.png", 200, 1024)
    assert (e.referer, e.user_agent, e.duration) == ("http://lan/", "Mozilla/5.0", 0.002)


def test_json_missing_values() -> None:
    """Missing values are "": no referer, no duration, no request line."""
    e = parse_line(json_line(request="", method="", target="", protocol="", referer="",
                             user_agent="", duration="", bytes=0, status=408))
    assert e is not None
    assert (e.request, e.target, e.status, e.referer, e.duration) == ("-", "", 408, "-", None)


@pytest.mark.parametrize("line", [
    "", "junk", "GET / HTTP/1.1",
    COMBINED[:60],  # cut off mid-line
    COMBINED.replace("Nov", "Foo"),  # no such month
    COMBINED.replace("26/Nov", "31/Feb"),
    COMBINED.replace(" 200 ", " 20x "),
    COMBINED.replace('"Mozilla/5.0"', '"Mozilla/5.0'),  # unterminated quote
    "[1, 2]", "{", '{"time": 1}', '{"a": ' + "[" * 100_000,  # nested past the recursion limit
    json_line(status="200"), json_line(status=True), json_line(time="yesterday"),
    '{"status": 200}', '{"time": "2026-11-26T13:37:01Z", "status": 200} trailing',
], ids=lambda line: repr(line[:30]))
def test_junk_lines_are_none(line: str) -> None:
    """A line in no known format parses to None, never an exception."""
    assert parse_line(line) is None


def test_control_characters_are_escaped() -> None:
    """Raw bytes in a foreign log (a terminal escape) come out as printable `\\xHH`."""
    e = parse_line(COMBINED.replace("Mozilla/5.0", "\x1b[31mred\x7f\xe9"))
    assert e is not None and e.user_agent == "\\x1B[31mred\\x7F\\xE9"
    j = parse_line(json_line(target="/\u2028\x00"))
    assert j is not None and j.target == "/\\u2028\\x00"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_parse_never_raises_and_output_is_printable(line: str) -> None:
    """Any text: None or an entry whose strings are printable ASCII."""
    e = parse_line(line)
    if e is not None:
        for text in (e.client, e.request, e.target, e.referer, e.user_agent):
            assert clean(text) == text


_REQUEST_BITS = st.sampled_from([b"GET", b"/a", b" ", b'"', b"\\", b"HTTP/1.1", b"\n", b"\xff",
                                 b"-", b"{"])


@given(request=st.binary(max_size=80) | st.lists(_REQUEST_BITS, max_size=8).map(b"".join),
       agent=st.binary(max_size=40),
       status=st.integers(100, 599), size=st.integers(0, 10**12))
@settings(max_examples=200, deadline=None)
def test_evserver_lines_parse_back(request: bytes, agent: bytes, status: int,
                                   size: int) -> None:
    """Whatever bytes a client sends, the line each of evserver's formats writes parses
    back whole, with the same escaped text in every format."""
    entries = {}
    for fmt, write in FORMATS.items():
        line = write("203.0.113.7", T0 + 0.5, request, status, size, b"http://r/", agent, 0.25)
        e = parse_line(line.decode("ascii"))
        assert e is not None, line
        assert (e.fmt, e.time, e.client, e.status, e.bytes) == (fmt, T0, "203.0.113.7",
                                                                status, size)
        entries[fmt] = e
    combined, common, as_json = entries["combined"], entries["common"], entries["json"]
    assert combined.request == common.request == as_json.request
    assert combined.target == common.target == as_json.target
    assert combined.user_agent == as_json.user_agent
    assert combined.duration == as_json.duration == 0.25 and common.duration is None


# -- aggregation --------------------------------------------------------------------------

def test_aggregation_totals_status_and_tops() -> None:
    """Requests, bytes, per-status counts and the top lists, across mixed formats."""
    lines = [clf("/a", 200, 100), clf("/a?x=1", 200, 100, client="10.0.0.2"),
             clf("/b", 200, 50), clf("/missing", 404, 10), clf("/missing", 404, 10),
             clf("/gone", 404, 10), json_line(target="/b", bytes=50, client="10.0.0.3"),
             "not a log line", "",
             '10.0.0.1 - - [26/Nov/2026:13:38:01 +0000] "GET /a HTTP/1.1" 304 0']
    r = build_report(stats_of(lines), top=2, files=["test.log"])
    assert (r.requests, r.bytes, r.clients, r.skipped) == (8, 330, 3, 1)
    assert r.first_skipped == "test.log:8"  # the blank line is not counted
    assert r.formats == {"combined": 6, "common": 1, "json": 1}
    assert [(s.status, s.requests, s.bytes) for s in r.status] == [
        (200, 4, 300), (304, 1, 0), (404, 3, 30)]
    assert r.status[0].requests_pct == 50.0 and r.status[0].bytes_pct == 90.91
    # The query is dropped; two shown (--top 2); a tie in requests goes to more bytes.
    assert [(row.key, row.requests, row.bytes) for row in r.top_files] == [
        ("/a", 3, 200), ("/b", 2, 100)]
    assert [(row.key, row.requests) for row in r.top_404] == [("/missing", 2), ("/gone", 1)]
    assert r.top_clients[0].key == "10.0.0.1" and r.top_clients[0].requests == 6
    assert (r.first, r.last) == ("2026-11-26T13:37:01Z", "2026-11-26T13:38:01Z")
    assert r.mean_duration == pytest.approx(0.008 / 7, abs=1e-6) and r.max_duration == 0.002


def test_dash_request_counts_but_is_no_file() -> None:
    """A `-` request is a request (and its status), but not a file in the top list."""
    r = build_report(stats_of(['10.0.0.1 - - [26/Nov/2026:13:37:01 +0000] "-" 400 0 "-" "-"']))
    assert r.requests == 1 and [s.status for s in r.status] == [400]
    assert r.top_files == []


def test_key_cap() -> None:
    """Past max_keys distinct paths, new ones are not kept, but totals stay exact and the
    report says the cap was hit."""
    lines = [clf(f"/p{i}", 200, 1) for i in range(10)] + [clf("/p0", 200, 1)] * 5
    stats = stats_of(lines, max_keys=3)
    assert len(stats.files.rows) == 3 and stats.files.other == [7, 7]
    r = build_report(stats, files=["x"])
    assert r.requests == 15 and r.bytes == 15
    assert r.top_files[0].key == "/p0" and r.top_files[0].requests == 6  # known keys count on
    assert r.capped == ["paths"] and r.max_keys == 3
    assert "more than 3 distinct paths" in render_text(r)
    assert "more than 3 distinct paths" in render_html(r)
    assert build_report(stats_of(lines, max_keys=10)).capped == []


# -- the time chart -----------------------------------------------------------------------

MIDNIGHT = T0 // 86400 * 86400  # 2026-11-26T00:00:00Z, so spans align to whole units


@pytest.mark.parametrize(("span", "size", "rows"), [
    (0, 1, 1),  # one second
    (1, 1, 2),  # two seconds: per second
    (59, 1, 60),  # a minute: per second
    (119, 2, 60),  # two minutes: per 2 seconds
    (1799, 60, 30),  # half an hour: per minute (not 60 half minutes)
    (3599, 60, 60),  # an hour: per minute
    (3 * 3600, 300, 37),
    (10 * 3600, 900, 41),
    (86399, 3600, 24),  # a day: per hour (not 48 half hours)
    (2 * 86400, 3600, 49),
    (30 * 86400 - 1, 86400, 30),  # 30 days: per day (not 60 half days)
    (365 * 86400, 604800, 53)])
def test_bucket_size_follows_the_span(span: int, size: int, rows: int) -> None:
    """Seconds for a log of a minute, minutes for an hour, hours for a day, days for a
    month: the smallest round bucket that gives at most 60 rows, or the next whole unit
    when it still gives 24."""
    assert bucket_size(MIDNIGHT, MIDNIGHT + span) == size
    assert (MIDNIGHT + span) // size - MIDNIGHT // size + 1 == rows <= MAX_ROWS


@pytest.mark.parametrize(("span", "size"), [
    (59, 1), (60, 2), (3599, 120), (86399, 3600), (29 * 86400, 86400)])
def test_bucket_size_of_a_span_that_starts_mid_bucket(span: int, size: int) -> None:
    """A span that does not start on a whole minute or hour can need one row more: 60 s
    from 13:37:01 are 61 seconds' rows, so 2-second rows."""
    assert bucket_size(T0, T0 + span) == size


@given(first=st.integers(-10**10, 10**10), span=st.integers(0, 10**10),
       resolution=st.sampled_from([1, 60, 3600, 86400, 604800, 6048000]))
def test_bucket_size_property(first: int, span: int, resolution: int) -> None:
    """Any span: at most 60 rows, and a whole number of stored buckets per row."""
    size = bucket_size(first, first + span, resolution)
    assert size % resolution == 0
    assert (first + span) // size - first // size < MAX_ROWS


def test_chart_includes_empty_buckets() -> None:
    """Per-second rows from the first to the last request, quiet seconds as 0; with a
    wider span, per-minute rows the same way."""
    tl = Timeline()
    for t in (T0, T0, T0 + 2, T0 + 5, T0 + 5, T0 + 5):
        tl.add(t)
    assert tl.chart(T0, T0 + 5) == (1, [2, 0, 1, 0, 0, 3])
    tl = Timeline()
    for t in (MIDNIGHT + 1, MIDNIGHT + 59, MIDNIGHT + 120, MIDNIGHT + 3599):
        tl.add(t)
    size, rows = tl.chart(MIDNIGHT + 1, MIDNIGHT + 3599)
    assert size == 60 and len(rows) == 60
    assert rows[:3] == [2, 0, 1] and rows[-1] == 1 and sum(rows) == 4


def test_timeline_coarsens_past_its_cap() -> None:
    """More buckets than the cap: merged into minutes, then hours, counts kept exactly,
    and the chart is still exact at a size the merged buckets divide."""
    times = [T0 + i * 97 for i in range(3000)]  # ~3.4 days, thousands of minutes
    small = Timeline(cap=100)
    for t in times:
        small.add(t)
    assert small.resolution == 3600 and len(small.counts) <= 100
    assert sum(small.counts.values()) == 3000
    size, rows = small.chart(times[0], times[-1])
    assert size == 7200 and len(rows) <= MAX_ROWS
    assert rows == _rebucket(times, size)


def test_timeline_merges_without_changing_the_chart() -> None:
    """Seconds merged into minutes and hours as a bounded timeline fills (in any order,
    as when two logs are read one after the other): never more than its cap, and the
    chart is the one an unbounded timeline draws, count for count."""
    rng = random.Random(5)
    times = [MIDNIGHT + rng.randrange(5 * 86400) for _ in range(20_000)]
    times += [MIDNIGHT + 30] * 50 + [MIDNIGHT + 5 * 86400 - 1]
    rng.shuffle(times)
    bounded, unbounded = Timeline(cap=3600), Timeline(cap=10**9)
    for t in times:
        bounded.add(t)
        unbounded.add(t)
        assert len(bounded.counts) <= 3600
    assert (bounded.resolution, unbounded.resolution) == (3600, 1)
    assert sum(bounded.counts.values()) == len(times)
    chart = bounded.chart(min(times), max(times))
    assert chart == unbounded.chart(min(times), max(times))
    assert chart[0] == 7200 and chart[1] == _rebucket(sorted(times), 7200)


def test_timeline_of_a_short_log_stays_per_second() -> None:
    """A minute of requests is counted per second (no merging), so it charts per second."""
    stats = stats_of([clf("/a", 200, 1, when=f"26/Nov/2026:13:37:{s:02d} +0000")
                      for s in range(0, 60, 3)])
    assert stats.timeline.resolution == 1
    r = build_report(stats)
    assert r.timeline.bucket_seconds == 1 and len(r.timeline.counts) == 58
    assert r.timeline.counts[:4] == [1, 0, 0, 1] and sum(r.timeline.counts) == 20


def _rebucket(times: list[int], size: int) -> list[int]:
    out = [0] * (times[-1] // size - times[0] // size + 1)
    for t in times:
        out[t // size - times[0] // size] += 1
    return out


def test_text_chart_says_its_bucket_and_scales_bars() -> None:
    """Over a day, rows are hours, named in the title; the busiest row is the full bar
    width and the others in proportion."""
    lines = [clf("/a", 200, 1, when="26/Nov/2026:00:00:00 +0000")] * 4 + \
        [clf("/a", 200, 1, when="26/Nov/2026:23:59:00 +0000")] * 2
    text = render_text(build_report(stats_of(lines)))
    assert "Requests per hour (UTC)" in text
    rows = text.split("Requests per hour (UTC)\n")[1].splitlines()
    assert len(rows) == 24
    assert rows[0] == "  2026-11-26 00:00" + " " * 10 + "4 " + "█" * 60
    assert rows[-1].startswith("  2026-11-26 23:00 ")
    assert rows[-1].endswith(" 2 " + "█" * 30) and rows[1].endswith(" 0")
    assert bucket_words(60) == "minute" and bucket_words(7200) == "2 hours"
    assert bucket_words(86400 * 7) == "7 days"
    assert bucket_words(1) == "second" and bucket_words(5) == "5 seconds"


def test_text_chart_per_second() -> None:
    """A short log's text chart has a row per second, labelled to the second, the same
    buckets as the report's (and so the page's) chart."""
    lines = [clf("/a", 200, 1, when=f"26/Nov/2026:13:37:{s:02d} +0000") for s in (1, 1, 4)]
    report = build_report(stats_of(lines))
    text = render_text(report)
    rows = text.split("Requests per second (UTC)\n")[1].splitlines()
    assert rows == ["  2026-11-26 13:37:01          2 " + "█" * 60,
                    "  2026-11-26 13:37:02          0", "  2026-11-26 13:37:03          0",
                    "  2026-11-26 13:37:04          1 " + "█" * 30]
    assert len(rows) == len(report.timeline.counts)


# -- output -------------------------------------------------------------------------------

HOSTILE = "/<script>alert(1)</script>"
# Every element the page is made of: a log value that became markup would add another.
PAGE_TAGS = {"html", "head", "meta", "title", "link", "style", "body", "header", "span", "svg",
             "defs", "lineargradient", "stop", "rect", "circle", "path", "nav", "a", "main",
             "h1", "h2", "p", "code", "dl", "div", "dt", "dd", "section", "table", "thead",
             "tbody", "tr", "th", "td", "line", "small", "footer", "wbr"}


class _Tags(HTMLParser):
    """The start tags, their attributes and the text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def section(page: str, ident: str) -> str:
    """The markup of the report's <section id=ident>."""
    start = page.index('<section class="card', page.index(f'id="{ident}"') - 40)
    return page[start:page.index("</section>", start)]


def text_of(markup: str) -> str:
    """What a reader sees of some markup: the text between its tags."""
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


def page_of(lines: list[str], files: list[str] | None = None, top: int = 10) -> str:
    return render_html(build_report(stats_of(lines), top=top, files=files or ["access.log"]))


def test_html_escapes_hostile_values() -> None:
    """A path, client, agent or file name with markup is shown as text: no `<script` in the
    page, no element beyond the page's own, no event attribute, and the path readable."""
    lines = [clf(HOSTILE, 404, 9), clf(HOSTILE, 404, 9),
             clf("/a\"onmouseover=alert(1)", 200, 1, client='"><svg onload=alert(1)>'),
             json_line(target='/"><img src=x onerror=alert(1)>', client="<b>x</b>"), "junk"]
    stats = Stats()
    stats.feed(lines, "<i>log</i>")  # the first skipped line is named by its file
    page = render_html(build_report(stats, files=["<i>log</i>", "a&b\"c.log"]))
    assert "<script" not in page.lower() and "<img" not in page and "<b>" not in page
    assert "<i>" not in page and "<svg onload" not in page
    assert "/<wbr>&lt;script&gt;alert(1)&lt;/<wbr>script&gt;" in page  # may wrap at a /
    assert "a&amp;b&quot;c.log" in page
    assert "2 lines (the first: &lt;i&gt;log&lt;/i&gt;:3)" in page  # a quote ends a field
    parser = parsed(page)
    assert set(parser.tags) <= PAGE_TAGS
    assert not [name for name, _ in parser.attrs if name.startswith("on")]
    assert HOSTILE in "".join(parser.text)
    assert "http://" not in page.replace("http://lan/", "")  # no external asset


@given(path=st.text(max_size=60), client=st.text(max_size=30), name=st.text(max_size=30))
@settings(max_examples=150, deadline=None)
def test_html_of_any_log_value_is_only_text(path: str, client: str, name: str) -> None:
    """Whatever a path, client or file name holds, the page has only its own elements and
    no event attribute."""
    lines = [json_line(target="/" + path, client=client or "-", status=404),
             json_line(target="/" + path, client=client or "-", time="2026-11-26T13:38:00Z")]
    parser = parsed(page_of(lines, files=[name]))
    assert set(parser.tags) <= PAGE_TAGS
    assert not [a for a, _ in parser.attrs if a.startswith("on")]


def test_html_is_a_page_in_evservers_look() -> None:
    """look.document's page: the shared CSS (light and dark), the header with the logo and
    the tag, a CSP with no script, no script at all, the viewport of a phone."""
    page = page_of([clf("/a", 200, 10)])
    assert page.startswith("<!doctype html>")
    assert look.CSS in page and "prefers-color-scheme:dark" in page
    assert '<span class="tag">log report</span>' in page
    assert f'content="{look.csp()}"' in page and "script-src" not in page
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page
    assert "<title>Access log statistics: access.log</title>" in page
    parser = parsed(page)
    assert "script" not in parser.tags and parser.tags.count("main") == 1
    assert not [a for a, _ in parser.attrs if a.startswith("on")]
    for ident in ("over-time", "status", "log", "files", "clients", "not-found"):
        assert f'<h2 id="h-{ident}">' in section(page, ident)
    for ident in ("over-time", "status", "files", "clients", "not-found"):  # the header's
        assert f'<a href="#{ident}">' in page


def test_html_numbers_say_what_they_are() -> None:
    """Every number has its unit: requests under a Requests heading, bytes in binary units
    with the exact count in a title, shares with %, times in UTC, statuses named."""
    lines = [clf("/a", 200, 1536), clf("/a", 200, 1536), clf("/gone", 404, 1024),
             clf("/b", 304, 0)]
    page = page_of(lines)
    assert "<dt>Requests</dt><dd>4</dd>" in page
    assert '<dt>Bytes sent</dt><dd><span class="num" title="4,096 bytes">4.0 KiB</span>' in page
    assert '<dt>Clients</dt><dd>1</dd>' in page and "<dt>Time span</dt><dd>&lt; 1 s</dd>" in page
    assert "<dt>Mean response time</dt><dd>1 ms</dd>" in page
    status = section(page, "status")
    assert '<th scope="col">Status</th><th scope="col">Requests</th>' \
        '<th scope="col">Bytes sent</th>' in status
    assert '<span class="code ok">200</span> <span class="phrase">OK</span>' in status
    assert '<span class="phrase">Not Modified</span>' in status
    assert '<span class="num">2</span> <span class="pct" title="of all 4 requests">50.0 %' \
        in status
    assert '<span class="num" title="3,072 bytes">3.0 KiB</span> <span class="pct" ' \
        'title="of all 4,096 bytes sent">75.0 %</span>' in status
    assert 'style="width:50.0%"' in status  # the bar of the 200s
    files = section(page, "files")
    assert '<th scope="col">Path</th><th scope="col">Requests</th>' in files
    assert '<span class="num" title="1,024 bytes">1.0 KiB</span>' in files
    log = section(page, "log")
    assert "2026-11-26</span> <span class=\"num\">13:37:01 UTC</span>" in log
    assert "4 lines" in log and "combined:" in log and "mean 1 ms," in log


def test_html_lede_names_the_files_and_the_span() -> None:
    """Under the title: the files read, then from the first request to the last, the date
    once when both are on one day."""
    later = clf("/a", 200, 1, when="26/Nov/2026:14:00:00 +0000")
    lede = re.findall(r'<p class="lede">.*?</p>', page_of([clf("/a", 200, 1), later],
                                                          files=["a.log", "b.log.gz"]))
    assert [text_of(p) for p in lede] == [
        "a.log, b.log.gz · 2026-11-26 13:37:01 to 14:00:00 UTC"]
    next_day = clf("/a", 200, 1, when="27/Nov/2026:01:00:00 +0000")
    lede = re.findall(r'<p class="lede">.*?</p>', page_of([clf("/a", 200, 1), next_day]))
    assert [text_of(p) for p in lede] == [
        "access.log · 2026-11-26 13:37:01 to 2026-11-27 01:00:00 UTC"]


def test_html_shares_are_never_rounded_to_0_or_100() -> None:
    """One request in 3,000 is `< 0.1 %`, the rest `> 99.9 %`, not 0.0 % and 100.0 %."""
    page = page_of([clf("/a", 200, 1)] * 2999 + [clf("/b", 500, 0)])
    assert "&lt; 0.1 %" in page and "&gt; 99.9 %" in page


def test_html_empty_tables_say_none() -> None:
    """A table with no rows is a sentence with (none), never bare headers: no 404s here;
    and in a log with no requests, every section."""
    page = page_of([clf("/a", 200, 1), clf("/b", 200, 1)])
    not_found = section(page, "not-found")
    assert "<table" not in not_found
    assert '<p class="none">(none): no request was answered 404 Not Found.</p>' in not_found
    assert "<table" in section(page, "files")
    empty = page_of([])
    for ident in ("over-time", "status", "files", "clients", "not-found"):
        part = section(empty, ident)
        assert "(none)" in part and "<table" not in part and "<svg" not in part, ident
    assert "<dt>Requests</dt><dd>0</dd>" in empty and "no requests" in empty


def test_html_chart_of_a_minute_per_second() -> None:
    """A log of under a minute: a bar per second with counts in their titles, a y axis
    (requests per second: a round top, its half, 0) and an x axis in UTC, and a sentence
    that says what the bars are and the highest."""
    lines = [clf("/a", 200, 1, when=f"26/Nov/2026:13:37:{s:02d} +0000")
             for s in (10, 10, 10, 11, 30, 30, 59)]
    chart = section(page_of(lines), "over-time")
    assert 'Requests over time <span class="unit">per second, UTC</span>' in chart
    assert ("One bar per second: 50 bars from 13:37:10 to 13:37:59 UTC. The highest, 3 "
            "requests, at 13:37:10.") in text_of(chart)
    assert '<span class="ytitle">requests per second</span>' in chart
    assert '<div class="yaxis" aria-hidden="true"><span>3</span><span>0</span></div>' in chart
    assert chart.count("<rect ") == 4  # the seconds with requests; the others are gaps
    assert "<title>2026-11-26 13:37:10 UTC: 3 requests</title>" in chart
    assert "<title>2026-11-26 13:37:59 UTC: 1 request</title>" in chart
    assert 'viewBox="0 0 500 100"' in chart and 'role="img"' in chart
    assert 'aria-label="Bar chart of requests per second from 2026-11-26 13:37:10 to ' \
        '2026-11-26 13:37:59 UTC; the highest bar is 3 requests"' in chart
    ticks = re.findall(r'<span class="(\w*)" style="([^"]*)"><span>([^<]*)</span>', chart)
    assert ticks == [  # the ends in their bar's slot, the others centred under their bar
        ("first", "left:0;width:2.00%", "13:37:10"), ("minor", "left:25.00%", "13:37:22"),
        ("", "left:49.00%", "13:37:34"), ("minor", "left:75.00%", "13:37:47"),
        ("last", "right:0;width:2.00%", "13:37:59")]
    assert '<span class="xtitle">time (UTC) on 2026-11-26</span>' in chart


def test_html_chart_of_a_month_per_day() -> None:
    """A month: a bar per day, dates on the x axis, the year under it, a round top."""
    lines = [clf("/a", 200, 1, when=f"{d:02d}/Nov/2026:12:00:00 +0000")
             for d in range(1, 31) for _ in range(d)]
    chart = section(page_of(lines), "over-time")
    assert '<span class="unit">per day, UTC</span>' in chart
    assert ("One bar per day: 30 bars from 2026-11-01 to 2026-11-30 UTC. The highest, 30 "
            "requests, on 2026-11-30.") in text_of(chart)
    assert '<span class="ytitle">requests per day</span>' in chart
    assert "<span>30</span><span>15</span><span>0</span>" in chart
    assert chart.count("<rect ") == 30
    assert ">Nov 1</span>" in chart and ">Nov 30</span>" in chart
    assert '<span class="xtitle">date (UTC), 2026</span>' in chart


def test_html_chart_across_days_has_dates_under_the_hours() -> None:
    """Hours across two days: each label is the hour with its date below it."""
    lines = [clf("/a", 200, 1, when="26/Nov/2026:00:00:00 +0000"),
             clf("/a", 200, 1, when="27/Nov/2026:23:00:00 +0000")]
    chart = section(page_of(lines), "over-time")
    assert '<span class="unit">per hour, UTC</span>' in chart
    assert '<div class="xaxis two"' in chart
    assert ">00:00<small>Nov 26</small></span>" in chart
    assert ">23:00<small>Nov 27</small></span>" in chart
    assert "time (UTC), 2026-11-26 to 2026-11-27" in chart


def test_html_chart_of_few_bars_is_no_block() -> None:
    """Three seconds: three slim bars (a twelfth of the plot each, centred in their
    second), not three blocks filling the plot; 60 bars fill 80 % of theirs."""
    lines = [clf("/a", 200, 1, when=f"26/Nov/2026:13:37:{s:02d} +0000") for s in (1, 2, 2, 3)]
    chart = section(page_of(lines), "over-time")
    assert re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', chart) == [
        ("3.75", "2.5"), ("13.75", "2.5"), ("23.75", "2.5")]
    lines = [clf("/a", 200, 1, when=f"26/Nov/2026:13:37:{s:02d} +0000") for s in range(60)]
    chart = section(page_of(lines), "over-time")
    assert chart.count('width="8"') == 60 and '<rect x="591" ' in chart


def test_html_response_time_of_a_log_in_milliseconds() -> None:
    """Durations logged as 0.000 are under a millisecond, not 0 ms."""
    page = page_of([clf("/a", 200, 1).replace(" 0.001", " 0.000")])
    assert "<dt>Mean response time</dt><dd>&lt; 1 ms</dd>" in page
    assert "mean &lt; 1 ms,</span> <span class=\"num\">max &lt; 1 ms</span>" in page


def test_html_chart_of_one_second_is_a_sentence() -> None:
    """Every request in the same second: no one-bar chart, a sentence instead."""
    chart = section(page_of([clf("/a", 200, 1)] * 3), "over-time")
    assert "<svg" not in chart
    assert ("All 3 requests came within the same second, from 2026-11-26 13:37:01 UTC: "
            "nothing to chart over time.") in chart


@pytest.mark.parametrize(("value", "top"), [
    (1, 1), (2, 2), (3, 3), (7, 8), (9, 10), (11, 15), (376, 400), (3244, 4000),
    (33244, 40000), (100_001, 150_000)])
def test_chart_top_is_round(value: int, top: int) -> None:
    assert _nice_top(value) == top


def test_text_fits_100_columns() -> None:
    """A very long path is cut to fit; every line of the text report is ≤ 100 columns."""
    lines = [clf("/" + "x" * 500, 200, 10**12, client="c" * 300),
             clf("/a", 200, 1, when="26/Nov/2026:13:37:30 +0000")]
    text = render_text(build_report(stats_of(lines), files=["y" * 200]))
    assert max(len(line) for line in text.splitlines()) <= 100
    for section_title in ("Totals", "By status", "Top 10 files by requests", "Top 10 clients",
                          "Top 10 404 paths", "Requests per second (UTC)"):
        assert section_title + "\n" in text


def test_empty_log_report() -> None:
    """No requests at all: a report, not an exception."""
    r = build_report(stats_of([]))
    assert r.requests == 0 and r.first is None and r.timeline.counts == []
    assert "(no requests)" in render_text(r) and "(none)" in render_html(r)


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**3, 3 * 1024**5)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 GiB", "3072.0 TiB"]


# -- reading ------------------------------------------------------------------------------

def test_overlong_line_is_skipped_not_held() -> None:
    """A line longer than the limit is one None (skipped); the next line still parses."""
    stream = io.BytesIO(b"x" * 1000 + b"\n" + COMBINED.encode() + b"\n" + b"y" * 10)
    assert [line if line is None else line[:3] for line in read_lines(stream, limit=200)] == [
        None, "192", "yyy"]


def test_main_json_and_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two files, one gzip-compressed (a rotated log), counted together in --json."""
    plain, rotated = tmp_path / "access.log", tmp_path / "access.log.1.gz"
    plain.write_text(COMBINED + "\n")
    with gzip.open(rotated, "wt") as f:
        f.write(clf("/old", 404, 7) + "\n" + json_line() + "\n")
    assert main([str(plain), str(rotated), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["requests"] == 3 and doc["bytes"] == 2055
    assert {s["status"]: s["requests"] for s in doc["status"]} == {200: 2, 404: 1}
    assert doc["top_404"] == [{"key": "/old", "requests": 1, "bytes": 7}]


@pytest.mark.parametrize("args", [
    ["{missing}"], ["{dir}"], ["{log}", "--top", "0"], ["{log}", "--top", "x"], [],
    ["{log}", "--bogus"], ["{log}", "--html", "{dir}/no/such/dir/r.html"], ["{gz}"]])
def test_errors_are_one_line_and_status_2(args: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or unreadable file, a corrupt gzip, bad arguments, an unwritable --html:
    status 2 and one `evserver: error:` line."""
    log = tmp_path / "a.log"
    log.write_text(COMBINED + "\n")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    names = {"missing": tmp_path / "nope.log", "dir": tmp_path, "log": log,
             "gz": tmp_path / "bad.gz"}
    assert main([a.format(**names) for a in args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("evserver: error: ")


def test_one_of_a_kind_is_singular() -> None:
    """`--top 1` reads "Top 1 file", and one byte is "1 byte", in the text and the page."""
    r = build_report(stats_of([COMBINED.replace(" 1024 ", " 1 ")]), top=1, files=["a.log"])
    text, page = render_text(r), render_html(r)
    for words in ("Top 1 file", "Top 1 client", "Top 1 404 path"):
        assert words in text and words in page
    assert "Top 1 files" not in text + page and "Top 1 clients" not in text + page
    assert "(1 byte)" in text and 'title="1 byte"' in page
