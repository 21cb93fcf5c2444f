"""site.py: the frozen per-server facts, rendered once at start, rebuilt whole at SIGHUP."""
from __future__ import annotations

import base64
import logging
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from evserver import auth
from evserver.config import Config
from evserver.site import Site, response_fields


def config(root: Path, **options: object) -> Config:
    return replace(Config(host="127.0.0.1", port=0, docroot=str(root), access_log=None),
                   **options)  # type: ignore[arg-type]


def basic(user_pass: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user_pass)


@pytest.fixture
def cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made in the test are cheap (the format and code path are the same)."""
    monkeypatch.setattr(auth, "SCRYPT_PARAMS", (2**8, 8, 1))


def test_every_response_carries_our_fields_then_the_operators() -> None:
    cfg = Config(headers=("X-Frame-Options: DENY",), cors="https://app.example")
    assert response_fields(cfg) == (b"Server: evserver\r\nX-Content-Type-Options: nosniff\r\n"
                                    b"X-Frame-Options: DENY\r\n"
                                    b"Access-Control-Allow-Origin: https://app.example\r\n"
                                    b"Vary: Origin\r\n")
    assert b"Vary" not in response_fields(Config(cors="*"))  # the same answer for everyone


def test_the_site_renders_the_start_of_a_200_and_hsts_over_tls_only(tmp_path: Path) -> None:
    site = Site.build(config(tmp_path, hsts=3600), str(tmp_path))
    assert site.ok_start == b"HTTP/1.1 200 OK\r\n" + site.fields
    assert b"Strict-Transport-Security" not in site.fields
    assert site.tls_fields == site.fields + b"Strict-Transport-Security: max-age=3600\r\n"
    assert site.tls_ok_start == b"HTTP/1.1 200 OK\r\n" + site.tls_fields
    with pytest.raises(FrozenInstanceError):
        site.tls_port = 443  # type: ignore[misc]


@pytest.mark.parametrize("options, screening", [
    ({}, False),  # the common case: one flag test per request, nothing more
    ({"status_path": "/_status"}, True),
    ({"health_path": "/healthz"}, True),
    ({"allow": ("10.0.0.0/8",)}, True),
    ({"deny": ("10.0.0.0/8",)}, True),
    ({"trusted_proxies": ("10.0.0.1",)}, True),
    ({"tls_cert": "cert.pem", "tls_key": "key.pem", "tls_port": 8443, "tls_redirect": True},
     True),  # plain HTTP answers with a redirect
    # HTTPS alone screens nothing: plain HTTP on its port is known per connection
    ({"tls_cert": "cert.pem", "tls_key": "key.pem"}, False),
])
def test_screening_only_when_a_rule_needs_the_path_or_the_address(
        tmp_path: Path, options: dict[str, object], screening: bool) -> None:
    assert Site.build(config(tmp_path, **options), str(tmp_path)).screening is screening


def test_reloaded_reads_error_pages_and_the_auth_file_again(cheap: None, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"alice:{auth.hash_password('a')}\n")
    cfg = config(tmp_path, auth_file=str(users))
    site = Site.build(cfg, str(tmp_path), credentials=auth.Credentials(auth_file=users))
    (tmp_path / "404.html").write_bytes(b"<p>gone</p>")
    users.write_text(f"bob:{auth.hash_password('b')}\n")
    new = site.reloaded()
    assert new.error_pages == {404: b"<p>gone</p>"} and site.error_pages == {}
    assert new.credentials is not None and site.credentials is not None
    assert new.credentials.check(basic(b"bob:b"), 0.0) == "bob"
    assert new.credentials.check(basic(b"alice:a"), 0.0) is None
    assert site.credentials.check(basic(b"alice:a"), 0.0) == "alice"  # the old one is intact
    assert new.screening and new.fields == site.fields


def test_a_broken_auth_file_keeps_the_users_and_says_why(
        cheap: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    users = tmp_path / "users"
    users.write_text(f"alice:{auth.hash_password('a')}\n")
    cfg = config(tmp_path, auth_file=str(users))
    site = Site.build(cfg, str(tmp_path), credentials=auth.Credentials(auth_file=users))
    users.write_text("alice\n")
    (tmp_path / "503.html").write_bytes(b"busy")
    with caplog.at_level(logging.ERROR, logger="evserver"):
        new = site.reloaded()
    assert new.credentials is site.credentials  # the working users stay
    assert new.error_pages == {503: b"busy"}  # the rest is read again all the same
    assert any("auth file not reloaded" in r.getMessage() and "line 1" in r.getMessage()
               for r in caplog.records)


def test_a_site_without_logins_reloads_only_its_pages(tmp_path: Path) -> None:
    site = Site.build(config(tmp_path), str(tmp_path))
    assert site.reloaded().credentials is None
