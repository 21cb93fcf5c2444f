"""config.py: defaults, the command line, validation errors and immutability."""
from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evserver.config import Config, ConfigError, default_docroot

REPO = Path(__file__).resolve().parents[2]
KIB, MIB = 1024, 1024 * 1024


def test_defaults() -> None:
    """The documented defaults (DESIGN.md §3)."""
    cfg = Config()
    assert cfg.port == 8080
    assert cfg.backlog == 1024
    assert cfg.max_connections == 10000
    assert cfg.threads == min(32, (os.cpu_count() or 1) + 4)
    assert cfg.max_pending_jobs == 1024
    assert cfg.recv_size == 64 * KIB
    assert cfg.max_head == 16 * KIB
    assert cfg.max_request_line == 8 * KIB
    assert cfg.max_headers == 100
    assert cfg.header_timeout == 10.0
    assert cfg.keepalive_timeout == 15.0
    assert cfg.send_timeout == 30.0
    assert cfg.linger_timeout == 2.0
    assert cfg.max_keepalive_requests == 1000
    assert cfg.accept_batch == 64
    assert cfg.accept_retry_delay == 1.0
    assert cfg.cache_max_entry == 256 * KIB
    assert cfg.cache_max_bytes == 64 * MIB
    assert cfg.cache_ttl == 1.0
    assert cfg.sendfile_chunk == 1 * MIB
    assert cfg.access_log == "access.log"
    assert cfg.debug is False


def test_empty_argv_gives_defaults() -> None:
    """No options: every field as in Config(), the root found next to the package."""
    cfg = Config.from_argv([])
    assert cfg == dataclasses.replace(Config(), docroot=default_docroot())


@pytest.mark.parametrize(("argv", "expected"), [
    (["--root", "/srv/site"], {"docroot": "/srv/site"}),
    (["--host", "127.0.0.1", "--port", "0"], {"host": "127.0.0.1", "port": 0}),
    (["--port", "65535"], {"port": 65535}),
    (["--log", "-"], {"access_log": "-"}),
    (["--log", "/var/log/ev.log"], {"access_log": "/var/log/ev.log"}),
    (["--no-log"], {"access_log": None}),
    (["--threads", "3", "--max-connections", "50", "--max-pending-jobs", "7"],
     {"threads": 3, "max_connections": 50, "max_pending_jobs": 7}),
    (["--header-timeout", "0.2", "--keepalive-timeout", "1.5", "--send-timeout", "4",
      "--shutdown-grace", "0.5"],
     {"header_timeout": 0.2, "keepalive_timeout": 1.5, "send_timeout": 4.0,
      "shutdown_grace": 0.5}),
    (["--max-head", "4096", "--max-request-line", "1024", "--max-headers", "10",
      "--max-body", "99", "--max-keepalive-requests", "5"],
     {"max_head": 4096, "max_request_line": 1024, "max_headers": 10, "max_body": 99,
      "max_keepalive_requests": 5}),
    (["--cache-ttl", "0.25", "--cache-max-bytes", "1000", "--cache-max-entry", "100"],
     {"cache_ttl": 0.25, "cache_max_bytes": 1000, "cache_max_entry": 100}),
    (["--debug"], {"debug": True}),
    (["--port=1234", "--root=/x"], {"port": 1234, "docroot": "/x"}),
])
def test_flags_map_to_fields(argv: list[str], expected: dict[str, object]) -> None:
    """Each flag sets its field; the others keep their defaults."""
    cfg = Config.from_argv(argv)
    base = Config.from_argv([])
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
        assert type(getattr(cfg, name)) is type(value), name
    for f in dataclasses.fields(Config):
        if f.name not in expected:
            assert getattr(cfg, f.name) == getattr(base, f.name), f.name


def test_timeouts_are_floats() -> None:
    """Integer timeouts on the command line become floats."""
    cfg = Config.from_argv(["--header-timeout", "3"])
    assert isinstance(cfg.header_timeout, float) and cfg.header_timeout == 3.0


@pytest.mark.parametrize("argv", [
    ["--port", "70000"],
    ["--port", "-1"],
    ["--port", "abc"],
    ["--port", ""],
    ["--threads", "0"],
    ["--threads", "-4"],
    ["--threads", "1.5"],
    ["--header-timeout", "-1"],
    ["--header-timeout", "0"],
    ["--header-timeout", "nan"],
    ["--keepalive-timeout", "soon"],
    ["--cache-ttl", "NaN"],
    ["--max-head", "0"],
    ["--max-head", "1000", "--max-request-line", "2000"],
    ["--bogus"],
    ["--port"],
    ["positional"],
])
def test_invalid_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    """A bad command line: exit status 2, one `evserver: error:` line, no traceback."""
    with pytest.raises(SystemExit) as info:
        Config.from_argv(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evserver: error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["--port", "70000"], "--port"),
    (["--threads", "0"], "--threads"),
    (["--header-timeout", "-1"], "--header-timeout"),
    (["--bogus"], "--bogus"),
])
def test_error_names_the_option(argv: list[str], needle: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """The error line says which option is wrong."""
    with pytest.raises(SystemExit):
        Config.from_argv(argv)
    assert needle in capsys.readouterr().err


def test_cli_process_bad_port() -> None:
    """`python -m evserver --port 70000` exits 2 with one line and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "evserver", "--port", "70000", "--no-log"],
                          cwd=REPO, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "evserver: error: --port must be between 0 and 65535, not 70000"]
    assert proc.stdout == ""


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help exits 0 and shows every option group."""
    with pytest.raises(SystemExit) as info:
        Config.from_argv(["--help"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    for group in ("where:", "work:", "timeouts (seconds):", "limits:", "cache:"):
        assert group in out, group
    for option in ("--root", "--port", "--log", "--no-log", "--threads", "--header-timeout",
                   "--max-head", "--cache-ttl"):
        assert option in out, option


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"port": 65536}, "--port"),
    ({"port": -1}, "--port"),
    ({"threads": 0}, "--threads"),
    ({"recv_size": -5}, "--recv-size"),
    ({"linger_timeout": 0.0}, "--linger-timeout"),
    ({"header_timeout": math.nan}, "--header-timeout"),
    ({"cache_ttl": -math.inf}, "--cache-ttl"),
    ({"max_request_line": 32 * KIB}, "--max-request-line"),
])
def test_constructor_validates(kwargs: dict[str, object], needle: str) -> None:
    """Config() itself refuses bad values with a ConfigError naming the option."""
    with pytest.raises(ConfigError, match=needle):
        Config(**kwargs)  # type: ignore[arg-type]


def test_port_zero_and_booleans_allowed() -> None:
    """Port 0 (pick a free one) and False flags are not 'non-positive' errors."""
    cfg = Config(port=0, debug=False)
    assert cfg.port == 0 and cfg.debug is False


def test_frozen() -> None:
    """A Config cannot be changed after it is made, nor grow new attributes."""
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        cfg.extra = 1  # type: ignore[attr-defined]
    assert cfg.port == 8080
    assert not hasattr(cfg, "__dict__")  # slots: small and fixed


def test_replace_validates() -> None:
    """dataclasses.replace goes through the same checks."""
    with pytest.raises(ConfigError):
        dataclasses.replace(Config(), threads=0)
    assert dataclasses.replace(Config(), threads=2).threads == 2
