"""End to end: the Prometheus metrics (--metrics-path) and the status JSON (--status-path),
every metric checked against traffic the test sends, over real sockets to 127.0.0.1.

The exposition is read with prometheus_client's parser (and linted by promtool); the counts
are exact wherever the traffic makes them so. A scrape is itself a GET 200, counted once it
is answered: scrape k sees the k - 1 before it, never itself (`Scraper.count` keeps k). With
--workers each worker posts its numbers on a shared board every HISTORY_STEP seconds and
whenever it answers a scrape, so a scrape may see the other workers' numbers that old: those
tests poll. Last, a real Prometheus server (Debian's prometheus) scrapes one process and two
workers; skipped without it (failed under CI, see tests/tools.py).
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import math
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from evserver.board import _HEAD, Board
from evserver.metrics import CLOSE_REASONS, DURATION_BUCKETS, FAMILIES, FAMILY, PREFIX
from evserver.status import HISTORY_STEP
from tests.conftest import RunningServer, ServerProcess, wait_for
from tests.tools import install_line, need_module, need_tool, unavailable
from tests.wire import Reader, Response, connect, dechunk, get, request

pytestmark = pytest.mark.timeout(60)

Start = Callable[..., RunningServer]
StartProcess = Callable[..., ServerProcess]
Key = tuple[str, frozenset[tuple[str, str]]]  # a sample: its full name and its labels
T = TypeVar("T")

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LIVE = frozenset({"live_reload_pages", "live_reload_changes_total"})  # --live-reload only
HELLO = b"hello, world\n"
PAGE = b"".join(b"line %04d: the quick brown fox jumps over the lazy dog\n" % n
                for n in range(80))  # 4.6 KiB of text: worth encoding
LOOPBACK_PREAMBLE = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 80\r\n"  # the client: loopback


# -- a document root of our own (sizes the tests count with) ----------------------------------

@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello.txt (13 bytes), page.txt (text over 1 KiB), two 20 KiB binaries (over the
    `cache_max_entry=8192` the cache tests use), an index page; no 404.html."""
    folder = tmp_path_factory.mktemp("metrics-root")
    (folder / "hello.txt").write_bytes(HELLO)
    (folder / "page.txt").write_bytes(PAGE)
    (folder / "index.html").write_text("<!doctype html><title>m</title><body><p>m</p></body>\n")
    for name in ("big-a.bin", "big-b.bin"):
        (folder / name).write_bytes(os.urandom(20 * 1024))
    return folder


# -- reading the exposition -------------------------------------------------------------------

@dataclass
class Scrape:
    """One answered scrape: the response, the parser's families and every sample."""

    response: Response
    families: dict[str, Any]  # prometheus_client Metric, by the parser's family name
    samples: dict[Key, float]

    @property
    def text(self) -> str:
        return self.response.body.decode()

    @property
    def size(self) -> int:
        return len(self.response.body)

    def value(self, name: str, **labels: str) -> float:
        """The one sample `evserver_<name>` with exactly these labels."""
        return self.samples[(PREFIX + name, frozenset(labels.items()))]

    def total(self, name: str, **labels: str) -> float:
        """The samples of `evserver_<name>` that have these labels (among others), added."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == PREFIX + name and want <= ls)

    def requests(self) -> dict[tuple[str, str], int]:
        """http_requests_total as {(method, code): n}."""
        return {(dict(ls)["method"], dict(ls)["code"]): int(v)
                for (n, ls), v in self.samples.items() if n == PREFIX + "http_requests_total"}

    def closed(self) -> dict[str, int]:
        return {dict(ls)["reason"]: int(v) for (n, ls), v in self.samples.items()
                if n == PREFIX + "connections_closed_total"}


def parse(text: str) -> tuple[dict[str, Any], dict[Key, float]]:
    """The exposition through prometheus_client's own parser; no family or sample twice."""
    need_module("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Any] = {}
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, family.name
        families[family.name] = family
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, key
            samples[key] = sample.value
    return families, samples


def scrape(port: int, *, preamble: bytes = b"", path: str = "/metrics") -> Scrape:
    """GET the metrics on a connection of its own (Connection: close)."""
    with connect(port) as sock:
        sock.sendall(preamble + request(path, close=True))
        resp = Reader(sock).read_response()
    assert resp.status == 200, resp
    assert resp.header("content-type") == METRICS_TYPE
    families, samples = parse(resp.body.decode())
    return Scrape(resp, families, samples)


def settle(fn: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0,
           step: float = 0.1) -> T:
    """Call `fn` until `done` holds for its value (or `timeout` passes); its last value."""
    last: list[T] = []

    def check() -> bool:
        last[:] = [fn()]
        return done(last[0])

    wait_for(check, timeout, step)
    return last[0]


class Scraper:
    """Scrapes one server and counts them: the k-th scrape sees k - 1 of them answered."""

    def __init__(self, port: int, preamble: bytes = b"") -> None:
        self.port = port
        self.preamble = preamble
        self.count = 0
        self.seen: list[Scrape] = []

    def __call__(self) -> Scrape:
        got = scrape(self.port, preamble=self.preamble)
        self.count += 1
        self.seen.append(got)
        return got

    @property
    def before(self) -> int:
        """Scrapes answered before the last one: what the last one counts of them."""
        return self.count - 1

    def until(self, done: Callable[[Scrape], bool], timeout: float = 10.0) -> Scrape:
        return settle(self, done, timeout)


def parser_name(name: str) -> str:
    """The family name prometheus_client gives a metric: a counter's without `_total`."""
    family = FAMILY[name]
    return PREFIX + (name.removesuffix("_total") if family.kind == "counter" else name)


def check_histogram(got: Scrape, count: int) -> None:
    """The duration histogram holds `count` requests: its buckets are ours, cumulative
    (monotone, +Inf = count), and its sum lies within what the buckets allow."""
    name = PREFIX + "http_request_duration_seconds"
    buckets = sorted((float(dict(ls)["le"]), v) for (n, ls), v in got.samples.items()
                     if n == name + "_bucket")
    assert [le for le, _ in buckets] == [*DURATION_BUCKETS, math.inf]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[0] >= 0, counts
    assert counts[-1] == got.value("http_request_duration_seconds_count") == count
    total = got.value("http_request_duration_seconds_sum")
    low = high = 0.0
    previous_le, previous_count = 0.0, 0.0
    for le, n in buckets:  # each request lies in (the bucket below's bound, its bound]
        if n > previous_count:
            low += (n - previous_count) * previous_le
            high += (n - previous_count) * le
        previous_le, previous_count = le, n
    assert low - 1e-5 <= total <= high + 1e-5, (low, total, high)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def free_port() -> int:
    """A port that was free a moment ago (the race until it is bound is accepted)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the families, their HELP and TYPE, the names ---------------------------------------------

def test_metric_names_follow_the_conventions() -> None:
    """snake_case; counters and only counters end in _total; a unit is the last word
    (before _total); no name ends in a suffix a histogram reserves; labels are ours."""
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    for family in FAMILIES:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", family.name), family.name
        assert family.kind in ("counter", "gauge", "histogram"), family
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        base = family.name.removesuffix("_total")
        for unit in ("seconds", "bytes"):
            if unit in base.split("_"):
                assert base.endswith("_" + unit), family.name
        for word in ("milliseconds", "ms", "kb", "kib", "mb", "percent"):
            assert word not in base.split("_"), family.name  # base units only
        assert not base.endswith(("_count", "_sum", "_bucket", "_info")), family.name
        assert family.kind != "histogram" or base.endswith("_seconds"), family.name
        assert family.help.endswith(".") and "\n" not in family.help, family
        assert "le" not in family.labels


@pytest.mark.parametrize("live_reload", [False, True], ids=["plain", "live-reload"])
def test_every_family_is_exposed_with_its_help_and_type(start_server: Start, root: Path,
                                                        live_reload: bool) -> None:
    """Every family of FAMILIES (the live-reload ones only with --live-reload), once, in
    their order, with their HELP and TYPE, samples of the right names and labels; the
    official parser reads it all, and the Content-Type is format 0.0.4's."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", live_reload=live_reload)
    assert get(rs.port, "/hello.txt").status == 200
    got = scrape(rs.port)
    assert got.response.header("content-type") == METRICS_TYPE
    assert got.response.header("cache-control") == "no-store"
    expected = [f for f in FAMILIES if live_reload or f.name not in LIVE]
    assert re.findall(r"^# TYPE (\S+) (\S+)$", got.text, re.M) == [
        (PREFIX + f.name, f.kind) for f in expected]
    assert re.findall(r"^# HELP (\S+) (.*)$", got.text, re.M) == [
        (PREFIX + f.name, f.help) for f in expected]
    assert set(got.families) == {parser_name(f.name) for f in expected}
    for family in expected:
        metric = got.families[parser_name(family.name)]
        assert (metric.type, metric.documentation) == (family.kind, family.help)
        assert metric.samples, f"{family.name} has no sample"
        for sample in metric.samples:
            if family.kind == "histogram":
                suffix = sample.name.removeprefix(PREFIX + family.name)
                assert suffix in ("_bucket", "_sum", "_count"), sample.name
                assert set(sample.labels) == ({"le"} if suffix == "_bucket" else set())
            else:
                assert sample.name == PREFIX + family.name, sample.name
                assert set(sample.labels) == set(family.labels), sample
            assert sample.value >= 0 and math.isfinite(sample.value), sample
    assert sorted(got.closed()) == sorted(CLOSE_REASONS)  # every reason, even at 0
    assert got.requests() == {("GET", "200"): 1}


def test_promtool_finds_nothing_to_lint(start_server: Start, root: Path) -> None:
    """`promtool check metrics` (Prometheus's own linter: names, units, suffixes, help)
    has nothing to say of a scrape with labelled samples of every kind."""
    promtool = Path(need_tool("prometheus")).with_name("promtool")
    if not promtool.exists():
        unavailable(f"needs promtool, which is not installed: {install_line('prometheus')}")
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    for path in ("/hello.txt", "/missing", "/page.txt"):
        get(rs.port, path)
    get(rs.port, "/hello.txt", method="POST")
    text = scrape(rs.port).text
    out = subprocess.run([str(promtool), "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=20)
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b""), out


def test_the_contrib_configuration_is_valid() -> None:
    """contrib/prometheus.yml, the configuration docs/metrics.md points to, passes
    `promtool check config`."""
    promtool = Path(need_tool("prometheus")).with_name("promtool")
    if not promtool.exists():
        unavailable(f"needs promtool, which is not installed: {install_line('prometheus')}")
    config = Path(__file__).resolve().parents[2] / "contrib" / "prometheus.yml"
    out = subprocess.run([str(promtool), "check", "config", str(config)],
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out


# -- against known traffic --------------------------------------------------------------------

def test_requests_bytes_and_durations_match_the_traffic(start_server: Start, root: Path) -> None:
    """GET 200s and 404s, HEADs, an OPTIONS, a POST (405) and an unknown method (501), each
    on a connection of its own: counted by method and code, their bodies' bytes added, each
    one in the histogram, each connection accepted and closed `done`. The scrape counts
    itself only once answered: the next scrape sees it."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    answered: list[Response] = []
    answered += [get(rs.port, f"/hello.txt?n={n}") for n in range(5)]
    answered += [get(rs.port, f"/missing-{n}.txt") for n in range(3)]
    answered += [get(rs.port, "/hello.txt", method="HEAD") for _ in range(2)]
    answered += [get(rs.port, "/hello.txt", method="OPTIONS"),
                 get(rs.port, "/hello.txt", method="POST"),
                 get(rs.port, "/hello.txt", method="BREW")]
    assert [r.status for r in answered] == [200] * 5 + [404] * 3 + [200] * 2 + [204, 405, 501]
    assert all(r.body == HELLO for r in answered[:5]) and answered[8].body == b""
    body_bytes = sum(len(r.body) for r in answered)
    requests = {("GET", "200"): 5, ("GET", "404"): 3, ("HEAD", "200"): 2,
                ("OPTIONS", "204"): 1, ("other", "405"): 1, ("other", "501"): 1}

    first = scrape(rs.port)
    assert first.requests() == requests  # not the scrape itself: it is not answered yet
    assert first.value("http_response_bytes_total") == body_bytes
    check_histogram(first, 13)
    assert first.value("http_keepalive_requests_total") == 0
    assert first.value("connections_accepted_total") == 14  # the scrape's too
    assert first.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "done": 13}
    assert first.value("connections_open") == 1
    assert sum(first.closed().values()) + first.value("connections_open") == 14

    second = scrape(rs.port)
    requests["GET", "200"] += 1
    assert second.requests() == requests
    assert second.value("http_response_bytes_total") == body_bytes + first.size
    check_histogram(second, 14)
    assert second.value("connections_accepted_total") == 15
    assert second.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "done": 14}


def test_keepalive_requests_and_closes_by_the_client(start_server: Start, root: Path) -> None:
    """K requests on one persistent http.client connection are K - 1 keep-alive reuses,
    open or closed; the client's close counts as `client`, a reset as `reset`; every
    accepted connection is open or closed for one reason."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    scraper = Scraper(rs.port)
    conn = http.client.HTTPConnection("127.0.0.1", rs.port, timeout=5)
    for n in range(4):
        conn.request("GET", f"/hello.txt?k={n}")
        reply = conn.getresponse()
        assert (reply.status, reply.read()) == (200, HELLO)
    open_now = scraper()
    assert open_now.value("http_keepalive_requests_total") == 3  # counted while open
    assert open_now.value("connections_open") == 2  # it and the scrape's
    conn.close()
    gone = scraper.until(lambda s: s.closed()["client"] == 1)
    assert gone.closed()["client"] == 1
    assert gone.value("http_keepalive_requests_total") == 3  # and once closed
    assert gone.value("connections_open") == 1

    with connect(rs.port) as sock:  # one answered request, then a reset (RST, no FIN)
        sock.sendall(request("/hello.txt"))
        assert Reader(sock).read_response().body == HELLO
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    last = scraper.until(lambda s: s.closed()["reset"] == 1)
    assert last.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "client": 1, "reset": 1,
                             "done": scraper.before}
    assert last.value("http_keepalive_requests_total") == 3
    accepted = last.value("connections_accepted_total")
    assert accepted == 2 + scraper.count
    assert sum(last.closed().values()) + last.value("connections_open") == accepted
    assert last.requests() == {("GET", "200"): 5 + scraper.before}


def test_idle_connections_time_out(start_server: Start, root: Path) -> None:
    """A connection that never sends (--header-timeout) and one idle after its response
    (--keepalive-timeout) are closed by the server, each counted `timeout`."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", header_timeout=0.5,
                      keepalive_timeout=0.5)
    with connect(rs.port) as silent, connect(rs.port) as kept:
        kept.sendall(request("/hello.txt"))
        reader = Reader(kept)
        assert reader.read_response().body == HELLO
        assert Reader(silent).at_eof(timeout=5) and reader.at_eof(timeout=5)
    got = scrape(rs.port)
    assert got.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "timeout": 2}
    assert got.value("connections_accepted_total") == 3
    assert got.value("connections_open") == 1


def test_the_connection_cap_closes_the_longest_idle(start_server: Start, root: Path) -> None:
    """At --max-connections the connection idle the longest makes room: `limit`."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", max_connections=2)
    with connect(rs.port) as oldest, connect(rs.port) as younger:
        got = scrape(rs.port)  # the third connection: the oldest idle one goes
        assert Reader(oldest).at_eof(timeout=5)
        assert not Reader(younger).at_eof(timeout=0.2)
    assert got.value("connections_accepted_total") == 3
    assert got.value("connections_open") == 2
    assert sum(got.closed().values()) == 1
    assert got.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "limit": 1}  # is: "done": 1


def test_connections_a_stop_closes_count_as_shutdown(start_server: Start, root: Path) -> None:
    """An idle keep-alive connection closed because the server stops: `shutdown`, as a
    scrape still answered during the drain shows."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    with connect(rs.port) as idle, connect(rs.port) as scraping:
        idle.sendall(request("/hello.txt"))
        kept = Reader(idle)
        assert kept.read_response().body == HELLO  # then idle, kept alive
        scraping.sendall(b"GET /metrics HTTP/1.1\r\nHost: test\r\n")
        rs.server.loop.call_soon_threadsafe(rs.server.stop)
        assert wait_for(lambda: rs.server.draining)
        assert kept.at_eof(timeout=5)
        scraping.sendall(b"\r\n")
        resp = Reader(scraping).read_response()
    assert resp.status == 200
    _, samples = parse(resp.body.decode())
    closed = {dict(ls)["reason"]: v for (n, ls), v in samples.items()
              if n == PREFIX + "connections_closed_total"}
    assert sum(closed.values()) == 1
    assert closed == {**dict.fromkeys(CLOSE_REASONS, 0), "shutdown": 1}  # is: "done": 1


def test_file_cache_hits_misses_open_files_and_evictions(start_server: Start,
                                                         root: Path) -> None:
    """Repeated GETs of a small file: one miss, then hits (one entry, its bytes). Files
    over --cache-max-entry are kept open (open hits); a second one evicts the first at
    --cache-max-open 1."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", cache_ttl=60.0,
                      cache_max_entry=8192, cache_max_open=1)
    for _ in range(4):
        assert get(rs.port, "/hello.txt").body == HELLO
    small = scrape(rs.port)
    assert (small.value("file_cache_misses_total"), small.value("file_cache_hits_total")) == (1, 3)
    assert small.value("file_cache_entries") == 1
    assert small.value("file_cache_bytes") == len(HELLO)
    assert small.value("file_cache_evictions_total") == 0
    assert small.value("open_file_cache_files") == 0

    big_a = (root / "big-a.bin").read_bytes()
    assert get(rs.port, "/big-a.bin").body == big_a
    assert get(rs.port, "/big-a.bin").body == big_a
    kept_open = scrape(rs.port)
    assert kept_open.value("file_cache_misses_total") == 2
    assert kept_open.value("file_cache_hits_total") == 4
    assert kept_open.value("open_file_cache_hits_total") == 1
    assert kept_open.value("open_file_cache_files") == 1
    assert kept_open.value("file_cache_entries") == 2
    assert kept_open.value("file_cache_bytes") == len(HELLO)  # open files are not in memory

    assert get(rs.port, "/big-b.bin").body == (root / "big-b.bin").read_bytes()
    evicted = scrape(rs.port)
    assert evicted.value("file_cache_misses_total") == 3
    assert evicted.value("file_cache_evictions_total") == 1
    assert evicted.value("open_file_cache_files") == 1
    assert evicted.value("file_cache_entries") == 2
    assert evicted.value("http_response_bytes_total") == (
        4 * len(HELLO) + 3 * len(big_a) + small.size + kept_open.size)


@pytest.mark.parametrize("cache_bytes", [32 * 1024 * 1024, 8 * 1024],
                         ids=["encoded-once", "encoded-as-sent"])
def test_compression_counts_the_bytes_before_and_after(start_server: Start, root: Path,
                                                       cache_bytes: int) -> None:
    """GETs of a text file over 1 KiB with Accept-Encoding: gzip: each one is a compressed
    response, the file's size before and the body received after. Encoded once and kept
    (default), or encoded as it is sent, chunked (a file over a quarter of
    --compress-cache-bytes). HEAD is no compressed response."""
    rs = start_server(docroot=str(root), metrics_path="/metrics",
                      compress_cache_bytes=cache_bytes)
    bodies = []
    for _ in range(2):
        resp = get(rs.port, "/page.txt", headers="Accept-Encoding: gzip\r\n")
        assert resp.status == 200 and resp.header("content-encoding") == "gzip"
        wire = resp.body
        if resp.header("transfer-encoding") == "chunked":  # read to EOF: the raw chunks
            body, rest = dechunk(wire)
            assert rest == b""
        else:
            body = wire
        assert gzip.decompress(body) == PAGE and len(body) < len(PAGE)
        bodies.append((len(wire), len(body)))
    head = get(rs.port, "/page.txt", headers="Accept-Encoding: gzip\r\n", method="HEAD")
    assert head.status == 200 and head.header("content-encoding") == "gzip"
    got = scrape(rs.port)
    assert got.value("compression_responses_total") == 2
    assert got.value("compression_input_bytes_total") == 2 * len(PAGE)
    assert got.value("compression_output_bytes_total") == sum(n for _, n in bodies)
    assert got.value("http_response_bytes_total") == sum(n for n, _ in bodies)
    if cache_bytes > 4 * len(PAGE):
        assert got.value("encoded_cache_entries") == 1
        assert got.value("encoded_cache_bytes") == bodies[0][1]
        assert bodies[0][0] == bodies[0][1]  # Content-Length: no framing
    else:
        assert got.value("encoded_cache_entries") == 0
        assert got.value("encoded_cache_bytes") == 0
        assert bodies[0][0] > bodies[0][1]  # the chunks' framing is sent, not encoded


def test_log_lines_are_the_lines_of_the_access_log(start_server: Start, root: Path) -> None:
    """log_lines_total counts the lines the writer put in the --log file (flushed every
    0.1 s): once they are written the two agree; none dropped. The durations logged add
    up to the histogram's sum (each logged to the millisecond)."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    for n in range(6):
        get(rs.port, f"/hello.txt?n={n}")
    get(rs.port, "/missing")
    scraper = Scraper(rs.port)
    got = scraper.until(lambda s: s.value("log_lines_total") == 7 + scraper.before)
    logged = 7 + scraper.before
    assert got.value("log_lines_total") == logged
    assert got.value("log_lines_dropped_total") == 0
    # Every line this scrape counted is in the file; its own follows at the next flush.
    assert wait_for(lambda: len(rs.log_path.read_bytes().splitlines()) == logged + 1)
    lines = rs.log_path.read_bytes().splitlines()
    assert [line.split(b'"')[1] for line in lines[:7]] == [
        *(b"GET /hello.txt?n=%d HTTP/1.1" % n for n in range(6)), b"GET /missing HTTP/1.1"]
    durations = [float(line.rsplit(b" ", 1)[1]) for line in lines[:logged]]
    histogram_sum = got.value("http_request_duration_seconds_sum")
    assert abs(sum(durations) - histogram_sum) <= 0.0005 * logged + 1e-5


# -- TLS, PROXY, logins -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("metrics-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([need_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=30)
    return cert, key


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    """Read (within the socket's timeout) until `marker` has come."""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"EOF before {marker!r}: {data[-200:]!r}"
        data += chunk
    return data


def read_to_eof(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def test_tls_handshakes_and_failures(start_server: Start, root: Path,
                                     certificate: tuple[Path, Path]) -> None:
    """HTTPS on --tls-port (the scrapes go to the plain port): each handshake a client
    completes counts; a garbage ClientHello and a client that leaves mid-handshake are
    failures (closed as an error, and as the client's leaving); plain HTTP on the HTTPS
    port is neither."""
    cert, key = certificate
    rs = start_server(docroot=str(root), metrics_path="/metrics", tls_cert=str(cert),
                      tls_key=str(key), tls_port=0)
    tls_port = rs.server.tls_port
    context = ssl.create_default_context(cafile=str(cert))
    for _ in range(2):
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request("/hello.txt", host="localhost", close=True))
            assert Reader(tls).read_response().body == HELLO
    with connect(tls_port) as garbage:  # a handshake record that is no ClientHello
        garbage.sendall(b"\x16\x03\x01\x00\x10" + b"\x00" * 16)
        read_to_eof(garbage)
    with connect(tls_port) as leaving:  # the start of a ClientHello, then FIN
        leaving.sendall(b"\x16\x03\x01\x02\x00\x01")
        leaving.shutdown(socket.SHUT_WR)
        read_to_eof(leaving)
    with connect(tls_port) as plain:
        plain.sendall(request("/hello.txt", close=True))
        assert Reader(plain).read_response().status == 400

    scraper = Scraper(rs.port)
    got = scraper.until(lambda s: s.value("tls_handshake_failures_total") == 2)
    assert got.value("tls_handshakes_total") == 2
    assert got.value("tls_handshake_failures_total") == 2
    closed = got.closed()
    assert (closed["error"], closed["client"]) == (1, 1), closed
    assert got.requests() == {("GET", "200"): 2 + scraper.before, ("GET", "400"): 1}
    assert got.value("connections_accepted_total") == 5 + scraper.count
    assert sum(closed.values()) + got.value("connections_open") == (
        got.value("connections_accepted_total"))


def test_proxy_preambles_and_failures(start_server: Start, root: Path) -> None:
    """--proxy-protocol from a --trusted-proxy: a valid v1 preamble counts (and names the
    client), a malformed one and a missing one are failures, a connection from an address
    not trusted is a failure refused before reading. The scrapes come with a preamble too."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", proxy_protocol=True,
                      trusted_proxies=("127.0.0.1/32",))
    with connect(rs.port) as sock:
        sock.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 56324 80\r\n" + request("/hello.txt",
                                                                               close=True))
        assert Reader(sock).read_response().body == HELLO
    for junk in (b"PROXY TCP4 nonsense\r\n" + request("/hello.txt"), request("/hello.txt")):
        with connect(rs.port) as sock:
            sock.sendall(junk)
            assert read_to_eof(sock) == b""  # closed without a word
    with socket.socket() as stranger:  # 127.0.0.2 is loopback, but not a trusted proxy
        stranger.settimeout(5)
        stranger.bind(("127.0.0.2", 0))
        stranger.connect(("127.0.0.1", rs.port))
        assert read_to_eof(stranger) == b""

    scraper = Scraper(rs.port, preamble=LOOPBACK_PREAMBLE)
    got = scraper.until(lambda s: s.value("proxy_preamble_failures_total") == 3)
    assert got.value("proxy_preamble_failures_total") == 3
    assert got.value("proxy_preambles_total") == 1 + scraper.count  # this scrape's is read
    assert got.closed() == {**dict.fromkeys(CLOSE_REASONS, 0), "error": 2, "refused": 1,
                            "done": 1 + scraper.before}
    assert got.requests() == {("GET", "200"): 1 + scraper.before}
    assert wait_for(lambda: b"192.0.2.7 - - " in rs.log_path.read_bytes())


@pytest.mark.parametrize("stage", ["proxy", "tls"])
def test_an_opening_that_never_ends_is_a_failure(start_server: Start, root: Path,
                                                 certificate: tuple[Path, Path],
                                                 stage: str) -> None:
    """A PROXY preamble begun and never finished (--handshake-timeout passes) is a
    connection closed for a missing preamble; a ClientHello begun and never finished is a
    TLS handshake that failed. Both close as `timeout`, and both count as failures."""
    cert, key = certificate
    if stage == "proxy":
        rs = start_server(docroot=str(root), metrics_path="/metrics", proxy_protocol=True,
                          trusted_proxies=("127.0.0.1/32",), handshake_timeout=0.5)
        port, start, preamble = rs.port, b"PROXY TCP4 192.0.2.", LOOPBACK_PREAMBLE
        failures = "proxy_preamble_failures_total"
    else:
        rs = start_server(docroot=str(root), metrics_path="/metrics", tls_cert=str(cert),
                          tls_key=str(key), tls_port=0, handshake_timeout=0.5)
        port, start, preamble = rs.server.tls_port, b"\x16\x03\x01\x02\x00\x01", b""
        failures = "tls_handshake_failures_total"
    with connect(port) as stalled:
        stalled.sendall(start)
        assert read_to_eof(stalled) == b""  # closed by the server after 0.5 s
    got = scrape(rs.port, preamble=preamble)
    assert got.closed()["timeout"] == 1
    assert got.value(failures) == 1


def test_a_wrong_password_is_a_failed_login(start_server: Start, root: Path) -> None:
    """--auth: no credentials is a 401 but no failed login; a wrong password is one; the
    right one is none. The metrics path is answered without a login."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", auth=("user:secret",))

    def basic(password: str) -> str:
        token = base64.b64encode(f"user:{password}".encode()).decode()
        return f"Authorization: Basic {token}\r\n"

    assert get(rs.port, "/hello.txt").status == 401
    assert scrape(rs.port).value("login_failures_total") == 0
    assert get(rs.port, "/hello.txt", headers=basic("wrong")).status == 401
    assert get(rs.port, "/hello.txt", headers=basic("secret")).body == HELLO
    got = scrape(rs.port)
    assert got.value("login_failures_total") == 1
    assert got.requests() == {("GET", "401"): 2, ("GET", "200"): 2}


# -- gauges: the process, the pool, draining, idle --------------------------------------------

def test_process_facts_are_plausible(start_process: StartProcess) -> None:
    """A real process: resident memory, open fds (both read in the pool, every sampling
    step), start time and CPU seconds, against /proc; one worker, not draining."""
    started = time.time()
    sp = start_process("--metrics-path", "/metrics", "--threads", "3")
    pid = sp.proc.pid
    got = settle(lambda: scrape(sp.port), lambda s: (
        PREFIX + "process_open_fds", frozenset()) in s.samples)
    rss = got.value("process_resident_memory_bytes")
    with open(f"/proc/{pid}/statm") as f:
        actual_rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 5 * 1024 * 1024 < rss and actual_rss / 2 < rss < actual_rss * 2, (rss, actual_rss)
    fds = got.value("process_open_fds")
    assert fds >= 4 and abs(fds - len(os.listdir(f"/proc/{pid}/fd"))) <= 4, fds
    start = got.value("process_start_time_seconds")
    assert started - 1 <= start <= time.time() and abs(time.time() - start) < 60
    cpu = got.value("process_cpu_seconds_total")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    assert 0 <= cpu <= (int(fields[11]) + int(fields[12])) / ticks + 0.1, cpu
    assert got.value("workers") == 1 and got.value("draining") == 0
    assert got.value("pool_threads") == 3
    assert 0 <= got.value("pool_threads_busy") <= 3 and got.value("pool_queue_jobs") >= 0
    assert sp.terminate() == 0


def test_draining_is_one_once_a_stop_has_begun(start_server: Start, root: Path) -> None:
    """A scrape whose head was on its way when the stop began is still answered: with
    draining = 1, and Connection: close."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    assert scrape(rs.port).value("draining") == 0
    with connect(rs.port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: test\r\n")  # the head, not its end
        rs.server.loop.call_soon_threadsafe(rs.server.stop)
        assert wait_for(lambda: rs.server.draining)
        sock.sendall(b"\r\n")
        resp = Reader(sock).read_response()
    assert resp.status == 200 and resp.header("connection") == "close"
    _, samples = parse(resp.body.decode())
    assert samples[(PREFIX + "draining", frozenset())] == 1
    rs.thread.join(10)
    assert not rs.thread.is_alive()


def test_the_scraping_connection_is_not_counted_idle(start_server: Start, root: Path) -> None:
    """connections_idle is 'open connections waiting for a request': the scrape's own
    connection has its request and is being answered, so a lone scrape sees 1 open, 0 idle."""
    rs = start_server(docroot=str(root), metrics_path="/metrics")
    got = scrape(rs.port)
    assert got.value("connections_open") == 1
    assert got.value("connections_idle") == 0


# -- the status JSON says what the metrics say ------------------------------------------------

def json_samples(snapshot: dict[str, Any]) -> dict[Key, float]:
    """A status JSON snapshot as the exposition's samples."""
    samples: dict[Key, float] = {}
    for name, value in snapshot.items():
        if name == "history":
            continue
        family = FAMILY[name]
        full = PREFIX + name
        if isinstance(value, dict):
            for bucket in value["buckets"]:
                samples[(full + "_bucket", frozenset({("le", bucket["le"])}))] = bucket["value"]
            samples[(full + "_sum", frozenset())] = value["sum"]
            samples[(full + "_count", frozenset())] = value["count"]
        elif isinstance(value, list):
            for sample in value:
                labels = frozenset((label, str(sample[label])) for label in family.labels)
                samples[(full, labels)] = sample["value"]
        else:
            samples[(full, frozenset())] = value
    return samples


# Samples that move on their own between two requests: the process facts (read every
# sampling step), the log writer's count (every 0.1 s), the pool (the sampler's job) and
# the duration histogram (the request between lands in a bucket not known in advance).
_MOVING = ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
           "log_lines_total", "pool_threads_busy", "pool_queue_jobs",
           "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum")


def one_request_later(before: dict[Key, float], after: dict[Key, float],
                      body_bytes: int) -> None:
    """`after` is `before` plus one GET 200 of `body_bytes` on a connection of its own
    (accepted, answered, closed `done`), give or take what moves on its own."""
    assert set(after) == set(before)
    expect = dict(before)
    for name, labels, delta in (
            ("http_requests_total", {"method": "GET", "code": "200"}, 1),
            ("http_response_bytes_total", {}, body_bytes),
            ("http_request_duration_seconds_count", {}, 1),
            ("http_request_duration_seconds_bucket", {"le": "+Inf"}, 1),
            ("connections_accepted_total", {}, 1),
            ("connections_closed_total", {"reason": "done"}, 1)):
        expect[(PREFIX + name, frozenset(labels.items()))] += delta
    exact = {key for key in expect if not key[0].removeprefix(PREFIX).startswith(_MOVING)
             or key[1] == frozenset({("le", "+Inf")})}
    assert {k: after[k] for k in exact} == {k: expect[k] for k in exact}
    for key in set(expect) - exact:
        name = key[0].removeprefix(PREFIX)
        if name.startswith(("pool_", "process_resident", "process_open")):
            assert after[key] >= 0, key
        else:  # counters (and cumulative buckets) never go back
            assert after[key] >= before[key], key


def status_json(port: int, target: str, headers: str = "") -> tuple[Response, dict[str, Any]]:
    resp = get(port, target, headers=headers)
    assert resp.status == 200 and resp.header("content-type") == "application/json", resp
    return resp, json.loads(resp.body)


def test_the_status_json_says_what_the_metrics_say(start_server: Start, root: Path) -> None:
    """/status?format=json and /status with Accept: application/json have a key per metric
    (the name without evserver_) plus `history`, and the values of the scrapes made just
    before and after them, plus the one request between each two."""
    rs = start_server(docroot=str(root), metrics_path="/metrics", status_path="/status")
    for path in ("/hello.txt", "/hello.txt", "/missing", "/page.txt"):
        get(rs.port, path)
    get(rs.port, "/hello.txt", method="HEAD")
    names = {f.name for f in FAMILIES if f.name not in LIVE}

    # The process facts come from the pool after the start: wait for them first.
    first = settle(lambda: scrape(rs.port), lambda s: (
        PREFIX + "process_open_fds", frozenset()) in s.samples)
    by_query, as_json = status_json(rs.port, "/status?format=json")
    by_accept, accepted = status_json(rs.port, "/status", "Accept: application/json\r\n")
    last = scrape(rs.port)
    assert get(rs.port, "/status").header("content-type") == "text/html; charset=utf-8"

    for snapshot in (as_json, accepted):
        assert set(snapshot) == names | {"history"}
        assert snapshot["history"]["step"] == HISTORY_STEP
        assert isinstance(snapshot["history"]["samples"], list)
    one_request_later(first.samples, json_samples(as_json), first.size)
    one_request_later(json_samples(as_json), json_samples(accepted), len(by_query.body))
    one_request_later(json_samples(accepted), last.samples, len(by_accept.body))
    assert as_json["process_start_time_seconds"] == last.value("process_start_time_seconds")


@pytest.mark.parametrize("path", ["/metrics", "/status", "/status?format=json"])
def test_metrics_and_status_are_403_outside_status_allow(start_process: StartProcess,
                                                         path: str) -> None:
    """--status-allow 10.0.0.0/8: a client at 127.0.0.1 gets 403 and not a number; files
    are still served."""
    sp = start_process("--metrics-path", "/metrics", "--status-path", "/status",
                       "--status-allow", "10.0.0.0/8")
    refused = get(sp.port, path)
    assert refused.status == 403 and b"evserver_" not in refused.body
    assert b"http_requests_total" not in refused.body
    assert get(sp.port, "/hello.txt").status == 200
    assert sp.terminate() == 0


def test_live_reload_pages_and_changes(start_server: Start, root: Path,
                                       tmp_path: Path) -> None:
    """--live-reload: an open event stream is a page; a changed file is a change told."""
    docroot = tmp_path / "live-root"
    docroot.mkdir()
    (docroot / "index.html").write_bytes((root / "index.html").read_bytes())
    (docroot / "hello.txt").write_bytes(HELLO)
    rs = start_server(docroot=str(docroot), metrics_path="/metrics", live_reload=True)
    scraper = Scraper(rs.port)
    assert scraper().value("live_reload_pages") == 0
    with connect(rs.port) as page:
        page.sendall(request("/.evserver/live"))
        stream = read_until(page, b"\r\n\r\n")
        assert stream.startswith(b"HTTP/1.1 200 OK\r\n")
        assert scraper.until(lambda s: s.value("live_reload_pages") == 1).value(
            "live_reload_pages") == 1
        (docroot / "hello.txt").write_bytes(b"changed\n")
        told = scraper.until(lambda s: s.value("live_reload_changes_total") >= 1)
        assert told.value("live_reload_changes_total") == 1
        assert b"hello.txt" in read_until(page, b"hello.txt", stream)
    left = scraper.until(lambda s: s.value("live_reload_pages") == 0)
    assert left.value("live_reload_pages") == 0 and left.closed()["client"] == 1


# -- --workers: any scrape sees the whole server ----------------------------------------------

def test_two_workers_add_up_and_a_replaced_worker_carries_on(
        start_process: StartProcess) -> None:
    """--workers 2: requests each on a connection of its own (the kernel spreads them) add
    up in any scrape once every worker has posted; a worker killed with SIGKILL is replaced
    and the new one carries on from its predecessor's last numbers: no total ever goes
    down, from one scrape to the next, across the kill."""
    sp = start_process("--workers", "2", "--metrics-path", "/metrics")
    assert wait_for(lambda: len(children(sp.proc.pid)) == 2)
    n_ok, n_missing = 40, 10
    for n in range(n_ok):
        assert get(sp.port, f"/hello.txt?n={n}").status == 200
    for n in range(n_missing):
        assert get(sp.port, f"/missing-{n}").status == 404
    scraper = Scraper(sp.port)

    def complete(got: Scrape) -> bool:
        return (got.total("http_requests_total", code="200") == n_ok + scraper.before
                and got.total("http_requests_total", code="404") == n_missing)

    got = scraper.until(complete)
    assert complete(got), got.requests()
    assert got.value("workers") == 2
    assert got.value("connections_accepted_total") == n_ok + n_missing + scraper.count
    assert got.value("process_resident_memory_bytes") > 2 * 5 * 1024 * 1024

    # Let every worker post once more (the last scrape too: each is counted once
    # answered, after its worker posted), then kill one.
    time.sleep(HISTORY_STEP + 0.5)
    first_workers = children(sp.proc.pid)
    victim = first_workers[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in children(sp.proc.pid)
                    and len(children(sp.proc.pid)) == 2, 10)
    assert len(set(children(sp.proc.pid)) - set(first_workers)) == 1  # its replacement
    after = scraper.until(complete)
    assert complete(after), after.requests()
    assert after.value("workers") == 2
    assert "was killed by SIGKILL: starting another" in sp.stderr()

    totals = [s.total("http_requests_total") for s in scraper.seen]
    assert totals == sorted(totals), totals
    accepted = [s.value("connections_accepted_total") for s in scraper.seen]
    assert accepted == sorted(accepted), accepted
    assert sp.terminate() == 0


def test_a_worker_killed_while_posting_does_not_hide_its_successor() -> None:
    """The board as a SIGKILLed worker leaves it mid-post (its sequence odd, length 0: the
    state between Board.post's first and last write), simulated in one process since the
    window is microseconds wide. Its numbers are lost, but the replacement's posts in the
    same slot must be readable again, or the other workers never count it."""
    board = Board(2)
    board.post(0, {"http_response_bytes_total": 1})
    sequence = _HEAD.unpack_from(board._memory, 0)[0]
    _HEAD.pack_into(board._memory, 0, sequence + 1, 0)  # killed here, mid-post
    assert board.read(0) is None  # torn: nothing to carry on from
    assert board.post(0, {"http_response_bytes_total": 2})  # the replacement posts
    assert board.read(0) == {"http_response_bytes_total": 2}


# -- a real Prometheus server -----------------------------------------------------------------

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: evserver
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def ready(self) -> bool:
        try:
            return self.get("/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, expr: str) -> float | None:
        """An instant query's one value (None: no series)."""
        status, body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", data
        result = data["data"]["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list[tuple[str, str, str]]:
        """(scrape URL, health, last error) of each active target."""
        status, body = self.get("/api/v1/targets?state=active")
        assert status == 200, body
        return [(t["scrapeUrl"], t["health"], t["lastError"])
                for t in json.loads(body)["data"]["activeTargets"]]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[int], Prometheus]]:
    """Start a foreground Prometheus scraping 127.0.0.1:<port>/metrics every second, its
    config and database in tmp_path, its UI and API on a free loopback port."""
    binary = need_tool("prometheus")
    started: list[Prometheus] = []

    def start(target_port: int) -> Prometheus:
        n = len(started)
        config = tmp_path / f"prometheus-{n}.yml"
        config.write_text(PROMETHEUS_CONFIG.format(target=f"127.0.0.1:{target_port}"))
        port = free_port()
        log_path = tmp_path / f"prometheus-{n}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path}/tsdb-{n}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=tmp_path)
        prom = Prometheus(proc, port, log_path)
        started.append(prom)
        if not wait_for(lambda: proc.poll() is not None or prom.ready(), 20, 0.1):
            raise RuntimeError(f"prometheus was not ready within 20 s: {prom.log()}")
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited {proc.returncode}: {prom.log()}")
        return prom

    yield start
    for prom in started:
        if prom.proc.poll() is None:
            prom.proc.terminate()  # SIGTERM, to its PID: a clean stop
        try:
            prom.proc.wait(15)
        except subprocess.TimeoutExpired:
            prom.proc.kill()
            prom.proc.wait(10)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_a_prometheus_server_scrapes_the_counts(start_prometheus: Callable[[int], Prometheus],
                                               start_process: StartProcess,
                                               workers: int) -> None:
    """Prometheus scrapes evserver every second: the target is up with no error, the 404s
    it stores are the ones sent, and the 200s are the ones sent plus its own scrapes (each
    stored scrape counted the ones before it: 200s minus scrapes is N - 1)."""
    extra = ("--workers", "2") if workers > 1 else ()
    sp = start_process("--metrics-path", "/metrics", *extra)
    prom = start_prometheus(sp.port)
    n_ok, n_missing = 20, 7
    for n in range(n_ok):
        assert get(sp.port, f"/hello.txt?n={n}").status == 200
    for n in range(n_missing):
        assert get(sp.port, f"/missing-{n}").status == 404

    url = f"http://127.0.0.1:{sp.port}/metrics"
    targets = settle(prom.targets, lambda t: t == [(url, "up", "")], 15)
    assert targets == [(url, "up", "")], prom.log()
    missing = settle(lambda: prom.query('sum(evserver_http_requests_total{code="404"})'),
                     lambda v: v == n_missing, 15, 0.25)
    assert missing == n_missing, prom.log()
    ok_minus_scrapes = settle(
        lambda: prom.query('sum(evserver_http_requests_total{code="200"}) - '
                           'sum(count_over_time(up{job="evserver"}[10m]))'),
        lambda v: v == n_ok - 1, 15, 0.25)
    assert ok_minus_scrapes == n_ok - 1
    assert prom.query('sum(up{job="evserver"})') == 1
    assert prom.query("sum(evserver_workers)") == workers
    assert prom.query("sum(evserver_draining)") == 0
    assert prom.query('sum(evserver_connections_closed_total{reason="done"})') >= n_ok + n_missing
    assert sp.terminate() == 0
