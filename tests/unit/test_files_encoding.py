"""files.py, encoding here (--compress): which file is encoded in which coding, the fields
and tags of each variant, what stays identity, and when a cached variant is reused."""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from evserver import files
from evserver.codings import installed
from evserver.config import Config
from evserver.files import NO_TRANSFORM, memory_limit
from tests.unit.test_files_edges import HTTP_DATE, MTIME_NS, load_with, real, touch

SCRIPT = b"".join(b"function f%d(a) { return a + %d; }\n" % (i, i * 7) for i in range(400))


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    touch(root / "app.js", SCRIPT)
    return root


def test_a_script_is_encoded_whole_with_its_own_fields_and_tag(docroot: Path) -> None:
    st = (docroot / "app.js").stat()
    body = load_with(docroot, b"/app.js", ("gzip",), cache_control="max-age=7")
    assert body.data is not None and gzip.decompress(body.data) == SCRIPT
    etag = b'"%x-%x-%x-gzip6"' % (st.st_ino, MTIME_NS, len(SCRIPT))
    meta = (b"Last-Modified: " + HTTP_DATE + b"\r\nETag: " + etag
            + b"\r\nCache-Control: max-age=7\r\nVary: Accept-Encoding\r\n")
    assert body.fields == (b"Content-Type: text/javascript; charset=utf-8\r\n"
                           b"Content-Length: %d\r\nContent-Encoding: gzip\r\n"
                           b"Accept-Ranges: bytes\r\n" % len(body.data) + meta)
    assert (body.etag, body.meta, body.size, body.fd) == (etag, meta, len(body.data), None)
    assert (body.encoded_here, body.identity_size, body.stream) == (True, len(SCRIPT), "")
    assert (body.mtime_ns, body.ino, body.path) == (MTIME_NS, st.st_ino,
                                                   real(docroot / "app.js"))


def test_the_identity_variant_of_an_encodable_file_varies(docroot: Path) -> None:
    body = load_with(docroot, b"/app.js", ())
    assert body.data == SCRIPT and body.vary and not body.encoded_here
    assert body.fields.endswith(b"Vary: Accept-Encoding\r\n")
    assert b'-gzip' not in body.etag and body.identity_size == -1


@pytest.mark.parametrize(("name", "data", "options"), [
    ("small.js", SCRIPT[:1023], {}),                               # under the threshold
    ("small.js", SCRIPT[:99], {"compress_min_size": 100}),
    ("photo.png", SCRIPT, {}),                                     # a type that is compressed
    ("font.woff2", SCRIPT, {}),
    ("app.js", SCRIPT, {"compress": False}),                       # --no-compress
    ("app.js", SCRIPT, {"cache_control": "max-age=60, No-Transform"}),
    ("page.html", SCRIPT, {"cache_control_html": "no-transform"}),
    ("app.js", SCRIPT, {"headers": ("Cache-Control: no-transform",)}),
    ("app.js", SCRIPT, {"headers": ('Cache-Control: private="a:b", no-transform',)}),
])
def test_files_that_are_never_encoded_here_do_not_vary(docroot: Path, name: str, data: bytes,
                                                        options: dict[str, Any]) -> None:
    touch(docroot / name, data)
    body = load_with(docroot, b"/" + name.encode(), ("gzip",), **options)
    assert body.data == data and body.coding == b"" and not body.vary
    assert b"Vary" not in body.fields


def test_no_transform_in_the_request_sends_identity_that_still_varies(docroot: Path) -> None:
    body = load_with(docroot, b"/app.js", ("gzip", NO_TRANSFORM))
    assert body.data == SCRIPT and body.coding == b"" and body.vary


def test_another_header_that_mentions_no_transform_does_not_count(docroot: Path) -> None:
    body = load_with(docroot, b"/app.js", ("gzip",), headers=("X-Note: no-transform",))
    assert body.coding == b"Content-Encoding: gzip\r\n"


def test_the_threshold_is_inclusive_and_types_can_be_added(docroot: Path) -> None:
    touch(docroot / "edge.js", SCRIPT[:1024])
    assert load_with(docroot, b"/edge.js", ("gzip",)).encoded_here
    touch(docroot / "mesh.obj", SCRIPT)
    options: dict[str, Any] = {"mime_types": (".obj=model/obj",)}
    assert not load_with(docroot, b"/mesh.obj", ("gzip",), **options).vary
    body = load_with(docroot, b"/mesh.obj", ("gzip",), compress_types=("model/*",), **options)
    assert body.encoded_here and body.ctype == b"model/obj"


def test_the_clients_first_coding_that_is_on_is_used(docroot: Path) -> None:
    """Codings the operator did not turn on are skipped; the level is the operator's."""
    body = load_with(docroot, b"/app.js", ("br", "zstd", "gzip"),
                     compress_encodings="gzip:9")
    assert body.coding == b"Content-Encoding: gzip\r\n" and body.etag.endswith(b'-gzip9"')
    assert body.data is not None and gzip.decompress(body.data) == SCRIPT


@pytest.mark.parametrize("name", ["br", "zstd"])
def test_br_and_zstd_when_installed(docroot: Path, name: str) -> None:
    if not installed(name):
        pytest.skip(f"{name} needs its optional package")
    body = load_with(docroot, b"/app.js", (name, "gzip"))
    level = {"br": 5, "zstd": 3}[name]
    assert body.coding == b"Content-Encoding: %s\r\n" % name.encode()
    assert body.etag.endswith(b'-%s%d"' % (name.encode(), level))
    assert body.data is not None and len(body.data) < len(SCRIPT) // 3


def test_a_precompressed_sibling_wins_and_knows_the_files_size(docroot: Path) -> None:
    touch(docroot / "app.js.gz", b"GZIP-DATA")
    body = load_with(docroot, b"/app.js", ("br", "gzip"))
    assert body.data == b"GZIP-DATA" and not body.encoded_here
    assert body.identity_size == len(SCRIPT) and body.etag.endswith(b'-gzip"')


def test_a_zst_sibling_is_found(docroot: Path) -> None:
    touch(docroot / "app.js.zst", b"ZSTD-DATA")
    assert load_with(docroot, b"/app.js", ("zstd",)).data == b"ZSTD-DATA"


def test_content_that_does_not_shrink_goes_as_itself(docroot: Path) -> None:
    noise = os.urandom(4096)
    touch(docroot / "noise.txt", noise)
    body = load_with(docroot, b"/noise.txt", ("gzip",))
    assert body.data == noise and body.coding == b"" and body.vary


def test_the_memory_limit_is_a_quarter_of_the_budget() -> None:
    assert memory_limit(Config(compress_cache_bytes=13)) == 3


def test_a_file_over_the_memory_limit_is_encoded_as_it_is_sent(docroot: Path) -> None:
    big = SCRIPT * 10
    st = touch(docroot / "big.js", big)
    budget = 4 * (len(big) - 1)
    assert len(big) > memory_limit(Config(compress_cache_bytes=budget))
    body = load_with(docroot, b"/big.js", ("gzip",), compress_cache_bytes=budget,
                     cache_control="max-age=7")
    try:
        assert body.fd is not None and body.data is None
        assert (body.stream, body.level, body.size) == ("gzip", 6, len(big))
        etag = b'"%x-%x-%x-gzip6"' % (st.st_ino, MTIME_NS, len(big))
        meta = (b"Last-Modified: " + HTTP_DATE + b"\r\nETag: " + etag
                + b"\r\nCache-Control: max-age=7\r\nVary: Accept-Encoding\r\n")
        assert body.fields == (b"Content-Type: text/javascript; charset=utf-8\r\n"
                               b"Content-Encoding: gzip\r\n" + meta)
        assert (body.etag, body.meta, body.vary) == (etag, meta, True)
        assert body.ctype == b"text/javascript; charset=utf-8"
        assert body.coding == b"Content-Encoding: gzip\r\n"
        assert (body.encoded_here, body.identity_size) == (True, len(big))
        assert body.path == real(docroot / "big.js") and not body.changed_in_place()
    finally:
        body.close_fd()


def test_a_file_of_exactly_the_memory_limit_is_encoded_whole(docroot: Path) -> None:
    touch(docroot / "edge.js", SCRIPT)
    body = load_with(docroot, b"/edge.js", ("gzip",), compress_cache_bytes=4 * len(SCRIPT))
    assert body.fd is None and body.data is not None and not body.stream


def test_an_encoding_no_smaller_than_the_file_is_not_sent(
        docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal is not smaller: the file itself goes (the coding would only cost the client)."""
    monkeypatch.setattr(files, "compress_file", lambda fd, size, name, level: b"z" * size)
    body = load_with(docroot, b"/app.js", ("gzip",))
    assert body.data == SCRIPT and body.coding == b"" and body.vary


def test_a_sibling_that_would_shrink_is_still_sent_as_it_is(docroot: Path) -> None:
    """A precompressed file is never encoded again, even when its bytes look like text."""
    sibling = b"not really gzip, but text that shrinks\n" * 100
    touch(docroot / "app.js.gz", sibling)
    body = load_with(docroot, b"/app.js", ("gzip",))
    assert body.data == sibling and body.coding == b"Content-Encoding: gzip\r\n"


def test_an_unchanged_encoded_body_is_reused_and_a_changed_one_encoded_again(
        docroot: Path) -> None:
    first = load_with(docroot, b"/app.js", ("gzip",))
    assert load_with(docroot, b"/app.js", ("gzip",), prev=first) is first
    touch(docroot / "app.js", SCRIPT + b"// more\n")
    again = load_with(docroot, b"/app.js", ("gzip",), prev=first)
    assert again is not first and again.identity_size == len(SCRIPT) + 8


def test_a_cached_body_of_another_coding_is_not_reused(docroot: Path) -> None:
    identity = load_with(docroot, b"/app.js", ())
    encoded = load_with(docroot, b"/app.js", ("gzip",), prev=identity)
    assert encoded is not identity and encoded.encoded_here



def test_under_live_reload_a_sibling_is_passed_over_for_the_file(docroot: Path) -> None:
    """While files are edited a precompressed sibling is likely stale: the file goes."""
    touch(docroot / "app.js.gz", b"AN OLD BUILD")
    body = load_with(docroot, b"/app.js", ("gzip",), live_reload=True)
    assert body.data is not None and gzip.decompress(body.data) == SCRIPT
    assert b"Cache-Control: no-cache\r\n" in body.fields
