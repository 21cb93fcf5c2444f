"""Faults against real servers (issue #4, points 5 and 7): evserver stays up, leaks nothing
and loses nothing when clients reset, files change under a response, the log cannot be
written, a worker raises, SIGTERM arrives under load, or a client floods pipelined requests.

Most tests drive `python -m evserver` processes (fd counts from /proc/PID/fd, RSS from
/proc/PID/status, the kernel's socket queues from /proc/net/tcp); tests that inject a fault
inside the server use an in-thread `Server` with one function monkeypatched.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import evserver.connection
import evserver.files
from tests.conftest import RunningServer, ServerProcess, wait_for
from tests.wire import Reader, connect, get, request

MIB = 1024 * 1024
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() sends RST
# "GET /target HTTP/1.1" 200 1234 -> target, status, body bytes
_LOG_RE = re.compile(r'"GET (\S+) HTTP/1\.[01]" (\d{3}) (\d+) ')

StartProcess = Callable[..., ServerProcess]
StartServer = Callable[..., RunningServer]


# -- helpers ---------------------------------------------------------------------------------

def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def settle_fds(pid: int, baseline: int) -> int:
    wait_for(lambda: fd_count(pid) <= baseline)
    return fd_count(pid)


def log_entries(text: str) -> dict[str, tuple[int, int]]:
    """target -> (status, body bytes); every target in these tests is unique."""
    entries: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        match = _LOG_RE.search(line)
        assert match, f"unparsable access-log line {line!r}"
        assert match.group(1) not in entries, f"logged twice: {line!r}"
        entries[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return entries


def small_window(port: int, rcvbuf: int = 4096) -> socket.socket:
    """A client with a tiny receive window, so a big response stays in the server's SEND
    phase (sendfile from the fd) instead of landing in kernel buffers at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def read_head(sock: socket.socket) -> tuple[dict[str, str], bytearray]:
    """The response head as a dict (lower-case names, status under ':status') and the
    body bytes already received after it."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"EOF before a response head: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    fields = {":status": lines[0].split(" ")[1]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.lower()] = value.strip()
    return fields, bytearray(rest)


def read_at_least(sock: socket.socket, body: bytearray, n: int) -> None:
    while len(body) < n:
        chunk = sock.recv(65536)
        assert chunk, "EOF too early"
        body += chunk


def read_to_eof(sock: socket.socket, body: bytearray, limit: int) -> None:
    """Read until the server closes; fails on a timeout or if more than `limit` arrives."""
    while chunk := sock.recv(1 << 20):
        body += chunk
        assert len(body) <= limit, "more bytes than the response announced"


def rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    sock.close()


# -- a client resets mid-download ------------------------------------------------------------

def test_client_resets_mid_sendfile_download_leave_no_trace(
        tmp_path: Path, start_process: StartProcess) -> None:
    """Clients that RST a streamed (sendfile) download at various points: a parallel
    download still completes byte-exact, the fd count returns to its baseline, and each
    reset response is logged as 200 with fewer bytes than the file, quietly."""
    root = tmp_path / "root"
    root.mkdir()
    big = os.urandom(24 * MIB)  # far more than the kernel's socket buffers can hold
    (root / "big.bin").write_bytes(big)
    (root / "hello.txt").write_bytes(b"hello, world\n")
    sp = start_process(root=root)
    pid = sp.proc.pid
    baseline = fd_count(pid) + 1  # and the file the cache keeps open (--cache-max-open)
    with connect(sp.port) as sock:  # pool threads exist from here on
        sock.sendall(request("/big.bin?warm", close=True))
        _, body = read_head(sock)
        read_to_eof(sock, body, len(big))
        assert body == big
    assert settle_fds(pid, baseline) == baseline

    bystander: list[bytes] = []

    def download() -> None:
        with small_window(sp.port, 64 * 1024) as sock:
            sock.sendall(request("/big.bin?bystander", close=True))
            fields, body = read_head(sock)
            while chunk := sock.recv(65536):
                body += chunk
                time.sleep(0.0005)  # paced: it is still running while the others reset
            bystander.append(bytes(body))

    thread = threading.Thread(target=download)
    thread.start()
    cuts = (1, 64 * 1024, 512 * 1024, 2 * MIB)
    for k, cut in enumerate(cuts):
        sock = small_window(sp.port, 64 * 1024)
        if k == 0:  # a keep-alive connection that already served one response
            sock.sendall(request("/hello.txt?first"))
            Reader(sock).read_response()
        sock.sendall(request(f"/big.bin?reset={k}"))
        _, body = read_head(sock)
        read_at_least(sock, body, cut)
        assert fd_count(pid) >= baseline + 2  # the socket and the file are open now
        rst_close(sock)
        assert get(sp.port, f"/hello.txt?after={k}").body == b"hello, world\n"  # serves on
    thread.join(10)
    assert bystander == [big]
    assert settle_fds(pid, baseline) == baseline
    assert sp.proc.poll() is None
    assert sp.terminate() == 0
    entries = log_entries(sp.log_path.read_text())
    assert entries["/big.bin?bystander"] == (200, len(big))
    for k, cut in enumerate(cuts):
        status, nbytes = entries[f"/big.bin?reset={k}"]
        assert status == 200 and cut - 1024 <= nbytes < len(big), (k, nbytes)
    stderr = sp.stderr()
    assert "Traceback" not in stderr and "Errno" not in stderr  # a reset is a quiet close


# -- files that change under a response ------------------------------------------------------

@pytest.mark.parametrize("new_size", [0, 8 * MIB])
def test_file_truncated_while_being_sent_ends_short_and_closes(
        tmp_path: Path, start_process: StartProcess, new_size: int) -> None:
    """Truncating a file mid-response: the body ends short (exactly at the new size when
    that is still ahead of the sender), the server closes the connection, warns once, logs
    the bytes really sent, and serves the next client (and the new size) normally."""
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(16 * MIB)
    (root / "shrink.bin").write_bytes(data)
    (root / "ok.txt").write_bytes(b"ok\n")
    sp = start_process(root=root)
    with small_window(sp.port) as sock:
        sock.sendall(request("/shrink.bin?inflight"))  # keep-alive: only a close ends it
        fields, body = read_head(sock)
        assert fields[":status"] == "200" and int(fields["content-length"]) == len(data)
        read_at_least(sock, body, 64 * 1024)
        os.truncate(root / "shrink.bin", new_size)
        read_to_eof(sock, body, len(data))  # the server closes; a hang would time out
    assert len(body) < len(data)
    assert body == data[:len(body)]
    if new_size:
        assert len(body) == new_size
    assert get(sp.port, "/ok.txt").body == b"ok\n"
    assert get(sp.port, "/shrink.bin?after").body == data[:new_size]
    assert sp.proc.poll() is None
    assert sp.terminate() == 0
    entries = log_entries(sp.log_path.read_text())
    assert entries["/shrink.bin?inflight"] == (200, len(body))
    assert entries["/shrink.bin?after"] == (200, new_size)
    stderr = sp.stderr()
    assert stderr.count("shrank while being sent") == 1
    assert "Traceback" not in stderr


@pytest.mark.parametrize("change", ["replace", "delete"])
def test_file_replaced_or_deleted_while_being_sent_completes_with_the_old_content(
        tmp_path: Path, start_process: StartProcess, change: str) -> None:
    """A file renamed over or deleted mid-response: the response in flight completes
    byte-exact with the old content (the open fd keeps the old inode) on a connection
    that stays usable; after the cache TTL, requests see the new content or 404."""
    root = tmp_path / "root"
    root.mkdir()
    old_big, new_big = os.urandom(8 * MIB), os.urandom(3 * MIB + 7)
    (root / "movie.bin").write_bytes(old_big)
    (root / "small.txt").write_bytes(b"old small\n")
    # A 1 ms TTL: reading the 8 MiB response takes far longer, so the requests after it
    # come past the TTL with no sleep (the TTL itself is the conn layer's: test_cache_ttl).
    sp = start_process("--cache-ttl", "0.001", root=root)
    assert get(sp.port, "/small.txt").body == b"old small\n"  # now in the memory cache
    with small_window(sp.port) as sock:
        sock.sendall(request("/movie.bin?inflight"))
        fields, body = read_head(sock)
        read_at_least(sock, body, 64 * 1024)
        if change == "replace":
            for name, content in (("movie.bin", new_big), ("small.txt", b"new small\n")):
                (root / f"{name}.tmp").write_bytes(content)
                os.replace(root / f"{name}.tmp", root / name)
        else:
            os.unlink(root / "movie.bin")
            os.unlink(root / "small.txt")
        read_at_least(sock, body, len(old_big))
        assert int(fields["content-length"]) == len(old_big)
        assert body == old_big
        sock.settimeout(5)
        reader = Reader(sock)  # the same keep-alive connection serves on
        sock.sendall(request("/movie.bin?later") + request("/small.txt?later"))
        movie, small = reader.read_response(), reader.read_response()
    if change == "replace":
        assert (movie.status, movie.body) == (200, new_big)
        assert movie.header("etag") != fields["etag"]
        assert (small.status, small.body) == (200, b"new small\n")
    else:
        assert (movie.status, small.status) == (404, 404)
    assert sp.terminate() == 0
    entries = log_entries(sp.log_path.read_text())
    assert entries["/movie.bin?inflight"] == (200, len(old_big))
    assert "Traceback" not in sp.stderr()


# -- the access log cannot be written --------------------------------------------------------

def test_log_on_a_full_disk_is_reported_once_and_serving_goes_on(
        start_process: StartProcess) -> None:
    """`--log /dev/full`: the server starts, answers every request normally over many
    flush periods, reports ENOSPC exactly once on stderr, and exits 0."""
    sp = start_process("--log", "/dev/full")
    for i in range(15):
        assert get(sp.port, f"/hello.txt?n={i}").body == b"hello, world\n"
        time.sleep(0.04)  # 0.6 s in all: several 0.1 s flushes, each one failing
    assert wait_for(lambda: "cannot write the access log" in sp.stderr(), 2)
    assert get(sp.port, "/data.json").body == b'{"ok": true}\n'
    assert sp.terminate() == 0  # the final flush at close fails too, and is not re-reported
    stderr = sp.stderr()
    assert stderr.count("cannot write the access log") == 1, stderr
    assert "No space left on device" in stderr
    assert "Traceback" not in stderr


def test_log_removed_while_running_is_recreated_and_keeps_later_lines(
        start_process: StartProcess) -> None:
    """Unlinking the access log: serving goes on, the writer notices within 0.5 s and
    recreates the file, and every request made after that is in the new file."""
    sp = start_process()
    for i in range(3):
        assert get(sp.port, f"/hello.txt?before={i}").status == 200
    assert wait_for(lambda: sp.log_path.read_text().count("?before=") == 3, 2)
    os.unlink(sp.log_path)
    removed = time.monotonic()
    assert wait_for(sp.log_path.exists, 1.0, step=0.005), "log not recreated"
    recreated = time.monotonic() - removed
    print(f"access log recreated {recreated * 1000:.0f} ms after it was removed")
    assert recreated < 0.5
    for i in range(5):
        assert get(sp.port, f"/hello.txt?after={i}").status == 200
    assert sp.terminate() == 0
    text = sp.log_path.read_text()
    assert text.count("?after=") == 5 and "?before=" not in text
    assert "Traceback" not in sp.stderr()


def test_lines_logged_right_after_the_log_is_removed_are_not_lost(
        start_process: StartProcess) -> None:
    """A request answered just after the log file was unlinked is in the recreated file."""
    sp = start_process()
    assert get(sp.port, "/hello.txt?warm").status == 200
    assert wait_for(lambda: "?warm" in sp.log_path.read_text(), 2)
    found = []
    for n in range(3):
        os.unlink(sp.log_path)
        assert get(sp.port, f"/hello.txt?right-after={n}").status == 200
        assert wait_for(sp.log_path.exists, 1.0)
        found.append(wait_for(lambda n=n: f"?right-after={n}" in sp.log_path.read_text(), 2))
    assert sp.terminate() == 0
    assert found == [True, True, True]


# -- exceptions inside the server ------------------------------------------------------------

def test_worker_exception_is_500_and_the_loop_goes_on(
        monkeypatch: pytest.MonkeyPatch, start_server: StartServer, site: Path) -> None:
    """`load` raising in the pool: that request gets 500 and a close (no detail leaked),
    failures are not cached, and the single pool thread and the loop keep serving."""
    real_load = evserver.files.load  # the function connection.py imported

    def flaky(target: evserver.files.Resolved, *args: object) -> evserver.files.FileBody:
        if target.path.endswith("data.json"):
            raise RuntimeError("injected worker failure")
        return real_load(target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(evserver.connection, "load", flaky)
    rs = start_server(threads=1)
    with connect(rs.port) as sock:
        sock.sendall(request("/data.json?first"))
        reader = Reader(sock)
        resp = reader.read_response()
        assert resp.status == 500
        assert resp.header("connection") == "close"
        assert b"injected" not in resp.head + resp.body
        assert reader.at_eof()
    for i in range(3):
        assert get(rs.port, f"/index.html?n={i}").status == 200
        assert get(rs.port, f"/medium.bin?n={i}").body == (site / "medium.bin").read_bytes()
    assert get(rs.port, "/data.json?again").status == 500  # retried, not a cached failure
    assert rs.thread.is_alive()
    statuses = {t: s for t, (s, _) in log_entries("\n".join(rs.log_lines())).items()}
    assert statuses["/data.json?first"] == statuses["/data.json?again"] == 500


def test_disk_error_while_reading_is_500_and_leaks_no_fd(
        monkeypatch: pytest.MonkeyPatch, start_server: StartServer) -> None:
    """EIO while a worker reads a small file: 500, the file's fd is closed, and other
    files are still served."""
    real_read = evserver.files._read_all

    def failing(fd: int, size: int) -> bytes:
        if size == 200 * 1024:  # medium.bin only
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(fd, size)

    monkeypatch.setattr(evserver.files, "_read_all", failing)
    rs = start_server(threads=2)
    assert get(rs.port, "/hello.txt").status == 200  # pool threads and caches exist now
    my_fds = fd_count(os.getpid())
    for _ in range(5):
        assert get(rs.port, "/medium.bin").status == 500
    assert get(rs.port, "/index.html").status == 200
    assert wait_for(lambda: fd_count(os.getpid()) <= my_fds, 2)
    assert rs.thread.is_alive()


def test_loop_thread_exception_is_500_and_closes(
        monkeypatch: pytest.MonkeyPatch, start_server: StartServer) -> None:
    """An unexpected exception while a request is dispatched on the loop thread: the
    client gets 500 at once and the connection closes (docs/architecture.md, Invariants)."""
    real_route = evserver.files.route

    def broken(docroot: str, target: bytes,
               accept_encoding: bytes | None) -> evserver.files.Route:
        if b"boom" in target:
            raise RuntimeError("injected loop failure")
        return real_route(docroot, target, accept_encoding)

    monkeypatch.setattr(evserver.connection, "route", broken)
    rs = start_server(header_timeout=1.0)
    assert get(rs.port, "/hello.txt").status == 200
    with connect(rs.port, timeout=3) as sock:
        sock.sendall(request("/boom"))
        reader = Reader(sock)
        assert reader.read_response().status == 500
        assert reader.at_eof(1.0)


# -- SIGTERM under load ----------------------------------------------------------------------

@dataclass
class Exchange:
    target: str
    path: str
    head: bool = False  # the response head arrived
    complete: bool = False  # the whole body arrived, byte-exact
    short: bool = False  # the head arrived, then the connection ended mid-body
    wrong: bool = False  # the body arrived with different bytes


class Client:
    """One keep-alive connection that records what happened to every request on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def fetch(self, ex: Exchange, expected: bytes, pace: float) -> bool:
        """One request and its response; True if the connection may carry another."""
        try:
            self.sock.sendall(request(ex.target))
            while b"\r\n\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return False  # closed before answering: never logged, never served
                self.buf += chunk
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            ex.head = True
            match = re.search(rb"\r\nContent-Length: (\d+)", head)
            assert match, head
            length = int(match.group(1))
            body = bytearray(rest)
            while len(body) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                body += chunk
                if pace:
                    time.sleep(pace)
        except OSError:
            ex.short = ex.head
            return False
        if len(body) < length:
            ex.short = True
            return False
        self.buf = bytes(body[length:])
        ex.complete = bytes(body[:length]) == expected
        ex.wrong = not ex.complete
        return b"\r\nConnection: close" not in head


def test_sigterm_with_fifty_clients_loses_no_response(
        site: Path, start_process: StartProcess) -> None:
    """SIGTERM while 10 clients stream big files and 40 make keep-alive requests: exit 0
    within the grace, no response whose head went out is cut short, every response a
    client received completely is in the log (by its unique target, with its full byte
    count), and the log holds nothing that no client asked for."""
    grace = 5.0
    sp = start_process("--shutdown-grace", str(grace))
    small = ["/hello.txt", "/index.html", "/data.json", "/sub/page.html", "/medium.bin",
             "/missing.txt"]
    bodies = {p: (site / p.lstrip("/")).read_bytes() for p in small if p != "/missing.txt"}
    bodies["/missing.txt"] = (site / "404.html").read_bytes()
    bodies["/big.bin"] = (site / "big.bin").read_bytes()
    exchanges: list[Exchange] = []
    stop = threading.Event()

    def run(c: int, paths: list[str], rcvbuf: int, pace: float) -> None:
        n = 0
        while not stop.is_set():
            sock = socket.socket()
            sock.settimeout(10)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                sock.connect(("127.0.0.1", sp.port))
            except OSError:
                sock.close()
                return  # refused: the server stopped listening
            client = Client(sock)
            with sock:
                while not stop.is_set():
                    path = paths[(c + n) % len(paths)]
                    ex = Exchange(f"{path}?c={c}&n={n}", path)
                    n += 1
                    exchanges.append(ex)  # list.append is atomic
                    if not client.fetch(ex, bodies[path], pace):
                        break

    threads = [threading.Thread(target=run, args=(c, ["/big.bin"], 64 * 1024, 0.001))
               for c in range(10)]
    threads += [threading.Thread(target=run, args=(c, small, 0, 0.0)) for c in range(10, 50)]
    for t in threads:
        t.start()
    try:
        def busy() -> bool:
            done = [e for e in exchanges if e.complete]
            streaming = [e for e in exchanges if e.path == "/big.bin" and e.head
                         and not e.complete and not e.short]
            return (len(done) >= 400 and sum(e.path == "/big.bin" for e in done) >= 10
                    and len(streaming) >= 3)

        assert wait_for(busy, 20), "the load never got going"
        in_flight = sum(e.head and not e.complete for e in exchanges)
        sp.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert sp.proc.wait(grace + 5) == 0
        took = time.monotonic() - signalled
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    complete = [e for e in exchanges if e.complete]
    print(f"{len(exchanges)} requests, {len(complete)} complete, {in_flight} in flight at "
          f"SIGTERM, exit after {took:.2f} s")
    assert took < grace
    assert not [e.target for e in exchanges if e.short], "responses cut short"
    assert not [e.target for e in exchanges if e.wrong], "wrong bodies"
    entries = log_entries(sp.log_path.read_text())
    by_target = {e.target: e for e in exchanges}
    assert set(entries) <= set(by_target), "logged requests no client sent"
    for ex in complete:
        assert ex.target in entries, f"{ex.target} received complete but not logged"
        status, nbytes = entries[ex.target]
        assert nbytes == len(bodies[ex.path])
        assert status == (404 if ex.path == "/missing.txt" else 200)
    for target, (_status, nbytes) in entries.items():
        assert nbytes == len(bodies[by_target[target].path]), f"{target} logged short"
    assert "Traceback" not in sp.stderr()


def test_keepalive_response_finishing_during_drain_does_not_hold_the_exit(
        tmp_path: Path, start_process: StartProcess) -> None:
    """A keep-alive download in flight at SIGTERM completes byte-exact; then the server
    closes that connection (the client sees EOF) and exits, instead of keeping it idle
    for the whole grace period."""
    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(8 * MIB)
    (root / "big.bin").write_bytes(data)
    sp = start_process("--shutdown-grace", "2", root=root)
    with small_window(sp.port, 64 * 1024) as sock:
        sock.sendall(request("/big.bin"))
        _, body = read_head(sock)
        sp.proc.send_signal(signal.SIGTERM)
        read_at_least(sock, body, len(data))
        assert body == data
        assert Reader(sock).at_eof(1.0), "idle keep-alive connection not closed while draining"
    closed = time.monotonic()
    assert sp.proc.wait(10) == 0
    assert time.monotonic() - closed < 1.0


# -- a pipelined flood -----------------------------------------------------------------------

def _server_rx_queue(server_port: int, client_port: int) -> int:
    """Bytes in the server socket's receive queue (sent by the client, not yet read)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            local, remote = cols[1], cols[2]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                return int(cols[4].split(":")[1], 16)
    raise AssertionError("server socket not found in /proc/net/tcp")


def _outq(sock: socket.socket) -> int:
    """Bytes in our own send queue (SIOCOUTQ)."""
    value = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", value)[0])


def test_pipelined_flood_is_backpressured_and_answered_in_order(
        tmp_path: Path, start_process: StartProcess) -> None:
    """A client pipelines 5 MB of GETs without reading: the server stops reading (the rest
    waits in kernel buffers), its RSS stays flat, and once the client reads, every
    response arrives, in order."""
    root = tmp_path / "root"
    root.mkdir()
    bodies = [b"a" * 10, b"b" * 100, b"c" * 1000]
    names = ["a.txt", "b.txt", "c.txt"]
    for name, body in zip(names, bodies, strict=True):
        (root / name).write_bytes(body)
    sp = start_process("--max-keepalive-requests", "1000000", root=root)
    assert get(sp.port, "/a.txt").body == bodies[0]
    pad = "X-Pad: " + "p" * 200 + "\r\n"  # fewer, larger requests: a faster test
    triple = b"".join(request(f"/{n}", host="x", headers=pad) for n in names)
    rounds = -(-5 * MIB // len(triple))
    flood = memoryview(triple * rounds)
    rss_before = rss_kib(sp.proc.pid)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.connect(("127.0.0.1", sp.port))
    sock.setblocking(False)
    sent, last_progress = 0, time.monotonic()
    while sent < len(flood) and time.monotonic() - last_progress < 0.3:
        try:
            sent += sock.send(flood[sent:sent + 65536])
            last_progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.005)
    time.sleep(0.2)  # let the server do whatever it still would
    waiting = (len(flood) - sent) + _outq(sock) + _server_rx_queue(
        sp.port, sock.getsockname()[1])
    grown = rss_kib(sp.proc.pid) - rss_before
    print(f"flood {len(flood)} B: {len(flood) - waiting} B read by the server, "
          f"{waiting} B waiting in kernel buffers or unsent; RSS +{grown} KiB")
    assert waiting > 1 * MIB, "the server kept reading while the client did not"
    assert grown < 2 * 1024, f"RSS grew by {grown} KiB"

    sock.setblocking(True)
    sock.settimeout(10)
    sender = threading.Thread(target=sock.sendall, args=(flood[sent:],))
    sender.start()
    buf, pos, count, expected = bytearray(), 0, 0, 3 * rounds
    while count < expected:
        chunk = sock.recv(1 << 20)
        assert chunk, f"EOF after {count} of {expected} responses"
        buf += chunk
        while (end := buf.find(b"\r\n\r\n", pos)) >= 0:
            match = re.search(rb"\r\nContent-Length: (\d+)", buf[pos:end])
            assert match and buf.startswith(b"HTTP/1.1 200 ", pos), bytes(buf[pos:end])
            start = end + 4
            stop = start + int(match.group(1))
            if len(buf) < stop:
                break
            assert buf[start:stop] == bodies[count % 3], f"response {count} out of order"
            count, pos = count + 1, stop
        if pos > 4 * MIB:
            del buf[:pos]
            pos = 0
    sender.join(10)
    sock.close()
    assert pos == len(buf)  # nothing beyond the last response
    assert sp.terminate() == 0
    assert len(sp.log_path.read_text().splitlines()) == expected + 1
