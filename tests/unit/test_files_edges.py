"""files.py at its edges: memo limits, absolute-form targets, Accept-Encoding in routes,
exact header fields, precompressed variants, listings, error pages, and the failure paths
of loading (open or fstat raising, short reads, a file that changes in place)."""
from __future__ import annotations

import errno
import json
import mimetypes
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from evserver import files
from evserver.cache import FileCache
from evserver.config import Config
from evserver.files import (
    NO_TRANSFORM,
    FileBody,
    Resolved,
    close_result,
    content_type,
    load,
    load_error_pages,
    resolve_target,
    resolve_target_uncached,
    route,
)
from evserver.http11 import HTTPError
from evserver.listing import render_listing
from tests.conn.fakes import is_closed_fd
from tests.unit.test_files import field

ROOT = "/srv/www"
MAX = files._MEMO_TARGET_MAX
MIB = 1024 * 1024
# Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date), plus half a second.
MTIME_NS = 784_111_777_500_000_000
HTTP_DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    return root


def real(path: Path) -> str:
    return os.path.realpath(path)


def load_with(root: Path, target: bytes, encodings: tuple[str, ...] = (),
              prev: FileBody | None = None, **options: Any) -> FileBody:
    """`load` of `target` under `root` with a Config of `options`."""
    cfg = Config(docroot=str(root), **options)
    return load(resolve_target(str(root), target), real(root), cfg, prev, encodings)


def load_refused(root: Path, target: bytes, **options: Any) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        load_with(root, target, **options)
    return info.value


def touch(path: Path, data: bytes, mtime_ns: int = MTIME_NS) -> os.stat_result:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path.stat()


# -- content types --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "overrides", "ctype"), [
    ("a.foo", (".foo=application/x-foo",), "application/x-foo"),
    ("A.FOO", (".foo=application/x-foo",), "application/x-foo"),
    ("a.foo", (".FOO=text/x-foo",), "text/x-foo; charset=utf-8"),
    ("a.png", (".png=image/x-test",), "image/x-test"),       # an override beats the table
    ("a.png", (".jpg=image/x-test",), "image/png"),
])
def test_content_type_overrides(name: str, overrides: tuple[str, ...], ctype: str) -> None:
    """--mime-type `.ext=type` wins over the built-in table, whatever the case of either."""
    assert content_type(name, overrides) == ctype


@pytest.mark.parametrize("name", ["a.xml", "a.map", "a.webmanifest", "a.svg", "a.json"])
def test_content_type_utf8_for_structured_text(name: str) -> None:
    """XML, JSON, SVG and web manifests are text too: they say charset=utf-8."""
    assert content_type(name).endswith("; charset=utf-8")


@pytest.mark.parametrize("name", ["a.zip", "a.woff2", "a.mp3", "a.epub"])
def test_content_type_binary_has_no_charset(name: str) -> None:
    """Binary types carry no charset parameter."""
    assert "charset" not in content_type(name)


def test_content_type_falls_back_to_non_strict_mimetypes() -> None:
    """An extension outside the table takes the host's type, the non-standard ones too
    (`.pict` is only in mimetypes' non-strict table)."""
    expected = mimetypes.guess_type("a.pict", strict=False)[0]
    assert expected is not None and mimetypes.guess_type("a.pict", strict=True)[0] is None
    assert content_type("photo.PICT") == expected


# -- the memo limits ------------------------------------------------------------------------

@pytest.mark.parametrize(("length", "memoized"), [(MAX - 1, True), (MAX, True), (MAX + 1, False)])
def test_resolve_memo_holds_targets_up_to_the_limit(length: int, memoized: bool) -> None:
    """Targets up to _MEMO_TARGET_MAX bytes are memoized; longer ones never enter the memo
    (its memory stays bounded whatever clients send)."""
    target = b"/" + b"a" * (length - 1)
    for _ in range(2):
        assert resolve_target(ROOT, target) == resolve_target_uncached(ROOT, target)
    info = files._resolve_memo.cache_info()
    assert (info.hits, info.currsize) == ((1, 1) if memoized else (0, 0))


@pytest.mark.parametrize(("target_len", "coding_len", "memoized"), [
    (MAX, None, True),
    (MAX + 1, None, False),
    (10, MAX, True),
    (10, MAX + 1, False),
    (MAX + 1, MAX + 1, False),
])
def test_route_memo_holds_short_inputs_only(target_len: int, coding_len: int | None,
                                            memoized: bool) -> None:
    """A route is memoized only when both the target and Accept-Encoding are short."""
    target = b"/" + b"a" * (target_len - 1)
    accept = None if coding_len is None else b"gzip" + b" " * (coding_len - 4)
    for _ in range(2):
        resolved, _, codings = route(ROOT, target, accept)
        assert resolved.path == os.path.join(ROOT, "a" * (target_len - 1))
        assert codings == (() if accept is None else ("gzip",))
    assert files._route_memo.cache_info().hits == (1 if memoized else 0)


def test_long_target_and_codings_route_like_short_ones() -> None:
    """A route too long for the memo is the same route: path, codings and key."""
    name = "b" * (MAX + 10)
    accept = b"gzip;q=0.5," + b" " * MAX + b"br"
    resolved, key, codings = route(ROOT, ("/d/" + name + "?q").encode(), accept)
    assert resolved == Resolved(os.path.join(ROOT, "d", name), ("/d/" + name + "/?q").encode(),
                            "/d/" + name, b"q", False)
    assert codings == ("br", "gzip")
    assert key == resolved.path + "\0br,gzip"


# -- resolving a target ---------------------------------------------------------------------

@pytest.mark.parametrize(("target", "expected"), [
    (b"/", Resolved(ROOT + "/index.html", b"/", "/", b"", True)),
    (b"/?x", Resolved(ROOT + "/index.html", b"/?x", "/", b"x", True)),
    (b"/a/b", Resolved(ROOT + "/a/b", b"/a/b/", "/a/b", b"", False)),
    (b"/a/b/?x=1", Resolved(ROOT + "/a/b/index.html", b"/a/b/?x=1", "/a/b/", b"x=1", True)),
    (b"/a/.", Resolved(ROOT + "/a/index.html", b"/a/", "/a/", b"", True)),
    (b"/a/b/..", Resolved(ROOT + "/a/index.html", b"/a/", "/a/", b"", True)),
    (b"/a/./b", Resolved(ROOT + "/a/b", b"/a/b/", "/a/b", b"", False)),
    (b"/a?x?y#z", Resolved(ROOT + "/a", b"/a/?x?y", "/a", b"x?y", False)),
    (b"/a#x?y", Resolved(ROOT + "/a", b"/a/", "/a", b"", False)),
    (b"/a%20b/c", Resolved(ROOT + "/a b/c", b"/a%20b/c/", "/a b/c", b"", False)),
])
def test_resolve_exact(target: bytes, expected: Resolved) -> None:
    """Every field of a resolution: path, redirect, the listing's URL path, query, is_dir."""
    assert resolve_target(ROOT, target) == expected


# -- absolute-form targets ------------------------------------------------------------------

@pytest.mark.parametrize(("absolute", "origin"), [
    (b"http://h/a/b", b"/a/b"),
    (b"https://h/a/b", b"/a/b"),
    (b"HtTpS://h/x", b"/x"),
    (b"http://h/a://b", b"/a://b"),     # only the first `://` ends the scheme
    (b"http:///x.txt", b"/x.txt"),      # an empty authority
    (b"http://h?q=/x", b"/?q=/x"),      # the authority ends at `?`, even before a `/`
    (b"http://h#f/x", b"/"),            # ... and at `#`
    (b"http://h:80", b"/"),
    (b"http://h/", b"/"),
])
def test_absolute_form_is_its_origin_form(absolute: bytes, origin: bytes) -> None:
    """An absolute-form target resolves exactly as its path and query would."""
    assert resolve_target(ROOT, absolute) == resolve_target(ROOT, origin)


@pytest.mark.parametrize("target", [b"ftp://h/x", b"http:/h/x", b"httpx://h/x", b"h/x://y"])
def test_other_forms_are_400(target: bytes) -> None:
    """Only http and https make an absolute form; any other target without a leading `/`
    is 400, and closes."""
    with pytest.raises(HTTPError) as info:
        resolve_target(ROOT, target)
    assert info.value.status == HTTPStatus.BAD_REQUEST and info.value.close


# -- Accept-Encoding in a route -------------------------------------------------------------

@pytest.mark.parametrize(("accept", "codings"), [
    (None, ()),
    (b"", ()),
    (b"gzip, br", ("br", "gzip")),                        # a tie: br first
    (b"gzip;level=9;q=0", ()),                            # a parameter before q
    (b"gzip;level=9;q=0.5, br;q=0.4", ("gzip", "br")),
    (b"br;q=0.001", ("br",)),                             # the smallest weight
    (b"br;q=0.000", ()),
    (b"br;q=1.000, gzip;q=0.999", ("br", "gzip")),        # the largest weight
    (b"br;q=1.001", ()),                                  # over 1: malformed, ignored
    (b"br;q=0.0001", ()),                                 # four decimals: malformed
    (b"br;q=", ()),
    (b"*;q=0.3, gzip;q=0.2", ("br", "zstd")),             # identity, by `*`, above gzip
    (b"x-gzip", ("gzip",)),
])
def test_route_codings_and_key(accept: bytes | None, codings: tuple[str, ...]) -> None:
    """The codings a route offers, best first, and a cache key per variant: the path
    alone for identity, else the path, NUL and the codings joined by commas."""
    resolved, key, offered = route(ROOT, b"/app.js", accept)
    assert resolved.path == os.path.join(ROOT, "app.js")
    assert offered == codings
    assert key == (resolved.path + "\0" + ",".join(codings) if codings else resolved.path)


def test_a_route_without_transform_keeps_the_codings_but_marks_them() -> None:
    """`Cache-Control: no-transform`: siblings may still go, nothing is encoded here, and
    the variant has a key of its own; with no coding accepted, the key is the path."""
    resolved, key, offered = route(ROOT, b"/app.js", b"gzip", False)
    assert offered == ("gzip", NO_TRANSFORM)
    assert key == resolved.path + "\0gzip,no-transform"
    assert route(ROOT, b"/app.js", None, False)[1:] == (resolved.path, ())
    long_target = b"/" + b"a" * MAX
    assert route(ROOT, long_target, b"gzip", False)[2] == ("gzip", NO_TRANSFORM)


def test_route_key_separates_variants() -> None:
    """Two orders of the same codings are two keys; identity is the bare path."""
    keys = {route(ROOT, b"/app.js", accept)[1]
            for accept in (b"br;q=0.9, gzip", b"gzip;q=0.9, br", b"identity")}
    assert keys == {ROOT + "/app.js\0gzip,br", ROOT + "/app.js\0br,gzip", ROOT + "/app.js"}


# -- the fields of a file -------------------------------------------------------------------

def test_fields_of_a_plain_file_byte_for_byte(docroot: Path) -> None:
    """Every header a 200 of a file carries, in order and canonical case; Last-Modified
    is the file's mtime (rounded down), the ETag inode-mtime-size in hex."""
    st = touch(docroot / "small.txt", b"hello, world\n")
    body = load_with(docroot, b"/small.txt", cache_control="max-age=7")
    etag = b'"%x-%x-d"' % (st.st_ino, MTIME_NS)
    meta = (b"Last-Modified: " + HTTP_DATE + b"\r\nETag: " + etag
            + b"\r\nCache-Control: max-age=7\r\n")
    assert body.etag == etag and body.meta == meta
    assert body.fields == (b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n"
                           b"Accept-Ranges: bytes\r\n" + meta)
    assert (body.coding, body.vary, body.ctype) == (b"", False, b"text/plain; charset=utf-8")
    assert (body.size, body.mtime_ns, body.ino, body.mtime) == (13, MTIME_NS, st.st_ino,
                                                                  784_111_777)


@pytest.mark.parametrize("nanoseconds", [0, 1, 999_999_999])
def test_last_modified_rounds_down_to_the_second(docroot: Path, nanoseconds: int) -> None:
    """Last-Modified is the second the mtime falls in, up to its last nanosecond (a
    float division would round .999999999 up into the next second)."""
    touch(docroot / "a.txt", b"a", 784_111_777_000_000_000 + nanoseconds)
    assert field(load_with(docroot, b"/a.txt"), b"Last-Modified") == HTTP_DATE


@pytest.mark.parametrize(("name", "no_cache", "cache_control"), [
    ("page.html", False, b"no-cache, private"),
    ("page.htm", False, b"no-cache, private"),
    ("style.css", False, b"max-age=7"),
    ("page.html", True, b"no-store"),
    ("style.css", True, b"no-store"),
])
def test_cache_control_by_type(docroot: Path, name: str, no_cache: bool,
                               cache_control: bytes) -> None:
    """HTML takes --cache-control-html, the rest --cache-control; --no-cache is no-store."""
    touch(docroot / name, b"x")
    body = load_with(docroot, b"/" + name.encode(), no_cache=no_cache, cache_control="max-age=7",
                     cache_control_html="no-cache, private")
    assert field(body, b"Cache-Control") == cache_control


def test_mime_type_option_reaches_the_fields(docroot: Path) -> None:
    """--mime-type overrides the Content-Type a loaded file announces."""
    touch(docroot / "data.foo", b"x")
    body = load_with(docroot, b"/data.foo", mime_types=(".foo=application/x-foo",))
    assert field(body, b"Content-Type") == b"application/x-foo"
    assert body.ctype == b"application/x-foo"


# -- precompressed variants -----------------------------------------------------------------

@pytest.fixture
def app(docroot: Path) -> Path:
    touch(docroot / "app.js", b"console.log('hello, world');\n" * 10)
    touch(docroot / "app.js.br", b"BROTLI")
    touch(docroot / "app.js.gz", b"GZIP-DATA")
    return docroot


def test_variant_fields_byte_for_byte(app: Path) -> None:
    """A precompressed sibling is sent as the file's own type with Content-Encoding, its
    own length and its own tag (suffixed by the coding), and Vary: Accept-Encoding."""
    st = (app / "app.js.br").stat()
    body = load_with(app, b"/app.js", ("br", "gzip"), cache_control="max-age=7")
    etag = b'"%x-%x-6-br"' % (st.st_ino, MTIME_NS)
    meta = (b"Last-Modified: " + HTTP_DATE + b"\r\nETag: " + etag
            + b"\r\nCache-Control: max-age=7\r\nVary: Accept-Encoding\r\n")
    assert body.fields == (b"Content-Type: text/javascript; charset=utf-8\r\n"
                           b"Content-Length: 6\r\nContent-Encoding: br\r\n"
                           b"Accept-Ranges: bytes\r\n" + meta)
    assert (body.data, body.etag, body.meta) == (b"BROTLI", etag, meta)
    assert (body.coding, body.vary) == (b"Content-Encoding: br\r\n", True)
    assert body.path == real(app / "app.js")


def test_identity_next_to_variants_still_varies(app: Path) -> None:
    """The identity file of a resource that has variants names Vary and no coding."""
    st = (app / "app.js").stat()
    body = load_with(app, b"/app.js", ())
    assert body.etag == b'"%x-%x-%x"' % (st.st_ino, MTIME_NS, st.st_size)
    assert body.coding == b"" and body.vary
    assert b"Content-Encoding" not in body.fields
    assert body.fields.endswith(b"Vary: Accept-Encoding\r\n")


@pytest.mark.parametrize(("encodings", "data"), [
    (("gzip", "br"), b"GZIP-DATA"),      # the client's order, not ours
    (("br",), b"BROTLI"),
    (("gzip",), b"GZIP-DATA"),
])
def test_variant_follows_the_clients_order(app: Path, encodings: tuple[str, ...],
                                           data: bytes) -> None:
    """The first of the client's codings that has a sibling is served."""
    assert load_with(app, b"/app.js", encodings).data == data


def test_variant_of_a_missing_coding_falls_back(app: Path) -> None:
    """A coding the client takes but that has no sibling is skipped for the next one."""
    (app / "app.js.br").unlink()
    body = load_with(app, b"/app.js", ("br", "gzip"))
    assert body.data == b"GZIP-DATA" and body.etag.endswith(b'-gzip"')


# -- the dotfile rule after symlinks --------------------------------------------------------

def test_link_into_a_dot_directory_inside_the_root_is_hidden(docroot: Path) -> None:
    """A visible link to a file inside a hidden directory of the root is 404."""
    (docroot / ".private").mkdir()
    touch(docroot / ".private" / "notes.txt", b"secret\n")
    (docroot / "notes.txt").symlink_to(docroot / ".private" / "notes.txt")
    assert load_refused(docroot, b"/notes.txt").status == HTTPStatus.NOT_FOUND


def test_a_root_under_a_dot_directory_serves(tmp_path: Path) -> None:
    """Only the part of the path below the root counts: a root in `~/.cache/www` serves."""
    root = tmp_path / ".cache" / "www"
    root.mkdir(parents=True)
    touch(root / "a.txt", b"a\n")
    assert load_with(root, b"/a.txt").data == b"a\n"


def test_followed_link_out_of_the_root_hides_only_dotfile_names(
        docroot: Path, tmp_path: Path) -> None:
    """--follow-symlinks: a link out of the root to a dotfile is 404; outside the root only
    the file's own name is judged, so a link into a dot-directory there is served."""
    shared = tmp_path / "out" / ".d1" / ".d2"
    shared.mkdir(parents=True)
    touch(shared / ".env", b"SECRET=1\n")
    touch(shared / "notes.txt", b"notes\n")
    (docroot / "env.txt").symlink_to(shared / ".env")
    (docroot / "notes.txt").symlink_to(shared / "notes.txt")
    error = load_refused(docroot, b"/env.txt", follow_symlinks=True)
    assert error.status == HTTPStatus.NOT_FOUND and not error.close
    assert load_with(docroot, b"/notes.txt", follow_symlinks=True).data == b"notes\n"


# -- open and fstat failing -----------------------------------------------------------------

def failing(code: int) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise OSError(code, os.strerror(code))
    return fail


def test_open_refused_is_403_keeping_the_connection(
        docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EACCES from open is 403 (even for root, who reads everything), and keeps alive."""
    touch(docroot / "a.txt", b"a")
    monkeypatch.setattr(os, "open", failing(errno.EACCES))
    error = load_refused(docroot, b"/a.txt")
    assert error.status == HTTPStatus.FORBIDDEN and error.close is False


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOENT, errno.ELOOP, errno.ENAMETOOLONG])
def test_open_failing_otherwise_is_404(docroot: Path, monkeypatch: pytest.MonkeyPatch,
                                       code: int) -> None:
    """Any other error from open is 404 with the root's own 404 page."""
    touch(docroot / "a.txt", b"a")
    touch(docroot / "404.html", b"<h1>gone</h1>")
    monkeypatch.setattr(os, "open", failing(code))
    error = load_refused(docroot, b"/a.txt")
    assert (error.status, error.close, error.body) == (HTTPStatus.NOT_FOUND, False,
                                                       b"<h1>gone</h1>")


def test_fstat_failing_closes_the_fd_and_raises(docroot: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An error after open propagates and never leaks the fd it opened."""
    touch(docroot / "a.txt", b"a")
    opened: list[int] = []
    real_open = os.open

    def recording_open(*args: Any, **kwargs: Any) -> int:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "fstat", failing(errno.EIO))
    with pytest.raises(OSError):
        load_with(docroot, b"/a.txt")
    monkeypatch.undo()
    assert len(opened) == 1 and is_closed_fd(opened[0])


def test_missing_file_with_listing_is_still_404(docroot: Path) -> None:
    """--listing lists missing directories' parents never: a missing file is 404."""
    (docroot / "sub").mkdir()
    assert load_refused(docroot, b"/sub/nope.txt", listing=True).status == HTTPStatus.NOT_FOUND


def test_directory_redirect_from_load(docroot: Path) -> None:
    """A directory named without its slash is 301 to the slash, query kept, kept alive."""
    (docroot / "a b").mkdir()
    error = load_refused(docroot, b"/a%20b?x=1")
    assert error.status == HTTPStatus.MOVED_PERMANENTLY and error.close is False
    assert error.headers == ((b"Location", b"/a%20b/?x=1"),)


# -- reading: short reads and files changing in place ---------------------------------------

def test_short_reads_are_assembled(docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pread may return less than asked: the pieces are joined in order, and a file that
    grew after fstat is read only up to the size its fields announce."""
    content = os.urandom(3000)
    touch(docroot / "a.bin", content)
    real_pread, real_fstat = os.pread, os.fstat
    calls: list[tuple[int, int]] = []

    def short_pread(fd: int, length: int, offset: int) -> bytes:
        calls.append((length, offset))
        assert len(calls) < 50, "reading never ends"
        return real_pread(fd, min(length, 1024), offset)

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        with open(docroot / "a.bin", "ab") as f:
            f.write(b"appended later")
        return st

    monkeypatch.setattr(os, "pread", short_pread)
    monkeypatch.setattr(os, "fstat", fstat_then_grow)
    body = load_with(docroot, b"/a.bin")
    assert body.data == content and body.size == 3000
    assert calls == [(3000, 0), (1976, 1024), (952, 2048)]


def test_file_shrunk_while_read_announces_what_was_read(
        docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file truncated between fstat and the read is served as read: its real bytes, a
    Content-Length and a tag of that size, and no fd."""
    st = touch(docroot / "a.txt", b"0123456789")
    real_fstat = os.fstat

    def fstat_then_truncate(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        os.truncate(docroot / "a.txt", 4)
        return result

    monkeypatch.setattr(os, "fstat", fstat_then_truncate)
    body = load_with(docroot, b"/a.txt")
    assert (body.data, body.fd, body.size) == (b"0123", None, 4)
    assert field(body, b"Content-Length") == b"4"
    assert body.etag == b'"%x-%x-4"' % (st.st_ino, MTIME_NS)


@pytest.fixture
def big(docroot: Path) -> Iterator[FileBody]:
    """A file over the in-memory limit, loaded: it keeps its fd (closed at the end)."""
    touch(docroot / "big.bin", os.urandom(5000))
    body = load_with(docroot, b"/big.bin", cache_max_entry=4096)
    assert body.fd is not None and body.data is None
    yield body
    if not is_closed_fd(body.fd):
        os.close(body.fd)


def test_changed_in_place(docroot: Path, big: FileBody) -> None:
    """An open file is unchanged until it is written in place (size or mtime)."""
    assert not big.changed_in_place()
    with open(docroot / "big.bin", "r+b") as f:
        f.write(b"rewritten")
    os.utime(docroot / "big.bin", ns=(MTIME_NS, MTIME_NS + 1))
    assert big.changed_in_place()


def test_changed_in_place_when_fstat_fails(big: FileBody,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that can no longer be checked counts as changed (its length is not sure)."""
    monkeypatch.setattr(os, "fstat", failing(errno.EIO))
    assert big.changed_in_place()


@pytest.mark.parametrize(("window", "advised"), [(0, False), (1, True), (65536, True)])
def test_read_ahead_of_a_kept_fd(docroot: Path, monkeypatch: pytest.MonkeyPatch,
                                 window: int, advised: bool) -> None:
    """A file kept open is read ahead from byte 0 for --readahead bytes; 0 turns it off."""
    touch(docroot / "big.bin", os.urandom(5000))
    advice: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda *args: advice.append(args))
    body = load_with(docroot, b"/big.bin", cache_max_entry=4096, readahead=window)
    assert body.fd is not None
    os.close(body.fd)
    expected = [(body.fd, 0, window, os.POSIX_FADV_WILLNEED)] if advised else []
    assert advice == expected


# -- closing fds: results, bodies, the open-file cache --------------------------------------

def test_close_unless_shared(big: FileBody) -> None:
    """A body the cache shares keeps its fd; one nobody shares is closed."""
    assert big.fd is not None
    big.close_unless(shared=True)
    assert not is_closed_fd(big.fd)
    big.close_unless(shared=False)
    assert is_closed_fd(big.fd)


def test_close_result_of_a_finished_load(big: FileBody) -> None:
    """A load result nobody sends from has its fd closed."""
    assert big.fd is not None
    future: Future[FileBody] = Future()
    future.set_result(big)
    close_result(future)
    assert is_closed_fd(big.fd)


def test_close_result_of_a_failed_or_cancelled_load() -> None:
    """A load that raised or was cancelled has no fd: closing it is a quiet no-op."""
    failed: Future[FileBody] = Future()
    failed.set_exception(HTTPError(HTTPStatus.NOT_FOUND))
    close_result(failed)
    cancelled: Future[FileBody] = Future()
    assert cancelled.cancel()
    close_result(cancelled)


def open_body(path: Path) -> tuple[FileBody, int]:
    fd = os.open(path, os.O_RDONLY)
    return FileBody(str(path), 1, 0, 0, b'"e"', b"", None, fd), fd


def test_open_file_cache_closes_what_it_evicts(docroot: Path) -> None:
    """Over max_open the least recent fd is closed; replacing or discarding an entry
    closes its fd; close() closes the rest."""
    touch(docroot / "a", b"a")
    cache = FileCache(max_bytes=100, max_entries=10, ttl=1.0, max_open=2)
    (first, fd1), (second, fd2), (third, fd3), (fourth, fd4) = (
        open_body(docroot / "a") for _ in range(4))
    for key, body in (("/1", first), ("/2", second), ("/3", third)):
        assert cache.put(key, body, 0.0)
    assert cache.open_files == 2
    assert [not is_closed_fd(fd) for fd in (fd1, fd2, fd3)] == [False, True, True]
    assert cache.put("/2", fourth, 0.0)  # the new body of /2 replaces the old one
    assert is_closed_fd(fd2) and not is_closed_fd(fd4)
    cache.discard("/3")
    assert is_closed_fd(fd3)
    cache.close()
    assert is_closed_fd(fd4) and len(cache) == 0


def test_open_file_cache_off_leaves_the_fd_to_the_caller(big: FileBody) -> None:
    """With max_open 0 an fd body is refused and stays open: the caller must close it."""
    cache = FileCache(max_bytes=100, max_entries=10, ttl=1.0, max_open=0)
    assert not cache.put("/big", big, 0.0)
    assert big.fd is not None and not is_closed_fd(big.fd)


# -- listings -------------------------------------------------------------------------------

@pytest.mark.parametrize("query", [b"", b"format=json", b"sort=size&order=desc"])
def test_listing_body_exact(docroot: Path, query: bytes) -> None:
    """A directory without index.html, with --listing, is the rendered listing of that
    directory: no file identity (mtime, inode, tag), no validators, no-cache, and a Vary:
    Accept (the same URL is JSON to a client that prefers it)."""
    (docroot / "docs").mkdir()
    touch(docroot / "docs" / "a.txt", b"a")
    touch(docroot / "docs" / "bb.txt", b"bb")
    body = load_with(docroot, b"/docs/?" + query, listing=True)
    directory = real(docroot / "docs")
    data, ctype = render_listing(directory, "/docs/", query)
    fields = (b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-cache\r\n"
              b"Vary: Accept\r\n" % (ctype, len(data)))
    assert body == FileBody(directory, len(data), 0, 0, b"", fields, data, None, b"", ctype)


def test_a_listing_under_no_cache_is_no_store(docroot: Path) -> None:
    """--no-cache promises no-store on everything: a listing's no-cache becomes no-store."""
    (docroot / "docs").mkdir()
    body = load_with(docroot, b"/docs/", listing=True, no_cache=True)
    assert b"Cache-Control: no-store\r\n" in body.fields
    assert body.fields.count(b"Cache-Control") == 1


@pytest.mark.parametrize(("query", "accept", "is_json"), [
    (b"", b"application/json", True), (b"", b"text/html,*/*;q=0.8", False),
    (b"", None, False), (b"format=html", b"application/json", False),
    (b"format=json", b"text/html", True), (b"sort=size", b"application/json", True)])
def test_a_listing_is_json_when_accept_prefers_it_unless_the_query_says(
        docroot: Path, query: bytes, accept: bytes | None, is_json: bool) -> None:
    (docroot / "docs").mkdir()
    touch(docroot / "docs" / "a.txt", b"a")
    cfg = Config(docroot=str(docroot), listing=True)
    body = load(resolve_target(str(docroot), b"/docs/?" + query), real(docroot), cfg,
                accept=accept)
    assert body.fields.startswith(b"Content-Type: application/json\r\n") is is_json
    assert body.data is not None and body.data.startswith(b"{") is is_json


@pytest.mark.parametrize("follow", [False, True], ids=["confined", "follow-symlinks"])
def test_a_listing_shows_exactly_what_a_click_would_get(docroot: Path, follow: bool) -> None:
    """Each listed entry loads, and each entry the server refuses is left out: symlinks
    out of the root (listed with --follow-symlinks, which serves them) and symlinks to
    dotfiles, inside the root or not (never served)."""
    outside = docroot.parent / "outside"
    outside.mkdir()
    touch(outside / "far.txt", b"far")
    touch(outside / ".far-secret", b"s")
    touch(docroot / ".secret", b"s")
    (docroot / ".hidden").mkdir()
    touch(docroot / ".hidden" / "in.txt", b"h")
    docs = docroot / "docs"
    docs.mkdir()
    touch(docs / "plain.txt", b"p")
    links = {"to-plain.txt": docs / "plain.txt", "to-far.txt": outside / "far.txt",
             "to-outside": outside, "to-secret": docroot / ".secret",
             "to-hidden-file.txt": docroot / ".hidden" / "in.txt",
             "to-far-secret": outside / ".far-secret"}
    for name, target in links.items():
        (docs / name).symlink_to(target)
    body = load_with(docroot, b"/docs/?format=json", listing=True, follow_symlinks=follow)
    assert body.data is not None
    listed = {e["name"] for e in json.loads(body.data)["entries"]}
    served = {"plain.txt", "to-plain.txt"} | ({"to-far.txt", "to-outside"} if follow else set())
    assert listed == served
    for name in set(links) | {"plain.txt"}:
        target = b"/docs/" + name.encode() + (b"/" if name == "to-outside" else b"")
        if name in served:
            load_with(docroot, target, listing=True, follow_symlinks=follow)
        else:
            assert load_refused(docroot, target, listing=True,
                                follow_symlinks=follow).status == HTTPStatus.NOT_FOUND


def test_a_listing_leaves_out_what_this_process_may_not_read(
        docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file this process may not read answers 403, so it is not listed; nor is a
    directory it may not enter. (Faked through os.access: CI runs as root, which may.)"""
    docs = docroot / "docs"
    docs.mkdir()
    for name in ("open.txt", "closed.txt"):
        touch(docs / name, b"x")
    for name in ("open-dir", "locked-dir"):
        (docs / name).mkdir()
    real_access = os.access
    asked: dict[str, int] = {}

    def access(path: str, mode: int) -> bool:
        asked[os.path.basename(path)] = mode
        return "open" in os.path.basename(path) and real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    body = load_with(docroot, b"/docs/?format=json", listing=True)
    assert body.data is not None
    assert [e["name"] for e in json.loads(body.data)["entries"]] == ["open-dir", "open.txt"]
    assert asked == {"open.txt": os.R_OK, "closed.txt": os.R_OK, "open-dir": os.X_OK,
                     "locked-dir": os.X_OK}


def test_listing_of_a_missing_directory_is_404(docroot: Path) -> None:
    """--listing of a directory that does not exist is the 404 page, kept alive."""
    touch(docroot / "404.html", b"<h1>gone</h1>")
    error = load_refused(docroot, b"/nodir/", listing=True)
    assert (error.status, error.close, error.body) == (HTTPStatus.NOT_FOUND, False,
                                                       b"<h1>gone</h1>")


@pytest.mark.parametrize(("code", "status"), [(errno.EACCES, 403), (errno.EIO, 404)])
def test_listing_failing_keeps_the_connection(docroot: Path, monkeypatch: pytest.MonkeyPatch,
                                              code: int, status: int) -> None:
    """A listing that cannot be read is 403 or 404, and the connection stays open."""
    (docroot / "empty").mkdir()
    monkeypatch.setattr(files, "render_listing", failing(code))
    error = load_refused(docroot, b"/empty/", listing=True)
    assert (error.status, error.close) == (status, False)


# -- error pages ----------------------------------------------------------------------------

def test_error_pages_by_name(docroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only `NNN.html` for 4xx and 5xx is an error page; an unreadable one is skipped and
    the others still load."""
    for name in ("404.html", "503.html", "404.txt", "4040.html", "40.html", "304.html",
                 "4x4.html", "index.html", "abc.html"):
        touch(docroot / name, name.encode())
    (docroot / "400.html").mkdir()  # sorted first below: reading it fails
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: sorted(real_listdir(path)))
    assert load_error_pages(real(docroot)) == {404: b"404.html", 503: b"503.html"}


def test_error_pages_of_a_missing_root(tmp_path: Path) -> None:
    """A root that cannot be listed has no error pages (not an error)."""
    assert load_error_pages(str(tmp_path / "missing")) == {}


@pytest.mark.parametrize("size", [MIB - 1, MIB, MIB + 1])
def test_error_pages_are_capped_at_one_mib(docroot: Path, size: int) -> None:
    """An error page is read up to 1 MiB, at start-up and for each 404."""
    page = b"x" * size
    touch(docroot / "404.html", page)
    touch(docroot / "500.html", page)
    assert load_error_pages(real(docroot)) == {404: page[:MIB], 500: page[:MIB]}
    assert load_refused(docroot, b"/nope").body == page[:MIB]


# -- refused targets: userinfo, bad percent-encoding ----------------------------------------

@pytest.mark.parametrize("target", [
    b"http://user@h/x", b"https://a:b@h", b"http://@h/", b"http://h@?q", b"http://h@#f",
])
def test_userinfo_in_an_absolute_target_is_400(target: bytes) -> None:
    """Userinfo in the authority is an error (RFC 9110 §4.2.4), and closes."""
    with pytest.raises(HTTPError) as info:
        resolve_target(ROOT, target)
    assert info.value.status == HTTPStatus.BAD_REQUEST and info.value.close


@pytest.mark.parametrize(("target", "origin"), [
    (b"http://h/a@b", b"/a@b"), (b"http://h?to=a@b", b"/?to=a@b"), (b"http://h#a@b", b"/"),
])
def test_at_sign_after_the_authority_is_allowed(target: bytes, origin: bytes) -> None:
    """An `@` in the path, query or fragment is no userinfo."""
    assert resolve_target(ROOT, target) == resolve_target(ROOT, origin)


@pytest.mark.parametrize("target", [b"/%", b"/a%", b"/%4", b"/%4g", b"/%g4", b"/%zz/x", b"/%%41"])
def test_bad_percent_encoding_is_400(target: bytes) -> None:
    """A `%` not followed by two hex digits is 400 and closes (RFC 3986 §2.1)."""
    with pytest.raises(HTTPError) as info:
        resolve_target(ROOT, target)
    assert info.value.status == HTTPStatus.BAD_REQUEST and info.value.close


@pytest.mark.parametrize(("target", "name"), [
    (b"/%41", "A"), (b"/%4a%4A", "JJ"), (b"/%2541", "%41"), (b"/a?b=%", "a"), (b"/a#%", "a"),
])
def test_good_percent_encoding_decodes_once(target: bytes, name: str) -> None:
    """Two hex digits of either case decode once; a `%` in the query or fragment is
    not the path's."""
    assert resolve_target(ROOT, target).path == os.path.join(ROOT, name)
