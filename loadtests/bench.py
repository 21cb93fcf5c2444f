"""Side-by-side static-file benchmark: evserver against nginx, http.server and Python peers.

    python3 loadtests/bench.py              # full: 3 rounds of 4 s runs, 10,000 idle (~10 min)
    python3 loadtests/bench.py --quick      # 1 round of 2 s runs, 2,000 idle (< 3 min)
    python3 loadtests/bench.py --only keepalive,close --servers evserver,nginx --rounds 5
    python3 loadtests/bench.py --json results.json   # also save every figure of every round
    python3 loadtests/bench.py --baseline /tmp/before   # another checkout beside this one
    python3 loadtests/bench.py --only compressed --servers evserver,nginx   # compression
    python3 loadtests/bench.py --only keepalive --servers evserver,nginx --metrics
                                            # evserver with and without its metrics scraped

Scenarios (--only): keepalive (1 KiB, wrk -c50), close (1 KiB, `Connection: close`), 100k
(100 KiB, -c50), 10m (10 MiB, -c4: MiB/s and server CPU seconds per GiB), c1000 (1 KiB,
-c1000: req/s, errors and timeouts), idle (10,000 idle keep-alive connections: server RSS per
connection and the latency of fresh requests while they are held), 200m (200 MiB, -c2: MiB/s
and server RSS growth during the downloads), workers (1 KiB, -c50: evserver `--workers 1` and
`--workers 2` against nginx with `worker_processes 1` and 2 when nginx is among the servers,
each started afresh for its run and stopped by SIGTERM after it, all its processes checked
gone; req/s, server CPU and the speed-up of two workers over one. Two workers need both
CPUs, so in this scenario the servers and `wrk -t2` are NOT pinned: they share the machine),
https (1 KiB over TLS 1.3: evserver `--tls-cert/--tls-key` against nginx `listen ... ssl`,
both with one self-signed P-256 certificate made by openssl; keep-alive, and a new connection
with a full handshake per request), compressed (a 100 KiB generated JavaScript file with
`Accept-Encoding: gzip, br`, -c50: evserver encoding it itself (br when the brotli package is
installed, else gzip; encoded once, then answered from memory) against two more nginx
instances: `gzip_static on` with a `.gz` sibling made by Python's gzip at level 9, and
`gzip on` with gzip_comp_level 6, compressing every response; req/s, the Content-Encoding and
bytes of each response, server CPU per request. Each answer is decoded and compared with the
file before timing).

Servers (--servers): evserver (always), nginx (Debian `nginx-light`: one worker, sendfile, an
access log), `python3 -m http.server`, and when this interpreter can import them: twisted
(`twistd web`), aiohttp (`web.static`), uvicorn (Starlette StaticFiles, httptools + uvloop);
the missing ones are skipped and named (they are no test dependency: `pip install twisted
aiohttp uvicorn starlette httptools uvloop`, in a venv if you like, and run this script with
that venv's python). The script makes its own document root in a temp folder, starts each
server on 127.0.0.1 (ephemeral port, output to files) pinned to CPU 0 and `wrk -t1` pinned to
CPU 1 (except in the workers scenario), runs every scenario on each server in turn (order
rotated per round) and prints the medians of the rounds with evserver's ratios to nginx and to
http.server (the median of the per-round ratios). The idle scenario restarts each server
first, so memory freed by earlier scenarios cannot hide what the connections cost.
Before timing it checks that every server returns every file byte-exact (sha256) with the right
Content-Length (and, for the compressed scenario, that each answer to `Accept-Encoding: gzip,
br` is a 200 with a Content-Encoding whose body decodes to the file: the compressed scenario is
not timed otherwise); at the end, that each evserver's access log has one whole line for every
request known to have completed (with --workers 2, both workers append to the one log).
Exit status 1 if a check fails. Needs Linux, `wrk` and `taskset`.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import importlib
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KIB, MIB, GIB = 1024, 1024**2, 1024**3
SIZES = {"1k.bin": KIB, "100k.bin": 100 * KIB, "10m.bin": 10 * MIB, "200m.bin": 200 * MIB}
INDEX = b"<!doctype html><title>bench</title><p>evserver benchmark</p>\n"
SERVERS = ("evserver", "nginx", "http.server", "twisted", "aiohttp", "uvicorn")
SCENARIOS = ("keepalive", "close", "100k", "10m", "c1000", "idle", "200m", "workers",
             "https", "compressed")
EVSERVER_OPTS = ["--max-keepalive-requests", "100000", "--keepalive-timeout", "60",
                 "--max-connections", "15000"]
TWO_CPUS = (os.cpu_count() or 1) > 1
ALL_CPUS = ",".join(map(str, sorted(os.sched_getaffinity(0))))  # before main() pins us to CPU 1
WORKER_COUNTS = (1, 2)  # the workers scenario: evserver --workers N, nginx worker_processes N
Metrics = dict[str, float | None]
# The compressed scenario: a generated JavaScript file, asked for with this Accept-Encoding.
JS_NAME, JS_SIZE, ACCEPT_ENCODING = "bench.js", 100 * KIB, "gzip, br"
# Its two nginx instances: the .gz sibling made once (gzip -9), or gzip per response.
NGINX_COMPRESSING = {
    "nginx-gzip_static": "gzip off; gzip_static on; gzip_vary on;",
    "nginx-gzip-on": "gzip on; gzip_static off; gzip_types application/javascript"
                     " text/javascript; gzip_comp_level 6; gzip_vary on;",
}

# (metric, scenario, label); rows where lower is better still show evserver / peer.
ROWS = [
    ("keepalive_rps", "keepalive", "1 KiB keep-alive -c50, req/s"),
    ("close_rps", "close", "1 KiB Connection: close -c50, req/s"),
    ("100k_rps", "100k", "100 KiB keep-alive -c50, req/s"),
    ("10m_mibps", "10m", "10 MiB -c4, MiB/s"),
    ("10m_cpu", "10m", "10 MiB server CPU s/GiB (lower is better)"),
    ("c1000_rps", "c1000", "1 KiB -c1000, req/s"),
    ("c1000_errors", "c1000", "1 KiB -c1000, errors + timeouts"),
    ("idle_held", "idle", "idle keep-alive connections held"),
    ("idle_kib", "idle", "idle: server RSS KiB/connection (lower is better)"),
    ("idle_p50", "idle", "idle: fresh request p50 ms (lower is better)"),
    ("idle_max", "idle", "idle: fresh request max ms (lower is better)"),
    ("200m_mibps", "200m", "200 MiB -c2, MiB/s"),
    ("200m_rss", "200m", "200 MiB server RSS growth MiB (lower is better)"),
]

WRK_LUA = """done = function(s, lat, req)
  local e = s.errors
  io.write(string.format('WRKJSON {"requests": %d, "bytes": %d, "duration_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', s.requests, s.bytes, s.duration, e.connect,
    e.read, e.write, e.status, e.timeout, lat:percentile(50), lat:percentile(99)))
end
"""
NGINX_CONF = """daemon off; worker_processes {workers}; worker_rlimit_nofile 20000;
pid {p}/nginx.pid; error_log {p}/error.log;
events {{ worker_connections 16384; }}
http {{
    types {{ text/html html; text/javascript js; }} default_type application/octet-stream;
    access_log {p}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fcgi;
    uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
    sendfile on; tcp_nopush on; keepalive_requests 100000; keepalive_timeout 60s;
    open_file_cache max=1000 inactive=20s; open_file_cache_valid 1s;{extra}
    server {{ listen 127.0.0.1:{port}{ssl} backlog=1024{reuseport}; root {root};{certificate} }}
}}
"""
SETTINGS = f"""evserver: {' '.join(EVSERVER_OPTS)} (its default keep-alive limit is 1000 requests)
nginx: keepalive_requests 100000, keepalive_timeout 60s, open_file_cache on (valid 1s, like
  evserver's --cache-ttl 1), access_log buffer=64k flush=1s (evserver batches its log per 0.1 s)
http.server speaks HTTP/1.0: it closes the connection after every response
twisted, aiohttp and uvicorn log every request; aiohttp and uvicorn keep-alive timeout 60 s
workers scenario: evserver --workers N adds a supervisor process (N > 1; SO_REUSEPORT); nginx
  worker_processes N with `listen ... reuseport` (one socket per worker, as evserver's)
compressed scenario: evserver's defaults (--compress on: br level 5 when brotli is installed,
  else gzip 6; encoded once in its pool, then from memory); nginx-gzip_static: the same nginx
  settings plus `gzip off; gzip_static on; gzip_vary on` and bench.js.gz (Python's gzip,
  level 9) beside bench.js in a root of its own; nginx-gzip-on: plus `gzip on; gzip_static off;
  gzip_types application/javascript text/javascript; gzip_comp_level 6; gzip_vary on`
  (nginx-light has no brotli, so both nginx answer gzip to `Accept-Encoding: gzip, br`)"""
AIOHTTP_APP = """import logging, sys
from aiohttp import web
logging.basicConfig(level=logging.INFO, filename=sys.argv[3])
app = web.Application()
app.router.add_static("/", sys.argv[1])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, keepalive_timeout=60)
"""
UVICORN_APP = """import sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
app = Starlette(routes=[Mount("/", app=StaticFiles(directory=sys.argv[1], html=True))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
            timeout_keep_alive=60)
"""
TWISTD = "from twisted.scripts.twistd import run; run()"
NEEDS = {"twisted": "twisted.web", "aiohttp": "aiohttp",
         "uvicorn": "uvicorn, starlette, httptools, uvloop", "http.server": "http.server"}


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    """`argv` on one CPU, or on all of them when `cpu` is None (this script itself runs
    on CPU 1, and a child inherits that)."""
    return ["taskset", "-c", ALL_CPUS if cpu is None else str(cpu), *argv] if TWO_CPUS else argv


def installed(name: str) -> bool:
    if name == "nginx":
        return shutil.which("nginx") is not None
    probe = [sys.executable, "-c", "import " + NEEDS.get(name, "sys")]
    return subprocess.run(probe, capture_output=True).returncode == 0


def proc_fields(pid: int, name: str) -> list[str]:
    """/proc/PID/stat after the command name (so field 3 is [0]), or statm; [] if gone."""
    try:
        text = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return []
    return text.rsplit(")", 1)[-1].split()


def proc_tree(root: int) -> list[int]:
    """`root` and its descendants (nginx's worker is the master's child)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        if fields := proc_fields(int(entry), "stat"):
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        tree.append(pid := todo.pop())
        todo += children.get(pid, [])
    return tree


class Server:
    """One server process and its children, pinned to CPU 0 (or on every CPU when `cpu` is
    None), its output in a file. `kind` is the program (default: the name), `workers` its
    worker processes."""

    def __init__(self, name: str, tmp: Path, root: Path, kind: str | None = None,
                 workers: int = 1, cpu: int | None = 0, start: bool = True,
                 tls: tuple[Path, Path] | None = None, source: Path = REPO,
                 conf: str = "", extra: tuple[str, ...] = (), scrape: str = "") -> None:
        self.name, self.dir, self.root = name, tmp / name, root
        self.source = source  # the checkout whose evserver runs (--baseline: another one)
        self.tls = tls  # (certificate, key): the port speaks HTTPS
        self.conf = conf  # nginx: more directives for its http block
        self.extra = extra  # evserver: more options
        self.scrape = scrape  # a path fetched once a second while it runs, as Prometheus does
        self._scraper: threading.Thread | None = None
        self._scraping = threading.Event()
        self.encoded: tuple[str, int] | None = None  # compressed: (coding, body bytes)
        self.kind, self.workers, self.cpu_pin = kind or name, workers, cpu
        self.dir.mkdir()
        self.log, self.lua = self.dir / "access.log", tmp / "report.lua"
        self.completed = 0  # requests known to have completed (wrk, probes, checks)
        self.errors = 0  # wrk's errors in every scenario
        if start:
            self.start()

    def start(self) -> None:
        """Start on a fresh port (logs are appended to) and wait until it listens."""
        self.port = free_port()
        self.out = open(self.dir / "output.txt", "ab")  # closed in stop()
        env = dict(os.environ)  # this checkout's evserver, not an installed one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source),
                                                          env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(pinned(self.cpu_pin, self.argv()), cwd=self.dir, env=env,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pids, self.cmdlines = [self.proc.pid], [b""]
        try:
            self.wait_listening()
            self.wait_workers()
        except RuntimeError:
            self.stop()
            raise
        self.pids = proc_tree(self.proc.pid)
        self.cmdlines = [cmdline(pid) for pid in self.pids]
        if self.scrape:
            self._scraping.clear()
            self._scraper = threading.Thread(target=self._scrape, daemon=True)
            self._scraper.start()

    def _scrape(self) -> None:
        """GET the scrape path every second until stopped (its answers are not timed)."""
        while not self._scraping.wait(1.0):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.scrape)
                conn.getresponse().read()
                conn.close()
                self.completed += 1
            except OSError:
                pass

    def wait_workers(self) -> None:
        """Until every worker process is there (nginx's master has 1 or more; evserver's
        supervisor, with --workers > 1, has N) and, for evserver, listening: with
        SO_REUSEPORT each worker has its own listening socket."""
        if self.kind == "nginx":
            procs, sockets = 1 + self.workers, 0
        elif self.kind == "evserver" and self.workers > 1:
            procs, sockets = 1 + self.workers, self.workers
        else:
            return
        deadline = time.monotonic() + 20
        while len(self.pids) < procs or listeners(self.port) < sockets:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.pids) - 1} of {self.workers} workers started,"
                                   f" {listeners(self.port)} listening")
            time.sleep(0.05)
            self.pids = proc_tree(self.proc.pid)

    def replaced(self) -> bool:
        """Has a process of the server gone or a new one come since it started (a worker
        that died and was restarted)?"""
        return sorted(proc_tree(self.proc.pid)) != sorted(self.pids)

    def argv(self) -> list[str]:
        py, port, d, root = sys.executable, str(self.port), self.dir, str(self.root)
        if self.kind == "evserver":
            tls = (["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
                   if self.tls else [])
            return [py, "-m", "evserver", "--host", "127.0.0.1", "--port", port, "--root", root,
                    "--log", str(self.log), *EVSERVER_OPTS, "--workers", str(self.workers), *tls,
                    *self.extra]
        if self.kind == "http.server":
            return [py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, port]
        if self.kind == "nginx":
            # Unpinned is the workers scenario: one listening socket per worker, as evserver.
            reuseport = " reuseport" if self.cpu_pin is None else ""
            certificate = (f" ssl_certificate {self.tls[0]}; ssl_certificate_key {self.tls[1]};"
                           f" ssl_protocols TLSv1.2 TLSv1.3;" if self.tls else "")
            (d / "nginx.conf").write_text(NGINX_CONF.format(
                p=d, port=port, root=root, workers=self.workers, reuseport=reuseport,
                ssl=" ssl" if self.tls else "", certificate=certificate,
                extra=f"\n    {self.conf}" if self.conf else ""))
            return ["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")]
        if self.kind == "twisted":
            return [py, "-c", TWISTD, "-n", "--pidfile", str(d / "twistd.pid"), "--logfile",
                    str(self.log), "web", "--path", root,
                    f"--listen=tcp:{port}:interface=127.0.0.1"]
        if self.kind == "aiohttp":
            return [py, "-c", AIOHTTP_APP, root, port, str(self.log)]
        return [py, "-c", UVICORN_APP, root, port]

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = (self.dir / "output.txt").read_text(errors="replace")[-500:]
                raise RuntimeError(f"exited with {self.proc.returncode}: {output}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on port {self.port}")

    def cpu(self) -> float:
        """User + system CPU seconds of the server's processes so far."""
        ticks = sum(int(f[11]) + int(f[12]) for p in self.pids if (f := proc_fields(p, "stat")))
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        pages = sum(int(f[1]) for p in self.pids if (f := proc_fields(p, "statm")))
        return pages * os.sysconf("SC_PAGE_SIZE")

    def stop(self) -> list[int]:
        """SIGTERM to the process we started (nginx's master: the pid in its pid file;
        evserver's supervisor with --workers), then SIGKILL to any of its children still
        there. Returns the pids that had to be killed (none when it stopped as it should)."""
        killed = []
        if self._scraper is not None:
            self._scraping.set()
            self._scraper.join()
            self._scraper = None
        if self.proc.poll() is None:
            self.pids = proc_tree(self.proc.pid)  # with workers restarted since start()
            self.cmdlines = [cmdline(pid) for pid in self.pids]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                killed.append(self.proc.pid)
                self.proc.kill()
                self.proc.wait(5)
        for pid, started in zip(self.pids[1:], self.cmdlines[1:], strict=True):
            if cmdline(pid) == started:  # still that child, not a reused pid
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)
        self.out.close()
        return killed


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() or b"?"
    except OSError:
        return b""


def listeners(port: int) -> int:
    """How many IPv4 sockets are listening on `port` (one per SO_REUSEPORT worker)."""
    count = 0
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()  # sl, local address (hex ip:port), remote address, state
        count += fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
    return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_docroot(root: Path) -> dict[str, tuple[str, int]]:
    """index.html and random files (the 200 MiB one repeats a random 1 MiB block, each copy
    numbered, to be written fast); returns name -> (sha256, size)."""
    root.mkdir()
    (root / "index.html").write_bytes(INDEX)
    expected = {"index.html": (hashlib.sha256(INDEX).hexdigest(), len(INDEX))}
    block = os.urandom(MIB)
    for name, size in SIZES.items():
        digest = hashlib.sha256()
        with open(root / name, "wb") as f:
            for i in range(max(1, size // MIB)):
                chunk = (os.urandom(min(size, MIB)) if size < 100 * MIB
                         else i.to_bytes(8, "big") + block[8:])
                f.write(chunk)
                digest.update(chunk)
        expected[name] = (digest.hexdigest(), size)
    script = javascript(JS_SIZE)
    (root / JS_NAME).write_bytes(script)
    expected[JS_NAME] = (hashlib.sha256(script).hexdigest(), len(script))
    for path in (root.parent, root, *root.iterdir()):  # nginx's worker runs as nobody
        path.chmod(0o755 if path.is_dir() else 0o644)
    return expected


# Words for the generated JavaScript: varied enough that it compresses like real code
# (about 5 x with gzip -9), not like a repeated block (1000 x).
VERBS = ("get", "set", "load", "save", "parse", "render", "update", "compute", "format",
         "validate", "merge", "fetch", "build", "resolve", "filter", "sort", "map", "apply")
NOUNS = ("User", "Order", "Item", "Price", "Cart", "Session", "Token", "Config", "Route",
         "Layout", "Widget", "Event", "Queue", "Cache", "Record", "Field", "Theme", "Locale")
FIELDS = ("id", "name", "price", "count", "total", "status", "label", "width", "height",
          "offset", "limit", "timeout", "retries", "locale", "currency", "createdAt")
COMPARISONS = ("<", ">", "<=", ">=", "===", "!==")


def javascript(size: int, seed: int = 2026) -> bytes:
    """`size` bytes of JavaScript-like text, the same on every run: functions with varied
    names, fields, constants, conditions and a commented revision hash each."""
    rnd = random.Random(seed)
    out = [b"'use strict';\n// evserver benchmark: generated JavaScript\n"]
    length, n = len(out[0]), 0
    while length < size:
        n += 1
        verb, noun = rnd.choice(VERBS), rnd.choice(NOUNS)
        a, b, c = rnd.sample(FIELDS, 3)
        k = rnd.randrange(2, 9999)
        lines = [f"/** {verb}: the {rnd.choice(NOUNS).lower()} {rnd.choice(FIELDS)},"
                 f" rev {rnd.randrange(16**8):08x} */",
                 f"export function {verb}{noun}{n}({rnd.choice(('items', 'rows', 'list'))},"
                 " options = {}) {",
                 f"  const {a} = options.{a} ?? {rnd.randrange(1, 1000)};",
                 f"  let {b} = {rnd.choice(('0', '[]', 'null', f'{rnd.random():.4f}'))};"]
        for _ in range(rnd.randrange(1, 4)):
            lines += [f"  if (options.{rnd.choice(FIELDS)} {rnd.choice(COMPARISONS)}"
                      f" {rnd.randrange(100)}) {{",
                      f"    {b} = {a} {rnd.choice('+-*%/')} {k} {rnd.choice('+-*%/')}"
                      f" options.{c};", "  }"]
        lines.append(f'  return {{ {a}, {b}, key: "{rnd.choice(NOUNS).lower()}-'
                     f'{rnd.randrange(10**6):06d}", at: {rnd.randrange(10**9)} }};')
        text = ("\n".join(lines) + "\n}\n\n").encode()
        out.append(text)
        length += len(text)
    return b"".join(out)[:size]


def make_gzip_root(root: Path, source: Path) -> bytes:
    """nginx-gzip_static's root: the JavaScript file and its .gz sibling (Python's gzip,
    level 9, no timestamp); returns the sibling's bytes."""
    root.mkdir()
    script = (source / JS_NAME).read_bytes()
    (root / JS_NAME).write_bytes(script)
    sibling = gzip.compress(script, compresslevel=9, mtime=0)
    (root / (JS_NAME + ".gz")).write_bytes(sibling)
    for path in (root, *root.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return sibling


def check_files(s: Server, expected: dict[str, tuple[str, int]]) -> list[str]:
    """GET each file: status 200, the right Content-Length, the same sha256."""
    problems = []
    for name, (sha, size) in expected.items():
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
        try:
            conn.request("GET", "/" + name)
            r = conn.getresponse()
            digest = hashlib.sha256()
            while chunk := r.read(MIB):
                digest.update(chunk)
            s.completed += 1
            length, same = r.getheader("Content-Length"), digest.hexdigest() == sha
            if r.status != 200 or length != str(size) or not same:
                problems.append(f"{s.name} /{name}: status {r.status}, Content-Length {length}"
                                f" (want {size}), sha256 {'ok' if same else 'DIFFERS'}")
        except (OSError, http.client.HTTPException) as err:
            problems.append(f"{s.name} /{name}: {err!r}")
        finally:
            conn.close()
    return problems


def fetch_encoded(s: Server) -> tuple[int, str, bytes, str | None]:
    """GET the JavaScript file with `Accept-Encoding: gzip, br`: the status, the
    Content-Encoding, the body as sent (not decoded; chunks joined) and Content-Length."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    try:
        conn.request("GET", "/" + JS_NAME, headers={"Accept-Encoding": ACCEPT_ENCODING})
        r = conn.getresponse()
        body = r.read()
        s.completed += 1
        return (r.status, (r.getheader("Content-Encoding") or "").strip().lower(), body,
                r.getheader("Content-Length"))
    finally:
        conn.close()


def decode(coding: str, body: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        if importlib.util.find_spec("brotli") is None:
            raise ValueError("the brotli package is not installed here to decode br")
        return bytes(importlib.import_module("brotli").decompress(body))
    raise ValueError(f"Content-Encoding {coding or '(none)'}: not gzip or br")


def check_compressed(s: Server, original: bytes, want: str,
                     sibling: bytes | None = None) -> list[str]:
    """Twice (the second answer from evserver's memory): a 200 in coding `want` whose body
    decodes to `original` (with `sibling`: is that .gz file byte for byte), the same bytes
    both times, a right Content-Length if any. Records (coding, body bytes) in s.encoded."""
    problems, seen = [], []
    for attempt in (1, 2):
        where = f"{s.name} /{JS_NAME} with Accept-Encoding: {ACCEPT_ENCODING} ({attempt})"
        try:
            status, coding, body, length = fetch_encoded(s)
        except (OSError, http.client.HTTPException) as err:
            problems.append(f"{where}: {err!r}")
            continue
        if status != 200 or coding != want:
            problems.append(f"{where}: status {status}, Content-Encoding {coding or '(none)'}"
                            f" (want 200 and {want})")
            continue
        try:
            same = decode(coding, body) == original
        except Exception as err:  # zlib.error, EOFError, brotli.error: it does not decode
            problems.append(f"{where}: the {coding} body does not decode: {err!r}")
            continue
        if not same:
            problems.append(f"{where}: the {coding} body decodes to other bytes than the file")
        elif sibling is not None and body != sibling:
            problems.append(f"{where}: not the .gz sibling's bytes (compressed on the fly?)")
        elif length is not None and length != str(len(body)):
            problems.append(f"{where}: Content-Length {length}, body {len(body)} bytes")
        seen.append(body)
    if len(seen) == 2 and seen[0] != seen[1]:
        problems.append(f"{s.name} /{JS_NAME}: two answers with different bytes")
    if seen and not problems:
        s.encoded = (want, len(seen[0]))
    return problems


def wrk(s: Server, path: str, conns: int, secs: int, close: bool = False,
        timeout: str = "2s", threads: int = 1, on_cpu: int | None = 1,
        headers: tuple[str, ...] = ()) -> dict[str, float]:
    """One wrk run, summarised by the Lua done() hook; adds rps, mibps, errors, server cpu.
    wrk runs on CPU `on_cpu` (None: on every CPU); `headers` are added to its request."""
    header = [arg for h in (*headers, *(["Connection: close"] if close else []))
              for arg in ("-H", h)]
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", timeout,
            "-s", str(s.lua), *header,
            f"{'https' if s.tls else 'http'}://127.0.0.1:{s.port}{path}"]
    cpu0 = s.cpu()
    out = subprocess.run(pinned(on_cpu, argv), capture_output=True, text=True, timeout=secs + 120)
    cpu = s.cpu() - cpu0
    if not (found := re.search(r"^WRKJSON (.*)$", out.stdout, re.M)):
        raise RuntimeError(f"wrk gave no summary: {out.stdout}{out.stderr}")
    r: dict[str, float] = json.loads(found.group(1))
    seconds = r["duration_us"] / 1e6
    r.update(rps=r["requests"] / seconds, mibps=r["bytes"] / MIB / seconds, cpu=cpu,
             errors=sum(r[k] for k in ("connect", "read", "write", "status", "timeout")))
    s.completed += int(r["requests"])
    s.errors += int(r["errors"])
    return r


def response_done(buf: bytearray) -> bool:
    """Does `buf` hold a whole response head and as much body as its Content-Length?"""
    head_end = buf.find(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", buf[:max(head_end, 0)])
    return length is not None and len(buf) - head_end - 4 >= int(length.group(1))


def hold_idle(port: int, n: int, deadline: float, pipe: Connection) -> None:
    """Helper process: open `n` connections (200 at a time), make one request on each, read
    the response and keep the connection; report how many, then how many are still open."""
    if TWO_CPUS:
        os.sched_setaffinity(0, {1})
    sel = selectors.DefaultSelector()
    pending: dict[socket.socket, bytearray | None] = {}  # None while connecting
    held: list[socket.socket] = []
    opened, end = 0, time.monotonic() + deadline
    while (opened < n or pending) and time.monotonic() < end:
        while opened < n and len(pending) < 200:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sel.register(sock, selectors.EVENT_WRITE)
            pending[sock], opened = None, opened + 1
        for key, _ in sel.select(0.2):
            sock = key.fileobj  # type: ignore[assignment]
            buf = pending[sock]
            try:
                if buf is None:
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect failed")
                    sock.send(b"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    pending[sock] = bytearray()
                    sel.modify(sock, selectors.EVENT_READ)
                    continue
                if not (data := sock.recv(65536)):
                    raise OSError("closed before the response")
                buf += data  # in place: pending[sock] grows
                if response_done(buf):
                    sel.unregister(sock)
                    held.append(sock)
                    del pending[sock]
            except OSError:
                sel.unregister(sock)
                sock.close()
                del pending[sock]
    for sock in pending:
        sock.close()
    pipe.send(len(held))
    pipe.recv()  # "count"
    alive = 0
    for sock in held:
        try:
            alive += sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    pipe.send(alive)
    pipe.recv()  # "close"
    for sock in held:
        sock.close()


def timed_get(port: int, path: str) -> float | None:
    """Milliseconds for a fresh connection to fetch `path` (None if it is not a 200)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    return (time.perf_counter() - start) * 1000 if data[:12].endswith(b" 200") else None


def keeps_alive(s: Server) -> bool:
    """Does the server keep a connection open after answering a request on it?"""
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = bytearray()
        while not response_done(data) and (chunk := sock.recv(65536)):
            data += chunk
        s.completed += 1
        sock.settimeout(0.3)
        try:
            return sock.recv(1) != b""
        except TimeoutError:
            return True


def idle(s: Server, o: argparse.Namespace) -> Metrics:
    """On a restarted server, so heap that earlier scenarios grew and freed cannot hide
    the memory that the idle connections take."""
    s.stop()
    s.start()
    for _ in range(20):  # warm up: caches filled, lazy imports done
        s.completed += timed_get(s.port, "/1k.bin") is not None
    if not keeps_alive(s):  # http.server (HTTP/1.0) closes after every response
        return {"idle_held": 0}
    time.sleep(0.2)
    before = s.rss()
    parent, child = mp.Pipe()
    helper = mp.get_context("fork").Process(target=hold_idle,
                                            args=(s.port, o.idle, o.idle_deadline, child))
    helper.start()
    try:
        if not parent.poll(o.idle_deadline + 30):
            raise RuntimeError("the idle-connection helper did not report")
        s.completed += parent.recv()
        time.sleep(0.5)
        grown = s.rss() - before
        times = sorted(t for _ in range(o.probes) if (t := timed_get(s.port, "/1k.bin")))
        s.completed += len(times)
        parent.send("count")
        alive = parent.recv()
    finally:
        try:
            parent.send("close")
        except OSError:
            pass  # the helper is gone already
        helper.join(30)
        if helper.is_alive():
            helper.kill()
    return {"idle_held": alive, "idle_kib": grown / KIB / alive if alive else None,
            "idle_p50": statistics.median(times) if times else None,
            "idle_max": times[-1] if times else None}


def big_download(s: Server, o: argparse.Namespace) -> Metrics:
    """The 200 MiB file on two connections while a thread samples the server's RSS."""
    before, peak, stop = s.rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], s.rss())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = wrk(s, "/200m.bin", 2, o.seconds, timeout="60s")
    finally:
        stop.set()
        sampler.join()
    return {"200m_mibps": r["mibps"], "200m_rss": max(0, peak[0] - before) / MIB}


def ten_mib(s: Server, o: argparse.Namespace) -> Metrics:
    r = wrk(s, "/10m.bin", 4, o.seconds, timeout="30s")
    per_gib = r["cpu"] / (r["bytes"] / GIB) if r["bytes"] else None
    return {"10m_mibps": r["mibps"], "10m_cpu": per_gib}


def c1000(s: Server, o: argparse.Namespace) -> Metrics:
    r = wrk(s, "/1k.bin", 1000, o.seconds)
    return {"c1000_rps": r["rps"], "c1000_errors": r["errors"]}


def workers_run(s: Server, o: argparse.Namespace, expected: dict[str, tuple[str, int]],
                failures: list[str]) -> Metrics:
    """The workers scenario on one of its servers: start it unpinned, check the 1 KiB file
    on a few connections (so that each worker serves it once), `wrk -t2 -c50` unpinned,
    then SIGTERM; every process of the server must be gone without SIGKILL, with exit
    status 0, and no worker may have been replaced during the run."""
    s.start()
    try:
        for _ in range(4 * s.workers):
            failures += check_files(s, {"1k.bin": expected["1k.bin"]})
        r = wrk(s, "/1k.bin", 50, o.seconds, threads=2, on_cpu=None)
        if s.replaced():
            failures.append(f"{s.name}: a worker process died during the run: {s.pids}"
                            f" -> {proc_tree(s.proc.pid)}")
    finally:
        pids = proc_tree(s.proc.pid) if s.proc.poll() is None else s.pids
        if killed := s.stop():
            failures.append(f"{s.name}: processes {killed} outlived SIGTERM to {s.proc.pid}"
                            " (killed)")
        if s.proc.returncode != 0:
            failures.append(f"{s.name}: exit status {s.proc.returncode} after SIGTERM")
    return {"workers_rps": r["rps"], "workers_cpu": 100 * r["cpu"] / (r["duration_us"] / 1e6),
            "workers_procs": len(pids)}


def https(s: Server, o: argparse.Namespace) -> Metrics:
    """1 KiB over TLS: keep-alive (the record layer's cost) and a handshake per request."""
    return {"https_rps": wrk(s, "/1k.bin", 50, o.seconds)["rps"],
            "https_close_rps": wrk(s, "/1k.bin", 50, o.seconds, close=True)["rps"]}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1, shared by evserver and nginx."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=bench",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def print_https(raw: dict[str, dict[str, list[Metrics]]],
                medians: dict[str, dict[str, Metrics]]) -> None:
    runs, got = raw["https"], medians.get("https", {})
    kinds = [k for k in ("evserver", "nginx") if f"{k}-tls" in runs]
    print("\nhttps: 1 KiB, -c50, TLS 1.3 with the same P-256 certificate, server on CPU 0")
    print(f"{'':34}" + "".join(f"  {k:>9}" for k in kinds) + "  ev/nginx")
    for key, label in (("https_rps", "keep-alive, req/s"),
                       ("https_close_rps", "new connection each, req/s")):
        cells = [fmt(got.get(f"{k}-tls", {}).get(key)) for k in kinds]
        print(f"{label:34}" + "".join(f"  {c:>9}" for c in cells)
              + f"  {ratio(runs['evserver-tls'], runs.get('nginx-tls'), key):>8}")


def compressed(s: Server, o: argparse.Namespace) -> Metrics:
    """The JavaScript file with `Accept-Encoding: gzip, br`, -c50. One request first, checked
    to be in the coding the server gave before timing: the idle scenario restarts evserver,
    and this fills its cache again as a visitor before wrk would."""
    try:
        status, coding, _, _ = fetch_encoded(s)
    except http.client.HTTPException as err:
        raise RuntimeError(f"warm-up: {err!r}") from err
    if s.encoded is None or status != 200 or coding != s.encoded[0]:
        raise RuntimeError(f"warm-up: status {status}, Content-Encoding {coding or '(none)'}"
                           f" (the check saw {s.encoded})")
    r = wrk(s, "/" + JS_NAME, 50, o.seconds, headers=(f"Accept-Encoding: {ACCEPT_ENCODING}",))
    done = r["requests"]
    return {"compressed_rps": r["rps"], "compressed_body": s.encoded[1],
            "compressed_wire": r["bytes"] / done if done else None,
            "compressed_cpu": r["cpu"] / done * 1e6 if done else None,
            "compressed_errors": r["errors"]}


def print_compressed(raw: dict[str, dict[str, list[Metrics]]],
                     medians: dict[str, dict[str, Metrics]],
                     codings: dict[str, str]) -> dict[str, str]:
    """The compressed scenario's table, and evserver / each nginx (median of per-round
    ratios); returns the ratios."""
    runs, got = raw["compressed"], medians.get("compressed", {})
    names = list(runs)
    peers = [n for n in names if n != "evserver"]
    cols = [*names, *(f"ev/{p}" for p in peers)]
    widths = [max(len(c), 9) for c in cols]
    print(f"\ncompressed: {JS_SIZE // KIB} KiB JavaScript, `Accept-Encoding: {ACCEPT_ENCODING}`,"
          " -c50, server on CPU 0, wrk on CPU 1\n(each server sends its own choice of coding:"
          " nginx-light has no brotli, so both nginx send gzip)")
    print(f"{'':40}" + "".join(f"  {c:>{w}}" for c, w in zip(cols, widths, strict=True)))
    summary: dict[str, str] = {}
    print(f"{'Content-Encoding':40}" + "".join(
        f"  {codings.get(n, '-'):>{w}}" for n, w in zip(names, widths, strict=False)))
    for key, label in (("compressed_rps", "req/s"),
                       ("compressed_body", "body bytes per response"),
                       ("compressed_wire", "bytes per response on the wire (wrk)"),
                       ("compressed_cpu", "server CPU us per request (lower better)"),
                       ("compressed_errors", "wrk errors + timeouts, all rounds")):
        cells = [fmt(got.get(n, {}).get(key)) for n in names]
        if key == "compressed_errors":  # counts: their sum, and no ratio
            cells = [fmt(sum(r.get(key) or 0 for r in runs[n])) for n in names]
            ratios = ["" for _ in peers]
        else:
            ratios = [ratio(runs["evserver"], runs[p], key) for p in peers]
            summary.update({f"{key} evserver/{p}": r for p, r in zip(peers, ratios,
                                                                       strict=True)})
        print((f"{label:40}" + "".join(f"  {c:>{w}}" for c, w in zip(cells + ratios, widths,
                                                                      strict=True))).rstrip())
    return summary


RUNS: dict[str, Callable[[Server, argparse.Namespace], Metrics]] = {
    "keepalive": lambda s, o: {"keepalive_rps": wrk(s, "/1k.bin", 50, o.seconds)["rps"]},
    "close": lambda s, o: {"close_rps": wrk(s, "/1k.bin", 50, o.seconds, close=True)["rps"]},
    "100k": lambda s, o: {"100k_rps": wrk(s, "/100k.bin", 50, o.seconds)["rps"]},
    "10m": ten_mib, "c1000": c1000, "idle": idle, "200m": big_download, "https": https,
    "compressed": compressed,
}


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == int(v) or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def ratio(rounds: list[Metrics], peer_rounds: list[Metrics] | None, key: str) -> str:
    """Median of the per-round ratios evserver / peer: each pair ran moments apart, so
    drift on a shared machine cancels out better than in a ratio of medians."""
    ratios = [a / b for mine, theirs in zip(rounds, peer_rounds or [], strict=False)
              if (a := mine.get(key)) is not None and (b := theirs.get(key))]
    return f"{statistics.median(ratios):.2f}" if ratios else "-"


def machine() -> dict[str, str]:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "nproc": str(os.cpu_count()),
            "cpu": cpu.group(1) if cpu else "?", "kernel": platform.release(),
            "python": sys.version.split()[0],
            "command": shlex.join(["python3", "loadtests/bench.py", *sys.argv[1:]])}


def medians_of(raw: dict[str, dict[str, list[Metrics]]]) -> dict[str, dict[str, Metrics]]:
    """scenario -> server -> metric -> the median of the rounds that produced it."""
    medians: dict[str, dict[str, Metrics]] = {}
    for sc, by_server in raw.items():
        for name, rounds in by_server.items():
            for key in {k for r in rounds for k in r}:
                values = [v for r in rounds if (v := r.get(key)) is not None]
                medians.setdefault(sc, {}).setdefault(name, {})[key] = (
                    statistics.median(values) if values else None)
    return medians


def print_table(raw: dict[str, dict[str, list[Metrics]]], medians: dict[str, dict[str, Metrics]],
                names: list[str], o: argparse.Namespace, meta: dict[str, str]) -> None:
    print(f"\n{meta['date']}  {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']},"
          f" Python {meta['python']}\n$ {meta['command']}\n{o.rounds} round(s) of {o.seconds} s"
          f" wrk runs, medians (ratios: median of per-round ratios); idle: {o.idle:,}"
          " connections; server on CPU 0, wrk on CPU 1")
    peers = ["nginx", "http.server", *(["baseline"] if "baseline" in names else [])]
    metered = "evserver-metrics" in names  # --metrics: its own ratios, to nginx and to evserver
    cols = [*names, *(f"ev/{p}" for p in peers),
            *(["metrics/nginx", "metrics/ev"] if metered else [])]
    width, widths = max(len(label) for *_, label in ROWS), [max(len(c), 9) for c in cols]

    def line(first: str, cells: list[str]) -> str:
        return f"{first:{width}}" + "".join(
            f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))

    if not any(scenario in medians for _, scenario, _ in ROWS):
        return  # only the scenarios with tables of their own
    print("\n" + line("scenario", cols))
    for key, scenario, label in ROWS:
        if scenario in medians:
            figures = [fmt(medians[scenario].get(n, {}).get(key)) for n in names]
            ev = raw[scenario]["evserver"]
            ratios = [ratio(ev, raw[scenario].get(p), key) for p in peers]
            if metered:
                on = raw[scenario]["evserver-metrics"]
                ratios += [ratio(on, raw[scenario].get("nginx"), key), ratio(on, ev, key)]
            print(line(label, figures + ratios))


def print_workers(raw: dict[str, dict[str, list[Metrics]]],
                  medians: dict[str, dict[str, Metrics]]) -> dict[str, str]:
    """The workers scenario's table: req/s with 1 and 2 worker processes, the speed-up of
    two over one (median of per-round ratios) and evserver / nginx; returns the ratios."""
    runs, got = raw["workers"], medians.get("workers", {})
    kinds = [k for k in ("evserver", "nginx") if f"{k}-1w" in runs]
    print("\nworkers: 1 KiB keep-alive -c50, wrk -t2; servers and wrk NOT pinned (they share"
          " both CPUs), each server started afresh for each run")
    print(f"{'':34}" + "".join(f"  {k:>9}" for k in kinds) + "  ev/nginx")
    summary: dict[str, str] = {}
    for n in WORKER_COUNTS:
        cells = [fmt(got.get(f"{k}-{n}w", {}).get("workers_rps")) for k in kinds]
        summary[f"evserver/nginx {n}w"] = ratio(runs[f"evserver-{n}w"], runs.get(f"nginx-{n}w"),
                                                "workers_rps")
        print(f"{workers_label(n) + ', req/s':34}" + "".join(f"  {c:>9}" for c in cells)
              + f"  {summary[f'evserver/nginx {n}w']:>8}")
    for k in kinds:
        summary[f"{k} 2w/1w"] = ratio(runs[f"{k}-2w"], runs[f"{k}-1w"], "workers_rps")
    print(f"{'speed-up, 2 workers / 1':34}"
          + "".join(f"  {summary[f'{k} 2w/1w']:>9}" for k in kinds))
    for n in WORKER_COUNTS:
        cells = [fmt(got.get(f"{k}-{n}w", {}).get("workers_cpu")) for k in kinds]
        print(f"{'server CPU %, ' + workers_label(n):34}" + "".join(f"  {c:>9}" for c in cells))
    return summary


def workers_label(n: int) -> str:
    return "1 worker" if n == 1 else f"{n} workers"


def log_lines(path: Path) -> tuple[int, int]:
    """Lines in an access log, and how many of them are not one whole Combined Log Format
    line (+ duration): a torn or interleaved line from workers appending at once."""
    whole = re.compile(rb'\S+ - - \[[^]]+\] "[^"]*" \d{3} \d+ "[^"]*" "[^"]*" \d+\.\d{3}\n')
    lines = torn = 0
    with path.open("rb") as f:
        for line in f:
            lines += 1
            torn += whole.fullmatch(line) is None
    return lines, torn


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s runs, 2,000 idle")
    ap.add_argument("--only", help=f"scenarios, comma-separated: {','.join(SCENARIOS)}")
    ap.add_argument("--servers", help=f"servers, comma-separated: {','.join(SERVERS)}")
    ap.add_argument("--rounds", type=int, help="repetitions (default 3, quick 1)")
    ap.add_argument("--seconds", type=int, help="length of each wrk run (default 4, quick 2)")
    ap.add_argument("--idle", type=int, help="idle connections (default 10000, quick 2000)")
    ap.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    ap.add_argument("--baseline", metavar="DIR", type=Path,
                    help="another checkout of evserver (e.g. `git worktree add DIR HEAD~3`), "
                    "run as the server `baseline` in the same rounds: a change's before and "
                    "after, measured side by side (not in the workers, https and compressed"
                    " scenarios)")
    ap.add_argument("--metrics", action="store_true",
                    help="also run evserver-metrics (--metrics-path and --status-path on, "
                    "its metrics scraped once a second) in the same rounds (not in the "
                    "workers, https and compressed scenarios)")
    o = ap.parse_args()
    o.rounds = o.rounds or (1 if o.quick else 3)
    o.seconds = o.seconds or (2 if o.quick else 4)
    o.idle = o.idle or (2000 if o.quick else 10000)
    o.probes, o.idle_deadline = (30, 20.0) if o.quick else (100, 40.0)
    o.scenarios = o.only.split(",") if o.only else list(SCENARIOS)
    listed = o.servers.split(",") if o.servers else SERVERS
    o.wanted = ["evserver", *(n for n in listed if n and n != "evserver")]
    if unknown := set(o.scenarios) - set(SCENARIOS) | set(o.wanted) - set(SERVERS):
        ap.error(f"unknown scenario or server: {', '.join(sorted(unknown))}")
    if o.baseline is not None and not (o.baseline / "evserver" / "__main__.py").is_file():
        ap.error(f"--baseline {o.baseline}: not a checkout of evserver")
    for tool in ("wrk", "taskset") if TWO_CPUS else ("wrk",):
        if not shutil.which(tool):
            ap.error(f"{tool} is not installed (apt-get install {tool})")
    return o


def start_compressing(servers: list[Server], tmp: Path, failures: list[str],
                      to_stop: list[Server]) -> list[Server]:
    """The compressed scenario's servers, each answer checked: evserver (the one of the
    other scenarios), and when nginx is among the servers, nginx-gzip_static (a root of its
    own, with the .gz sibling) and nginx-gzip-on (the common root: no sibling). They go
    into `to_stop` as they start. [] (and the problems in `failures`) if a check fails."""
    script = (tmp / "root" / JS_NAME).read_bytes()
    evserver = next(s for s in servers if s.name == "evserver")
    # evserver's --compress-encodings auto: br when this interpreter (its too) has brotli.
    want = "br" if importlib.util.find_spec("brotli") else "gzip"
    problems, group = check_compressed(evserver, script, want), [evserver]
    if any(s.name == "nginx" for s in servers):
        sibling = make_gzip_root(tmp / "root-gz", tmp / "root")
        for name, conf in NGINX_COMPRESSING.items():
            static = name == "nginx-gzip_static"
            server = Server(name, tmp, tmp / ("root-gz" if static else "root"), kind="nginx",
                            conf=conf)
            to_stop.append(server)
            group.append(server)
            problems += check_compressed(server, script, "gzip", sibling if static else None)
    if problems:
        print("compressed: NOT TIMED, an answer was wrong:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        failures += problems
        return []
    return group


def run(o: argparse.Namespace, tmp: Path) -> int:
    meta, started = machine(), time.monotonic()
    skipped = [n for n in o.wanted if not installed(n)]
    (tmp / "report.lua").write_text(WRK_LUA)
    servers: list[Server] = []
    servers_to_stop: list[Server] = []  # the HTTPS instances
    failures: list[str] = []
    try:
        expected = make_docroot(tmp / "root")
        for name in (n for n in o.wanted if n not in skipped):
            try:
                servers.append(Server(name, tmp, tmp / "root"))
            except RuntimeError as err:
                if name == "evserver":
                    raise
                print(f"{name} did not start: {err}", file=sys.stderr)
                skipped.append(name)
                continue
            failures += check_files(servers[-1], expected)
        if o.baseline is not None:
            servers.append(Server("baseline", tmp, tmp / "root", kind="evserver",
                                  source=o.baseline.resolve()))
            failures += check_files(servers[-1], expected)
        if o.metrics:
            servers.append(Server("evserver-metrics", tmp, tmp / "root", kind="evserver",
                                  extra=("--metrics-path", "/metrics", "--status-path",
                                         "/_status"), scrape="/metrics"))
            failures += check_files(servers[-1], expected)
        names = [s.name for s in servers]
        raw: dict[str, dict[str, list[Metrics]]] = {sc: {n: [] for n in names}
                                                    for sc in o.scenarios if sc != "workers"}
        scaling = [Server(f"{kind}-{n}w", tmp, tmp / "root", kind=kind, workers=n, cpu=None,
                          start=False)
                   for kind in ("evserver", "nginx") if kind in names for n in WORKER_COUNTS]
        if "workers" in o.scenarios:
            raw["workers"] = {s.name: [] for s in scaling}
        secure: list[Server] = []
        if "https" in o.scenarios:
            certificate = make_certificate(tmp)
            secure = [Server(f"{kind}-tls", tmp, tmp / "root", kind=kind, tls=certificate)
                      for kind in ("evserver", "nginx") if kind in names]
            servers_to_stop.extend(secure)
            raw["https"] = {s.name: [] for s in secure}
        compressing: list[Server] = []  # evserver, and two nginx instances of their own
        if "compressed" in o.scenarios:
            compressing = start_compressing(servers, tmp, failures, servers_to_stop)
            if compressing:
                raw["compressed"] = {s.name: [] for s in compressing}
            else:
                o.scenarios.remove("compressed")
                del raw["compressed"]
        print(f"servers: {', '.join(names)}; skipped (not installed or did not start):"
              f" {', '.join(skipped) or 'none'}\n{SETTINGS}")
        print("byte-exact check:", "ok" if not failures else "FAILED\n  " + "\n  ".join(failures))
        for rnd in range(o.rounds):
            for sc in o.scenarios:
                # The workers' servers start per run; the HTTPS ones are their own instances,
                # and so are compressed's nginx (its evserver is the one of the others).
                group = {"workers": scaling, "https": secure,
                         "compressed": compressing}.get(sc, servers)
                for s in group[rnd % len(group):] + group[:rnd % len(group)]:
                    t0 = time.monotonic()
                    try:
                        got = (workers_run(s, o, expected, failures) if sc == "workers"
                               else RUNS[sc](s, o))
                    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                        got = {}
                        print(f"  {s.name} {sc} failed: {err}", file=sys.stderr)
                    raw[sc][s.name].append(got)
                    print(f"round {rnd + 1} {sc:9} {s.name:17} {time.monotonic() - t0:4.1f} s  "
                          + " ".join(f"{k}={fmt(v)}" for k, v in got.items()), flush=True)
    finally:
        for s in servers + servers_to_stop:
            s.stop()
    medians = medians_of(raw)
    print_table(raw, medians, names, o, meta)
    summary = print_workers(raw, medians) if "workers" in raw else {}
    if "https" in raw:
        print_https(raw, medians)
    packed: dict[str, object] = {}  # the compressed scenario's ratios and encodings
    if "compressed" in raw:
        encoded = {s.name: s.encoded for s in compressing if s.encoded}
        packed = {
            "ratios": print_compressed(raw, medians, {n: c for n, (c, _) in encoded.items()}),
            "file_bytes": JS_SIZE, "encoded": encoded}
    log_ok = True
    print()
    for ev in (s for s in (*servers, *scaling, *servers_to_stop)
               if s.kind == "evserver" and s.completed):
        lines, torn = log_lines(ev.log)
        ok = lines >= ev.completed and not torn
        log_ok &= ok
        print(f"{ev.name} access log: {lines:,} lines for {ev.completed:,} completed requests"
              f" (wrk, probes, checks), {torn} torn: {'ok' if ok else 'MISSING OR TORN LINES'}")
    print("wrk errors in all scenarios: "
          + ", ".join(f"{s.name} {s.errors}" for s in (*servers, *scaling, *servers_to_stop)))
    print(f"byte-exact and process checks: {'ok' if not failures else 'FAILED'};"
          f" took {time.monotonic() - started:.0f} s")
    if failures:
        print("  " + "\n  ".join(failures))
    if o.json:
        Path(o.json).write_text(json.dumps({"machine": meta, "servers": names, "skipped": skipped,
                                            "medians": medians, "rounds": raw,
                                            "workers": summary, "compressed": packed,
                                            "failures": failures},
                                           indent=1))
    return 0 if log_ok and not failures else 1


def main() -> int:
    o = parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 10,000 sockets, here and in children
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if TWO_CPUS:
        os.sched_setaffinity(0, {1})  # this script probes and samples from wrk's CPU
    with tempfile.TemporaryDirectory(prefix="evbench-") as tmp:
        return run(o, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
