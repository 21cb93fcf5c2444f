"""Shared fixtures: a generated document root, a server in a thread, a server process."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from evserver.config import Config
from evserver.log import AccessLog
from evserver.server import Server

REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
BIG_SIZE = 3 * 1024 * 1024 + 12345  # larger than cache_max_entry: streamed with sendfile


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A document root: small and large files, a subfolder, a custom 404, traps."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!doctype html><title>home</title><p>home</p>\n")
    (root / "hello.txt").write_text("hello, world\n")
    (root / "data.json").write_text('{"ok": true}\n')
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "sub" / "page.html").write_text("<p>page</p>\n")
    (root / "404.html").write_text("<h1>custom not found</h1>\n")
    (root / ".secret").write_text("dotfile\n")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "medium.bin").write_bytes(os.urandom(200 * 1024))
    (root / "space name.txt").write_text("spaced\n")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "passwd").write_text("root:x:0:0\n")
    (root / "escape").symlink_to(outside / "passwd")
    (root / "inside-link.txt").symlink_to(root / "hello.txt")
    return root


@dataclass
class RunningServer:
    server: Server
    thread: threading.Thread
    log_path: Path

    @property
    def port(self) -> int:
        return self.server.address[1]

    def stop(self, timeout: float = 15.0) -> None:
        if self.thread.is_alive():
            self.server.loop.call_soon_threadsafe(self.server.stop)
            self.thread.join(timeout)
        assert not self.thread.is_alive(), "server did not stop"
        self.server.access_log.close()

    def log_lines(self) -> list[str]:
        """The access log, after stopping the server (which flushes it)."""
        self.stop()
        return self.log_path.read_text().splitlines()


@pytest.fixture
def start_server(site: Path, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start `Server` in a thread on 127.0.0.1:0; keyword arguments override Config fields."""
    running: list[RunningServer] = []

    def start(**overrides: object) -> RunningServer:
        cfg = replace(Config(host="127.0.0.1", port=0, docroot=str(site), threads=4),
                      **overrides)  # type: ignore[arg-type]
        log_path = tmp_path / f"access-{len(running)}.log"
        server = Server(cfg, access_log=AccessLog.open(str(log_path)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        rs = RunningServer(server, thread, log_path)
        running.append(rs)
        return rs

    yield start
    for rs in running:
        rs.stop()


@pytest.fixture
def server(start_server: Callable[..., RunningServer]) -> RunningServer:
    return start_server()


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stderr_path: Path

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text()


def spawn(args: list[str], tmp_path: Path, **popen: object) -> tuple[subprocess.Popen[bytes], Path]:
    """Run `python -m evserver ARGS` with its output in files (never an unread pipe)."""
    stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with open(stderr_path, "wb") as err, open(os.devnull, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "evserver", *args], cwd=REPO,
                                stdout=out, stderr=err, **popen)  # type: ignore[call-overload]
    return proc, stderr_path


@pytest.fixture
def start_process(site: Path, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `python -m evserver` on an ephemeral port; the port is read from its banner."""
    procs: list[ServerProcess] = []

    def start(*extra: str, root: Path | None = None) -> ServerProcess:
        log_path = tmp_path / f"proc-access-{len(procs)}.log"
        args = ["--host", "127.0.0.1", "--port", "0", "--root", str(root or site),
                "--log", str(log_path), *extra]
        proc, stderr_path = spawn(args, tmp_path)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", stderr_path.read_text())
            if match:
                sp = ServerProcess(proc, int(match.group(1)), log_path, stderr_path)
                procs.append(sp)
                return sp
            if proc.poll() is not None:
                raise RuntimeError(f"evserver exited: {stderr_path.read_text()}")
            time.sleep(0.05)
        proc.kill()
        raise RuntimeError("evserver printed no URL within 15 s")

    yield start
    for sp in procs:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait(10)
