"""cmdline.py: the command line, the TOML file, --check-config, --help and --help-all, each
derived from config.py's table, and the one-line errors they end in."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evserver import cmdline
from evserver.config import OPTIONS, Config, ConfigError, default_docroot
from evserver.options import GROUPS
from tests.tools import need_tool

REPO = Path(__file__).resolve().parents[2]


def test_empty_argv_gives_defaults() -> None:
    """No options: every field as in Config(), the root found next to the package."""
    cfg = cmdline.parse([])
    assert cfg == dataclasses.replace(Config(), docroot=default_docroot())


def assert_only(cfg: Config, expected: dict[str, object]) -> None:
    """`cfg` has the `expected` fields, with their types, and an empty command line's other
    fields."""
    base = cmdline.parse([])
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
        assert type(getattr(cfg, name)) is type(value), name
    for f in dataclasses.fields(Config):
        if f.name not in expected:
            assert getattr(cfg, f.name) == getattr(base, f.name), f.name


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
    assert_only(cmdline.parse(argv), expected)


def test_timeouts_are_floats() -> None:
    """Integer timeouts on the command line become floats."""
    cfg = cmdline.parse(["--header-timeout", "3"])
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
    assert "Traceback" not in one_error_line(capsys, argv)


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
        cmdline.parse(argv)
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
    """--help-all exits 0 and shows every option group."""
    with pytest.raises(SystemExit) as info:
        cmdline.parse(["--help-all"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    for group in ("where:", "work:", "timeouts (seconds):", "limits:", "cache:"):
        assert group in out, group
    for option in ("--root", "--port", "--log", "--no-log", "--threads", "--header-timeout",
                   "--max-head", "--cache-ttl"):
        assert option in out, option


# --- the TOML configuration file -------------------------------------------------------------

def write_toml(folder: Path, text: str, name: str = "evserver.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def from_file(path: Path, *argv: str) -> Config:
    return cmdline.parse(["--config", str(path), *argv])


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run cmdline.parse, expect exit 2 with exactly one `evserver: error:` line and no stdout."""
    with pytest.raises(SystemExit) as info:
        cmdline.parse(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evserver: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("max-connections = 500", {"max_connections": 500}),
    ("max_connections = 500", {"max_connections": 500}),
    ('host = "127.0.0.1"\nport = 0', {"host": "127.0.0.1", "port": 0}),
    ('log = "-"', {"access_log": "-"}),
    ("no-log = true", {"access_log": None}),
    ("no_log = false", {}),
    ('header = ["X-A: b", "X-B: c"]', {"headers": ("X-A: b", "X-B: c")}),
    ('header = "X-One: 1"', {"headers": ("X-One: 1",)}),
    ('mime-type = [".foo=text/plain"]', {"mime_types": (".foo=text/plain",)}),
    ('[mime-types]\n".foo" = "text/plain"\n".BAR" = "image/x-bar"',
     {"mime_types": (".foo=text/plain", ".bar=image/x-bar")}),
    ('[mime_types]\n".foo" = "text/plain"', {"mime_types": (".foo=text/plain",)}),
    ("header-timeout = 3", {"header_timeout": 3.0}),
    ("cache_ttl = 0.25", {"cache_ttl": 0.25}),
    ("listing = true\nspa = true\nno-cache = true", {"listing": True, "spa": True,
                                                      "no_cache": True}),
    ('cors = "*"', {"cors": "*"}),
    ('workers = "auto"', {"workers": os.cpu_count() or 1}),
    ("workers = 3", {"workers": 3}),
    ('log-format = "json"\nstatus-path = "/_status"',
     {"log_format": "json", "status_path": "/_status"}),
    ('status-allow = ["10.0.0.0/8", "192.168.1.7"]',
     {"status_allow": ("10.0.0.0/8", "192.168.1.7/32")}),
    ('cache-control = "public, max-age=60"', {"cache_control": "public, max-age=60"}),
    ("", {}),
])
def test_toml_keys_map_to_fields(tmp_path: Path, text: str, expected: dict[str, object]
                                 ) -> None:
    """Each key (long option, dashes or underscores) sets its field with the field's type;
    the others keep the defaults of an empty command line."""
    assert_only(from_file(write_toml(tmp_path, text)), expected)


def test_flag_beats_file_beats_default(tmp_path: Path) -> None:
    """A flag overrides the file, the file overrides the default, untouched fields keep it."""
    path = write_toml(tmp_path, 'port = 1234\nthreads = 3\nheader = ["X-File: 1"]\n'
                                'cache-control = "max-age=5"\n')
    cfg = from_file(path, "--port", "99", "--header", "X-Flag: 2")
    assert cfg.port == 99  # flag
    assert cfg.headers == ("X-Flag: 2",)  # a repeatable flag replaces the file's list
    assert cfg.threads == 3 and cfg.cache_control == "max-age=5"  # file
    assert cfg.max_connections == Config().max_connections  # default
    assert from_file(path).headers == ("X-File: 1",)


def test_flag_order_does_not_matter(tmp_path: Path) -> None:
    """--config before or after a flag: the flag still wins."""
    path = write_toml(tmp_path, "port = 1234\n")
    assert cmdline.parse(["--port", "7", "--config", str(path)]).port == 7
    assert cmdline.parse(["--config", str(path), "--port", "7"]).port == 7


def test_log_flags_override_the_files_log_choice(tmp_path: Path) -> None:
    """--no-log beats the file's log, --log beats the file's no-log."""
    with_log = write_toml(tmp_path, 'log = "/tmp/x.log"\n', "a.toml")
    without = write_toml(tmp_path, "no-log = true\n", "b.toml")
    assert from_file(with_log).access_log == "/tmp/x.log"
    assert from_file(with_log, "--no-log").access_log is None
    assert from_file(without).access_log is None
    assert from_file(without, "--log", "-").access_log == "-"


def test_flag_replaces_a_bad_file_value(tmp_path: Path) -> None:
    """A value the flags override is never used, so it is not an error."""
    path = write_toml(tmp_path, 'port = "http"\n')
    assert from_file(path, "--port", "81").port == 81


def test_paths_are_relative_to_the_files_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """root, log and pidfile in a file are read from its folder, not the current one;
    absolute paths and '-' are kept."""
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_toml(folder, 'root = "site"\nlog = "logs/access.log"\npidfile = "ev.pid"\n')
    cfg = cmdline.parse(["--config", os.path.join("..", "etc", "evserver.toml")])
    assert Path(cfg.docroot) == folder / "site"
    assert cfg.access_log is not None and Path(cfg.access_log) == folder / "logs" / "access.log"
    assert cfg.pidfile is not None and Path(cfg.pidfile) == folder / "ev.pid"
    write_toml(folder, 'root = "/srv/www"\nlog = "-"\n')
    cfg = from_file(path)
    assert cfg.docroot == "/srv/www" and cfg.access_log == "-"


def test_flag_paths_stay_relative_to_the_current_folder(tmp_path: Path) -> None:
    """A --root given as a flag beside --config is not moved into the file's folder."""
    path = write_toml(tmp_path, 'root = "site"\n')
    assert from_file(path, "--root", "here").docroot == "here"


def test_home_is_expanded_in_file_paths(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`~/site` in a file is the user's home, as a shell would make it on the command line."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = from_file(write_toml(tmp_path, 'root = "~/site"\n'))
    assert Path(cfg.docroot) == tmp_path / "home" / "site"


@pytest.mark.parametrize(("text", "needles"), [
    ("bogus = 1", ["unknown key 'bogus'"]),
    ("docroot = 'x'", ["unknown key 'docroot'", "did you mean 'root'"]),
    ("prot = 1", ["unknown key 'prot'", "(did you mean 'port'?)"]),
    ("access_log = 'x'", ["unknown key 'access_log'", "did you mean 'log'"]),
    ("headers = []", ["unknown key 'headers'", "did you mean 'header'"]),
    ("trusted-proxies = []", ["did you mean 'trusted-proxy'"]),
    ('auth = ["bob"]', ["auth #1: expected USER:PASSWORD (non-empty)"]),
    ('tls-port = 8443', ["tls-port needs --tls-cert and --tls-key"]),
    ("max-conections = 5", ["unknown key 'max-conections'", "'max-connections'"]),
    ("config = 'other.toml'", ["unknown key 'config'"]),
    ("check-config = true", ["unknown key 'check-config'"]),
    ("[server]\nport = 1", ["unknown key 'server'"]),
    ('port = "8080"', ["port must be an integer, not '8080'"]),
    ("port = 80.0", ["port must be an integer, not 80.0"]),
    ("threads = true", ["threads must be an integer, not True"]),
    ('header-timeout = "10s"', ["header-timeout must be a number, not '10s'"]),
    ("root = 5", ["root must be a string, not 5"]),
    ("log = false", ["log must be a string, not False"]),
    ('listing = "yes"', ["listing must be true or false, not 'yes'"]),
    ("no-log = 1", ["no-log must be true or false"]),
    ("header = [1, 2]", ["header must be a list of strings"]),
    ("status_allow = [1]", ["status_allow must be a list of strings"]),
    ("[mime-types]\n'.foo' = 5", ['mime-types.".foo" must be a string']),
    ("port = 70000", ["port must be between 0 and 65535, not 70000"]),
    ("max_connections = 0", ["max_connections must be positive, not 0"]),
    ("header-timeout = nan", ["header-timeout must be positive, not nan"]),
    ("max-head = 100", ["max-head: --max-request-line must not exceed --max-head (100)"]),
    ('status-path = "x"', ["status-path must start with /, not 'x'"]),
    ('log-format = "xml"', ["log-format must be combined, common or json, not 'xml'"]),
    ('header = ["Server: mine"]', ["header cannot set Server"]),
    ('cors = "example.com"', ["cors must be '*' or an origin"]),
    ('mime-type = ["foo"]', ["mime-type must be '.ext=type/subtype', not 'foo'"]),
    ('status-allow = ["10.0.0.300/8"]', ["status-allow must be an address or a network"]),
    ('workers = "many"', ["workers must be an integer, not 'many'"]),
    ('pidfile = ""', ["pidfile must be a path"]),
    ("port = 1\nport = 2", ["line 2"]),
    ("port = ", ["line 1"]),
    ('\n\nheader = ["a" "b"]', ["line 3"]),
    ("max-connections = 5\nmax_connections = 6", ["max_connections and max-connections"]),
    ('log = "a.log"\nno-log = true', ["no-log and log"]),
    ('mime-type = [".a=b/c"]\n[mime-types]\n".d" = "e/f"', ["mime-types and mime-type"]),
])
def test_file_errors_are_one_line_naming_key_and_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needles: list[str]
) -> None:
    """A bad file: exit 2 and one line with the file's name and the key (or the TOML line)."""
    path = write_toml(tmp_path, text + "\n", "bad-file.toml")
    line = one_error_line(capsys, ["--config", str(path)])
    assert f"{path}:" in line
    for needle in needles:
        assert needle in line, line


def test_file_error_uses_the_key_not_the_flag(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A file's bad value is reported under its key, a flag's under the flag."""
    path = write_toml(tmp_path, 'status_path = "x"\n')
    line = one_error_line(capsys, ["--config", str(path)])
    assert line == f"evserver: error: {path}: status_path must start with /, not 'x'"
    line = one_error_line(capsys, ["--config", str(path), "--status-path", "y"])
    assert line == "evserver: error: --status-path must start with /, not 'y'"


def test_missing_and_undecodable_files(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read, or is not UTF-8: one line naming it, exit 2."""
    missing = tmp_path / "nope.toml"
    line = one_error_line(capsys, ["--config", str(missing)])
    assert str(missing) in line and "No such file" in line
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'host = "\xe9"\n')
    line = one_error_line(capsys, ["--config", str(latin)])
    assert str(latin) in line and "UTF-8" in line
    line = one_error_line(capsys, ["--config", str(tmp_path)])  # a folder
    assert str(tmp_path) in line


# --- validation of the user-feature fields, however they arrive --------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--log-format", "xml"], "--log-format must be combined, common or json, not 'xml'"),
    (["--status-path", "x"], "--status-path must start with /, not 'x'"),
    (["--status-path", "/a b"], "--status-path must be a path without spaces"),
    (["--status-path", "/s?x"], "--status-path must be a path without"),
    (["--status-path", "/s#x"], "--status-path must be a path without"),
    (["--status-path", "/\x7f"], "--status-path must be a path without"),
    (["--status-allow", "nope"], "--status-allow must be an address or a network"),
    (["--status-allow", "10.0.0.0/33"], "--status-allow must be an address or a network"),
    (["--header", "NoColon"], "--header must be 'Name: value'"),
    (["--header", ": v"], "--header must be 'Name: value'"),
    (["--header", "X A: v"], "--header must be 'Name: value'"),
    (["--header", "X-A : v"], "--header must be 'Name: value'"),
    (["--header", "X-A: caf\u00e9"], "--header must be 'Name: value'"),
    (["--header", "X-A: a\rb"], "--header must be 'Name: value'"),
    (["--header", "content-length: 5"], "--header cannot set content-length"),
    (["--header", "Transfer-Encoding: chunked"], "--header cannot set Transfer-Encoding"),
    (["--header", "Connection: close"], "--header cannot set Connection"),
    (["--header", "Date: x"], "--header cannot set Date"),
    (["--header", "Server: x"], "--header cannot set Server"),
    (["--header", "Content-Type: text/plain"], "--header cannot set Content-Type"),
    (["--mime-type", "foo=text/plain"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".=text/plain"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".foo"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".foo=text"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".foo=/plain"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".foo=te xt/plain"], "--mime-type must be '.ext=type/subtype'"),
    (["--mime-type", ".f/o=text/plain"], "--mime-type must be '.ext=type/subtype'"),
    (["--cors", "example.com"], "--cors must be '*' or an origin"),
    (["--cors", "ftp://example.com"], "--cors must be '*' or an origin"),
    (["--cors", "https://example.com/"], "--cors must be '*' or an origin"),
    (["--cors", "https://example.com/path"], "--cors must be '*' or an origin"),
    (["--cors", "https://example.com:99999"], "--cors must be '*' or an origin"),
    (["--cors", "https://example.com:0"], "--cors must be '*' or an origin"),
    (["--cors", "https://[::g]"], "--cors must be '*' or an origin"),
    (["--cors", "https://a b"], "--cors must be '*' or an origin"),
    (["--cors", "null"], "--cors must be '*' or an origin"),
    (["--pidfile", ""], "--pidfile must be a path"),
    (["--pidfile", "/tmp/"], "--pidfile must be a path"),
    (["--pidfile", "a\0b"], "--pidfile must be a path"),
    (["--log", ""], "--log must be a path"),
    (["--root", ""], "--root must be a path"),
    (["--cache-control", "max-age=1\n"], "--cache-control must be printable ASCII"),
    (["--compress-encodings", "lzma"],
     "--compress-encodings names 'lzma': the codings are br, zstd, gzip"),
    (["--compress-encodings", "gzip:10"],
     "--compress-encodings gives gzip the level '10': gzip takes 1 to 9"),
    (["--compress-encodings", "br,br:3"], "--compress-encodings lists br twice"),
    (["--compress-type", "text"], "--compress-type must be 'type/subtype' or 'type/*'"),
    (["--compress-type", "*/*x"], "--compress-type must be 'type/subtype' or 'type/*'"),
    (["--compress-min-size", "-1"], "--compress-min-size must be"),
    (["--compress-cache-bytes", "lots"], "--compress-cache-bytes must be"),
])
def test_feature_flags_validated(capsys: pytest.CaptureFixture[str], argv: list[str],
                                 message: str) -> None:
    """A bad value of a feature option: one line naming the option, exit 2."""
    line = one_error_line(capsys, argv)
    assert line.startswith("evserver: error: " + message), line


@pytest.mark.parametrize(("argv", "field", "value"), [
    (["--log-format", "common"], "log_format", "common"),
    (["--status-path", "/_status"], "status_path", "/_status"),
    (["--status-path", ""], "status_path", ""),
    (["--status-allow", "10.1.2.3/8", "--status-allow", "::1"], "status_allow",
     ("10.0.0.0/8", "::1/128")),
    (["--header", "X-A:  b  "], "headers", ("X-A: b",)),
    (["--header", "X-Empty:"], "headers", ("X-Empty: ",)),
    (["--header", "Cache-Control: no-transform"], "headers", ("Cache-Control: no-transform",)),
    (["--mime-type", ".MD=text/markdown; charset=utf-8"], "mime_types",
     (".md=text/markdown; charset=utf-8",)),
    (["--mime-type", ".tar.gz=application/gzip"], "mime_types", (".tar.gz=application/gzip",)),
    (["--cors"], "cors", "*"),
    (["--cors", "https://Example.com:8443"], "cors", "https://example.com:8443"),
    (["--cors", "http://localhost"], "cors", "http://localhost"),
    (["--cors", "http://[::1]:3000"], "cors", "http://[::1]:3000"),
    (["--pidfile", "run/ev.pid"], "pidfile", "run/ev.pid"),
])
def test_feature_flags_accepted_and_normalised(argv: list[str], field: str,
                                               value: object) -> None:
    """Good values pass, stored in one canonical form other modules can rely on."""
    assert getattr(cmdline.parse(argv), field) == value


# --- --check-config ----------------------------------------------------------------------------

def check_config(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run --check-config in process: it must exit 0 and print only to stdout."""
    with pytest.raises(SystemExit) as info:
        cmdline.parse([*argv, "--check-config"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert err == ""
    return out


ROUND_TRIPS = [
    [],
    ["--no-log"],
    ["--log", "-", "--port", "0", "--host", "::"],
    ["--threads", "3", "--workers", "2", "--header-timeout", "0.25", "--cache-ttl", "1e-05",
     "--max-head", "4096", "--max-request-line", "100", "--readahead", "0"],
    ["--listing", "--spa", "--no-cache", "--follow-symlinks", "--verbose", "--qr", "--debug"],
    ["--header", 'X-Q: say "hi" \\ bye', "--header", "X-B: 2", "--cors",
     "--mime-type", ".foo=text/plain", "--mime-type", ".md=text/markdown; charset=utf-8"],
    ["--cors", "https://example.com:8443", "--log-format", "json", "--status-path", "/_s",
     "--status-allow", "10.0.0.0/8"],
    ["--status-allow", "127.0.0.1", "--cache-control", 'public, x="a\\b"'],
]


@pytest.mark.parametrize("argv", ROUND_TRIPS)
def test_check_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  argv: list[str]) -> None:
    """--check-config prints TOML that --config reads back into the same Config."""
    site = tmp_path / "site"
    site.mkdir()
    log = [] if "--no-log" in argv else ["--log", str(tmp_path / "a.log")]
    full = ["--root", str(site), *log, "--pidfile", str(tmp_path / "ev.pid"), *argv]
    expected = cmdline.parse(full)
    text = check_config(capsys, full)
    tomllib.loads(text)
    path = write_toml(tmp_path / "site", text, "out.toml")  # another folder: paths absolute
    assert from_file(path) == expected
    assert check_config(capsys, ["--config", str(path)]) == text  # a fixed point


def test_check_config_round_trips_relative_and_odd_paths(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths are printed absolute; quotes, backslashes, tabs, newlines and
    non-ASCII in a path survive the TOML string escaping."""
    odd = tmp_path / 'we"ird \\ d\u00efr\t\n\x7f'
    odd.mkdir()
    monkeypatch.chdir(tmp_path)
    argv = ["--root", odd.name, "--log", "rel.log"]
    text = check_config(capsys, argv)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = from_file(write_toml(elsewhere, text))
    assert cfg.docroot == str(odd)
    assert cfg.access_log == str(tmp_path / "rel.log")


def test_check_config_prints_every_field(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Every field appears: options as keys, unset ones (pidfile, auth file, TLS) and the
    fixed ones as comments."""
    text = check_config(capsys, ["--root", str(tmp_path)])
    data = tomllib.loads(text)
    options = {opt.name: opt for opt in OPTIONS}
    for f in dataclasses.fields(Config):
        if f.name in options and f.default is not None:
            assert options[f.name].key in data, f.name
        elif f.name in options:
            assert f"# {options[f.name].key} is not set" in text, f.name
        else:
            assert f"#   {f.name} = " in text, f.name
    assert data["root"] == str(tmp_path) and data["port"] == 8080


def test_check_config_reports_errors_without_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option under --check-config: one error line, nothing on stdout, exit 2."""
    line = one_error_line(capsys, ["--check-config", "--root", str(tmp_path), "--port", "-1"])
    assert "--port" in line
    line = one_error_line(capsys, ["--check-config", "--root", str(tmp_path / "missing")])
    assert "--root" in line and "is not a directory" in line
    line = one_error_line(capsys, ["--check-config", "--root", str(tmp_path),
                                   "--log", str(tmp_path / "no" / "a.log")])
    assert "--log" in line and "folder that does not exist" in line
    line = one_error_line(capsys, ["--check-config", "--root", str(tmp_path),
                                   "--pidfile", str(tmp_path)])
    assert line == f"evserver: error: --pidfile {str(tmp_path)!r} is a directory"
    path = write_toml(tmp_path, 'root = "missing"\n')
    line = one_error_line(capsys, ["--check-config", "--config", str(path)])
    assert line.startswith(f"evserver: error: {path}: root ")


def test_check_config_opens_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The log and pidfile named are neither created nor opened."""
    check_config(capsys, ["--root", str(tmp_path), "--log", str(tmp_path / "a.log"),
                          "--pidfile", str(tmp_path / "ev.pid")])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


_printable_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
                          max_size=30)


@settings(max_examples=60, deadline=None)
@given(cache_control=_printable_text, header_value=_printable_text.map(str.strip),
       timeout=st.floats(min_value=1e-9, max_value=1e9, allow_nan=False),
       port=st.integers(0, 65535))
def test_to_toml_round_trips_any_valid_value(cache_control: str, header_value: str,
                                             timeout: float, port: int) -> None:
    """For any printable strings and any float, to_toml() parses back to equal values."""
    cfg = Config(cache_control=cache_control, headers=(f"X-H: {header_value}",),
                 send_timeout=timeout, port=port, docroot="/srv")
    data = tomllib.loads(cmdline.to_toml(cfg))
    assert data["cache-control"] == cache_control
    assert data["header"] == [f"X-H: {header_value}"]
    assert data["send-timeout"] == timeout
    assert data["port"] == port


# --- --help ------------------------------------------------------------------------------------

def test_help_shows_only_useful_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--help-all shows real defaults, not '(default: None/False/)', and a configuration
    group."""
    with pytest.raises(SystemExit):
        cmdline.parse(["--help-all"])
    out = capsys.readouterr().out
    for noise in ("(default: None)", "(default: False)", "(default: )", "(default: ())",
                  "default: ==SUPPRESS==", "(default: True)"):
        assert noise not in out, noise
    assert "(default: 8080)" in out and "(default: combined)" in out
    assert "packages) (on by default)" in " ".join(out.split())  # --compress
    assert "(default: 127.0.0.0/8, ::1/128)" in out
    section = out.split("configuration:", 1)[1]
    assert "--config FILE" in section and "--check-config" in section


# --- one table drives the parser, the TOML file, --help and the reference ----------------------

# A value other than the default for every option (tls_self_signed excludes tls_cert: it is
# flipped in a second sample). A new option must be added here.
NON_DEFAULT: dict[str, object] = {
    "host": "127.0.0.1", "port": 8081, "docroot": "/srv/site", "access_log": "/var/log/a.log",
    "max_connections": 50, "threads": 3, "workers": 2, "max_pending_jobs": 7,
    "max_head": 32768, "max_request_line": 4096, "max_headers": 10, "max_header_size": 999,
    "max_body": 99, "header_timeout": 0.25, "body_timeout": 3.0, "keepalive_timeout": 1.5,
    "send_timeout": 4.0, "shutdown_grace": 0.5, "max_keepalive_requests": 5,
    "cache_max_entry": 100, "cache_max_bytes": 1000, "cache_ttl": 2.5, "cache_max_open": 0,
    "cache_control": "public, max-age=1", "cache_control_html": "max-age=0",
    "listing": True, "follow_symlinks": True, "max_ranges": 3, "readahead": 0,
    "send_buffer": 4096, "send_buffer_max": 8192, "spa": True, "headers": ("X-A: b",),
    "cors": "https://example.com", "no_cache": True, "compress": False,
    "compress_encodings": "gzip:9", "compress_min_size": 100, "compress_cache_bytes": 1000,
    "compress_types": ("application/x-foo", "model/*"), "live_reload": True,
    "mime_types": (".foo=text/plain",),
    "log_format": "json", "verbose": True, "status_path": "/_s", "metrics_path": "/_m",
    "health_path": "/_h",
    "allow": ("10.0.0.0/8",), "deny": ("10.1.0.0/16",), "trusted_proxies": ("127.0.0.1/32",),
    "proxy_protocol": True, "auth": ("ann:secret",), "auth_file": "/etc/ev/users",
    "auth_paths": ("/private",), "auth_realm": "team", "auth_insecure": True,
    "tls_cert": "/etc/ev/c.pem", "tls_key": "/etc/ev/k.pem", "tls_port": 8443,
    "tls_redirect": True, "handshake_timeout": 2.0, "hsts": 60, "status_allow": ("::1/128",),
    "pidfile": "/run/ev.pid", "qr": True, "debug": True,
}
SELF_SIGNED = {**{k: v for k, v in NON_DEFAULT.items() if k not in ("tls_cert", "tls_key")},
               "tls_self_signed": True}


def test_the_samples_cover_every_option() -> None:
    names = {opt.name for opt in OPTIONS}
    assert set(NON_DEFAULT) | set(SELF_SIGNED) == names
    for name, value in NON_DEFAULT.items():
        assert value != getattr(Config(), name), name


@pytest.mark.parametrize("sample", [NON_DEFAULT, SELF_SIGNED,
                                    {"access_log": None, "docroot": "/x"}])
def test_to_toml_round_trips_every_option(tmp_path: Path, sample: dict[str, object]) -> None:
    """Every option set away from its default survives to_toml() and --config."""
    cfg = Config(**sample)  # type: ignore[arg-type]
    assert from_file(write_toml(tmp_path, cmdline.to_toml(cfg))) == cfg


def test_every_option_has_its_flags_in_the_parser() -> None:
    """Each flag of the table parses into its field, and --help-all lists it."""
    parser = cmdline._build_parser()
    for opt in OPTIONS:
        for flag in opt.flags:
            argv = [flag] if opt.kind.switch else [flag, "x"]
            parsed = vars(parser.parse_args(argv))
            expected = True if opt.kind.switch else ["x"] if opt.kind.repeatable else "x"
            assert parsed == {opt.name: expected}, flag
        if opt.off is not None:
            assert vars(parser.parse_args([opt.off[0]])) == {opt.name: opt.off_value}


def test_every_option_is_in_the_toml_output() -> None:
    """to_toml() writes each option under its key (unset ones as a comment naming it)."""
    text = cmdline.to_toml(Config())
    data = tomllib.loads(text)
    for opt in OPTIONS:
        assert opt.key in data or f"# {opt.key} is not set" in text, opt.key
    assert "no-log" in tomllib.loads(cmdline.to_toml(Config(access_log=None)))


def test_every_option_is_in_the_reference() -> None:
    """docs/options.md (made from the table) names every flag and key."""
    from evserver.tools.optionsdoc import render
    doc = render()
    for opt in OPTIONS:
        for flag in opt.flags:
            assert f"`{flag}" in doc, flag
        assert f"`{opt.key}`" in doc, opt.key
    for flag in cmdline.FLAGS:
        assert f"`{flag.long}" in doc, flag.long


def test_no_flag_is_declared_twice() -> None:
    flags = [f for entry in (*OPTIONS, *cmdline.FLAGS) for f in entry.flags]
    flags += [opt.off[0] for opt in OPTIONS if opt.off is not None]
    assert len(flags) == len(set(flags))


@pytest.mark.parametrize(("argv", "expected"), [
    (["-p", "81", "-b", "127.0.0.1", "-d", "/srv"],
     {"port": 81, "host": "127.0.0.1", "docroot": "/srv"}),
    (["-p81", "-d/srv"], {"port": 81, "docroot": "/srv"}),
    (["--port", "82", "--host", "::", "--root", "/x"], {"port": 82, "host": "::", "docroot": "/x"}),
])
def test_short_flags_as_http_server_spells_them(argv: list[str], expected: dict[str, object]
                                               ) -> None:
    cfg = cmdline.parse(argv)
    for name, value in expected.items():
        assert getattr(cfg, name) == value


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "abc"], "--port must be an integer, not 'abc'"),
    (["-p", "abc"], "--port must be an integer, not 'abc'"),
    (["--threads", "1.5"], "--threads must be an integer, not '1.5'"),
    (["--keepalive-timeout", "soon"], "--keepalive-timeout must be a number, not 'soon'"),
    (["--workers", "many"], "--workers must be an integer, not 'many'"),
    (["--tls-port", "x"], "--tls-port must be an integer, not 'x'"),
])
def test_a_flags_text_is_converted_by_its_kind(capsys: pytest.CaptureFixture[str],
                                               argv: list[str], message: str) -> None:
    assert one_error_line(capsys, argv) == "evserver: error: " + message


def test_workers_auto() -> None:
    assert cmdline.parse(["--workers", "auto"]).workers == (os.cpu_count() or 1)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from evserver import __version__
    with pytest.raises(SystemExit) as info:
        cmdline.parse(["--version"])
    assert info.value.code in (0, None)
    assert capsys.readouterr().out == f"evserver {__version__}\n"


def short_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               flag: str = "--help") -> str:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as info:
        cmdline.parse([flag])
    assert info.value.code in (0, None)
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_short_help_fits_one_screen(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, flag: str) -> None:
    """--help: the usage line, the everyday options grouped, the two commands, and a last
    line pointing to --help-all and docs/options.md; at most 40 lines of at most 80."""
    lines = short_help(capsys, monkeypatch, flag).rstrip("\n").splitlines()
    assert len(lines) <= 40, len(lines)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert lines[0].startswith("usage: evserver ")
    text = "\n".join(lines)
    listed = {flag for line in lines if line.startswith("  -")
              for flag in re.findall(r"(?<![\w-])--?[\w-]+", re.split(r"\s{2,}", line)[1])}
    for opt in OPTIONS:
        assert (opt.long in listed) == opt.everyday, opt.long
    for title in ("where:", "responses:", "who may read what:", "HTTPS:", "configuration:"):
        assert f"\n{title}\n" in text, title
    for word in ("-p PORT, --port PORT", "-b ADDR, --host ADDR", "-d DIR, --root DIR",
                 "--version", "--help-all"):
        assert word in text, word
    assert re.search(r"^  stats LOGFILE.* \w", text, re.M)
    assert re.search(r"^  hash-password +\w", text, re.M)
    assert "--help-all" in lines[-1] and "docs/options.md" in lines[-1]
    assert "(default:" not in text


def test_help_all_shows_every_option(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    text = short_help(capsys, monkeypatch, "--help-all")
    for opt in OPTIONS:
        for flag in opt.flags:
            assert flag in text, flag
    for title in GROUPS.values():
        assert f"\n{title}:\n" in text, title
    assert "(default: 8080)" in text and "docs/options.md" in text


@pytest.mark.parametrize(("word", "expected"), [
    ("prot", "port"), ("hots", "host"), ("max-conections", "max-connections"),
    ("lsiting", "listing"), ("tls-crt", "tls-cert"), ("bogus", None), ("x", None),
])
def test_nearest_key(word: str, expected: str | None) -> None:
    assert cmdline._nearest(word, cmdline._TOML_KEYS) == expected


def test_swaps_count_as_one_slip() -> None:
    assert cmdline._slips("prot", "port") == 1
    assert cmdline._slips("prot", "root") == 2
    assert cmdline._slips("", "abc") == 3
    assert cmdline._slips("kitten", "sitting") == 3


# --- --auth, and what only the disk can tell (check_environment) --------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--auth", "bob"], "--auth #1: expected USER:PASSWORD (non-empty)"),
    (["--auth", ":pw"], "--auth #1: expected USER:PASSWORD (non-empty)"),
    (["--auth", "bob:"], "--auth #1: expected USER:PASSWORD (non-empty)"),
    (["--auth", "a:b", "--auth", "bob:p\x01w"], "--auth #2: expected USER:PASSWORD (non-empty)"),
    (["--auth", "a:b", "--auth", "a:c"], "--auth #2: user 'a' given twice"),
])
def test_bad_auth_is_refused_as_auth_credentials_would(
        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """The pairs are parsed by auth.Credentials itself; the password is never echoed."""
    line = one_error_line(capsys, argv)
    assert line == "evserver: error: " + message
    assert "pw" not in line


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(certificate, its key, another key), made with openssl."""
    openssl = need_tool("openssl")
    folder = tmp_path_factory.mktemp("tls")
    made = []
    for name in ("a", "b"):
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        made.append((cert, key))
    return made[0][0], made[0][1], made[1][1]


def check_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> str:
    return one_error_line(capsys, ["--check-config", "--root", str(tmp_path), "--no-log",
                                   *argv])


def test_check_config_loads_the_tls_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          tls_files: tuple[Path, Path, Path]) -> None:
    cert, key, other_key = tls_files
    missing = tmp_path / "missing.pem"
    line = check_line(capsys, tmp_path, "--tls-cert", str(missing), "--tls-key", str(key))
    assert line == f"evserver: error: --tls-cert {str(missing)!r} cannot be read: " \
                   "No such file or directory"
    line = check_line(capsys, tmp_path, "--tls-cert", str(cert), "--tls-key", str(missing))
    assert line == f"evserver: error: --tls-key {str(missing)!r} cannot be read: " \
                   "No such file or directory"
    line = check_line(capsys, tmp_path, "--tls-cert", str(tmp_path), "--tls-key", str(key))
    assert line == f"evserver: error: --tls-cert {str(tmp_path)!r} is not a file"
    for wrong in (cert, other_key):
        line = check_line(capsys, tmp_path, "--tls-cert", str(cert), "--tls-key", str(wrong))
        assert line.startswith(f"evserver: error: --tls-cert {str(cert)!r} and --tls-key "
                               f"{str(wrong)!r} cannot be loaded: "), line
    text = check_config(capsys, ["--root", str(tmp_path), "--no-log", "--tls-cert", str(cert),
                                 "--tls-key", str(key)])
    assert tomllib.loads(text)["tls-cert"] == str(cert)


def test_check_config_names_a_files_tls_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            tls_files: tuple[Path, Path, Path]) -> None:
    """A certificate named in a configuration file: the file, its key and the path."""
    cert, _, _ = tls_files
    path = write_toml(tmp_path, f'tls-cert = "{cert}"\ntls_key = "gone.pem"\n')
    line = one_error_line(capsys, ["--check-config", "--config", str(path), "--no-log",
                                   "--root", str(tmp_path)])
    assert line == (f"evserver: error: {path}: tls_key {str(tmp_path / 'gone.pem')!r} cannot "
                    "be read: No such file or directory")


def test_check_config_parses_the_auth_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from evserver.auth import hash_password
    users = tmp_path / "users"
    line = check_line(capsys, tmp_path, "--auth-file", str(users))
    assert line == f"evserver: error: --auth-file {str(users)!r} cannot be read: " \
                   "No such file or directory"
    users.write_text("# team\ncarol\n")
    line = check_line(capsys, tmp_path, "--auth-file", str(users))
    assert line == f"evserver: error: --auth-file {str(users)!r}, line 2: expected user:hash"
    users.write_text("carol:not-a-hash\n")
    line = check_line(capsys, tmp_path, "--auth-file", str(users))
    assert line.startswith(f"evserver: error: --auth-file {str(users)!r}, line 1: not a "
                           "supported hash")
    assert "not-a-hash" not in line
    users.write_text("# nobody yet\n")
    line = check_line(capsys, tmp_path, "--auth-file", str(users))
    assert line == f"evserver: error: --auth-file {str(users)!r}: no users: give --auth " \
                   "USER:PASSWORD or a non-empty auth file"
    users.write_text(f"carol:{hash_password('pw', scheme='pbkdf2_sha256')}\n")
    line = check_line(capsys, tmp_path, "--auth-file", str(users), "--auth", "carol:x")
    assert line == f"evserver: error: --auth-file {str(users)!r}, line 1: user 'carol' " \
                   "defined twice"
    check_config(capsys, ["--root", str(tmp_path), "--no-log", "--auth-file", str(users)])


def test_check_config_needs_cryptography_for_self_signed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Looked for with importlib.util.find_spec (a None in sys.modules hides a package)."""
    monkeypatch.setitem(sys.modules, "cryptography", None)  # type: ignore[arg-type]
    line = check_line(capsys, tmp_path, "--tls-self-signed")
    assert line == ("evserver: error: --tls-self-signed needs the optional 'cryptography' "
                    "package (python3 -m pip install cryptography)")


@pytest.mark.parametrize(("coding", "package"), [("br", "brotli"), ("zstd", "zstandard")])
def test_check_config_needs_the_package_of_a_coding_it_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, coding: str, package: str) -> None:
    """A coding named in --compress-encodings needs its package; 'auto' and --no-compress
    take what is there."""
    monkeypatch.setitem(sys.modules, package, None)  # type: ignore[arg-type]
    line = check_line(capsys, tmp_path, "--compress-encodings", f"gzip,{coding}:4")
    assert line == (f"evserver: error: --compress-encodings {coding} needs the optional "
                    f"{package!r} package (python3 -m pip install {package})")
    check_config(capsys, ["--root", str(tmp_path), "--no-log"])
    check_config(capsys, ["--root", str(tmp_path), "--no-log", "--no-compress",
                          "--compress-encodings", coding])


def test_check_environment_is_not_run_by_a_plain_parse(tmp_path: Path) -> None:
    """Other callers (tests, tools) parse a command line without touching the disk; a real
    start asks for the checks with check_environment=True."""
    argv = ["--root", str(tmp_path / "missing"), "--tls-cert", "no.pem", "--tls-key", "no.pem"]
    cfg = cmdline.parse(argv)
    with pytest.raises(ConfigError, match="--root .* is not a directory"):
        cfg.check_environment()
    with pytest.raises(SystemExit):
        cmdline.parse(argv, check_environment=True)
