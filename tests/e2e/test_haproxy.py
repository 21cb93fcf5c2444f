"""End to end: HAProxy (Debian's haproxy 2.6) in front of two `python -m evserver` processes.

Round robin with HTTP health checks on --health-path, the client's address carried by
PROXY protocol v2 or by X-Forwarded-For (believed only from --trusted-proxy), fail-over
when a server stops, and a rolling restart that loses no request.

Each test runs its own foreground haproxy (`-db`) with its config and admin socket in a
private directory, and stops it by its pid; the system service is never used. The test
client binds 127.0.0.2 so the address the balancer saw differs from the balancer's own
(127.0.0.1). Skipped without haproxy, failed instead when CI is set (tests/tools.py).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, wait_for
from tests.tools import need_tool
from tests.wire import Reader, Response, request

CLIENT_ADDR = "127.0.0.2"  # a loopback address that is not HAProxy's own source address
BIG = 512 * 1024  # a response long enough to be cut if a stop did not let it finish

# Fast checks so that a server's state changes within a few tenths of a second; `rise 1`
# because a restarted evserver is ready as soon as it prints its URL. A real config
# (contrib/haproxy.cfg) uses `inter 2s fall 3 rise 2`.
CONFIG = """\
global
    stats socket {sock} mode 600 level admin
    log stderr format short local0 warning

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 1s
    retries 3
    option redispatch 1
    {defaults_extra}

frontend web
    bind 127.0.0.1:{port}
    default_backend static

backend static
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 100ms fastinter 100ms downinter 100ms fall 1 rise 1 {server_extra}
{servers}
"""


@pytest.fixture(scope="module")
def haproxy_bin() -> str:
    return need_tool("haproxy")


def free_port() -> int:
    """A port that was free a moment ago (the race until haproxy binds it is accepted)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class HAProxy:
    proc: subprocess.Popen[bytes]
    port: int
    sock_path: Path
    stderr_path: Path

    def command(self, line: str) -> str:
        """One command on the admin socket (the runtime API)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.sock_path))
            s.sendall(line.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def states(self) -> dict[str, str]:
        """Server name -> UP / DOWN / ... as HAProxy's checks see it now."""
        lines = self.command("show stat").splitlines()
        fields = lines[0].lstrip("# ").split(",")
        name, status = fields.index("svname"), fields.index("status")
        return {row[name]: row[status].split(" ")[0]
                for row in (line.split(",") for line in lines[1:] if line)
                if row[0] == "static" and row[name] not in ("FRONTEND", "BACKEND")}

    def wait_states(self, want: dict[str, str], timeout: float = 5.0) -> None:
        ok = wait_for(lambda: all(self.states().get(k) == v for k, v in want.items()), timeout)
        assert ok, f"HAProxy servers {self.states()}, wanted {want}; {self.stderr()}"

    def stderr(self) -> str:
        return self.stderr_path.read_text()


@pytest.fixture
def start_haproxy(haproxy_bin: str) -> Iterator[Callable[..., HAProxy]]:
    """Start a foreground haproxy balancing over `servers` (name -> port)."""
    # The admin socket's path must fit sun_path (108 bytes): a short private directory.
    work = Path(tempfile.mkdtemp(prefix="hap-"))
    started: list[HAProxy] = []

    def start(servers: dict[str, int], server_extra: str = "",
              defaults_extra: str = "") -> HAProxy:
        port = free_port()
        sock_path = work / f"admin-{len(started)}.sock"
        lines = "\n".join(f"    server {name} 127.0.0.1:{p}" for name, p in servers.items())
        cfg = work / f"haproxy-{len(started)}.cfg"
        cfg.write_text(CONFIG.format(sock=sock_path, port=port, servers=lines,
                                     server_extra=server_extra, defaults_extra=defaults_extra))
        stderr_path = work / f"stderr-{len(started)}.txt"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([haproxy_bin, "-f", str(cfg), "-db"],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        hap = HAProxy(proc, port, sock_path, stderr_path)
        started.append(hap)
        if not wait_for(lambda: sock_path.exists() or proc.poll() is not None, 10):
            raise RuntimeError(f"haproxy did not start: {hap.stderr()}")
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited {proc.returncode}: {hap.stderr()}")
        hap.wait_states({name: "UP" for name in servers})
        return hap

    yield start
    for hap in started:
        if hap.proc.poll() is None:
            hap.proc.terminate()  # SIGTERM: haproxy's immediate stop
        try:
            hap.proc.wait(10)
        except subprocess.TimeoutExpired:
            hap.proc.kill()
            hap.proc.wait(10)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    """A document root per evserver whose /who.txt names it, so responses tell who served."""
    out = {}
    for name in ("a", "b"):
        root = tmp_path / f"root-{name}"
        root.mkdir()
        (root / "who.txt").write_text(name)
        (root / "index.html").write_text("<p>home</p>\n")
        (root / "big.bin").write_bytes(name.encode() * BIG)  # in flight for a while
        out[name] = root
    return out


def fetch(port: int, path: str = "/who.txt", source: str = "127.0.0.1",
          timeout: float = 5.0) -> Response:
    """GET through the balancer from `source`, one request per connection."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(request(path, close=True))
        return Reader(sock).read_response()


def served(sp: ServerProcess, path: str = "/who.txt") -> list[str]:
    """The access log's lines for `path` (health checks left out), after a graceful stop
    (which flushes the log)."""
    assert sp.terminate() == 0, sp.stderr()
    return [line for line in sp.log_path.read_text().splitlines() if f"GET {path} " in line]


def evservers(start_process: Callable[..., ServerProcess], roots: dict[str, Path],
              *extra: str) -> dict[str, ServerProcess]:
    return {name: start_process("--health-path", "/healthz", "--shutdown-grace", "3", *extra,
                                root=root)
            for name, root in roots.items()}


def test_round_robin_spreads_requests_over_both_servers(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """With `balance roundrobin` and /healthz checks, 20 requests alternate between the two
    evservers, and each one's access log records its share."""
    sps = evservers(start_process, roots)
    hap = start_haproxy({n: sp.port for n, sp in sps.items()})
    bodies = [fetch(hap.port) for _ in range(20)]
    assert all(r.status == 200 for r in bodies)
    who = [r.body.decode() for r in bodies]
    assert who.count("a") == 10 and who.count("b") == 10, who
    assert len(served(sps["a"])) == 10 and len(served(sps["b"])) == 10


def test_proxy_protocol_v2_carries_the_client_address(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """`send-proxy-v2` to evservers with --proxy-protocol --trusted-proxy 127.0.0.1: the logs
    name the client HAProxy saw (127.0.0.2), not HAProxy (127.0.0.1). The health checks
    carry the preamble too (HAProxy's default with send-proxy), or the servers stay DOWN."""
    sps = evservers(start_process, roots, "--proxy-protocol", "--trusted-proxy", "127.0.0.1")
    hap = start_haproxy({n: sp.port for n, sp in sps.items()}, server_extra="send-proxy-v2")
    assert all(fetch(hap.port, source=CLIENT_ADDR).status == 200 for _ in range(4))
    lines = served(sps["a"]) + served(sps["b"])
    assert len(lines) == 4
    assert all(line.split(" ", 1)[0] == CLIENT_ADDR for line in lines), lines


def test_forwardfor_is_believed_only_from_a_trusted_proxy(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """`option forwardfor`: the evserver with --trusted-proxy 127.0.0.1 logs the client from
    X-Forwarded-For (127.0.0.2); the one without it logs its peer, HAProxy (127.0.0.1)."""
    trusting = start_process("--health-path", "/healthz", "--trusted-proxy", "127.0.0.1",
                             root=roots["a"])
    plain = start_process("--health-path", "/healthz", root=roots["b"])
    hap = start_haproxy({"a": trusting.port, "b": plain.port},
                        defaults_extra="option forwardfor")
    responses = [fetch(hap.port, source=CLIENT_ADDR) for _ in range(4)]
    assert sorted(r.body.decode() for r in responses) == ["a", "a", "b", "b"]
    trusted_lines, plain_lines = served(trusting), served(plain)
    assert [line.split(" ", 1)[0] for line in trusted_lines] == [CLIENT_ADDR] * 2
    assert [line.split(" ", 1)[0] for line in plain_lines] == ["127.0.0.1"] * 2


def test_failover_when_one_server_stops(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """After SIGTERM to one evserver, HAProxy's checks mark it DOWN and all 20 requests are
    answered by the other."""
    sps = evservers(start_process, roots)
    hap = start_haproxy({n: sp.port for n, sp in sps.items()})
    assert sps["a"].terminate() == 0
    hap.wait_states({"a": "DOWN", "b": "UP"})
    responses = [fetch(hap.port) for _ in range(20)]
    assert [(r.status, r.body) for r in responses] == [(200, b"b")] * 20
    assert len(served(sps["b"])) == 20


class Hammer(threading.Thread):
    """Sends requests through the balancer back to back, recording every outcome."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.outcomes: list[tuple[int, bytes] | str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            # Alternate a tiny file and a big one, so some responses are in flight at SIGTERM.
            path = "/big.bin" if len(self.outcomes) % 2 else "/who.txt"
            try:
                r = fetch(self.port, path)
                self.outcomes.append((r.status, r.body[:1]))
            except OSError as err:  # ConnectionError on a cut body, too
                self.outcomes.append(repr(err))
            time.sleep(0.002)  # steady, not a CPU-bound flood on a shared machine

    def served_by(self) -> set[bytes]:
        return {o[1] for o in self.outcomes if isinstance(o, tuple)}


def test_rolling_restart_loses_no_request(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """While a client sends requests continuously through HAProxy, evserver A is stopped
    (SIGTERM: its listener closes, responses in flight finish) and started again on the same
    port, then B: every request is answered 200 in full, and both servers served.

    `http-reuse never` gives each request its own server connection, and `retry-on` keeps
    its default (conn-failure: refused connections are retried and redispatched, nothing
    else): a request that reached evserver must be answered by it. (Reusing idle keep-alive
    connections races with the server closing them, which only `retry-on empty-response`
    covers; contrib/haproxy.cfg has it.)"""
    sps = evservers(start_process, roots)
    hap = start_haproxy({n: sp.port for n, sp in sps.items()}, defaults_extra="http-reuse never")
    hammer = Hammer(hap.port)
    hammer.start()
    try:
        for name in ("a", "b"):
            time.sleep(0.3)
            old = sps[name]
            assert old.terminate() == 0, old.stderr()
            sps[name] = start_process("--health-path", "/healthz", "--port", str(old.port),
                                      root=roots[name])
            assert sps[name].port == old.port
            hap.wait_states({"a": "UP", "b": "UP"})  # what an operator's script waits for
        time.sleep(0.3)
    finally:
        hammer.stopping.set()
        hammer.join(10)
    failures = [o for o in hammer.outcomes if not (isinstance(o, tuple) and o[0] == 200)]
    assert not failures, f"{len(failures)} of {len(hammer.outcomes)} failed: {failures[:5]}"
    assert len(hammer.outcomes) >= 50 and hammer.served_by() == {b"a", b"b"}


def test_request_already_handed_to_a_stopping_server_is_answered(
        start_process: Callable[..., ServerProcess], start_haproxy: Callable[..., HAProxy],
        roots: dict[str, Path]) -> None:
    """The rolling restart's race made deterministic: HAProxy connects to A and sends its
    request while A is frozen (SIGSTOP: the kernel completes the handshake and queues the
    bytes), then A gets SIGTERM and resumes. The request reached A before the stop, so A
    must answer it: not reset it with the listener's accept queue, nor close it as idle."""
    sps = evservers(start_process, roots)
    hap = start_haproxy({n: sp.port for n, sp in sps.items()})
    assert "" == hap.command("set server static/b state maint").strip()  # all traffic to A
    result: list[Response | str] = []

    def client() -> None:
        try:
            result.append(fetch(hap.port))
        except OSError as err:
            result.append(repr(err))

    a = sps["a"].proc
    os.kill(a.pid, signal.SIGSTOP)
    try:
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        time.sleep(0.3)  # the request is sent; shorter than `timeout check`: A stays UP
        os.kill(a.pid, signal.SIGTERM)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    thread.join(10)
    assert a.wait(10) == 0
    assert len(result) == 1 and isinstance(result[0], Response), result
    assert (result[0].status, result[0].body) == (200, b"a")
