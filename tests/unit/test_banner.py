"""The start-up banner (`banner.show`): URLs, colours on a terminal, the --qr code (read back
by zbarimg as a dark and a light terminal show it, also from a real run under a pty)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from evserver import banner as start_banner
from evserver.config import Config
from tests.unit.test_qr import (
    DARK,
    LIGHT,
    SCHEMES,
    Scheme,
    decode_greys,
    find_zbarimg,
    screenshot,
)

REPO = Path(__file__).resolve().parents[2]
LAN_URL = "http://192.168.1.20:8080/"


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


@pytest.mark.parametrize("environ", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_banner_leaves_colour_out_when_the_terminal_says_so(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        environ: dict[str, str]) -> None:
    """NO_COLOR (https://no-color.org) or TERM=dumb: plain URLs, even on a terminal."""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    text = banner(caplog, "127.0.0.1")
    assert "http://127.0.0.1:8080/" in text and "\x1b[" not in text


def qr_art(text: str, url: str) -> str:
    """The code's lines: those after "scan to open URL:", up to the next "evserver:" line
    (the next message on a terminal) or the end."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = next(i for i, line in enumerate(lines) if line.endswith(f"scan to open {url}:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("evserver:")),
               len(lines))
    return "\n".join(lines[start + 1:end])


def qr_banner(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, *,
              tty: bool, **environ: str) -> str:
    """The --qr banner's "scan to open" message for a LAN address, stderr a terminal or not,
    in this environment (the colour variables not named are unset)."""
    monkeypatch.setattr(start_banner, "ipv4_addresses", lambda: ["192.168.1.20"])
    monkeypatch.setattr("sys.stderr.isatty", lambda: tty)
    for name in ("NO_COLOR", "TERM", "COLORFGBG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    banner(caplog, "0.0.0.0", qr=True)
    return next(record.getMessage() for record in caplog.records
                if record.getMessage().startswith("scan to open "))


def test_qr_code_of_the_lan_url_scans(caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--qr off a terminal: a QR code of the first LAN URL (not loopback: a phone cannot use
    that), plain text, light on dark, which a real decoder (zbarimg) reads on a dark terminal."""
    text = qr_banner(caplog, monkeypatch, tty=False, TERM="xterm-256color")
    assert "scan to open http://192.168.1.20:8080/" in text
    art = qr_art(text, LAN_URL)
    assert "\x1b" not in art and set(art) <= set("▀▄█ \n")
    assert decode_greys(find_zbarimg(), screenshot(art, DARK), tmp_path) == LAN_URL


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_qr_code_on_a_terminal_scans_on_dark_and_light_ones(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        scheme: Scheme) -> None:
    """On a terminal the code is in explicit colours: a dark and a light terminal (and a
    themed one) show the same code, and zbarimg reads it off each."""
    text = qr_banner(caplog, monkeypatch, tty=True, TERM="xterm-256color")
    art = qr_art(text, LAN_URL)
    assert art.count("\x1b[38;5;231;48;5;232m") == art.count("\x1b[0m") == len(art.split("\n"))
    assert decode_greys(find_zbarimg(), screenshot(art, scheme), tmp_path) == LAN_URL


@pytest.mark.parametrize("environ,scheme", [
    ({"NO_COLOR": "1", "TERM": "xterm-256color"}, DARK),
    ({"TERM": "dumb"}, DARK),
    ({"NO_COLOR": "1", "COLORFGBG": "0;15"}, LIGHT),
], ids=["NO_COLOR", "TERM=dumb", "NO_COLOR,light COLORFGBG"])
def test_qr_code_on_a_terminal_without_colour_is_plain(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        environ: dict[str, str], scheme: Scheme) -> None:
    """NO_COLOR or TERM=dumb: no escapes in the code; light on dark, or dark on light when
    COLORFGBG says the background is light; it scans in that scheme."""
    art = qr_art(qr_banner(caplog, monkeypatch, tty=True, **environ), LAN_URL)
    assert "\x1b" not in art
    assert decode_greys(find_zbarimg(), screenshot(art, scheme), tmp_path) == LAN_URL


def test_qr_without_a_lan_address_says_so(caplog: pytest.LogCaptureFixture) -> None:
    text = banner(caplog, "127.0.0.1", qr=True)
    assert "no LAN address" in text and "█" not in text


def test_banner_names_the_workers_before_press_ctrl_c(caplog: pytest.LogCaptureFixture) -> None:
    """--workers N: the count is one of the banner's lines, after the log and before
    "press Ctrl+C to stop", which stays the last; one process says nothing of workers."""
    lines = banner(caplog, "127.0.0.1", workers=3).splitlines()
    assert lines[-1] == "press Ctrl+C to stop"
    assert lines.index("3 worker processes") == lines.index(
        next(line for line in lines if line.startswith("access log: "))) + 1
    caplog.clear()
    assert "worker" not in banner(caplog, "127.0.0.1")
