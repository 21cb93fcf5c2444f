"""Hostile request targets against a real `python -m evserver` process (issue #4, point 3).

The document root `base/root/` sits next to `base/outside/secret.txt`, which holds a unique
marker; `/etc/passwd` holds `root:x:`. No spelling of a traversal may ever return either:
the answer is 400 or 404, never 200 with outside content and never 5xx. The traversal
table runs against a default process and against one started with `--follow-symlinks`,
where the lexical check in `resolve_target` is the only guard left (the realpath check in
`load` is switched off by that flag). Control characters and CRLF in the target must never
inject a response header or an access-log line.
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import spawn
from tests.wire import connect, request

MARKER = f"OUTSIDE-MARKER-{uuid.uuid4().hex}".encode()
PASSWD = b"root:x:"
HELLO = b"hello from inside\n"
# An existing directory whose name carries a CRLF and a header: its 301 Location must
# come out percent-encoded, never as a second header.
EVIL_DIR = "evil\r\nSet-Cookie: x=1"

# Combined Log Format + duration, with the escaping evserver promises (\xHH, no raw `"`).
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f]|\\x[0-9A-F]{2})*"'
_LOG_LINE = re.compile(
    r"^\S+ - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "
    rf"(?:{_QUOTED}|\"-\") \d{{3}} \d+ (?:{_QUOTED}|\"-\") (?:{_QUOTED}|\"-\") \d+\.\d{{3}}$")
# RFC 9110 §5: a field line is a token, a colon, and visible characters, SP or HTAB.
_FIELD_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*")


def build_tree(base: Path) -> Path:
    """base/root (the docroot, with traps) next to base/outside (the marker)."""
    root = base / "root"
    outside = base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(MARKER + b"\n")
    (base / "secret.txt").write_bytes(MARKER + b"\n")  # right next to the root, too
    (root / "hello.txt").write_bytes(HELLO)
    (root / "sub").mkdir()
    (root / "sub" / "page.html").write_bytes(b"<p>page</p>\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(b"[core] GIT-CONFIG-MARKER\n")
    (root / ".env").write_bytes(b"SECRET_KEY=ENV-MARKER\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x").write_bytes(b"HIDDEN-MARKER\n")
    (root / "sub" / ".dot-in-sub").write_bytes(b"HIDDEN-MARKER\n")
    (root / "visible-link").symlink_to(".env")  # a plain name that leads to a dotfile
    (root / "out-link").symlink_to(Path("..") / "outside" / "secret.txt")
    (root / "out-dir").symlink_to(Path("..") / "outside")
    (root / "abs-passwd").symlink_to("/etc/passwd")
    (root / EVIL_DIR).mkdir()
    (root / EVIL_DIR / "index.html").write_bytes(b"<p>evil dir</p>\n")
    return root


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path


@contextmanager
def launch(base: Path, *extra: str) -> Iterator[Proc]:
    """A server process on an ephemeral port; killed (by its pid) at teardown."""
    log_path = base / f"access-{uuid.uuid4().hex[:8]}.log"
    proc, stderr_path = spawn(["--host", "127.0.0.1", "--port", "0", "--root",
                               str(base / "root"), "--log", str(log_path), *extra], base)
    try:
        deadline = time.monotonic() + 15
        while True:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", stderr_path.read_text())
            if match:
                break
            assert proc.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, "no banner within 15 s"
            time.sleep(0.05)
        yield Proc(proc, int(match.group(1)), log_path)
        assert proc.poll() is None, "the server died: " + stderr_path.read_text()
        proc.send_signal(signal.SIGTERM)  # a clean stop flushes the access log
        assert proc.wait(10) == 0
        assert "Traceback" not in stderr_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    build_tree(base)
    return base


@pytest.fixture(scope="module", params=["default", "follow-symlinks"])
def srv(request: pytest.FixtureRequest, tree: Path) -> Iterator[Proc]:
    """One process per policy, shared by the table-driven tests of this module."""
    extra = ("--follow-symlinks",) if request.param == "follow-symlinks" else ()
    with launch(tree, *extra) as proc:
        yield proc


def raw_request(port: int, target: bytes, headers: str = "") -> bytes:
    """Send one GET with `target` verbatim and return every byte until the server closes."""
    with connect(port, timeout=5) as sock:
        sock.sendall(request(target, host="x", headers=headers, close=True))
        return _read_until_close(sock)


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert match, f"not an HTTP/1.1 response: {raw[:120]!r}"
    return int(match.group(1))


def head_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")[1:]


# -- traversal -------------------------------------------------------------------------------

_DOTS = [
    "/../outside/secret.txt",
    "/../secret.txt",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/%2E%2e%2Foutside%2Fsecret.txt",
    "/%2e%2E%2foutside/secret.txt",
    "/..%2foutside%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%252e%252e%252foutside/secret.txt",
    "/%252e%252e/outside/secret.txt",
    "/..%252f..%252fetc/passwd",
    "/..\\outside\\secret.txt",
    "/\\..\\secret.txt",
    "/..%5coutside%5csecret.txt",
    "/%5c..%5c..%5cetc/passwd",
    "/..%5Csecret.txt",
    "/..%255csecret.txt",
    "//etc/passwd",
    "///etc//passwd",
    "//../secret.txt",
    "/./../outside/secret.txt",
    "/././../secret.txt",
    "/.%2e/outside/secret.txt",
    "/%2e./outside/secret.txt",
    "/sub/../../outside/secret.txt",
    "/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/sub/..%2f..%2foutside/secret.txt",
    "/out-dir/../../outside/secret.txt",
    "/out-dir/%2e%2e/%2e%2e/secret.txt",
    "/%c0%ae%c0%ae/outside/secret.txt",
    "/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/%e0%80%ae%e0%80%ae/outside/secret.txt",
    "/%e0%80%ae%e0%80%ae%e0%80%afsecret.txt",
    "/%f0%80%80%ae%f0%80%80%ae/secret.txt",
    "/%c1%9c..%c1%9csecret.txt",
    "/%ef%bc%8e%ef%bc%8e/secret.txt",
    "/%u002e%u002e/secret.txt",
    "/../outside/secret.txt%00",
    "/../outside/secret.txt%00.html",
    "/hello.txt%00.html",
    "/hello.txt%00",
    "/%00/../secret.txt",
    "/.%00./secret.txt",
    "/../outside/secret.txt.",
    "/../secret.txt...",
    "/.../secret.txt",
    "/..../outside/secret.txt",
    "/hello.txt.",
    "/hello.txt/",
    "/../outside/secret.txt/",
    "/../outside/",
    "/..",
    "/../",
    "/%2e%2e",
    "/outside/secret.txt",
    "/etc/passwd",
    "/;/../../secret.txt",
    "/..;/secret.txt",
    "/%2e%2e;/secret.txt",
    "/C:/Windows/win.ini",
    "/..%c0%afsecret.txt",
    "http://x/../../etc/passwd",
    "http://x/%2e%2e/outside/secret.txt",
    "HTTP://x/..%2f..%2fetc%2fpasswd",
    "http://../../etc/passwd",
    "http://x/../secret.txt?q=1",
    "/" + "../" * 60 + "etc/passwd",
    "/" + "%2e%2e%2f" * 60 + "etc/passwd",
    "/" + "..%2F" * 200 + "etc/passwd",
    "/sub/" + "..%5c" * 40 + "etc/passwd",
    "/" + "a/../" * 50 + "../secret.txt",
]


def _short(target: str) -> str:
    return target if len(target) <= 60 else f"{target[:30]}...({len(target)} chars)"


@pytest.mark.parametrize("target", _DOTS, ids=_short)
def test_traversal_never_leaves_the_root(srv: Proc, target: str) -> None:
    """Every traversal spelling is answered 400 or 404, without outside content."""
    raw = raw_request(srv.port, target.encode())
    assert MARKER not in raw
    assert PASSWD not in raw
    assert status_of(raw) in (400, 404)


@pytest.mark.parametrize("target", ["/hello.txt?/../../etc/passwd",
                                    "/hello.txt?x=%2e%2e%2f..%2fsecret.txt",
                                    "/hello.txt#/../../secret.txt",
                                    "/sub/../hello.txt", "/sub/%2e%2e/hello.txt",
                                    "http://x/sub/..%2fhello.txt"])
def test_dots_in_query_fragment_or_inside_the_root_serve_the_inside_file(
        srv: Proc, target: str) -> None:
    """`..` in the query or fragment is not path syntax; `..` that stays inside is resolved."""
    raw = raw_request(srv.port, target.encode())
    assert status_of(raw) == 200
    assert raw.endswith(b"\r\n\r\n" + HELLO)


def test_the_marker_is_where_the_traversals_point(tree: Path) -> None:
    """The table can see a leak: `root/../outside/secret.txt` really holds the marker."""
    assert (tree / "root" / ".." / "outside" / "secret.txt").read_bytes().startswith(MARKER)
    assert (tree / "root" / ".." / "secret.txt").read_bytes().startswith(MARKER)


# -- dotfiles and symlinks -------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/.git/config", "/.git/", "/.git", "/.env", "/.hidden/x",
                                    "/.hidden/", "/%2egit/config", "/%2Eenv",
                                    "/sub/../.env", "/sub/.dot-in-sub", "/visible-link",
                                    "/.git%2fconfig", "/sub/..%2f.env"])
def test_dotfiles_and_dot_directories_are_404(srv: Proc, target: str) -> None:
    """A dot segment in any spelling, or a symlink to a dotfile, is 404 without content."""
    raw = raw_request(srv.port, target.encode())
    assert status_of(raw) == 404
    assert b"MARKER" not in raw


@pytest.mark.parametrize("target", ["/out-link", "/out-dir/secret.txt", "/abs-passwd"])
def test_symlink_out_of_the_root_follows_the_policy(srv: Proc, request: pytest.FixtureRequest,
                                                    target: str) -> None:
    """A symlink leading out of the root is 404 by default, served with --follow-symlinks."""
    raw = raw_request(srv.port, target.encode())
    leaked = MARKER in raw or PASSWD in raw
    if request.node.callspec.params["srv"] == "follow-symlinks":
        assert status_of(raw) == 200 and leaked
    else:
        assert status_of(raw) == 404 and not leaked


# -- control characters and CRLF: no header, no log line injected ----------------------------

_ENCODED_CRLF = [
    (b"/a%0d%0aSet-Cookie:%20x=1", 404),
    (b"/a%0aevil", 404),
    (b"/a%0devil", 404),
    (b"/a%0D%0A%0D%0A<html>injected", 404),
    (b"/a%0d%0aX-Injected:%201%0d%0a%0d%0abody", 404),
    (b"/a%1b[31mred", 404),
    (b"/a%7f%08%09b", 404),
    (b"/evil%0d%0aSet-Cookie:%20x=1", 301),  # an existing directory: Location is encoded
    (b"/sub?x%0d%0aSet-Cookie:%20x=1", 301),
    (b"/sub?x%0aSet-Cookie:%20x=1", 301),
]
# Raw control bytes in the target (RFC 9112 §3.2 allows none): 400. The parser's verdict on
# each control byte is in tests/unit/test_http11.py; these few show that the 400 and its
# log line carry nothing raw: a terminal escape, a CR before a header, a NUL.
_RAW_CONTROL = [b"/a\x1b[31mred", b"/a\rSet-Cookie:%20x=1", b"/a\x00b"]


def _assert_no_injection(raw: bytes) -> None:
    lines = head_lines(raw)
    for line in lines:
        assert _FIELD_LINE.fullmatch(line), f"malformed response header line {line!r}"
    names = [line.split(b":", 1)[0].lower() for line in lines]
    assert b"set-cookie" not in names and b"x-injected" not in names
    location = [line for line in lines if line.lower().startswith(b"location:")]
    for line in location:
        assert not re.search(rb"[\x00-\x1f\x7f]", line)


def test_crlf_and_control_characters_inject_no_header_and_no_log_line(tree: Path) -> None:
    """Encoded CRLF gets a plain 404/301 with only well-formed header lines (a Location
    stays percent-encoded); raw control bytes in the target get 400; the log has exactly
    one combined-format line per request, whatever the target or User-Agent held."""
    with launch(tree) as proc:
        sent = 0
        for target, expected in _ENCODED_CRLF:
            raw = raw_request(proc.port, target)
            sent += 1
            assert status_of(raw) == expected, target
            _assert_no_injection(raw)
            if expected == 301:
                (location,) = [ln for ln in head_lines(raw) if ln.lower().startswith(b"location:")]
                assert b"%0A" in location.upper()  # the LF stays percent-encoded
        for target in _RAW_CONTROL:
            raw = raw_request(proc.port, target)
            sent += 1
            assert status_of(raw) == 400, target
            _assert_no_injection(raw)
        # A raw LF ends the request line early: the rest is a malformed header, not a field.
        for data in (b"GET /a\nSet-Cookie: x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /a HTTP/1.1\r\nHost: x\r\nX: 1\rSet-Cookie: x=1\r\n\r\n"):
            with connect(proc.port, timeout=5) as sock:
                sock.sendall(data)
                raw = _read_until_close(sock)
            sent += 1
            assert status_of(raw) == 400
            _assert_no_injection(raw)
        # Quotes, backslashes and non-ASCII in logged fields must not break the quoting.
        ua = 'evil" 200 0 "-" "x\\" \xff\xfe end'  # sent as latin-1: bytes ff fe
        raw = raw_request(proc.port, b"/hello.txt?q=%22%0d%0a",
                          "User-Agent: " + ua + "\r\nReferer: \"\\\r\n")
        sent += 1
        assert status_of(raw) == 200
        _assert_no_injection(raw)
    log = proc.log_path.read_bytes()
    assert re.search(rb"[\x00-\x09\x0b-\x1f\x7f-\xff]", log) is None, "raw control byte logged"
    lines = log.decode("ascii").splitlines()
    assert len(lines) == sent, "\n".join(lines)
    for line in lines:
        assert _LOG_LINE.fullmatch(line), f"not a combined-format line: {line!r}"
    assert not any(line.startswith(("Set-Cookie", "X-Injected", "<html>")) for line in lines)


def _read_until_close(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out
