"""The hot path (`Connection._answer_at_once`) against the general one, byte for byte.

A head seen before that arrives whole between requests is answered at once when it can be;
the same requests through `_answer` alone must give the same bytes on the wire, the same log
lines and counters, and leave the connection in the same state. Each scenario runs twice on
fresh rigs with the memos emptied in between: as the server runs, and with the hot path
replaced by the general one."""
from __future__ import annotations

import errno
import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evserver import connection as connection_module
from evserver.connection import Connection
from evserver.files import route
from evserver.loop import READ
from tests.memos import forget_memos
from tests.wire import parse_responses, request

from .rig import HELLO, Rig, TLSRig

Scenario = Callable[[Rig], None]
GET = request("/hello.txt")
# Modification times (ns) the files are given before each run: ETags and Last-Modified
# follow them, and both runs must see the same.
MTIME, CHANGED = 1_700_000_000 * 10**9, 1_700_000_100 * 10**9


def repeated(data: bytes, times: int = 3) -> Scenario:
    def scenario(rig: Rig) -> None:
        for _ in range(times):
            rig.serve(data)
            rig.loop.advance(0.25)
    return scenario


def send_fails_the_second_time(rig: Rig) -> None:
    rig.serve(GET)
    rig.sock.fail_send = ConnectionResetError(errno.ECONNRESET, "reset")
    rig.serve(GET)


def socket_takes_part_the_second_time(rig: Rig) -> None:
    rig.serve(GET)
    rig.sock.send_limit = 40
    rig.serve(GET)
    rig.sock.send_limit = None
    rig.serve(GET)


def socket_full_the_second_time(rig: Rig) -> None:
    rig.serve(GET)
    rig.sock.block()
    rig.receive(GET)
    rig.loop.advance(1.0)
    rig.sock.unblock()
    rig.settle()


def draining_before_the_second(rig: Rig) -> None:
    rig.serve(GET)
    rig.owner.draining = True
    rig.serve(GET)


def cache_expires_between(rig: Rig) -> None:
    rig.serve(GET)
    rig.loop.advance(5.0)  # past cache_ttl: revalidated in the pool
    rig.serve(GET)
    rig.serve(GET)


def file_changes_between(rig: Rig) -> None:
    rig.serve(GET)
    (rig.docroot / "hello.txt").write_bytes(b"changed\n")
    os.utime(rig.docroot / "hello.txt", ns=(CHANGED, CHANGED))
    rig.loop.advance(5.0)
    rig.serve(GET)
    rig.serve(GET)


SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "plain GET": (repeated(GET), {}),
    "HEAD": (repeated(request("/hello.txt", method="HEAD")), {}),
    "a browser's head": (repeated(request("/index.html", headers=(
        "User-Agent: Mozilla/5.0\r\nReferer: http://test/\r\nAccept-Encoding: gzip, br\r\n"
        "Accept: text/html\r\n"))), {}),
    "text it encodes": (repeated(request("/app.js", headers="Accept-Encoding: gzip\r\n")), {}),
    "an empty file's precompressed sibling": (repeated(request(
        "/empty.txt", headers="Accept-Encoding: gzip\r\n")), {}),
    "If-None-Match": (repeated(request("/hello.txt", headers='If-None-Match: "x"\r\n')), {}),
    "If-Modified-Since": (repeated(request("/hello.txt", headers=(
        "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"))), {}),
    "Range": (repeated(request("/hello.txt", headers="Range: bytes=0-3\r\n")), {}),
    "Cache-Control": (repeated(request("/hello.txt", headers=(
        "Cache-Control: no-transform\r\nAccept-Encoding: gzip\r\n"))), {}),
    "Expect": (repeated(request("/hello.txt", headers="Expect: 100-continue\r\n")), {}),
    "HTTP/1.0 keep-alive": (repeated(request("/hello.txt", version="HTTP/1.0",
                                             headers="Connection: keep-alive\r\n")), {}),
    "Connection: close": (repeated(request("/hello.txt", close=True), 1), {}),
    "POST": (repeated(request("/hello.txt", method="POST")), {}),
    "OPTIONS": (repeated(request("*", method="OPTIONS")), {}),
    "missing file": (repeated(request("/missing.txt")), {}),
    "a folder": (repeated(request("/")), {}),
    "a folder without its slash": (repeated(request("/sub")), {}),
    "a file too big to keep in memory": (repeated(request("/big.bin")), {}),
    "a file too big to join to its head": (repeated(request("/mid.bin")),
                                          {"cache_max_entry": 256 * 1024}),
    "a target refused after parsing": (repeated(request("http://user@test/hello.txt")), {}),
    "a target the route refuses": (repeated(request("/%zz")), {}),
    "keep-alive limit": (repeated(GET, 4), {"max_keepalive_requests": 3}),
    "a login": (repeated(request("/hello.txt")), {"auth": ("alice:secret",)}),
    "allowed clients": (repeated(GET), {"allow": ("127.0.0.0/8",)}),
    "--no-cache": (repeated(GET), {"no_cache": True}),
    "a send that fails": (send_fails_the_second_time, {}),
    "a send the socket takes in part": (socket_takes_part_the_second_time, {}),
    "a socket that takes nothing": (socket_full_the_second_time, {}),
    "draining": (draining_before_the_second, {}),
    "an entry past its time": (cache_expires_between, {}),
    "a file changed meanwhile": (file_changes_between, {}),
}


def observe(rig: Rig) -> dict[str, object]:
    """Everything a client, the log, the metrics and the next request could tell apart."""
    conn = rig.conn
    return {"sent": bytes(rig.sock.sent), "log": list(rig.owner.access_log.lines),
            "counters": rig.owner.counters.snapshot(), "phase": rig.phase, "mask": rig.mask,
            "deadline": conn._deadline, "served": conn._served, "keep": conn._keep,
            "request done": conn._req is None,
            "writes": list(rig.sock.writes), "closed": rig.sock.closed, "shut": list(rig.sock.shut),
            "cache": (rig.owner.cache.hits, rig.owner.cache.misses),
            "forgotten": len(rig.owner.forgotten)}


def run(make_rig: Callable[..., Rig], docroot: Path, scenario: Scenario,
        overrides: dict[str, Any]) -> dict[str, object]:
    """The scenario on a fresh rig, from the same files and times and with no memo."""
    (docroot / "hello.txt").write_bytes(HELLO)  # a scenario may have changed it
    for path in [docroot, *docroot.rglob("*")]:
        os.utime(path, ns=(MTIME, MTIME))
    forget_memos()
    rig = make_rig(**overrides)
    scenario(rig)
    return observe(rig)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_hot_path_answers_as_the_general_path_does(
        name: str, make_rig: Callable[..., Rig], docroot: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (docroot / "sub").mkdir()
    (docroot / "sub" / "a.txt").write_bytes(b"a\n")
    (docroot / "app.js").write_bytes(b"console.log('hello');\n" * 150)  # 3,450 bytes
    (docroot / "empty.txt").write_bytes(b"")  # its variant stands for 0 bytes
    (docroot / "empty.txt.gz").write_bytes(gzip.compress(b""))
    scenario, overrides = SCENARIOS[name]
    hot = run(make_rig, docroot, scenario, overrides)
    monkeypatch.setattr(Connection, "_answer_at_once", Connection._answer)
    general = run(make_rig, docroot, scenario, overrides)
    assert hot == general


@pytest.mark.parametrize("size", [13, 64 * 1024], ids=["small", "64 KiB, the most joined"])
def test_a_repeated_plain_get_is_answered_at_once(make_rig: Callable[..., Rig], docroot: Path,
                                                  size: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first of three identical GETs takes the general path (it was parsed); the
    others are answered at once, without `_answer` or the general path's file steps, and
    the route is found once more (the first parse's Request then keeps it), not each time."""
    (docroot / "file.bin").write_bytes(b"x" * size)
    general: list[str] = []
    routes: list[bytes] = []

    def counting(name: str, method: Callable[..., None]) -> Callable[..., None]:
        def counted(self: Connection, *args: Any) -> None:
            general.append(name)
            method(self, *args)
        return counted

    monkeypatch.setattr(Connection, "_answer", counting("_answer", Connection._answer))
    monkeypatch.setattr(Connection, "_serve_found",
                        counting("_serve_found", Connection._serve_found))

    def counted_route(docroot: str, target: bytes, *rest: Any) -> Any:
        routes.append(target)
        return route(docroot, target, *rest)

    monkeypatch.setattr(connection_module, "route", counted_route)
    rig = make_rig(cache_max_entry=256 * 1024)
    repeated(request("/file.bin"))(rig)
    assert general == ["_answer", "_serve_found"]
    assert routes == [b"/file.bin"] * 2
    assert [(r.status, len(r.body)) for r in rig.replies()] == [(200, size)] * 3


def test_a_plain_read_that_fills_the_buffer_asks_nothing_of_tls(
        make_rig: Callable[..., Rig]) -> None:
    """Only a TLS socket is asked for bytes it holds: a plain read as long as the buffer is
    answered like any other."""
    rig = make_rig(recv_size=len(GET))
    repeated(GET)(rig)
    assert [r.status for r in rig.replies()] == [200] * 3


def test_a_head_seen_before_whose_target_is_refused_gets_the_same_400(
        make_rig: Callable[..., Rig]) -> None:
    """The route refuses the target (a `%` that starts no escape): the first time after
    parsing it, the next time (another connection) at once, with the same answer."""
    refused = request("/%zz")
    first, second = make_rig(), make_rig()
    first.serve(refused)
    second.serve(refused)
    assert [r.status for r in first.replies()] == [400]
    assert bytes(second.sock.sent) == bytes(first.sock.sent)


@pytest.mark.parametrize("hot", [True, False], ids=["at once", "general"])
def test_a_send_that_fails_logs_no_bytes(make_rig: Callable[..., Rig], hot: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The second response's send fails: its line says 0 bytes, not the first response's
    count (the byte count of the response before it was logged, on both paths)."""
    if not hot:
        monkeypatch.setattr(Connection, "_answer_at_once", Connection._answer)
    rig = make_rig()
    send_fails_the_second_time(rig)
    assert rig.log() == [(b"GET /hello.txt HTTP/1.1", 200, len(HELLO)),
                         (b"GET /hello.txt HTTP/1.1", 200, 0)]
    assert rig.sock.closed


def test_a_remembered_request_is_routed_in_each_server_s_own_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers in one process share the memo of heads seen, so one Request may be answered
    by each: the route it keeps is used only under the root it was found in."""
    rigs = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        (root / "hello.txt").write_bytes(name.encode())
        rigs.append(Rig(root))
    for _ in range(2):
        for rig in rigs:
            rig.serve(GET)
    assert [[r.body for r in rig.replies()] for rig in rigs] == [[b"one"] * 2, [b"two"] * 2]
    for rig in rigs:
        rig.owner.cache.close()


TLS_SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "HTTPS: plain GET": (repeated(GET), {}),
    "HTTPS: HSTS": (repeated(GET), {"hsts": 600}),
    "HTTPS: a browser's head": (SCENARIOS["a browser's head"][0], {}),
    "HTTPS: If-None-Match": (SCENARIOS["If-None-Match"][0], {}),
}


@pytest.mark.parametrize("name", list(TLS_SCENARIOS))
def test_over_tls_the_hot_path_answers_as_the_general_path_does(
        name: str, make_tls: Callable[..., TLSRig], docroot: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, overrides = TLS_SCENARIOS[name]
    hot = run(make_tls, docroot, scenario, overrides)
    monkeypatch.setattr(Connection, "_answer_at_once", Connection._answer)
    general = run(make_tls, docroot, scenario, overrides)
    assert hot == general


@pytest.mark.parametrize("hot", [True, False], ids=["at once", "general"])
def test_plain_http_on_the_tls_port_is_refused_even_for_a_head_seen_before(
        make_tls: Callable[..., TLSRig], docroot: Path, hot: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTPS site screens nothing by itself; the connection that got plain HTTP on the
    HTTPS port does, whether the head is new or remembered (and so read at once)."""
    if not hot:
        monkeypatch.setattr(Connection, "_answer_at_once", Connection._answer)
    make_tls().serve(GET)  # the head is now in the memo of heads seen
    rig = TLSRig(docroot)
    try:
        for _ in range(2):  # sniffed as plain HTTP, then read whole
            rig.plain.feed(GET)
            rig.conn.on_event(READ)
        (reply,) = parse_responses(bytes(rig.plain.sent))
        assert reply.status == 400
    finally:
        rig.owner.cache.close()
