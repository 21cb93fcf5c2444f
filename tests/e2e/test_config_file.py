"""`--config FILE` and `--check-config`, run as real `python -m evserver` processes."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, spawn
from tests.wire import get


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evserver", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=15)


def wait_port(proc: subprocess.Popen[bytes], stderr_path: Path) -> int:
    """The port in the banner's loopback URL (as tests/conftest.py reads it)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", stderr_path.read_text())
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"evserver exited: {stderr_path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no banner: {stderr_path.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test listens on: anyone else's bind to it fails."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A folder holding a site of its own, next to where its config file will go."""
    folder = tmp_path / "conf"
    (folder / "site").mkdir(parents=True)
    (folder / "site" / "only-here.txt").write_text("served from the file's root\n")
    return folder


def test_serves_with_the_files_root_port_and_log(conf_dir: Path, tmp_path: Path) -> None:
    """A file alone sets host, port 0, root and log; relative paths are from its folder
    (the process runs elsewhere)."""
    path = conf_dir / "evserver.toml"
    path.write_text('host = "127.0.0.1"\nport = 0\nroot = "site"\nlog = "access.log"\n'
                    "max_connections = 50\n")
    proc, stderr_path = spawn(["--config", str(path)], tmp_path)
    try:
        port = wait_port(proc, stderr_path)
        resp = get(port, "/only-here.txt")
        assert resp.status == 200
        assert resp.body == b"served from the file's root\n"
    finally:
        assert stop(proc) == 0
    assert "GET /only-here.txt" in (conf_dir / "access.log").read_text()


def test_flag_overrides_the_files_port(conf_dir: Path, tmp_path: Path, held_port: int) -> None:
    """The file names a port already taken; --port 0 on the command line wins, so it serves."""
    path = conf_dir / "evserver.toml"
    path.write_text(f'host = "127.0.0.1"\nport = {held_port}\nroot = "site"\nno-log = true\n')
    failed = run_cli("--config", str(path))
    assert failed.returncode == 2 and str(held_port) in failed.stderr  # the file's port is used
    proc, stderr_path = spawn(["--config", str(path), "--port", "0"], tmp_path)
    try:
        port = wait_port(proc, stderr_path)
        assert port != held_port
        assert get(port, "/only-here.txt").status == 200
    finally:
        assert stop(proc) == 0


def test_check_config_binds_nothing_and_opens_no_log(conf_dir: Path, held_port: int) -> None:
    """--check-config on a port someone listens on still exits 0 (no bind attempted),
    prints that port, and creates no log file; the same options without it fail to bind."""
    path = conf_dir / "evserver.toml"
    path.write_text(f'host = "127.0.0.1"\nport = {held_port}\nroot = "site"\n'
                    'log = "access.log"\npidfile = "ev.pid"\n')
    result = run_cli("--check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = tomllib.loads(result.stdout)
    assert data["port"] == held_port
    assert data["root"] == str(conf_dir / "site")
    assert data["log"] == str(conf_dir / "access.log")
    assert not (conf_dir / "access.log").exists()
    assert not (conf_dir / "ev.pid").exists()
    control = run_cli("--config", str(path))
    assert control.returncode == 2 and str(held_port) in control.stderr


def test_check_config_port_stays_free(conf_dir: Path) -> None:
    """After --check-config with a free port, that port can be bound without SO_REUSEADDR."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("--check-config", "--host", "127.0.0.1", "--port", str(port),
                     "--root", str(conf_dir / "site"), "--no-log")
    assert result.returncode == 0, result.stderr
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_check_config_output_is_accepted_back(conf_dir: Path, tmp_path: Path) -> None:
    """The printed configuration, saved and passed to --config, prints the same again."""
    first = run_cli("--check-config", "--root", str(conf_dir / "site"), "--no-log",
                    "--header", "X-A: b", "--mime-type", ".foo=text/plain", "--threads", "3",
                    "--status-path", "/_status", "--cors", "--workers", "2")
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "saved.toml"
    saved.write_text(first.stdout)
    second = run_cli("--check-config", "--config", str(saved))
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    data = tomllib.loads(second.stdout)
    assert data["header"] == ["X-A: b"] and data["threads"] == 3 and data["no-log"] is True


@pytest.mark.parametrize(("text", "needles"), [
    ("port = 80\nbogus = 1\n", ["unknown key 'bogus'"]),
    ('port = "80"\n', ["port must be an integer, not '80'"]),
    ('status-path = "x"\n', ["status-path must start with /, not 'x'"]),
    ("port = 80\n\nhost = \n", ["line 3"]),
])
@pytest.mark.parametrize("check", [False, True])
def test_bad_file_is_one_line_exit_2(tmp_path: Path, text: str, needles: list[str],
                                     check: bool) -> None:
    """A bad file, with or without --check-config: exit 2, one line with the file name."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_cli("--config", str(path), *(["--check-config"] if check else []))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"evserver: error: {path}: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("text", [
    'tls-cert = "missing.pem"\ntls-key = "missing.key"\n',
    'auth-file = "users"\n',
    "prot = 8080\n",
])
def test_file_values_refused_at_check_and_at_start_alike(conf_dir: Path, text: str) -> None:
    """A value from the file is named by the file and its key, the same way by --check-config
    and by a real start (which checks the disk before binding)."""
    path = conf_dir / "evserver.toml"
    path.write_text('host = "127.0.0.1"\nport = 0\nroot = "site"\nno-log = true\n' + text)
    lines = []
    for extra in (["--check-config"], []):
        result = run_cli("--config", str(path), *extra)
        assert result.returncode == 2, result.stderr
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
        lines.append(result.stderr.strip())
    assert lines[0] == lines[1]
    key = text.split(" ", 1)[0]
    assert lines[0].startswith(f"evserver: error: {path}: "), lines[0]
    if key == "prot":
        assert lines[0].endswith("unknown key 'prot' (did you mean 'port'?)")
    else:
        assert f": {key} '{conf_dir}/" in lines[0] and "cannot be read" in lines[0]
