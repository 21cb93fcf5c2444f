"""What the server counts, and the one list of metrics the status page and Prometheus share.

Owns: `Counters` (updated by the loop per request and per connection), `FAMILIES` (every
metric's name, type, unit and help), `render_text()` (the Prometheus text exposition,
format 0.0.4), `merge()` (several workers' snapshots as one server's) and `carried()`.
Imports nothing from evserver.

A snapshot is a plain dict, the same as the status page's JSON: each key is a metric's
name without the `evserver_` prefix; its value is a number, or for a labelled metric a
list of `{label: value, ..., "value": number}`, or for a histogram
`{"buckets": [{"le": "0.001", "value": n}, ...], "sum": s, "count": n}` (cumulative, as
Prometheus counts them).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

Snapshot = dict[str, object]

PREFIX = "evserver_"
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# Seconds. A cached file is answered in well under a millisecond, a large download over a
# slow link in minutes: the buckets cover both ends.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Why connections close: the `reason` label of connections_closed_total.
CLIENT = "client"  # the client closed it (or left while we lingered)
RESET = "reset"  # reset by the peer, or the pipe broke
TIMEOUT = "timeout"  # a handshake, head, idle, send or linger deadline passed
LIMIT = "limit"  # closed idle to make room at --max-connections
DONE = "done"  # we ended it after a response (Connection: close, HTTP/1.0, a refusal)
ERROR = "error"  # a failed TLS handshake or PROXY preamble, a socket error, a bug
REFUSED = "refused"  # a PROXY connection from an address not trusted
SHUTDOWN = "shutdown"  # the server stopped
CLOSE_REASONS = (CLIENT, RESET, TIMEOUT, LIMIT, DONE, ERROR, REFUSED, SHUTDOWN)

_METHODS = (b"GET", b"HEAD", b"OPTIONS")  # any other method (405, 501) counts as "other"
# Durations are kept as they come and put in their buckets this many at a time (or when the
# numbers are read): one sort of a list of floats costs less per request than a bisect each.
_FOLD_AT = 1024


@dataclass(frozen=True)
class Family:
    """One metric: its name (no prefix), type, help text, labels, and how the values of
    several workers combine: summed, or the smallest (a start time), or the largest."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()
    combine: str = "sum"  # sum | min | max


FAMILIES = (
    Family("http_requests_total", "counter",
           "Requests answered, by method (GET, HEAD, OPTIONS or other) and status code.",
           ("method", "code")),
    Family("http_response_bytes_total", "counter",
           "Response body bytes sent, as the access log counts them (heads not included)."),
    Family("http_request_duration_seconds", "histogram",
           "Time from a request's first byte to the last byte of its response handed to "
           "the kernel."),
    Family("http_keepalive_requests_total", "counter",
           "Requests that came on a connection that had already served one (keep-alive "
           "reuse)."),
    Family("connections_accepted_total", "counter", "Connections accepted."),
    Family("connections_closed_total", "counter", "Connections closed, by reason.",
           ("reason",)),
    Family("connections_open", "gauge", "Connections open now."),
    Family("connections_idle", "gauge",
           "Open connections waiting for a request (kept alive, or new)."),
    Family("pool_threads", "gauge", "Threads of the pool that does the blocking work."),
    Family("pool_threads_busy", "gauge",
           "Pool jobs submitted and not yet waiting in the queue: running, or done and "
           "waiting for the event loop."),
    Family("pool_queue_jobs", "gauge", "Pool jobs waiting for a free thread."),
    Family("file_cache_hits_total", "counter",
           "Requests served from the file cache without a pool job."),
    Family("file_cache_misses_total", "counter",
           "Lookups that found no fresh entry (the file is read or checked in the pool)."),
    Family("file_cache_evictions_total", "counter",
           "Entries dropped to stay within the cache's bounds."),
    Family("file_cache_entries", "gauge",
           "Entries in the file cache: files in memory, encoded variants and open files."),
    Family("file_cache_bytes", "gauge", "Bytes of the files kept in memory."),
    Family("open_file_cache_hits_total", "counter",
           "Cache hits on a large file kept open (sent by sendfile)."),
    Family("open_file_cache_files", "gauge", "Large files kept open."),
    Family("encoded_cache_entries", "gauge", "Variants encoded here and kept in memory."),
    Family("encoded_cache_bytes", "gauge", "Bytes of the encoded variants kept in memory."),
    Family("compression_responses_total", "counter",
           "Encoded bodies sent whole (not HEAD, 304 or 206)."),
    Family("compression_input_bytes_total", "counter",
           "What the files of those responses weigh."),
    Family("compression_output_bytes_total", "counter",
           "What those responses' bodies weighed as sent."),
    Family("tls_handshakes_total", "counter", "TLS handshakes completed."),
    Family("tls_handshake_failures_total", "counter", "TLS handshakes that failed."),
    Family("proxy_preambles_total", "counter", "PROXY protocol preambles accepted."),
    Family("proxy_preamble_failures_total", "counter",
           "Connections closed for a missing or malformed PROXY preamble, or from an "
           "address not trusted."),
    Family("login_failures_total", "counter", "Failed logins (HTTP Basic authentication)."),
    Family("log_lines_total", "counter", "Access log lines written."),
    Family("log_lines_dropped_total", "counter",
           "Access log lines lost because the log could not be written for too long."),
    Family("live_reload_pages", "gauge", "Pages open with a live-reload stream."),
    Family("live_reload_changes_total", "counter", "Changes told to the open pages."),
    Family("draining", "gauge", "1 once a stop has begun, else 0.", combine="max"),
    Family("workers", "gauge", "Server processes whose numbers these are."),
    Family("process_start_time_seconds", "gauge",
           "When the server started, in seconds since the Unix epoch.", combine="min"),
    Family("process_cpu_seconds_total", "counter", "CPU time used, user and system."),
    Family("process_resident_memory_bytes", "gauge", "Resident memory."),
    Family("process_open_fds", "gauge", "Open file descriptors."),
)
FAMILY = {family.name: family for family in FAMILIES}


class Counters:
    """What the loop counts: per answered request (one call, `count`), per closed
    connection, and per event worth knowing (handshakes, preambles, failed logins)."""

    __slots__ = ("_get", "_by_method", "_other", "bytes_sent", "closed", "reused",
                 "encoded_responses", "identity_bytes", "encoded_bytes",
                 "tls_handshakes", "tls_failures", "proxy_preambles", "proxy_failures",
                 "login_failures")

    def __init__(self) -> None:
        self._other: dict[int, int] = {}
        self._by_method: dict[bytes, dict[int, int]] = {m: {} for m in _METHODS}
        self._get = self._by_method[b"GET"]
        self.bytes_sent = 0
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.reused = 0  # requests after a connection's first, on connections now closed
        self.encoded_responses = 0
        self.identity_bytes = 0  # what the encoded responses' files weigh
        self.encoded_bytes = 0  # what their bodies weighed as sent
        self.tls_handshakes = self.tls_failures = 0
        self.proxy_preambles = self.proxy_failures = 0
        self.login_failures = 0

    def count(self, method: bytes, status: int, body_bytes: int, duration: float) -> None:
        """One answered request (on the hot path: a dict update and an add). Its duration
        is for `TimedCounters`: nobody reads it without a status page or metrics."""
        codes = self._get if method == b"GET" else self._by_method.get(method, self._other)
        codes[status] = codes.get(status, 0) + 1
        self.bytes_sent += body_bytes

    def connection_closed(self, reason: str, served: int) -> None:
        self.closed[reason] += 1
        if served > 1:
            self.reused += served - 1

    def encoded(self, identity_bytes: int, encoded_bytes: int) -> None:
        self.encoded_responses += 1
        self.identity_bytes += identity_bytes
        self.encoded_bytes += encoded_bytes

    @property
    def requests(self) -> int:
        return sum(self.by_status().values())

    def by_status(self) -> dict[int, int]:
        """Requests by status code, whatever the method."""
        total: dict[int, int] = {}
        for codes in (*self._by_method.values(), self._other):
            for status, n in codes.items():
                total[int(status)] = total.get(int(status), 0) + n
        return total

    def snapshot(self) -> Snapshot:
        """The families counted here (the server adds its gauges)."""
        requests = [{"method": method.decode(), "code": str(int(status)), "value": n}
                    for method, codes in self._by_method.items()
                    for status, n in sorted(codes.items())]
        requests += [{"method": "other", "code": str(int(status)), "value": n}
                     for status, n in sorted(self._other.items())]
        return {
            "http_requests_total": requests,
            "http_response_bytes_total": self.bytes_sent,
            "connections_closed_total": [{"reason": reason, "value": n}
                                         for reason, n in self.closed.items()],
            "compression_responses_total": self.encoded_responses,
            "compression_input_bytes_total": self.identity_bytes,
            "compression_output_bytes_total": self.encoded_bytes,
            "tls_handshakes_total": self.tls_handshakes,
            "tls_handshake_failures_total": self.tls_failures,
            "proxy_preambles_total": self.proxy_preambles,
            "proxy_preamble_failures_total": self.proxy_failures,
            "login_failures_total": self.login_failures,
        }


class TimedCounters(Counters):
    """Counters that also keep the requests' durations, as a histogram: what a server with
    a status page or metrics counts."""

    __slots__ = ("_durations", "_unfolded", "_duration_sum")

    def __init__(self) -> None:
        super().__init__()
        self._durations = [0] * (len(DURATION_BUCKETS) + 1)  # the last: above every bucket
        self._unfolded: list[float] = []  # durations not yet in `_durations`
        self._duration_sum = 0.0

    def count(self, method: bytes, status: int, body_bytes: int, duration: float) -> None:
        """One answered request: a dict update, an add and an append."""
        codes = self._get if method == b"GET" else self._by_method.get(method, self._other)
        codes[status] = codes.get(status, 0) + 1
        self.bytes_sent += body_bytes
        unfolded = self._unfolded
        unfolded.append(duration)
        if len(unfolded) >= _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Put the durations kept so far in their buckets (`le`: at most the bound)."""
        batch = self._unfolded
        batch.sort()
        counts = self._durations
        start = 0
        for i, bound in enumerate(DURATION_BUCKETS):
            end = bisect_right(batch, bound, start)
            counts[i] += end - start
            start = end
        counts[-1] += len(batch) - start
        self._duration_sum += sum(batch)
        batch.clear()

    def snapshot(self) -> Snapshot:
        self._fold()
        return super().snapshot() | {
            "http_request_duration_seconds": _histogram(self._durations, self._duration_sum)}


def _histogram(counts: list[int], total: float) -> dict[str, object]:
    buckets = []
    running = 0
    for bound, n in zip((*map(_number, DURATION_BUCKETS), "+Inf"), counts, strict=True):
        running += n
        buckets.append({"le": bound, "value": running})
    return {"buckets": buckets, "sum": round(total, 6), "count": running}


def compression_summary(snapshot: Snapshot) -> dict[str, object]:
    """The savings, as the stop line and the status page word them."""
    before = _int(snapshot.get("compression_input_bytes_total"))
    after = _int(snapshot.get("compression_output_bytes_total"))
    return {"responses": _int(snapshot.get("compression_responses_total")),
            "bytes_before": before, "bytes_after": after, "bytes_saved": before - after,
            "saved_ratio": round((before - after) / before, 3) if before else None}


def total(snapshot: Snapshot, name: str) -> float:
    """A metric summed over its labels (a histogram: its count)."""
    value = snapshot.get(name)
    if isinstance(value, list):
        return sum(float(sample["value"]) for sample in value)
    if isinstance(value, dict):
        return float(value["count"])
    return float(value) if isinstance(value, (int, float)) else 0.0


# -- the text exposition ------------------------------------------------------------------------

def render_text(snapshot: Snapshot) -> bytes:
    """Prometheus's text format 0.0.4: HELP and TYPE, then the samples, of every family
    the snapshot has, in the order of FAMILIES."""
    lines = []
    for family in FAMILIES:
        value = snapshot.get(family.name)
        if value is None:
            continue
        name = PREFIX + family.name
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.kind}")
        if isinstance(value, dict):  # a histogram
            base = name
            for bucket in value["buckets"]:
                lines.append(f'{base}_bucket{{le="{bucket["le"]}"}} {bucket["value"]}')
            lines.append(f"{base}_sum {_number(value['sum'])}")
            lines.append(f"{base}_count {value['count']}")
        elif isinstance(value, list):
            for sample in value:
                labels = ",".join(f'{label}="{_escape_label(str(sample[label]))}"'
                                  for label in family.labels)
                lines.append(f"{name}{{{labels}}} {_number(sample['value'])}")
        else:
            lines.append(f"{name} {_number(value)}")
    return ("\n".join(lines) + "\n").encode()


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else (
            "NaN" if value != value else ("+Inf" if value > 0 else "-Inf"))
    return str(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


# -- several workers as one server ----------------------------------------------------------

def merge(snapshots: list[Snapshot]) -> Snapshot:
    """One snapshot from several workers': each family combined as FAMILIES says (samples
    with the same labels and histogram buckets are added). Keys that are not metrics are
    taken from the first snapshot."""
    merged: Snapshot = {}
    for snapshot in snapshots:
        for key, value in snapshot.items():
            family = FAMILY.get(key)
            if key not in merged:
                merged[key] = value  # combining builds new lists and dicts: no copy
            elif family is not None:
                merged[key] = _combine(family, merged[key], value)
    return merged


def carried(previous: Snapshot, now: Snapshot) -> Snapshot:
    """`now` with the counters of `previous` added: a worker that replaces one that died
    goes on from its predecessor's totals, so the server's counters never go back."""
    base = {name: value for name, value in previous.items()
            if name in FAMILY and FAMILY[name].kind != "gauge"}
    return merge([now, base])


def _combine(family: Family, a: object, b: object) -> object:
    if isinstance(a, list) and isinstance(b, list):
        samples: dict[tuple[str, ...], dict[str, object]] = {}
        for sample in (*a, *b):
            key = tuple(str(sample[label]) for label in family.labels)
            if key in samples:
                samples[key]["value"] = _add(samples[key]["value"], sample["value"])
            else:
                samples[key] = dict(sample)
        return list(samples.values())
    if isinstance(a, dict) and isinstance(b, dict):
        counts = {bucket["le"]: bucket["value"] for bucket in a["buckets"]}
        for bucket in b["buckets"]:
            counts[bucket["le"]] = _add(counts.get(bucket["le"], 0), bucket["value"])
        return {"buckets": [{"le": le, "value": n} for le, n in counts.items()],
                "sum": round(float(a["sum"]) + float(b["sum"]), 6),
                "count": _add(a["count"], b["count"])}
    if family.combine == "min":
        return min(a, b, key=_float)
    if family.combine == "max":
        return max(a, b, key=_float)
    return _add(a, b)


def _add(a: object, b: object) -> object:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return round(_float(a) + _float(b), 6)


def _float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) else 0
