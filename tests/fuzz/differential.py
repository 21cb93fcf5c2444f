"""Differential testing: the same seeded requests to evserver and to nginx, answers compared.

    python3 -m tests.fuzz.differential --count 400 --seed 7          # a short run, seconds
    python3 -m tests.fuzz.differential --count 20000 --seed 1 --show 20   # a long one, minutes

It builds a document root in a temp folder (text, HTML, a binary image, a 200 KiB file for
ranges, a subfolder with an index, names with a space and a percent sign) and, beside the
root, a canary file whose content is a random token. It starts nginx (Debian's nginx-light:
one process, its own configuration, everything in the temp folder) and `python3 -m evserver`
on that root, both on 127.0.0.1, and sends each generated case to each server on a fresh
connection. A case is one or more requests in one write: a valid GET or HEAD, or a mutation
of one (the request line, the target, field names and values, Host, Content-Length and
Transfer-Encoding, chunked bodies, line ends, pipelines, ranges, conditionals, Expect), named
after what it changed. The responses are parsed as they arrive, and a read ends when the
server closes, when the case's requests are answered and 150 ms pass in silence, or after
1 s.

A case is an *agreement* (the same first status, by exact code below 400 and by class from
400, as many responses, and the same closed-ness), *serious*, or *other*. Serious are:
evserver sending more responses than nginx, or than the case sent requests; evserver
accepting (2xx, 3xx) what nginx rejects (4xx, 5xx); and any response, from either server,
carrying the canary token (bytes from outside the root). A serious finding is allowed only
when the table in docs/http-conformance.md names its mutation and class, with the RFC 9110
or 9112 section that lets evserver answer so; the table is read from the document, so the
two cannot drift. Exit status 1 when a serious finding is not allowed.

Traffic goes to 127.0.0.1 only; each case is bounded in bytes and in time; the servers are
stopped by the ids of the processes this module started.
"""
from __future__ import annotations

import argparse
import calendar
import concurrent.futures
import contextlib
import email.utils
import functools
import http.client
import os
import random
import re
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
ALLOW_LIST_DOC = REPO / "docs" / "http-conformance.md"

QUIET = 0.15  # seconds of silence after the expected responses before a read ends
CASE_DEADLINE = 1.0  # seconds a case may take on one server, whatever happens
CONNECT_TIMEOUT = 2.0
MAX_RECEIVED = 4 * 1024 * 1024  # bytes read from one server for one case, at most
HOST = b"127.0.0.1:8080"  # the valid Host of the cases (the same bytes go to both servers)
SERVERS = ("evserver", "nginx")

# -- the fixture ------------------------------------------------------------------------------

FIXED_MTIME = calendar.timegm((2024, 1, 2, 3, 4, 5))  # every file's mtime: dates are known
BIG_SIZE = 200 * 1024


def fixture_files() -> dict[str, bytes]:
    """The document root: relative path -> content (deterministic)."""
    noise = random.Random(1234)
    return {
        "index.html": b"<!doctype html><title>home</title><p>home</p>\n",
        "page.html": b"<!doctype html><title>page</title><p>a page</p>\n",
        "hello.txt": b"hello, world\n",
        "notes.txt": b"".join(b"line %d of the notes\n" % i for i in range(40)),
        "image.png": b"\x89PNG\r\n\x1a\n" + noise.randbytes(3000),
        "big.bin": noise.randbytes(BIG_SIZE),
        "space name.txt": b"a name with a space\n",
        "50%.txt": b"a name with a percent sign\n",
        "sub/index.html": b"<p>sub</p>\n",
        "sub/page.txt": b"a page in sub\n",
    }


@dataclass(frozen=True)
class Fixture:
    root: Path
    token: bytes  # the canary's content: bytes that must never reach a client


def make_fixture(folder: Path) -> Fixture:
    """The root in `folder`/root and the canary beside it, `folder`/canary.txt; files and
    folders readable by anyone (nginx may run its worker as another user)."""
    root = folder / "root"
    for name, content in fixture_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    token = b"CANARY-" + secrets.token_hex(16).encode()
    (folder / "canary.txt").write_bytes(token + b"\n")
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return Fixture(root, token)


# -- the servers ------------------------------------------------------------------------------

NGINX_CONF = """daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html; text/plain txt; image/png png; }}
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server_tokens off; sendfile on; keepalive_timeout 15s; if_modified_since before;
    server {{ listen 127.0.0.1:{port}; root {root}; autoindex off; }}
}}
"""


@dataclass
class Running:
    """A server process this module started, and the port it listens on."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    output: Path

    def stop(self) -> None:
        """SIGTERM to our own process, then SIGKILL if it is still there after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(argv: list[str], output: Path, cwd: Path,
           source: Path = REPO) -> subprocess.Popen[bytes]:
    env = dict(os.environ)  # this checkout's evserver (or `source`'s), not an installed one
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    with open(output, "wb") as out:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait_until(ready: Callable[[], int | None], proc: subprocess.Popen[bytes], output: Path,
                what: str) -> int:
    """Poll `ready` (a port, or None for not yet) until it answers; raise if the process
    exits or 20 s pass."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        port = ready()
        if port is not None:
            return port
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: "
                               f"{output.read_text(errors='replace')[-800:]}")
        time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"{what} did not start within 20 s")


def _listening(port: int) -> int | None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return None
    return port


def start_nginx(folder: Path, root: Path) -> Running:
    """nginx in the foreground, one process, with every path it writes inside `folder`."""
    folder.mkdir()
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(d=folder, port=port, root=root))
    output = folder / "output.txt"
    proc = _spawn(["nginx", "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
                  output, folder)
    _wait_until(lambda: _listening(port), proc, output, "nginx")
    return Running("nginx", port, proc, output)


def start_evserver(folder: Path, root: Path, source: Path = REPO) -> Running:
    """`python3 -m evserver` from `source` (this checkout, or another one) on a free port
    (read from its banner), its access log in `folder`."""
    folder.mkdir()
    output = folder / "output.txt"
    proc = _spawn([sys.executable, "-m", "evserver", "--host", "127.0.0.1", "--port", "0",
                   "--root", str(root), "--log", str(folder / "access.log")], output, source,
                  source)

    def banner_port() -> int | None:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", output.read_text(errors="replace"))
        return int(match.group(1)) if match else None

    port = _wait_until(banner_port, proc, output, "evserver")
    return Running("evserver", port, proc, output)


@contextlib.contextmanager
def running_servers(folder: Path, root: Path,
                    evserver_source: Path = REPO) -> Iterator[dict[str, Running]]:
    """Both servers on `root`, stopped (by their own pids) when the block ends."""
    started: dict[str, Running] = {}
    try:
        started["evserver"] = start_evserver(folder / "evserver", root, evserver_source)
        started["nginx"] = start_nginx(folder / "nginx", root)
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- what the generator knows about the servers -----------------------------------------------


@dataclass(frozen=True)
class Context:
    """Facts the cases use: each file's ETags (one per server, so a list of them matches on
    both) and the common Last-Modified date."""

    etags: Mapping[bytes, tuple[bytes, ...]]
    last_modified: int = FIXED_MTIME

    @staticmethod
    def offline() -> Context:
        """For generating cases without servers (the pure tests)."""
        return Context({b"/hello.txt": (b'"ev-hello"', b'"ng-hello"'),
                        b"/big.bin": (b'"ev-big"', b'"ng-big"')})


def probe_context(ports: Mapping[str, int]) -> Context:
    """Ask each server for the ETags of the files the conditional cases use, and check that
    both serve the fixture (a broken setup must not pass for agreement)."""
    expected = fixture_files()
    etags: dict[bytes, list[bytes]] = {}
    for name, port in ports.items():
        for path in (b"/hello.txt", b"/big.bin"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path.decode())
                resp = conn.getresponse()
                body = resp.read()
                etag = resp.getheader("ETag")
            finally:
                conn.close()
            if resp.status != 200 or body != expected[path.decode().lstrip("/")] or not etag:
                raise RuntimeError(f"{name} does not serve {path!r}: {resp.status}, {etag}")
            etags.setdefault(path, []).append(etag.encode())
    return Context({path: tuple(tags) for path, tags in etags.items()})


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Bytes to send in one write. `name` is the mutation; `heads[i]` says whether the i-th
    request is a HEAD (its response has no body); `detail` says more (a pipeline's bad
    request)."""

    name: str
    data: bytes
    heads: tuple[bool, ...]
    detail: str = ""

    @property
    def requests(self) -> int:
        """How many requests the case meant to send."""
        return len(self.heads)


@dataclass
class Spec:
    """One request to render; mutations change its parts."""

    method: bytes = b"GET"
    target: bytes = b"/hello.txt"
    version: bytes = b"HTTP/1.1"
    fields: list[bytes] = field(default_factory=list)  # whole field lines, no line ends
    body: bytes = b""
    line: bytes | None = None  # a whole request line instead of method, target, version

    def render(self) -> bytes:
        """CRLF line ends (other line ends are Raw cases)."""
        line = self.line if self.line is not None else b" ".join(
            (self.method, self.target, self.version))
        return b"\r\n".join((line, *self.fields, b"")) + b"\r\n" + self.body

    @property
    def is_head(self) -> bool:
        return self.line is None and self.method == b"HEAD"


@dataclass(frozen=True)
class Raw:
    """Bytes a Spec cannot express (mixed line ends, a bare CR)."""

    data: bytes
    heads: tuple[bool, ...] = (False,)


Built = Spec | list[Spec] | Raw
T = TypeVar("T")

# Paths of the fixture that are served (200), and others.
FILE_PATHS = (b"/hello.txt", b"/notes.txt", b"/page.html", b"/image.png", b"/big.bin",
              b"/index.html", b"/sub/page.txt", b"/space%20name.txt", b"/50%25.txt")
OTHER_PATHS = (b"/", b"/sub/", b"/sub", b"/missing.txt", b"/sub/missing.html")
BENIGN_FIELDS = (b"User-Agent: difftest/1.0", b"Accept: */*", b"Accept-Language: en",
                 b"Accept-Encoding: identity", b"Cache-Control: no-cache")


class Gen:
    """The random source of one case and helpers to build valid requests."""

    def __init__(self, rng: random.Random, ctx: Context) -> None:
        self.rng = rng
        self.ctx = ctx
        self.detail = ""  # what a builder wants the report to say about its case

    def path(self) -> bytes:
        return self.rng.choice(FILE_PATHS if self.rng.random() < 0.8 else OTHER_PATHS)

    def method(self) -> bytes:
        return b"HEAD" if self.rng.random() < 0.2 else b"GET"

    def spec(self, *, method: bytes | None = None, target: bytes | None = None,
             version: bytes = b"HTTP/1.1", host: Sequence[bytes] | None = None,
             fields: Sequence[bytes] = (), body: bytes = b"", closing: bool = True) -> Spec:
        """A valid request, but for what the arguments change: `host` the Host lines (by
        default one valid Host), `fields` placed at a random spot among a few benign ones;
        `closing` lets one in ten single requests ask to close."""
        lines = [self.rng.choice(BENIGN_FIELDS) for _ in range(self.rng.randrange(3))]
        for line in fields:
            lines.insert(self.rng.randrange(len(lines) + 1), line)
        if closing and self.rng.random() < 0.1:
            lines.append(b"Connection: close")
        hosts = [b"Host: " + HOST] if host is None else list(host)
        return Spec(method or self.method(), target or self.path(), version,
                    [*hosts, *lines], body)

    def pick(self, choices: Sequence[T]) -> T:
        return self.rng.choice(choices)


Builder = Callable[[Gen], Built]
MUTATIONS: dict[str, Builder] = {}


def mutation(name: str) -> Callable[[Builder], Builder]:
    """Register a builder of cases under the mutation's name."""
    def register(builder: Builder) -> Builder:
        assert name not in MUTATIONS, name
        MUTATIONS[name] = builder
        return builder
    return register


def _table(table: Mapping[str, Sequence[T]], make: Callable[[Gen, T], Built]) -> None:
    """Register one mutation per row of `table`: a random choice of the row, made a case."""
    def build(choices: Sequence[T], g: Gen) -> Built:
        return make(g, g.pick(choices))

    for name, choices in table.items():
        mutation(name)(functools.partial(build, choices))


# Whole request lines; {t} becomes a path of the fixture.
REQUEST_LINES: dict[str, Sequence[bytes]] = {
    "method-lowercase": (b"get {t} HTTP/1.1", b"Get {t} HTTP/1.1", b"head {t} HTTP/1.1"),
    "method-unknown": (b"FOO {t} HTTP/1.1", b"GETT {t} HTTP/1.1", b"BREW {t} HTTP/1.1"),
    "method-registered": (b"PUT {t} HTTP/1.1", b"DELETE {t} HTTP/1.1", b"TRACE {t} HTTP/1.1",
                          b"PATCH {t} HTTP/1.1", b"POST {t} HTTP/1.1"),
    "method-options": (b"OPTIONS {t} HTTP/1.1",),
    "method-options-asterisk": (b"OPTIONS * HTTP/1.1",),
    "method-connect": (b"CONNECT 127.0.0.1:80 HTTP/1.1", b"CONNECT example.com:443 HTTP/1.1"),
    "method-invalid-token": (b"G(T {t} HTTP/1.1", b"GE:T {t} HTTP/1.1", b"G/ET {t} HTTP/1.1"),
    "target-asterisk-get": (b"GET * HTTP/1.1", b"HEAD * HTTP/1.1"),
    "version-http10": (b"GET {t} HTTP/1.0",),
    "version-http2": (b"GET {t} HTTP/2.0", b"GET {t} HTTP/3.0", b"GET {t} HTTP/2"),
    "version-two-digit": (b"GET {t} HTTP/1.10", b"GET {t} HTTP/1.01", b"GET {t} HTTP/01.1",
                          b"GET {t} HTTP/11.1"),
    "version-future-minor": (b"GET {t} HTTP/1.2", b"GET {t} HTTP/1.9"),
    "version-http09": (b"GET {t} HTTP/0.9",),
    "version-trailing-space": (b"GET {t} HTTP/1.1 ", b"GET {t} HTTP/1.1\t"),
    "version-lowercase": (b"GET {t} http/1.1", b"GET {t} Http/1.1", b"GET {t} HTTP/1.1".lower()),
    "version-missing": (b"GET {t}", b"GET {t} "),
    "version-garbage": (b"GET {t} HTTP/1.1x", b"GET {t} HTTP/x.y", b"GET {t} FOO/1.1",
                        b"GET {t} HTTP/1", b"GET {t} HTTP/1.", b"GET {t} HTTP/+1.1"),
    "line-missing-target": (b"GET HTTP/1.1", b"GET  HTTP/1.1"),
    "line-missing-method": (b" {t} HTTP/1.1", b"{t} HTTP/1.1"),
    "line-extra-space": (b"GET  {t} HTTP/1.1", b"GET {t}  HTTP/1.1", b"GET {t} HTTP/1.1 x"),
    "line-tab-separator": (b"GET\t{t}\tHTTP/1.1", b"GET\t{t} HTTP/1.1", b"GET {t}\tHTTP/1.1"),
    "line-control-char": (b"GET {t}\x01 HTTP/1.1", b"GE\x00T {t} HTTP/1.1",
                          b"GET /a\x7fb HTTP/1.1", b"GET {t} HTTP/1.1\x0b",
                          b"GET /a\x00b HTTP/1.1", b"GET {t}\x0c HTTP/1.1"),
    "target-absolute-form": (b"GET http://127.0.0.1:8080{t} HTTP/1.1",
                             b"GET http://example.com{t} HTTP/1.1",
                             b"GET HTTP://EXAMPLE.COM{t} HTTP/1.1",
                             b"GET http://example.com{t}?q=1 HTTP/1.1"),
    "target-absolute-no-path": (b"GET http://example.com HTTP/1.1",
                                b"GET http://example.com?x=1 HTTP/1.1"),
    "target-absolute-https": (b"GET https://example.com{t} HTTP/1.1",),
    "target-absolute-other-scheme": (b"GET ftp://example.com{t} HTTP/1.1",
                                     b"GET foo:bar HTTP/1.1", b"GET mailto:a@b HTTP/1.1"),
    "target-absolute-userinfo": (b"GET http://user@example.com{t} HTTP/1.1",
                                 b"GET http://u:p@127.0.0.1:8080{t} HTTP/1.1"),
    "target-absolute-traversal": (b"GET http://example.com/../canary.txt HTTP/1.1",
                                  b"GET http://example.com/%2e%2e/canary.txt HTTP/1.1",
                                  b"GET http://example.com/sub/../../canary.txt HTTP/1.1"),
    "target-authority-form": (b"GET 127.0.0.1:8080 HTTP/1.1", b"GET example.com:80 HTTP/1.1"),
}


def _request_line(g: Gen, line: bytes) -> Built:
    spec = g.spec(method=b"GET")
    spec.line = line.replace(b"{t}", g.pick(FILE_PATHS))
    return spec


_table(REQUEST_LINES, _request_line)

# Request targets; the canary lies beside the root, at /../canary.txt.
TARGETS: dict[str, Sequence[bytes]] = {
    "target-dotdot": (b"/../canary.txt", b"/sub/../../canary.txt", b"/..", b"/../",
                      b"/./../canary.txt", b"/sub/../../../../canary.txt", b"/../root/hello.txt"),
    "target-dot-segments-inside": (b"/sub/../hello.txt", b"/./hello.txt", b"/sub/./page.txt",
                                   b"/sub/..", b"/sub/.", b"/sub/page.txt/.."),
    "target-encoded-dots": (b"/%2e%2e/canary.txt", b"/%2E%2E/canary.txt", b"/.%2e/canary.txt",
                            b"/%2e./canary.txt", b"/sub/%2e%2e/%2e%2e/canary.txt",
                            b"/%2e%2e", b"/sub/%2e%2e/hello.txt"),
    "target-encoded-slash": (b"/..%2fcanary.txt", b"/sub%2f..%2f..%2fcanary.txt",
                             b"/%2e%2e%2fcanary.txt", b"/sub%2fpage.txt", b"/%2F..%2Fcanary.txt"),
    "target-encoded-backslash": (b"/..%5ccanary.txt", b"/%2e%2e%5ccanary.txt",
                                 b"/sub%5cpage.txt", b"/sub/..%5C..%5Ccanary.txt"),
    "target-backslash": (b"/..\\canary.txt", b"/sub\\..\\..\\canary.txt", b"/sub\\page.txt",
                         b"\\hello.txt"),
    "target-double-slash": (b"//hello.txt", b"/sub//page.txt", b"//../canary.txt", b"///",
                            b"//sub//"),
    "target-encoded-nul": (b"/hello.txt%00", b"/hello.txt%00.html", b"/%00/../canary.txt",
                           b"/sub/%00"),
    "target-overlong-utf8": (b"/%c0%ae%c0%ae/canary.txt", b"/%c0%ae%c0%ae%c0%afcanary.txt",
                             b"/..%c0%afcanary.txt", b"/%e0%80%ae%e0%80%ae/canary.txt",
                             b"/%c1%9c..%c1%9ccanary.txt"),
    "target-fragment": (b"/hello.txt#x", b"/hello.txt#/../../canary.txt", b"/sub/#frag",
                        b"/#", b"/hello.txt#?q"),
    "target-query": (b"/hello.txt?a=1", b"/hello.txt?/../../canary.txt", b"/?x", b"/sub/?a=b&c",
                     b"/hello.txt?", b"/sub?x=1", b"/hello.txt??"),
    "target-bad-percent": (b"/hello%zz.txt", b"/hello.txt%", b"/%2", b"/%g0"),
    "target-non-ascii": (b"/h\xc3\xa9llo.txt", b"/\xff.txt", b"/sub/\xe2\x80\xae.txt"),
    "target-no-leading-slash": (b"hello.txt", b"..", b"%2fhello.txt", b"./hello.txt"),
    "target-encoded-name": (b"/space%20name.txt", b"/50%25.txt", b"/%68ello.txt",
                            b"/sub/%70age.txt", b"/space name.txt"),
}


def _target(g: Gen, target: bytes) -> Built:
    return g.spec(target=target)


_table(TARGETS, _target)


@mutation("target-long-ok")
def _long_target_ok(g: Gen) -> Built:
    """Well under both servers' request-line limit (8 KiB)."""
    return g.spec(target=g.pick(FILE_PATHS) + b"?" + b"a" * g.pick((1000, 3000, 6000)))


@mutation("target-long-over")
def _long_target_over(g: Gen) -> Built:
    """Well over both servers' request-line limit."""
    return g.spec(target=b"/" + b"a" * g.pick((9000, 12000, 20000)))


# Field lines added to a valid request.
FIELD_LINES: dict[str, Sequence[bytes]] = {
    "name-space-before-colon": (b"X-Test : 1", b"Accept : */*", b"Host : other"),
    "name-tab-before-colon": (b"X-Test\t: 1",),
    "name-invalid-token": (b"X@Test: 1", b"X[1]: 2", b'X"Y: 1', b"X(Y): 1", b"X/Y: 1",
                           b"X=Y: 1", b"X{Y}: 1"),
    "name-underscore": (b"X_Test: 1", b"Accept_Encoding: identity"),
    "name-empty": (b": value", b":", b": "),
    "name-no-colon": (b"X-Test", b"X-Test 1", b"X-Test;1"),
    "name-non-ascii": (b"X-T\xe9st: 1", b"\xffX: 1"),
    "name-control-char": (b"X-\x01Test: 1", b"X-Te\x00st: 1", b"X-Test\x7f: 1"),
    "value-control-char": (b"X-Test: a\x01b", b"X-Test: a\x1fb", b"X-Test: \x0c",
                           b"X-Test: a\x0bb"),
    "value-nul": (b"X-Test: a\x00b", b"X-Test: \x00", b"Accept: */*\x00"),
    "value-del": (b"X-Test: a\x7fb",),
    "value-bare-cr": (b"X-Test: a\rb", b"X-Test: a\r"),
    "value-tab-after-colon": (b"X-Test:\t1", b"Accept:\t*/*", b"X-Test: \t 1"),
    "value-no-space-after-colon": (b"X-Test:1", b"Accept:*/*"),
    "value-trailing-whitespace": (b"X-Test: 1 ", b"X-Test: 1\t", b"Accept: */*  ",
                                  b"X-Test: 1 \t "),
    "value-obs-text": (b"X-Test: caf\xe9", b"X-Test: \xff\xfe", b"X-Test: \xe2\x82\xac"),
    "value-empty": (b"X-Test:", b"X-Test: ", b"Accept:"),
    "value-long-ok": (b"X-Long: " + b"a" * 4000, b"X-Long: " + b"b" * 7000),
    "value-long-over": (b"X-Long: " + b"a" * 10000, b"X-Long: " + b"b" * 17000),
    "connection-close": (b"Connection: close", b"Connection: Close", b"Connection: foo, close"),
    "connection-keep-alive": (b"Connection: keep-alive", b"Connection: Keep-Alive"),
    "connection-upgrade": (b"Connection: Upgrade\r\nUpgrade: h2c",
                           b"Connection: Upgrade\r\nUpgrade: websocket"),
    "expect-100-continue": (b"Expect: 100-continue", b"Expect: 100-Continue"),
    "expect-unknown": (b"Expect: foo", b"Expect: 200-ok", b"Expect: 100-continue, foo"),
}


def _field(g: Gen, line: bytes) -> Built:
    return g.spec(fields=[line])


_table(FIELD_LINES, _field)


@mutation("fields-many")
def _many_fields(g: Gen) -> Built:
    """More field lines than evserver's default limit (100), each short."""
    return g.spec(fields=[b"X-F%d: %d" % (i, i) for i in range(g.pick((90, 120, 200)))])


@mutation("name-obs-fold")
def _obs_fold(g: Gen) -> Built:
    """A continuation line (obsolete line folding) after a field line."""
    fold = g.pick((b" b", b"\tb", b"  folded value"))
    return g.spec(fields=[b"X-Test: a\r\n" + fold])  # one entry: placed together


@mutation("name-whitespace-first-line")
def _whitespace_first_line(g: Gen) -> Built:
    """Whitespace between the request line and the first field line (RFC 9112 §2.2)."""
    spec = g.spec()
    spec.fields.insert(0, g.pick((b" X-Test: 1", b"\tHost: other", b" Host: 127.0.0.1")))
    return spec


# Host field lines (a list: none, one or two lines).
HOSTS: dict[str, Sequence[Sequence[bytes]]] = {
    "host-valid": ((b"Host: 127.0.0.1:8080",), (b"Host: localhost",), (b"Host: example.com",),
                   (b"Host: 127.0.0.1",), (b"Host: EXAMPLE.com.",), (b"host: localhost",)),
    "host-valid-ipv6": ((b"Host: [::1]:80",), (b"Host: [::1]",), (b"Host: [fe80::1]:8080",)),
    "host-valid-reg-name": ((b"Host: a_b",), (b"Host: a%20b",), (b"Host: a,b",),
                            (b"Host: a!$&'()*+;=b",), (b"Host: host:",)),
    "host-missing": ((),),
    "host-duplicate-equal": ((b"Host: localhost", b"Host: localhost"),),
    "host-duplicate-different": ((b"Host: a", b"Host: b"),),
    "host-empty": ((b"Host:",), (b"Host: ",)),
    "host-invalid-space": ((b"Host: a b",), (b"Host: a\tb",)),
    "host-ipv6-unclosed": ((b"Host: [::1",), (b"Host: [::1:80",), (b"Host: ::1]",)),
    "host-two-colons": ((b"Host: host:80:x",), (b"Host: a:1:2",), (b"Host: ::1",)),
    "host-negative-port": ((b"Host: host:-1",), (b"Host: host:-80",)),
    "host-port-too-big": ((b"Host: host:99999",), (b"Host: host:65536",)),
    "host-port-letters": ((b"Host: host:http",), (b"Host: host:8o",)),
    "host-userinfo": ((b"Host: u@h",), (b"Host: user:pass@host",), (b"Host: @host",)),
    "host-slash": ((b"Host: a/b",), (b"Host: /",), (b"Host: ../canary.txt",)),
    "host-backslash": ((b"Host: a\\b",),),
    "host-double-dot": ((b"Host: a..b",), (b"Host: ..",), (b"Host: .",)),
    "host-non-ascii": ((b"Host: h\xe9",), (b"Host: \xff",)),
    "host-bad-chars": ((b"Host: a<b>",), (b'Host: a"b',), (b"Host: a{b}",), (b"Host: a^b",)),
}


def _hosts(g: Gen, lines: Sequence[bytes]) -> Built:
    return g.spec(host=lines)


_table(HOSTS, _hosts)


@mutation("host-missing-http10")
def _host_missing_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", host=())


# Body framing: (field lines, body) added to a GET.
CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
FRAMING: dict[str, Sequence[tuple[tuple[bytes, ...], bytes]]] = {
    "cl-valid": (((b"Content-Length: 5",), b"hello"), ((b"Content-Length: 1",), b"x")),
    "cl-zero": (((b"Content-Length: 0",), b""),),
    "cl-leading-zeros": (((b"Content-Length: 005",), b"hello"),),
    "cl-duplicate-equal": (((b"Content-Length: 5", b"Content-Length: 5"), b"hello"),
                           ((b"Content-Length: 0", b"Content-Length: 0"), b"")),
    "cl-duplicate-different": (((b"Content-Length: 5", b"Content-Length: 6"), b"hello!"),
                               ((b"Content-Length: 0", b"Content-Length: 5"), b"hello")),
    "cl-list-equal": (((b"Content-Length: 5, 5",), b"hello"), ((b"Content-Length: 5,5",), b"hello"),
                      ((b"Content-Length: 0, 0",), b"")),
    "cl-list-different": (((b"Content-Length: 5, 6",), b"hello!"),
                          ((b"Content-Length: 0, 5",), b"hello")),
    "cl-list-empty-element": (((b"Content-Length: 5,",), b"hello"),
                              ((b"Content-Length: , 5",), b"hello")),
    "cl-negative": (((b"Content-Length: -5",), b"hello"), ((b"Content-Length: -0",), b"")),
    "cl-plus": (((b"Content-Length: +5",), b"hello"),),
    "cl-hex": (((b"Content-Length: 0x5",), b"hello"), ((b"Content-Length: 5h",), b"hello")),
    "cl-huge": (((b"Content-Length: 99999999999999999999999",), b""),
                ((b"Content-Length: 18446744073709551617",), b"")),
    "cl-over-limit": (((b"Content-Length: 2000000",), b""),),
    "cl-empty": (((b"Content-Length:",), b""), ((b"Content-Length: ",), b"")),
    "cl-inner-space": (((b"Content-Length: 5 5",), b"hello"), ((b"Content-Length: 1 0",), b"")),
    "cl-short-body": (((b"Content-Length: 10",), b"hello"),),
    "cl-and-te": (((b"Content-Length: 5", b"Transfer-Encoding: chunked"), b"0\r\n\r\n"),
                  ((b"Transfer-Encoding: chunked", b"Content-Length: 0"), CHUNKED)),
    "te-chunked": (((b"Transfer-Encoding: chunked",), CHUNKED),),
    "te-chunked-gzip": (((b"Transfer-Encoding: chunked, gzip",), CHUNKED),),
    "te-gzip-chunked": (((b"Transfer-Encoding: gzip, chunked",), CHUNKED),),
    "te-identity": (((b"Transfer-Encoding: identity",), b""),
                    ((b"Transfer-Encoding: identity",), CHUNKED)),
    "te-unknown": (((b"Transfer-Encoding: xchunked",), CHUNKED),
                   ((b"Transfer-Encoding: chunk",), CHUNKED)),
    "te-empty": (((b"Transfer-Encoding:",), b""),),
    "te-trailing-space": (((b"Transfer-Encoding: chunked ",), CHUNKED),
                          ((b"Transfer-Encoding:  chunked  ",), CHUNKED)),
    "te-capitalized": (((b"Transfer-Encoding: Chunked",), CHUNKED),
                       ((b"Transfer-Encoding: CHUNKED",), CHUNKED)),
    "te-chunked-twice": (((b"Transfer-Encoding: chunked, chunked",), CHUNKED),
                         ((b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
                          CHUNKED)),
    "te-two-lines": (((b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"), CHUNKED),),
    "te-list-empty-element": (((b"Transfer-Encoding: , chunked",), CHUNKED),
                              ((b"Transfer-Encoding: chunked,",), CHUNKED)),
}


def _framing(g: Gen, choice: tuple[tuple[bytes, ...], bytes]) -> Built:
    lines, body = choice
    return g.spec(method=g.pick((b"GET", b"GET", b"POST")), fields=lines, body=body)


_table(FRAMING, _framing)


@mutation("te-http10")
def _te_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Transfer-Encoding: chunked"], body=CHUNKED)


# Chunked bodies after `Transfer-Encoding: chunked`.
CHUNKED_BODIES: dict[str, Sequence[bytes]] = {
    "chunk-valid": (CHUNKED, b"0\r\n\r\n", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                    b"A\r\n0123456789\r\n0\r\n\r\n", b"00005\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension": (b"5;ext=1\r\nhello\r\n0\r\n\r\n", b'5;a;b="c d"\r\nhello\r\n0;x\r\n\r\n',
                        b"5 ;ext\r\nhello\r\n0\r\n\r\n"),
    "chunk-trailers": (b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
                       b"0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"),
    "chunk-bad-hex": (b"xyz\r\nhello\r\n0\r\n\r\n", b"5g\r\nhello\r\n0\r\n\r\n",
                      b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\nzz\r\n\r\n"),
    "chunk-size-prefix": (b"0x5\r\nhello\r\n0\r\n\r\n", b"+5\r\nhello\r\n0\r\n\r\n",
                          b" 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-empty-size": (b"\r\nhello\r\n0\r\n\r\n", b";ext\r\nhello\r\n0\r\n\r\n"),
    "chunk-missing-crlf": (b"5\r\nhelloX\r\n0\r\n\r\n", b"5\r\nhello0\r\n\r\n",
                           b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": (b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                            b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
    "chunk-too-big": (b"7fffffffffffffff\r\nhello\r\n0\r\n\r\n", b"200000\r\nhello"),
    "chunk-bare-lf": (b"5\nhello\n0\n\n", b"5\r\nhello\n0\r\n\r\n"),
    "chunk-bare-cr": (b"5\rhello\r\n0\r\n\r\n", b"5\r\nhello\r0\r\n\r\n"),
    "chunk-bad-trailer": (b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
                          b"0\r\nX: \x00\r\n\r\n", b"0\r\n : folded\r\n\r\n"),
    "chunk-incomplete": (b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n"),
}


def _chunked(g: Gen, body: bytes) -> Built:
    return g.spec(method=g.pick((b"GET", b"GET", b"POST")),
                  fields=[b"Transfer-Encoding: chunked"], body=body)


_table(CHUNKED_BODIES, _chunked)


# Line ends.
def _lines_of(g: Gen) -> list[bytes]:
    spec = g.spec(method=b"GET", closing=False)
    return [b" ".join((spec.method, spec.target, spec.version)), *spec.fields]


@mutation("eol-bare-lf")
def _bare_lf(g: Gen) -> Built:
    return Raw(b"\n".join(_lines_of(g)) + b"\n\n")


@mutation("eol-mixed")
def _mixed_eol(g: Gen) -> Built:
    lines = _lines_of(g)
    return Raw(b"".join(line + g.pick((b"\r\n", b"\n")) for line in lines) + g.pick(
        (b"\r\n", b"\n")))


@mutation("eol-bare-cr")
def _bare_cr(g: Gen) -> Built:
    """Bare CR as the line end, everywhere or on one field line (RFC 9112 §2.2)."""
    lines = _lines_of(g)
    if g.rng.random() < 0.5:
        return Raw(b"\r".join(lines) + b"\r\r\n\r\n")
    where = g.rng.randrange(1, len(lines) + 1)
    lines.insert(where, b"X-Test: 1\rX-Other: 2")
    return Raw(b"\r\n".join(lines) + b"\r\n\r\n")


@mutation("eol-cr-before-request")
def _cr_before(g: Gen) -> Built:
    return Raw(g.pick((b"\r", b"\r\r\n", b" \r\n")) + b"\r\n".join(_lines_of(g)) + b"\r\n\r\n")


@mutation("eol-empty-lines-before-request")
def _empty_lines_before(g: Gen) -> Built:
    return Raw(g.pick((b"\r\n", b"\n", b"\r\n\r\n")) + b"\r\n".join(_lines_of(g)) + b"\r\n\r\n")


@mutation("eol-lf-cr")
def _lf_cr(g: Gen) -> Built:
    """LF CR in place of CR LF: the CR then starts the next line."""
    return Raw(b"\n\r".join(_lines_of(g)) + b"\n\r\n\r")


# Pipelines: several requests in one write.
def _valid(g: Gen) -> Spec:
    return g.spec(closing=False)


@mutation("pipeline-valid")
def _pipeline_valid(g: Gen) -> Built:
    return [_valid(g) for _ in range(g.pick((2, 3)))]


@mutation("pipeline-head-middle")
def _pipeline_head_middle(g: Gen) -> Built:
    return [_valid(g), g.spec(method=b"HEAD", closing=False), _valid(g)]


# Bad requests that both servers are expected to refuse, for the middle of a pipeline.
BAD_MIDDLE = ("line-missing-target", "name-space-before-colon", "cl-negative", "host-missing",
              "host-duplicate-different", "cl-duplicate-different", "target-dotdot",
              "target-encoded-nul", "target-no-leading-slash", "value-nul", "name-obs-fold",
              "target-encoded-dots", "version-garbage", "cl-and-te", "te-chunked-gzip")


@mutation("pipeline-bad-middle")
def _pipeline_bad_middle(g: Gen) -> Built:
    """valid, bad, valid; the bad one (a mutation both servers refuse) is the detail."""
    bad_name = g.pick(BAD_MIDDLE)
    built = MUTATIONS[bad_name](g)
    g.detail = bad_name
    assert isinstance(built, Spec), bad_name
    if built.fields and built.fields[-1] == b"Connection: close":
        built.fields.pop()
    return [_valid(g), built, _valid(g)]


@mutation("pipeline-close-first")
def _pipeline_close_first(g: Gen) -> Built:
    first = g.spec(fields=[b"Connection: close"], closing=False)
    return [first, _valid(g)]


@mutation("pipeline-http10-first")
def _pipeline_http10_first(g: Gen) -> Built:
    return [g.spec(version=b"HTTP/1.0", host=(), closing=False), _valid(g)]


@mutation("pipeline-body-first")
def _pipeline_body_first(g: Gen) -> Built:
    first = g.spec(method=b"GET", fields=[b"Content-Length: 5"], body=b"hello", closing=False)
    return [first, _valid(g)]


@mutation("pipeline-chunked-first")
def _pipeline_chunked_first(g: Gen) -> Built:
    first = g.spec(method=b"GET", fields=[b"Transfer-Encoding: chunked"],
                   body=g.pick(CHUNKED_BODIES["chunk-valid"]), closing=False)
    return [first, _valid(g)]


@mutation("pipeline-smuggled-in-body")
def _pipeline_smuggled(g: Gen) -> Built:
    """A body that looks like a request: it must stay a body (one request meant)."""
    inner = b"GET /../canary.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    if g.rng.random() < 0.5:
        return g.spec(method=b"GET", fields=[b"Content-Length: %d" % len(inner)], body=inner)
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    return g.spec(method=b"GET", fields=[b"Transfer-Encoding: chunked"], body=body)


@mutation("pipeline-smuggle-cl-te")
def _pipeline_smuggle_cl_te(g: Gen) -> Built:
    """CL and TE at once, disagreeing about where the next request starts."""
    inner = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    fields = [b"Content-Length: 4", b"Transfer-Encoding: chunked"]
    g.rng.shuffle(fields)
    return g.spec(method=b"GET", fields=fields, body=b"0\r\n\r\n" + inner)


# Ranges on big.bin (or hello.txt).
def _range_spec(g: Gen, value: bytes, *, method: bytes = b"GET",
                extra: Sequence[bytes] = ()) -> Spec:
    return g.spec(method=method, target=g.pick((b"/big.bin", b"/big.bin", b"/hello.txt")),
                  fields=[b"Range: " + value, *extra])


RANGES: dict[str, Sequence[bytes]] = {
    "range-single": (b"bytes=0-99", b"bytes=100-199", b"bytes=5-5", b"bytes=0-0"),
    "range-open": (b"bytes=100-", b"bytes=0-", b"bytes=12-"),
    "range-suffix": (b"bytes=-100", b"bytes=-1", b"bytes=-999999"),
    "range-multi": (b"bytes=0-9,20-29", b"bytes=0-0,-1", b"bytes=0-4,6-8,10-11"),
    "range-overlapping": (b"bytes=0-50,40-99", b"bytes=0-9,0-9", b"bytes=0-,5-10"),
    "range-unsatisfiable": (b"bytes=999999-", b"bytes=204800-204900", b"bytes=-0",
                            b"bytes=999999-1000000"),
    "range-malformed": (b"bytes=abc", b"bytes=", b"bytes=-", b"bytes=5-3", b"bytes 0-5",
                        b"bytes=0-5;", b"bytes=--1", b"bytes=1-2-3", b"bytes=0x1-2"),
    "range-whitespace": (b"bytes=0-5, 10-20", b"bytes=0-5 ,10-20", b"bytes = 0-5",
                         b"bytes= 0-5", b"bytes=0 -5"),
    "range-other-unit": (b"items=0-5", b"Bytes=0-5", b"none"),
    "range-many": (b"bytes=" + b",".join(b"%d-%d" % (i * 20, i * 20 + 9) for i in range(150)),),
}


def _range(g: Gen, value: bytes) -> Built:
    return _range_spec(g, value)


_table(RANGES, _range)


@mutation("range-two-lines")
def _range_two_lines(g: Gen) -> Built:
    spec = _range_spec(g, g.pick((b"bytes=0-9", b"bytes=5-")))
    spec.fields.append(b"Range: " + g.pick((b"bytes=20-29", b"bytes=0-9", b"bytes=-5")))
    return spec


@mutation("range-head")
def _range_head(g: Gen) -> Built:
    return _range_spec(g, g.pick((b"bytes=0-9", b"bytes=-5")), method=b"HEAD")


# Conditionals on hello.txt or big.bin, whose mtime is FIXED_MTIME.
def _date(seconds: float, style: int = 0) -> bytes:
    """IMF-fixdate, or (style 1) RFC 850, or (style 2) asctime."""
    fixdate = email.utils.formatdate(seconds, usegmt=True).encode()
    if style == 0:
        return fixdate
    t = time.gmtime(seconds)
    if style == 1:
        return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t).encode()
    return time.strftime("%a %b %e %H:%M:%S %Y", t).encode()


def _conditional(g: Gen, *lines: bytes, ranged: bool = False) -> Spec:
    target = g.pick((b"/hello.txt", b"/big.bin"))
    fields = [*lines, *([b"Range: bytes=0-9"] if ranged else [])]
    return g.spec(method=b"GET" if ranged else None, target=target, fields=fields)


def _etags(g: Gen, weak: bool = False) -> bytes:
    """Every server's ETags of both conditional files, so the list matches on each."""
    tags = [tag for path in sorted(g.ctx.etags) for tag in g.ctx.etags[path]]
    return b", ".join(b"W/" + tag if weak else tag for tag in tags)


DAY = 86400
INVALID_DATES = (b"yesterday", b"Tue, 32 Jan 2024 03:04:05 GMT", b"0", b"",
                 b"Tue, 02 Jan 2024 03:04:05", b"Tue, 02 Jan 0000 03:04:05 GMT")


@mutation("ims-equal")
def _ims_equal(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified, g.pick((0, 1, 2))))


@mutation("ims-later")
def _ims_later(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified + DAY))


@mutation("ims-earlier")
def _ims_earlier(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("ims-future")
def _ims_future(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(calendar.timegm((2099, 1, 1, 0, 0, 0))))


@mutation("ims-invalid")
def _ims_invalid(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + g.pick(INVALID_DATES))


@mutation("inm-star")
def _inm_star(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: *")


@mutation("inm-match")
def _inm_match(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + _etags(g, weak=g.rng.random() < 0.5))


@mutation("inm-nomatch")
def _inm_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + g.pick((b'"nope"', b'W/"nope"', b'"a", "b"')))


@mutation("inm-malformed")
def _inm_malformed(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + g.pick((b"nope", b'"unclosed', b"W/", b",")))


@mutation("inm-match-ims-earlier")
def _inm_match_ims_earlier(g: Gen) -> Built:
    """If-None-Match matches, If-Modified-Since says modified: RFC 9110 §13.1.3 says to
    ignore If-Modified-Since when If-None-Match is present."""
    return _conditional(g, b"If-None-Match: " + _etags(g),
                        b"If-Modified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("if-match-star")
def _if_match_star(g: Gen) -> Built:
    return _conditional(g, b"If-Match: *")


@mutation("if-match-nomatch")
def _if_match_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-Match: " + g.pick((b'"nope"', b'W/"nope"')))


@mutation("ius-earlier")
def _ius_earlier(g: Gen) -> Built:
    return _conditional(g, b"If-Unmodified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("ius-later")
def _ius_later(g: Gen) -> Built:
    return _conditional(g, b"If-Unmodified-Since: " + _date(g.ctx.last_modified + DAY))


@mutation("if-range-date-match")
def _if_range_date_match(g: Gen) -> Built:
    return _conditional(g, b"If-Range: " + _date(g.ctx.last_modified), ranged=True)


@mutation("if-range-date-other")
def _if_range_date_other(g: Gen) -> Built:
    shift = g.pick((-DAY, DAY))
    return _conditional(g, b"If-Range: " + _date(g.ctx.last_modified + shift), ranged=True)


@mutation("if-range-etag-nomatch")
def _if_range_etag_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-Range: " + g.pick((b'"nope"', b'W/"nope"')), ranged=True)


@mutation("if-range-weak")
def _if_range_weak(g: Gen) -> Built:
    """If-Range compares strongly: a weak tag never matches (RFC 9110 §13.1.5)."""
    tag = g.pick(g.ctx.etags[g.pick(sorted(g.ctx.etags))])
    return _conditional(g, b"If-Range: W/" + tag, ranged=True)


@mutation("expect-100-continue-body")
def _expect_with_body(g: Gen) -> Built:
    return g.spec(method=b"GET", fields=[b"Expect: 100-continue", b"Content-Length: 5"],
                  body=b"hello")


@mutation("expect-100-http10")
def _expect_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Expect: 100-continue"])


@mutation("valid-get")
def _valid_get(g: Gen) -> Built:
    return g.spec(method=b"GET")


@mutation("valid-head")
def _valid_head(g: Gen) -> Built:
    return g.spec(method=b"HEAD")


@mutation("valid-http10-keep-alive")
def _valid_http10_keep_alive(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Connection: keep-alive"], closing=False)


def build_case(name: str, g: Gen) -> Case:
    """The mutation `name` made into a case (bytes, one HEAD flag per request)."""
    g.detail = ""
    built = MUTATIONS[name](g)
    detail = g.detail
    if isinstance(built, Raw):
        return Case(name, built.data, built.heads, detail)
    specs = built if isinstance(built, list) else [built]
    return Case(name, b"".join(spec.render() for spec in specs),
                tuple(spec.is_head for spec in specs), detail)


def generate(seed: int, count: int, ctx: Context) -> list[Case]:
    """`count` cases from `seed`: each a mutation drawn uniformly, built from the same
    random stream (so a seed and a context always give the same bytes)."""
    rng = random.Random(seed)
    g = Gen(rng, ctx)
    names = sorted(MUTATIONS)
    return [build_case(rng.choice(names), g) for _ in range(count)]


# -- reading responses ------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)

    def header(self, name: bytes) -> bytes | None:
        """The last value of a field (name in lower case)."""
        values = [v for n, v in self.headers if n == name]
        return values[-1] if values else None


class Unparsable(Exception):
    """Bytes that are no HTTP/1.x response where one must start (or a broken body)."""


_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})(?: [^\r\n]*)?")
_MAX_RESPONSE_HEAD = 64 * 1024


class ResponseReader:
    """A sans-IO reader of the responses on one connection: `feed()` bytes as they come,
    `close()` at EOF. `head_only[i]` says the i-th final response answers a HEAD. Bodies are
    framed by Transfer-Encoding: chunked, Content-Length, or the close; none for HEAD, 1xx,
    204 and 304. 1xx responses are counted apart (`interim`). Bytes that cannot be parsed
    stop the reader (`broken`) and stay in `leftover`."""

    def __init__(self, head_only: Sequence[bool] = ()) -> None:
        self.head_only = tuple(head_only)
        self.responses: list[Response] = []
        self.interim = 0
        self.broken = False
        self._buf = bytearray()
        self._current: Response | None = None
        self._framing = ""  # "length", "chunked" or "close" while a body is read
        self._left = 0  # body bytes due (length), or of the current chunk
        self._chunk_state = "size"  # "size", "data", "data-end" or "trailer"

    @property
    def pending(self) -> bool:
        """A response has started and is not complete, or unparsed bytes wait."""
        return self._current is not None or bool(self._buf)

    @property
    def leftover(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data
        if self.broken:
            return
        try:
            while self._step():
                pass
        except Unparsable:
            self.broken = True

    def close(self) -> None:
        """The server closed: a body that runs to the close is complete."""
        if not self.broken and self._current is not None and self._framing == "close":
            self._current.body += self._buf
            self._buf.clear()
            self._complete()

    def _step(self) -> bool:
        """Advance by one head or one body; False when more bytes are needed."""
        if self._current is None:
            return self._read_head()
        if self._framing == "length":
            return self._read_length()
        if self._framing == "chunked":
            return self._read_chunked()
        return False  # "close": everything until EOF

    def _read_head(self) -> bool:
        if not self._buf:
            return False
        if not b"HTTP/".startswith(bytes(self._buf[:5])):
            raise Unparsable  # nginx answers HTTP/0.9 with a bare body, for one
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_RESPONSE_HEAD:
                raise Unparsable
            return False
        lines = bytes(self._buf[:end]).split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise Unparsable
        headers = [_header(line) for line in lines[1:]]
        del self._buf[:end + 4]
        response = Response(int(match.group(1)), headers)
        if response.status < 200:
            self.interim += 1
            return True
        self._current = response
        self._frame(response)
        return True

    def _frame(self, response: Response) -> None:
        index = len(self.responses)
        head_only = index < len(self.head_only) and self.head_only[index]
        coding = response.header(b"transfer-encoding")
        length = response.header(b"content-length")
        if head_only or response.status in (204, 304):
            self._complete()
        elif coding is not None and coding.lower().endswith(b"chunked"):
            self._framing, self._chunk_state = "chunked", "size"
        elif length is not None:
            if not length.isdigit():
                raise Unparsable
            self._framing, self._left = "length", int(length)
        else:
            self._framing = "close"

    def _complete(self) -> None:
        assert self._current is not None
        self.responses.append(self._current)
        self._current, self._framing, self._left = None, "", 0

    def _take(self) -> None:
        """Move up to `_left` bytes of the buffer into the current body."""
        assert self._current is not None
        n = min(self._left, len(self._buf))
        self._current.body += self._buf[:n]
        del self._buf[:n]
        self._left -= n

    def _read_length(self) -> bool:
        self._take()
        if self._left:
            return False
        self._complete()
        return True

    def _read_chunked(self) -> bool:
        if self._chunk_state == "data":
            self._take()
            if self._left:
                return False
            self._chunk_state = "data-end"
            return True
        line = self._line()
        if line is None:
            return False
        if self._chunk_state == "size":
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                raise Unparsable
            self._left = int(size_text, 16)
            self._chunk_state = "data" if self._left else "trailer"
        elif self._chunk_state == "data-end":
            if line:
                raise Unparsable
            self._chunk_state = "size"
        elif not line:  # the empty line that ends the trailer section
            self._complete()
        return True

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > _MAX_RESPONSE_HEAD:
                raise Unparsable
            return None
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        return line


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    if not colon:
        raise Unparsable
    return name.strip().lower(), value.strip()


# -- one case on both servers -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one server did with one case."""

    statuses: tuple[int, ...]  # the final responses that arrived whole, in order
    closed: bool  # the server closed the connection (FIN or reset) before the read ended
    leftover: bytes = b""  # the start of what could not be parsed (or an unfinished response)
    leftover_size: int = 0
    interim: int = 0  # 1xx responses
    canary: bool = False  # the canary token was among the bytes received
    error: str = ""  # connecting or sending failed

    @property
    def first(self) -> int | None:
        return self.statuses[0] if self.statuses else None

    @property
    def responses(self) -> int:
        return len(self.statuses)

    @property
    def answers(self) -> int:
        """The responses, and one more for bytes that began an answer but could not be
        parsed or did not finish (nginx answers HTTP/0.9 with a bare body, for one)."""
        return len(self.statuses) + bool(self.leftover_size)

    def describe(self) -> str:
        text = f"statuses {list(self.statuses)}, {'closed' if self.closed else 'open'}"
        if self.interim:
            text += f", {self.interim} interim"
        if self.leftover_size:
            text += f", {self.leftover_size} bytes unparsed: {self.leftover!r}"
        if self.canary:
            text += ", CANARY in the bytes"
        if self.error:
            text += f", {self.error}"
        return text


class Exchange:
    """One case on one server: connect, send the bytes in one write, then read (driven by
    run_case's selector) until the server closes, the expected responses arrived and QUIET
    passed in silence, or the deadline."""

    def __init__(self, port: int, case: Case, token: bytes) -> None:
        self.case, self.token = case, token
        self.reader = ResponseReader(case.heads)
        self.received = bytearray()
        self.closed = False
        self.done = False
        self.error = ""
        self.deadline = time.monotonic() + CASE_DEADLINE
        self.last_byte = time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(CONNECT_TIMEOUT)
            self.sock.connect(("127.0.0.1", port))
        except OSError as err:
            self.error, self.done = f"connect: {err}", True
            return
        try:
            self.sock.sendall(case.data)
        except OSError as err:  # the server may have answered and closed already
            self.error = f"send: {err.__class__.__name__}"
        self.sock.setblocking(False)

    def wake_at(self) -> float:
        """When the read ends if nothing more arrives."""
        answered = len(self.reader.responses) >= self.case.requests and not self.reader.pending
        return min(self.deadline, self.last_byte + QUIET) if answered else self.deadline

    def on_readable(self, now: float) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # reset: the server is gone
            data = b""
        if not data:
            self.closed = self.done = True
            self.reader.close()
            return
        self.received += data
        self.reader.feed(data)
        self.last_byte = now
        if len(self.received) > MAX_RECEIVED:
            self.done = True

    def outcome(self) -> Outcome:
        leftover = self.reader.leftover
        return Outcome(tuple(r.status for r in self.reader.responses), self.closed,
                       leftover[:200], len(leftover), self.reader.interim,
                       self.token in self.received, self.error)


def run_case(case: Case, ports: Mapping[str, int], token: bytes) -> dict[str, Outcome]:
    """Send `case` to every server at once, each on a fresh connection; read both with one
    selector, so a case costs the slower server's time, not the sum."""
    exchanges = {name: Exchange(port, case, token) for name, port in ports.items()}
    try:
        with selectors.DefaultSelector() as selector:
            for ex in exchanges.values():
                if not ex.done:
                    selector.register(ex.sock, selectors.EVENT_READ, ex)
            _drive(selector)
    finally:
        for ex in exchanges.values():
            ex.sock.close()
    return {name: ex.outcome() for name, ex in exchanges.items()}


def _drive(selector: selectors.BaseSelector) -> None:
    """Read every registered exchange until each is done."""
    while True:
        now = time.monotonic()
        live: list[Exchange] = []
        for key in list(selector.get_map().values()):
            ex: Exchange = key.data
            if ex.done or now >= ex.wake_at():
                ex.done = True
                selector.unregister(key.fileobj)
            else:
                live.append(ex)
        if not live:
            return
        timeout = max(0.0, min(ex.wake_at() for ex in live) - now)
        for key, _ in selector.select(timeout):
            ready: Exchange = key.data
            ready.on_readable(time.monotonic())


# -- classification ---------------------------------------------------------------------------

MORE_RESPONSES = "more-responses"  # evserver answered more times than nginx
MORE_THAN_SENT = "more-than-intended"  # evserver answered more times than requests were sent
ACCEPTS_REJECTED = "accepts-rejected"  # evserver 2xx/3xx where nginx said 4xx/5xx
CANARY = "canary"  # "canary-evserver", "canary-nginx": bytes from outside the root
SERIOUS_CLASSES = (MORE_RESPONSES, MORE_THAN_SENT, ACCEPTS_REJECTED, CANARY + "-evserver",
                   CANARY + "-nginx")
OTHER_CLASSES = ("status", "responses", "closed")


def status_key(status: int | None) -> str:
    """What is compared of a first status: the code below 400 (200, 206, 304 and 301 differ
    in meaning), the class from 400 (a 400 against a 414 is the same refusal)."""
    if status is None:
        return "none"
    return str(status) if status < 400 else f"{status // 100}xx"


@dataclass(frozen=True)
class Verdict:
    serious: tuple[str, ...]
    other: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "serious" if self.serious else "other" if self.other else "agreement"


def classify(case: Case, ev: Outcome, ng: Outcome) -> Verdict:
    """The serious findings of a case and, apart, how else the two servers differ."""
    serious = []
    if ev.answers > ng.answers:
        serious.append(MORE_RESPONSES)
    if ev.answers > case.requests:
        serious.append(MORE_THAN_SENT)
    if _accepts(ev.first) and ng.first is not None and ng.first >= 400:
        serious.append(ACCEPTS_REJECTED)
    serious += [f"{CANARY}-{name}" for name, o in (("evserver", ev), ("nginx", ng)) if o.canary]
    other = []
    if status_key(ev.first) != status_key(ng.first):
        other.append("status")
    if ev.answers != ng.answers:
        other.append("responses")
    if ev.closed != ng.closed:
        other.append("closed")
    return Verdict(tuple(serious), tuple(other))


def _accepts(status: int | None) -> bool:
    return status is not None and 200 <= status < 400


# -- the allow-list, read from docs/http-conformance.md ---------------------------------------

ALLOW_START = "<!-- allow-list"
ALLOW_END = "<!-- end of allow-list -->"
RFC_SECTION = re.compile(r"RFC 91(?:10|12) §\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Allowance:
    """A row of the table: a serious finding evserver may cause, and why."""

    mutation: str
    finding: str
    evserver: str
    nginx: str
    why: str


def read_allow_list(text: str) -> list[Allowance]:
    """The rows between the markers: `mutation` | `finding` | evserver | nginx | why. The
    mutation and the finding are in backticks; other rows (header, rule) are skipped."""
    start, end = text.index(ALLOW_START), text.index(ALLOW_END)
    rows = []
    for line in text[start:end].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.fullmatch(r"`[\w-]+`", cells[0]):
            continue
        mutation_name, finding = cells[0].strip("`"), cells[1].strip("`")
        rows.append(Allowance(mutation_name, finding, cells[2], cells[3], cells[4]))
    return rows


def allowed_pairs(rows: Sequence[Allowance]) -> frozenset[tuple[str, str]]:
    """(mutation, finding) pairs a case may show; a canary finding is never allowed."""
    return frozenset((row.mutation, row.finding) for row in rows
                     if not row.finding.startswith(CANARY))


def load_allow_list(path: Path = ALLOW_LIST_DOC) -> frozenset[tuple[str, str]]:
    return allowed_pairs(read_allow_list(path.read_text(encoding="utf-8")))


# -- a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    case: Case
    evserver: Outcome
    nginx: Outcome
    verdict: Verdict
    unallowed: tuple[str, ...]  # the serious findings the allow-list does not name

    def describe(self) -> str:
        detail = f" ({self.case.detail})" if self.case.detail else ""
        return (f"{self.case.name}{detail}: {', '.join(self.verdict.serious or self.verdict.other)}"
                f"\n  case ({self.case.requests} request(s)): {self.case.data[:600]!r}"
                f"{' ...' if len(self.case.data) > 600 else ''}"
                f"\n  evserver: {self.evserver.describe()}\n  nginx:    {self.nginx.describe()}")


def judge(case: Case, outcomes: Mapping[str, Outcome],
          allow: frozenset[tuple[str, str]]) -> Result:
    ev, ng = outcomes["evserver"], outcomes["nginx"]
    verdict = classify(case, ev, ng)
    unallowed = tuple(f for f in verdict.serious if (case.name, f) not in allow)
    return Result(case, ev, ng, verdict, unallowed)


@dataclass
class Report:
    seed: int
    results: list[Result]
    seconds: float
    unstable: int = 0  # serious findings not allowed that a second try did not repeat

    def kind(self, kind: str) -> list[Result]:
        return [r for r in self.results if r.verdict.kind == kind]

    def unallowed(self) -> list[Result]:
        return [r for r in self.results if r.unallowed]


def run_cases(cases: Sequence[Case], ports: Mapping[str, int], token: bytes, jobs: int,
              allow: frozenset[tuple[str, str]]) -> list[Result]:
    """Every case on both servers, `jobs` at a time, in the order of `cases`."""
    with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="difftest") as pool:
        outcomes = pool.map(lambda case: run_case(case, ports, token), cases)
        return [judge(case, out, allow) for case, out in zip(cases, outcomes, strict=True)]


def confirm(results: list[Result], ports: Mapping[str, int], token: bytes, jobs: int,
            allow: frozenset[tuple[str, str]]) -> int:
    """Run again every case with a serious finding not allowed, and keep the second result
    when it differs: on a loaded machine a server may miss the deadline once, and the
    other then seems to answer more. Returns how many changed."""
    suspects = [i for i, r in enumerate(results) if r.unallowed]
    again = run_cases([results[i].case for i in suspects], ports, token, jobs, allow)
    changed = 0
    for i, second in zip(suspects, again, strict=True):
        if second.unallowed != results[i].unallowed:
            results[i] = second
            changed += 1
    return changed


def run(count: int, seed: int, jobs: int = 8, folder: Path | None = None,
        evserver_source: Path = REPO) -> Report:
    """Fixture, servers, `count` cases from `seed`, judged against the allow-list."""
    allow = load_allow_list()
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="difftest-")))
        fixture = make_fixture(folder)
        servers = stack.enter_context(running_servers(folder, fixture.root, evserver_source))
        ports = {name: servers[name].port for name in SERVERS}
        started = time.monotonic()
        cases = generate(seed, count, probe_context(ports))
        results = run_cases(cases, ports, fixture.token, jobs, allow)
        unstable = confirm(results, ports, fixture.token, jobs, allow)
        return Report(seed, results, time.monotonic() - started, unstable)


def _counts(items: Iterable[str], indent: str = "    ") -> str:
    """One line per distinct item, the most frequent first."""
    ranked = Counter(items).most_common()
    return "\n".join(f"{indent}{n:6}  {key}" for key, n in ranked) or f"{indent}(none)"


def summary(report: Report, show: int) -> str:
    serious = report.kind("serious")
    unallowed = report.unallowed()
    allowed = [r for r in serious if not r.unallowed]
    other = report.kind("other")
    lines = [
        f"cases: {len(report.results)} (seed {report.seed}, {report.seconds:.1f} s)",
        f"agreements: {len(report.kind('agreement'))}",
        f"serious: {len(serious)} ({len(allowed)} allowed, {len(unallowed)} not allowed; "
        f"{report.unstable} changed when run again)",
        "  not allowed, by class:", _counts([f for r in unallowed for f in r.unallowed]),
        "  not allowed, by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.unallowed)}" for r in unallowed]),
        "  allowed, by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.verdict.serious)}" for r in allowed]),
        f"other: {len(other)}",
        "  by class:", _counts([c for r in other for c in r.verdict.other]),
        "  by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.verdict.other)}" for r in other]),
    ]
    if unallowed and show:
        lines.append(f"the first {min(show, len(unallowed))} serious findings not allowed:")
        lines += [r.describe() for r in unallowed[:show]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.fuzz.differential",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000, help="cases to run (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1)")
    parser.add_argument("--jobs", type=int, default=8, help="cases at once (default 8)")
    parser.add_argument("--show", type=int, default=10,
                        help="print this many unallowed serious findings in full (default 10)")
    parser.add_argument("--evserver-source", type=Path, default=REPO, metavar="DIR",
                        help="run the evserver of another checkout (default: this one)")
    o = parser.parse_args(argv)
    report = run(o.count, o.seed, o.jobs, evserver_source=o.evserver_source.resolve())
    print(summary(report, o.show))
    return 1 if report.unallowed() else 0


if __name__ == "__main__":
    sys.exit(main())
