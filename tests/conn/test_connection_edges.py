"""Layer 2: the Connection's edges, driven by fakes: each phase's deadline, the log line of
each outcome, limits one past their boundary, stale pool callbacks, the failure paths
(send, recv, dup, a pool that shuts down mid-request), keep-alive counting, error pages,
and the HTTPS connection (its handshake faked: `TLSRig`)."""
from __future__ import annotations

import errno
import logging
import os
import ssl
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evserver.connection import Connection
from evserver.files import FileBody, Resolved, load
from evserver.loop import READ, WRITE
from evserver.phases import Phase
from evserver.site import Site
from tests.wire import parse_responses, request

from .fakes import FakeSocket, KernelTLSSocket, is_closed_fd
from .rig import BIG_SIZE, HELLO, PEER, Rig, TLSRig
from .test_auth_flow import USERS, basic
from .test_connection import assert_kept_alive, assert_lingering

TRUSTED = (PEER + "/32",)


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The evserver diagnostics logged so far, as their messages."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "evserver"]


def closed_line(reason: str) -> str:
    return f"{PEER} closed: {reason}"


# -- each phase's deadline, one tick before and at it ----------------------------------------


def test_a_fresh_connection_closes_at_header_timeout_and_says_idle_timeout(
        rig: Rig, debug: Callable[[], list[str]]) -> None:
    """A silent client is dropped at header_timeout, logged as an idle timeout."""
    rig.loop.advance(4.99)
    assert rig.phase is Phase.IDLE
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b""
    assert debug() == [closed_line("idle timeout")]


def test_a_keep_alive_connection_closes_at_keepalive_timeout(
        rig: Rig, debug: Callable[[], list[str]]) -> None:
    """After a response the idle wait is keepalive_timeout, logged as an idle timeout."""
    rig.serve(request("/hello.txt"))
    rig.loop.advance(6.99)
    assert rig.phase is Phase.IDLE
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED
    assert debug() == [closed_line("idle timeout")]


def test_an_opening_closes_at_handshake_timeout(make_rig: Callable[..., Rig],
                                                debug: Callable[[], list[str]]) -> None:
    """A PROXY preamble that never ends: closed at handshake_timeout, not header_timeout."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED, handshake_timeout=3.0)
    rig.receive(b"PROXY TCP4 ")
    rig.loop.advance(2.99)
    assert rig.phase is Phase.OPENING
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b""
    assert debug() == [closed_line("opening timeout")]


def test_a_stalled_send_closes_at_send_timeout(rig: Rig, debug: Callable[[], list[str]]
                                               ) -> None:
    """No byte moved for send_timeout: closed without a word, logged as a send timeout."""
    rig.sock.window = 100
    rig.serve(request("/hello.txt"))
    rig.loop.advance(10.99)
    assert rig.phase is Phase.SEND
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED
    assert debug() == [closed_line("send timeout")]
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, 0)]  # the head was not all sent


def test_lingering_ends_at_linger_timeout(rig: Rig, debug: Callable[[], list[str]]) -> None:
    """A half-closed connection whose client never closes is dropped at linger_timeout."""
    rig.serve(b"BAD\r\n\r\n")
    assert_lingering(rig)
    rig.loop.advance(1.99)
    assert rig.phase is Phase.LINGER
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED
    assert debug()[-1] == closed_line("linger timeout")


def test_a_slow_file_gets_503_at_send_timeout(rig: Rig, debug: Callable[[], list[str]]) -> None:
    """WAIT_FILE past send_timeout: 503 that closes, logged as slow file work."""
    rig.receive(request("/hello.txt"))
    rig.loop.advance(10.99)
    assert rig.phase is Phase.WAIT_FILE and rig.sock.sent == b""
    rig.loop.advance(0.01)
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("connection") == "close"
    assert_lingering(rig)
    assert debug() == [f"{PEER} 503: file work too slow"]
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 503, len(reply.body))]
    rig.run_jobs()  # the late result is dropped
    assert len(rig.replies()) == 1


def test_a_slow_password_check_gets_503_at_login_timeout(
        make_rig: Callable[..., Rig], debug: Callable[[], list[str]]) -> None:
    """WAIT_LOGIN past login_timeout (not send_timeout): 503, logged as a slow check."""
    rig = make_rig(auth=USERS, auth_insecure=True, login_timeout=4.0)
    rig.receive(request("/hello.txt", headers=basic("alice", "wonderland")))
    rig.loop.advance(3.99)
    assert rig.phase is Phase.WAIT_LOGIN
    rig.loop.advance(0.01)
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("connection") == "close"
    assert_lingering(rig)
    assert debug() == [f"{PEER} 503: password check too slow"]
    rig.run_jobs()  # the late check is dropped: no 200 after the 503
    assert len(rig.replies()) == 1 and len(rig.owner.login_failures) == 0


def test_an_incomplete_head_gets_408_without_an_error_line(
        rig: Rig, debug: Callable[[], list[str]]) -> None:
    """A 408 is routine (slow or idle clients): no debug line of its own, only the close."""
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    rig.loop.advance(5.0)
    assert rig.replies()[0].status == 408
    rig.receive(b"")
    assert debug() == [closed_line("closed after the response")]
    assert rig.conn.served == 1


# -- the log lines of the other outcomes -----------------------------------------------------


def test_an_error_response_logs_its_status_and_detail(
        rig: Rig, debug: Callable[[], list[str]]) -> None:
    """Each error answered is one debug line: the peer, the status, the reason."""
    rig.serve(request("/missing.txt"))
    assert debug() == [f"{PEER} 404: No such file or directory"]


def test_client_closing_between_requests_is_logged(rig: Rig, debug: Callable[[], list[str]]
                                                   ) -> None:
    rig.serve(request("/hello.txt"))
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED
    assert debug() == [closed_line("client closed")]


def test_a_requested_close_is_logged_as_done(rig: Rig, debug: Callable[[], list[str]]) -> None:
    rig.serve(request("/hello.txt", close=True))
    assert rig.phase is Phase.CLOSED and debug() == [closed_line("done")]


@pytest.mark.parametrize("error, level, line", [
    (ConnectionResetError(errno.ECONNRESET, "reset"), logging.DEBUG,
     f"{PEER} disconnected: [Errno 104] reset"),
    (OSError(errno.EINVAL, "invalid"), logging.WARNING, f"{PEER}: [Errno 22] invalid"),
])
def test_a_reset_is_a_debug_line_and_another_error_a_warning(
        rig: Rig, caplog: pytest.LogCaptureFixture, error: OSError, level: int,
        line: str) -> None:
    """A client going away is routine (debug); any other socket error is worth a warning
    naming the peer."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.receive(error)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [(level, line), (logging.DEBUG, closed_line("socket error"))]


@pytest.mark.parametrize("code", [errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN,
                                  errno.ECONNABORTED, errno.ETIMEDOUT, errno.ESHUTDOWN])
def test_every_disconnect_errno_is_quiet(rig: Rig, caplog: pytest.LogCaptureFixture,
                                         code: int) -> None:
    """The errnos that only mean "the client went away" never warn."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.receive(OSError(code, os.strerror(code)))
    assert rig.phase is Phase.CLOSED
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]


# -- the access log line ----------------------------------------------------------------------


def test_the_access_line_carries_referer_user_agent_and_duration(rig: Rig) -> None:
    """The combined format's referer and user agent come from the request; the duration
    runs from the request's first byte to its last byte sent."""
    rig.receive(b"GET /hello.txt HTTP/1.1\r\nHost: test\r\n")
    rig.loop.advance(0.25)
    rig.receive(b"Referer: http://a.example/\r\nUser-Agent: probe/1.0\r\n\r\n")
    rig.loop.advance(0.5)
    rig.run_jobs()
    (line,) = rig.owner.access_log.lines
    assert line.endswith(b' 200 13 "http://a.example/" "probe/1.0" 0.750\n')
    assert rig.owner.counters.by_status() == {200: 1}


def test_a_500_for_a_half_sent_head_is_timed_from_its_first_byte(rig: Rig) -> None:
    """A bug while a head arrives: the 500's duration runs from the head's first byte."""
    rig.loop.advance(1.0)
    rig.receive(b"GET /hello")
    rig.loop.advance(2.0)
    rig.receive(RuntimeError("boom"))
    (line,) = rig.owner.access_log.lines
    assert b'"GET /hello" 500 ' in line and line.endswith(b" 2.000\n")


def test_an_interrupted_response_is_logged_with_the_bytes_sent(rig: Rig) -> None:
    """A close in the middle of a body still logs the response, with what went out."""
    rig.sock.window = 5000
    rig.serve(request("/big.bin"))
    head_len = bytes(rig.sock.sent).index(b"\r\n\r\n") + 4
    rig.conn.close("test", "client")
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 5000 - head_len)]


def test_the_untrusted_proxy_close_is_logged_and_forgotten(make_rig: Callable[..., Rig],
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    """--proxy-protocol from an address not trusted: closed before a read, and said so."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig = make_rig(proxy_protocol=True, trusted_proxies=("192.0.2.0/24",))
    assert rig.owner.forgotten == [rig.conn] and rig.sock.closed
    assert [r.getMessage() for r in caplog.records] == [closed_line("not a trusted proxy")]


def test_framing_lost_after_the_response_is_logged(rig: Rig, debug: Callable[[], list[str]]
                                                   ) -> None:
    """A broken body after its response: the half-close names why."""
    rig.serve(request("/hello.txt", method="POST", headers="Transfer-Encoding: chunked\r\n")
              + b"zz\r\n")
    assert [r.status for r in rig.replies()] == [405]
    assert_lingering(rig)
    lost = [m for m in debug() if "framing lost" in m]
    assert lost == [f"{PEER}: framing lost after the response: bad chunk size"]


def test_a_failed_shutdown_is_logged(rig: Rig, debug: Callable[[], list[str]]) -> None:
    rig.sock.fail_shutdown = OSError(errno.ENOTCONN, "not connected")
    rig.serve(b"BAD\r\n\r\n")
    assert rig.phase is Phase.CLOSED and debug()[-1] == closed_line("shutdown failed")


# -- limits, one past their boundary ----------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_nth_request_of_max_keepalive_requests_closes(make_rig: Callable[..., Rig],
                                                          limit: int) -> None:
    """Requests 1..N-1 keep the connection; the Nth says close, errors count too."""
    rig = make_rig(max_keepalive_requests=limit)
    for i in range(limit):
        rig.serve(request("/missing.txt" if i % 2 else "/hello.txt"))
    closes = [r.header("connection") for r in rig.replies()]
    assert closes == [None] * (limit - 1) + ["close"]
    assert rig.conn.served == limit
    assert_lingering(rig)


def test_served_counts_a_request_rejected_by_the_parser(rig: Rig) -> None:
    """`served` (which the server reads to close idle keep-alive connections) counts
    every response, also one to a request the parser refused."""
    rig.serve(request("/hello.txt"))
    rig.serve(b"BAD\r\n\r\n")
    assert [r.status for r in rig.replies()] == [200, 400] and rig.conn.served == 2


@pytest.mark.parametrize("extra, reading", [(-1, True), (0, False)])
def test_read_interest_stops_at_a_head_of_buffered_bytes(make_rig: Callable[..., Rig],
                                                         extra: int, reading: bool) -> None:
    """max_head bytes pipelined behind an answered request: READ is dropped; one fewer:
    it stays."""
    rig = make_rig(max_head=1024, max_request_line=512, max_header_size=512)
    rig.serve(request("/hello.txt"))
    head = b"GET /hello.txt HTTP/1.1\r\nX: "
    rest = head + b"a" * (1024 + extra - len(head))
    rig.receive(request("/hello.txt") + rest)
    assert rig.conn._parser.buffered == 1024 + extra
    assert rig.phase is Phase.HEAD and rig.mask == (READ if reading else 0)


@pytest.mark.parametrize("size, status", [(100, 200), (101, 431)])
def test_max_header_size_reaches_the_parser(make_rig: Callable[..., Rig], size: int,
                                            status: int) -> None:
    rig = make_rig(max_header_size=100)
    field = "X-Long: " + "a" * (size - len("X-Long: "))
    rig.serve(request("/hello.txt", headers=field + "\r\n"))
    assert [r.status for r in rig.replies()] == [status]


def test_an_opening_reads_at_most_recv_size_per_event(make_rig: Callable[..., Rig]) -> None:
    """The PROXY preamble is read recv_size bytes at a time, like HTTP."""
    rig = make_rig(proxy_protocol=True, trusted_proxies=TRUSTED, recv_size=16)
    preamble = b"PROXY TCP4 198.51.100.7 192.0.2.1 51000 80\r\n"
    rig.receive(preamble + request("/hello.txt"))
    assert rig.phase is Phase.OPENING and rig.sock.recv_calls == 1
    assert len(rig.sock.script[0]) == len(preamble) + len(request("/hello.txt")) - 16


@pytest.mark.parametrize("size, writes", [(64 * 1024, ["send"]),
                                          (64 * 1024 + 1, ["sendmsg"])])
def test_a_body_up_to_64_kib_is_joined_to_its_head(make_rig: Callable[..., Rig], size: int,
                                                   writes: list[str]) -> None:
    """Up to 64 KiB the head and the body go out in one send of one joined buffer; above,
    one sendmsg of the two (no copy). Here through the general path (a 100 Continue
    first)."""
    rig = make_rig(cache_max_entry=128 * 1024)
    body = os.urandom(size)
    (rig.docroot / "edge.bin").write_bytes(body)
    rig.receive(request("/edge.bin", headers="Expect: 100-continue\r\nContent-Length: 2\r\n"))
    rig.settle()
    assert [kind for kind, _ in rig.sock.writes] == writes
    assert bytes(rig.sock.sent).startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert bytes(rig.sock.sent).endswith(body)
    assert rig.log() == [(b"GET /edge.bin HTTP/1.1", 200, size)]


def test_a_deadline_equal_to_the_armed_timer_keeps_it(rig: Rig) -> None:
    """A request's first byte in the same instant as the accept: its header deadline is
    the one already armed, so no timer is cancelled and made again."""
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    assert rig.phase is Phase.HEAD
    assert len(rig.loop.timers) == 1 and rig.loop.timers[0].live


def test_the_selector_calls_back_the_connection_itself(rig: Rig) -> None:
    """register and modify name the connection as the handler of its socket's events."""
    assert rig.loop.keys[rig.sock] == (READ, rig.conn)
    rig.serve(request("/hello.txt"))
    rig.sock.window = 10
    rig.serve(request("/hello.txt"))  # a cache hit: READ becomes WRITE in one modify
    assert rig.loop.history[-1] == ("modify", WRITE)
    assert rig.loop.keys[rig.sock] == (WRITE, rig.conn)
    rig.sock.unblock()
    rig.writable()
    assert rig.loop.history[-1] == ("modify", READ)
    assert rig.loop.keys[rig.sock] == (READ, rig.conn)


def test_the_owner_hears_which_connection_went_idle(rig: Rig) -> None:
    heard: list[tuple[Any, bool]] = []
    rig.owner.on_idle = lambda conn, idle: heard.append((conn, idle))  # type: ignore
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    assert heard == [(rig.conn, False)]


def test_a_discarded_body_ends_in_idle_with_the_keepalive_deadline(rig: Rig) -> None:
    """Once the rest of an answered body is read, the wait for the next request is an
    idle one (keepalive_timeout), not the body's."""
    rig.serve(request("/hello.txt", method="POST", headers="Content-Length: 10\r\n") + b"12345")
    assert rig.phase is Phase.HEAD
    rig.loop.advance(1.0)
    rig.receive(b"67890")
    assert rig.phase is Phase.IDLE
    rig.loop.advance(6.99)
    assert rig.phase is Phase.IDLE
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED


# -- keep-alive answers to HTTP/1.0 and HEAD ---------------------------------------------------


def test_an_http10_keep_alive_error_confirms_keep_alive(rig: Rig) -> None:
    """A 404 to an HTTP/1.0 keep-alive client says `Connection: keep-alive` too."""
    rig.serve(request("/missing.txt", version="HTTP/1.0", headers="Connection: keep-alive\r\n"))
    (reply,) = rig.replies()
    assert reply.status == 404 and reply.header("connection") == "keep-alive"
    assert_kept_alive(rig)


@pytest.mark.parametrize("warm", [False, True])
def test_head_of_a_small_file_sends_the_head_only(rig: Rig, warm: bool) -> None:
    """HEAD of an in-memory file, loaded or a cache hit: its length, and no body bytes."""
    if warm:
        rig.serve(request("/hello.txt"))
        rig.sock.sent.clear()
    rig.serve(request("/hello.txt", method="HEAD"))
    (reply,) = rig.replies(head_only=(True,))
    assert reply.status == 200 and reply.header("content-length") == str(len(HELLO))
    assert bytes(rig.sock.sent) == reply.head
    assert_kept_alive(rig)


# -- what the site decides: error pages, status page, CORS, SPA --------------------------------


def test_the_roots_error_page_replaces_the_generic_one(rig: Rig) -> None:
    """A 404.html in the root answers 404s; other statuses keep evserver's page."""
    rig.owner.site = replace(rig.owner.site, error_pages={404: b"<p>nothing here</p>\n"})
    rig.serve(request("/missing.txt"))
    rig.serve(request("/hello.txt", method="BREW"))
    (missing, brew) = rig.replies()
    assert (missing.status, missing.body) == (404, b"<p>nothing here</p>\n")
    assert brew.status == 501 and b"nothing here" not in brew.body


def cache_controls(head: bytes) -> list[bytes]:
    """Every Cache-Control value of a response head, repeated ones included."""
    return [line.partition(b":")[2].strip() for line in head.split(b"\r\n")
            if line.lower().startswith(b"cache-control:")]


@pytest.mark.parametrize("sent, overrides, status", [
    (request("/missing.txt"), {}, 404),
    (request("/missing.txt", method="HEAD"), {}, 404),
    (request("/sub"), {}, 301),  # a folder without its slash
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", {}, 400),
    (request("/hello.txt"), {"auth": USERS, "auth_insecure": True}, 401),
    (request("/hello.txt"), {"deny": TRUSTED}, 403),
    (request("/hello.txt", method="POST"), {}, 405),
    (request("/hello.txt", headers='If-Match: "other"\r\n'), {}, 412),
    (request("/hello.txt", headers="Range: bytes=500-\r\n"), {}, 416),
    (request("/hello.txt", method="BREW"), {}, 501),
    (request("/hello.txt", method="OPTIONS"), {}, 204),
    (request("/hello.txt"), {}, 200),
    (request("/hello.txt", headers="Range: bytes=0-1\r\n"), {}, 206),
    (request("/hello.txt", headers="If-None-Match: *\r\n"), {}, 304),
    (request("/hello.txt", headers=basic("alice", "wonderland")),
     {"auth": USERS, "auth_insecure": True}, 200),
])
def test_no_cache_puts_no_store_on_every_response_once(
        make_rig: Callable[..., Rig], docroot: Path, sent: bytes, overrides: dict[str, Any],
        status: int) -> None:
    """--no-cache promises `Cache-Control: no-store` on everything: errors, redirects,
    refusals and OPTIONS as well as files, 206 and 304, each with the one line."""
    (docroot / "sub").mkdir()
    (docroot / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    rig = make_rig(no_cache=True, **overrides)
    rig.serve(sent)
    (reply,) = rig.replies(head_only=(sent.startswith(b"HEAD "),))
    assert reply.status == status
    assert cache_controls(reply.head) == [b"no-store"], reply.head


def test_no_cache_puts_no_store_on_the_roots_error_page_and_a_408(
        make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(no_cache=True)
    rig.owner.site = replace(rig.owner.site, error_pages={404: b"<p>nothing here</p>\n"})
    rig.serve(request("/missing.txt"))
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    rig.loop.advance(5.0)
    (missing, late) = rig.replies()
    assert (missing.status, missing.body, late.status) == (404, b"<p>nothing here</p>\n", 408)
    assert cache_controls(missing.head) == cache_controls(late.head) == [b"no-store"]


def test_without_no_cache_an_error_says_nothing_of_caching(rig: Rig) -> None:
    rig.serve(request("/missing.txt"))
    (reply,) = rig.replies()
    assert reply.status == 404 and cache_controls(reply.head) == []


@pytest.mark.parametrize("target, accept, ctype, count", [
    ("/_status?json", "", "application/json",
     b'{\n      "code": "200",\n      "method": "GET",\n      "value": 1\n    }'),
    ("/_status?format=json", "", "application/json", b'"code": "200"'),
    ("/_status", "Accept: application/json\r\n", "application/json", b'"code": "200"'),
    ("/_status", "", "text/html; charset=utf-8", b"<html"),
    ("/_metrics", "", "text/plain; version=0.0.4; charset=utf-8",
     b'\nevserver_http_requests_total{method="GET",code="200"} 1\n'),
])
def test_the_status_page_and_metrics_show_the_counters_to_an_allowed_client(
        make_rig: Callable[..., Rig], target: str, accept: str, ctype: str,
        count: bytes) -> None:
    rig = make_rig(status_path="/_status", metrics_path="/_metrics", status_allow=TRUSTED)
    rig.serve(request("/hello.txt"))
    rig.serve(request(target, headers=accept))
    reply = rig.replies()[-1]
    assert reply.status == 200 and reply.header("content-type") == ctype
    assert count in reply.body


@pytest.mark.parametrize("path", ["/_status", "/_metrics"])
def test_the_status_page_and_metrics_are_403_to_others(make_rig: Callable[..., Rig],
                                                        path: str) -> None:
    rig = make_rig(status_path="/_status", metrics_path="/_metrics")  # loopback only
    rig.serve(request(path))
    assert [r.status for r in rig.replies()] == [403]


def test_a_cors_preflight_is_answered(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(cors="*")
    rig.serve(request("/hello.txt", method="OPTIONS",
                      headers="Origin: http://a.example\r\nAccess-Control-Request-Method: GET\r\n"))
    (reply,) = rig.replies()
    assert reply.status == 204
    assert reply.header("access-control-allow-methods") == "GET, HEAD, OPTIONS"


def test_spa_answers_an_unknown_route_with_the_index(make_rig: Callable[..., Rig]) -> None:
    """--spa: a missing extensionless path loads /index.html instead of a 404."""
    rig = make_rig(spa=True)
    rig.serve(request("/some/route"))
    (reply,) = rig.replies()
    assert reply.status == 200 and reply.body == rig.file("index.html")


def test_revalidation_hands_the_stale_body_to_the_pool(rig: Rig) -> None:
    """After the TTL an unchanged file is revalidated against the cached body, which is
    kept as it is (not read again)."""
    rig.serve(request("/hello.txt"))
    key = str(rig.docroot / "hello.txt")
    before = rig.owner.cache.lookup(key, rig.loop.now)[0]
    rig.loop.advance(rig.owner.cfg.cache_ttl + 0.1)
    rig.receive(request("/hello.txt"))
    (job,) = rig.loop.undelivered()
    assert job.args[3] is before  # load(path, docroot, cfg, stale, encodings)
    rig.settle()
    assert rig.owner.cache.lookup(key, rig.loop.now)[0] is before
    assert [r.body for r in rig.replies()] == [HELLO, HELLO]


# -- failure paths: send, recv, dup, the pool ---------------------------------------------------


def test_a_first_send_that_would_block_resumes_from_byte_zero(rig: Rig) -> None:
    """The socket takes nothing at first: the whole response waits for WRITE."""
    rig.sock.window = 0
    rig.serve(request("/hello.txt"))
    assert rig.phase is Phase.SEND and rig.sock.sent == b""
    rig.sock.unblock()
    rig.writable()
    assert [r.body for r in rig.replies()] == [HELLO]
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, len(HELLO))]
    assert_kept_alive(rig)


def test_a_reset_on_the_first_send_is_a_quiet_close(rig: Rig,
                                                    debug: Callable[[], list[str]]) -> None:
    rig.sock.fail_send = ConnectionResetError(errno.ECONNRESET, "reset")
    rig.serve(request("/hello.txt"))
    assert rig.phase is Phase.CLOSED
    assert debug() == [f"{PEER} disconnected: [Errno 104] reset", closed_line("socket error")]
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, 0)]


@pytest.mark.parametrize("limit_past_head", [0, 1000])
def test_a_partial_sendmsg_resumes_exactly(make_rig: Callable[..., Rig],
                                           limit_past_head: int) -> None:
    """A sendmsg that takes the head and part of the body (or the head alone) goes on
    from the right byte of the body."""
    rig = make_rig(cache_max_entry=256 * 1024)
    rig.serve(request("/mid.bin"))
    head_len = bytes(rig.sock.sent).index(b"\r\n\r\n") + 4
    rig.sock.sent.clear()
    rig.sock.send_limit = head_len + limit_past_head
    before = len(rig.sock.writes)
    rig.serve(request("/mid.bin"))
    (reply,) = rig.replies()
    assert reply.body == rig.file("mid.bin")
    assert rig.sock.writes[before] == ("sendmsg", head_len + limit_past_head)
    assert rig.log()[-1] == (b"GET /mid.bin HTTP/1.1", 200, len(reply.body))


def test_a_sendmsg_that_would_block_and_one_that_fails(make_rig: Callable[..., Rig],
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    """A large in-memory body: EAGAIN waits for WRITE; another error warns and closes,
    with the response logged."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig = make_rig(cache_max_entry=256 * 1024)
    rig.serve(request("/mid.bin"))
    rig.sock.fail_send = OSError(errno.EIO, "io")
    rig.serve(request("/mid.bin"))
    assert rig.phase is Phase.CLOSED
    assert (logging.WARNING, f"{PEER}: [Errno 5] io") in [(r.levelno, r.getMessage())
                                                        for r in caplog.records]
    assert [status for _, status, _ in rig.log()] == [200, 200]


def test_no_fd_is_closed_by_a_response_sent_from_memory(rig: Rig) -> None:
    """A partial send of in-memory bytes makes a response in flight that owns no fd."""
    fds = {int(fd) for fd in os.listdir("/proc/self/fd") if not is_closed_fd(int(fd))}
    rig.sock.window = 10
    rig.serve(request("/hello.txt"))
    rig.sock.unblock()
    rig.writable()
    assert [r.body for r in rig.replies()] == [HELLO]
    assert all(not is_closed_fd(fd) for fd in fds if fd > 2 or fd == 1)


def test_dup_failing_answers_503_and_keeps_the_connection(
        make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of fds for a cached file's dup: 503 with Retry-After, the connection kept and
    the cache's fd untouched; the next request is served."""
    rig = make_rig(cache_max_open=4)
    rig.serve(request("/big.bin"))
    real_dup = os.dup

    def no_fds(fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "dup", no_fds)
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.serve(request("/big.bin"))
    monkeypatch.setattr(os, "dup", real_dup)
    assert f"{PEER} 503: out of fds" in [r.getMessage() for r in caplog.records]
    reply = rig.replies()[-1]
    assert reply.status == 503 and b"\r\nRetry-After: 1\r\n" in reply.head
    assert reply.header("connection") is None and len(rig.replies()) == 2
    assert_kept_alive(rig)
    path = rig.docroot / "big.bin"
    assert (logging.WARNING, f"cannot dup the fd of {os.path.realpath(path)}: "
            "[Errno 24] Too many open files") in [(r.levelno, r.getMessage())
                                                  for r in caplog.records]
    rig.serve(request("/big.bin"))
    assert rig.replies()[-1].body == rig.file("big.bin")


def test_a_full_pool_queue_says_so(make_rig: Callable[..., Rig],
                                   debug: Callable[[], list[str]]) -> None:
    rig = make_rig(max_pending_jobs=1)
    rig.loop.pending_jobs = 1
    rig.serve(request("/hello.txt"))
    reply = rig.replies()[-1]
    assert reply.status == 503 and b"\r\nRetry-After: 1\r\n" in reply.head
    assert debug() == [f"{PEER} 503: pool queue full"]


def test_a_pool_shut_down_before_a_load_says_so(rig: Rig, debug: Callable[[], list[str]]
                                                ) -> None:
    rig.loop.pool_closed = True
    rig.serve(request("/hello.txt"))
    assert rig.replies()[0].status == 503
    assert debug()[0] == f"{PEER} 503: shutting down"


def test_a_pool_shut_down_before_a_password_check_answers_503(
        make_rig: Callable[..., Rig], debug: Callable[[], list[str]]) -> None:
    """SIGTERM between the request and its password check: 503 that closes."""
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.loop.pool_closed = True
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("connection") == "close"
    assert debug()[0] == f"{PEER} 503: shutting down"


def test_a_failing_load_logs_the_file_and_answers_500(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception from the pool: logged with the file it was loading (not
    as a bug of the connection), then 500."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.receive(request("/hello.txt"))
    (job,) = rig.loop.jobs
    job.fail(RuntimeError("disk on fire"))
    assert rig.replies()[0].status == 500
    key = str(rig.docroot / "hello.txt")
    assert [r.getMessage() for r in caplog.records][:2] == [
        f"loading {key} failed", f"{PEER} 500: load failed"]


# -- bugs: an exception escaping a handler ------------------------------------------------------


def broken(*args: Any) -> Any:
    raise RuntimeError("boom")


def test_a_bug_before_the_response_answers_500_and_says_so(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.owner.cache.lookup = broken  # type: ignore[method-assign]
    rig.receive(request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [500]
    assert [r.getMessage() for r in caplog.records][:2] == [
        f"{PEER}: internal error", f"{PEER} 500: bug"]


def test_a_bug_once_the_response_started_closes_without_a_500(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A second response would corrupt the first: close, and log the one begun."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.sock.fail_send = RuntimeError("boom")  # type: ignore[assignment]
    rig.serve(request("/hello.txt"))
    assert rig.sock.sent == b"" and rig.phase is Phase.CLOSED
    assert [r.getMessage() for r in caplog.records] == [
        f"{PEER}: internal error", closed_line("internal error")]
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, 0)]


def test_a_bug_while_lingering_just_closes(rig: Rig, debug: Callable[[], list[str]]) -> None:
    """Our side is shut: no 500 can follow; close."""
    rig.serve(b"BAD\r\n\r\n")
    sent = bytes(rig.sock.sent)
    rig.receive(RuntimeError("boom"))
    assert rig.phase is Phase.CLOSED and bytes(rig.sock.sent) == sent
    assert debug()[-2:] == [f"{PEER}: internal error", closed_line("internal error")]


def test_a_bug_that_also_breaks_the_500_still_closes(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.owner.cache.lookup = broken  # type: ignore[method-assign]
    rig.sock.fail_send = RuntimeError("boom again")  # type: ignore[assignment]
    rig.receive(request("/hello.txt"))
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b""
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"{PEER}: internal error"
    assert f"{PEER}: cannot even answer 500" in messages
    assert messages[-1] == closed_line("internal error")


# -- late and stale pool callbacks ----------------------------------------------------------------


def test_a_stale_password_check_never_answers_the_next_request(
        make_rig: Callable[..., Rig]) -> None:
    """The first request's check completing again during the second's is ignored: only
    the check of the request waiting counts."""
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    first = rig.loop.jobs[0]
    rig.receive(request("/index.html", headers=basic("alice", "wonderland")))
    assert rig.phase is Phase.WAIT_LOGIN
    stale: Future[str | None] = Future()
    stale.set_result(None)  # a failed check
    first.on_done(stale)
    assert rig.phase is Phase.WAIT_LOGIN and len(rig.replies()) == 1
    assert len(rig.owner.login_failures) == 0
    rig.settle()
    assert [r.status for r in rig.replies()] == [200, 200]


def test_a_password_check_finishing_after_close_is_ignored(
        make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.receive(request("/hello.txt", headers=basic("alice", "guess")))
    rig.conn.close("client went away", "client")
    rig.run_jobs()
    assert len(rig.owner.login_failures) == 0 and len(rig.loop.jobs) == 1


def test_a_failed_login_warns_and_a_right_one_clears_the_count(
        make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.serve(request("/hello.txt", headers=basic("alice", "guess")))
    assert len(rig.owner.login_failures) == 1
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"{PEER}: failed login for /hello.txt")]
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    assert len(rig.owner.login_failures) == 0
    assert [r.status for r in rig.replies()] == [401, 200]


def test_a_waiter_that_closed_does_not_load_when_the_file_arrives(rig: Rig) -> None:
    """A request waiting for another's load, closed meanwhile: nothing is retried."""
    others = FakeSocket(rig.journal)
    other = Connection(others, PEER, rig.owner, sendfile=others.sendfile)  # type: ignore
    other.start()
    rig.receive(request("/big.bin"))  # not kept: with cache_max_open=0 each loads again
    others.feed(request("/big.bin"))
    other.on_event(READ)
    other.close("went away", "client")
    rig.settle()
    assert len(rig.loop.jobs) == 1 and others.sent == b""


def test_a_requested_close_with_a_reset_waiting_lingers(rig: Rig) -> None:
    """Peeking at the input after a `Connection: close` response fails: linger, and let
    the drain meet the error (closing at once could reset the response away)."""
    rig.sock.feed(request("/hello.txt", close=True),
                  ConnectionResetError(errno.ECONNRESET, "reset"))
    rig.conn.on_event(READ)
    rig.settle()
    assert len(rig.replies()) == 1
    assert_lingering(rig)


def test_a_requested_close_with_more_input_gets_one_response_and_lingers(rig: Rig) -> None:
    rig.sock.feed(request("/hello.txt", close=True), b"unexpected")
    rig.conn.on_event(READ)
    rig.settle()
    assert [r.status for r in rig.replies()] == [200]
    assert_lingering(rig)


def test_a_file_ending_short_names_it_in_the_warning(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    os.truncate(rig.docroot / "big.bin", 15_000)
    rig.settle()
    path = os.path.realpath(rig.docroot / "big.bin")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"{path} shrank while being sent")]
    assert_lingering(rig)


# -- HTTPS: the handshake (faked), then HTTP over the TLS socket ----------------------------------


def test_the_tls_socket_replaces_the_plain_one_in_the_selector(
        make_tls: Callable[..., TLSRig]) -> None:
    rig = make_tls()
    assert rig.phase is Phase.IDLE
    assert rig.plain not in rig.loop.keys and rig.loop.keys[rig.sock] == (READ, rig.conn)
    assert rig.context.wrapped_from == [
        (rig.plain, {"server_side": True, "do_handshake_on_connect": False})]
    rig.serve(request("/hello.txt"))
    assert [r.body for r in rig.replies()] == [HELLO]


@pytest.mark.parametrize("want, mask", [(ssl.SSLWantReadError, READ),
                                        (ssl.SSLWantWriteError, WRITE)])
def test_a_handshake_waits_the_way_openssl_asks(docroot: Path, want: type[Exception],
                                                mask: int) -> None:
    rig = TLSRig(docroot)
    rig.sock.handshake.append(want())
    rig.handshake()
    assert rig.phase is Phase.OPENING and rig.mask == mask
    rig.conn.on_event(mask)
    assert rig.phase is Phase.IDLE and rig.mask == READ


def test_a_failed_handshake_closes_and_says_why(docroot: Path,
                                                debug: Callable[[], list[str]]) -> None:
    rig = TLSRig(docroot)
    rig.sock.handshake.append(ssl.SSLError(1, "bad record"))
    rig.handshake()
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert debug() == [closed_line("TLS handshake failed: bad record")]


def test_a_reset_before_the_handshake_is_a_quiet_close(docroot: Path,
                                                       debug: Callable[[], list[str]]) -> None:
    rig = TLSRig(docroot)
    rig.plain.feed(ConnectionResetError(errno.ECONNRESET, "reset"))
    rig.conn.on_event(READ)
    assert rig.phase is Phase.CLOSED
    assert debug() == [f"{PEER} disconnected: [Errno 104] reset", closed_line("socket error")]


def test_plain_http_on_the_tls_port_gets_a_plain_400(docroot: Path) -> None:
    """Plain HTTP arriving on the HTTPS port: a 400 over plain HTTP, without HSTS."""
    rig = TLSRig(docroot, hsts=600)
    rig.plain.feed(request("/hello.txt"))
    rig.conn.on_event(READ)  # sniffed: not a ClientHello
    assert rig.phase is Phase.IDLE and rig.loop.keys[rig.plain] == (READ, rig.conn)
    rig.conn.on_event(READ)
    (reply,) = parse_responses(bytes(rig.plain.sent))
    assert reply.status == 400 and reply.header("strict-transport-security") is None
    assert rig.context.wrapped_from == []


@pytest.mark.parametrize("target", ["/hello.txt", "/missing.txt"])
def test_https_responses_carry_hsts(make_tls: Callable[..., TLSRig], target: str) -> None:
    """Cache hit (fast path) and error page alike carry Strict-Transport-Security."""
    rig = make_tls(hsts=600)
    rig.serve(request(target))
    rig.serve(request(target))
    assert [r.header("strict-transport-security") for r in rig.replies()] == ["max-age=600"] * 2


def test_a_login_over_https_needs_no_auth_insecure(make_tls: Callable[..., TLSRig]) -> None:
    rig = make_tls(auth=USERS)
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    assert [r.status for r in rig.replies()] == [200]


def test_decrypted_bytes_openssl_holds_are_read_on_the_next_turn(
        make_tls: Callable[..., TLSRig]) -> None:
    """Bytes OpenSSL already decrypted raise no event: after a read that filled the buffer
    (the only kind that can leave any), the connection comes back for them."""
    line = b"GET /hello.txt HTTP/1.1\r\n"
    rig = make_tls(recv_size=len(line))
    rig.sock.pending_bytes = 10
    rig.receive(line)
    assert list(rig.loop.soon) == [(rig.conn.on_event, (READ,))]
    rig.sock.pending_bytes = 0
    rig.sock.feed(b"Host: test\r\n\r\n")
    rig.settle()
    assert [r.body for r in rig.replies()] == [HELLO]


def test_a_read_shorter_than_the_buffer_does_not_ask_openssl_for_more(
        make_tls: Callable[..., TLSRig], monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL hands over a whole record when the buffer has room, so a short read leaves
    nothing decrypted behind: `pending()` (two Python calls in ssl.py) is not asked."""
    rig = make_tls()
    asked: list[int] = []
    monkeypatch.setattr(rig.sock, "pending", lambda: asked.append(1) or 0)
    rig.serve(request("/hello.txt"))
    rig.serve(request("/hello.txt"))
    assert asked == [] and [r.status for r in rig.replies()] == [200, 200]


def test_over_tls_a_file_goes_out_in_chunks_the_pool_reads(
        make_tls: Callable[..., TLSRig]) -> None:
    """No sendfile over TLS: the pool preads each chunk, then it is sent as bytes."""
    rig = make_tls()
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    assert rig.phase is Phase.WAIT_CHUNK and rig.mask == 0
    (job,) = rig.loop.undelivered()
    assert job.fn.args[1:] == (0, BIG_SIZE)  # (fd, offset, size)
    rig.settle()
    (reply,) = rig.replies()
    assert reply.body == rig.file("big.bin") and rig.sock.sendfile_calls == []
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, BIG_SIZE)]
    assert_kept_alive(rig)


def test_a_tls_file_over_one_chunk_ignores_a_stale_chunk(
        make_tls: Callable[..., TLSRig]) -> None:
    """A file of two chunks; the first chunk's job completing again while the second is
    read changes nothing."""
    rig = make_tls()
    data = os.urandom(300 * 1024)
    (rig.docroot / "large.bin").write_bytes(data)
    rig.receive(request("/large.bin"))
    rig.run_jobs()  # the load
    (first,) = rig.run_jobs()  # the first chunk: sent, then the second is asked for
    assert rig.phase is Phase.WAIT_CHUNK
    first_job = rig.loop.jobs[1]
    sent = len(rig.sock.sent)
    first_job.on_done(first)
    assert len(rig.sock.sent) == sent and rig.phase is Phase.WAIT_CHUNK
    rig.settle()
    assert rig.replies()[0].body == data


def test_a_tls_chunk_too_slow_closes_at_send_timeout(make_tls: Callable[..., TLSRig],
                                                     debug: Callable[[], list[str]]) -> None:
    rig = make_tls()
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    rig.loop.advance(10.99)
    assert rig.phase is Phase.WAIT_CHUNK
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED
    assert debug()[-1] == closed_line("wait_chunk timeout")
    rig.run_jobs()  # the late chunk
    assert rig.phase is Phase.CLOSED


@pytest.mark.parametrize("outcome", ["empty", "error"])
def test_a_tls_chunk_that_cannot_be_read_ends_the_response_short(
        make_tls: Callable[..., TLSRig], caplog: pytest.LogCaptureFixture,
        outcome: str) -> None:
    """The file shrank (an empty chunk) or the read failed: the Content-Length cannot be
    kept, so the connection ends after what was sent."""
    rig = make_tls()
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    (job,) = rig.loop.undelivered()
    if outcome == "empty":
        job.future.set_result((0, b""))
        job.deliver()
    else:
        job.fail(OSError(errno.EIO, "io"))
    assert_lingering(rig)
    path = os.path.realpath(rig.docroot / "big.bin")
    why = "shrank while being sent" if outcome == "empty" else "could not be read: [Errno 5] io"
    assert [r.getMessage() for r in caplog.records] == [f"{path} {why}"]
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 0)]


def test_a_pool_shut_down_mid_download_closes(make_tls: Callable[..., TLSRig],
                                              debug: Callable[[], list[str]]) -> None:
    """The pool refuses the next chunk (the server stops): close, logging what was sent."""
    rig = make_tls()
    rig.receive(request("/big.bin"))
    rig.loop.pool_closed = True
    rig.run_jobs()
    assert rig.phase is Phase.CLOSED and debug()[-1] == closed_line("shutting down")
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 0)]


def test_a_large_in_memory_body_over_tls_is_sent_without_sendmsg(
        make_tls: Callable[..., TLSRig]) -> None:
    rig = make_tls(cache_max_entry=256 * 1024)
    rig.serve(request("/mid.bin"))
    rig.serve(request("/mid.bin"))
    assert [r.body for r in rig.replies()] == [rig.file("mid.bin")] * 2
    assert {kind for kind, _ in rig.sock.writes} == {"send"}


def test_a_requested_close_over_tls_with_bytes_openssl_holds_lingers(
        make_tls: Callable[..., TLSRig]) -> None:
    rig = make_tls()
    rig.sock.pending_bytes = 1
    rig.serve(request("/hello.txt", close=True))
    rig.loop.soon.clear()
    assert [r.status for r in rig.replies()] == [200]
    assert_lingering(rig)


@pytest.mark.parametrize("target", ["/hello.txt", "/missing.txt"])
def test_plain_http_responses_carry_no_hsts(make_rig: Callable[..., Rig], target: str) -> None:
    """Strict-Transport-Security is an HTTPS header only (RFC 6797 §7.2)."""
    rig = make_rig(hsts=600)
    rig.serve(request(target))
    rig.serve(request(target))
    assert [r.header("strict-transport-security") for r in rig.replies()] == [None, None]


def test_a_conditional_request_for_a_listing_gets_the_listing(make_rig: Callable[..., Rig]
                                                              ) -> None:
    """Generated content has no validators: If-None-Match: * cannot make it a 304."""
    rig = make_rig(listing=True)
    (rig.docroot / "dir").mkdir()
    (rig.docroot / "dir" / "a.txt").write_bytes(b"a")
    rig.serve(request("/dir/", headers="If-None-Match: *\r\n"))
    (reply,) = rig.replies()
    assert reply.status == 200 and b"a.txt" in reply.body


@pytest.mark.parametrize(("accept", "ctype"), [
    ("Accept: application/json\r\n", "application/json"),
    ("Accept: text/html,*/*;q=0.8\r\n", "text/html; charset=utf-8"),
    ("", "text/html; charset=utf-8")])
def test_a_listing_follows_the_clients_accept(make_rig: Callable[..., Rig], accept: str,
                                              ctype: str) -> None:
    rig = make_rig(listing=True)
    (rig.docroot / "dir").mkdir()
    (rig.docroot / "dir" / "a.txt").write_bytes(b"a")
    rig.serve(request("/dir/", headers=accept))
    (reply,) = rig.replies()
    assert reply.status == 200 and reply.header("content-type") == ctype
    assert reply.header("vary") == "Accept" and b"a.txt" in reply.body


def test_a_bug_between_requests_closes_without_a_response(
        rig: Rig, debug: Callable[[], list[str]]) -> None:
    """After a response, with no new request begun, a 500 would answer nothing (the client
    would take it for its next request's): the connection just closes, trying no 500."""
    rig.serve(request("/hello.txt"))
    rig.receive(RuntimeError("boom"))
    assert [r.status for r in rig.replies()] == [200]
    assert rig.phase is Phase.CLOSED
    assert [entry[1] for entry in rig.log()] == [200]
    assert debug()[-2:] == [f"{PEER}: internal error", closed_line("internal error")]


def test_a_bug_before_any_request_closes_without_a_response(rig: Rig) -> None:
    """No byte of a request yet: nothing to answer, nothing to log."""
    rig.receive(RuntimeError("boom"))
    assert rig.sock.sent == b"" and rig.phase is Phase.CLOSED
    assert rig.log() == []


def test_a_bug_in_the_rest_of_an_answered_body_sends_nothing_more(rig: Rig) -> None:
    """The request has its response; the bug strikes while its body is discarded."""
    rig.serve(request("/hello.txt", method="POST", headers="Content-Length: 10\r\n") + b"abc")
    rig.receive(RuntimeError("boom"))
    assert [r.status for r in rig.replies()] == [405]
    assert rig.phase is Phase.CLOSED


@pytest.mark.parametrize("part", [b"G", b"GET /hello.txt HTTP/1.1\r\n"])
def test_a_bug_while_a_head_arrives_answers_500(rig: Rig, part: bytes) -> None:
    """Part of a request is here, one byte or more: the 500 answers it, and is logged."""
    rig.receive(part)
    rig.receive(RuntimeError("boom"))
    (reply,) = rig.replies()
    assert reply.status == 500 and reply.header("connection") == "close"
    assert rig.log() == [(part.rstrip(b"\r\n"), 500, len(reply.body))]


@pytest.mark.parametrize("headers", ["", "Accept-Encoding: gzip\r\n",
                                     "Accept-Encoding: gzip\r\nCache-Control: no-transform\r\n"])
def test_spa_with_no_index_is_a_plain_404(make_rig: Callable[..., Rig], headers: str) -> None:
    """--spa without an index.html: the fallback is missing too, so 404 (not a loop),
    whichever variant of it the request asked for."""
    rig = make_rig(spa=True)
    (rig.docroot / "index.html").unlink()
    rig.serve(request("/some/route", headers=headers))
    assert [r.status for r in rig.replies()] == [404]
    assert len(rig.loop.jobs) == 2  # the route, then the index


def test_a_tls_chunk_waits_for_write_at_once(make_tls: Callable[..., TLSRig]) -> None:
    """A chunk the socket cannot take yet: the connection asks for WRITE in one step."""
    rig = make_tls()
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    assert rig.phase is Phase.WAIT_CHUNK
    history = len(rig.loop.history)
    rig.sock.window = 0
    rig.run_jobs()
    assert rig.phase is Phase.SEND and rig.loop.history[history:] == [("register", WRITE)]
    rig.conn.close("test", "client")  # releases the file


def test_over_tls_a_stale_load_never_answers_the_next_request(
        make_tls: Callable[..., TLSRig]) -> None:
    """Chunk reads number their jobs too: the first request's load completing again
    during the second's is dropped, its fd closed."""
    rig = make_tls()
    rig.serve(request("/big.bin"))
    old_load = rig.loop.jobs[0]
    rig.receive(request("/big.bin"))
    assert rig.phase is Phase.WAIT_FILE
    stale: Future[FileBody] = Future()
    body = load(Resolved(str(rig.docroot / "big.bin"), b"/big.bin/"), rig.owner.site.docroot,
                rig.owner.cfg)
    stale.set_result(body)
    sent = len(rig.sock.sent)
    old_load.on_done(stale)
    assert body.fd is not None and is_closed_fd(body.fd)
    assert len(rig.sock.sent) == sent and rig.phase is Phase.WAIT_FILE
    rig.settle()
    assert [r.body for r in rig.replies()] == [rig.file("big.bin")] * 2


@pytest.mark.parametrize("tls, status", [(False, 301), (True, 200)])
def test_tls_redirect_sends_plain_http_over_and_serves_https(docroot: Path, tls: bool,
                                                             status: int) -> None:
    """--tls-redirect: plain HTTP gets a 301 to the HTTPS port; HTTPS is served."""
    options: dict[str, Any] = dict(tls_redirect=True, tls_port=8443, tls_self_signed=True)
    rig = TLSRig(docroot, **options) if tls else Rig(docroot, **options)
    site = rig.owner.site
    rig.owner.site = Site.build(site.cfg, site.docroot, tls_port=8443)
    if isinstance(rig, TLSRig):
        rig.handshake()
    rig.serve(request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [status]
    rig.owner.cache.close()


@pytest.mark.parametrize("unread, pending, lingers", [
    (b"", 0, False),  # nothing below TLS, nothing decrypted: close at once
    (b"x", 0, True),  # a record arrived below TLS: linger
    (b"", 1, True),  # OpenSSL holds decrypted bytes: linger
])
def test_a_requested_close_over_tls_lingers_only_for_input(
        docroot: Path, unread: bytes, pending: int, lingers: bool) -> None:
    """After a `Connection: close` response over TLS, unread input is looked for both in
    OpenSSL and in the kernel below it."""
    rig = TLSRig(docroot)
    rig.sock = rig.context.wrapped = sock = KernelTLSSocket(rig.journal)
    try:
        rig.handshake()
        sock.pending_bytes = pending
        if unread:
            sock.peer.sendall(unread)
        rig.serve(request("/hello.txt", close=True))
        assert [r.status for r in rig.replies()] == [200]
        if lingers:
            assert_lingering(rig)
        else:
            assert rig.phase is Phase.CLOSED and sock.shut == []
    finally:
        sock.release()
        rig.owner.cache.close()
