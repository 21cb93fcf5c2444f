"""End to end: HTTPS with the `ssl` module inside the loop (--tls-cert/--tls-key/--tls-port),
with curl and Python's ssl client: keep-alive, large files (pool reads, no sendfile), ranges,
plain HTTP on the HTTPS port, stalled and reset handshakes, the redirect, bad certificates."""
from __future__ import annotations

import re
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BIG_SIZE, ServerProcess, spawn, wait_for
from tests.tools import need_tool
from tests.wire import Reader, get, request

Start = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl = need_tool("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def start_tls(start_process: Start, certificate: tuple[Path, Path],
              *extra: str) -> tuple[ServerProcess, int]:
    cert, key = certificate
    sp = start_process("--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", "0", *extra)
    assert wait_for(lambda: "https://127.0.0.1:" in sp.stderr())
    match = re.search(r"https://127\.0\.0\.1:(\d+)/", sp.stderr())
    assert match is not None
    return sp, int(match.group(1))


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    context.set_alpn_protocols(["http/1.1"])
    return context


def tls_connect(port: int, certificate: tuple[Path, Path]) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return client_context(certificate).wrap_socket(raw, server_hostname="localhost")


def test_curl_over_https(start_process: Start, certificate: tuple[Path, Path],
                         site: Path) -> None:
    sp, port = start_tls(start_process, certificate)
    curl = need_tool("curl")
    out = subprocess.run([curl, "-s", "--cacert", str(certificate[0]),
                          f"https://localhost:{port}/hello.txt", "--resolve",
                          f"localhost:{port}:127.0.0.1"], capture_output=True, timeout=20)
    assert out.returncode == 0 and out.stdout == b"hello, world\n", out.stderr
    assert get(sp.port, "/hello.txt").body == b"hello, world\n"  # plain HTTP beside it
    assert sp.terminate() == 0
    assert '"GET /hello.txt HTTP/1.1" 200' in sp.log_path.read_text()


def test_keep_alive_alpn_large_file_and_range_over_tls(
        start_process: Start, certificate: tuple[Path, Path], site: Path) -> None:
    """One TLS connection: ALPN http/1.1, TLS 1.2 or later, three requests including a
    3 MiB file (read by the pool in chunks, encrypted, byte-exact) and a range of it."""
    sp, port = start_tls(start_process, certificate)
    big = (site / "big.bin").read_bytes()
    with tls_connect(port, certificate) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        reader = Reader(tls)
        tls.sendall(request("/hello.txt", host="localhost"))
        assert reader.read_response().body == b"hello, world\n"
        tls.sendall(request("/big.bin", host="localhost"))
        whole = reader.read_response()
        assert whole.status == 200 and len(whole.body) == BIG_SIZE and whole.body == big
        tls.sendall(request("/big.bin", host="localhost",
                            headers="Range: bytes=1000000-1000099\r\n"))
        part = reader.read_response()
        assert part.status == 206 and part.body == big[1000000:1000100]
    assert sp.terminate() == 0


def test_plain_http_to_the_https_port_gets_a_clean_400(
        start_process: Start, certificate: tuple[Path, Path]) -> None:
    sp, port = start_tls(start_process, certificate)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request("/hello.txt", host="localhost"))
        resp = Reader(sock).read_response()
        assert resp.status == 400 and b"https://" in resp.body
        assert resp.header("connection") == "close"
    assert sp.terminate() == 0


def test_a_stalled_handshake_is_dropped_and_others_are_served(
        start_process: Start, certificate: tuple[Path, Path]) -> None:
    """A client that starts a ClientHello and stops: closed at the header timeout; a client
    that resets mid-handshake: nothing but a quiet close; others are served meanwhile."""
    sp, port = start_tls(start_process, certificate, "--handshake-timeout", "1")
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    reset = socket.create_connection(("127.0.0.1", port), timeout=10)
    reset.sendall(b"\x16\x03\x01")
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()
    with tls_connect(port, certificate) as tls:
        tls.sendall(request("/hello.txt", host="localhost"))
        assert Reader(tls).read_response().status == 200
    stalled.settimeout(5)
    assert stalled.recv(100) == b""  # closed by the server after ~1 s
    stalled.close()
    assert sp.terminate() == 0
    assert "Traceback" not in sp.stderr()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # naming TLS 1.1 is deprecated
def test_old_tls_versions_are_refused(start_process: Start,
                                      certificate: tuple[Path, Path]) -> None:
    sp, port = start_tls(start_process, certificate)
    context = client_context(certificate)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        context.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    assert sp.terminate() == 0


def test_plain_http_is_redirected_to_https(start_process: Start,
                                           certificate: tuple[Path, Path]) -> None:
    sp, port = start_tls(start_process, certificate, "--tls-redirect")
    resp = get(sp.port, "/sub/page.html?x=1")
    assert resp.status == 301
    # The host the client asked for (wire's `get` sends `Host: test`), on the TLS port.
    assert resp.header("location") == f"https://test:{port}/sub/page.html?x=1"
    assert sp.terminate() == 0


def test_a_bad_certificate_is_a_one_line_error(tmp_path: Path,
                                               certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    for key in (str(cert), str(tmp_path / "missing.pem")):  # not a key; no file
        proc, stderr_path = spawn(["--port", "0", "--no-log", "--tls-cert", str(cert),
                                   "--tls-key", key], tmp_path)
        assert proc.wait(15) == 2
        lines = stderr_path.read_text().strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0], lines


def test_hsts_only_over_https_and_only_when_asked(
        start_process: Start, certificate: tuple[Path, Path]) -> None:
    sp, port = start_tls(start_process, certificate, "--hsts", "31536000")
    with tls_connect(port, certificate) as tls:
        tls.sendall(request("/hello.txt", host="localhost"))
        assert Reader(tls).read_response().header("strict-transport-security") == \
            "max-age=31536000"
    assert get(sp.port, "/hello.txt").header("strict-transport-security") is None
    assert sp.terminate() == 0
    plain_sp, plain_port = start_tls(start_process, certificate)
    with tls_connect(plain_port, certificate) as tls:
        tls.sendall(request("/hello.txt", host="localhost"))
        assert Reader(tls).read_response().header("strict-transport-security") is None
    assert plain_sp.terminate() == 0


def test_proxy_protocol_preamble_comes_before_the_tls_handshake(
        start_process: Start, certificate: tuple[Path, Path]) -> None:
    """Behind a TCP balancer (HAProxy `send-proxy-v2` in `mode tcp`): the PROXY preamble,
    then TLS; the log shows the address the preamble names."""
    sp, port = start_tls(start_process, certificate, "--proxy-protocol",
                         "--trusted-proxy", "127.0.0.1")
    for corked in (False, True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        if corked:  # the preamble and the ClientHello in one segment, as balancers send them
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        raw.sendall(b"PROXY TCP4 198.51.100.40 127.0.0.1 40000 443\r\n")
        with client_context(certificate).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request("/hello.txt", host="localhost"))
            assert Reader(tls).read_response().status == 200
    assert sp.terminate() == 0
    lines = sp.log_path.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("198.51.100.40 - - ") for line in lines)


def test_connection_close_over_tls_closes_cleanly(
        start_process: Start, certificate: tuple[Path, Path]) -> None:
    """`Connection: close` over TLS: the response, then the end of the stream, and no
    error on the server's side (peeking for unread input must go below the TLS layer)."""
    sp, port = start_tls(start_process, certificate)
    for _ in range(3):
        with tls_connect(port, certificate) as tls:
            tls.sendall(request("/hello.txt", host="localhost", close=True))
            reader = Reader(tls)
            assert reader.read_response().body == b"hello, world\n"
            assert reader.at_eof(timeout=5)
    assert sp.terminate() == 0
    assert "Traceback" not in sp.stderr() and "internal error" not in sp.stderr()
