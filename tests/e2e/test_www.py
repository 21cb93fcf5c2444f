"""The bundled site `www/` and the deployment files in `contrib/`.

A real server on www/ serves every file with its type, every local link of every page
resolves, the precompressed siblings match their sources, the images are what their names
say, the pages carry the basics of accessibility; the systemd unit loads and is hardened,
and the logrotate rules rotate a running server's log, which it then reopens.
"""
from __future__ import annotations

import gzip
import json
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest

from tests.conftest import REPO, RunningServer, ServerProcess, wait_for
from tests.tools import need_tool
from tests.wire import Response, get

WWW = REPO / "www"
CONTRIB = REPO / "contrib"
UNIT = CONTRIB / "evserver.service"
LOGROTATE = CONTRIB / "logrotate"

# What each extension in www/ must be served as (written out here, not taken from evserver).
TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8", ".svg": "image/svg+xml; charset=utf-8",
    ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon", ".mp4": "video/mp4", ".gz": "application/gzip",
}
IMAGE_EXTS = {".png", ".jpg", ".webp", ".avif", ".svg", ".ico"}
MAX_IMAGE = 64 * 1024  # "small files, tens of KB at most"


def site_files() -> list[Path]:
    """Every file of www/ a client may fetch: dotfiles are never served."""
    return sorted(p for p in WWW.rglob("*")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(WWW).parts))


def url_of(path: Path) -> str:
    return "/" + quote(path.relative_to(WWW).as_posix())


PAGES = [p for p in site_files() if p.suffix == ".html"]


@pytest.fixture
def www(start_server: Callable[..., RunningServer]) -> Callable[..., RunningServer]:
    """Start a server on the repository's www/ (keyword arguments override Config)."""
    def start(**overrides: object) -> RunningServer:
        return start_server(docroot=str(WWW), **overrides)
    return start


# --- HTML parsing ----------------------------------------------------------------------

class Page(HTMLParser):
    """The parts of a page the tests look at: tags with attributes, ids, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]  # type: ignore[misc]

    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def references(page: Page) -> Iterator[tuple[str, str, str]]:
    """(tag, attribute, URL) for every URL a page links to or loads (`data-size-of` is
    the URL app.js sends a HEAD request to)."""
    for tag, attrs in page.tags:
        for name in ("href", "src", "poster", "data-size-of"):
            value = attrs.get(name)
            if value:
                yield tag, name, value
        for candidate in (attrs.get("srcset") or "").split(","):
            if candidate.strip():
                yield tag, "srcset", candidate.split()[0]


def is_asset(tag: str, attr: str) -> bool:
    """True for a URL the browser loads by itself, as opposed to a link one follows."""
    return attr != "href" or tag == "link"


# --- Served with the right type ----------------------------------------------------------

def test_every_file_is_served_with_its_type(www: Callable[..., RunningServer]) -> None:
    """Every file of www/ answers 200 with its exact bytes and the Content-Type of its
    extension; a folder URL serves the folder's index.html."""
    server = www()
    files = site_files()
    assert len(files) >= 25, files
    unknown = sorted({p.suffix for p in files} - TYPES.keys())
    assert not unknown, f"add the expected type of {unknown} to TYPES"
    for path in files:
        resp = get(server.port, url_of(path))
        assert (resp.status, resp.header("content-type")) == (200, TYPES[path.suffix]), path
        assert resp.body == path.read_bytes(), path
    for index in (p for p in files if p.name == "index.html"):
        folder = url_of(index.parent) if index.parent != WWW else ""
        resp = get(server.port, folder + "/")
        assert resp.status == 200 and resp.body == index.read_bytes(), folder


def test_missing_page_gets_the_sites_404(www: Callable[..., RunningServer]) -> None:
    """An unknown address is a 404 whose body is www/404.html, and dotfiles are 404 too."""
    server = www()
    for path in ("/no/such/page", "/files/.hidden"):
        resp = get(server.port, path)
        assert resp.status == 404, path
        assert resp.header("content-type") == "text/html; charset=utf-8"
        assert resp.body == (WWW / "404.html").read_bytes()


# --- Links -------------------------------------------------------------------------------

def test_every_local_link_resolves(www: Callable[..., RunningServer]) -> None:
    """Every local href/src/srcset/poster in every page answers 200 (with the listing and
    the status page on, as the tools page says to run it); every #fragment names an id on
    its page; nothing is loaded from another host."""
    server = www(listing=True, status_path="/_status", metrics_path="/metrics")
    urls: dict[str, str] = {}
    problems: list[str] = []
    for path in PAGES:
        page = parse(path)
        base = url_of(path)
        if path.name == "index.html":
            base = base[:-len("index.html")]
        ids = set(page.ids())
        for tag, attr, ref in references(page):
            parts = urlsplit(urljoin(base, ref))
            if parts.scheme not in ("", "http", "https"):
                continue  # mailto: and friends
            if parts.netloc:
                assert not is_asset(tag, attr), f"{path.name}: external asset {ref}"
                continue
            if ref.startswith("#"):
                if ref[1:] not in ids:
                    problems.append(f"{path.name}: no id for {ref}")
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            urls.setdefault(target, path.name)
    assert {"/gallery/", "/about/", "/tools/", "/files/", "/_status"} <= urls.keys(), urls
    for target, where in sorted(urls.items()):
        resp = get(server.port, target)
        if resp.status != 200:
            problems.append(f"{where}: {target} -> {resp.status}")
    assert not problems, problems


def test_no_external_urls_in_styles_scripts_and_svg() -> None:
    """The site works offline: no stylesheet, script or SVG fetches anything from another
    host (the SVG namespace is a name, not a fetch)."""
    for path in site_files():
        if path.suffix not in (".css", ".js", ".svg"):
            continue
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://|@import|url\(\s*['\"]?//", text), path


# --- Precompressed siblings --------------------------------------------------------------

def test_gzip_siblings_match_their_sources() -> None:
    """Every stylesheet and script has a .gz sibling that decompresses to exactly its
    source, and no .gz is an orphan (stale siblings would serve old code to gzip clients)."""
    sources = [p for p in site_files() if p.suffix in (".css", ".js")]
    assert len(sources) >= 2, sources
    for source in sources:
        sibling = source.with_name(source.name + ".gz")
        assert sibling.is_file(), f"missing {sibling.name}: gzip -9 -k {source.name}"
        assert gzip.decompress(sibling.read_bytes()) == source.read_bytes(), (
            f"{sibling.name} is stale: gzip -9 -k -f {source.name}")
    for sibling in (p for p in site_files() if p.suffix == ".gz"):
        assert sibling.with_suffix("").is_file(), sibling


def test_gzip_siblings_are_served_to_gzip_clients(www: Callable[..., RunningServer]) -> None:
    """A client that accepts gzip gets the .gz bytes with Content-Encoding and Vary; one
    that does not gets the source."""
    server = www()
    for source in (WWW / "css" / "style.css", WWW / "js" / "app.js"):
        url = url_of(source)
        zipped = get(server.port, url, headers="Accept-Encoding: gzip, deflate, br\r\n")
        assert zipped.status == 200 and zipped.header("content-encoding") == "gzip", url
        assert zipped.body == source.with_name(source.name + ".gz").read_bytes()
        assert "accept-encoding" in (zipped.header("vary") or "").lower()
        assert zipped.header("content-type") == TYPES[source.suffix]
        plain = get(server.port, url, headers="Accept-Encoding: identity\r\n")
        assert plain.header("content-encoding") is None and plain.body == source.read_bytes()


# --- Images ------------------------------------------------------------------------------

def image_format(data: bytes) -> str:
    """The format named by a file's leading bytes (its magic number)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return ".png"
    if data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return ".jpg"
    if (data[:4], data[8:12]) == (b"RIFF", b"WEBP") and struct.unpack(
            "<I", data[4:8])[0] + 8 == len(data):
        return ".webp"
    if data[4:8] == b"ftyp":
        box = struct.unpack(">I", data[:4])[0]
        brands = {data[i:i + 4] for i in range(8, box, 4)}  # major, version, compatibles
        if b"avif" in brands:
            return ".avif"
        if brands & {b"isom", b"mp41", b"mp42"}:
            return ".mp4"
    if data[:4] == b"\0\0\1\0":
        return ".ico"
    if data.lstrip().startswith(b"<svg") or data.lstrip().startswith(b"<?xml"):
        root = ET.fromstring(data)
        if root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox"):
            return ".svg"
    return "unknown"


def test_images_are_what_their_names_say() -> None:
    """Each image's bytes are of the format its extension declares (so it decodes under
    the Content-Type it is served with), and each is small."""
    images = [p for p in site_files() if p.suffix in IMAGE_EXTS]
    assert {p.suffix for p in images} >= {".png", ".jpg", ".svg", ".webp", ".avif"}, images
    for path in images:
        data = path.read_bytes()
        assert image_format(data) == path.suffix, path
        assert len(data) <= MAX_IMAGE, (path, len(data))
    assert image_format((WWW / "media" / "clip.mp4").read_bytes()) == ".mp4"


def test_gallery_shows_every_format_with_fallbacks() -> None:
    """The gallery shows PNG, JPEG, SVG, WebP and AVIF, and its <picture> offers AVIF then
    WebP, with a JPEG <img> for browsers that take neither."""
    page = parse(WWW / "gallery" / "index.html")
    shown = {Path(str(a.get("src"))).suffix for a in page.find("img")}
    assert shown >= {".png", ".jpg", ".svg", ".webp", ".avif"}, shown
    assert [a.get("type") for a in page.find("source")] == ["image/avif", "image/webp"]
    tags = [(t, a) for t, a in page.tags if t in ("picture", "source", "img")]
    start = [t for t, _ in tags].index("picture")
    assert [t for t, _ in tags[start:start + 4]] == ["picture", "source", "source", "img"]
    assert str(tags[start + 3][1].get("src")).endswith(".jpg"), tags[start + 3]


# --- Pages -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(WWW).as_posix() for p in PAGES])
def test_page_has_accessibility_basics(path: Path) -> None:
    """A language, a title, a viewport, one h1, alt text on every image, unique ids, and
    every aria-controls/aria-labelledby pointing at an id on the page."""
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert page.find("html")[0].get("lang") == "en"
    assert len(page.find("title")) == 1 and len(page.find("h1")) == 1
    assert any(m.get("name") == "viewport" for m in page.find("meta"))
    assert all(img.get("alt") is not None for img in page.find("img")), path
    assert all(b.get("type") == "button" for b in page.find("button")), path
    ids = page.ids()
    assert len(ids) == len(set(ids)), ids
    for _, attrs in page.tags:
        for attr in ("aria-controls", "aria-labelledby"):
            for ref in (attrs.get(attr) or "").split():
                assert ref in ids, (path, attr, ref)
    assert any(a.get("href") == "/" for a in page.find("a")), "no way home"


def test_home_page_explains_evserver() -> None:
    """The home page names the two commands and the features, and links to every page."""
    page = parse(WWW / "index.html")
    words = page.plain().lower()
    for phrase in ("python3 -m evserver", "pytest", "readme", "selectors", "keep-alive",
                   "pipelin", "range", "304", "precompressed", "workers", "sendfile",
                   "bounded memory"):
        assert phrase in words, phrase
    links = {a.get("href") for a in page.find("a")}
    assert {"/gallery/", "/about/", "/tools/"} <= links, links


def test_video_is_seekable_with_ranges() -> None:
    """The about page's video has controls and preload="metadata", so the browser reads
    the header first and seeks with Range requests."""
    videos = parse(WWW / "about" / "index.html").find("video")
    assert len(videos) == 1
    video = videos[0]
    assert "controls" in video and video.get("preload") == "metadata"
    assert video.get("src") == "/media/clip.mp4"


def test_tools_page_says_how_to_enable_what_it_links(www: Callable[..., RunningServer]) -> None:
    """The tools page links /_status and /files/ and names the options that turn them on;
    without those options both are 404s, with them both answer."""
    page = parse(WWW / "tools" / "index.html")
    words = page.plain()
    assert "--status-path /_status" in words and "--listing" in words
    assert "--metrics-path /metrics" in words
    links = {a.get("href") for a in page.find("a")}
    assert {"/_status", "/_status?format=json", "/metrics", "/files/"} <= links, links
    assert not (WWW / "files" / "index.html").exists()
    plain = www()
    assert get(plain.port, "/files/").status == 404
    assert get(plain.port, "/_status").status == 404
    assert get(plain.port, "/metrics").status == 404


def test_files_folder_is_listed(www: Callable[..., RunningServer]) -> None:
    """With --listing, /files/ lists every sample file (percent-encoded links, folders
    first) but not the dotfile, and ?format=json lists the same names."""
    server = www(listing=True)
    resp = get(server.port, "/files/")
    assert resp.status == 200 and resp.header("content-type") == "text/html; charset=utf-8"
    body = resp.body.decode()
    visible = sorted(p.name for p in (WWW / "files").iterdir() if not p.name.startswith("."))
    assert len(visible) >= 5, visible
    for name in visible:
        assert f'href="{quote(name)}' in body, name
    assert ".hidden" not in body
    listing = json.loads(get(server.port, "/files/?format=json").body)
    names = [e["name"] for e in listing["entries"]]
    assert sorted(names) == visible and names[0] == "nested", names


def test_status_page_answers(www: Callable[..., RunningServer]) -> None:
    """With status_path=/_status, the page the tools page links is HTML, and ?format=json
    is JSON."""
    server = www(status_path="/_status")
    html = get(server.port, "/_status")
    assert html.status == 200 and str(html.header("content-type")).startswith("text/html")
    doc: Response = get(server.port, "/_status?format=json")
    assert doc.status == 200 and str(doc.header("content-type")).startswith("application/json")
    assert isinstance(json.loads(doc.body), dict)


# --- contrib/evserver.service ------------------------------------------------------------

def unit_entries(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}}; keys may repeat, lines continue with \\."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep, f"not a key=value line in a section: {line}"
        current.setdefault(key.strip(), []).append(" ".join(value.split()))
    return sections


def test_systemd_unit_is_hardened() -> None:
    """The unit runs `python3 -m evserver` in the foreground as a DynamicUser with the
    file system read-only but for the log, reloads with SIGHUP, restarts on failure."""
    unit = unit_entries(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]

    def one(key: str) -> str:
        assert len(service.get(key, [])) == 1, (key, service.get(key))
        return service[key][0]

    exec_start = one("ExecStart").split()
    assert exec_start[:3] == ["/usr/bin/python3", "-m", "evserver"], exec_start
    assert "--daemon" not in exec_start and one("Type") in ("exec", "simple")
    options = dict(zip(exec_start[3::2], exec_start[4::2], strict=False))
    assert one("DynamicUser") == "yes" and one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict" and one("ProtectHome") in ("yes", "read-only")
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Restart") == "on-failure"
    log_dir = str(Path(options["--log"]).parent)
    assert log_dir in one("ReadWritePaths").split()
    assert log_dir == "/var/log/" + one("LogsDirectory")
    assert str(Path(options["--pidfile"]).parent) == "/run/" + one("RuntimeDirectory")
    assert one("CapabilityBoundingSet") == ""
    assert "AF_UNIX" in one("RestrictAddressFamilies")  # the loop's wakeup socketpair
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    comments = [line for line in UNIT.read_text().splitlines() if line.startswith("#")]
    assert len(comments) >= 20, "each choice is explained"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` loads the unit without a single complaint."""
    analyze = need_tool("systemd-analyze")
    # A copy outside the repository: verify then also checks the file's own name.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text())
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                          timeout=30, check=False)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if UNIT.name in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


# --- contrib/logrotate -------------------------------------------------------------------

def logrotate_directives(text: str) -> tuple[str, list[str], str]:
    """(path pattern, directives, postrotate script) of a one-block logrotate file."""
    stripped = (line.strip() for line in text.splitlines())
    lines = [line for line in stripped if line and not line.startswith("#")]
    head = lines[0]
    assert head.endswith("{") and lines[-1] == "}", lines
    body = lines[1:-1]
    start, end = body.index("postrotate"), body.index("endscript")
    return head[:-1].strip(), body[:start] + body[end + 1:], "\n".join(body[start + 1:end])


def test_logrotate_rules() -> None:
    """Daily, compressed, and the postrotate step sends SIGHUP to the pid in the unit's
    pidfile."""
    pattern, directives, script = logrotate_directives(LOGROTATE.read_text())
    service = unit_entries(UNIT.read_text())["Service"]
    exec_start = service["ExecStart"][0].split()
    log = exec_start[exec_start.index("--log") + 1]
    pidfile = exec_start[exec_start.index("--pidfile") + 1]
    assert Path(log).parent == Path(pattern).parent and Path(log).match(pattern)
    assert {"daily", "compress"} <= set(directives), directives
    assert "copytruncate" not in directives  # evserver reopens; a copy would lose lines
    assert "kill -HUP" in script and pidfile in script, script


def test_logrotate_parses_the_rules(tmp_path: Path) -> None:
    """`logrotate -d` parses contrib/logrotate without an error."""
    logrotate = need_tool("logrotate")
    done = subprocess.run([logrotate, "-d", "-s", str(tmp_path / "state"), str(LOGROTATE)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr


def local_rules(tmp_path: Path, log: Path, pidfile: Path) -> Path:
    """contrib/logrotate with the unit's log directory and pidfile replaced by these."""
    exec_start = unit_entries(UNIT.read_text())["Service"]["ExecStart"][0].split()
    log_dir = Path(exec_start[exec_start.index("--log") + 1]).parent
    conf = (LOGROTATE.read_text().replace(f"{log_dir}/*.log", str(log))
            .replace(exec_start[exec_start.index("--pidfile") + 1], str(pidfile)))
    assert str(log) in conf and str(pidfile) in conf
    rules = tmp_path / "rules"
    rules.write_text(conf)
    return rules


def logrotate_force(tmp_path: Path, rules: Path) -> None:
    logrotate = need_tool("logrotate")
    done = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"), str(rules)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_logrotate_sends_sighup_to_the_pidfile_process(tmp_path: Path) -> None:
    """A rotation sends SIGHUP to the process named in the pidfile (evserver would reopen
    its log even without it, on noticing the rename: so a stand-in process checks this)."""
    need_tool("logrotate")
    log, pidfile, flag = tmp_path / "access.log", tmp_path / "x.pid", tmp_path / "hup"
    log.write_text("a line\n")
    script = ("import signal, sys, time\n"
              "def hup(*_):\n    open(sys.argv[1], 'w').close(); sys.exit(0)\n"
              "signal.signal(signal.SIGHUP, hup)\n"
              "open(sys.argv[2], 'w').write('%d\\n' % __import__('os').getpid())\n"
              "time.sleep(20)\n")
    stand_in = subprocess.Popen([sys.executable, "-c", script, str(flag), str(pidfile)])
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"), 5)
        logrotate_force(tmp_path, local_rules(tmp_path, log, pidfile))
        assert stand_in.wait(5) == 0 and flag.exists()
    finally:
        stand_in.kill()
        stand_in.wait(5)
    assert log.with_name("access.log.1").read_text() == "a line\n"


def test_logrotate_rotates_a_running_server(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """The rules, pointed at a real evserver's log and pidfile (which holds its pid): after
    a rotation the old lines are in access.log.1 and the server writes to a new access.log;
    after a second one the first rotation is compressed (delaycompress) with its lines."""
    need_tool("logrotate")
    pidfile = tmp_path / "evserver.pid"
    proc = start_process("--pidfile", str(pidfile), root=WWW)
    assert wait_for(pidfile.exists, 5), "no pidfile"
    assert pidfile.read_text().strip() == str(proc.proc.pid)
    log = proc.log_path
    rules = local_rules(tmp_path, log, pidfile)

    def logged(path: Path, url: str) -> bool:
        return path.exists() and f'"GET {url} HTTP/1.1" 200' in path.read_text(errors="replace")

    first, second = log.with_name(log.name + ".1"), log.with_name(log.name + ".2.gz")
    assert get(proc.port, "/").status == 200
    assert wait_for(lambda: logged(log, "/"), 5)
    logrotate_force(tmp_path, rules)
    assert logged(first, "/")

    def reopened() -> bool:
        # The SIGHUP is handled asynchronously: ask again until a line lands in the new file.
        assert get(proc.port, "/gallery/").status == 200
        return logged(log, "/gallery/")

    assert wait_for(reopened, 5, step=0.1), "the log was not reopened"
    logrotate_force(tmp_path, rules)
    assert second.exists(), sorted(p.name for p in tmp_path.iterdir())
    assert '"GET / HTTP/1.1" 200' in gzip.decompress(second.read_bytes()).decode()
    assert logged(first, "/gallery/")
    assert proc.terminate() == 0
