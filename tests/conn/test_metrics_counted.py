"""What a connection counts for the metrics, with fake sockets and a fake clock: each
answered request once (method class, code, bytes, duration), each close once with its
reason, keep-alive reuse, TLS handshakes, PROXY preambles and failed logins."""
from __future__ import annotations

import errno
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from evserver.connection import Connection
from evserver.loop import READ
from evserver.metrics import CLOSE_REASONS
from evserver.phases import Phase
from tests.wire import request

from .fakes import FakeSocket
from .rig import HELLO, PEER, Rig, TLSRig

TRUSTED = (f"{PEER}/32",)


def closes(rig: Rig) -> dict[str, int]:
    """The reasons counted so far, only those not zero."""
    return {reason: n for reason, n in rig.owner.counters.closed.items() if n}


def requests(rig: Rig) -> list[dict[str, object]]:
    value = rig.owner.counters.snapshot()["http_requests_total"]
    assert isinstance(value, list)
    return value


def test_each_answer_is_counted_once_by_method_and_code(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.serve(request("/hello.txt"))
    rig.serve(request("/hello.txt", method="HEAD"))
    rig.serve(request("/missing"))
    rig.serve(request("/hello.txt", method="OPTIONS"))
    rig.serve(request("/hello.txt", method="DELETE"))
    assert requests(rig) == [{"method": "GET", "code": "200", "value": 1},
                             {"method": "GET", "code": "404", "value": 1},
                             {"method": "HEAD", "code": "200", "value": 1},
                             {"method": "OPTIONS", "code": "204", "value": 1},
                             {"method": "other", "code": "405", "value": 1}]
    counters = rig.owner.counters
    assert counters.requests == 5 == len(rig.log())
    assert counters.bytes_sent == sum(entry[2] for entry in rig.log())
    assert counters.bytes_sent >= len(HELLO)


def test_a_refused_head_counts_as_method_other(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.serve(b"NOT HTTP\r\n\r\n")
    assert requests(rig) == [{"method": "other", "code": "400", "value": 1}]
    rig.receive(b"")  # the client closes while the connection lingers
    assert closes(rig) == {"done": 1}


def test_the_duration_is_the_logs_by_the_fake_clock(make_rig: Callable[..., Rig]) -> None:
    """A head that arrives in two parts 0.3 s apart took 0.3 s: the 0.5 s bucket."""
    rig = make_rig(metrics_path="/metrics")
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    rig.loop.advance(0.3)
    rig.receive(b"Host: x\r\n\r\n")
    rig.settle()
    histogram = rig.owner.counters.snapshot()["http_request_duration_seconds"]
    assert isinstance(histogram, dict)
    buckets = {b["le"]: b["value"] for b in histogram["buckets"]}
    assert (buckets["0.25"], buckets["0.5"], histogram["count"]) == (0, 1, 1)
    assert histogram["sum"] == pytest.approx(0.3)


def test_durations_are_kept_only_with_a_status_page_or_metrics(
        make_rig: Callable[..., Rig]) -> None:
    assert "http_request_duration_seconds" not in make_rig().owner.counters.snapshot()
    assert "http_request_duration_seconds" in make_rig(
        status_path="/_status").owner.counters.snapshot()


def test_keepalive_reuse_is_every_request_after_the_first(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    for _ in range(3):
        rig.serve(request("/hello.txt"))
    assert rig.conn.served == 3 and rig.owner.counters.reused == 0  # counted at the close
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED
    assert rig.owner.counters.reused == 2
    assert closes(rig) == {"client": 1}


def test_an_idle_connection_that_times_out(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.serve(request("/hello.txt"))
    rig.loop.advance(rig.owner.site.cfg.keepalive_timeout)
    assert rig.phase is Phase.CLOSED and closes(rig) == {"timeout": 1}


def test_a_response_with_connection_close_is_done(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.serve(request("/hello.txt", headers="Connection: close\r\n"))
    rig.receive(b"")  # the client closes after reading it (LINGER sees the EOF)
    assert rig.phase is Phase.CLOSED and closes(rig) == {"done": 1}


@pytest.mark.parametrize(("error", "reason"), [
    (ConnectionResetError(errno.ECONNRESET, "reset"), "reset"),
    (OSError(errno.EIO, "i/o"), "error")])
def test_socket_errors_by_kind(make_rig: Callable[..., Rig], error: OSError,
                               reason: str) -> None:
    rig = make_rig()
    rig.receive(error)
    assert rig.phase is Phase.CLOSED and closes(rig) == {reason: 1}


def test_every_close_is_counted_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.receive(b"")
    rig.conn.close("again", "error")
    assert closes(rig) == {"client": 1}
    assert set(rig.owner.counters.closed) == set(CLOSE_REASONS)


def test_an_untrusted_proxy_is_refused_and_counted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(proxy_protocol=True)  # PEER is not a trusted proxy
    counters = rig.owner.counters
    assert rig.phase is Phase.CLOSED
    assert (closes(rig), counters.proxy_failures, counters.proxy_preambles) == (
        {"refused": 1}, 1, 0)


def test_preambles_accepted_and_refused(make_rig: Callable[..., Rig]) -> None:
    good = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    good.serve(b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 80\r\n" + request("/hello.txt"))
    assert (good.owner.counters.proxy_preambles, good.owner.counters.proxy_failures) == (1, 0)
    bad = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    bad.receive(b"PROXY NONSENSE\r\n")
    assert bad.phase is Phase.CLOSED
    assert (bad.owner.counters.proxy_preambles, bad.owner.counters.proxy_failures) == (0, 1)
    assert closes(bad) == {"error": 1}
    left = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    left.receive(b"PROXY TCP4 198.51", b"")
    assert left.owner.counters.proxy_failures == 1 and closes(left) == {"client": 1}
    # A connect and close with no byte (a TCP health check) attempted nothing.
    probe = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    probe.receive(b"")
    assert probe.owner.counters.proxy_failures == 0 and closes(probe) == {"client": 1}


def test_an_opening_that_times_out_is_a_failure(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED)
    rig.receive(b"PROXY TCP4 198.51")
    rig.loop.advance(rig.owner.site.cfg.handshake_timeout)
    assert rig.phase is Phase.CLOSED and closes(rig) == {"timeout": 1}
    assert rig.owner.counters.proxy_failures == 1


def test_a_handshake_that_stalls_or_breaks_is_a_failure(docroot: Path) -> None:
    stalled = TLSRig(docroot)
    stalled.sock.handshake.append(ssl.SSLWantReadError())
    stalled.plain.feed(b"\x16\x03\x01")
    stalled.conn.on_event(READ)
    stalled.loop.advance(stalled.owner.site.cfg.handshake_timeout)
    assert stalled.phase is Phase.CLOSED and closes(stalled) == {"timeout": 1}
    assert (stalled.owner.counters.tls_failures, stalled.owner.counters.tls_handshakes) == (1, 0)
    for error, reason in ((ssl.SSLError(1, "bad record"), "error"),
                          (ssl.SSLEOFError(8, "eof"), "client")):
        broken = TLSRig(docroot)
        broken.sock.handshake.append(error)
        broken.plain.feed(b"\x16\x03\x01")
        broken.conn.on_event(READ)
        assert broken.phase is Phase.CLOSED and closes(broken) == {reason: 1}
        assert broken.owner.counters.tls_failures == 1


def test_a_tls_handshake_is_counted(make_tls: Callable[..., TLSRig]) -> None:
    rig = make_tls()
    assert (rig.owner.counters.tls_handshakes, rig.owner.counters.tls_failures) == (1, 0)


def test_a_failed_login_is_counted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=("ann:secret",), auth_insecure=True)
    wrong = "Authorization: Basic YW5uOndyb25n\r\n"  # ann:wrong
    rig.serve(request("/hello.txt", headers=wrong))
    assert [r.status for r in rig.replies()] == [401]
    assert rig.owner.counters.login_failures == 1


def test_counts_add_to_what_was_counted_before(make_rig: Callable[..., Rig],
                                               docroot: Path) -> None:
    """Each event adds one to its counter (the owner's counters outlive a connection)."""
    tls = TLSRig(docroot)
    tls.owner.counters.tls_handshakes = tls.owner.counters.tls_failures = 3
    tls.handshake()
    broken = Connection(FakeSocket(), PEER, tls.owner, tls=tls.context)  # type: ignore
    tls.sock.handshake.append(ssl.SSLError(1, "bad record"))
    broken.start()
    broken._sock.feed(b"\x16\x03\x01")  # type: ignore[attr-defined]
    broken.on_event(READ)
    assert (tls.owner.counters.tls_handshakes, tls.owner.counters.tls_failures) == (4, 4)
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED, auth=("ann:secret",),
                   auth_insecure=True)
    counters = rig.owner.counters
    counters.proxy_preambles = counters.proxy_failures = counters.login_failures = 3
    rig.serve(b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 80\r\n"
              + request("/hello.txt", headers="Authorization: Basic YW5uOndyb25n\r\n"))
    bad = Connection(FakeSocket(), PEER, rig.owner)  # type: ignore[arg-type]
    bad.start()
    bad._sock.feed(b"PROXY NONSENSE\r\n")  # type: ignore[attr-defined]
    bad.on_event(READ)
    assert (counters.proxy_preambles, counters.proxy_failures, counters.login_failures) == (
        4, 4, 4)


def test_an_untrusted_proxy_adds_one_failure(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(proxy_protocol=True)
    Connection(FakeSocket(), PEER, rig.owner).start()  # type: ignore[arg-type]
    assert rig.owner.counters.proxy_failures == 2 and closes(rig) == {"refused": 2}


@pytest.mark.parametrize("path", ["/_status", "/_metrics"])
def test_the_asking_connection_is_named_to_the_snapshot(make_rig: Callable[..., Rig],
                                                        path: str) -> None:
    """So the server does not count it idle while it is being answered."""
    rig = make_rig(status_path="/_status", metrics_path="/_metrics", status_allow=(
        f"{PEER}/32",))
    rig.serve(request(path))
    assert rig.owner.snapshot_asked_by is rig.conn
