"""Slow-client attacks (slowhttptest) on a real evserver process, measured from the side.

    python3 loadtests/attack.py [--quick] [--connections 1000] [--duration 20] [--keep]

Starts `python3 -m evserver` on 127.0.0.1 with its own temporary document root (an
index.html and a 1 MiB file), then runs `slowhttptest` (Debian package `slowhttptest`) three
times: slowloris (-H, slow headers), slow body (-B) and slow read (-X, small advertised
window, pipelined requests for the 1 MiB file), each with `--connections` connections.
During each attack a probe thread fetches `/` on a fresh connection once a second and a
sampler reads the server's RSS and open fds from /proc. A table per attack gives the
connections slowhttptest held, probe latency and failures, the server's RSS and fds, when
the server had released the attack's connections, and the access log's status counts.

Then the three attacks run at once with normal keep-alive clients beside them, and the
server gets SIGTERM in the middle: it must exit 0, and every response a client received
complete must have its line in the access log (each request carries a unique query tag).

`--quick` shortens the attacks to 10 s and the server's timeouts to 3 s (so that the
server visibly drops the attackers within the run); the full run keeps evserver's default
timeouts. Exit status 0 when every probe succeeded within 1 s, the server released every
attack connection and the SIGTERM check passed; 1 otherwise; 2 if slowhttptest is missing.
Traffic stays on 127.0.0.1; only processes started here are ever signalled.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIG_SIZE = 1024 * 1024
INDEX = b"<!doctype html><title>attack target</title><p>still here</p>\n"
PROBE_LIMIT = 1.0  # seconds: the availability bar a probe must clear
LOG_LINE = re.compile(r'"(\S+) (\S+) HTTP/1\.[01]" (\d{3}) (\d+) ')


# -- the server -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timeouts:
    """The evserver timeouts an attack runs against (seconds)."""

    header: float = 10.0  # evserver's defaults
    body: float = 30.0
    keepalive: float = 15.0
    send: float = 30.0
    linger: float = 2.0  # not a CLI flag: evserver's fixed drain time after a close

    def argv(self) -> list[str]:
        return ["--header-timeout", str(self.header), "--body-timeout", str(self.body),
                "--keepalive-timeout", str(self.keepalive), "--send-timeout", str(self.send)]

    def describe(self) -> str:
        return (f"header {self.header:g} s, body {self.body:g} s, keep-alive {self.keepalive:g} s,"
                f" send {self.send:g} s")


def make_docroot(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))


def raise_fd_limit(needed: int = 8192) -> None:
    """slowhttptest needs one fd per connection; children inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class ServerProcess:
    """`python3 -m evserver` on an ephemeral port; output goes to files, never a pipe."""

    def __init__(self, root: Path, workdir: Path, extra: Iterable[str] = ()) -> None:
        self.log_path = workdir / "access.log"
        self.stderr_path = workdir / "evserver-stderr.txt"
        argv = [sys.executable, "-m", "evserver", "--host", "127.0.0.1", "--port", "0",
                "--root", str(root), "--log", str(self.log_path), *extra]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.pid = self.proc.pid
        self.port = self._read_port()

    def _read_port(self) -> int:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", self.stderr())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"evserver exited: {self.stderr()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("evserver printed no URL within 15 s")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 60.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def settled_fds(pid: int, timeout: float = 5.0) -> int:
    """The server's fd count once it stops falling (connections in linger have closed)."""
    last = fd_count(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = fd_count(pid)
        if now == last:
            return now
        last = now
    return last


# -- a minimal HTTP client: exact requests, complete responses --------------------------------

class Incomplete(Exception):
    """The response head arrived but its body was cut short."""


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, int]:
    """Read one response from `sock` (leftovers in `buf`); (status, body length).

    Raises ConnectionError before a head arrived, Incomplete once a head did.
    """
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1")
    del buf[:end + 4]
    status = int(head.split(" ", 2)[1])
    match = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
    if match is None:
        raise Incomplete(f"no Content-Length in {head[:80]!r}")
    length = int(match.group(1))
    try:
        while len(buf) < length:
            chunk = sock.recv(min(1 << 20, max(65536, length - len(buf))))
            if not chunk:
                raise Incomplete(f"EOF after {len(buf)} of {length} body bytes")
            buf += chunk
    except OSError as err:
        raise Incomplete(f"{err!r} after {len(buf)} of {length} body bytes") from err
    del buf[:length]
    return status, length


def fetch(port: int, path: str, timeout: float = 5.0) -> tuple[int, int]:
    """GET `path` on a fresh connection (Connection: close); (status, body length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
        return read_response(sock, bytearray())


# -- side measurements ------------------------------------------------------------------------

@dataclass
class ProbeResult:
    at: float  # monotonic time the probe started
    path: str
    ok: bool
    latency: float
    detail: str = ""  # status or error when not ok
    complete: bool = False  # a whole 200 response arrived (it must then be in the log)
    cut: bool = False  # a head arrived but the body did not


class Probe(threading.Thread):
    """Fetches `/` on a fresh connection every `interval` s; records latency and success."""

    def __init__(self, port: int, interval: float = 1.0, timeout: float = 5.0,
                 tag: str = "probe") -> None:
        super().__init__(daemon=True)
        self.port, self.interval, self.timeout, self.tag = port, interval, timeout, tag
        self.results: list[ProbeResult] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self._stop_event.is_set():
            path = f"/?{self.tag}={n}"
            t0 = time.monotonic()
            try:
                status, length = fetch(self.port, path, self.timeout)
                latency = time.monotonic() - t0
                ok = status == 200 and length == len(INDEX) and latency <= PROBE_LIMIT
                self.results.append(ProbeResult(t0, path, ok, latency,
                                                "" if ok else f"status {status}, {latency:.3f} s",
                                                complete=status == 200))
            except Incomplete as err:
                self.results.append(ProbeResult(t0, path, False, time.monotonic() - t0,
                                                str(err), cut=True))
            except OSError as err:
                self.results.append(ProbeResult(t0, path, False, time.monotonic() - t0,
                                                repr(err)))
            n += 1
            self._stop_event.wait(max(0.0, start + n * self.interval - time.monotonic()))

    def stop(self) -> list[ProbeResult]:
        self._stop_event.set()
        self.join(self.timeout + 5)
        return self.results


def server_send_queues(port: int) -> tuple[int, int]:
    """Bytes the kernel holds unsent/unacknowledged for the server's established IPv4
    sockets on `port` (/proc/net/tcp tx_queue): (total, largest single socket)."""
    total = largest = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[3] != "01" or int(cols[1].rsplit(":", 1)[1], 16) != port:
                continue
            queued = int(cols[4].split(":", 1)[0], 16)
            total += queued
            largest = max(largest, queued)
    return total, largest


_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
               "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
               "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def server_socket_states(port: int) -> Counter[str]:
    """TCP states of the IPv4 sockets whose local port is `port` (for diagnostics)."""
    states: Counter[str] = Counter()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                states[_TCP_STATES.get(cols[3], cols[3])] += 1
    return states


def tcp_memory_kib() -> int:
    """Kernel memory in TCP buffers, all sockets of the host (/proc/net/sockstat, pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                cols = line.split()
                return int(cols[cols.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


@dataclass
class Sample:
    at: float
    fds: int
    rss_kib: int
    sendq_total: int = 0  # bytes in the kernel send queues of the server's sockets
    sendq_max: int = 0  # the largest of them
    tcp_mem_kib: int = 0  # the host's TCP buffer memory


class Sampler(threading.Thread):
    """Reads the server's open fds and RSS every `interval` s, and, given its port, the
    kernel send queues of its sockets and the host's TCP memory."""

    def __init__(self, pid: int, port: int | None = None, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.port, self.interval = pid, port, interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                sample = Sample(time.monotonic(), fd_count(self.pid), rss_kib(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return  # the server is gone
            if self.port is not None:
                sample.sendq_total, sample.sendq_max = server_send_queues(self.port)
                sample.tcp_mem_kib = tcp_memory_kib()
            self.samples.append(sample)
            self._stop_event.wait(self.interval)

    def stop(self) -> list[Sample]:
        self._stop_event.set()
        self.join(5)
        return self.samples


# -- slowhttptest -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Attack:
    name: str
    flags: tuple[str, ...]
    path: str
    timeout_name: str  # the evserver timeout that should end this attack's connections


ATTACKS = (
    # Slow headers: a header line every 2 s; the whole head must arrive within header_timeout.
    Attack("slowloris", ("-H", "-i", "2"), "/", "header"),
    # Slow body: POST with Content-Length 100000, a few bytes every 2 s.
    Attack("slow body", ("-B", "-i", "2", "-s", "100000"), "/", "body"),
    # Slow read: a 512-1024 byte receive window, 32 bytes read per second, and 3 pipelined
    # requests per connection for the 1 MiB file.
    Attack("slow read", ("-X", "-w", "512", "-y", "1024", "-n", "1", "-z", "32", "-k", "3"),
           "/big.bin", "send"),
)


def slowhttptest_argv(attack: Attack, port: int, connections: int, rate: int, duration: int,
                      prefix: Path) -> list[str]:
    return ["slowhttptest", *attack.flags, "-c", str(connections), "-r", str(rate),
            "-l", str(duration), "-p", "3", "-u", f"http://127.0.0.1:{port}{attack.path}",
            "-g", "-o", str(prefix)]


class Attacker:
    """One slowhttptest process; its output goes to a file, its statistics to a CSV."""

    def __init__(self, attack: Attack, port: int, connections: int, rate: int, duration: int,
                 workdir: Path) -> None:
        self.attack = attack
        slug = attack.name.replace(" ", "-")
        self.prefix = workdir / f"slowhttptest-{slug}-{time.monotonic_ns()}"
        self.argv = slowhttptest_argv(attack, port, connections, rate, duration, self.prefix)
        self.out_path = Path(f"{self.prefix}.out")
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        self.ended: float | None = None

    def running(self) -> bool:
        if self.proc.poll() is None:
            return True
        if self.ended is None:
            self.ended = time.monotonic()
        return False

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            rc = self.proc.returncode
        self.running()
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # slowhttptest writes its report on SIGINT
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.running()

    def stats(self) -> list[dict[str, int]]:
        """slowhttptest's per-second CSV: Seconds, Closed, Pending, Connected, ..."""
        try:
            with open(f"{self.prefix}.csv", newline="") as f:
                return [{k.strip(): int(v) for k, v in row.items()
                         if k and v and v.strip().isdigit()} for row in csv.DictReader(f)]
        except FileNotFoundError:
            return []

    def max_connected(self) -> int:
        return max((row.get("Connected", 0) for row in self.stats()), default=0)

    def exit_status(self) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.out_path.read_text(errors="replace"))
        match = re.search(r"Exit status:\s*(.+)", text)
        return match.group(1).strip() if match else "?"

    def command(self) -> str:
        return " ".join(a if a != str(self.prefix) else "PREFIX" for a in self.argv)


# -- one attack, measured ---------------------------------------------------------------------

@dataclass
class AttackResult:
    attack: Attack
    command: str
    held_max: int  # connections slowhttptest reported as connected, at most
    exit_status: str
    probes: list[ProbeResult]
    samples: list[Sample]
    fds_before: int
    rss_before_kib: int
    tcp_mem_before_kib: int
    attack_seconds: float  # how long slowhttptest ran
    held_by_server: bool  # the server's fd count rose above baseline + slack at all
    released_after: float | None  # seconds from the start until the server's fds were back
    released_by_server: bool  # the server dropped them, not the attacker's own end
    cpu_seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    log_lines: list[str] = field(default_factory=list)

    @property
    def fds_max(self) -> int:
        return max((s.fds for s in self.samples), default=self.fds_before)

    @property
    def rss_max_kib(self) -> int:
        return max((s.rss_kib for s in self.samples), default=self.rss_before_kib)

    @property
    def sendq_max(self) -> int:
        return max((s.sendq_max for s in self.samples), default=0)

    @property
    def sendq_total_max(self) -> int:
        return max((s.sendq_total for s in self.samples), default=0)

    @property
    def tcp_mem_max_kib(self) -> int:
        return max((s.tcp_mem_kib for s in self.samples), default=0)

    @property
    def failures(self) -> list[ProbeResult]:
        return [p for p in self.probes if not p.ok]

    def latencies(self) -> list[float]:
        return sorted(p.latency for p in self.probes if p.complete)

    @property
    def released(self) -> bool:
        """Everything the attack made the server hold was let go again."""
        return not self.held_by_server or self.released_after is not None


def released_at(samples: list[Sample], baseline: int, slack: int, start: float) -> float | None:
    """Seconds after `start` when the fd count, past its peak, came back to baseline+slack."""
    if not samples:
        return None
    peak = max(range(len(samples)), key=lambda i: samples[i].fds)
    for s in samples[peak:]:
        if s.fds <= baseline + slack:
            return s.at - start
    return None


def run_attack(server: ServerProcess, attack: Attack, *, connections: int, rate: int,
               duration: int, release_wait: float, workdir: Path,
               probe_interval: float = 1.0, fd_slack: int = 3,
               stop_after_release: float | None = None,
               min_seconds: float = 0.0) -> AttackResult:
    """Run one slowhttptest attack with the probe and sampler beside it; wait for release.

    `stop_after_release`: end slowhttptest that many seconds after the server has let go
    of every connection (tests use it; by default the attack runs its `duration`).
    `min_seconds`: keep probing at least this long from the start, even if the attack
    is over sooner (a slow-body attack the server answers at once ends within 2 s).
    """
    pid = server.pid
    fds_before = settled_fds(pid)
    rss_before = rss_kib(pid)
    tcp_mem_before = tcp_memory_kib()
    lines_before = len(server.log_lines())
    cpu_before = cpu_seconds(pid)
    sampler = Sampler(pid, server.port)
    probe = Probe(server.port, probe_interval)
    sampler.start()
    probe.start()
    attacker = Attacker(attack, server.port, connections, rate, duration, workdir)
    start = attacker.started
    released_during: float | None = None  # when, seen while slowhttptest still ran
    while attacker.running():
        time.sleep(0.1)
        now = time.monotonic()
        if released_during is None and max((x.fds for x in sampler.samples[-50:]),
                                            default=0) > fds_before + fd_slack:
            back = released_at(sampler.samples, fds_before, fd_slack, start)
            if back is not None and attacker.running():
                released_during = now
        if released_during is not None and stop_after_release is not None \
                and now - released_during >= stop_after_release:
            attacker.stop()
        elif now - start > duration + 30:
            attacker.stop()
    # Then give the server its timeout to release what is left (e.g. lingering closes).
    wait_for(lambda: fd_count(pid) <= fds_before + fd_slack, release_wait)
    # A last sample at rest (the access log flushes every 0.1 s), and the minimum length.
    rest_until = max(time.monotonic() + 0.5, start + min_seconds)
    while (left := rest_until - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
    probes = probe.stop()
    samples = sampler.stop()
    lines = server.log_lines()[lines_before:]
    statuses: Counter[int] = Counter(int(m.group(3)) for line in lines
                                     if (m := LOG_LINE.search(line)))
    held = max((x.fds for x in samples), default=0) > fds_before + fd_slack
    # slowhttptest only ends before its time limit once every connection was closed on
    # it, and it never closes one itself before then: an early end is the server's doing.
    ended_early = attacker.exit_status().startswith("No open connections")
    return AttackResult(
        attack=attack, command=attacker.command(), held_max=attacker.max_connected(),
        exit_status=attacker.exit_status(), probes=probes, samples=samples,
        fds_before=fds_before, rss_before_kib=rss_before, tcp_mem_before_kib=tcp_mem_before,
        attack_seconds=(attacker.ended or time.monotonic()) - start, held_by_server=held,
        released_after=released_at(samples, fds_before, fd_slack, start) if held else None,
        released_by_server=released_during is not None or ended_early,
        cpu_seconds=cpu_seconds(pid) - cpu_before, statuses=statuses, log_lines=lines)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def report(r: AttackResult) -> str:
    lat = r.latencies()
    p50 = statistics.median(lat) if lat else None
    if not r.held_by_server:
        released = "nothing held: each was answered and closed at once"
    elif r.released_after is None:
        released = "NOT released"
    else:
        released = f"{r.released_after:.1f} s after the start " + (
            "(the server dropped them)" if r.released_by_server
            else "(when the attacker ended)")
    rows = [
        ("command", r.command),
        ("slowhttptest exit", f"{r.exit_status} after {r.attack_seconds:.1f} s"),
        ("connections held (max)", f"{r.held_max} (slowhttptest 'connected')"),
        ("server fds before / max / after",
         f"{r.fds_before} / {r.fds_max} / {r.samples[-1].fds if r.samples else '?'}"),
        ("attack connections released", released),
        ("probe requests", f"{len(r.probes)}, failures (error or > {PROBE_LIMIT:g} s) "
         f"{len(r.failures)}" + "".join(f"\n{'':38}{p.path}: {p.detail}"
                                        for p in r.failures[:5])),
        ("probe latency p50 / max", f"{ms(p50)} / {ms(lat[-1] if lat else None)}"),
        ("server RSS before / max", f"{mib(r.rss_before_kib)} / {mib(r.rss_max_kib)}"),
        ("server CPU during the attack", f"{r.cpu_seconds:.1f} s"),
        ("kernel send queues (server) max", f"{mib(r.sendq_total_max / 1024)} in all, "
                                            f"{r.sendq_max / 1024:.0f} KiB on one socket"),
        ("host TCP memory before / max", f"{mib(r.tcp_mem_before_kib)} / "
                                         f"{mib(r.tcp_mem_max_kib)}"),
        ("access log statuses", ", ".join(f"{code}: {n}" for code, n in sorted(r.statuses.items()))
         or "none"),
    ]
    title = f"== {r.attack.name} =="
    return "\n".join([title] + [f"  {k:36}{v}" for k, v in rows])


def attack_ok(r: AttackResult) -> bool:
    return not r.failures and r.released


# -- all at once, normal clients beside, then SIGTERM -----------------------------------------

class Client(threading.Thread):
    """A normal keep-alive client: tagged GETs of `/` and the 1 MiB file, read in full."""

    def __init__(self, port: int, n: int) -> None:
        super().__init__(daemon=True)
        self.port, self.n = port, n
        self.complete: list[tuple[str, int, int]] = []  # (path, status, body bytes)
        self.cut: list[str] = []  # heads that arrived with their bodies cut short
        self.errors = 0  # connections refused or closed before any head (shutdown races)
        self.latencies: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self._stop_event.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                self.errors += 1
                self._stop_event.wait(0.05)
                continue
            buf = bytearray()
            try:
                for _ in range(50):
                    if self._stop_event.is_set():
                        break
                    seq += 1
                    base = "/big.bin" if seq % 10 == 0 else "/"
                    path = f"{base}?client={self.n}-{seq}"
                    t0 = time.monotonic()
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: client\r\n\r\n".encode())
                    try:
                        status, length = read_response(sock, buf)
                    except Incomplete:
                        self.cut.append(path)
                        break
                    self.latencies.append(time.monotonic() - t0)
                    self.complete.append((path, status, length))
            except OSError:
                self.errors += 1
            finally:
                sock.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(15)


@dataclass
class ShutdownResult:
    exit_code: int | None
    stop_seconds: float  # SIGTERM to exit
    complete: int  # responses received complete, probes and clients
    missing: list[str]  # of those, the ones without their log line
    cut: list[str]  # heads that arrived with their bodies cut short
    probe_failures: list[ProbeResult]  # before the SIGTERM (after it, refusals are expected)
    errors: int
    probes: list[ProbeResult]
    client_latencies: list[float]
    held: dict[str, int]
    rss_max_kib: int
    fds_max: int
    tcp_mem_max_kib: int
    traceback: bool


def check_logged(complete: Iterable[tuple[str, int, int]], lines: list[str]) -> list[str]:
    """The completed (path, status, bytes) that have no matching access-log line."""
    logged = Counter((m.group(2), int(m.group(3)), int(m.group(4)))
                     for line in lines if (m := LOG_LINE.search(line)))
    missing = []
    for entry in complete:
        if logged[entry] > 0:
            logged[entry] -= 1
        else:
            missing.append(f"{entry[0]} {entry[1]} {entry[2]}")
    return missing


def run_all_then_sigterm(server: ServerProcess, *, connections: int, rate: int, run_for: float,
                         clients: int, workdir: Path) -> ShutdownResult:
    """Three attacks at once plus normal clients and the probe; SIGTERM after `run_for` s."""
    pid = server.pid
    sampler = Sampler(pid, server.port)
    probe = Probe(server.port, 1.0, tag="sigterm-probe")
    sampler.start()
    probe.start()
    attackers = [Attacker(a, server.port, connections, rate, int(run_for) + 30, workdir)
                 for a in ATTACKS]
    normal = [Client(server.port, n) for n in range(clients)]
    for c in normal:
        c.start()
    until = time.monotonic() + run_for
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    sigterm_at = t0
    try:
        code: int | None = server.proc.wait(60)
    except subprocess.TimeoutExpired:
        code = None
        server.kill()
    stop_seconds = time.monotonic() - t0
    probes = probe.stop()
    for c in normal:
        c.stop()
    for a in attackers:
        a.stop()
    samples = sampler.stop()
    complete = [(c_path, status, length) for c in normal for c_path, status, length in c.complete]
    complete += [(p.path, 200, len(INDEX)) for p in probes if p.complete]
    cut = [p for c in normal for p in c.cut] + [p.path for p in probes if p.cut]
    return ShutdownResult(
        exit_code=code, stop_seconds=stop_seconds, complete=len(complete),
        probe_failures=[p for p in probes if not p.ok and p.at < sigterm_at],
        missing=check_logged(complete, server.log_lines()), cut=cut,
        errors=sum(c.errors for c in normal), probes=probes,
        client_latencies=sorted(x for c in normal for x in c.latencies),
        held={a.attack.name: a.max_connected() for a in attackers},
        rss_max_kib=max((s.rss_kib for s in samples), default=0),
        fds_max=max((s.fds for s in samples), default=0),
        tcp_mem_max_kib=max((s.tcp_mem_kib for s in samples), default=0),
        traceback="Traceback" in server.stderr())


def report_shutdown(r: ShutdownResult) -> str:
    lat = sorted(p.latency for p in r.probes if p.complete)
    cl = r.client_latencies
    rows = [
        ("connections held (max)", ", ".join(f"{k} {v}" for k, v in r.held.items())),
        ("server fds / RSS (max)", f"{r.fds_max} / {mib(r.rss_max_kib)}"),
        ("host TCP memory (max)", mib(r.tcp_mem_max_kib)),
        ("probe latency p50 / max", f"{ms(statistics.median(lat) if lat else None)} / "
                                    f"{ms(lat[-1] if lat else None)} ({len(lat)} complete, "
                                    f"{len(r.probe_failures)} failed before the SIGTERM)"),
        ("normal client latency p50 / max", f"{ms(statistics.median(cl) if cl else None)} / "
                                            f"{ms(cl[-1] if cl else None)} ({len(cl)} responses)"),
        ("SIGTERM to exit", f"{r.stop_seconds:.1f} s, exit code {r.exit_code}"),
        ("complete responses / logged", f"{r.complete} / {r.complete - len(r.missing)}"),
        ("responses cut short", f"{len(r.cut)} {r.cut[:5] if r.cut else ''}"),
        ("connections refused/closed at stop", str(r.errors)),
        ("Traceback on stderr", "yes" if r.traceback else "no"),
    ]
    return "\n".join(["== all three attacks + normal clients, then SIGTERM =="]
                     + [f"  {k:36}{v}" for k, v in rows])


def shutdown_ok(r: ShutdownResult) -> bool:
    return (r.exit_code == 0 and not r.missing and not r.cut and not r.traceback
            and not r.probe_failures)


# -- main -------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="10 s attacks against 3 s server timeouts (default: 20 s, evserver's "
                         "default timeouts)")
    ap.add_argument("--connections", type=int, default=1000, help="per attack (slowhttptest -c)")
    ap.add_argument("--duration", type=int, help="seconds per attack (slowhttptest -l)")
    ap.add_argument("--clients", type=int, default=8, help="normal clients in the SIGTERM run")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, CSVs)")
    args = ap.parse_args()
    if not shutil.which("slowhttptest"):
        print("attack: slowhttptest is not installed (apt-get install slowhttptest)",
              file=sys.stderr)
        return 2
    timeouts = Timeouts(3, 3, 3, 3) if args.quick else Timeouts()
    duration = args.duration or (10 if args.quick else 20)
    rate = max(args.connections, 200)
    raise_fd_limit(4 * args.connections + 1024)
    workdir = Path(tempfile.mkdtemp(prefix="evattack-"))
    root = workdir / "root"
    make_docroot(root)
    print(f"evserver timeouts: {timeouts.describe()} (linger {timeouts.linger:g} s"
          f"{', evserver defaults' if not args.quick else ', shortened by --quick'})")
    print(f"attacks: {args.connections} connections each at -r {rate}, -l {duration} s;"
          f" probe: GET / on a fresh connection every 1 s; work folder {workdir}\n")
    ok = True
    server = ServerProcess(root, workdir, timeouts.argv())
    try:
        fetch(server.port, "/")  # warm the cache and the pool before measuring
        fetch(server.port, "/big.bin")
        for attack in ATTACKS:
            limit = getattr(timeouts, attack.timeout_name)
            # Long enough to see the server's own timeout end the attack, unless told.
            length = duration if args.duration else max(duration, int(limit) + 8)
            result = run_attack(server, attack, connections=args.connections, rate=rate,
                                duration=length, workdir=workdir,
                                release_wait=limit + timeouts.linger + 10)
            print(report(result), "\n", flush=True)
            ok &= attack_ok(result) and server.alive()
        shutdown = run_all_then_sigterm(server, connections=args.connections, rate=rate,
                                        run_for=max(8.0, duration / 2), clients=args.clients,
                                        workdir=workdir)
        print(report_shutdown(shutdown))
        ok &= shutdown_ok(shutdown)
    finally:
        server.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nresult: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
