"""Content codings evserver produces itself: which types are worth it, and the encoders.

Owns: `CODINGS` (what can be produced, with level ranges), `coding_list()` (the option's
syntax), `installed()`, `enabled()`, `compressible()`, `Encoder`, `compress_bytes()` and
`compress_file()`.
Imports nothing from evserver. gzip comes from the standard library's zlib; `br` and
`zstd` from the optional `brotli` and `zstandard` packages, imported here and only when an
encoder is made (in the pool: an import reads the disk), so evserver runs without them.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Coding:
    """A coding we can produce: its level range and default, and the package it needs."""

    lowest: int
    highest: int
    default: int
    package: str  # "" for the standard library


# Defaults: a result is cached, so a level that costs a little more once is worth its
# bytes; but a file too large for the cache is encoded per request, so not the slowest.
CODINGS = {
    "br": Coding(0, 11, 5, "brotli"),
    "zstd": Coding(1, 19, 3, "zstandard"),
    "gzip": Coding(1, 9, 6, ""),
}
AUTO = "auto"

# Types that shrink: text, and the binary formats that are not compressed already (wasm,
# TrueType/OpenType fonts, icons and bitmaps). `type/*` covers a whole top-level type and
# `+json` / `+xml` structured suffixes are matched as their base types (RFC 6839).
_COMPRESSIBLE = frozenset((
    "text/*", "application/javascript", "application/x-javascript", "application/json",
    "application/xml", "application/xhtml+xml", "application/wasm", "application/yaml",
    "application/toml", "application/x-sh", "application/rtf",
    "image/svg+xml", "image/bmp", "image/vnd.microsoft.icon", "image/x-icon", "font/ttf",
    "font/otf", "font/collection", "application/vnd.ms-fontobject",
))
# Never worth encoding even under `text/*`-style patterns given by the operator.
_ALREADY_COMPRESSED = frozenset(("font/woff", "font/woff2", "application/gzip",
                                 "application/zip", "application/zstd"))


def coding_list(text: str) -> str:
    """Check and normalise `--compress-encodings`: `auto`, or `CODING[:LEVEL]` items
    separated by commas. (Which one a client gets follows its weights, then br, zstd,
    gzip on a tie: `semantics.accepted_encodings`.)"""
    text = text.strip().lower()
    if text == AUTO:
        return text
    items: list[str] = []
    for item in text.split(","):
        name, colon, level_text = item.strip().partition(":")
        coding = CODINGS.get(name)
        if coding is None:
            raise ValueError(f"names {name!r}: the codings are {', '.join(CODINGS)}")
        level = coding.default
        if colon:
            if not level_text.isdigit() or not (coding.lowest <= int(level_text)
                                                <= coding.highest):
                raise ValueError(f"gives {name} the level {level_text!r}: {name} takes "
                                 f"{coding.lowest} to {coding.highest}")
            level = int(level_text)
        if any(i.startswith(name + ":") for i in items):
            raise ValueError(f"lists {name} twice")
        items.append(f"{name}:{level}")
    return ",".join(items)


def installed(name: str) -> bool:
    """Whether coding `name` can be produced here (finds the package without importing it)."""
    package = CODINGS[name].package
    return not package or importlib.util.find_spec(package) is not None


@functools.lru_cache(maxsize=8)
def enabled(spec: str) -> dict[str, int]:
    """The codings a `--compress-encodings` value turns on, with their levels; `auto` is
    every coding whose package is installed, at its default level."""
    if spec == AUTO:
        return {name: c.default for name, c in CODINGS.items() if installed(name)}
    found = {}
    for item in spec.split(","):
        name, _, level = item.partition(":")
        found[name] = int(level)
    return found


def compressible(ctype: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether a Content-Type (parameters allowed) is one to encode: the built-in list
    plus `extra` (--compress-type, which may use `type/*`)."""
    base = ctype.partition(";")[0].strip().lower()
    if base in _ALREADY_COMPRESSED:
        return False
    top = base.partition("/")[0] + "/*"
    if base in _COMPRESSIBLE or top in _COMPRESSIBLE or base in extra or top in extra:
        return True
    suffix = base.rpartition("+")[2]
    return "+" in base and f"application/{suffix}" in _COMPRESSIBLE


class Encoder:
    """One content-coding stream: `encode()` the input in pieces, then `finish()`. The same
    input gives the same bytes however it is cut (no flush between pieces), so a file's
    encoding has one strong ETag. Made and used in the pool only."""

    __slots__ = ("_encode", "_finish")

    def __init__(self, name: str, level: int) -> None:
        self._encode: Callable[[bytes | memoryview], bytes]
        self._finish: Callable[[], bytes]
        if name == "gzip":
            # wbits 31: the gzip container, with a zero mtime: the bytes depend on the
            # content only (gzip.compress would stamp the time into them).
            z = zlib.compressobj(level, zlib.DEFLATED, 31)
            self._encode, self._finish = z.compress, z.flush
        elif name == "br":
            b = importlib.import_module("brotli").Compressor(quality=level)
            self._encode, self._finish = b.process, b.finish
        elif name == "zstd":
            z = importlib.import_module("zstandard").ZstdCompressor(level=level).compressobj()
            self._encode, self._finish = z.compress, z.flush
        else:
            raise ValueError(f"unknown coding {name!r}")

    def encode(self, data: bytes | memoryview) -> bytes:
        return self._encode(data)

    def finish(self) -> bytes:
        return self._finish()


READ_SIZE = 256 * 1024  # input read and encoded per step: bounds a job's memory


def compress_bytes(data: bytes, name: str, level: int) -> bytes:
    """`data` encoded whole, in the steps `compress_file` takes (the same bytes)."""
    encoder = Encoder(name, level)
    view = memoryview(data)
    out = [encoder.encode(view[i:i + READ_SIZE]) for i in range(0, len(data), READ_SIZE)]
    out.append(encoder.finish())
    return b"".join(out)


def compress_file(fd: int, size: int, name: str, level: int) -> bytes | None:
    """The file behind `fd` (`size` bytes, read in steps) encoded whole, or None when it
    did not have `size` bytes (it changed while being read). Runs in the pool only."""
    encoder = Encoder(name, level)
    out = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(READ_SIZE, size - offset), offset)
        if not chunk:
            return None
        out.append(encoder.encode(chunk))
        offset += len(chunk)
    out.append(encoder.finish())
    return b"".join(out)
