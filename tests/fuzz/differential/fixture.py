"""The fixture: a document root in a temp folder and, beside the root, a canary file.

The root holds text, HTML, a binary image, a 200 KiB file for ranges, a subfolder with an
index, and names with a space and a percent sign. The canary's content is a random token:
bytes that must never reach a client. Every file has the same known mtime.
"""
from __future__ import annotations

import calendar
import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

FIXED_MTIME = calendar.timegm((2024, 1, 2, 3, 4, 5))  # every file's mtime: dates are known
BIG_SIZE = 200 * 1024


def fixture_files() -> dict[str, bytes]:
    """The document root: relative path -> content (deterministic)."""
    noise = random.Random(1234)
    return {
        "index.html": b"<!doctype html><title>home</title><p>home</p>\n",
        "page.html": b"<!doctype html><title>page</title><p>a page</p>\n",
        "hello.txt": b"hello, world\n",
        "notes.txt": b"".join(b"line %d of the notes\n" % i for i in range(40)),
        "image.png": b"\x89PNG\r\n\x1a\n" + noise.randbytes(3000),
        "big.bin": noise.randbytes(BIG_SIZE),
        "space name.txt": b"a name with a space\n",
        "50%.txt": b"a name with a percent sign\n",
        "sub/index.html": b"<p>sub</p>\n",
        "sub/page.txt": b"a page in sub\n",
    }


@dataclass(frozen=True)
class Fixture:
    root: Path
    token: bytes  # the canary's content: bytes that must never reach a client


def make_fixture(folder: Path) -> Fixture:
    """The root in `folder`/root and the canary beside it, `folder`/canary.txt; files and
    folders readable by anyone (nginx may run its worker as another user)."""
    root = folder / "root"
    for name, content in fixture_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    token = b"CANARY-" + secrets.token_hex(16).encode()
    (folder / "canary.txt").write_bytes(token + b"\n")
    for path in (folder, *folder.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return Fixture(root, token)
