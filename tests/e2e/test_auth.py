"""End to end: Basic authentication with curl and http.client, an auth file made with
`python3 -m evserver hash-password`, and a bad auth file refused at start."""
from __future__ import annotations

import base64
import http.client
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, RunningServer, ServerProcess, spawn, wait_for
from tests.tools import need_tool


def curl_status(port: int, *args: str) -> str:
    curl = need_tool("curl")
    out = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", *args,
                          f"http://127.0.0.1:{port}/hello.txt"],
                         capture_output=True, text=True, timeout=10)
    return out.stdout


def test_curl_with_and_without_the_password(start_server: Callable[..., RunningServer]) -> None:
    running = start_server(auth=("alice:wonder land:x",))  # the password has a colon
    assert curl_status(running.port) == "401"
    assert curl_status(running.port, "-u", "alice:wonder land:x") == "200"
    assert curl_status(running.port, "-u", "alice:wrong") == "401"


def test_http_client_keeps_the_connection_through_a_401(
        start_server: Callable[..., RunningServer]) -> None:
    """A 401 does not close the connection: the retry with credentials reuses it."""
    running = start_server(auth=("bob:builder",))
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    conn.request("GET", "/hello.txt")
    first = conn.getresponse()
    first.read()
    assert first.status == 401 and "Basic" in (first.getheader("WWW-Authenticate") or "")
    token = base64.b64encode(b"bob:builder").decode()
    conn.request("GET", "/hello.txt", headers={"Authorization": f"Basic {token}"})
    second = conn.getresponse()
    assert second.status == 200 and second.read() == b"hello, world\n"
    conn.close()


def test_hash_password_makes_an_auth_file_line(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """`hash-password --stdin` prints a salted hash; with it in --auth-file the login works
    and the plain password is nowhere on the command line."""
    made = subprocess.run([sys.executable, "-m", "evserver", "hash-password", "--stdin"],
                          input="s3cret pass\n", capture_output=True, text=True, cwd=REPO,
                          timeout=30)
    assert made.returncode == 0, made.stderr
    hashed = made.stdout.strip()
    assert hashed.startswith("scrypt$") and "s3cret" not in hashed
    auth_file = tmp_path / "users"
    auth_file.write_text(f"# team\ncarol:{hashed}\n")
    sp = start_process("--auth-file", str(auth_file))
    assert curl_status(sp.port, "-u", "carol:s3cret pass") == "200"
    assert curl_status(sp.port, "-u", "carol:s3cret") == "401"
    assert sp.terminate() == 0
    assert "failed login" in sp.stderr()


@pytest.mark.parametrize("content", ["carol\n", "carol:not-a-hash\n"])
def test_bad_auth_file_is_a_one_line_error(tmp_path: Path, content: str) -> None:
    auth_file = tmp_path / "users"
    auth_file.write_text(content)
    proc, stderr_path = spawn(["--port", "0", "--no-log", "--auth-file", str(auth_file)],
                              tmp_path)
    assert proc.wait(15) == 2
    lines = stderr_path.read_text().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0] and "line 1" in lines[0], lines


def test_sighup_rereads_the_auth_file(start_process: Callable[..., ServerProcess],
                                      tmp_path: Path) -> None:
    """A user added to --auth-file can log in after SIGHUP; a broken file then keeps the
    users it had and says so on stderr."""
    def hashed(password: str) -> str:
        return subprocess.run([sys.executable, "-m", "evserver", "hash-password", "--stdin"],
                              input=password + "\n", capture_output=True, text=True,
                              cwd=REPO, timeout=30, check=True).stdout.strip()
    auth_file = tmp_path / "users"
    auth_file.write_text(f"carol:{hashed('one')}\n")
    sp = start_process("--auth-file", str(auth_file))
    assert curl_status(sp.port, "-u", "dave:two") == "401"
    auth_file.write_text(f"carol:{hashed('one')}\ndave:{hashed('two')}\n")
    sp.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: curl_status(sp.port, "-u", "dave:two") == "200")
    auth_file.write_text("dave\n")  # broken
    sp.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "auth file not reloaded" in sp.stderr())
    assert curl_status(sp.port, "-u", "dave:two") == "200"
    assert sp.terminate() == 0
