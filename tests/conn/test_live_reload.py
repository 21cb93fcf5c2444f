"""Layer 2: --live-reload as a connection carries it out, on the fakes: a page's event
stream (its head, its phase, what the hub pushes, heartbeats, the page going away, a stream
that does not drain, the server stopping), the cap on streams, and the script in pages."""
from __future__ import annotations

import errno
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from evserver.connection import _last_seen
from evserver.live import SCRIPT, LiveReload
from evserver.loop import READ
from evserver.phases import Phase
from tests.wire import dechunk, parse_head, request

from .rig import INDEX, Rig

LIVE = "/.evserver/live"


class Page:
    def push(self, data: bytes) -> None:
        pass

    def end_events(self) -> None:
        pass


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig(live_reload=True)


def hub(rig: Rig) -> LiveReload:
    assert rig.owner.live is not None
    return rig.owner.live


def stream(rig: Rig) -> tuple[bytes, bytes]:
    """The stream's head, and its chunks so far joined (the content, unframed)."""
    head, _, rest = bytes(rig.sock.sent).partition(b"\r\n\r\n")
    content = b""
    while rest and not rest.startswith(b"0\r\n"):
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        content += rest[:size]
        rest = rest[size + 2:]
    return head + b"\r\n\r\n", content


def test_a_page_opens_its_stream_and_stays_in_events(rig: Rig) -> None:
    rig.serve(request(LIVE))
    head, content = stream(rig)
    reply = parse_head(head)
    assert reply.status == 200
    assert reply.header("content-type") == "text/event-stream"
    assert reply.header("cache-control") == "no-store"
    assert reply.header("transfer-encoding") == "chunked"
    assert reply.header("connection") == "close" and reply.header("x-accel-buffering") == "no"
    assert content == b"retry: 1000\nid: %s-0\n\n" % hub(rig).instance.encode()
    assert rig.phase is Phase.EVENTS and rig.mask == READ and len(hub(rig)) == 1
    assert rig.loop.jobs == [] and rig.log() == []  # logged when it ends


def test_changes_and_heartbeats_reach_the_page(rig: Rig) -> None:
    rig.serve(request(LIVE))
    hub(rig).changed(["/css/site.css"])
    hub(rig).heartbeat()
    _, content = stream(rig)
    assert content.endswith(b'event: change\ndata: {"paths":["/css/site.css"]}\n\n'
                            b": keep-alive\n\n")


def test_the_stream_outlives_every_timeout(rig: Rig) -> None:
    rig.serve(request(LIVE))
    rig.loop.advance(3600)
    assert rig.phase is Phase.EVENTS


def test_the_page_going_away_ends_the_stream_and_logs_it(rig: Rig) -> None:
    rig.serve(request(LIVE))
    rig.receive(b"")
    assert rig.phase is Phase.CLOSED and len(hub(rig)) == 0
    head, _ = stream(rig)
    sent = len(rig.sock.sent) - len(head)
    assert rig.log() == [(f"GET {LIVE} HTTP/1.1".encode(), 200, sent)]


def test_a_stream_that_does_not_drain_is_dropped(rig: Rig) -> None:
    rig.serve(request(LIVE))
    rig.sock.block()
    hub(rig).changed(["/a.html"])
    assert rig.phase is Phase.CLOSED and len(hub(rig)) == 0
    assert len(rig.log()) == 1


def test_the_server_stopping_ends_the_stream_with_its_last_chunk(rig: Rig) -> None:
    rig.serve(request(LIVE))
    hub(rig).close()
    assert bytes(rig.sock.sent).endswith(b"\r\n0\r\n\r\n")
    assert rig.phase is Phase.CLOSED and len(rig.log()) == 1


def test_http_10_gets_the_events_unframed(rig: Rig) -> None:
    rig.serve(request(LIVE, version="HTTP/1.0"))
    hub(rig).changed(["/a.css"])
    head, _, body = bytes(rig.sock.sent).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body.endswith(b'data: {"paths":["/a.css"]}\n\n') and body.startswith(b"retry:")


def test_head_gets_the_fields_and_no_stream(rig: Rig) -> None:
    rig.serve(request(LIVE, method="HEAD"))
    (reply,) = rig.replies(head_only=(True,))
    assert reply.header("content-type") == "text/event-stream" and reply.body == b""
    assert rig.phase is Phase.IDLE and len(hub(rig)) == 0


def test_a_reconnecting_page_resumes_after_its_last_event(rig: Rig) -> None:
    hub(rig).changed(["/a.css"])
    hub(rig).changed(["/b.js"])
    last = f"{hub(rig).instance}-1"
    rig.serve(request(LIVE, headers=f"Last-Event-ID: {last}\r\n"))
    _, content = stream(rig)
    assert content.endswith(b'data: {"paths":["/b.js"]}\n\n') and b"/a.css" not in content


def test_a_tab_taking_the_stream_over_resumes_from_last(rig: Rig) -> None:
    """The tab that takes the shared stream over sends the last id its tabs saw as
    `?last=` (an EventSource cannot set Last-Event-ID): it resumes from there."""
    hub(rig).changed(["/a.css"])
    hub(rig).changed(["/b.js"])
    rig.serve(request(f"{LIVE}?last={hub(rig).instance}-1"))
    _, content = stream(rig)
    assert content.endswith(b'data: {"paths":["/b.js"]}\n\n') and b"/a.css" not in content


def test_an_empty_last_is_a_first_visit(rig: Rig) -> None:
    hub(rig).changed(["/a.css"])
    rig.serve(request(f"{LIVE}?last="))
    _, content = stream(rig)
    assert b"event:" not in content


def test_streams_are_capped(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(live_reload=True, live_reload_max=1)
    hub(rig).subscribe(Page(), None)  # another page holds the one stream allowed
    rig.serve(request(LIVE))
    (reply,) = rig.replies()
    assert reply.status == 503 and reply.header("retry-after") == "5"
    assert rig.phase is Phase.IDLE


def test_pages_get_the_script_and_a_tag_of_their_own(rig: Rig) -> None:
    rig.serve(request("/index.html"))
    (reply,) = rig.replies()
    assert reply.body == INDEX  # no </body>: served as it is
    page = b"<!doctype html><title>t</title><body><p>hi</p></body>\n"
    (rig.docroot / "page.html").write_bytes(page)
    rig.serve(request("/page.html"))
    injected = rig.replies()[1]
    assert injected.body == page.replace(b"</body>", SCRIPT % LIVE.encode() + b"</body>")
    assert injected.header("content-length") == str(len(injected.body))
    assert (injected.header("etag") or "").endswith('-live"')
    assert injected.header("cache-control") == "no-cache"


def test_other_files_are_served_no_cache(rig: Rig, docroot: Path) -> None:
    rig.serve(request("/hello.txt"))
    assert rig.replies()[0].header("cache-control") == "no-cache"


def test_without_the_option_the_path_is_not_served_and_pages_are_untouched(
        make_rig: Callable[..., Rig], docroot: Path) -> None:
    rig = make_rig()
    page = b"<body><p>hi</p></body>\n"
    (docroot / "page.html").write_bytes(page)
    rig.serve(request(LIVE))
    rig.serve(request("/page.html"))
    missing, plain = rig.replies()
    assert missing.status == 404 and plain.body == page
    assert rig.owner.live is None


def test_dechunk_reads_a_whole_stream() -> None:
    assert dechunk(b"3\r\nabc\r\n0\r\n\r\nrest") == (b"abc", b"rest")


def test_the_streams_head_byte_for_byte(rig: Rig) -> None:
    rig.serve(request(LIVE))
    head, _ = stream(rig)
    assert re.sub(rb"Date: [^\r]*", b"Date: D", head) == (
        b"HTTP/1.1 200 OK\r\nServer: evserver\r\nX-Content-Type-Options: nosniff\r\n"
        b"Date: D\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")


def test_an_http_10_streams_head_byte_for_byte(rig: Rig) -> None:
    rig.serve(request(LIVE, version="HTTP/1.0"))
    head = bytes(rig.sock.sent).partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert re.sub(rb"Date: [^\r]*", b"Date: D", head) == (
        b"HTTP/1.1 200 OK\r\nServer: evserver\r\nX-Content-Type-Options: nosniff\r\n"
        b"Date: D\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n")


def test_the_refusal_at_the_cap_says_when_to_retry_byte_for_byte(
        make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(live_reload=True, live_reload_max=1)
    hub(rig).subscribe(Page(), None)
    rig.serve(request(LIVE))
    assert b"\r\nRetry-After: 5\r\n" in rig.replies()[0].head


def test_the_stream_over_https_carries_the_https_fields(make_tls: Callable[..., Rig],
                                                        make_rig: Callable[..., Rig]) -> None:
    tls = make_tls(live_reload=True, hsts=60)
    tls.serve(request(LIVE))
    assert b"\r\nStrict-Transport-Security: max-age=60\r\n" in bytes(tls.sock.sent)
    plain = make_rig(live_reload=True, hsts=60)
    plain.serve(request(LIVE))
    assert b"Strict-Transport-Security" not in bytes(plain.sock.sent)


def test_every_byte_of_the_stream_is_logged(rig: Rig) -> None:
    rig.serve(request(LIVE))
    hub(rig).changed(["/a.css"])
    hub(rig).heartbeat()
    rig.receive(b"")
    head, _ = stream(rig)
    assert rig.log() == [(f"GET {LIVE} HTTP/1.1".encode(), 200, len(rig.sock.sent) - len(head))]


@pytest.mark.parametrize("where", ["send", "recv"])
def test_a_reset_stream_closes_quietly(rig: Rig, where: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    rig.serve(request(LIVE))
    reset = ConnectionResetError(errno.ECONNRESET, "reset")
    if where == "send":
        rig.sock.fail_send = reset
        hub(rig).changed(["/a.css"])
    else:
        rig.receive(reset)
    assert rig.phase is Phase.CLOSED and len(hub(rig)) == 0 and len(rig.log()) == 1
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []


def test_error_pages_get_the_script(rig: Rig) -> None:
    rig.serve(request("/not-written-yet.html"))
    (reply,) = rig.replies()
    assert reply.status == 404 and SCRIPT % LIVE.encode() in reply.body


@pytest.mark.parametrize(("target", "last"), [
    (b"/.evserver/live?last=a1-3", b"a1-3"),
    (b"/.evserver/live?v=2&last=a1-3", b"a1-3"),
    (b"/.evserver/live?last=a1-3&x=?", b"a1-3"),
    (b"/.evserver/live?last=a%3D1", b"a=1"),
    (b"/.evserver/live?last=a=1", b"a=1"),
    (b"/.evserver/live?last=", None),
    (b"/.evserver/live", None),
    (b"/.evserver/live?lastx=1", None),
])
def test_last_seen_reads_the_query(target: bytes, last: bytes | None) -> None:
    assert _last_seen(target) == last
