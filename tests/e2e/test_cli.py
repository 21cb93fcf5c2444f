"""The command line, run as real subprocesses: help, start-up errors, banner, log to stdout."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess, spawn
from tests.tools import need_tool
from tests.wire import get

_ACCESS_RE = re.compile(r'^\S+ - - \[[^]]+\] "GET (\S+) HTTP/1\.1" (\d{3}) (\d+) "[^"]*" "[^"]*" '
                        r"\d+\.\d{3}$")


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evserver", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=15)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2, exactly one stderr line starting `evserver: error:`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("evserver: error:"), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def wait_banner(proc: subprocess.Popen[bytes], stderr_path: Path, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = stderr_path.read_text()
        if "press Ctrl+C" in text:
            match = re.search(pattern, text)
            assert match, text
            return match
        assert proc.poll() is None, text
        time.sleep(0.05)
    raise AssertionError(f"no banner: {stderr_path.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


def test_help_exits_zero_and_lists_options() -> None:
    """--help-all exits 0 and names every option."""
    result = run_cli("--help-all")
    assert result.returncode == 0
    for option in ("--host", "--port", "--root", "--log", "--no-log", "--threads",
                   "--max-connections", "--header-timeout", "--shutdown-grace"):
        assert option in result.stdout, option
    assert result.stderr == ""


def test_short_help_fits_one_screen() -> None:
    """--help at 80 columns: at most 40 lines; the usage, the everyday options, the two
    commands, and a last line pointing to --help-all and docs/options.md."""
    result = subprocess.run([sys.executable, "-m", "evserver", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=15,
                            env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 40, result.stdout
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("usage: evserver")
    for word in ("-p PORT, --port PORT", "-b ADDR, --host ADDR", "-d DIR, --root DIR",
                 "--log FILE", "--tls-self-signed", "--config FILE", "--version",
                 "stats LOGFILE", "hash-password"):
        assert word in result.stdout, word
    assert "--threads" not in result.stdout and "--header-timeout" not in result.stdout
    assert "--help-all" in lines[-1] and "docs/options.md" in lines[-1]


def test_version() -> None:
    from evserver import __version__
    result = run_cli("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"evserver {__version__}\n"


def test_short_flags_serve(site: Path, tmp_path: Path) -> None:
    """-b, -p and -d, as `python -m http.server` spells them."""
    proc, stderr_path = spawn(["-b", "127.0.0.1", "-p", "0", "-d", str(site), "--no-log"],
                              tmp_path)
    try:
        port = int(wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/").group(1))
        assert get(port, "/hello.txt").body == b"hello, world\n"
    finally:
        assert stop(proc) == 0


def test_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    """A port someone else listens on: exit 2, one error line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--host", "127.0.0.1", "--port", str(port),
                         "--log", str(tmp_path / "a.log"))
    assert_one_line_error(result, str(port))
    assert not (tmp_path / "a.log").exists()  # a failed start leaves no empty log behind


def test_missing_root_is_one_line_exit_2(tmp_path: Path) -> None:
    """A document root that does not exist: exit 2, one error line naming it."""
    missing = tmp_path / "no-such-dir"
    result = run_cli("--port", "0", "--root", str(missing), "--log", str(tmp_path / "a.log"))
    assert_one_line_error(result, str(missing))


def test_unwritable_log_is_one_line_exit_2(site: Path) -> None:
    """An access log in a directory that does not exist: exit 2, one error line."""
    result = run_cli("--port", "0", "--root", str(site), "--log", "/nonexistent/dir/access.log")
    assert_one_line_error(result, "/nonexistent/dir/access.log")


@pytest.mark.parametrize("args", [
    ["--port", "abc"],
    ["--port", "70000"],
    ["--threads", "0"],
    ["--header-timeout", "-1"],
    ["--bogus-option"],
    ["--port"],
    ["extra-positional"],
    ["--log", "x.log", "--no-log"],
])
def test_bad_command_line_is_one_line_exit_2(args: list[str]) -> None:
    """A bad option value, an unknown option or a missing value: exit 2, one error line."""
    assert_one_line_error(run_cli(*args, "--no-log"))


def test_banner_shows_the_real_port(site: Path, tmp_path: Path) -> None:
    """With --port 0 the banner prints the port actually bound, and it serves there."""
    proc, stderr_path = spawn(["--host", "127.0.0.1", "--port", "0", "--root", str(site),
                               "--no-log"], tmp_path)
    try:
        match = wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/")
        port = int(match.group(1))
        assert port != 0
        assert get(port, "/hello.txt").body == b"hello, world\n"
    finally:
        assert stop(proc) == 0


def test_banner_for_all_interfaces_includes_loopback(site: Path, tmp_path: Path) -> None:
    """--host 0.0.0.0 lists http://127.0.0.1:PORT/ among its URLs, with the real port."""
    proc, stderr_path = spawn(["--host", "0.0.0.0", "--port", "0", "--root", str(site),
                               "--no-log"], tmp_path)
    try:
        match = wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/")
        assert "0.0.0.0" not in match.group(0)
        assert get(int(match.group(1)), "/data.json").status == 200
    finally:
        assert stop(proc) == 0


@pytest.mark.parametrize(("connections", "line"), [(0, "stopped after 0 connections"),
                                                   (1, "stopped after 1 connection"),
                                                   (2, "stopped after 2 connections")])
def test_the_stop_line_counts_connections_in_words(
        start_process: Callable[..., ServerProcess], connections: int, line: str) -> None:
    """The last line at a stop: `1 connection`, and the plural for none or several."""
    proc = start_process()
    for _ in range(connections):
        assert get(proc.port, "/hello.txt").status == 200  # a connection each
    assert proc.terminate() == 0
    assert proc.stderr().splitlines()[-1] == f"evserver: {line}"


def test_log_dash_writes_access_lines_to_stdout(site: Path, tmp_path: Path) -> None:
    """--log - puts access lines, and nothing else, on standard output."""
    stdout_path, stderr_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "evserver", "--host", "127.0.0.1",
                                 "--port", "0", "--root", str(site), "--log", "-"],
                                cwd=REPO, stdout=out, stderr=err)
    try:
        port = int(wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/").group(1))
        assert "standard output" in stderr_path.read_text()
        assert get(port, "/hello.txt").status == 200
        assert get(port, "/missing.txt").status == 404
    finally:
        assert stop(proc) == 0
    lines = stdout_path.read_text().splitlines()
    assert len(lines) == 2, lines
    parsed = [_ACCESS_RE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(1), m.group(2)) for m in parsed if m] == [("/hello.txt", "200"),
                                                               ("/missing.txt", "404")]
    assert "GET /hello.txt" not in stderr_path.read_text()


def test_default_root_is_the_repos_www(tmp_path: Path) -> None:
    """Without --root, run from the repository, `/` is the repo's www/index.html."""
    proc, stderr_path = spawn(["--host", "127.0.0.1", "--port", "0", "--no-log"], tmp_path)
    try:
        port = int(wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/").group(1))
        resp = get(port, "/")
        assert resp.status == 200
        assert resp.body == (REPO / "www" / "index.html").read_bytes()
    finally:
        assert stop(proc) == 0


def test_console_script_serves(site: Path, tmp_path: Path) -> None:
    """The installed `evserver` console script starts the same server."""
    script = shutil.which("evserver")
    if script is None:
        pytest.skip("the evserver console script is not installed")
    stderr_path = tmp_path / "script-err.txt"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([script, "--host", "127.0.0.1", "--port", "0", "--root",
                                 str(site), "--no-log"], stdout=subprocess.DEVNULL, stderr=err,
                                cwd=tmp_path, env={**os.environ})
    try:
        port = int(wait_banner(proc, stderr_path, r"http://127\.0\.0\.1:(\d+)/").group(1))
        assert get(port, "/hello.txt").body == b"hello, world\n"
    finally:
        assert stop(proc) == 0


def test_console_script_entry_point_behaves_like_python_m(tmp_path: Path) -> None:
    """The `[project.scripts]` target, called as pip's wrapper calls it, exits 0 on --help
    and 2 with one error line on a bad root (works without installing the package)."""
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["evserver"]
    module, func = target.split(":")
    wrapper = f"import sys; from {module} import {func}; sys.exit({func}())"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", wrapper, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=15)

    helped = run("--help")
    assert helped.returncode == 0 and "--root" in helped.stdout
    assert_one_line_error(run("--root", str(tmp_path / "missing"), "--no-log"), "missing")


# --- what --check-config refuses, a real start refuses with the same line ----------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A certificate and its key, made with openssl, and paths that go wrong."""
    openssl = need_tool("openssl")
    folder = tmp_path_factory.mktemp("checks")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    (folder / "bad-users").write_text("carol:not-a-hash\n")
    return {"CERT": str(cert), "KEY": str(key), "MISSING": str(folder / "missing.pem"),
            "BAD_USERS": str(folder / "bad-users"), "NO_USERS": str(folder / "no-users"),
            "FOLDER": str(folder)}


# Each: the flags, then how the one error line must start ({NAME} from tls_files).
START_CHECKS = [
    (["--auth", "bob"], "--auth #1: expected USER:PASSWORD (non-empty)"),
    (["--auth", "bob:s3cr3t\x07x"], "--auth #1: expected USER:PASSWORD (non-empty)"),
    (["--auth-file", "{NO_USERS}"],
     "--auth-file '{NO_USERS}' cannot be read: No such file or directory"),
    (["--auth-file", "{BAD_USERS}"], "--auth-file '{BAD_USERS}', line 1: not a supported hash"),
    (["--tls-cert", "{MISSING}", "--tls-key", "{KEY}"],
     "--tls-cert '{MISSING}' cannot be read: No such file or directory"),
    (["--tls-cert", "{CERT}", "--tls-key", "{MISSING}"],
     "--tls-key '{MISSING}' cannot be read: No such file or directory"),
    (["--tls-cert", "{CERT}", "--tls-key", "{CERT}"],
     "--tls-cert '{CERT}' and --tls-key '{CERT}' cannot be loaded: "),
    (["--pidfile", "{FOLDER}"], "--pidfile '{FOLDER}' is a directory"),
]
# As `python3 -m evserver` with the optional package hidden (find_spec then finds nothing).
WITHOUT_CRYPTOGRAPHY = ("import sys; sys.modules['cryptography'] = None; "
                        "from evserver.__main__ import main; sys.exit(main())")


def start_and_check(tmp_path: Path, site: Path, args: list[str], python: list[str]
                    ) -> tuple[str, str]:
    """The one error line of --check-config, and of a real start, with the same options."""
    base = [*python, "--host", "127.0.0.1", "--port", "0", "--root", str(site), "--no-log",
            *args]
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    lines = []
    for extra in (["--check-config"], []):
        result = subprocess.run([sys.executable, *base, *extra], cwd=REPO, capture_output=True,
                                text=True, timeout=15, env=env)
        lines.append(assert_one_line_error(result))
        assert result.stdout == ""
    return lines[0], lines[1]


@pytest.mark.parametrize(("args", "expected"), START_CHECKS)
def test_check_config_refuses_what_a_start_refuses(tmp_path: Path, site: Path,
                                                   tls_files: dict[str, str], args: list[str],
                                                   expected: str) -> None:
    args = [arg.format_map(tls_files) for arg in args]
    checked, started = start_and_check(tmp_path, site, args, ["-m", "evserver"])
    assert checked == started
    assert checked.startswith("evserver: error: " + expected.format_map(tls_files)), checked
    assert "s3cr3t" not in checked and "not-a-hash" not in checked  # no password echoed


def test_self_signed_without_cryptography(tmp_path: Path, site: Path) -> None:
    checked, started = start_and_check(tmp_path, site, ["--tls-self-signed"],
                                       ["-c", WITHOUT_CRYPTOGRAPHY])
    assert checked == started == ("evserver: error: --tls-self-signed needs the optional "
                                  "'cryptography' package (python3 -m pip install cryptography)")
    assert not (tmp_path / "state").exists()


def test_a_missing_certificate_is_named_at_start(site: Path, tls_files: dict[str, str]) -> None:
    """Not `cannot listen on HOST:PORT: No such file or directory`: the option and the file."""
    result = run_cli("--host", "127.0.0.1", "--port", "0", "--root", str(site), "--no-log",
                     "--tls-cert", tls_files["MISSING"], "--tls-key", tls_files["KEY"])
    line = assert_one_line_error(result, "--tls-cert", tls_files["MISSING"])
    assert "cannot listen" not in line


def test_a_good_certificate_passes_the_check(site: Path, tls_files: dict[str, str]) -> None:
    result = run_cli("--check-config", "--root", str(site), "--no-log",
                     "--tls-cert", tls_files["CERT"], "--tls-key", tls_files["KEY"])
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout)["tls-key"] == tls_files["KEY"]
