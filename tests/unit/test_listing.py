"""listing.py: directory index pages (HTML and JSON), sorting, escaping, links and bounds."""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit

import pytest

from evserver import listing, look
from evserver.listing import human_size, render_listing

HTML_TYPE = b"text/html; charset=utf-8"
VOID = {"meta", "link", "br", "img", "input", "hr", "wbr", "col", "area", "base", "source"}
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


class Page(HTMLParser):
    """Parses a listing; records structural errors, table links, text and the title."""

    def __init__(self, body: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self.stack: list[str] = []
        self.doctype = ""
        self.title = ""
        self.h1 = ""
        self.links: list[tuple[str, str]] = []  # (href, text) of the links in <tbody>
        self.crumbs: list[str] = []  # hrefs in <h1>
        self.headers: dict[str, tuple[str, str | None]] = {}  # th class -> (href, aria-sort)
        self.text: list[str] = []
        self._link: list[str] | None = None
        self._th: tuple[str, str | None] | None = None
        self.feed(body.decode("utf-8"))
        self.close()
        if self.stack:
            self.errors.append(f"unclosed {self.stack}")

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "th":
            self._th = (a.get("class") or "", a.get("aria-sort"))
        if tag == "a" and "th" in self.stack and self._th is not None:
            self.headers[self._th[0]] = (a["href"] or "", self._th[1])
        if tag == "a" and "tbody" in self.stack:
            self._link = [a["href"] or ""]
        if tag == "a" and "h1" in self.stack:
            self.crumbs.append(a["href"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID and "svg" not in self.stack:  # the logo's SVG may self-close
            self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], "".join(self._link[1:])))
            self._link = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._link is not None:
            self._link.append(data)
        if self.stack[-1:] == ["title"]:
            self.title += data
        if "h1" in self.stack:
            self.h1 += data

    @property
    def names(self) -> list[str]:
        """Entry link texts, without the parent link."""
        return [text for href, text in self.links if href != "../"]


def html_page(directory: Path, url_path: str = "/d/", query: bytes = b"") -> Page:
    body, ctype = render_listing(str(directory), url_path, query)
    assert ctype == HTML_TYPE
    page = Page(body)
    assert page.errors == []
    return page


def json_doc(directory: Path, query: bytes = b"format=json", url_path: str = "/d/",
             ) -> dict[str, Any]:
    body, ctype = render_listing(str(directory), url_path, query)
    assert ctype == b"application/json"
    doc = json.loads(body.decode("utf-8"))
    assert isinstance(doc, dict)
    return doc


def make(root: Path, name: str, size: int = 0, mtime: int = T0) -> Path:
    path = root / name
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def make_dir(root: Path, name: str, mtime: int = T0) -> Path:
    path = root / name
    path.mkdir()
    os.utime(path, (mtime, mtime))
    return path


# -- escaping and links ---------------------------------------------------------------------

XSS_NAMES = ['<script>alert(1)<script>.txt', '<img src=x onerror=alert(1)>.txt',
             '"><svg onload=alert(1)>', "it's & <b>bold<b> &amp;"]


def test_hostile_names_are_text_not_markup(tmp_path: Path) -> None:
    """Names and the URL path are HTML-escaped: they appear as text, never as tags."""
    for name in XSS_NAMES:
        make(tmp_path, name)
    url_path = "/<script>alert(1)</script>/\"'&/"
    body, _ = render_listing(str(tmp_path), url_path, b"")
    lowered = body.lower()
    assert b"<script" not in lowered and b"<img" not in lowered
    assert lowered.count(b"<svg") == 1 and b'<svg viewbox="0 0 64 64"' in lowered  # the logo
    assert b"<b>" not in lowered
    page = Page(body)
    assert page.errors == []
    assert sorted(page.names) == sorted(XSS_NAMES)
    assert page.title == f"Index of {url_path}"
    assert page.h1 == f"Index of {url_path}"
    # Quotes are escaped too, so the text is as safe in an attribute as in an element.
    assert b"it&#x27;s &amp; &lt;b&gt;bold&lt;b&gt; &amp;amp;" in body
    assert b"&quot;&gt;&lt;svg onload=alert(1)&gt;" in body


LINK_NAMES = ["a b.txt", "hash#1.txt", "what?.txt", "100%.txt", "%41.txt", 'dq".txt', "sq'.txt",
              "amp&amp.txt", "plus+sign.txt", "semi;colon.txt", "a:b.txt",
              "caf\u00e9 \u65e5\u672c.txt", "line\nbreak.txt", "tab\there.txt", "back\\slash.txt",
              "~tilde.txt", "emoji\U0001f600"]


def test_hrefs_are_percent_encoded_and_resolve_to_the_names(tmp_path: Path) -> None:
    """Each href is quote(name) (+ "/" for dirs), stays relative and decodes back to the name."""
    for name in LINK_NAMES:
        make(tmp_path, name)
    make_dir(tmp_path, "dir #1 ?x")
    page = html_page(tmp_path, "/prefix/d/")
    hrefs = {href for href, _ in page.links if href != "../"}
    expected = {quote(name) for name in LINK_NAMES} | {quote("dir #1 ?x") + "/"}
    assert hrefs == expected
    base = "http://host/prefix/d/"
    resolved = set()
    for href in hrefs:
        assert re.fullmatch(r"[A-Za-z0-9%._~/-]+", href), href
        url = urlsplit(urljoin(base, href))
        assert (url.netloc, url.query, url.fragment) == ("host", "", "")
        assert url.path.startswith("/prefix/d/")
        resolved.add(unquote(url.path[len("/prefix/d/"):]))
    assert resolved == set(LINK_NAMES) | {"dir #1 ?x/"}


def test_control_characters_are_made_visible(tmp_path: Path) -> None:
    """A newline in a name is shown as U+240A in HTML (a parse-clean page) and kept in JSON."""
    make(tmp_path, "line\nbreak\x7f.txt")
    body, _ = render_listing(str(tmp_path), "/", b"")
    assert b"line\nbreak" not in body
    assert html_page(tmp_path).names == ["line\u240abreak\u2421.txt"]
    assert json_doc(tmp_path)["entries"][0]["name"] == "line\nbreak\x7f.txt"


def test_non_utf8_name_is_shown_with_replacement_and_linked_by_its_bytes(tmp_path: Path) -> None:
    """Undecodable bytes display as U+FFFD; the href percent-encodes the original bytes."""
    raw = b"bad\xff\xfe name.txt"
    try:
        fd = os.open(os.path.join(os.fsencode(tmp_path), raw), os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 names")
    os.close(fd)
    page = html_page(tmp_path)
    [(href, text)] = [link for link in page.links if link[0] != "../"]
    assert text == "bad\ufffd\ufffd name.txt"
    assert href == quote(raw) == "bad%FF%FE%20name.txt"
    assert unquote_to_bytes(href) == raw
    doc = json_doc(tmp_path)
    assert [e["name"] for e in doc["entries"]] == ["bad\ufffd\ufffd name.txt"]


def test_breadcrumbs_are_relative_links_to_each_ancestor(tmp_path: Path) -> None:
    """The heading links `/`, `docs/`, `a b/` to the right ancestors under any prefix."""
    page = html_page(tmp_path, "/docs/a b/")
    base = "http://host/mount/docs/a%20b/"
    assert [urlsplit(urljoin(base, h)).path for h in page.crumbs] == [
        "/mount/", "/mount/docs/", "/mount/docs/a%20b/"]


# -- which entries ------------------------------------------------------------------------------

def test_dotfiles_and_dot_directories_are_hidden(tmp_path: Path) -> None:
    """Names starting with "." appear in neither the HTML nor the JSON."""
    make(tmp_path, ".env")
    make_dir(tmp_path, ".git")
    make(tmp_path, "visible.txt")
    make(tmp_path, "dot.in.middle")
    assert sorted(html_page(tmp_path).names) == ["dot.in.middle", "visible.txt"]
    assert sorted(e["name"] for e in json_doc(tmp_path)["entries"]) == ["dot.in.middle",
                                                                        "visible.txt"]


def test_broken_symlinks_and_loops_are_skipped_live_symlinks_shown(tmp_path: Path) -> None:
    """A dangling or looping link is left out; a live one shows its target's type and size."""
    make(tmp_path, "target.txt", size=7)
    make_dir(tmp_path, "target_dir")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    os.symlink("target.txt", tmp_path / "link.txt")
    os.symlink("target_dir", tmp_path / "link_dir")
    entries = {e["name"]: e for e in json_doc(tmp_path)["entries"]}
    assert set(entries) == {"target.txt", "target_dir", "link.txt", "link_dir"}
    assert (entries["link.txt"]["type"], entries["link.txt"]["size"]) == ("file", 7)
    assert entries["link_dir"]["type"] == "dir"
    assert ("link_dir/", "link_dir/") in html_page(tmp_path).links


def test_entry_that_fails_to_stat_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """An entry deleted between readdir and stat (simulated) is skipped, not an exception."""
    make(tmp_path, "stays.txt")
    make(tmp_path, "vanishes.txt")
    real_scandir = os.scandir

    class Racy:
        def __init__(self, dirent: os.DirEntry[str]) -> None:
            self.name, self.path = dirent.name, dirent.path
            self._dirent = dirent

        def is_symlink(self) -> bool:
            return self._dirent.is_symlink()

        def stat(self) -> os.stat_result:
            if self.name == "vanishes.txt":
                raise FileNotFoundError(2, "gone")
            return self._dirent.stat()

    class Scan:
        def __init__(self, path: str) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> list[Racy]:
            return [Racy(d) for d in self._it]

        def __exit__(self, *exc: object) -> None:
            self._it.close()

    monkeypatch.setattr(os, "scandir", Scan)
    assert [e["name"] for e in json_doc(tmp_path)["entries"]] == ["stays.txt"]


def test_special_files_are_not_listed(tmp_path: Path) -> None:
    """A FIFO can never be served (files.load answers 404), so it is not listed."""
    os.mkfifo(tmp_path / "pipe")
    make(tmp_path, "plain.txt")
    assert html_page(tmp_path).names == ["plain.txt"]


def test_empty_directory(tmp_path: Path) -> None:
    """No entries: an explanatory row in HTML, an empty list in JSON."""
    page = html_page(tmp_path)
    assert page.names == []
    assert "This directory is empty." in "".join(page.text)
    body = render_listing(str(tmp_path), "/d/", b"")[0].decode("utf-8")
    assert ('<tbody>\n<tr class="dir parent"><td class="name"><a href="../">../</a></td>'
            '<td class="size"></td><td class="time"></td></tr>\n<tr><td class="name" '
            'colspan="3"><em>This directory is empty.</em></td></tr>\n</tbody>') in body
    assert "0 directories, 0 files." in body
    assert json_doc(tmp_path) == {"path": "/d/", "entries": [], "truncated": False}


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    """The directory itself failing is the caller's to map (to 404/403): an OSError."""
    with pytest.raises(FileNotFoundError):
        render_listing(str(tmp_path / "nope"), "/nope/", b"")


def test_root_has_no_parent_link_subdirectory_does(tmp_path: Path) -> None:
    """`../` is the first link below the root and absent at "/"."""
    make(tmp_path, "f.txt")
    assert [h for h, _ in html_page(tmp_path, "/").links] == ["f.txt"]
    assert html_page(tmp_path, "/sub/").links == [("../", "../"), ("f.txt", "f.txt")]


# -- sorting ------------------------------------------------------------------------------------

@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Files and dirs whose name, size and time orders all differ."""
    make(tmp_path, "b.txt", size=300, mtime=T0 + 10)
    make(tmp_path, "A.txt", size=2000, mtime=T0 + 30)
    make(tmp_path, "c.txt", size=10, mtime=T0 + 20)
    make(tmp_path, "tie2", size=10, mtime=T0 + 20)
    make_dir(tmp_path, "zdir", mtime=T0 + 1)
    make_dir(tmp_path, "Adir", mtime=T0 + 50)
    return tmp_path


@pytest.mark.parametrize(("query", "expected"), [
    (b"", ["Adir", "zdir", "A.txt", "b.txt", "c.txt", "tie2"]),
    (b"sort=name&order=asc", ["Adir", "zdir", "A.txt", "b.txt", "c.txt", "tie2"]),
    (b"sort=name&order=desc", ["zdir", "Adir", "tie2", "c.txt", "b.txt", "A.txt"]),
    (b"sort=size", ["Adir", "zdir", "c.txt", "tie2", "b.txt", "A.txt"]),
    (b"sort=size&order=desc", ["Adir", "zdir", "A.txt", "b.txt", "c.txt", "tie2"]),
    (b"sort=time&order=asc", ["zdir", "Adir", "b.txt", "c.txt", "tie2", "A.txt"]),
    (b"sort=time&order=desc", ["Adir", "zdir", "A.txt", "c.txt", "tie2", "b.txt"]),
    (b"order=desc&sort=time", ["Adir", "zdir", "A.txt", "c.txt", "tie2", "b.txt"]),
    (b"sort=SIZE&order=DESC", ["Adir", "zdir", "A.txt", "b.txt", "c.txt", "tie2"]),
])
def test_sort_keys_and_orders_keep_directories_first(mixed: Path, query: bytes,
                                                     expected: list[str]) -> None:
    """name (case-insensitive), size and time, asc/desc; dirs first; ties in name order."""
    assert [e["name"] for e in json_doc(mixed, query + b"&format=json")["entries"]] == expected
    assert html_page(mixed, query=query).names == [
        n + "/" if n.endswith("dir") else n for n in expected]


@pytest.mark.parametrize("query", [b"sort=bogus", b"sort=&order=", b"order=sideways",
                                   b"sort=name%00&order=up", b"%%%&&==&=&sort", b"\xff\xfe=\xff",
                                   b"&".join([b"x=1"] * 1000) + b"&sort=size"])
def test_unknown_or_garbage_query_falls_back_to_name_ascending(mixed: Path, query: bytes) -> None:
    """Anything unrecognised means the default sort; a hostile query never raises."""
    page = html_page(mixed, query=query)
    assert page.names == ["Adir/", "zdir/", "A.txt", "b.txt", "c.txt", "tie2"]
    assert page.headers["name"] == ("?sort=name&order=desc", "ascending")


def test_names_compare_case_insensitively(tmp_path: Path) -> None:
    """`apple`, `Banana`, `cherry` sort as a reader expects, not in ASCII order."""
    for name in ("cherry", "Banana", "apple", "Apple2"):
        make(tmp_path, name)
    assert html_page(tmp_path).names == ["apple", "Apple2", "Banana", "cherry"]


def test_column_headers_link_to_sorts_and_toggle_the_current_one(mixed: Path) -> None:
    """The sorted column links to the other order and carries aria-sort; others start asc."""
    page = html_page(mixed, query=b"sort=size&order=asc&format=html")
    assert page.headers == {
        "name": ("?sort=name&order=asc", None),
        "size": ("?sort=size&order=desc", "ascending"),
        "time": ("?sort=time&order=asc", None),
    }
    page = html_page(mixed, query=b"sort=size&order=desc")
    assert page.headers["size"] == ("?sort=size&order=asc", "descending")
    assert html_page(mixed).headers["name"] == ("?sort=name&order=desc", "ascending")


# -- JSON ---------------------------------------------------------------------------------------

def test_json_shape_and_types(mixed: Path) -> None:
    """{path, entries: [{name, type, size (null for dirs), mtime ISO-8601 UTC}], truncated}."""
    body, _ = render_listing(str(mixed), "/docs/caf\u00e9/", b"format=json")
    assert "caf\u00e9".encode() in body  # UTF-8, not \\u escapes
    doc = json.loads(body)
    assert set(doc) == {"path", "entries", "truncated"}
    assert doc["path"] == "/docs/caf\u00e9/" and doc["truncated"] is False
    for entry in doc["entries"]:
        assert set(entry) == {"name", "type", "size", "mtime"}
        assert isinstance(entry["name"], str)
        assert entry["type"] in ("dir", "file")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["mtime"])
        if entry["type"] == "dir":
            assert entry["size"] is None
        else:
            assert type(entry["size"]) is int
    by_name = {e["name"]: e for e in doc["entries"]}
    assert by_name["A.txt"] == {"name": "A.txt", "type": "file", "size": 2000,
                                "mtime": "2023-11-14T22:13:50Z"}
    assert by_name["Adir"] == {"name": "Adir", "type": "dir", "size": None,
                               "mtime": "2023-11-14T22:14:10Z"}


# -- sizes and times in HTML --------------------------------------------------------------------

@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (10 * 1024 + 512, "10.5 KiB"), (1024 * 1024 - 1, "1.0 MiB"), (1024 * 1024, "1.0 MiB"),
    (int(2.25 * 1024**2), "2.2 MiB"), (1023 * 1024**2, "1023.0 MiB"), (1024**3, "1.0 GiB"),
    (5 * 1024**3 + 1024**3 // 2, "5.5 GiB"), (1024**4, "1024.0 GiB"),
])
def test_human_sizes(size: int, text: str) -> None:
    """Binary units with one decimal; a value that rounds to 1024 moves up a unit."""
    assert human_size(size) == text


def test_html_size_cell_has_human_text_and_exact_title(tmp_path: Path) -> None:
    """A file's size cell reads `1.5 KiB` with the exact byte count in `title`; a sparse 3 GiB
    file reads `3.0 GiB`; a directory has no size."""
    make(tmp_path, "k", size=1536)
    with open(tmp_path / "big", "wb") as f:
        f.truncate(3 * 1024**3)
    make_dir(tmp_path, "sub")
    body = render_listing(str(tmp_path), "/", b"")[0].decode()
    assert '<td class="size" title="1536">1.5 KiB</td>' in body
    assert '<td class="size" title="3221225472">3.0 GiB</td>' in body
    sub_row = next(line for line in body.splitlines() if 'href="sub/"' in line)
    assert "title=" not in sub_row


@pytest.fixture
def far_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in UTC-5 (a POSIX TZ rule: no tzdata needed) for the test's duration."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_time_zone")
def test_times_are_utc_whatever_the_local_zone(tmp_path: Path) -> None:
    """HTML shows `YYYY-MM-DD HH:MM` in UTC with an ISO datetime attribute; JSON is UTC too."""
    assert time.localtime(T0).tm_hour == 17  # the zone really is in effect
    make(tmp_path, "f", mtime=T0)
    body = render_listing(str(tmp_path), "/", b"")[0].decode()
    assert '<time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13</time>' in body
    assert "Modified (UTC)" in body and "Times are UTC." in body  # the reader is told
    assert json_doc(tmp_path)["entries"][0]["mtime"] == "2023-11-14T22:13:20Z"


def test_extreme_mtime_does_not_crash(tmp_path: Path) -> None:
    """A timestamp from 1901 or 2200 still renders (no OverflowError)."""
    make(tmp_path, "old", mtime=-(2**31))
    make(tmp_path, "future", mtime=7_258_118_400)
    times = {e["name"]: e["mtime"] for e in json_doc(tmp_path)["entries"]}
    assert times == {"old": "1901-12-13T20:45:52Z", "future": "2200-01-01T00:00:00Z"}


# -- page structure and bounds ------------------------------------------------------------------

def test_html_is_a_self_contained_well_formed_page(mixed: Path) -> None:
    """HTML5 doctype, charset, one title, balanced tags, no script and no external asset."""
    make(mixed, "<script>x<script>.js")
    body, ctype = render_listing(str(mixed), "/d/", b"")
    assert ctype == HTML_TYPE
    page = Page(body)
    assert page.errors == []
    assert page.doctype.lower() == "doctype html"
    assert page.title == "Index of /d/"
    assert b"<script" not in body.lower()
    assert b'<meta charset="utf-8">' in body
    assert not re.search(rb"(src|href)=\"(https?:)?//", body)
    assert re.findall(rb"<link\b[^>]*>", body) == [b'<link rel="icon" href="data:,">']
    assert "2 directories, 5 files" in "".join(page.text)


def test_truncated_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond MAX_ENTRIES the page and the JSON say so, and render at most that many."""
    monkeypatch.setattr(listing, "MAX_ENTRIES", 5)
    for i in range(12):
        make(tmp_path, f"f{i:02}")
    make(tmp_path, ".hidden")  # hidden entries do not count
    page = html_page(tmp_path)
    assert len(page.names) == 5
    text = " ".join("".join(page.text).split())
    assert ("0 directories, 5 files. Listing truncated: only the first 5 entries read are"
            " shown. Times are UTC.") in text
    doc = json_doc(tmp_path)
    assert len(doc["entries"]) == 5 and doc["truncated"] is True


def test_exactly_at_the_limit_is_not_truncated(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_ENTRIES visible entries (plus hidden ones) are all shown, with no truncation note."""
    monkeypatch.setattr(listing, "MAX_ENTRIES", 5)
    for i in range(5):
        make(tmp_path, f"f{i:02}")
    make(tmp_path, ".a")
    make(tmp_path, ".b")
    page = html_page(tmp_path)
    assert page.names == [f"f{i:02}" for i in range(5)]
    assert "truncated" not in "".join(page.text)
    assert json_doc(tmp_path)["truncated"] is False


# -- the page, byte for byte --------------------------------------------------------------------

@pytest.fixture
def small(tmp_path: Path) -> Path:
    make(tmp_path, "a.txt", size=1536, mtime=T0 + 60)
    make(tmp_path, "b&c.txt", size=1)
    make_dir(tmp_path, "sub")
    return tmp_path


GOLDEN_MAIN = """\
<h1>Index of <span class="crumbs"><a href="../../">/</a><a href="../">x/</a><a href="./">d/</a>\
</span></h1>
<div class="card listing"><table>
<thead><tr><th class="name"><a href="?sort=name&amp;order=asc">Name</a></th><th class="size" \
aria-sort="descending"><a href="?sort=size&amp;order=asc">Size <span aria-hidden="true">\u25bc\
</span></a></th><th class="time"><a href="?sort=time&amp;order=asc">Modified (UTC)</a></th>\
</tr></thead>
<tbody>
<tr class="dir parent"><td class="name"><a href="../">../</a></td><td class="size"></td>\
<td class="time"></td></tr>
<tr class="dir"><td class="name"><a href="sub/">sub/</a></td><td class="size">\u2014</td>\
<td class="time"><time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13</time></td></tr>
<tr class="file"><td class="name"><a href="a.txt">a.txt</a></td><td class="size" \
title="1536">1.5 KiB</td><td class="time"><time datetime="2023-11-14T22:14:20Z">\
2023-11-14 22:14</time></td></tr>
<tr class="file"><td class="name"><a href="b%26c.txt">b&amp;c.txt</a></td><td class="size" \
title="1">1 B</td><td class="time"><time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13\
</time></td></tr>
</tbody></table></div>
<p class="summary">1 directory, 2 files. Times are UTC. <a href="?sort=size&amp;order=desc\
&amp;format=json">JSON</a></p>"""


def test_the_page_byte_for_byte(small: Path) -> None:
    """The whole listing: the shared frame (look.document) around this <main>. The browser
    test (tests/e2e/test_generated_pages.py) checks how it looks; this pins what it says."""
    body, ctype = render_listing(str(small), "/x/d/", b"sort=size&order=desc")
    assert ctype == HTML_TYPE
    nav = '<a href="?sort=size&amp;order=desc&amp;format=json">JSON</a>'
    assert body.decode("utf-8") == look.document(
        "Index of /x/d/", GOLDEN_MAIN, tag="index", nav=nav, css=listing._CSS,
        footer="evserver · a directory without an index.html, listed by --listing")


def test_the_current_ascending_column_points_up_and_flips_to_descending(small: Path) -> None:
    body = render_listing(str(small), "/x/d/", b"sort=time")[0].decode("utf-8")
    assert ('<th class="time" aria-sort="ascending"><a href="?sort=time&amp;order=desc">'
            'Modified (UTC) <span aria-hidden="true">\u25b2</span></a></th>') in body
    root = render_listing(str(small), "/", b"")[0].decode("utf-8")
    assert '<span class="crumbs"><a href="./">/</a></span>' in root
    # The JSON link keeps the order shown; one file is "1 file".
    assert '<a href="?sort=name&amp;order=asc&amp;format=json">JSON</a></p>' in root
    (small / "b&c.txt").unlink()
    one = render_listing(str(small), "/", b"")[0].decode("utf-8")
    assert "1 directory, 1 file. Times are UTC." in one


def test_the_json_byte_for_byte(small: Path) -> None:
    body, ctype = render_listing(str(small), "/x/d/", b"format=json")
    assert ctype == b"application/json"
    assert body == (
        b'{"path":"/x/d/","entries":[{"name":"sub","type":"dir","size":null,'
        b'"mtime":"2023-11-14T22:13:20Z"},{"name":"a.txt","type":"file","size":1536,'
        b'"mtime":"2023-11-14T22:14:20Z"},{"name":"b&c.txt","type":"file","size":1,'
        b'"mtime":"2023-11-14T22:13:20Z"}],"truncated":false}')


def test_non_ascii_json_is_utf8_not_escapes(tmp_path: Path) -> None:
    make(tmp_path, "caf\u00e9.txt")
    assert '"caf\u00e9.txt"'.encode() in render_listing(str(tmp_path), "/", b"format=json")[0]


@pytest.mark.parametrize(("size", "text"), [
    (1023, "1023 B"), (1024, "1.0 KiB"),
    (round(1023.6 * 1024), "1023.6 KiB"),  # 1023.6 KiB stays KiB
    (round(1023.96 * 1024), "1.0 MiB"),  # rounds to 1024.0 KiB: said as MiB
    (1024**4 * 5, "5120.0 GiB")])  # GiB is the largest unit
def test_human_size_at_the_unit_boundaries(size: int, text: str) -> None:
    assert human_size(size) == text


def test_a_lone_surrogate_no_decoder_made_is_shown_as_a_question_mark() -> None:
    """Not from a name on disk (those come surrogate-escaped): still valid text."""
    assert listing._printable("a\ud800b") == "a?b"
    assert listing._printable("caf\udcc3\udca9") == "caf\u00e9"  # escaped UTF-8 bytes


def test_sorting_by_size_leaves_directories_in_name_order(tmp_path: Path) -> None:
    """A directory's size is shown as a dash, so sorting by size must not reorder them by
    the size the filesystem reports for a directory, which grows with its entries (ext4:
    4096 bytes, then more once 200 long names no longer fit in one block)."""
    big = make_dir(tmp_path, "a-big")
    for i in range(200):
        make(big, f"entry-with-a-long-name-{i:04}")
    os.utime(big, (T0, T0))
    make_dir(tmp_path, "b-empty")
    for query in (b"format=json&sort=size", b"format=json&sort=size&order=desc"):
        names = [e["name"] for e in json_doc(tmp_path, query)["entries"]]
        assert names == ["a-big", "b-empty"], query  # ties keep name order, either way
