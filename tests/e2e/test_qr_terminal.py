"""The `--qr` code as the real command prints it on its terminal (a pseudo-terminal), decoded
by zbarimg as a dark and a light terminal would show it (tests/unit/test_qr.py models the
terminal)."""
from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.unit.test_banner import qr_art
from tests.unit.test_qr import (
    DARK,
    LIGHT,
    SCHEMES,
    Scheme,
    decode_greys,
    find_zbarimg,
    screenshot,
    visible,
)

# The real command under a pseudo-terminal: bound to loopback only, with the banner's address
# list made to add a documentation address (TEST-NET-1), which --qr then shows.
SHOWN_URL_HOST = "192.0.2.7"
_RUN = ("import sys, evserver.banner as b\n"
        f"b.url_hosts = lambda host: [host, {SHOWN_URL_HOST!r}]\n"
        "from evserver.__main__ import main\n"
        "sys.exit(main())\n")


def run_under_pty(tmp_path: Path, environ: dict[str, str], timeout: float = 20.0) -> str:
    """What `python3 -m evserver --qr -b 127.0.0.1 -p 0` writes to its terminal (a pty) up to
    "press Ctrl+C to stop"; then it is stopped with SIGINT."""
    root = tmp_path / "site"
    root.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORFGBG", "TERM")}
    env.update(environ, PYTHONPATH=str(REPO))
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _RUN, "--qr", "-b", "127.0.0.1", "-p", "0", "-d", str(root),
             "--no-log"], stdin=follower, stdout=follower, stderr=follower, env=env,
            cwd=tmp_path, start_new_session=True)
    finally:
        os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + timeout
        while b"press Ctrl+C" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child has gone, and the terminal with it
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        os.close(leader)
    text = output.decode("utf-8", "replace")
    assert "press Ctrl+C" in text, f"no banner in time: {text!r}"
    return text


@pytest.mark.parametrize("environ,schemes", [
    ({"TERM": "xterm-256color"}, SCHEMES),
    ({"TERM": "xterm-256color", "NO_COLOR": "1"}, [DARK]),
    ({"TERM": "dumb", "COLORFGBG": "0;15"}, [LIGHT]),
], ids=["colour", "NO_COLOR", "TERM=dumb,light COLORFGBG"])
def test_qr_code_printed_by_the_command_on_a_terminal_scans(
        tmp_path: Path, environ: dict[str, str], schemes: list[Scheme]) -> None:
    """End to end: the code the command prints on its terminal decodes to the URL it names,
    in colour on dark and light terminals alike, plain in the scheme it is made for."""
    zbarimg = find_zbarimg()
    text = run_under_pty(tmp_path, environ)
    url = re.search(rf"scan to open (http://{re.escape(SHOWN_URL_HOST)}:\d+/):", text)
    assert url is not None, text
    art = qr_art(text, url.group(1))
    assert ("\x1b[" in art) == (schemes == SCHEMES)
    assert set(visible(art)) <= set("▀▄█ \n")
    for scheme in schemes:
        assert decode_greys(zbarimg, screenshot(art, scheme), tmp_path) == url.group(1), scheme
