"""What an open page costs a --live-reload server, and how fast one change reaches them all.

    python3 loadtests/live_memory.py [--pages 1000] [--concurrency 200] [--timeout 30]

Starts `python3 -m evserver --live-reload --host 127.0.0.1 --port 0` (attack.py's launcher,
with its access log) on a temporary root (a page and a stylesheet), with a status page that
counts the open streams. Once it has served a page and one event stream (so the code paths
are loaded) and is idle, it reads the server's RSS (VmRSS in /proc/PID/status). Then it
opens `--pages` event streams at /.evserver/live from this process with raw non-blocking
sockets (at most `--concurrency` still connecting at a time; the open-file limit raised as
needed, which the server inherits), reads each stream's head and first lines (`retry:` and
`id:`), checks that the server counts them all, and reads the RSS again. Then it writes one
file in the root and waits until every stream has received the `change` event naming it.

Prints the RSS before and after, the difference per open page (KiB), the server's open
files, how long opening the streams took, and the time from the write until the first and
the last stream got the event (the first includes the 0.1 s the watcher waits for a burst
to end). Exit status 0 when every stream opened and got its event within `--timeout`
seconds of each step, 1 otherwise, 2 when the open-file limit cannot be raised enough.
Traffic stays on 127.0.0.1; the one process started here is stopped (SIGTERM, then SIGKILL
if it lingers) and the temporary root removed, whatever happens.
"""
from __future__ import annotations

import argparse
import errno
import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attack import ServerProcess, fd_count, rss_kib  # loadtests/ is this script's folder

LIVE = "/.evserver/live"
STATUS = "/_status"
REQUEST = (f"GET {LIVE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
           "Cache-Control: no-cache\r\n\r\n").encode()
PAGE = (b"<!doctype html><html><head><title>live</title><link rel=\"stylesheet\" "
        b"href=\"/style.css\"></head><body><p>live</p></body></html>\n")
CHANGED = "changed.txt"
MAX_PAGES = 4096  # evserver's live_reload_max: beyond it a stream gets 503


# -- the server -----------------------------------------------------------------------------

class Server(ServerProcess):
    """attack.py's `python3 -m evserver` on an ephemeral port, with --live-reload and a status
    page that counts the open streams."""

    def __init__(self, root: Path, workdir: Path) -> None:
        super().__init__(root, workdir, ["--live-reload", "--status-path", STATUS])

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def listening(self) -> int:
        status, body = self.get(STATUS + "?json")
        if status != 200:
            raise RuntimeError(f"status page: {status}")
        count = json.loads(body)["live_reload_pages"]
        assert isinstance(count, int)
        return count

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit status (None if it had to be killed)."""
        try:
            return self.terminate(10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def raise_fd_limit(needed: int) -> bool:
    """This process (and the server it starts, which inherits the limit) may open `needed`
    files; False if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return True
    if hard != resource.RLIM_INFINITY and hard < needed:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return True


# -- the pages' streams ---------------------------------------------------------------------

CONNECTING, SENT, OPEN, DONE, FAILED = "connecting", "sent", "open", "done", "failed"


@dataclass(eq=False)
class Stream:
    """One page's event stream on a non-blocking socket."""

    sock: socket.socket
    state: str = CONNECTING
    data: bytes = b""
    got_event_at: float = 0.0
    error: str = ""

    def fail(self, why: str) -> None:
        self.state, self.error = FAILED, why

    def head_and_first_lines(self) -> bool:
        """The head has come, and the stream's first block (retry: and id:) after it."""
        head, sep, body = self.data.partition(b"\r\n\r\n")
        if not sep:
            return False
        if not head.startswith(b"HTTP/1.1 200 "):
            self.fail(head.split(b"\r\n", 1)[0].decode("latin-1"))
            return False
        return b"retry: " in body and b"\nid: " in body and b"\n\n" in body


def start_connect(port: int) -> Stream:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex(("127.0.0.1", port))
    stream = Stream(sock)
    if code not in (0, errno.EINPROGRESS):
        stream.fail(os.strerror(code))
    return stream


def on_ready(sel: selectors.BaseSelector, stream: Stream, mask: int, event_mark: bytes,
             now: float) -> None:
    """Advance one stream: connected -> request sent -> head read -> event received."""
    if stream.state == CONNECTING and mask & selectors.EVENT_WRITE:
        code = stream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            stream.fail(os.strerror(code))
            sel.unregister(stream.sock)
            return
        stream.sock.send(REQUEST)  # a few dozen bytes into an empty send buffer
        stream.state = SENT
        sel.modify(stream.sock, selectors.EVENT_READ, stream)
        return
    if not mask & selectors.EVENT_READ:
        return
    try:
        data = stream.sock.recv(65536)
    except BlockingIOError:
        return
    except OSError as err:
        stream.fail(str(err))
        sel.unregister(stream.sock)
        return
    if not data:
        stream.fail("closed by the server")
        sel.unregister(stream.sock)
        return
    stream.data += data
    if stream.state == SENT and stream.head_and_first_lines():
        stream.state = OPEN
    elif stream.state == OPEN and event_mark and event_mark in stream.data:
        stream.state, stream.got_event_at = DONE, now
    if stream.state == FAILED:
        sel.unregister(stream.sock)


def open_streams(port: int, count: int, concurrency: int, timeout: float,
                 sel: selectors.BaseSelector) -> list[Stream]:
    """Open `count` streams, at most `concurrency` not yet open at a time; each is left
    registered for reading once its head and first lines have come."""
    streams: list[Stream] = []
    pending = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(streams) < count and pending < concurrency:
            stream = start_connect(port)
            streams.append(stream)
            if stream.state != FAILED:
                sel.register(stream.sock, selectors.EVENT_WRITE, stream)
                pending += 1
        if pending == 0 and len(streams) == count:
            break
        for key, mask in sel.select(0.5):
            stream = key.data
            before = stream.state
            on_ready(sel, stream, mask, b"", time.monotonic())
            if before in (CONNECTING, SENT) and stream.state in (OPEN, FAILED):
                pending -= 1
    return streams


def wait_for_event(streams: list[Stream], sel: selectors.BaseSelector, mark: bytes,
                   timeout: float) -> None:
    """Read every open stream until it has `mark` (the event), or `timeout` seconds."""
    for stream in streams:  # an event may already be in what was read with the head
        if stream.state == OPEN and mark in stream.data:
            stream.state, stream.got_event_at = DONE, time.monotonic()
    deadline = time.monotonic() + timeout
    waiting = sum(s.state == OPEN for s in streams)
    while waiting and time.monotonic() < deadline:
        for key, mask in sel.select(0.5):
            stream = key.data
            if stream.state != OPEN:
                continue
            on_ready(sel, stream, mask, mark, time.monotonic())
            if stream.state != OPEN:
                waiting -= 1


# -- the run --------------------------------------------------------------------------------

def run(args: argparse.Namespace, workdir: Path) -> int:
    root = workdir / "root"
    root.mkdir()
    (root / "index.html").write_bytes(PAGE)
    (root / "style.css").write_text("p { color: rgb(0, 0, 0); }\n")
    server = Server(root, workdir)
    sel = selectors.DefaultSelector()
    streams: list[Stream] = []
    try:
        if "polling it instead" in server.stderr():
            print("note: inotify unavailable, the server polls the root (a change takes up "
                  "to a second more)")
        # Warm up: a page (with the script) and one stream, then idle.
        status, page = server.get("/")
        assert status == 200 and LIVE.encode() in page, (status, page[:200])
        (warm,) = open_streams(server.port, 1, 1, args.timeout, sel)
        if warm.state != OPEN:
            print(f"the first stream did not open: {warm.error or warm.state}")
            return 1
        sel.unregister(warm.sock)
        warm.sock.close()
        if not wait_for(lambda: server.listening() == 0, 10):
            print("the warm-up stream was not released")
            return 1
        time.sleep(1.0)
        rss_before, files_before = rss_kib(server.pid), fd_count(server.pid)

        began = time.monotonic()
        streams = open_streams(server.port, args.pages, args.concurrency, args.timeout, sel)
        opening = time.monotonic() - began
        opened = [s for s in streams if s.state == OPEN]
        failed = [s for s in streams if s.state != OPEN]
        if failed:
            reasons = sorted({s.error or s.state for s in failed})
            print(f"{len(failed)} of {args.pages} streams did not open: {reasons[:5]}")
        counted = server.listening()
        time.sleep(1.0)  # let the server settle (and the pool go idle)
        rss_after, files_after = rss_kib(server.pid), fd_count(server.pid)

        with open(root / CHANGED, "w") as f:
            f.write("changed\n")
        written = time.monotonic()
        mark = (b'event: change\ndata: {"paths":["/%s"]}\n\n' % CHANGED.encode())
        wait_for_event(opened, sel, mark, args.timeout)
        done = [s for s in opened if s.state == DONE]
        first = min((s.got_event_at for s in done), default=written) - written
        last = max((s.got_event_at for s in done), default=written) - written

        per_page = (rss_after - rss_before) / max(1, len(opened))
        print(f"evserver --live-reload, {args.pages} pages ({len(opened)} streams opened in "
              f"{opening:.2f} s, {counted} counted by the server)")
        print(f"  RSS before:        {rss_before:>8} KiB  ({files_before} open files)")
        print(f"  RSS after:         {rss_after:>8} KiB  ({files_after} open files)")
        print(f"  per open page:     {per_page:>8.2f} KiB")
        print(f"  write -> first stream got the event: {first * 1000:7.1f} ms")
        print(f"  write -> last stream got the event:  {last * 1000:7.1f} ms  "
              f"({len(done)} of {len(opened)} streams)")
        ok = len(opened) == args.pages == counted and len(done) == len(opened)
        if not ok:
            print("FAILED: not every page opened its stream and got the event")
        return 0 if ok else 1
    finally:
        for stream in streams:
            stream.sock.close()
        sel.close()
        status_code = server.stop()
        if status_code != 0:
            print(f"evserver exited with {status_code}: {server.stderr()[-2000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=1000,
                    help=f"event streams to open (1 to {MAX_PAGES}; default 1000)")
    ap.add_argument("--concurrency", type=int, default=200,
                    help="streams connecting at once (default 200)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds allowed for opening the streams, and for the event")
    args = ap.parse_args()
    if not 1 <= args.pages <= MAX_PAGES:
        ap.error(f"--pages must be between 1 and {MAX_PAGES}")
    if args.concurrency < 1:
        ap.error("--concurrency must be at least 1")
    if not raise_fd_limit(args.pages + 256):
        print(f"the open-file limit's hard value is below {args.pages + 256}: "
              "raise it (ulimit -Hn) or open fewer pages", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="evserver-live-") as workdir:
        return run(args, Path(workdir))


if __name__ == "__main__":
    sys.exit(main())
