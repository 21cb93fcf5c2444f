"""config.py: the table's defaults, validation by Config() however values arrive, the
environment checks, and immutability. The command line and the TOML file: test_cmdline.py."""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

import pytest

from evserver.config import Config, ConfigError
from evserver.options import Kind

KIB, MIB = 1024, 1024 * 1024


def test_defaults() -> None:
    """The documented defaults (docs/options.md)."""
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


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"log_format": "xml"}, "--log-format"),
    ({"status_path": "nope"}, "--status-path"),
    ({"metrics_path": "metrics"}, "--metrics-path"),
    ({"metrics_path": "/m", "status_path": "/m"}, "--metrics-path must differ from --status-path"),
    ({"metrics_path": "/m", "health_path": "/m"}, "--metrics-path must differ from --health-path"),
    ({"status_allow": ("x",)}, "--status-allow"),
    ({"headers": ("Date: now",)}, "--header"),
    ({"mime_types": ("x",)}, "--mime-type"),
    ({"cors": "x"}, "--cors"),
    ({"pidfile": ""}, "--pidfile"),
    ({"port": "80"}, "--port must be an integer"),
    ({"header_timeout": "1"}, "--header-timeout must be a number"),
    ({"listing": 1}, "--listing must be true or false"),
    ({"host": None}, "--host must be a string"),
    ({"headers": "X-A: b"}, "--header must be a list of strings"),
])
def test_constructor_validates_features(kwargs: dict[str, object], needle: str) -> None:
    """Config() itself applies the same checks (one code path for every source)."""
    with pytest.raises(ConfigError, match=needle):
        Config(**kwargs)  # type: ignore[arg-type]


def test_normalising_is_idempotent() -> None:
    """replace() re-runs the checks on stored values: they must pass unchanged."""
    cfg = Config(headers=("X-A:   b",), status_allow=("10.9.9.9/8",), mime_types=(".X=a/b",),
                 cors="HTTP://A.example")
    assert dataclasses.replace(cfg) == cfg


def test_every_field_has_a_kind_matching_its_type() -> None:
    """Each field declares how its values are checked (option() or fixed()), and that kind
    stores the very type the dataclass declares (the one mypy sees)."""
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        kind = f.metadata["kind"]
        assert isinstance(kind, Kind), f.name
        assert kind.annotation == hints[f.name], (f.name, kind.annotation, hints[f.name])
        assert kind.check(getattr(Config(), f.name)) == getattr(Config(), f.name), f.name


def test_check_environment_looks_at_the_disk(tmp_path: Path) -> None:
    """Config() checks values only; check_environment() then finds what the disk refuses."""
    cfg = Config(docroot=str(tmp_path / "missing"), tls_cert="no.pem", tls_key="no.pem")
    with pytest.raises(ConfigError, match="--root .* is not a directory"):
        cfg.check_environment()
    Config(docroot=str(tmp_path), access_log=None).check_environment()
