"""End to end: --pidfile, as systemd units and logrotate scripts use it."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, spawn, wait_for
from tests.wire import get


def test_pidfile_holds_the_pid_while_serving_and_goes_at_exit(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    pidfile = tmp_path / "run" / "evserver.pid"
    pidfile.parent.mkdir()
    sp = start_process("--pidfile", str(pidfile))
    assert pidfile.read_text() == f"{sp.proc.pid}\n"
    assert sp.terminate(signal.SIGTERM) == 0
    assert not pidfile.exists()


def test_sighup_via_the_pidfile_reopens_the_log(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """What contrib/logrotate does: move the log, `kill -HUP $(cat pidfile)`, and the
    next request lands in a new file at the old path."""
    pidfile = tmp_path / "evserver.pid"
    sp = start_process("--pidfile", str(pidfile))
    assert get(sp.port, "/hello.txt").status == 200
    wait_for(lambda: sp.log_path.exists() and sp.log_path.stat().st_size > 0)
    sp.log_path.rename(tmp_path / "rotated.log")
    os.kill(int(pidfile.read_text()), signal.SIGHUP)
    wait_for(lambda: sp.log_path.exists())
    assert get(sp.port, "/hello.txt").status == 200
    assert wait_for(lambda: "GET /hello.txt" in sp.log_path.read_text())
    assert sp.terminate() == 0


def test_unwritable_pidfile_is_a_one_line_error(tmp_path: Path) -> None:
    proc, stderr_path = spawn(["--port", "0", "--no-log", "--pidfile",
                               str(tmp_path / "missing-dir" / "x.pid")], tmp_path)
    assert proc.wait(15) == 2
    lines = stderr_path.read_text().strip().splitlines()
    assert len(lines) == 1 and "--pidfile" in lines[0] and "missing-dir" in lines[0]
    assert "Traceback" not in lines[0]


@pytest.mark.parametrize("workers", ["2"])
def test_pidfile_with_workers_is_the_supervisors(
        start_process: Callable[..., ServerProcess], tmp_path: Path, workers: str) -> None:
    """With --workers, the pid file names the supervisor (signals go to it), and it
    alone removes the file."""
    pidfile = tmp_path / "evserver.pid"
    sp = start_process("--workers", workers, "--pidfile", str(pidfile))
    assert pidfile.read_text() == f"{sp.proc.pid}\n"
    assert sp.terminate() == 0
    assert not pidfile.exists()
