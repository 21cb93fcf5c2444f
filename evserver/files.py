"""The document root: mapping targets to paths and routes, and blocking file work.

Owns: `resolve_target()` and `route()` (pure, loop thread), `load()` (pool threads only),
`FileBody`, `content_type()`, `load_error_pages()`. Imports `http11` (for `HTTPError` and
dates), `semantics` (which codings a client takes), `codings` (encoding here), `config` and
`listing`.
"""
from __future__ import annotations

import errno
import functools
import mimetypes
import os
import re
import stat
from concurrent.futures import Future
from dataclasses import dataclass, replace
from http import HTTPStatus
from urllib.parse import quote, unquote_to_bytes

from .codings import compress_bytes, compress_file, compressible, enabled
from .config import Config
from .http11 import HTTPError, http_date
from .listing import render_listing
from .live import inject
from .semantics import accepted_encodings, prefers_json

# Built-in types win over the host's /etc/mime.types, which is often old or missing.
_TYPES = {
    ".html": "text/html", ".htm": "text/html", ".css": "text/css",
    ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
    ".map": "application/json", ".txt": "text/plain", ".md": "text/markdown",
    ".csv": "text/csv", ".xml": "application/xml", ".svg": "image/svg+xml",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif", ".ico": "image/vnd.microsoft.icon",
    ".bmp": "image/bmp", ".pdf": "application/pdf", ".mp4": "video/mp4",
    ".webm": "video/webm", ".ogg": "audio/ogg", ".mp3": "audio/mpeg", ".wav": "audio/wav",
    ".wasm": "application/wasm", ".woff": "font/woff", ".woff2": "font/woff2",
    ".ttf": "font/ttf", ".otf": "font/otf", ".webmanifest": "application/manifest+json",
    ".zip": "application/zip", ".gz": "application/gzip", ".tar": "application/x-tar",
    ".jxl": "image/jxl", ".apng": "image/apng", ".flac": "audio/flac", ".opus": "audio/ogg",
    ".m4a": "audio/mp4", ".vtt": "text/vtt", ".yaml": "application/yaml",
    ".toml": "application/toml", ".ics": "text/calendar", ".epub": "application/epub+zip",
}
_UTF8_TYPES = {"application/json", "application/xml", "image/svg+xml",
               "application/manifest+json"}
INDEX = "index.html"
_MAX_ERROR_PAGE = 1024 * 1024
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # a `%` not followed by two hex digits


def content_type(name: str, overrides: tuple[str, ...] = ()) -> str:
    """The Content-Type for a file name; text types say charset=utf-8. `overrides` are
    `.ext=type` (--mime-type), which win over the built-in table, which wins over the
    host's mimetypes."""
    ext = os.path.splitext(name)[1].lower()
    ctype = _types(overrides).get(ext) or mimetypes.guess_type(name, strict=False)[0]
    if ctype is None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in _UTF8_TYPES:
        return ctype + "; charset=utf-8"
    return ctype


@functools.lru_cache(maxsize=8)
def _types(overrides: tuple[str, ...]) -> dict[str, str]:
    table = dict(_TYPES)
    for item in overrides:
        ext, _, ctype = item.partition("=")
        table[ext.lower()] = ctype
    return table


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request target mapped under the root. `redirect` is where a directory goes;
    `url_path` (decoded, normalized) and `query` are what a directory listing shows."""

    path: str
    redirect: bytes
    url_path: str = "/"
    query: bytes = b""
    is_dir: bool = False


def resolve_target(docroot: str, target: bytes) -> Resolved:
    """`resolve_target_uncached`, memoized for the short targets that repeat (a pure
    function of its arguments; errors are never cached)."""
    if len(target) <= _MEMO_TARGET_MAX:
        return _resolve_memo(docroot, target)
    return resolve_target_uncached(docroot, target)


def resolve_target_uncached(docroot: str, target: bytes) -> Resolved:
    """Map a request-target to a path under `docroot` without touching the disk.

    Percent-decodes once and normalizes `.`/`..`/`//`; rejects NUL, backslashes and `..`
    above the root; hides dotfiles.
    A trailing slash means the directory's index.html.
    """
    if target[:1] != b"/":
        target = _origin_form(target)
    # The fragment goes first: a `?` inside it is not a query (RFC 3986 §3.5).
    raw_path, _, query = target.partition(b"#")[0].partition(b"?")
    if b"%" in raw_path and _BAD_PERCENT.search(raw_path):
        # RFC 3986 §2.1: `%` starts two hex digits. Taken as a literal (as unquote does)
        # it would name another file than a stricter hop before us thinks: 400, as nginx.
        raise HTTPError(HTTPStatus.BAD_REQUEST, "bad percent-encoding")
    # Linux names are bytes: bytes that are not UTF-8 (an old Latin-1 share, say) stay
    # themselves through surrogate escapes. Overlong forms of `.` and `/` thus remain
    # literal bytes of a name and can never become path syntax.
    path = os.fsdecode(unquote_to_bytes(raw_path))
    if "\0" in path or "\\" in path:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "NUL or backslash in path")
    segments: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not segments:
                raise HTTPError(HTTPStatus.BAD_REQUEST, "path leaves the root")
            segments.pop()
        elif part.startswith("."):
            raise HTTPError(HTTPStatus.NOT_FOUND, "dotfile", close=False)
        else:
            segments.append(part)
    # A trailing "/" (or "/." / "/..") names a directory; `//x` collapses to `/x`, so the
    # redirect can never become a protocol-relative URL to another host.
    is_dir = path.endswith(("/", "/.", "/..")) or not segments
    url = "/" + "/".join(segments)
    redirect = quote(os.fsencode(url + ("" if url == "/" else "/"))).encode("ascii")
    if query:
        redirect += b"?" + query
    fs_path = os.path.join(docroot, *segments, *([INDEX] if is_dir else []))
    return Resolved(fs_path, redirect, url if url == "/" or not is_dir else url + "/", query,
                    is_dir)


_MEMO_TARGET_MAX = 256  # bounds the memo's memory: 4096 entries of at most this size
_resolve_memo = functools.lru_cache(maxsize=4096)(resolve_target_uncached)


Route = tuple[Resolved, str, tuple[str, ...]]  # the path, the cache key, the codings


# What `encodings` ends with when the request says `Cache-Control: no-transform`: its
# precompressed siblings may still be sent, but nothing may be encoded for it here.
NO_TRANSFORM = "no-transform"


def route(docroot: str, target: bytes, accept_encoding: bytes | None,
          transform: bool = True) -> Route:
    """Where a request leads: the file, the encodings the client takes (best first; then
    NO_TRANSFORM if `transform` is false) and the cache key of that variant. Memoized for
    the short inputs that repeat (one C call on a hit); pure, and errors (HTTPError) are
    never cached."""
    if len(target) <= _MEMO_TARGET_MAX and (accept_encoding is None
                                            or len(accept_encoding) <= _MEMO_TARGET_MAX):
        return _route_memo(docroot, target, accept_encoding, transform)
    return _route_uncached(docroot, target, accept_encoding, transform)


def _route_uncached(docroot: str, target: bytes, accept_encoding: bytes | None,
                    transform: bool) -> Route:
    resolved = resolve_target(docroot, target)
    encodings = accepted_encodings(accept_encoding)
    if encodings and not transform:
        encodings += (NO_TRANSFORM,)
    key = resolved.path + "\0" + ",".join(encodings) if encodings else resolved.path
    return resolved, key, encodings


_route_memo = functools.lru_cache(maxsize=4096)(_route_uncached)


def _origin_form(target: bytes) -> bytes:
    """The path of an absolute-form target (RFC 9112 §3.2.2); other forms are refused."""
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.lower() in (b"http", b"https"):
        # The authority ends at the first `/`, `?` or `#`; an empty path is `/` and the
        # query, if any, is kept (`http://host?q` is `/?q`).
        end = len(rest)
        for delimiter in (b"/", b"?", b"#"):
            found = rest.find(delimiter)
            if 0 <= found < end:
                end = found
        if b"@" in rest[:end]:
            # RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error
            # (it has carried phishing: http://trusted.example@evil.example/).
            raise HTTPError(HTTPStatus.BAD_REQUEST, "userinfo in the request-target")
        path = rest[end:]
        return path if path[:1] == b"/" else b"/" + path
    raise HTTPError(HTTPStatus.BAD_REQUEST, "request-target is not origin- or absolute-form")


@dataclass(frozen=True, slots=True)
class FileBody:
    """A file ready to send: metadata, pre-rendered head parts, and bytes or an open fd.

    Rendered once in the pool, so a cache hit does no formatting: `fields` is every header
    of a 200 that depends only on the file; `meta` the validators, Cache-Control and Vary
    that a 304 repeats (RFC 9110 §15.4.5); `coding` the Content-Encoding line of an encoded
    variant. Exactly one of `data` and `fd` is set; whoever holds a FileBody with an fd
    must close it. An empty `etag` marks generated content (a listing): no validators, no
    ranges, not cached.

    An encoded variant knows the size of the file it stands for (`identity_size`, for the
    savings counted). One encoded here (`encoded_here`) was made from the file itself, so
    `size`, `mtime_ns` and `ino` are the file's own until `stream` says otherwise: then
    the body is the file's fd, encoded with `stream` at `level` while it is sent (a file
    too large to keep encoded in memory), with no Content-Length and no ranges.
    """

    path: str
    size: int
    mtime_ns: int
    ino: int
    etag: bytes
    fields: bytes
    data: bytes | None
    fd: int | None
    meta: bytes = b""
    ctype: bytes = b"application/octet-stream"
    coding: bytes = b""
    vary: bool = False
    identity_size: int = -1
    encoded_here: bool = False
    stream: str = ""
    level: int = 0

    @property
    def mtime(self) -> int:
        return self.mtime_ns // 1_000_000_000

    def identical(self, st: os.stat_result) -> bool:
        """Whether `st` is the file this body was made from, as it was then."""
        size = self.identity_size if self.encoded_here else self.size
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (size, self.mtime_ns, self.ino)

    def changed_in_place(self) -> bool:
        """Whether an open file no longer has the size and mtime its headers announce: a
        file truncated or rewritten in place would otherwise be sent with a wrong length.
        fstat of an open fd reads the in-memory inode; it does not wait on the disk."""
        assert self.fd is not None
        try:
            return not self.identical(os.fstat(self.fd))
        except OSError:
            return True

    def close_fd(self) -> None:
        """Close the open file this body carries, if any: whoever holds it owns it."""
        if self.fd is not None:
            os.close(self.fd)

    def close_unless(self, shared: bool) -> None:
        """Done with this body without sending from its fd: close the fd, unless `shared`
        (the cache owns it)."""
        if not shared:
            self.close_fd()


def close_result(future: Future[FileBody]) -> None:
    """Close the fd a `load` result carries that nobody will send from."""
    if not future.cancelled() and future.exception() is None:
        future.result().close_fd()


# Precompressed siblings, as nginx's gzip_static and brotli_static find them.
_SIBLINGS = (("br", ".br"), ("zstd", ".zst"), ("gzip", ".gz"))


def load(target: Resolved, docroot_real: str, cfg: Config, prev: FileBody | None = None,
         encodings: tuple[str, ...] = (), accept: bytes | None = None) -> FileBody:
    """Open and check a file; read it if small, else keep the fd. Runs in the pool only.

    `encodings` are the codings the client accepts, best first (see `route`). A
    precompressed sibling (`app.js.br`, `.zst`, `.gz`) in the first of them that has one
    is served instead of the file; else a file worth it is encoded here in the first of
    them that --compress-encodings turns on (see `_encode`). With `prev` (a cached body)
    the file is reread only if it changed. Raises HTTPError: 404 (missing, hidden, or
    outside the root), 403, or 301 for a directory.
    """
    try:
        real = os.path.realpath(target.path)
        refused = refusal(real, docroot_real, cfg.follow_symlinks)
        if refused:
            raise _not_found(docroot_real, refused)
        ctype = content_type(real, cfg.mime_types)
        # --live-reload: a page gets the script, so its precompressed siblings cannot go;
        # and while files are being edited a sibling is likely stale (app.css.gz made by the
        # last build, app.css saved since): the file itself goes, encoded here if it pays.
        live = cfg.live_reload and ctype.startswith("text/html")
        siblings = {} if cfg.live_reload else _siblings(real, docroot_real)
        coding = next((c for c in encodings if c in siblings), "")
        # O_NONBLOCK: opening a FIFO someone left in the root must not hang a worker.
        fd = os.open(siblings[coding] if coding else real,
                     os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.EACCES:
            raise HTTPError(HTTPStatus.FORBIDDEN, "permission denied", close=False) from None
        if err.errno == errno.ENOENT and target.is_dir and cfg.listing:
            return _listing(target, docroot_real, prefers_json(b"", accept), cfg)
        raise _not_found(docroot_real, os.strerror(err.errno or 0)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise HTTPError(HTTPStatus.MOVED_PERMANENTLY, "directory",
                            headers=((b"Location", target.redirect),), close=False)
        if not stat.S_ISREG(st.st_mode):
            raise _not_found(docroot_real, "not a regular file")
        here = {} if coding else _encodable(ctype, st.st_size, cfg)
        vary = bool(siblings or here)
        encode = next((c for c in encodings if c in here), "")
        if encode and NO_TRANSFORM in encodings:
            encode = ""
        if (prev is not None and prev.data is not None and prev.identical(st)
                and prev.vary == vary and prev.coding == _coding_line(coding or encode)):
            os.close(fd)
            return prev  # unchanged: no need to read or encode it again
        # A cached fd is never handed back: the cache may close it meanwhile, so the
        # revalidated body brings its own, which replaces the cached one.
        body = None
        if live:
            body = _live_page(real, fd, st, cfg, ctype, encode, here.get(encode, 0), vary)
        if encode and body is None:
            body = _encode(real, fd, st, cfg, ctype, encode, here[encode])
        if body is None:
            body = _body(real, fd, st, cfg, ctype, coding, vary)
        if coding:
            body = _with_identity_size(body, real)
    except BaseException:
        os.close(fd)
        raise
    if body.fd is None:
        os.close(fd)
    elif cfg.readahead:
        read_ahead(fd, 0, cfg.readahead)  # the first window, before the loop sends
    return body


def read_ahead(fd: int, offset: int, length: int) -> None:
    """Start reading `length` bytes at `offset` into the page cache. Runs in the pool only:
    the kernel submits the reads and returns (POSIX_FADV_WILLNEED), but finding the blocks
    of a cold file may itself wait on the disk. The fd may be closed by now: then this
    hint has nothing left to do."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass


def refusal(real: str, docroot_real: str, follow_symlinks: bool) -> str:
    """Why the file at `real` (a resolved path) is not served, or "" if it is: it leaves
    the root (unless --follow-symlinks), or it is a dotfile reached by another name. The
    listing asks too, so it never shows an entry that a click would find missing."""
    inside = real.startswith(docroot_real + os.sep)
    if not inside and real != docroot_real and not follow_symlinks:
        return "symlink leaves the root"
    if ((os.sep + ".") in real[len(docroot_real):] if inside
            else os.path.basename(real).startswith(".")):
        return "a symlink to a dotfile"  # hidden by any name
    return ""


def _siblings(real: str, docroot_real: str) -> dict[str, str]:
    """The precompressed variants of `real` that exist as regular files inside the root."""
    found = {}
    for coding, suffix in _SIBLINGS:
        candidate = os.path.realpath(real + suffix)
        if (candidate.startswith(docroot_real + os.sep) and os.path.isfile(candidate)):
            found[coding] = candidate
    return found


def _body(real: str, fd: int, st: os.stat_result, cfg: Config, ctype: str, coding: str,
          vary: bool) -> FileBody:
    data = _read_all(fd, st.st_size) if st.st_size <= cfg.cache_max_entry else None
    size = st.st_size if data is None else len(data)  # a file that shrank meanwhile
    # Each variant is its own representation with its own strong tag (RFC 9110 §8.8.3).
    etag = b'"%x-%x-%x%s"' % (st.st_ino, st.st_mtime_ns, size,
                              b"-" + coding.encode() if coding else b"")
    meta = _meta(st, etag, _cache_control(cfg, ctype), vary)
    coding_line = _coding_line(coding)
    ctype_bytes = ctype.encode("ascii")
    fields = b"Content-Type: %s\r\nContent-Length: %d\r\n%sAccept-Ranges: bytes\r\n%s" % (
        ctype_bytes, size, coding_line, meta)
    return FileBody(real, size, st.st_mtime_ns, st.st_ino, etag, fields, data,
                    None if data is not None else fd, meta, ctype_bytes, coding_line, vary)


def _cache_control(cfg: Config, ctype: str) -> str:
    if cfg.no_cache:
        return "no-store"  # --no-cache: development, every reload is fresh
    if cfg.live_reload:
        return "no-cache"  # a page reloaded for a change must fetch what changed
    return cfg.cache_control_html if ctype.startswith("text/html") else cfg.cache_control


def _meta(st: os.stat_result, etag: bytes, cache_control: str, vary: bool) -> bytes:
    return b"Last-Modified: %s\r\nETag: %s\r\nCache-Control: %s\r\n%s" % (
        http_date(st.st_mtime_ns // 1_000_000_000), etag, cache_control.encode("latin-1"),
        b"Vary: Accept-Encoding\r\n" if vary else b"")


def _coding_line(coding: str) -> bytes:
    return b"Content-Encoding: %s\r\n" % coding.encode() if coding else b""


# -- encoding here (--compress) -----------------------------------------------------------

def _encodable(ctype: str, size: int, cfg: Config) -> dict[str, int]:
    """The codings (with levels) this file may be encoded in here: none unless --compress
    is on, its type is one that shrinks, it reaches --compress-min-size, and no configured
    Cache-Control says no-transform (RFC 9111 §5.2.2.6: then its bytes are the sender's)."""
    if (not cfg.compress or size < cfg.compress_min_size
            or not compressible(ctype, cfg.compress_types)
            or _says_no_transform(cfg, _cache_control(cfg, ctype))):
        return {}
    return enabled(cfg.compress_encodings)


def _says_no_transform(cfg: Config, cache_control: str) -> bool:
    if "no-transform" in cache_control.lower():
        return True
    return any(line.partition(":")[0].strip().lower() == "cache-control"
               and "no-transform" in line.lower() for line in cfg.headers)


def memory_limit(cfg: Config) -> int:
    """The largest file encoded whole into memory (and cached); larger ones are encoded
    while they are sent. A quarter of the budget: one file cannot crowd out the rest."""
    return cfg.compress_cache_bytes // 4


def _encode(real: str, fd: int, st: os.stat_result, cfg: Config, ctype: str, coding: str,
            level: int) -> FileBody | None:
    """The file encoded here in `coding`: whole in memory, or (too large for that) as a
    body that `stream`s. None when encoding does not pay (no smaller) or the file changed
    while being read: then the identity body is the answer."""
    size = st.st_size
    # The level is part of the tag: other bytes, another representation (§8.8.3).
    etag = b'"%x-%x-%x-%s%d"' % (st.st_ino, st.st_mtime_ns, size, coding.encode(), level)
    meta = _meta(st, etag, _cache_control(cfg, ctype), True)
    coding_line = _coding_line(coding)
    ctype_bytes = ctype.encode("ascii")
    if size > memory_limit(cfg):
        fields = b"Content-Type: %s\r\n%s%s" % (ctype_bytes, coding_line, meta)
        return FileBody(real, size, st.st_mtime_ns, st.st_ino, etag, fields, None, fd, meta,
                        ctype_bytes, coding_line, True, size, True, coding, level)
    data = compress_file(fd, size, coding, level)
    if data is None or len(data) >= size:
        return None
    fields = b"Content-Type: %s\r\nContent-Length: %d\r\n%sAccept-Ranges: bytes\r\n%s" % (
        ctype_bytes, len(data), coding_line, meta)
    return FileBody(real, len(data), st.st_mtime_ns, st.st_ino, etag, fields, data, None,
                    meta, ctype_bytes, coding_line, True, size, True)


_MAX_LIVE_PAGE = 16 * 1024 * 1024  # a larger page is served as it is, without the script


def _live_page(real: str, fd: int, st: os.stat_result, cfg: Config, ctype: str, coding: str,
               level: int, vary: bool) -> FileBody | None:
    """--live-reload: the page with the script that listens for changes, in memory (and
    encoded in `coding`, if given), its own representation with its own tag. None when the
    page has no `</body>` (or is huge): it is then served as it is."""
    if st.st_size > _MAX_LIVE_PAGE:
        return None
    page = inject(_read_all(fd, st.st_size), cfg.live_reload_path)
    if page is None:
        return None
    tag = b"%x-%x-%x-live" % (st.st_ino, st.st_mtime_ns, st.st_size)
    data = page
    if coding:
        encoded = compress_bytes(page, coding, level)
        if len(encoded) < len(page):
            data, tag = encoded, tag + b"-%s%d" % (coding.encode(), level)
        else:
            coding = ""
    etag = b'"%s"' % tag
    meta = _meta(st, etag, _cache_control(cfg, ctype), vary)
    coding_line = _coding_line(coding)
    ctype_bytes = ctype.encode("ascii")
    fields = b"Content-Type: %s\r\nContent-Length: %d\r\n%sAccept-Ranges: bytes\r\n%s" % (
        ctype_bytes, len(data), coding_line, meta)
    return FileBody(real, len(data), st.st_mtime_ns, st.st_ino, etag, fields, data, None, meta,
                    ctype_bytes, coding_line, vary, len(page) if coding else -1,
                    bool(coding))


def _with_identity_size(body: FileBody, real: str) -> FileBody:
    """A precompressed sibling's body, knowing the size of the file it stands for."""
    try:
        return replace(body, identity_size=os.stat(real).st_size)
    except OSError:
        return body


def _listing(target: Resolved, docroot_real: str, accepts_json: bool,
             cfg: Config) -> FileBody:
    """A generated index of a directory that has no index.html (--listing), as JSON when
    the query says so or the client's `Accept` prefers it."""
    directory = os.path.realpath(os.path.dirname(target.path))
    refused = refusal(directory, docroot_real, cfg.follow_symlinks)
    if refused:
        raise _not_found(docroot_real, refused)
    if not os.path.isdir(directory):
        raise _not_found(docroot_real, "no such directory")
    try:
        data, ctype = render_listing(
            directory, target.url_path, target.query, accepts_json,
            lambda real: not refusal(real, docroot_real, cfg.follow_symlinks))
    except OSError as err:  # unreadable, or removed since the check
        if err.errno == errno.EACCES:
            raise HTTPError(HTTPStatus.FORBIDDEN, "listing denied", close=False) from None
        raise _not_found(docroot_real, os.strerror(err.errno or 0)) from None
    # A listing changes as files come and go: always asked again, never kept with --no-cache.
    fields = (b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: %s\r\n"
              b"Vary: Accept\r\n" % (ctype, len(data),
                                      b"no-store" if cfg.no_cache else b"no-cache"))
    return FileBody(directory, len(data), 0, 0, b"", fields, data, None, b"", ctype)


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def load_error_pages(docroot_real: str) -> dict[int, bytes]:
    """The root's own error pages, `NNN.html` for 4xx and 5xx statuses (404.html is also
    read afresh for each 404). At start-up and on SIGHUP, never on the loop thread."""
    pages = {}
    try:
        names = os.listdir(docroot_real)
    except OSError:
        return {}
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext == ".html" and len(stem) == 3 and stem.isdigit() and stem[0] in "45":
            try:
                with open(os.path.join(docroot_real, name), "rb") as f:
                    pages[int(stem)] = f.read(_MAX_ERROR_PAGE)
            except OSError:
                continue
    return pages


def _not_found(docroot_real: str, detail: str) -> HTTPError:
    """404, with the root's own 404.html as the body when it has one."""
    page = None
    try:
        with open(os.path.join(docroot_real, "404.html"), "rb") as f:
            page = f.read(_MAX_ERROR_PAGE)
    except OSError:
        pass
    return HTTPError(HTTPStatus.NOT_FOUND, detail, close=False, body=page)
