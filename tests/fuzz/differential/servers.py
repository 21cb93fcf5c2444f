"""The servers: nginx and evserver, both on 127.0.0.1 and on the fixture's root, started and
stopped by the ids of the processes this package started.

nginx is Debian's nginx-light: one process, its own configuration, everything in the temp
folder. evserver is `python3 -m evserver` from this checkout (or another one).
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SERVERS = ("evserver", "nginx")

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
