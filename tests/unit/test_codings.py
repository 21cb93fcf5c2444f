"""codings.py: the option's syntax, which codings are on, which types are worth encoding,
and encoders whose bytes depend on the content only."""
from __future__ import annotations

import gzip
import importlib.util
import os
import zlib
from pathlib import Path

import pytest

from evserver import codings
from evserver.codings import (
    AUTO,
    READ_SIZE,
    Encoder,
    coding_list,
    compress_file,
    compressible,
    enabled,
    installed,
)

TEXT = b"".join(b"line %d of a text that repeats itself a good deal\n" % i
                for i in range(20_000))
HAVE_BROTLI = importlib.util.find_spec("brotli") is not None
HAVE_ZSTD = importlib.util.find_spec("zstandard") is not None


@pytest.mark.parametrize(("text", "normal"), [
    ("auto", "auto"),
    (" AUTO ", "auto"),
    ("gzip", "gzip:6"),
    ("gzip:1", "gzip:1"),
    ("gzip:9,br:11,zstd:19", "gzip:9,br:11,zstd:19"),
    ("br:0, zstd:1", "br:0,zstd:1"),
    ("zstd", "zstd:3"),
    ("br", "br:5"),
])
def test_coding_list_normalises(text: str, normal: str) -> None:
    """Names, then levels (a default when absent), in the operator's order."""
    assert coding_list(text) == normal


@pytest.mark.parametrize(("text", "message"), [
    ("lzma", "names 'lzma': the codings are br, zstd, gzip"),
    ("gzip:0", "gives gzip the level '0': gzip takes 1 to 9"),
    ("gzip:10", "gives gzip the level '10': gzip takes 1 to 9"),
    ("br:12", "gives br the level '12': br takes 0 to 11"),
    ("zstd:20", "gives zstd the level '20': zstd takes 1 to 19"),
    ("gzip:x", "gives gzip the level 'x': gzip takes 1 to 9"),
    ("gzip:", "gives gzip the level '': gzip takes 1 to 9"),
    ("gzip,gzip:2", "lists gzip twice"),
    ("", "names '': the codings are br, zstd, gzip"),
    ("gzip,,br", "names '': the codings are br, zstd, gzip"),
])
def test_coding_list_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        coding_list(text)
    assert str(info.value) == message


def test_enabled_reads_levels_and_auto_takes_what_is_installed() -> None:
    assert enabled("gzip:9,br:4") == {"gzip": 9, "br": 4}
    auto = enabled(AUTO)
    assert auto["gzip"] == 6 and list(auto) == [c for c in ("br", "zstd", "gzip")
                                               if installed(c)]
    assert ("br" in auto) == HAVE_BROTLI and ("zstd" in auto) == HAVE_ZSTD


def test_installed_looks_for_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """gzip needs nothing; the others need their package, found without importing it."""
    seen = []

    def find_spec(name: str) -> object:
        seen.append(name)
        return None

    monkeypatch.setattr(codings.importlib.util, "find_spec", find_spec)
    assert installed("gzip") and not installed("br") and not installed("zstd")
    assert seen == ["brotli", "zstandard"]


@pytest.mark.parametrize("ctype", [
    "text/html; charset=utf-8", "text/css", "TEXT/PLAIN", "text/javascript; charset=utf-8",
    "application/javascript", "application/json", "application/manifest+json",
    "application/ld+json", "application/xml", "application/atom+xml", "image/svg+xml",
    "application/wasm", "font/ttf", "font/otf", "image/vnd.microsoft.icon", "image/bmp",
    "application/yaml", "application/toml", "application/json; charset=utf-8",
    "image/svg+xml; charset=utf-8", "application/vnd.api+json", "application/vnd.a+b+json",
])
def test_compressible_types(ctype: str) -> None:
    assert compressible(ctype)


@pytest.mark.parametrize("ctype", [
    "image/png", "image/jpeg", "image/webp", "video/mp4", "audio/mpeg", "font/woff",
    "font/woff2", "application/gzip", "application/zip", "application/octet-stream",
    "application/pdf", "image/png+xml-ish", "application/x-foo",
])
def test_types_not_worth_encoding(ctype: str) -> None:
    assert not compressible(ctype)


def test_extra_types_add_to_the_list_but_never_already_compressed_ones() -> None:
    assert compressible("application/x-foo", ("application/x-foo",))
    assert compressible("model/gltf+json", ("model/*",))
    assert compressible("model/obj", ("model/*",))
    assert not compressible("font/woff2", ("font/*",))
    assert not compressible("application/x-bar", ("application/x-foo",))


@pytest.mark.parametrize("name", ["gzip", "br", "zstd"])
def test_encoder_output_does_not_depend_on_how_the_input_is_cut(name: str) -> None:
    """One file, one set of bytes: a strong ETag for whatever way it was read."""
    if not installed(name):
        pytest.skip(f"{name} needs its optional package")
    whole = Encoder(name, 3)
    one = whole.encode(TEXT) + whole.finish()
    pieces = Encoder(name, 3)
    cut = b"".join(pieces.encode(TEXT[i:i + READ_SIZE])
                   for i in range(0, len(TEXT), READ_SIZE)) + pieces.finish()
    assert one == cut
    assert decode(name, one) == TEXT and len(one) < len(TEXT) // 3


def decode(name: str, data: bytes) -> bytes:
    if name == "gzip":
        return gzip.decompress(data)
    if name == "br":
        import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]
        return bytes(brotli.decompress(data))
    import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def test_gzip_bytes_carry_no_time_and_use_the_level() -> None:
    """The gzip header's mtime is zero (the bytes depend on the content only)."""
    fast, best = Encoder("gzip", 1), Encoder("gzip", 9)
    a = fast.encode(TEXT) + fast.finish()
    b = best.encode(TEXT) + best.finish()
    assert a[:2] == b"\x1f\x8b" and a[4:8] == b"\0\0\0\0"
    assert len(b) < len(a) and zlib.decompress(b, 31) == TEXT


def test_an_unknown_coding_has_no_encoder() -> None:
    with pytest.raises(ValueError, match="unknown coding 'lzma'"):
        Encoder("lzma", 1)


def test_compress_file_reads_in_steps_and_notices_a_short_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(TEXT)
    fd = os.open(path, os.O_RDONLY)
    try:
        data = compress_file(fd, len(TEXT), "gzip", 6)
        assert data is not None and gzip.decompress(data) == TEXT
        assert compress_file(fd, len(TEXT) + 1, "gzip", 6) is None  # it shrank meanwhile
        empty = compress_file(fd, 0, "gzip", 6)
        assert empty is not None and gzip.decompress(empty) == b""
    finally:
        os.close(fd)


def test_compress_file_reads_no_further_than_the_size_it_was_given(tmp_path: Path) -> None:
    """A file that grew since it was looked at: the encoding covers the size announced."""
    path = tmp_path / "t.txt"
    path.write_bytes(TEXT * 2)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = READ_SIZE + 10
        data = compress_file(fd, size, "gzip", 6)
        assert data is not None and gzip.decompress(data) == (TEXT * 2)[:size]
    finally:
        os.close(fd)
