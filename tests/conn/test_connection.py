"""Layer 2: the Connection state machine driven by fakes (no network, no threads, no sleeps).

Every test scripts the client's socket, runs pool jobs and timers by hand, and checks the
phase, the registered interest, the bytes sent, the access log and how the connection ended.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from concurrent.futures import Future
from email.utils import formatdate
from typing import Any

import pytest

from evserver import connection
from evserver.connection import Connection
from evserver.files import FileBody, Resolved, load
from evserver.http11 import RequestParser
from evserver.loop import READ, WRITE
from evserver.phases import Phase
from tests.wire import parse_responses, request

from .fakes import SHUT_WR, FakeSocket, is_closed_fd
from .rig import BIG_SIZE, HELLO, INDEX, MID_SIZE, PEER, Rig


def assert_kept_alive(rig: Rig) -> None:
    assert rig.phase is Phase.IDLE
    assert rig.mask == READ
    assert rig.owner.forgotten == []
    assert rig.sock.shut == []


def assert_lingering(rig: Rig) -> None:
    assert rig.phase is Phase.LINGER
    assert rig.mask == READ
    assert rig.sock.shut == [SHUT_WR]
    assert not rig.sock.closed


# -- the normal path ------------------------------------------------------------------------


def test_fresh_get_goes_through_the_pool_then_keeps_alive(rig: Rig) -> None:
    """IDLE → HEAD → WAIT_FILE (unregistered) → one send → IDLE with READ interest."""
    t0 = rig.loop.now
    assert rig.phase is Phase.IDLE and rig.mask == READ
    assert [t.when for t in rig.loop.live_timers()] == [t0 + 5.0]

    rig.sock.feed(b"GET /hello.txt HT")
    rig.conn.on_event(READ)
    assert rig.phase is Phase.HEAD and rig.mask == READ
    rig.receive(b"TP/1.1\r\nHost: test\r\n\r\n")
    assert rig.phase is Phase.WAIT_FILE
    assert rig.mask == 0 and rig.loop.history[-1] == ("unregister", 0)
    assert rig.loop.pending_jobs == 1 and rig.sock.sent == b""

    rig.loop.advance(0.25)
    rig.run_jobs()
    assert rig.loop.pending_jobs == 0
    assert rig.sock.writes == [("send", len(rig.sock.sent))]  # head and body in one send
    (reply,) = rig.replies()
    assert reply.status == 200 and reply.body == HELLO
    assert reply.header("content-length") == str(len(HELLO))
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("connection") is None  # HTTP/1.1 keeps alive by default
    assert_kept_alive(rig)
    assert rig.conn._deadline == t0 + 0.25 + 7.0  # keepalive_timeout
    assert len(rig.loop.live_timers()) == 1
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, len(HELLO))]


def test_second_identical_request_is_a_cache_hit_without_submit(rig: Rig) -> None:
    """A fresh FileCache entry is served on the loop thread: no pool job at all."""
    rig.serve(request("/hello.txt"))
    assert len(rig.loop.jobs) == 1
    rig.receive(request("/hello.txt"))
    assert len(rig.loop.jobs) == 1 and rig.loop.pending_jobs == 0
    assert [r.body for r in rig.replies()] == [HELLO, HELLO]
    assert rig.owner.cache.hits == 1
    assert_kept_alive(rig)
    assert len(rig.log()) == 2


def test_a_head_seen_before_read_whole_between_requests_is_not_parsed_again(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: a read that is exactly a head the memo holds is answered with the
    Request made the first time, without feeding the parser; the response and the log line
    are those of the first time."""
    rig.serve(request("/hello.txt"))
    first_reply, first_log = rig.sock.sent, rig.log()
    rig.sock.sent = b""

    def no_feeding(parser: RequestParser, data: bytes) -> None:
        raise AssertionError("fed")

    monkeypatch.setattr(RequestParser, "feed", no_feeding)
    rig.receive(request("/hello.txt"))
    assert rig.sock.sent == first_reply and rig.log() == first_log * 2
    assert_kept_alive(rig)


def test_request_arriving_one_byte_per_recv(rig: Rig) -> None:
    """The header deadline starts at the first byte and is not extended by later bytes."""
    data = request("/hello.txt")
    start = rig.loop.now
    for i, byte in enumerate(data):
        rig.loop.advance(0.001)
        rig.receive(bytes([byte]))
        if i < len(data) - 1:
            assert rig.phase is Phase.HEAD and rig.sock.sent == b""
            assert rig.conn._deadline == pytest.approx(start + 0.001 + 5.0)
    assert rig.phase is Phase.WAIT_FILE and len(rig.loop.jobs) == 1
    rig.run_jobs()
    assert [r.body for r in rig.replies()] == [HELLO]
    assert_kept_alive(rig)


def test_pipelined_requests_in_one_recv_answered_in_order_one_per_turn(rig: Rig) -> None:
    """Buffered requests raise no READ event: each is re-driven by one call_soon turn."""
    rig.serve(request("/hello.txt"))
    rig.serve(request("/index.html"))
    before = len(rig.sock.sent)
    rig.receive(request("/index.html") + request("/hello.txt") + request("/index.html"))
    assert len(parse_responses(bytes(rig.sock.sent[before:]))) == 1  # only the first, so far
    assert rig.phase is Phase.HEAD and rig.mask == READ
    assert list(rig.loop.soon) == [(rig.conn.process, ())]
    assert rig.loop.run_soon() == 1
    assert len(parse_responses(bytes(rig.sock.sent[before:]))) == 2
    assert list(rig.loop.soon) == [(rig.conn.process, ())]
    assert rig.loop.run_soon() == 1
    assert not rig.loop.soon
    bodies = [r.body for r in parse_responses(bytes(rig.sock.sent[before:]))]
    assert bodies == [INDEX, HELLO, INDEX]
    assert len(rig.loop.jobs) == 2  # all three were cache hits
    assert_kept_alive(rig)


def test_a_pipelined_flood_is_read_no_faster_than_it_is_answered(
        make_rig: Callable[..., Rig]) -> None:
    """With a head's worth of requests buffered, READ interest is dropped until they are
    answered: a client cannot grow our buffer beyond max_head plus one recv."""
    rig = make_rig(max_keepalive_requests=10_000)
    rig.serve(request("/hello.txt"))
    flood = request("/hello.txt") * (3 * rig.owner.cfg.max_head // len(request("/hello.txt")))
    rig.receive(flood)
    assert rig.phase is Phase.HEAD and rig.mask == 0  # not reading: the kernel holds the rest
    peak = 0
    while rig.loop.soon:
        peak = max(peak, rig.conn._parser.buffered)
        rig.loop.run_soon()
    assert peak <= len(flood)
    assert len(rig.replies()) == 1 + len(flood) // len(request("/hello.txt"))
    assert_kept_alive(rig)  # READ interest is back once the backlog is answered


def test_pipelined_requests_wait_for_the_pool_in_order(rig: Rig) -> None:
    """With cold files the second request is parsed only after the first is answered."""
    rig.receive(request("/hello.txt") + request("/index.html"))
    assert rig.phase is Phase.WAIT_FILE and len(rig.loop.jobs) == 1
    rig.run_jobs()
    assert [r.body for r in rig.replies()] == [HELLO]
    assert rig.phase is Phase.HEAD and list(rig.loop.soon) == [(rig.conn.process, ())]
    rig.loop.run_soon()
    assert rig.phase is Phase.WAIT_FILE and len(rig.loop.jobs) == 2
    rig.run_jobs()
    assert [r.body for r in rig.replies()] == [HELLO, INDEX]
    assert_kept_alive(rig)
    assert not rig.loop.soon


# -- the write path --------------------------------------------------------------------------


def test_partial_sends_resume_via_memoryview_without_loss_or_copy(rig: Rig) -> None:
    """Each WRITE event resumes where the last send stopped, slicing the same buffer."""
    rig.sock.send_limit = 4
    rig.sock.window = 9
    rig.serve(request("/hello.txt"))
    assert rig.phase is Phase.SEND and rig.mask == WRITE
    assert len(rig.sock.sent) == 9
    events = 0
    while rig.phase is Phase.SEND:
        rig.sock.unblock(9)
        rig.writable()
        events += 1
        assert events < 100
    first = rig.sock.send_views[0]  # the joined response, sent as it is
    whole = first.obj if isinstance(first, memoryview) else first
    assert all(isinstance(v, memoryview) and v.obj is whole for v in rig.sock.send_views[1:])
    assert bytes(rig.sock.sent) == bytes(whole)  # nothing lost, nothing sent twice
    assert [r.body for r in rig.replies()] == [HELLO]
    assert_kept_alive(rig)
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, len(HELLO))]


def test_a_large_cached_body_goes_out_beside_its_head_in_one_sendmsg(
        make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 64 KiB (not joined to the head) but in memory: one sendmsg of the head and the
    cached bytes themselves, and no response-in-flight object when the socket takes all."""
    built: list[object] = []

    class Counted(connection.Outgoing):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(connection, "Outgoing", Counted)
    rig = make_rig(cache_max_entry=256 * 1024)
    rig.serve(request("/mid.bin"))  # the first load goes through the pool
    rig.sock.writes.clear()
    built.clear()
    rig.serve(request("/mid.bin"))
    (_, reply) = rig.replies()
    assert reply.body == rig.file("mid.bin")
    assert rig.sock.writes == [("sendmsg", len(reply.head) + MID_SIZE)]
    assert built == []
    assert_kept_alive(rig)


def test_partial_sendmsg_of_head_and_cached_body(make_rig: Callable[..., Rig]) -> None:
    """A body over 64 KiB goes out beside the head with sendmsg, never copied or joined."""
    rig = make_rig(cache_max_entry=256 * 1024)
    rig.sock.send_limit = 7000
    rig.sock.window = 0
    rig.serve(request("/mid.bin"))
    assert rig.phase is Phase.SEND and rig.sock.sent == b""
    while rig.phase is Phase.SEND:
        rig.sock.unblock(30_001)
        rig.writable()
    (reply,) = rig.replies()
    assert reply.body == rig.file("mid.bin")
    assert len(rig.sock.sent) == len(reply.head) + MID_SIZE
    kinds = {kind for kind, _ in rig.sock.writes}
    assert "sendmsg" in kinds
    cached = rig.owner.cache.lookup(str(rig.docroot / "mid.bin"), rig.loop.now)[0]
    assert cached is not None
    # Every buffer handed to the socket that holds the body is the cached bytes themselves,
    # or a view of them: zero-copy.
    given = [v for call in rig.sock.send_views for v in (call if isinstance(call, list)
                                                         else [call])]
    bodies = [v.obj if isinstance(v, memoryview) else v for v in given]
    bodies = [b for b in bodies if len(b) == MID_SIZE]
    assert bodies and all(b is cached.data for b in bodies)
    assert_kept_alive(rig)


def test_write_interest_is_dropped_as_soon_as_the_buffer_drains(rig: Rig) -> None:
    """Level triggering: a stale WRITE interest would spin the loop."""
    rig.sock.window = 10
    rig.serve(request("/hello.txt"))
    assert rig.mask == WRITE
    rig.writable()  # still blocked: no progress, interest stays
    assert rig.mask == WRITE
    rig.sock.unblock()
    rig.writable()
    assert rig.mask == READ and rig.loop.history[-1] == ("modify", READ)
    assert rig.phase is Phase.IDLE
    assert [r.body for r in rig.replies()] == [HELLO]


def test_large_file_sendfile_in_capped_chunks_one_per_write_event(rig: Rig) -> None:
    """At most sendfile_chunk bytes per call and one call per WRITE event."""
    rig.receive(request("/big.bin"))
    (future,) = rig.run_jobs()
    body: FileBody = future.result()
    assert body.fd is not None and body.data is None
    assert rig.phase is Phase.SEND and rig.mask == WRITE
    assert len(rig.sock.sendfile_calls) == 1
    events = 0
    while rig.phase is Phase.SEND:
        calls = len(rig.sock.sendfile_calls)
        rig.writable()
        events += 1
        assert len(rig.sock.sendfile_calls) == calls + 1
    assert events == 3
    assert [(off, count) for off, count, _ in rig.sock.sendfile_calls] == [
        (0, 10_000), (10_000, 10_000), (20_000, 10_000), (30_000, 5_000)]
    (reply,) = rig.replies()
    assert reply.body == rig.file("big.bin")
    assert is_closed_fd(body.fd)
    assert_kept_alive(rig)
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, BIG_SIZE)]


GROWN = (socket.SOL_SOCKET, socket.SO_SNDBUF, 50_000)


def test_a_reader_that_keeps_up_earns_the_bigger_send_buffer(
        make_rig: Callable[..., Rig]) -> None:
    """Three sendfile calls in a row that each fill at least send_buffer bytes (half the
    kernel's doubled buffer): SO_SNDBUF grows to send_buffer_max, once."""
    rig = make_rig(send_buffer=5_000, send_buffer_max=50_000)
    rig.serve(request("/big.bin"))
    while rig.phase is Phase.SEND:
        rig.writable()
    assert [n for _, _, n in rig.sock.sendfile_calls] == [10_000, 10_000, 10_000, 5_000]
    assert rig.sock.sockopts == [GROWN]
    assert rig.replies()[0].body == rig.file("big.bin")


def test_a_slow_reader_keeps_the_capped_send_buffer(make_rig: Callable[..., Rig]) -> None:
    """A reader that frees less than send_buffer between events never grows the buffer:
    slow readers cannot make the server pin more kernel memory."""
    rig = make_rig(send_buffer=5_000, send_buffer_max=50_000)
    rig.sock.send_limit = 4_000
    rig.serve(request("/big.bin"))
    while rig.phase is Phase.SEND:
        rig.writable()
    assert len(rig.sock.sendfile_calls) == 9 and rig.sock.sockopts == []
    assert rig.replies()[0].body == rig.file("big.bin")


def test_short_sendfile_resumes_at_the_right_offset(rig: Rig) -> None:
    """A per-call limit below the chunk: offsets stay contiguous, the body stays intact."""
    rig.sock.send_limit = 3000
    rig.serve(request("/big.bin"))
    while rig.phase is Phase.SEND:
        rig.writable()
    offsets = [off for off, _, _ in rig.sock.sendfile_calls]
    sizes = [n for _, _, n in rig.sock.sendfile_calls]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))]
    assert max(sizes) <= 3000 and sum(sizes) == BIG_SIZE
    assert rig.replies()[0].body == rig.file("big.bin")


def test_head_sends_the_head_only_and_closes_the_fd(rig: Rig) -> None:
    """HEAD of a streamed file: Content-Length of the file, no body, fd released."""
    rig.receive(request("/big.bin", method="HEAD"))
    (future,) = rig.run_jobs()
    fd = future.result().fd
    assert fd is not None and is_closed_fd(fd)
    assert rig.sock.sendfile_calls == []
    (reply,) = rig.replies(head_only=(True,))
    assert reply.status == 200 and reply.body == b""
    assert reply.header("content-length") == str(BIG_SIZE)
    assert bytes(rig.sock.sent) == reply.head
    assert_kept_alive(rig)
    assert rig.log() == [(b"HEAD /big.bin HTTP/1.1", 200, 0)]


# -- conditional requests --------------------------------------------------------------------


def _validators(rig: Rig, target: str) -> tuple[str, str]:
    rig.serve(request(target))
    reply = rig.replies()[-1]
    etag, last_modified = reply.header("etag"), reply.header("last-modified")
    assert etag is not None and last_modified is not None
    return etag, last_modified


def test_304_via_if_modified_since(rig: Rig) -> None:
    """A date not older than the file's mtime gives 304 (no body, no length); an old one 200."""
    _, last_modified = _validators(rig, "/hello.txt")
    rig.serve(request("/hello.txt", headers=f"If-Modified-Since: {last_modified}\r\n"))
    reply = rig.replies()[-1]
    assert reply.status == 304 and reply.body == b""
    assert reply.header("content-length") is None
    assert reply.head.endswith(b"\r\n\r\n") and rig.sock.sent.endswith(reply.head)
    assert_kept_alive(rig)
    old = formatdate(0, usegmt=True)
    rig.serve(request("/hello.txt", headers=f"If-Modified-Since: {old}\r\n"))
    assert rig.replies()[-1].status == 200


def test_304_via_if_none_match_and_it_wins_over_if_modified_since(rig: Rig) -> None:
    """RFC 9110 §13.2.2: with If-None-Match present, If-Modified-Since is ignored."""
    etag, last_modified = _validators(rig, "/hello.txt")
    rig.serve(request("/hello.txt", headers=f"If-None-Match: \"x\", W/{etag}\r\n"))
    assert rig.replies()[-1].status == 304
    assert rig.replies()[-1].header("etag") == etag
    # A non-matching tag beats a satisfied date: full response.
    rig.serve(request("/hello.txt", headers=f"If-None-Match: \"other\"\r\n"
                          f"If-Modified-Since: {last_modified}\r\n"))
    assert rig.replies()[-1].status == 200 and rig.replies()[-1].body == HELLO
    # A matching tag beats a failed date: 304.
    old = formatdate(0, usegmt=True)
    rig.serve(request("/hello.txt",
                      headers=f"If-None-Match: {etag}\r\nIf-Modified-Since: {old}\r\n"))
    assert rig.replies()[-1].status == 304
    assert_kept_alive(rig)


def test_304_for_a_streamed_file_closes_its_fd(rig: Rig) -> None:
    """304 for a file held as an fd sends the head only and releases the fd."""
    etag, _ = _validators(rig, "/big.bin")
    rig.receive(request("/big.bin", headers=f"If-None-Match: {etag}\r\n"))
    future = rig.run_jobs()[0]
    assert rig.replies()[-1].status == 304
    assert is_closed_fd(future.result().fd)


# -- status codes and keep-alive -------------------------------------------------------------


@pytest.mark.parametrize("request_bytes, status, keep", [
    (request("/missing.txt"), 404, True),
    # A malformed target: the line parsed, but a 400 closes all the same (RFC 9112 §9.6).
    (request("/../hello.txt"), 400, False),
    (request("/a%00b"), 400, False),
    (request("ftp://x/hello.txt"), 400, False),
    (request("/hello.txt", host="a b"), 400, False),  # an invalid Host (RFC 9112 §3.2)
    (request("/hello.txt", host="[::1"), 400, False),
    (request("/hello.txt", method="POST", headers="Content-Length: 3\r\n") + b"abc", 405, True),
    (request("/hello.txt", method="BREW"), 501, True),
    (request("*", method="OPTIONS"), 204, True),
    (b"GET /hello.txt HTTP/1.1\r\n\r\n", 400, False),  # no Host: a parser error
    (b"GET /hello.txt HTTP/2.0\r\nHost: test\r\n\r\n", 505, False),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, False),  # a TLS ClientHello
])
def test_status_and_keep_alive(rig: Rig, request_bytes: bytes, status: int, keep: bool) -> None:
    """Each status, and whether the connection stays (IDLE) or half-closes (LINGER)."""
    rig.serve(request_bytes)
    (reply,) = rig.replies()
    assert reply.status == status
    if status == 405 or status == 204:
        assert reply.header("allow") == "GET, HEAD, OPTIONS"
    if status == 204:
        assert reply.header("content-length") is None and reply.body == b""
    else:
        assert reply.header("content-type") == "text/html; charset=utf-8"
        assert len(reply.body) == int(reply.header("content-length") or "-1") > 0
    if keep:
        assert reply.header("connection") is None
        assert_kept_alive(rig)
    else:
        assert reply.header("connection") == "close"
        assert_lingering(rig)
    assert [entry[1] for entry in rig.log()] == [status]


@pytest.mark.parametrize("rest", [
    b"zz\r\nhello\r\n0\r\n\r\n",          # a chunk size that is not hex
    b"5\r\nhelloXY0\r\n\r\n",              # chunk data not followed by CRLF
    b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",  # a trailer that is no field line
    b"fffffffffffffff\r\n",                   # a chunk over the body limit: 413 territory
])
def test_a_bad_rest_of_an_answered_body_closes_without_a_second_response(
        rig: Rig, rest: bytes) -> None:
    """The response went out with the head; the body then breaks its framing. One request,
    one response: the connection half-closes with no 400 or 413 after the 405 (a pipelining
    client would take it for the answer to its next request)."""
    head = request("/hello.txt", method="POST", headers="Transfer-Encoding: chunked\r\n")
    rig.serve(head + rest + request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [405]
    assert_lingering(rig)
    assert [entry[1] for entry in rig.log()] == [405]


def test_a_bad_rest_of_a_body_split_from_its_head_sends_nothing_more(rig: Rig) -> None:
    """The same when the body's bad line arrives in a later read, after the response."""
    rig.serve(request("/hello.txt", method="POST", headers="Transfer-Encoding: chunked\r\n"))
    assert [r.status for r in rig.replies()] == [405]
    assert rig.phase is Phase.HEAD
    rig.receive(b"3\r\nabc\r\nnot-hex\r\n")
    assert [r.status for r in rig.replies()] == [405]
    assert_lingering(rig)


def test_a_bad_body_after_a_good_one_still_gets_its_own_400(rig: Rig) -> None:
    """Only an error inside an answered request's body goes unanswered: the next request's
    own framing error (both framings at once) still gets its 400."""
    rig.serve(request("/hello.txt", method="POST", headers="Content-Length: 2\r\n") + b"ok"
              + request("/hello.txt", headers="Content-Length: 2\r\nTransfer-Encoding: chunked"
                        "\r\n"))
    assert [r.status for r in rig.replies()] == [405, 400]
    assert_lingering(rig)


def test_keep_alive_after_404_serves_the_next_request(rig: Rig) -> None:
    """404 is not a framing error: the same connection serves the next request."""
    rig.serve(request("/nope"))
    rig.serve(request("/hello.txt"))
    assert [r.status for r in rig.replies()] == [404, 200]
    assert_kept_alive(rig)


def test_parser_error_closes_via_shutdown_linger_and_eof(rig: Rig) -> None:
    """400 with `Connection: close`, SHUT_WR, then input is drained until EOF, then close."""
    t0 = rig.loop.now
    rig.receive(b"GET /a b c HTTP/1.1\r\nHost: test\r\n\r\n")
    (reply,) = rig.replies()
    assert reply.status == 400 and reply.header("connection") == "close"
    assert_lingering(rig)
    assert [t.when for t in rig.loop.live_timers()] == [t0 + 2.0]  # linger_timeout
    assert rig.index_of("shutdown") > max(i for i, e in enumerate(rig.journal)
                                          if e[0] != "shutdown" and e[0] != "unregister")
    sent = len(rig.sock.sent)
    rig.receive(b"more junk the client was still sending")
    assert rig.phase is Phase.LINGER and len(rig.sock.sent) == sent
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED and rig.sock.closed
    assert rig.owner.forgotten == [rig.conn]
    assert rig.index_of("shutdown") < rig.index_of("unregister") < rig.index_of("close")
    assert rig.loop.live_timers() == []
    assert rig.log() == [(b"GET /a b c HTTP/1.1", 400, len(reply.body))]


def test_linger_ends_at_linger_timeout_without_eof(rig: Rig) -> None:
    """A client that never closes its side is dropped at linger_timeout."""
    rig.receive(b"BAD\r\n\r\n")
    assert_lingering(rig)
    rig.loop.advance(1.99)
    assert rig.phase is Phase.LINGER
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]


# -- timeouts ----------------------------------------------------------------------------------


def test_header_timeout_with_a_partial_request_sends_408_and_closes(rig: Rig) -> None:
    """An incomplete head at header_timeout: 408 with Connection: close, then LINGER."""
    rig.loop.advance(1.0)
    rig.receive(b"GET /hello.txt HTTP/1.1\r\nHo")
    rig.loop.advance(4.99)
    assert rig.phase is Phase.HEAD and rig.sock.sent == b""
    rig.loop.advance(0.01)
    (reply,) = rig.replies()
    assert reply.status == 408 and reply.header("connection") == "close"
    assert_lingering(rig)
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert [entry[1] for entry in rig.log()] == [408]


def test_408_log_line_shows_the_partial_request_and_its_whole_duration(rig: Rig) -> None:
    """The log of a timed-out request names what arrived and times it from the first byte."""
    rig.receive(b"GET /slow HTTP/1.1\r\nHo")
    rig.loop.advance(5.0)
    (line,) = rig.owner.access_log.lines
    assert b'"GET /slow HTTP/1.1" 408 ' in line
    assert line.rstrip().endswith(b" 5.000")


def test_idle_keepalive_timeout_closes_quietly(rig: Rig) -> None:
    """An idle keep-alive connection closes at keepalive_timeout without a byte."""
    rig.serve(request("/hello.txt"))
    sent = bytes(rig.sock.sent)
    rig.loop.advance(6.99)
    assert rig.phase is Phase.IDLE
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED and rig.sock.closed
    assert bytes(rig.sock.sent) == sent and rig.sock.shut == []
    assert rig.owner.forgotten == [rig.conn] and len(rig.log()) == 1
    assert rig.index_of("unregister") < rig.index_of("close")


def test_silent_fresh_connection_closes_after_header_timeout_without_408(rig: Rig) -> None:
    """A connection that never sends a byte is closed quietly at header_timeout."""
    rig.loop.advance(4.99)
    assert rig.phase is Phase.IDLE
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED
    assert rig.sock.sent == b"" and rig.sock.shut == [] and rig.log() == []
    assert rig.owner.forgotten == [rig.conn]


def test_timer_rearms_when_the_deadline_moves_later_with_one_live_handle(rig: Rig) -> None:
    """Activity only moves the deadline; the early timer re-arms itself, never two live."""
    t0 = rig.loop.now
    rig.loop.advance(1.0)
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")  # header deadline: t0 + 1 + 5
    (timer,) = rig.loop.live_timers()
    assert timer.when == t0 + 5.0  # the fresh-connection timer was kept, not replaced
    rig.loop.advance_to(t0 + 5.0)
    assert rig.phase is Phase.HEAD and rig.sock.sent == b""
    (timer,) = rig.loop.live_timers()
    assert timer.when == t0 + 6.0
    rig.loop.advance_to(t0 + 6.0)
    assert rig.replies()[0].status == 408


def test_one_live_timer_through_many_requests(rig: Rig) -> None:
    """Keep-alive, send and header deadlines share one live timer handle."""
    for i in range(6):
        rig.loop.advance(0.5)
        rig.serve(request("/hello.txt" if i % 2 else "/big.bin"))
        while rig.phase is Phase.SEND:
            rig.writable()
            assert len(rig.loop.live_timers()) == 1
        assert len(rig.loop.live_timers()) == 1
    assert len(rig.replies()) == 6


def test_send_timeout_closes_a_client_that_stops_reading(rig: Rig) -> None:
    """The access line records the body bytes that really went out."""
    rig.sock.window = 5000
    rig.receive(request("/big.bin"))
    (future,) = rig.run_jobs()
    head_len = rig.sock.sent.index(b"\r\n\r\n") + 4
    assert rig.phase is Phase.SEND and len(rig.sock.sent) == 5000
    rig.loop.advance(10.99)
    assert rig.phase is Phase.SEND
    rig.loop.advance(0.01)
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert is_closed_fd(future.result().fd)
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 5000 - head_len)]


def test_send_timeout_counts_from_progress_not_from_write_events(rig: Rig) -> None:
    """A WRITE event that moves no byte must not extend the send deadline."""
    rig.sock.window = 5000
    rig.serve(request("/big.bin"))
    assert rig.phase is Phase.SEND
    for _ in range(10):
        rig.loop.advance(1.0)
        rig.writable()  # a spurious wakeup: the window is still closed
    rig.loop.advance(1.0)
    assert rig.phase is Phase.CLOSED


def test_send_progress_extends_the_send_deadline(rig: Rig) -> None:
    """A slow reader that keeps making progress is never timed out."""
    rig.sock.window = 5000
    rig.serve(request("/big.bin"))
    for _ in range(3):
        rig.loop.advance(10.0)
        rig.sock.unblock(1000)
        rig.writable()
        assert rig.phase is Phase.SEND
    rig.sock.unblock()
    while rig.phase is Phase.SEND:
        rig.writable()
    assert rig.replies()[0].body == rig.file("big.bin")


# -- disconnects and late results -------------------------------------------------------------


def test_econnreset_on_recv_is_a_quiet_close(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """ECONNRESET: close, forget once, nothing sent, nothing above debug logged."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.receive(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert rig.phase is Phase.CLOSED and rig.sock.closed and rig.mask == 0
    assert rig.owner.forgotten == [rig.conn]
    assert rig.sock.sent == b"" and rig.log() == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_epipe_on_send_closes_quietly_and_releases_the_streamed_fd(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """EPIPE mid-body: quiet close, fd released, bytes sent logged, forget once."""
    caplog.set_level(logging.DEBUG, logger="evserver")
    rig.receive(request("/big.bin"))
    (future,) = rig.run_jobs()
    fd = future.result().fd
    assert rig.phase is Phase.SEND and not is_closed_fd(fd)
    head_len = rig.sock.sent.index(b"\r\n\r\n") + 4
    rig.writable()  # one more sendfile chunk goes out
    sent = len(rig.sock.sent)
    assert sent == head_len + 20_000
    rig.sock.fail_send = BrokenPipeError(errno.EPIPE, "broken pipe")
    rig.writable()
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert is_closed_fd(fd)
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 20_000)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    rig.writable()
    assert rig.owner.forgotten == [rig.conn]


def test_file_result_arriving_after_close_is_dropped_and_its_fd_closed(rig: Rig) -> None:
    """A pool result for a closed connection is dropped and its fd closed (EBADF)."""
    rig.receive(request("/big.bin"))
    assert rig.phase is Phase.WAIT_FILE
    rig.conn.close("client went away", "client")
    assert rig.owner.forgotten == [rig.conn]
    (future,) = rig.run_jobs()
    fd = future.result().fd
    assert fd is not None and is_closed_fd(fd)
    assert rig.sock.sent == b"" and rig.loop.pending_jobs == 0
    assert rig.owner.forgotten == [rig.conn] and rig.phase is Phase.CLOSED


def test_result_for_an_old_seq_after_wait_file_timeout_is_dropped(rig: Rig) -> None:
    """WAIT_FILE times out at send_timeout with 503; the late result is dropped, fd closed."""
    rig.receive(request("/big.bin"))
    (job,) = rig.loop.jobs
    rig.loop.advance(11.0)
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("connection") == "close"
    assert_lingering(rig)
    sent = bytes(rig.sock.sent)
    job.run()
    fd = job.future.result().fd
    assert fd is not None and is_closed_fd(fd)
    assert bytes(rig.sock.sent) == sent and rig.sock.sendfile_calls == []
    assert rig.phase is Phase.LINGER


def test_result_for_an_old_seq_during_a_newer_job_is_dropped(rig: Rig) -> None:
    """A duplicate or late completion of an earlier job never answers the current request."""
    rig.serve(request("/hello.txt"))
    (old_job,) = rig.loop.jobs
    rig.receive(request("/big.bin"))
    assert rig.phase is Phase.WAIT_FILE and len(rig.loop.undelivered()) == 1
    stale: Future[FileBody] = Future()
    body = load(Resolved(str(rig.docroot / "big.bin"), b"/big.bin/"), rig.owner.site.docroot,
                rig.owner.cfg)
    assert body.fd is not None
    stale.set_result(body)
    sent = bytes(rig.sock.sent)
    old_job.on_done(stale)  # the old request's callback, carrying an open fd
    assert is_closed_fd(body.fd)
    assert bytes(rig.sock.sent) == sent and rig.phase is Phase.WAIT_FILE
    rig.settle()
    assert [r.body for r in rig.replies()] == [HELLO, rig.file("big.bin")]


def test_eof_after_pipelined_requests_still_answers_them(rig: Rig) -> None:
    """A half-close after complete pipelined requests: both answered, then close."""
    rig.receive(request("/hello.txt") + request("/index.html"))
    rig.run_jobs()
    assert rig.phase is Phase.HEAD
    rig.receive(b"")  # the client half-closed after sending both
    assert rig.mask == 0
    rig.loop.run_soon()
    rig.run_jobs()
    assert [r.body for r in rig.replies()] == [HELLO, INDEX]
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert not rig.loop.undelivered()


def test_eof_with_a_partial_request_closes(rig: Rig) -> None:
    """EOF in the middle of a head: close without a response."""
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n", b"")
    assert rig.phase is Phase.CLOSED and rig.sock.sent == b""
    assert rig.owner.forgotten == [rig.conn]


def test_events_after_close_do_nothing(rig: Rig) -> None:
    """Stale events, callbacks and timers after close touch nothing."""
    rig.conn.close("test", "client")
    recv_calls = rig.sock.recv_calls
    rig.sock.feed(request("/hello.txt"))
    for mask in (READ, WRITE, READ | WRITE):
        rig.conn.on_event(mask)
    rig.conn.process()
    rig.loop.advance(100.0)
    assert rig.sock.recv_calls == recv_calls and rig.sock.sent == b""
    assert rig.owner.forgotten == [rig.conn] and rig.loop.jobs == []


def test_close_unregisters_before_closing_and_twice_is_harmless(rig: Rig) -> None:
    """unregister precedes socket close (fd reuse); a second close is a no-op."""
    rig.conn.close("first", "client")
    assert rig.index_of("unregister", rig.sock) < rig.index_of("close", rig.sock)
    journal = list(rig.journal)
    rig.conn.close("second", "client")
    assert rig.journal == journal and rig.owner.forgotten == [rig.conn]
    assert rig.loop.live_timers() == []


def test_close_while_waiting_for_the_pool_does_not_unregister_twice(rig: Rig) -> None:
    """Closing in WAIT_FILE (already unregistered) raises no KeyError."""
    rig.receive(request("/big.bin"))
    rig.conn.close("stop", "client")  # the socket is already unregistered in WAIT_FILE
    assert [e[0] for e in rig.journal].count("unregister") == 1
    assert rig.sock.closed
    rig.run_jobs()


# -- keep-alive policy ----------------------------------------------------------------------------


def test_http10_keep_alive_is_confirmed(rig: Rig) -> None:
    """HTTP/1.0 with Connection: keep-alive gets Connection: keep-alive back."""
    rig.serve(request("/hello.txt", version="HTTP/1.0", headers="Connection: keep-alive\r\n"))
    (reply,) = rig.replies()
    assert reply.header("connection") == "keep-alive"
    assert_kept_alive(rig)


def test_http10_without_keep_alive_closes(rig: Rig) -> None:
    """HTTP/1.0 defaults to close (at once: the client asked for it)."""
    rig.serve(request("/hello.txt", version="HTTP/1.0"))
    assert rig.replies()[0].header("connection") == "close"
    assert rig.phase is Phase.CLOSED and rig.sock.closed


def test_max_keepalive_requests_closes_after_n(make_rig: Callable[..., Rig]) -> None:
    """The Nth response says Connection: close and the connection half-closes."""
    rig = make_rig(max_keepalive_requests=3)
    for _ in range(3):
        rig.serve(request("/hello.txt"))
    assert [r.header("connection") for r in rig.replies()] == [None, None, "close"]
    assert_lingering(rig)


def test_draining_owner_answers_with_connection_close(rig: Rig) -> None:
    """A draining server closes each connection after its current response."""
    rig.serve(request("/hello.txt"))
    rig.owner.draining = True
    rig.serve(request("/hello.txt"))
    assert [r.header("connection") for r in rig.replies()] == [None, "close"]
    assert_lingering(rig)


def test_full_pool_queue_answers_503_with_retry_after(make_rig: Callable[..., Rig]) -> None:
    """pending_jobs >= max_pending_jobs: 503 + Retry-After, no submit, kept alive."""
    rig = make_rig(max_pending_jobs=2)
    rig.loop.pending_jobs = 2  # other connections' jobs
    rig.receive(request("/hello.txt"))
    assert rig.loop.jobs == []
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("retry-after") == "1"
    assert_kept_alive(rig)
    rig.loop.pending_jobs = 1
    rig.serve(request("/hello.txt"))
    assert rig.replies()[-1].status == 200


def test_unexpected_job_exception_answers_500_and_closes(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A non-HTTPError from load: 500, logged with its traceback, then close."""
    rig.receive(request("/hello.txt"))
    (job,) = rig.loop.jobs
    job.fail(RuntimeError("disk on fire"))
    (reply,) = rig.replies()
    assert reply.status == 500 and reply.header("connection") == "close"
    assert_lingering(rig)
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


# -- edges ------------------------------------------------------------------------------------


def test_spurious_read_event_changes_nothing(rig: Rig) -> None:
    """BlockingIOError from recv (nothing there after all) is not an error."""
    rig.conn.on_event(READ)
    assert rig.phase is Phase.IDLE and rig.mask == READ and rig.sock.recv_calls == 1
    assert rig.owner.forgotten == []


def test_unexpected_recv_error_is_logged_and_closes(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """An errno outside the disconnect set is a warning, then a close."""
    rig.receive(OSError(errno.EINVAL, "invalid"))
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_head_of_an_error_has_no_body(rig: Rig) -> None:
    """HEAD of a 404: the error page's Content-Length, but no body."""
    rig.serve(request("/missing", method="HEAD"))
    (reply,) = rig.replies(head_only=(True,))
    assert reply.status == 404 and int(reply.header("content-length") or "0") > 0
    assert bytes(rig.sock.sent) == reply.head
    assert_kept_alive(rig)


def test_client_connection_close_is_honoured(rig: Rig) -> None:
    """Connection: close from the client: answer, then half-close; pipelined rest unread."""
    rig.serve(request("/hello.txt", close=True) + request("/index.html"))
    (reply,) = rig.replies()  # the pipelined second request is not answered
    assert reply.header("connection") == "close"
    assert_lingering(rig)


@pytest.mark.parametrize("request_bytes", [
    request("/hello.txt", close=True),
    b"GET /hello.txt HTTP/1.0\r\n\r\n",  # HTTP/1.0 closes unless asked to keep
])
def test_client_that_asked_to_close_is_closed_at_once(rig: Rig, request_bytes: bytes) -> None:
    """The client asked to close and nothing more is buffered, here or in the kernel: close
    without a half-close and a wait for its EOF (saves a round trip per connection)."""
    rig.serve(request_bytes)
    (reply,) = rig.replies()
    assert reply.status == 200 and reply.header("connection") == "close"
    assert rig.phase is Phase.CLOSED and rig.sock.closed and rig.sock.shut == []
    assert rig.owner.forgotten == [rig.conn]


def test_client_that_asked_to_close_but_sent_more_gets_a_lingering_close(rig: Rig) -> None:
    """More input in the kernel after a `Connection: close` request: half-close and drain,
    so closing cannot reset the connection under the response."""
    rig.sock.feed(request("/hello.txt", close=True), b"unexpected")
    rig.conn.on_event(READ)  # one read: the second chunk stays in the "kernel"
    rig.settle()
    assert rig.replies()[0].header("connection") == "close"
    assert_lingering(rig)


def test_a_client_close_while_draining_still_lingers(rig: Rig) -> None:
    """While the server drains, even a client-requested close lingers: the process then
    waits for the client's EOF instead of exiting with response bytes still queued."""
    rig.owner.draining = True
    rig.serve(request("/hello.txt", close=True))
    assert rig.replies()[0].header("connection") == "close"
    assert_lingering(rig)


def test_server_decided_close_lingers_for_a_keep_alive_client(make_rig: Callable[..., Rig]
                                                              ) -> None:
    """A close the client did not ask for (here the keep-alive request limit) lingers: the
    client may be sending its next request right now."""
    rig = make_rig(max_keepalive_requests=1)
    rig.serve(request("/hello.txt"))
    assert rig.replies()[0].header("connection") == "close"
    assert_lingering(rig)


def test_body_arriving_after_the_response_is_discarded(rig: Rig) -> None:
    """A body still in flight after a 405 is skipped, so the next request parses."""
    rig.serve(request("/hello.txt", method="POST", headers="Content-Length: 10\r\n") + b"12345")
    assert rig.replies()[0].status == 405
    rig.receive(b"67890" + request("/hello.txt"))
    rig.settle()
    assert [r.status for r in rig.replies()] == [405, 200]
    assert_kept_alive(rig)


def test_file_shrinking_while_streamed_ends_the_connection(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Content-Length can no longer be honoured: the only honest end is closing."""
    rig.receive(request("/big.bin"))
    rig.run_jobs()
    assert rig.phase is Phase.SEND
    os.truncate(rig.docroot / "big.bin", 15_000)
    rig.settle()
    assert_lingering(rig)
    assert rig.log() == [(b"GET /big.bin HTTP/1.1", 200, 15_000)]
    assert any("shrank" in r.getMessage() for r in caplog.records)


def test_pool_shut_down_answers_503_and_closes(rig: Rig) -> None:
    """submit() refusing (pool shut down) gives 503 and close."""
    rig.loop.pool_closed = True
    rig.serve(request("/hello.txt"))
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("connection") == "close"
    assert_lingering(rig)


def test_failing_shutdown_closes_at_once(rig: Rig) -> None:
    """shutdown(SHUT_WR) failing (peer gone) skips LINGER and closes."""
    rig.sock.fail_shutdown = OSError(errno.ENOTCONN, "not connected")
    rig.serve(b"BAD\r\n\r\n")
    assert rig.replies()[0].status == 400
    assert rig.phase is Phase.CLOSED and rig.owner.forgotten == [rig.conn]
    assert rig.loop.live_timers() == []


def test_an_answered_requests_body_gets_body_timeout_not_header_timeout(
        make_rig: Callable[..., Rig]) -> None:
    """After the response, the rest of a request body may take body_timeout (not the
    shorter header_timeout); past it the connection closes with no second response (the
    request has its answer: a 408 would pass for the answer to a next one)."""
    rig = make_rig(header_timeout=2.0, body_timeout=8.0)
    rig.serve(b"GET /hello.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    assert rig.replies()[0].status == 200
    assert rig.phase is Phase.HEAD and rig.mask == READ
    rig.loop.advance(7.9)
    rig.receive(b"y" * 10)  # progress does not extend the deadline
    assert rig.phase is Phase.HEAD and len(rig.replies()) == 1
    rig.loop.advance(0.1)
    assert [r.status for r in rig.replies()] == [200]
    assert_lingering(rig)


def test_owner_hears_when_the_connection_is_idle(rig: Rig) -> None:
    """on_idle() marks the stretches a connection waits for a request: the server closes
    the longest-idle one first when it runs out of connections."""
    assert rig.owner.idle_changes == [True]  # started idle
    rig.receive(b"GET /hello.txt HTTP/1.1\r\n")
    assert rig.owner.idle_changes == [True, False]
    rig.receive(b"Host: test\r\n\r\n")
    rig.settle()
    assert rig.owner.idle_changes == [True, False, True]
    rig.conn.close("test", "client")
    assert rig.owner.idle_changes == [True, False, True, False]


def test_a_bug_in_a_handler_answers_500_and_closes(rig: Rig) -> None:
    """An exception escaping the request path is a bug: the client gets 500 with
    Connection: close (not a hang until a timeout), and the connection closes."""
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    rig.owner.cache.lookup = broken  # type: ignore[method-assign]
    rig.receive(request("/hello.txt"))
    (reply,) = rig.replies()
    assert reply.status == 500 and reply.header("connection") == "close"
    assert_lingering(rig)
    assert [entry[1] for entry in rig.log()] == [500]


def test_draining_closes_a_keepalive_response_when_it_ends(rig: Rig) -> None:
    """A response begun before the stop ends the connection: shutdown waits for nobody."""
    rig.receive(request("/hello.txt"))
    assert rig.phase is Phase.WAIT_FILE
    rig.owner.draining = True
    rig.settle()
    assert rig.replies()[0].status == 200
    assert_lingering(rig)


@pytest.mark.parametrize("draining, status, body", [(False, 200, b"ok\n"),
                                                    (True, 503, b"draining\n")])
def test_health_path_is_200_while_serving_and_503_while_draining(
        make_rig: Callable[..., Rig], draining: bool, status: int, body: bytes) -> None:
    """--health-path: what a load balancer's check sees; HAProxy's HTTP/1.0 check without
    Host is answered too."""
    rig = make_rig(health_path="/healthz")
    rig.owner.draining = draining
    rig.serve(b"GET /healthz HTTP/1.0\r\n\r\n")
    (reply,) = rig.replies()
    assert (reply.status, reply.body) == (status, body)
    assert reply.header("cache-control") == "no-store"
    assert rig.log() == [(b"GET /healthz HTTP/1.0", status, len(body))]


def test_requests_for_a_file_being_loaded_share_one_pool_job(rig: Rig) -> None:
    """Three connections ask for the same uncached file at once: one pool job; the others
    wait for it and are then served from the cache (no thundering herd of loads when a
    popular entry goes stale)."""
    others = []
    for _ in range(2):
        sock = FakeSocket(rig.journal)
        conn = Connection(sock, PEER, rig.owner,  # type: ignore[arg-type]
                          sendfile=sock.sendfile)
        conn.start()
        others.append((sock, conn))
    rig.receive(request("/hello.txt"))
    for sock, conn in others:
        sock.feed(request("/hello.txt"))
        conn.on_event(READ)
    assert len(rig.loop.undelivered()) == 1
    assert all(conn.phase is Phase.WAIT_FILE for _, conn in others)
    rig.run_jobs()
    rig.settle()
    assert [r.body for r in rig.replies()] == [HELLO]
    for sock, conn in others:
        assert [r.body for r in parse_responses(bytes(sock.sent))] == [HELLO]
        assert conn.phase is Phase.IDLE
    assert len(rig.loop.jobs) == 1 and rig.owner.cache._loading == {}


def test_a_waiting_request_still_gets_its_answer_when_the_loader_went_away(rig: Rig) -> None:
    """The connection that started the load closes before it finishes: the waiting one
    looks again, loads the file itself, and is served."""
    sock = FakeSocket(rig.journal)
    other = Connection(sock, PEER, rig.owner, sendfile=sock.sendfile)  # type: ignore[arg-type]
    other.start()
    rig.receive(request("/hello.txt"))
    sock.feed(request("/hello.txt"))
    other.on_event(READ)
    rig.conn.close("client went away", "client")
    for job in rig.loop.undelivered():
        job.run()
    for job in rig.loop.undelivered():  # the waiter's own load
        job.run()
    assert [r.body for r in parse_responses(bytes(sock.sent))] == [HELLO]


@pytest.mark.parametrize("raw, status", [
    (b"HEAD /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n", 400),          # an invalid Host
    (b"HEAD /hello.txt HTTP/1.1\r\nHost: test\r\nX: a\rb\r\n\r\n", 400),  # a bare CR
    (b"HEAD /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414),
    (b"HEAD / HTTP/1.1\r\nHost: test\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
])
def test_a_refused_head_request_gets_no_body(rig: Rig, raw: bytes, status: int) -> None:
    """The parser refuses the request before it exists, but its line says HEAD: the error
    has its Content-Length and no body (RFC 9110 §9.3.2), else the page would be read as
    the start of the next response."""
    rig.serve(raw)
    (reply,) = rig.replies(head_only=(True,))
    assert reply.status == status
    assert int(reply.header("content-length") or "0") > 0
    assert bytes(rig.sock.sent).endswith(b"\r\n\r\n")
