"""stats.py: parsing the three log formats, aggregation, the time chart, the key cap, output."""
from __future__ import annotations

import gzip
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver.log import FORMATS
from evserver.tools.stats import (
    MAX_ROWS,
    Stats,
    Timeline,
    bucket_size,
    bucket_words,
    build_report,
    clean,
    human_bytes,
    main,
    parse_line,
    read_lines,
    render_html,
    render_text,
    split_request,
)

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

@pytest.mark.parametrize(("span", "size"), [
    (0, 60), (59 * 60, 60), (60 * 60, 120), (3 * 3600, 300), (10 * 3600, 900),
    (2 * 86400, 3600), (29 * 86400, 43200), (30 * 86400, 86400), (365 * 86400, 604800)])
def test_bucket_size_is_round_and_at_most_60_rows(span: int, size: int) -> None:
    """One row a minute for an hour's log; wider round buckets for longer spans."""
    first = T0 // 86400 * 86400  # midnight, so the spans align
    assert bucket_size(first, first + span) == size
    assert (first + span) // size - first // size < MAX_ROWS


@given(first=st.integers(-10**10, 10**10), span=st.integers(0, 10**10),
       resolution=st.sampled_from([60, 3600, 86400, 604800, 6048000]))
def test_bucket_size_property(first: int, span: int, resolution: int) -> None:
    """Any span: at most 60 rows, and a whole number of stored buckets per row."""
    size = bucket_size(first, first + span, resolution)
    assert size % resolution == 0
    assert (first + span) // size - first // size < MAX_ROWS


def test_chart_includes_empty_minutes() -> None:
    """Per-minute rows from the first to the last request, quiet minutes as 0."""
    tl = Timeline()
    for t in (T0, T0 + 1, T0 + 120, T0 + 125, T0 + 126, T0 + 300):
        tl.add(t)
    assert tl.chart(T0, T0 + 300) == (60, [2, 0, 3, 0, 0, 1])


def test_timeline_coarsens_past_its_cap() -> None:
    """More buckets than the cap: merged into hours, counts kept exactly, and the chart is
    still exact at a size the merged buckets divide."""
    times = [T0 + i * 97 for i in range(3000)]  # ~3.4 days, thousands of minutes
    small = Timeline(cap=100)
    for t in times:
        small.add(t)
    assert small.resolution == 3600 and len(small.counts) <= 100
    assert sum(small.counts.values()) == 3000
    size, rows = small.chart(times[0], times[-1])
    assert size == 7200 and len(rows) <= MAX_ROWS
    assert rows == _rebucket(times, size)


def _rebucket(times: list[int], size: int) -> list[int]:
    out = [0] * (times[-1] // size - times[0] // size + 1)
    for t in times:
        out[t // size - times[0] // size] += 1
    return out


def test_text_chart_says_its_bucket_and_scales_bars() -> None:
    """Over a day, rows are wider buckets, named in the title; the busiest row is the
    full bar width and the others in proportion."""
    lines = [clf("/a", 200, 1, when="26/Nov/2026:00:00:00 +0000")] * 4 + \
        [clf("/a", 200, 1, when="26/Nov/2026:23:59:00 +0000")] * 2
    text = render_text(build_report(stats_of(lines)))
    assert "Requests per 30 minutes (UTC)" in text
    rows = text.split("Requests per 30 minutes (UTC)\n")[1].splitlines()
    assert len(rows) == 48
    assert rows[0] == "  2026-11-26 00:00" + " " * 10 + "4 " + "█" * 60
    assert rows[-1].endswith(" 2 " + "█" * 30) and rows[1].endswith(" 0")
    assert bucket_words(60) == "minute" and bucket_words(7200) == "2 hours"
    assert bucket_words(86400 * 7) == "7 days"


# -- output -------------------------------------------------------------------------------

HOSTILE = "/<script>alert(1)</script>"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_hostile_values() -> None:
    """A path, client or agent with markup is shown as text: no `<script` in the page, no
    script element, and the path readable as text."""
    lines = [clf(HOSTILE, 404, 9), clf(HOSTILE, 404, 9),
             json_line(target='/"><img src=x onerror=alert(1)>', client="<b>x</b>")]
    page = render_html(build_report(stats_of(lines), files=["<i>log</i>"]))
    assert "<script" not in page.lower() and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "i" not in parser.tags
    assert HOSTILE in "".join(parser.text)
    assert parser.tags.count("svg") == 2  # statuses, and requests over time
    assert parser.tags.count("rect") == 2 + 1  # two statuses, one minute
    assert "http://" not in page.replace("http://lan/", "")  # no external asset


def test_text_fits_100_columns() -> None:
    """A very long path is cut to fit; every line of the text report is ≤ 100 columns."""
    lines = [clf("/" + "x" * 500, 200, 10**12, client="c" * 300)]
    text = render_text(build_report(stats_of(lines), files=["y" * 200]))
    assert max(len(line) for line in text.splitlines()) <= 100
    for section in ("Totals", "By status", "Top 10 files by requests", "Top 10 clients",
                    "Top 10 404 paths", "Requests per minute (UTC)"):
        assert section + "\n" in text


def test_empty_log_report() -> None:
    """No requests at all: a report, not an exception."""
    r = build_report(stats_of([]))
    assert r.requests == 0 and r.first is None and r.timeline.counts == []
    assert "(no requests)" in render_text(r) and "<svg" in render_html(r)


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
