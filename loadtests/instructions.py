"""Instructions per cached small-file GET, counted by callgrind (machine-independent).

    python3 loadtests/instructions.py                 # wrk's head: the figure bench.py loads
    python3 loadtests/instructions.py --head browser  # a browser's 400-byte head
    python3 loadtests/instructions.py --head revalidate   # a browser's If-None-Match: 304
    python3 loadtests/instructions.py --size 102400   # a 100 KiB file (head and body gathered)
    python3 loadtests/instructions.py --head browser --text --size 102400
                                                      # 100 KiB of JavaScript, sent encoded
    python3 loadtests/instructions.py --metrics       # with --metrics-path and --status-path
    python3 loadtests/instructions.py --requests N    # one run of N requests, no valgrind
    python3 loadtests/instructions.py --server        # the whole server process, loop and all
    python3 loadtests/instructions.py --server --tls  # the same over TLS 1.3, OpenSSL included

The hot path is a keep-alive GET of a file that the cache holds: a real `Server` (its loop,
cache, counters and an access log written to a file), one `Connection` on a minimal socket
that hands over the request head and takes the whole response in one call. Nothing else
runs, so the difference between a run of 3,000 requests and a run of 1,000, divided by
2,000, is what one request costs: parsing, choosing and joining the response, the log line
and the connection's bookkeeping. The kernel's share is not in it (callgrind counts
user-space instructions only); `bench.py` measures the whole. Each figure is the median of
`--repeat` such pairs: the log writer thread flushes by the wall clock, so runs differ by
about 0.5 %.

`--server` counts what the first figure leaves out: a real `python -m evserver` process
under callgrind (its loop and selector, the socket calls, the log writer and pool threads)
answering requests that another process sends over 10 keep-alive connections at once. The
kernel is still not counted, and the log writer's wakeups follow the wall clock (callgrind
runs the process about 50 times slower), so these figures vary by about 1 %.

Needs `valgrind` (Debian package `valgrind`). The figure is the same on any x86-64 machine
for the same Python build and code, whatever else the machine is doing. To compare a change
with what came before, run the same command in a checkout of the earlier commit
(`git worktree add /tmp/before HEAD~1`).
"""
from __future__ import annotations

import argparse
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What wrk sends (bench.py's load), what a browser sends, and a browser's revalidation of a
# file it has (If-None-Match with the ETag of the first answer: a 304).
HEADS = {
    "wrk": b"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "browser": (b"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                b"(KHTML, like Gecko) "
                b"Chrome/126.0 Safari/537.36\r\n"
                b"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n"
                b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
                b"Connection: keep-alive\r\n\r\n"),
    "revalidate": b"",  # the browser's head with If-None-Match, made after the first answer
}
SMALL, LARGE = 1000, 3000
# --server: requests per run, and the connections they come over at once
SERVER_SMALL, SERVER_LARGE = 2000, 6000
CONNECTIONS = 10


class MinimalSocket:
    """Just enough of a non-blocking socket: each recv hands over one request, each send
    takes everything. `fileno` is a real descriptor, so the selector accepts it."""

    def __init__(self, fd_owner: socket.socket) -> None:
        self._fd_owner = fd_owner
        self.pending = b""
        self.sent = 0
        self.last = b""  # what the last send took

    def fileno(self) -> int:
        return self._fd_owner.fileno()

    def recv(self, size: int, flags: int = 0) -> bytes:
        data, self.pending = self.pending, b""
        if not data:
            raise BlockingIOError
        return data

    def send(self, data: bytes) -> int:
        self.sent += 1
        self.last = data
        return len(data)

    def sendmsg(self, buffers: list[bytes]) -> int:
        self.sent += 1
        self.last = bytes(buffers[0])
        return sum(len(b) for b in buffers)

    def setsockopt(self, *args: object) -> None:
        pass

    def close(self) -> None:
        pass


def javascript(size: int) -> bytes:
    """`size` bytes of text that compress as real scripts do (about 4 to 1), not 1000 to 1."""
    lines = []
    n = 0
    while sum(map(len, lines)) < size:
        n += 1
        lines.append(f"function step{n}(a, b) {{ return (a * {n * 7919 % 1000}) + b.length"
                     f" - {n * n % 97}; }}\n".encode())
    return b"".join(lines)[:size]


def serve(requests: int, request: bytes, size: int, text: bool = False,
          metrics: bool = False) -> None:
    """Answer `requests` cached GETs on one connection, in this process. `text`: the file
    is JavaScript (the browser's head then gets it encoded, from the cache of encodings).
    `metrics`: the server has a metrics and a status path (each request is then screened
    against them)."""
    sys.path.insert(0, str(REPO))
    from evserver.config import Config
    from evserver.connection import Connection
    from evserver.log import AccessLog
    from evserver.loop import READ
    from evserver.server import Server

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "www")
        root.mkdir()
        # The name stays whatever the content: the heads name it.
        (root / "1k.bin").write_bytes(javascript(size) if text else b"x" * size)
        cfg = Config(host="127.0.0.1", port=0, docroot=str(root), access_log=None,
                     max_keepalive_requests=10**9, cache_ttl=10**6, threads=1,
                     mime_types=(".bin=text/javascript",) if text else (),
                     metrics_path="/metrics" if metrics else "",
                     status_path="/_status" if metrics else "")
        server = Server(cfg, access_log=AccessLog.open(str(Path(tmp, "access.log"))))
        left, right = socket.socketpair()
        sock = MinimalSocket(left)
        conn = Connection(sock, "127.0.0.1", server)  # type: ignore[arg-type]
        conn.start()
        sock.pending = request or HEADS["browser"]  # the first loads the file in the pool
        conn.on_event(READ)
        while sock.sent == 0:
            server.loop._tick()
        if not request:
            etag = sock.last.partition(b"\r\nETag: ")[2].partition(b"\r\n")[0]
            request = HEADS["browser"][:-2] + b"If-None-Match: " + etag + b"\r\n\r\n"
        for _ in range(requests - 1):
            sock.pending = request
            conn.on_event(READ)
        if sock.sent != requests:
            raise SystemExit(f"answered {sock.sent} of {requests}: not the cached path")
        status = b"304" if request.find(b"If-None-Match") >= 0 else b"200"
        if not sock.last.startswith(b"HTTP/1.1 " + status):
            raise SystemExit(f"not a {status.decode()}: {sock.last[:40]!r}")
        if text and request.find(b"Accept-Encoding") >= 0 and sock.last.find(
                b"\r\nContent-Encoding: ") < 0:
            raise SystemExit("the text was not sent encoded")
        conn.close("done", "done")
        server.access_log.close()
        server.loop.close()
        left.close()
        right.close()


def count(requests: int, head: str, size: int, text: bool, metrics: bool) -> int:
    """Instructions (Ir) of a whole run of `requests` requests under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--requests", str(requests), "--head", head,
                        "--size", str(size), *(["--text"] if text else []),
                        *(["--metrics"] if metrics else [])],
                       check=True, capture_output=True)
        return total_of(out)


def drive(port: int, request: bytes, requests: int, connections: int, tls: bool) -> None:
    """`requests` keep-alive requests over `connections` connections at once, each waiting
    for its whole answer (a head and Content-Length bytes) before sending the next."""
    context = ssl.create_default_context() if tls else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    def client(n: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        if context is not None:
            sock = context.wrap_socket(sock)
        with sock:
            data = b""
            for _ in range(n):
                sock.sendall(request)
                while (end := data.find(b"\r\n\r\n")) < 0:
                    data += sock.recv(65536)
                length = int(data.partition(b"Content-Length: ")[2].partition(b"\r\n")[0])
                while len(data) < end + 4 + length:
                    data += sock.recv(65536)
                if not data.startswith(b"HTTP/1.1 200 "):
                    raise SystemExit(f"not a 200: {data[:40]!r}")
                data = data[end + 4 + length:]

    threads = [threading.Thread(target=client, args=(requests // connections,))
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def hold_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each had one request answered and then say nothing."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        sock.sendall(HEADS["wrk"])
        held.append(sock)
    for sock in held:
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 1024:
            data += sock.recv(65536)
    return held


def certificate(folder: Path) -> list[str]:
    """The server's TLS options: a P-256 certificate made by openssl, outside the counted
    process (as bench.py makes one), or --tls-self-signed when openssl is missing (the
    server then makes its own, and the figure varies a little more)."""
    if shutil.which("openssl") is None:
        return ["--tls-self-signed"]
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return ["--tls-cert", str(cert), "--tls-key", str(key)]


def count_server(requests: int, head: str, tls: bool, idle: int = 0) -> int:
    """Instructions (Ir) of a whole `python -m evserver` process under callgrind, every
    thread counted, that answers `requests` requests from another process, while `idle`
    more connections are open and silent (each sent one request first, so the server holds
    them as idle keep-alive connections, each with its timer)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "www")
        root.mkdir()
        (root / "1k.bin").write_bytes(b"x" * 1024)
        out = Path(tmp, "callgrind.out")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        tls_options = certificate(Path(tmp)) if tls else []
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-m", "evserver", "--host", "127.0.0.1", "--port", str(port), "--root", str(root),
             "--log", str(Path(tmp, "access.log")), "--max-connections", str(idle + 1000),
             # No deadline falls due during a run: a connection's timer, armed at its accept
             # for the head's deadline, fires once that long after (and re-arms for the
             # keep-alive one), work per connection that would land in some runs' counts.
             "--keepalive-timeout", "600", "--header-timeout", "600", *tls_options],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            held = hold_idle(port, idle)
            try:
                drive(port, HEADS[head], requests, CONNECTIONS, tls)
            finally:
                for sock in held:
                    sock.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
        return total_of(out)


def total_of(out: Path) -> int:
    for line in out.read_text().splitlines():
        match = re.match(r"(?:summary|totals): (\d+)", line)
        if match:
            return int(match.group(1))
    raise SystemExit("callgrind wrote no total")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, help="serve N requests here (no valgrind)")
    ap.add_argument("--head", choices=HEADS, default="wrk",
                    help="the request head: wrk's (the default) or a browser's")
    ap.add_argument("--size", type=int, default=1024,
                    help="bytes of the file (default 1024; up to --cache-max-entry, 256 KiB, "
                    "it is served from memory: above 64 KiB head and body go out gathered)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="pairs of runs; the median is printed (the log writer thread's "
                    "flushes follow the wall clock, so a run varies by about 0.5%%)")
    ap.add_argument("--text", action="store_true",
                    help="the file is JavaScript, not bytes of x: with a head that accepts "
                    "codings, it goes out encoded from the cache of encodings")
    ap.add_argument("--metrics", action="store_true",
                    help="the server has --metrics-path and --status-path set")
    ap.add_argument("--server", action="store_true",
                    help="count a whole `python -m evserver` process instead (its loop, "
                    f"selector, socket calls and threads): {CONNECTIONS} keep-alive "
                    "connections from another process, one request at a time on each")
    ap.add_argument("--idle", type=int, default=0, metavar="N",
                    help="with --server: N more keep-alive connections held open and idle "
                    "meanwhile (the cost per request must not grow with them)")
    ap.add_argument("--tls", action="store_true",
                    help="with --server: over TLS 1.3 (a P-256 certificate), OpenSSL included")
    args = ap.parse_args()
    if args.server:
        if shutil.which("valgrind") is None:
            print("needs valgrind: apt-get install valgrind", file=sys.stderr)
            return 2
        if args.idle:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.idle + 1000,) * 2)
        figures = [(count_server(SERVER_LARGE, args.head, args.tls, args.idle)
                    - count_server(SERVER_SMALL, args.head, args.tls, args.idle))
                   / (SERVER_LARGE - SERVER_SMALL) for _ in range(args.repeat)]
        over = "TLS 1.3" if args.tls else "plain HTTP"
        if args.idle:
            over += f", {args.idle:,} idle connections held"
        print(f"{statistics.median(figures):,.0f} instructions per 1,024-byte GET in the whole "
              f"server process ({over}, {args.head}'s head): the median of "
              f"{', '.join(f'{f:,.0f}' for f in figures)} (callgrind: Ir of "
              f"{SERVER_LARGE} requests minus Ir of {SERVER_SMALL}, over "
              f"{SERVER_LARGE - SERVER_SMALL})")
        return 0
    if args.requests is not None:
        serve(args.requests, HEADS[args.head], args.size, args.text, args.metrics)
        return 0
    if shutil.which("valgrind") is None:
        print("needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    figures = []
    for _ in range(args.repeat):
        small = count(SMALL, args.head, args.size, args.text, args.metrics)
        large = count(LARGE, args.head, args.size, args.text, args.metrics)
        figures.append((large - small) / (LARGE - SMALL))
    what = "JavaScript" if args.text else "byte"
    print(f"{statistics.median(figures):,.0f} instructions per cached {args.size:,}-{what} GET, "
          f"{args.head}'s head: the median of {', '.join(f'{f:,.0f}' for f in figures)} "
          f"(callgrind: Ir of {LARGE} requests minus Ir of {SMALL}, over {LARGE - SMALL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
