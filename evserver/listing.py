"""Directory index pages (like nginx autoindex): HTML or JSON, sorted by the query string.

Owns: `render_listing()` (pool threads only: it scans and stats the directory), `human_size()`
and the `MAX_ENTRIES` bound. Imports `look` (the generated pages' one style).

An entry the server would refuse is not listed: dotfiles, what is neither a file nor a
directory, a symlink the caller's `servable` rejects (one leading out of the root), and what
this process may not read.

Every name is untrusted: it is HTML-escaped for display, with control characters made
visible, and every href is the percent-encoded *original bytes* of the name, relative to the
page, so links work under any prefix and for names that are not valid UTF-8.
"""
from __future__ import annotations

import html
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote_plus

from .look import document

MAX_ENTRIES = 10_000  # rendered entries at most; the scan stops there too (bounded work)
_MAX_QUERY_FIELDS = 16
_SORTS = ("name", "size", "time")
_UNITS = ("KiB", "MiB", "GiB")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime's range (years 1..9999), so an absurd mtime is clamped rather than raising.
_MIN_TS, _MAX_TS = -62_135_596_800, 253_402_300_799

# Characters that are parse errors in an HTML5 document: C0 controls (shown as the Unicode
# control pictures, so a newline reads as U+240A), DEL, C1 controls and noncharacters.
_VISIBLE = {c: 0x2400 + c for c in range(0x20)}
_VISIBLE[0x7F] = 0x2421
_VISIBLE.update({c: 0xFFFD for c in range(0x80, 0xA0)})
_VISIBLE.update({c: 0xFFFD for c in range(0xFDD0, 0xFDF0)})
_VISIBLE.update({(plane << 16) | low: 0xFFFD for plane in range(17) for low in (0xFFFE, 0xFFFF)})

# On top of look.CSS. Below 40rem a row becomes two lines: the whole name, then its size and
# time, so a phone never squeezes names into a column broken after every few letters.
_CSS = """
.crumbs a{text-decoration:none}
.crumbs a:hover{text-decoration:underline}
.listing{padding:.4rem 1.25rem}
.listing th a{color:inherit;text-decoration:none}
.listing th a:hover{color:var(--accent)}
.listing th{font-size:.78rem;font-weight:600;text-transform:uppercase;letter-spacing:.05em;
color:var(--muted);white-space:nowrap}
.listing td{padding:.45rem 0}
.listing .size,.listing .time{text-align:right;white-space:nowrap;padding-left:1.25rem;
color:var(--muted)}
.listing td.name{overflow-wrap:anywhere}
.listing td.name a{text-decoration:none}
.listing td.name a:hover{text-decoration:underline}
.listing tr.dir td.name a{font-weight:700}
.listing tbody tr:hover{background:var(--accent-soft)}
.summary{color:var(--muted);margin:1rem 0 0}
@media (max-width:40rem){.listing thead tr{display:flex;gap:1.25rem}
.listing thead th{border:0;padding:.3rem 0}
.listing tbody tr{display:grid;grid-template-columns:auto 1fr;column-gap:1.25rem;
padding:.5rem 0;border-bottom:1px solid var(--border)}
.listing tbody tr:last-child{border-bottom:0}
.listing tbody td{border:0;padding:0}
.listing td.name{grid-column:1/-1}
.listing td.size,.listing td.time{text-align:left;padding-left:0;font-size:.9rem}
.listing td.size:empty,.listing tr.dir td.size{display:none}}
"""


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # as os.scandir gave it (may hold surrogate escapes)
    display: str  # valid Unicode: undecodable bytes replaced by U+FFFD
    is_dir: bool
    size: int
    mtime: int  # whole seconds since the epoch

    @property
    def href(self) -> str:
        # From the original bytes, so a non-UTF-8 name still links to itself.
        return quote(os.fsencode(self.name), safe="") + ("/" if self.is_dir else "")


def render_listing(directory: str, url_path: str, query: bytes, accepts_json: bool = False,
                   servable: Callable[[str], bool] | None = None) -> tuple[bytes, bytes]:
    """(body, content_type) for a directory index.

    directory: the real filesystem path of the directory (already checked to be inside the root).
    url_path: the decoded URL path of the directory, starting and ending with "/".
    query: the raw query string bytes (without "?"), e.g. b"sort=size&order=desc&format=json".
    accepts_json: the request's Accept prefers JSON (`format=` in the query overrides it).
    servable: given the real path a symlink leads to, whether the server would serve it;
      None serves every target.
    Raises OSError only if the directory itself cannot be opened; a failing entry is skipped.
    """
    sort, desc, wanted = _options(query)
    as_json = accepts_json if wanted is None else wanted
    entries, truncated = _scan(directory, servable)
    _sort(entries, sort, desc)
    if as_json:
        return _json(url_path, entries, truncated), b"application/json"
    return _html(url_path, entries, truncated, sort, desc), b"text/html; charset=utf-8"


def human_size(size: int) -> str:
    """`512 B`, `1.5 KiB`, `3.0 GiB`: binary units, one decimal above bytes."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        # Round first, so 1048575 bytes reads `1.0 MiB`, not `1024.0 KiB`.
        if round(value, 1) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _options(query: bytes) -> tuple[str, bool, bool | None]:
    """(sort key, descending, JSON?) from the query; unknown values mean the default (for
    the format: None, which leaves it to Accept)."""
    seen: dict[str, str] = {}
    for field in query.split(b"&")[:_MAX_QUERY_FIELDS]:
        key, _, value = field.decode("latin-1").partition("=")
        seen.setdefault(unquote_plus(key), unquote_plus(value).lower())
    sort = seen.get("sort", "name")
    form = seen.get("format")
    return (sort if sort in _SORTS else "name", seen.get("order") == "desc",
            form == "json" if form in ("json", "html") else None)


def _scan(directory: str,
          servable: Callable[[str], bool] | None) -> tuple[list[_Entry], bool]:
    """Visible entries, at most MAX_ENTRIES of them, and whether more were left out."""
    entries: list[_Entry] = []
    limit = MAX_ENTRIES
    with os.scandir(directory) as it:
        try:
            for dirent in it:
                if dirent.name.startswith("."):
                    continue
                entry = _entry(dirent, servable)
                if entry is None:
                    continue
                if len(entries) >= limit:
                    return entries, True
                entries.append(entry)
        except OSError:  # the directory vanished mid-scan: show what was read
            pass
    return entries, False


def _entry(dirent: os.DirEntry[str], servable: Callable[[str], bool] | None) -> _Entry | None:
    """The entry through its symlink, if any; None if it cannot be stat'ed or served."""
    try:
        st = dirent.stat()  # follows symlinks: a dangling one raises and is skipped
        if (servable is not None and dirent.is_symlink()
                and not servable(os.path.realpath(dirent.path))):
            return None  # out of the root, or to a dotfile: a click would get 404
    except (OSError, ValueError):
        return None
    is_dir = stat.S_ISDIR(st.st_mode)
    if not is_dir and not stat.S_ISREG(st.st_mode):
        return None  # FIFOs, sockets and devices are never served (files.load says 404)
    if not os.access(dirent.path, os.X_OK if is_dir else os.R_OK):
        return None  # a click would get 403
    mtime = min(max(int(st.st_mtime), _MIN_TS), _MAX_TS)
    return _Entry(dirent.name, _printable(dirent.name), is_dir, 0 if is_dir else st.st_size,
                  mtime)


def _sort(entries: list[_Entry], sort: str, desc: bool) -> None:
    """Sort in place: directories first, then by the key; ties stay in name order."""
    entries.sort(key=lambda e: (e.display.casefold(), e.display, e.name))
    if sort == "size":
        entries.sort(key=lambda e: e.size, reverse=desc)  # reverse=True keeps ties stable
    elif sort == "time":
        entries.sort(key=lambda e: e.mtime, reverse=desc)
    elif desc:
        entries.reverse()
    entries.sort(key=lambda e: not e.is_dir)


def _json(url_path: str, entries: list[_Entry], truncated: bool) -> bytes:
    doc = {
        "path": _printable(url_path),
        "entries": [{"name": e.display, "type": "dir" if e.is_dir else "file",
                     "size": None if e.is_dir else e.size, "mtime": _iso(e.mtime)}
                    for e in entries],
        "truncated": truncated,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _html(url_path: str, entries: list[_Entry], truncated: bool, sort: str, desc: bool) -> bytes:
    dirs = sum(e.is_dir for e in entries)
    rows = [_row(e) for e in entries]
    if url_path != "/":
        rows.insert(0, '<tr class="dir parent"><td class="name"><a href="../">../</a></td>'
                       '<td class="size"></td><td class="time"></td></tr>')
    if not entries:
        rows.append('<tr><td class="name" colspan="3"><em>This directory is empty.</em>'
                    '</td></tr>')
    files = len(entries) - dirs
    summary = (f"{dirs} director{'y' if dirs == 1 else 'ies'}, "
               f"{files} file{'' if files == 1 else 's'}")
    if truncated:
        summary += (f". Listing truncated: only the first {len(entries):,} entries read are"
                    " shown")
    order = "desc" if desc else "asc"
    main = "\n".join([
        f'<h1>Index of <span class="crumbs">{_breadcrumbs(url_path)}</span></h1>',
        '<div class="card listing"><table>',
        "<thead><tr>" + "".join(_header(col, sort, desc) for col in _SORTS) + "</tr></thead>",
        "<tbody>", *rows, "</tbody></table></div>",
        f'<p class="summary">{summary}. Times are UTC. <a href="?sort={sort}&amp;order={order}'
        '&amp;format=json">JSON</a></p>',
    ])
    nav = f'<a href="?sort={sort}&amp;order={order}&amp;format=json">JSON</a>'
    return document(f"Index of {_printable(url_path)}", main, tag="index", nav=nav, css=_CSS,
                    footer="evserver · a directory without an index.html, listed by --listing"
                    ).encode("utf-8")


def _row(e: _Entry) -> str:
    href = html.escape(e.href)
    name = _text(e.display) + ("/" if e.is_dir else "")
    if e.is_dir:
        size = '<td class="size">\u2014</td>'
    else:
        size = f'<td class="size" title="{e.size}">{human_size(e.size)}</td>'
    iso = _iso(e.mtime)
    time = f'<td class="time"><time datetime="{iso}">{iso[:10]} {iso[11:16]}</time></td>'
    kind = "dir" if e.is_dir else "file"
    return f'<tr class="{kind}"><td class="name"><a href="{href}">{name}</a></td>{size}{time}</tr>'


def _header(col: str, sort: str, desc: bool) -> str:
    """A column header linking to this sort; clicking the current column flips the order."""
    label = {"name": "Name", "size": "Size", "time": "Modified (UTC)"}[col]
    if col != sort:
        return f'<th class="{col}"><a href="?sort={col}&amp;order=asc">{label}</a></th>'
    aria, arrow, flip = ("descending", "\u25bc", "asc") if desc else ("ascending", "\u25b2", "desc")
    return (f'<th class="{col}" aria-sort="{aria}"><a href="?sort={col}&amp;order={flip}">'
            f'{label} <span aria-hidden="true">{arrow}</span></a></th>')


def _breadcrumbs(url_path: str) -> str:
    """`/a/b/` as links to each ancestor, all relative (`../../`, `../`, `./`)."""
    segments = [s for s in url_path.split("/") if s]
    crumbs = [f'<a href="{"../" * len(segments) or "./"}">/</a>']
    for depth, segment in enumerate(segments, 1):
        up = "../" * (len(segments) - depth) or "./"
        crumbs.append(f'<a href="{up}">{_text(segment)}/</a>')
    return "".join(crumbs)


def _iso(mtime: int) -> str:
    """ISO 8601 UTC to the second; formatted by hand so year 1 is `0001` on every libc."""
    t = _EPOCH + timedelta(seconds=mtime)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _printable(text: str) -> str:
    """Valid Unicode for display: surrogate-escaped (undecodable) bytes become U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no decoder produced
        return text.encode("utf-8", "replace").decode("utf-8")


def _text(text: str) -> str:
    """HTML-escaped, printable text: safe in element content and in quoted attributes."""
    return html.escape(_printable(text).translate(_VISIBLE), quote=True)
