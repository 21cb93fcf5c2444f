"""End to end: --tls-self-signed makes a certificate for this machine (with the optional
cryptography package), prints its fingerprint, serves HTTPS with it, and keeps it."""
from __future__ import annotations

import hashlib
import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, spawn, wait_for
from tests.tools import need_module


@pytest.fixture(autouse=True)
def _cryptography() -> None:
    """--tls-self-signed needs the optional cryptography package (a test extra)."""
    need_module("cryptography")


def fingerprint_of(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def serve_once(start_process: Callable[..., ServerProcess]) -> str:
    """Start with --tls-self-signed, check the printed fingerprint is the served one."""
    sp = start_process("--tls-self-signed", "--tls-port", "0")
    assert wait_for(lambda: "https://127.0.0.1:" in sp.stderr())
    printed = re.search(r"SHA-256 ([0-9A-F:]{95})", sp.stderr())
    port = re.search(r"https://127\.0\.0\.1:(\d+)/", sp.stderr())
    assert printed is not None and port is not None
    assert fingerprint_of(int(port.group(1))) == printed.group(1)
    assert sp.terminate() == 0
    return printed.group(1)


def test_self_signed_certificate_is_made_printed_used_and_kept(
        start_process: Callable[..., ServerProcess], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    first = serve_once(start_process)
    assert serve_once(start_process) == first  # a restart keeps the same certificate
    key = tmp_path / "state" / "evserver" / "selfsigned.key"
    assert key.stat().st_mode & 0o077 == 0  # the private key is its owner's only


def test_self_signed_with_a_certificate_is_a_one_line_error(tmp_path: Path) -> None:
    proc, stderr_path = spawn(["--port", "0", "--no-log", "--tls-self-signed", "--tls-cert",
                               "c.pem", "--tls-key", "k.pem"], tmp_path)
    assert proc.wait(15) == 2
    assert len(stderr_path.read_text().strip().splitlines()) == 1
