"""The status page as `render_html` draws it, from snapshots made up here (no sockets).

The charts' rates from the history's samples (a restart's negative difference counts as 0),
the note while there are fewer than 2 samples, the escaping of every value, the groups of
tables, the uptime for a given `now`, and a page that needs nothing from outside: no URL,
no `src`, one script allowed by the page's own policy by its hash.
"""
from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from evserver.metrics import FAMILIES, Counters, Snapshot
from evserver.statuspage import _rates, render_html

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NOW = START + 3725.0  # 1 h 02 min 05 s later
COLLECTING = "collecting… (a sample every 2 s)"
GROUPS = ("Requests", "Traffic", "Latency", "Connections", "Pool", "Caches", "Compression",
          "Security", "Log", "Process", "Live reload")


def page(snapshot: Snapshot, now: float = NOW) -> str:
    return render_html(snapshot, now=now).decode()


def history(*samples: tuple[float, int, int, int]) -> Snapshot:
    return {"history": {"step": 2.0, "samples": [list(sample) for sample in samples]}}


def every_family() -> Snapshot:
    """A value for every family of FAMILIES: one sample of a labelled one, a histogram of
    three requests, 1 for the rest (the start time: START)."""
    snapshot: Snapshot = {}
    for family in FAMILIES:
        if family.kind == "histogram":
            snapshot[family.name] = {"buckets": [{"le": "0.001", "value": 2},
                                                 {"le": "0.01", "value": 3},
                                                 {"le": "+Inf", "value": 3}],
                                     "sum": 0.006, "count": 3}
        elif family.labels:
            snapshot[family.name] = [{**{label: "x" for label in family.labels}, "value": 1}]
        else:
            snapshot[family.name] = 1
    snapshot["process_start_time_seconds"] = START
    return snapshot


def charts(text: str) -> list[str]:
    """The <figure> of each chart, in order: requests, bytes, connections."""
    return re.findall(r'<figure class="chart card" data-chart="\w+">.*?</figure>', text, re.S)


def now_value(figure: str) -> str:
    match = re.search(r'<p class="now"><span class="value">(.*?)</span>', figure)
    assert match, figure
    return match[1]


class Structure(HTMLParser):
    """Every element closed in order (void elements aside); the tags and attributes seen."""

    VOID = {"meta", "link", "br", "line", "polyline", "path", "rect", "circle", "stop"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value) for name, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def structure(text: str) -> Structure:
    parser = Structure()
    parser.feed(text)
    parser.close()
    return parser


# -- the charts --------------------------------------------------------------------------------

def test_rates_are_differences_over_time() -> None:
    """Samples at t=0, 2, 4 with 0, 10, 30 requests: 5 then 10 per second, each at the
    later sample's time."""
    assert _rates([(0.0, 0.0), (2.0, 10.0), (4.0, 30.0)]) == [(2.0, 5.0), (4.0, 10.0)]
    assert _rates([(0.0, 7.0)]) == [] and _rates([]) == []


def test_the_requests_chart_shows_the_last_rate() -> None:
    text = page(history((0, 0, 0, 1), (2, 10, 0, 1), (4, 30, 0, 1)))
    requests, _, _ = charts(text)
    assert now_value(requests) == "10 /s"
    assert 'aria-label="Line chart of requests per second over the last 4 s: now 10 /s, ' \
           'highest 10 /s"' in requests
    assert '<span class="ymax">10 /s</span>' in requests  # the top of its scale
    assert "<span>last 4 s</span>" in requests


def test_a_restart_counts_as_no_change() -> None:
    """A counter that goes back (a worker restarted) gives a rate of 0, not a negative one."""
    assert _rates([(0.0, 100.0), (2.0, 4.0), (4.0, 24.0)]) == [(2.0, 0.0), (4.0, 10.0)]
    text = page(history((0, 100, 9000, 0), (2, 4, 0, 0), (4, 4, 0, 0)))
    requests, sent, _ = charts(text)
    assert now_value(requests) == "0 /s" and now_value(sent) == "0 B/s"
    assert "-" not in re.search(r'points="([^"]*)"', requests)[1]  # type: ignore[index]


def test_bytes_per_second_in_binary_units() -> None:
    text = page(history((0, 0, 0, 0), (2, 1, 4096, 0), (4, 2, 4096 + 3 * 2**21, 3)))
    _, sent, connections = charts(text)
    assert now_value(sent) == "3.00 MiB/s"
    assert '<span class="ymax">5.00 MiB/s</span>' in sent  # a round top in the same unit
    assert now_value(connections) == "3"
    assert "highest 3.00 MiB/s" in sent


def test_each_chart_is_an_svg_that_scales() -> None:
    text = page(history(*((t, t * 3, t * 100, t % 5) for t in range(0, 600, 2))))
    figures = charts(text)
    assert len(figures) == 3
    for figure in figures:
        svg = re.search(r"<svg [^>]*>", figure)
        assert svg, figure
        for attribute in ('viewBox="0 0 300 100"', 'preserveAspectRatio="none"', 'role="img"',
                          'aria-label="Line chart of '):
            assert attribute in svg[0]
        assert "<polyline" in figure and "<path" in figure
        assert "<span>last 10 min</span>" in figure
        points = re.search(r'points="([^"]*)"', figure)
        assert points
        xs = [float(point.split(",")[0]) for point in points[1].split()]
        assert xs[0] == 0 and xs[-1] == 300 and xs == sorted(xs)
    assert text.count('role="img"') == 3


@pytest.mark.parametrize("samples", [(), ((0, 0, 0, 0),)], ids=["none", "one"])
def test_fewer_than_two_samples_say_collecting(samples: tuple[tuple[int, ...], ...]) -> None:
    text = page(history(*samples))  # type: ignore[arg-type]
    assert text.count(COLLECTING) == 3
    assert "<svg" not in text.replace('<svg viewBox="0 0 64 64" aria-hidden="true"', "")
    assert len(charts(text)) == 3  # the cards keep their places


def test_no_history_at_all_says_collecting() -> None:
    assert page({}).count(COLLECTING) == 3


# -- the tables --------------------------------------------------------------------------------

def test_the_empty_snapshot_renders() -> None:
    text = page({})
    assert text.startswith("<!doctype html>")
    assert "<title>evserver status</title>" in text and "<h1>evserver status</h1>" in text
    assert '<a href="?format=json">?format=json</a>' in text
    assert 'class="group card"' not in text  # no family, no group
    assert not structure(text).problems


def test_every_group_heading_appears_when_its_families_are_present() -> None:
    text = page(every_family())
    for title in GROUPS:
        assert re.search(rf'<h2 id="g-[\w-]+">{title}</h2>', text), title
    assert not structure(text).problems


def test_groups_whose_families_are_missing_are_left_out() -> None:
    snapshot = every_family()
    for name in ("live_reload_pages", "live_reload_changes_total", "pool_threads",
                 "pool_threads_busy", "pool_queue_jobs"):
        del snapshot[name]
    text = page(snapshot)
    assert ">Live reload</h2>" not in text and ">Pool</h2>" not in text
    assert ">Caches</h2>" in text
    assert page({"draining": 0}).count('class="group card"') == 0


def test_a_small_snapshot_shows_what_it_has() -> None:
    text = page({"http_requests_total": [{"method": "GET", "code": "200", "value": 7},
                                         {"method": "HEAD", "code": "404", "value": 1}]})
    assert '<span id="requests-total">8</span>' in text
    assert ">Requests</h2>" in text and ">Traffic</h2>" not in text
    assert "87.5 %" in text and "12.5 %" in text  # shares by code and by method


def test_the_numbers_of_the_tables() -> None:
    """The hit ratio from hits and misses, the compression savings, the mean latency and
    the shares under a few bounds, bytes in binary units and exact, closes by reason."""
    text = page({
        "file_cache_hits_total": 3, "file_cache_misses_total": 1,
        "compression_responses_total": 2, "compression_input_bytes_total": 4096,
        "compression_output_bytes_total": 1024,
        "http_request_duration_seconds": {
            "buckets": [{"le": "0.001", "value": 3}, {"le": "0.01", "value": 4},
                        {"le": "0.1", "value": 4}, {"le": "+Inf", "value": 4}],
            "sum": 0.01, "count": 4},
        "http_response_bytes_total": 1536 * 1024,
        "connections_closed_total": [{"reason": "client", "value": 3},
                                     {"reason": "timeout", "value": 1},
                                     {"reason": "reset", "value": 0}],
        "process_resident_memory_bytes": 50 * 2**20,
    })
    assert "File cache hit ratio</th><td>75.0 %" in text
    assert "Saved</th><td>3.00 KiB" in text and "75.0 %" in text
    assert "Mean</th><td>2.5 ms" in text
    assert "50 % within</th><td>1 ms" in text and "99 % within</th><td>10 ms" in text
    # The shares under a few bounds, up to the first that has them all.
    assert "<td>≤ 1 ms</td><td>3</td><td>75.0 %" in text
    assert "<td>≤ 10 ms</td><td>4</td><td>100.0 %" in text and "≤ 100 ms" not in text
    assert "Response bodies</th><td>1.50 MiB" in text
    assert "In bytes</th><td>1,572,864" in text
    assert "Closed, by reason (4)" in text and "None closed for: reset" in text
    assert "Resident memory</th><td>50.0 MiB" in text


def test_a_real_counters_snapshot_renders() -> None:
    counters = Counters()
    counters.count(b"GET", 200, 1234, 0.0002)
    counters.count(b"BREW", 501, 0, 0.02)
    counters.connection_closed("client", 2)
    text = page(counters.snapshot())
    assert '<span id="requests-total">2</span>' in text
    assert ">other<" in text and ">501<" in text
    assert not structure(text).problems


def test_draining_and_workers() -> None:
    assert "draining</span>" in page({"draining": 1, "workers": 4})
    assert "serving</span>" in page({"draining": 0, "workers": 4})
    assert "<dt>Workers</dt><dd>4</dd>" in page({"workers": 4})


# -- uptime -----------------------------------------------------------------------------------

def test_the_uptime_for_a_given_now() -> None:
    text = page({"process_start_time_seconds": START}, now=NOW)
    assert '<span id="uptime">1 h 02 min</span>' in text
    assert "since 2023-11-14 22:13 UTC" in text
    assert "<time>23:15:25 UTC</time>" in text  # when the page was drawn
    assert render_html({"process_start_time_seconds": START}, now=NOW) == \
        render_html({"process_start_time_seconds": START}, now=NOW)


# -- safety -------------------------------------------------------------------------------------

def test_every_value_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    snapshot = every_family()
    snapshot["http_requests_total"] = [{"method": evil, "code": evil, "value": 1}]
    snapshot["connections_closed_total"] = [{"reason": evil, "value": 2},
                                            {"reason": '"><img src=x>', "value": 0}]
    text = page(snapshot)
    assert evil not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x&gt;" in text
    assert text.count("<script>") == 1  # the page's own
    assert not structure(text).problems


def test_malformed_values_do_not_break_the_page() -> None:
    text = page({"http_requests_total": "lots", "connections_open": float("nan"),
                 "http_request_duration_seconds": {"buckets": "x"},
                 "history": {"step": 2, "samples": [[1, 2], "x", [4, 1, 1, None],
                                                    [5, 1, 1, 1], [5, 2, 2, 2]]},
                 "workers": True, "process_start_time_seconds": 1e300})
    assert text.count(COLLECTING) == 3  # two samples at the same time draw nothing
    assert not structure(text).problems


def test_the_page_needs_nothing_from_outside() -> None:
    """No URL of another site, no `src` attribute, no stylesheet or script to fetch; the
    icon is a data: URL, the only url() the logo's own gradient."""
    for snapshot in ({}, every_family()):
        text = page(snapshot)
        assert "http://" not in text and "https://" not in text
        seen = structure(text).attributes
        assert not [a for a in seen if a[1] in ("src", "srcset", "action", "formaction")]
        hrefs = {value for tag, name, value in seen if name == "href"}
        assert hrefs == {"data:,", "?format=json"}, hrefs
        assert re.findall(r"url\(([^)]*)\)", text) == ["#logo-g"]
        assert "@import" not in text


def test_the_only_script_is_allowed_by_its_hash() -> None:
    """The page's Content-Security-Policy runs no script but its own (by its SHA-256), lets
    it fetch only this server, and loads nothing from elsewhere."""
    text = page(every_family())
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    assert csp, "no policy"
    assert f"script-src 'sha256-{digest}'" in csp[1]
    assert "default-src 'none'" in csp[1] and "connect-src 'self'" in csp[1]


def test_the_page_updates_itself_and_works_without_script() -> None:
    """The script fetches the page every 2 s as HTML, parses it and swaps in its <main>,
    pausing while hidden and saying when the server cannot be reached; without script the
    page refreshes itself every 10 s."""
    text = page({})
    script = re.search(r"<script>(.*?)</script>", text, re.S)
    assert script
    for part in ('fetch(location.pathname', 'Accept: "text/html"', 'cache: "no-store"',
                 "new DOMParser()", 'querySelector("main")', "replaceChildren",
                 "document.hidden", "setTimeout(tick, 2000)", 'getElementById("offline")'):
        assert part in script[1], part
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in text
    assert re.search(r'<p id="offline"[^>]* hidden>Server unreachable, retrying…</p>', text)
    head = text[:text.index("<main")]
    assert "<link rel=\"icon\" href=\"data:,\">" in head
    assert text.count('<main id="main">') == 1 and 'prefers-color-scheme:dark' in text
