"""The metrics without a server: counting, the text exposition, and workers' numbers added.

The exposition is read back with prometheus_client's own parser (a test dependency), so
"Prometheus can read it" is checked by Prometheus's code, not by ours."""
from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest

from evserver.metrics import (
    CLOSE_REASONS,
    CONTENT_TYPE,
    DURATION_BUCKETS,
    FAMILIES,
    FAMILY,
    PREFIX,
    Counters,
    TimedCounters,
    _escape_help,
    _float,
    _int,
    _number,
    carried,
    compression_summary,
    merge,
    render_text,
    total,
)
from tests.tools import need_module


def parsed(text: bytes) -> dict[str, object]:
    need_module("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families
    return {family.name: family for family in text_string_to_metric_families(text.decode())}


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    need_module("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples}


# -- the list of families --------------------------------------------------------------------

def test_names_follow_prometheus_conventions() -> None:
    """snake_case; counters end _total; a unit, when named, is the base unit at the end
    (before _total); help is one sentence; labels are not reserved names."""
    assert len(FAMILY) == len(FAMILIES)
    for family in FAMILIES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", family.name), family.name
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        assert family.kind in ("counter", "gauge", "histogram")
        assert not re.search(r"_(ms|milliseconds|kb|kib|mb|percent)(_|$)", family.name)
        assert family.help.endswith(".") and "\n" not in family.help
        assert all(not label.startswith("__") and label != "le" for label in family.labels)
        assert family.combine in ("sum", "min", "max")
    assert FAMILY["http_request_duration_seconds"].kind == "histogram"
    assert FAMILY["process_start_time_seconds"].combine == "min"
    assert FAMILY["draining"].combine == "max"


# -- counting ------------------------------------------------------------------------------

def test_count_by_method_and_code_with_bytes_and_durations() -> None:
    counters = TimedCounters()
    counters.count(b"GET", HTTPStatus.OK, 100, 0.0002)
    counters.count(b"GET", 200, 50, 0.0005)  # on the bound: le="0.0005"
    counters.count(b"HEAD", HTTPStatus.NOT_MODIFIED, 0, 0.003)
    counters.count(b"POST", 405, 10, 0.2)
    counters.count(b"", 400, 10, 120.0)  # no request parsed; slower than every bucket
    snap = counters.snapshot()
    assert snap["http_requests_total"] == [
        {"method": "GET", "code": "200", "value": 2},
        {"method": "HEAD", "code": "304", "value": 1},
        {"method": "other", "code": "400", "value": 1},
        {"method": "other", "code": "405", "value": 1}]
    assert snap["http_response_bytes_total"] == 170
    histogram = snap["http_request_duration_seconds"]
    assert isinstance(histogram, dict)
    cumulative = {b["le"]: b["value"] for b in histogram["buckets"]}
    assert list(cumulative) == [*map(repr, DURATION_BUCKETS), "+Inf"]
    assert (cumulative["0.0005"], cumulative["0.001"], cumulative["0.005"],
            cumulative["0.25"], cumulative["60.0"], cumulative["+Inf"]) == (2, 2, 3, 4, 4, 5)
    assert histogram["count"] == 5 and histogram["sum"] == pytest.approx(120.2037)
    assert counters.requests == 5
    assert counters.by_status() == {200: 2, 304: 1, 405: 1, 400: 1}


def test_plain_counters_keep_no_durations() -> None:
    counters = Counters()
    counters.count(b"GET", 200, 1, 0.1)
    assert "http_request_duration_seconds" not in counters.snapshot()
    assert counters.requests == 1


def test_durations_are_bucketed_a_batch_at_a_time_and_when_read() -> None:
    counters = TimedCounters()
    for i in range(1500):  # past one batch of 1024
        counters.count(b"GET", 200, 0, 0.004 if i % 2 else 0.00005)
    assert counters.requests == 1500
    histogram = counters.snapshot()["http_request_duration_seconds"]
    assert isinstance(histogram, dict)
    cumulative = {b["le"]: b["value"] for b in histogram["buckets"]}
    assert (cumulative["0.0005"], cumulative["0.0025"], cumulative["0.005"]) == (750, 750, 1500)
    assert histogram["count"] == 1500 and histogram["sum"] == pytest.approx(750 * 0.00405)
    again = counters.snapshot()["http_request_duration_seconds"]
    assert again == histogram  # reading folds nothing twice


def test_a_status_enum_and_its_int_are_one_sample() -> None:
    counters = Counters()
    counters.count(b"GET", HTTPStatus.OK, 0, 0.0)
    counters.count(b"GET", 200, 0, 0.0)
    assert counters.snapshot()["http_requests_total"] == [
        {"method": "GET", "code": "200", "value": 2}]


def test_closes_by_reason_and_keepalive_reuse() -> None:
    counters = Counters()
    counters.connection_closed("client", 1)
    counters.connection_closed("timeout", 0)
    counters.connection_closed("done", 5)  # four requests came after the first
    closed = {s["reason"]: s["value"] for s in counters.snapshot()["connections_closed_total"]}
    assert closed == dict.fromkeys(CLOSE_REASONS, 0) | {"client": 1, "timeout": 1, "done": 1}
    assert counters.reused == 4


def test_compression_summary() -> None:
    counters = Counters()
    assert compression_summary(counters.snapshot())["saved_ratio"] is None
    counters.encoded(1000, 250)
    counters.encoded(1000, 350)
    assert compression_summary(counters.snapshot()) == {
        "responses": 2, "bytes_before": 2000, "bytes_after": 600, "bytes_saved": 1400,
        "saved_ratio": 0.7}


def test_total_sums_labels_and_counts_a_histogram() -> None:
    counters = TimedCounters()
    counters.count(b"GET", 200, 1, 0.1)
    counters.count(b"GET", 404, 1, 0.1)
    snap = counters.snapshot() | {"connections_open": 3}
    assert total(snap, "http_requests_total") == 2
    assert total(snap, "http_request_duration_seconds") == 2
    assert total(snap, "connections_open") == 3
    assert total(snap, "missing") == 0


# -- the text exposition -------------------------------------------------------------------

def test_the_exposition_is_read_by_prometheus_client_with_help_and_type() -> None:
    counters = TimedCounters()
    counters.count(b"GET", 200, 1024, 0.0007)
    counters.count(b"OPTIONS", 204, 0, 0.0001)
    snap = counters.snapshot() | {"connections_open": 2, "draining": 0,
                                  "process_start_time_seconds": 1.75e9}
    text = render_text(snap)
    families = parsed(text)
    def parsed_name(name: str, kind: str) -> str:  # the parser drops a counter's _total
        return PREFIX + (name.removesuffix("_total") if kind == "counter" else name)

    assert set(families) == {parsed_name(f.name, f.kind) for f in FAMILIES if f.name in snap}
    for family in FAMILIES:
        if family.name in snap:
            name = parsed_name(family.name, family.kind)
            assert families[name].type == family.kind
            assert families[name].documentation == family.help
    got = samples(text)
    assert got[("evserver_http_requests_total", (("code", "200"), ("method", "GET")))] == 1
    assert got[("evserver_http_requests_total", (("code", "204"), ("method", "OPTIONS")))] == 1
    assert got[("evserver_http_response_bytes_total", ())] == 1024
    assert got[("evserver_http_request_duration_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("evserver_http_request_duration_seconds_bucket", (("le", "0.001"),))] == 2
    assert got[("evserver_http_request_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("evserver_http_request_duration_seconds_count", ())] == 2
    assert got[("evserver_http_request_duration_seconds_sum", ())] == pytest.approx(0.0008)
    assert got[("evserver_process_start_time_seconds", ())] == 1.75e9
    assert got[("evserver_draining", ())] == 0


def test_the_exposition_layout_line_by_line() -> None:
    text = render_text({"connections_open": 3, "workers": 1})
    assert text == (
        b"# HELP evserver_connections_open Connections open now.\n"
        b"# TYPE evserver_connections_open gauge\n"
        b"evserver_connections_open 3\n"
        b"# HELP evserver_workers Server processes whose numbers these are.\n"
        b"# TYPE evserver_workers gauge\n"
        b"evserver_workers 1\n")
    assert CONTENT_TYPE == b"text/plain; version=0.0.4; charset=utf-8"
    assert render_text({}) == b"\n"
    assert render_text({"not_a_metric": 1, "history": {}}) == b"\n"


def test_label_values_and_numbers_are_escaped_as_the_format_asks() -> None:
    snap = {"connections_closed_total": [{"reason": 'a"b\\c\nd', "value": 1}],
            "process_resident_memory_bytes": float("inf"), "draining": True,
            "process_cpu_seconds_total": float("nan")}
    text = render_text(snap)
    assert b'evserver_connections_closed_total{reason="a\\"b\\\\c\\nd"} 1\n' in text
    assert b"evserver_process_resident_memory_bytes +Inf\n" in text
    assert b"evserver_draining 1\n" in text
    assert b"evserver_process_cpu_seconds_total NaN\n" in text
    got = samples(text)
    assert got[("evserver_connections_closed_total", (("reason", 'a"b\\c\nd'),))] == 1


def test_every_name_carries_the_prefix() -> None:
    text = render_text(Counters().snapshot())
    for line in text.decode().splitlines():
        name = line.split()[2] if line.startswith("#") else line.split("{")[0].split()[0]
        assert name.startswith(PREFIX)


# -- several workers -----------------------------------------------------------------------

def worker(get: int, not_found: int, open_: int, started: float) -> dict[str, object]:
    counters = TimedCounters()
    for _ in range(get):
        counters.count(b"GET", 200, 10, 0.001)
    for _ in range(not_found):
        counters.count(b"GET", 404, 5, 0.02)
    return counters.snapshot() | {"connections_open": open_, "draining": 0,
                                  "process_start_time_seconds": started, "workers": 1,
                                  "history": {"from": started}}


def test_merge_adds_samples_buckets_and_gauges_and_keeps_the_earliest_start() -> None:
    merged = merge([worker(3, 0, 2, 100.0), worker(1, 2, 5, 90.0)])
    assert merged["http_requests_total"] == [{"method": "GET", "code": "200", "value": 4},
                                             {"method": "GET", "code": "404", "value": 2}]
    assert merged["http_response_bytes_total"] == 50
    histogram = merged["http_request_duration_seconds"]
    assert isinstance(histogram, dict)
    assert histogram["count"] == 6 and histogram["sum"] == pytest.approx(0.044)
    assert {b["le"]: b["value"] for b in histogram["buckets"]}["0.001"] == 4
    assert (merged["connections_open"], merged["workers"]) == (7, 2)
    assert merged["process_start_time_seconds"] == 90.0
    assert merged["history"] == {"from": 100.0}  # not a metric: the first one's


def test_merge_takes_the_largest_draining_and_does_not_change_its_inputs() -> None:
    a, b = worker(1, 0, 0, 1.0), worker(1, 0, 0, 1.0) | {"draining": 1}
    before = json.dumps([a, b], sort_keys=True)
    assert merge([a, b])["draining"] == 1
    assert json.dumps([a, b], sort_keys=True) == before
    assert merge([a]) == a


def test_a_replacement_worker_carries_its_predecessors_counters_not_its_gauges() -> None:
    predecessor = worker(10, 1, 8, 50.0)
    now = worker(2, 0, 1, 60.0)
    got = carried(predecessor, now)
    assert got["http_requests_total"] == [{"method": "GET", "code": "200", "value": 12},
                                          {"method": "GET", "code": "404", "value": 1}]
    histogram = got["http_request_duration_seconds"]
    assert isinstance(histogram, dict) and histogram["count"] == 13
    assert got["connections_open"] == 1  # a gauge: the dead worker's connections are gone
    assert got["process_start_time_seconds"] == 60.0
    assert got["workers"] == 1


def test_the_docs_list_every_metric_once() -> None:
    """docs/metrics.md's table has a row for each family, in the order of FAMILIES."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    table = doc[doc.index("## Every metric"):doc.index("## How it is built")]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \|", table, re.M)
    assert rows == [(family.name, family.kind) for family in FAMILIES]


# -- the details the tests above leave loose ---------------------------------------------------

def test_closes_add_up_and_only_requests_after_the_first_are_reuse() -> None:
    counters = Counters()
    for served in (0, 1, 2, 3):
        counters.connection_closed("client", served)
    assert counters.closed["client"] == 4 and counters.reused == 0 + 0 + 1 + 2


def test_the_events_counted_by_the_connection_are_in_the_snapshot() -> None:
    counters = Counters()
    counters.tls_handshakes, counters.tls_failures = 5, 1
    counters.proxy_preambles, counters.proxy_failures = 7, 2
    counters.login_failures = 3
    snap = counters.snapshot()
    assert {name: snap[name] for name in (
        "tls_handshakes_total", "tls_handshake_failures_total", "proxy_preambles_total",
        "proxy_preamble_failures_total", "login_failures_total")} == {
        "tls_handshakes_total": 5, "tls_handshake_failures_total": 1,
        "proxy_preambles_total": 7, "proxy_preamble_failures_total": 2,
        "login_failures_total": 3}


def test_a_whole_batch_is_bucketed_at_once_and_batches_add_up() -> None:
    counters = TimedCounters()
    for _ in range(1024):
        counters.count(b"GET", 200, 0, 100.0)  # slower than every bucket
    assert counters._unfolded == []
    counters.count(b"GET", 200, 0, 100.0)
    histogram = counters.snapshot()["http_request_duration_seconds"]
    assert isinstance(histogram, dict)
    assert [b["value"] for b in histogram["buckets"]][-2:] == [0, 1025]


def test_sums_keep_six_decimals() -> None:
    counters = TimedCounters()
    counters.count(b"GET", 200, 0, 0.1234567)
    histogram = counters.snapshot()["http_request_duration_seconds"]
    assert isinstance(histogram, dict) and histogram["sum"] == 0.123457
    raw = histogram | {"sum": 0.1234567}
    merged = merge([{"http_request_duration_seconds": raw},
                    {"http_request_duration_seconds": raw}])
    assert merged["http_request_duration_seconds"]["sum"] == 0.246913  # type: ignore[index]
    assert merge([{"process_cpu_seconds_total": 1}, {"process_cpu_seconds_total": 0.1234567}]
                 )["process_cpu_seconds_total"] == 1.123457


def test_the_saved_ratio_has_three_decimals_and_nothing_counted_is_zero() -> None:
    counters = Counters()
    counters.encoded(3, 1)
    assert compression_summary(counters.snapshot())["saved_ratio"] == 0.667
    assert compression_summary({}) == {"responses": 0, "bytes_before": 0, "bytes_after": 0,
                                       "bytes_saved": 0, "saved_ratio": None}


def test_numbers_and_help_in_the_text_format() -> None:
    assert _number(False) == "0" and _number(True) == "1"
    assert _number(float("-inf")) == "-Inf" and _number(2.5) == "2.5" and _number(3) == "3"
    assert _escape_help("a\\b\nc") == "a\\\\b\\nc"


def test_histograms_with_other_buckets_and_gauges_by_their_rule() -> None:
    a = {"http_request_duration_seconds": {"buckets": [{"le": "1.0", "value": 2}],
                                           "sum": 1.0, "count": 2},
         "draining": 1, "process_start_time_seconds": 5.0}
    b = {"http_request_duration_seconds": {"buckets": [{"le": "1.0", "value": 1},
                                                       {"le": "2.0", "value": 3}],
                                           "sum": 2.0, "count": 3},
         "draining": 0, "process_start_time_seconds": 7.0}
    merged = merge([a, b])
    assert merged["http_request_duration_seconds"] == {
        "buckets": [{"le": "1.0", "value": 3}, {"le": "2.0", "value": 3}], "sum": 3.0,
        "count": 5}
    assert all(isinstance(bucket["value"], int)  # counts stay whole numbers
               for bucket in merged["http_request_duration_seconds"]["buckets"])  # type: ignore[index]
    assert (merged["draining"], merged["process_start_time_seconds"]) == (1, 5.0)
    assert merge([a, a])["draining"] == 1
    assert merge([b, a])["process_start_time_seconds"] == 5.0


def test_values_that_are_not_numbers_count_as_zero() -> None:
    assert _float("x") == 0.0 and _float(2) == 2.0
    assert _int(None) == 0 and _int(2.7) == 2
