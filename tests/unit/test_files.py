"""files.py: target resolution, loading from the disk, content types."""
from __future__ import annotations

import email.utils
import errno
import os
import stat
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from evserver import files
from evserver.config import Config
from evserver.files import FileBody, Resolved, content_type, load, resolve_target
from evserver.http11 import HTTPError

ROOT = "/srv/www"


def resolved(target: bytes) -> Resolved:
    return resolve_target(ROOT, target)


def status_of(target: bytes) -> int:
    with pytest.raises(HTTPError) as info:
        resolve_target(ROOT, target)
    status = info.value.status.value
    # A malformed target (400) closes: where the next request starts is no longer certain
    # (RFC 9112 §9.6, as nginx and h11 do). A well-formed one that is refused (404) keeps it.
    assert info.value.close is (status == 400)
    return status


# -- resolve_target -------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "path"), [
    (b"/hello.txt", "hello.txt"),
    (b"/a/b/c.css", "a/b/c.css"),
    (b"/hello.txt?x=1&y=2", "hello.txt"),
    (b"/hello.txt#frag", "hello.txt"),
    (b"/hello.txt?x=1#frag", "hello.txt"),
    (b"/space%20name.txt", "space name.txt"),
    (b"/caf%C3%A9.txt", "caf\u00e9.txt"),
    (b"/%252e%252e", "%2e%2e"),          # decoded once: a literal name, not a traversal
    (b"/%252e%252e/x", "%2e%2e/x"),
    (b"/a/../b.txt", "b.txt"),           # `..` that stays inside the root is normalised
    (b"/a/./b/../c.txt", "a/c.txt"),
    (b"/a/%2e%2e/b.txt", "b.txt"),
    (b"//etc/passwd", "etc/passwd"),     # stays under the root
    (b"///a//b", "a/b"),
    (b"/%2f%2fetc/passwd", "etc/passwd"),
])
def test_resolve_maps_under_root(target: bytes, path: str) -> None:
    """Ordinary targets map to a path under the root, query and fragment dropped."""
    assert resolved(target).path == os.path.join(ROOT, path)


@pytest.mark.parametrize("target", [
    b"/", b"/sub/", b"/sub/?q=1", b"/a/b/..", b"/a/.", b"/./", b"/a/..", b"//",
])
def test_resolve_directory_means_index(target: bytes) -> None:
    """The root, a trailing slash, `/.` and `/..` name a directory's index.html."""
    path = resolved(target).path
    assert path.endswith(os.sep + "index.html")
    assert path.startswith(ROOT + os.sep)


def test_resolve_index_paths() -> None:
    """The exact index paths for the root and a subdirectory."""
    assert resolved(b"/").path == os.path.join(ROOT, "index.html")
    assert resolved(b"/sub/").path == os.path.join(ROOT, "sub", "index.html")
    assert resolved(b"/a/b/..").path == os.path.join(ROOT, "a", "index.html")


@pytest.mark.parametrize("target", [
    b"/..", b"/../etc/passwd", b"/a/../../etc/passwd", b"/%2e%2e", b"/%2e%2e/etc/passwd",
    b"/%2E%2e%2F", b"/%2E%2E%2Fetc%2Fpasswd", b"/..%2f", b"/..%2fetc%2fpasswd",
    b"/a/%2e%2e%2f%2e%2e%2fetc/passwd", b"/.%2e/x",
])
def test_resolve_refuses_leaving_root(target: bytes) -> None:
    """`..` above the root, plain or percent-encoded, is 400."""
    assert status_of(target) == 400


@pytest.mark.parametrize("target", [
    b"/%00", b"/index.html%00.txt", b"/a%00/b",            # NUL
    b"/..\\..\\etc\\passwd", b"/a\\b", b"/%5c", b"/..%5c..%5cwin.ini",  # backslash
])
def test_resolve_refuses_nul_and_backslash(target: bytes) -> None:
    """NUL and backslash (raw or encoded) are 400."""
    assert status_of(target) == 400


@pytest.mark.parametrize("target", [
    b"/%c0%ae%c0%ae/etc/passwd",   # overlong `.`
    b"/%c0%af",                    # overlong `/`
    b"/%e0%80%ae",                 # 3-byte overlong `.`
    b"/%ff",                       # never valid in UTF-8
    b"/%c3",                       # truncated sequence
    b"/%ed%a0%80",                 # UTF-16 surrogate
])
def test_resolve_keeps_bad_utf8_as_literal_bytes(target: bytes) -> None:
    """Malformed and overlong UTF-8 never decode to `.` or `/`: the bytes stay a literal
    file name (as on disk, where Linux names are bytes), inside the root."""
    resolved = resolve_target("/srv/root", target)
    raw = os.fsencode(resolved.path)
    assert raw.startswith(b"/srv/root/")
    assert b"/../" not in raw and not raw.endswith(b"/..")
    assert raw == b"/srv/root" + unquote_to_bytes(target)
    assert resolved.redirect.isascii()


@pytest.mark.parametrize("target", [
    b"/.git/config", b"/.env", b"/a/.hidden", b"/%2egit/config", b"/a/.well/b", b"/...",
])
def test_resolve_hides_dotfiles(target: bytes) -> None:
    """Dotfiles and dot-directories anywhere in the path are 404."""
    assert status_of(target) == 404


@pytest.mark.parametrize(("target", "path"), [
    (b"http://other.host/a/b?q", "a/b"),
    (b"HTTP://other.host/a/b", "a/b"),
    (b"https://other.host:8443/x.txt#f", "x.txt"),
    (b"http://other.host", "index.html"),
])
def test_resolve_absolute_form(target: bytes, path: str) -> None:
    """Absolute-form targets use only their path (RFC 9112 §3.2.2)."""
    assert resolved(target).path == os.path.join(ROOT, path)


@pytest.mark.parametrize("target", [
    b"http://user@other.host/a", b"https://u:p@other.host/", b"http://trusted.example@evil/x",
    b"http://@host/", b"http://a@b?q",
])
def test_resolve_refuses_userinfo_in_absolute_form(target: bytes) -> None:
    """Userinfo in an http(s) target is an error (RFC 9110 §4.2.4): 400. An `@` after the
    authority (in the path or query) is an ordinary byte."""
    assert status_of(target) == 400


@pytest.mark.parametrize("target", [b"/a%", b"/a%2", b"/a%zz", b"/%G0", b"/a%2/b", b"/%%41"])
def test_resolve_refuses_bad_percent_encoding(target: bytes) -> None:
    """A `%` not followed by two hex digits is no valid target (RFC 3986 §2.1): 400 and
    close, not a literal `%` in a name (nginx answers 400 too)."""
    assert status_of(target) == 400


@pytest.mark.parametrize(("target", "path"), [
    (b"/a%25", "a%"), (b"/a%41%42", "aAB"), (b"/a?q=%", "a"), (b"/a#%zz", "a"),
])
def test_good_percent_encoding_and_a_percent_outside_the_path_pass(target: bytes,
                                                                   path: str) -> None:
    assert resolved(target).path == os.path.join(ROOT, path)


@pytest.mark.parametrize(("target", "path"), [
    (b"http://host/a@b", "a@b"), (b"http://host?x@y", "index.html"), (b"/a@b", "a@b"),
])
def test_an_at_sign_past_the_authority_is_part_of_the_path(target: bytes, path: str) -> None:
    assert resolved(target).path == os.path.join(ROOT, path)


def test_resolve_absolute_form_keeps_query() -> None:
    """The query of an absolute-form target survives into the redirect, even with no path."""
    assert resolved(b"http://other.host/a/b?q").redirect == b"/a/b/?q"
    assert resolved(b"http://other.host?q=1").redirect == b"/?q=1"


@pytest.mark.parametrize("target", [
    b"*", b"example.com:80", b"a/b", b"ftp://host/x", b"", b"javascript:alert(1)",
])
def test_resolve_refuses_other_forms(target: bytes) -> None:
    """Asterisk-form, authority-form and relative targets are 400."""
    assert status_of(target) == 400


@pytest.mark.parametrize(("target", "redirect"), [
    (b"/sub", b"/sub/"),
    (b"/sub?x=1&y=%20", b"/sub/?x=1&y=%20"),
    (b"/a%20b", b"/a%20b/"),
    (b"/caf%C3%A9", b"/caf%C3%A9/"),
    (b"/a/../sub", b"/sub/"),
    (b"//evil.com", b"/evil.com/"),
    (b"/%2f%2fevil.com", b"/evil.com/"),
    (b"/%252e%252e", b"/%252e%252e/"),
    (b"/q%3Fx", b"/q%3Fx/"),
    (b"/sub#frag", b"/sub/"),
    (b"/sub#frag?notquery", b"/sub/"),
    (b"/", b"/"),
])
def test_resolve_redirect(target: bytes, redirect: bytes) -> None:
    """A directory's redirect is percent-encoded, slash-terminated and keeps the query."""
    assert resolved(target).redirect == redirect


@pytest.mark.parametrize("target", [
    b"//evil.com", b"///evil.com/", b"/%2f/evil.com", b"/./%2fevil.com", b"/a/..//evil.com",
    b"/.//evil.com", b"http://x//evil.com",
])
def test_resolve_redirect_never_protocol_relative(target: bytes) -> None:
    """A redirect never starts with `//` (an open redirect to another host)."""
    redirect = resolved(target).redirect
    assert redirect.startswith(b"/") and not redirect.startswith(b"//")


# -- load ---------------------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    docroot = tmp_path / "root"
    docroot.mkdir()
    (docroot / "small.txt").write_text("hello, world\n")
    (docroot / "page.html").write_text("<p>hi</p>\n")
    (docroot / "blob.bin").write_bytes(os.urandom(4096))
    (docroot / "sub").mkdir()
    (docroot / "sub" / "index.html").write_text("<p>sub</p>\n")
    return docroot


def load_target(docroot: Path, target: bytes, max_in_memory: int = 1024,
                prev: FileBody | None = None) -> FileBody:
    real = os.path.realpath(docroot)
    cfg = Config(docroot=str(docroot), cache_max_entry=max_in_memory)
    return load(resolve_target(str(docroot), target), real, cfg, prev)


def load_error(docroot: Path, target: bytes) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        load_target(docroot, target)
    return info.value


def field(body: FileBody, name: bytes) -> bytes:
    for line in body.fields.split(b"\r\n"):
        key, sep, value = line.partition(b": ")
        if sep and key.lower() == name.lower():
            return value
    raise AssertionError(f"{name!r} not in {body.fields!r}")


def test_load_small_file_in_memory(root: Path) -> None:
    """A file up to max_in_memory is read into `data` and keeps no fd."""
    body = load_target(root, b"/small.txt")
    assert body.data == b"hello, world\n"
    assert body.fd is None
    assert body.size == 13
    assert body.path == os.path.realpath(root / "small.txt")


def test_load_large_file_keeps_fd(root: Path) -> None:
    """A file above max_in_memory keeps an open, readable fd and no data."""
    body = load_target(root, b"/blob.bin", max_in_memory=1000)
    assert body.data is None
    assert body.fd is not None
    try:
        st = os.fstat(body.fd)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_ino == (root / "blob.bin").stat().st_ino
        assert os.pread(body.fd, 4096, 0) == (root / "blob.bin").read_bytes()
        assert body.size == 4096
    finally:
        os.close(body.fd)


def test_load_boundary_size(root: Path) -> None:
    """Exactly max_in_memory bytes is still read into memory."""
    body = load_target(root, b"/blob.bin", max_in_memory=4096)
    assert body.fd is None and body.data is not None and len(body.data) == 4096


def test_load_fields(root: Path) -> None:
    """The pre-rendered fields hold type with charset, length, Last-Modified and ETag."""
    body = load_target(root, b"/small.txt")
    st = (root / "small.txt").stat()
    assert field(body, b"Content-Type") == b"text/plain; charset=utf-8"
    assert field(body, b"Content-Length") == b"13"
    assert field(body, b"ETag") == body.etag
    assert body.etag.startswith(b'"') and body.etag.endswith(b'"')
    lm = email.utils.parsedate_to_datetime(field(body, b"Last-Modified").decode())
    assert int(lm.timestamp()) == int(st.st_mtime)
    assert field(body, b"Last-Modified").endswith(b" GMT")
    assert body.fields.endswith(b"\r\n")
    html = load_target(root, b"/page.html")
    assert field(html, b"Content-Type") == b"text/html; charset=utf-8"
    binary = load_target(root, b"/blob.bin", max_in_memory=1 << 20)
    assert field(binary, b"Content-Type") == b"application/octet-stream"


def test_etag_stable_and_changes(root: Path) -> None:
    """The ETag is stable for an unchanged file and changes with size, mtime or inode."""
    f = root / "small.txt"
    first = load_target(root, b"/small.txt").etag
    assert load_target(root, b"/small.txt").etag == first

    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    by_mtime = load_target(root, b"/small.txt").etag
    assert by_mtime != first

    st = f.stat()
    f.write_text("hello, world!\n")  # one byte longer
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only the size differs
    by_size = load_target(root, b"/small.txt").etag
    assert by_size not in (first, by_mtime)

    st = f.stat()
    replacement = root / "replacement.tmp"
    replacement.write_text("hello, world!\n")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, f)  # same size and mtime, new inode
    by_inode = load_target(root, b"/small.txt").etag
    assert by_inode not in (first, by_mtime, by_size)


def test_load_directory_redirects(root: Path) -> None:
    """A directory without the slash is 301 to the slash-terminated URL, query kept."""
    err = load_error(root, b"/sub?x=1")
    assert err.status is HTTPStatus.MOVED_PERMANENTLY
    assert dict(err.headers)[b"Location"] == b"/sub/?x=1"
    assert err.close is False
    assert load_target(root, b"/sub/").data == b"<p>sub</p>\n"


def test_load_missing_with_custom_404(root: Path) -> None:
    """A missing file is 404 carrying the root's 404.html as the body."""
    (root / "404.html").write_text("<h1>custom</h1>\n")
    err = load_error(root, b"/nope.txt")
    assert err.status is HTTPStatus.NOT_FOUND
    assert err.body == b"<h1>custom</h1>\n"
    assert err.close is False


def test_load_missing_without_custom_404(root: Path) -> None:
    """Without 404.html the 404 carries no body (the generic page is used)."""
    err = load_error(root, b"/nope.txt")
    assert err.status is HTTPStatus.NOT_FOUND
    assert err.body is None


def test_load_file_used_as_directory(root: Path) -> None:
    """`/small.txt/` (ENOTDIR) is 404, not an error."""
    assert load_error(root, b"/small.txt/").status is HTTPStatus.NOT_FOUND
    assert load_error(root, b"/small.txt/x").status is HTTPStatus.NOT_FOUND


def test_load_follows_symlink_inside_root(root: Path) -> None:
    """A symlink to a file inside the root is served."""
    (root / "link.txt").symlink_to(root / "small.txt")
    (root / "linkdir").symlink_to(root / "sub")
    assert load_target(root, b"/link.txt").data == b"hello, world\n"
    assert load_target(root, b"/linkdir/index.html").data == b"<p>sub</p>\n"


def test_load_refuses_symlink_escape(root: Path, tmp_path: Path) -> None:
    """Symlinks (file or directory) that leave the root are 404."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    (root / "escape").symlink_to(outside / "passwd")
    (root / "escdir").symlink_to(outside)
    (root / "relative").symlink_to("../outside/passwd")
    for target in (b"/escape", b"/escdir/passwd", b"/relative"):
        err = load_error(root, target)
        assert err.status is HTTPStatus.NOT_FOUND, target
        assert err.body is None


def test_load_refuses_sibling_prefix(tmp_path: Path) -> None:
    """`/root-evil` is not inside `/root`: the check is `root + os.sep`, not a bare prefix."""
    docroot = tmp_path / "www"
    docroot.mkdir()
    sibling = tmp_path / "www-evil"
    sibling.mkdir()
    (sibling / "x.txt").write_text("secret\n")
    (docroot / "x.txt").symlink_to(sibling / "x.txt")
    assert load_error(docroot, b"/x.txt").status is HTTPStatus.NOT_FOUND


def test_load_fifo_is_404_without_hanging(root: Path) -> None:
    """A FIFO in the root is 404 and does not block the worker."""
    os.mkfifo(root / "pipe")
    outcome: list[object] = []

    def attempt() -> None:
        try:
            outcome.append(load_target(root, b"/pipe"))
        except HTTPError as err:
            outcome.append(err)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the hung open() so the thread can end
        fd = os.open(root / "pipe", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("load() blocked on a FIFO")
    assert len(outcome) == 1
    assert isinstance(outcome[0], HTTPError)
    assert outcome[0].status is HTTPStatus.NOT_FOUND


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_load_unreadable_is_403(root: Path) -> None:
    """A file the server may not read is 403."""
    (root / "small.txt").chmod(0)
    try:
        assert load_error(root, b"/small.txt").status is HTTPStatus.FORBIDDEN
    finally:
        (root / "small.txt").chmod(0o644)


def test_load_prev_unchanged_returns_same_object(root: Path) -> None:
    """With an unchanged `prev` the same object comes back and nothing is reread."""
    prev = load_target(root, b"/small.txt")
    again = load_target(root, b"/small.txt", prev=prev)
    assert again is prev


def test_load_prev_unchanged_does_not_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Revalidating an unchanged file does no read at all."""
    prev = load_target(root, b"/small.txt")

    def no_read(*args: object) -> bytes:
        raise AssertionError("file was reread")

    monkeypatch.setattr(os, "pread", no_read)
    monkeypatch.setattr(os, "read", no_read)
    assert load_target(root, b"/small.txt", prev=prev) is prev


def test_load_prev_changed_rereads(root: Path) -> None:
    """With a changed file the new content comes back."""
    prev = load_target(root, b"/small.txt")
    f = root / "small.txt"
    f.write_text("changed content\n")
    os.utime(f, ns=(0, prev.mtime_ns + 2_000_000_000))
    body = load_target(root, b"/small.txt", prev=prev)
    assert body is not prev
    assert body.data == b"changed content\n"
    assert body.etag != prev.etag


def test_load_prev_grown_large_returns_fd(root: Path) -> None:
    """A cached small file that grew beyond the limit comes back as an fd."""
    prev = load_target(root, b"/small.txt", max_in_memory=100)
    (root / "small.txt").write_bytes(b"x" * 500)
    body = load_target(root, b"/small.txt", max_in_memory=100, prev=prev)
    assert body.data is None and body.fd is not None
    try:
        assert body.size == 500
    finally:
        os.close(body.fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_load_leaks_no_fds(root: Path, tmp_path: Path) -> None:
    """Many loads, including every error path, leave the fd count unchanged."""
    (root / "404.html").write_text("missing\n")
    os.mkfifo(root / "pipe")
    outside = tmp_path / "outside.txt"
    outside.write_text("x\n")
    (root / "escape").symlink_to(outside)
    prev = load_target(root, b"/small.txt")
    before = _open_fds()
    for _ in range(200):
        load_target(root, b"/small.txt")
        load_target(root, b"/small.txt", prev=prev)
        for target in (b"/sub", b"/nope", b"/pipe", b"/escape", b"/small.txt/"):
            with pytest.raises(HTTPError):
                load_target(root, target)
        big = load_target(root, b"/blob.bin", max_in_memory=10)
        assert big.fd is not None
        os.close(big.fd)
    assert _open_fds() == before


# -- content_type ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "ctype"), [
    ("a.html", "text/html; charset=utf-8"),
    ("A.HTML", "text/html; charset=utf-8"),
    ("a.css", "text/css; charset=utf-8"),
    ("a.js", "text/javascript; charset=utf-8"),
    ("a.mjs", "text/javascript; charset=utf-8"),
    ("a.json", "application/json; charset=utf-8"),
    ("a.svg", "image/svg+xml; charset=utf-8"),
    ("a.png", "image/png"),
    ("a.jpg", "image/jpeg"),
    ("a.gif", "image/gif"),
    ("a.webp", "image/webp"),
    ("a.avif", "image/avif"),
    ("a.ico", "image/vnd.microsoft.icon"),
    ("a.txt", "text/plain; charset=utf-8"),
    ("a.pdf", "application/pdf"),
    ("a.mp4", "video/mp4"),
    ("a.webm", "video/webm"),
    ("a.wasm", "application/wasm"),
    ("a.unknownext", "application/octet-stream"),
    ("noextension", "application/octet-stream"),
    ("/dir.d/archive", "application/octet-stream"),
])
def test_content_type(name: str, ctype: str) -> None:
    """Known extensions map to their type (text types with charset); unknown is octet-stream."""
    assert content_type(name) == ctype


@pytest.mark.parametrize("code, status", [(errno.EACCES, 403), (errno.ENOENT, 404)])
def test_listing_that_cannot_be_read_is_403_or_404(
        root: Path, monkeypatch: pytest.MonkeyPatch, code: int, status: int) -> None:
    """A directory unreadable (403) or removed during the scan (404) is never a 500."""
    (root / "empty").mkdir()

    def fail(*args: object) -> tuple[bytes, bytes]:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files, "render_listing", fail)
    cfg = Config(docroot=str(root), listing=True)
    with pytest.raises(HTTPError) as info:
        load(resolve_target(str(root), b"/empty/"), os.path.realpath(root), cfg)
    assert info.value.status == status


def test_follow_symlinks_policy_serves_links_out_of_the_root(root: Path, tmp_path: Path) -> None:
    """--follow-symlinks: a link leading out of the root is served; without it, 404."""
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "notes.txt").write_text("shared notes\n")
    (root / "notes.txt").symlink_to(outside / "notes.txt")
    real = os.path.realpath(root)
    target = resolve_target(str(root), b"/notes.txt")
    with pytest.raises(HTTPError) as info:
        load(target, real, Config(docroot=str(root)))
    assert info.value.status == HTTPStatus.NOT_FOUND
    body = load(target, real, Config(docroot=str(root), follow_symlinks=True))
    assert body.data == b"shared notes\n"


def test_symlink_to_a_dotfile_is_hidden(root: Path) -> None:
    """A visible name that links to `.env` inside the root does not reveal it."""
    (root / ".env").write_text("SECRET=1\n")
    (root / "config.txt").symlink_to(root / ".env")
    error = load_error(root, b"/config.txt")
    assert error.status == HTTPStatus.NOT_FOUND
    assert b"SECRET" not in (error.body or b"")
