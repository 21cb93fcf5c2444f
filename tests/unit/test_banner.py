"""The start-up banner (`banner.show`): URLs, colours on a terminal, the --qr code."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from evserver import banner as start_banner
from evserver.config import Config
from tests.unit.test_qr import decode, find_zbarimg, terminal_to_ink


def banner(caplog: pytest.LogCaptureFixture, host: str, **options: object) -> str:
    cfg = Config(host=host, port=8080, docroot=".", **options)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="evserver"):
        logger = logging.getLogger("evserver")
        propagate, logger.propagate = logger.propagate, True  # let caplog see the records
        try:
            start_banner.show(host, 8080, cfg)
        finally:
            logger.propagate = propagate
    return "\n".join(r.getMessage() for r in caplog.records)


def test_banner_lists_loopback_then_lan_urls(caplog: pytest.LogCaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """0.0.0.0: the loopback URL first, then one per LAN address; no colour off a tty."""
    monkeypatch.setattr(start_banner, "ipv4_addresses", lambda: ["192.168.1.20", "10.0.0.5"])
    text = banner(caplog, "0.0.0.0")
    urls = re.findall(r"http://\S+", text)
    assert urls == ["http://127.0.0.1:8080/", "http://192.168.1.20:8080/",
                    "http://10.0.0.5:8080/"]
    assert "\x1b[" not in text and "access log:" in text


def test_banner_says_live_reload_is_on(caplog: pytest.LogCaptureFixture) -> None:
    line = ("live reload: open pages reload when a file under the root changes "
            "(for development)")
    assert line in banner(caplog, "127.0.0.1", live_reload=True).splitlines()
    caplog.clear()
    assert "live reload" not in banner(caplog, "127.0.0.1")


def test_banner_ipv6_dual_stack(caplog: pytest.LogCaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`::` serves IPv4 too: both families' URLs, IPv6 ones in brackets."""
    monkeypatch.setattr(start_banner, "ipv4_addresses", lambda: ["192.168.1.20"])
    monkeypatch.setattr(start_banner, "ipv6_addresses", lambda: ["2001:db8::7"])
    urls = re.findall(r"http://\S+", banner(caplog, "::"))
    assert urls == ["http://127.0.0.1:8080/", "http://192.168.1.20:8080/",
                    "http://[::1]:8080/", "http://[2001:db8::7]:8080/"]


def test_banner_colours_urls_on_a_terminal(caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    text = banner(caplog, "127.0.0.1")
    assert "\x1b[1;36mhttp://127.0.0.1:8080/\x1b[0m" in text


def test_qr_code_of_the_lan_url_scans(caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--qr: a QR code of the first LAN URL (not loopback: a phone cannot use that),
    which a real decoder (zbarimg) reads back."""
    monkeypatch.setattr(start_banner, "ipv4_addresses", lambda: ["192.168.1.20"])
    text = banner(caplog, "0.0.0.0", qr=True)
    assert "scan to open http://192.168.1.20:8080/" in text
    art = "\n".join(line for line in text.split("\n") if line and set(line) <= set("▀▄█ "))
    shown = terminal_to_ink(art)[:len(art.split("\n")[0])]
    frame = 3  # the dark terminal around the art
    width = len(shown) + 2 * frame
    dark = [[True] * width for _ in range(frame)]
    dark += [[True] * frame + [not cell for cell in row] + [True] * frame for row in shown]
    dark += [[True] * width for _ in range(frame)]
    assert decode(find_zbarimg(), dark, tmp_path) == "http://192.168.1.20:8080/"


def test_qr_without_a_lan_address_says_so(caplog: pytest.LogCaptureFixture) -> None:
    text = banner(caplog, "127.0.0.1", qr=True)
    assert "no LAN address" in text and "█" not in text
