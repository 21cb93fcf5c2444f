"""Video over byte ranges: a real browser seeks in www/media/clip.mp4, a raw client checks bytes.

A server without Range support still lets a browser play a video from the start, but
`video.seekable` stays empty and a seek lands back at 0; with ranges the browser fetches the
part it needs and the access log shows 206s. The clip (made by contrib/make-clip.sh) is a
few MiB, so that with preload="metadata" the browser reads its head and stops, and a seek
near the end is a Range request of its own. The browser test is skipped without Chromium
or Playwright, and failed instead when CI is set (tests/tools.py).
"""
from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, RunningServer, ServerProcess
from tests.e2e.test_www import parse
from tests.tools import CHROMIUM_FLAGS, need_chromium
from tests.wire import get

CLIP = REPO / "www" / "media" / "clip.mp4"
POSTER = REPO / "www" / "media" / "clip-poster.jpg"
ABOUT = REPO / "www" / "about" / "index.html"
CLIP_URL = "/media/clip.mp4"
MIB = 1024 * 1024
CLIP_SECONDS = 30  # contrib/make-clip.sh: 30 s of 640x480, a keyframe every second
CLIP_SIZE = (640, 480)
SEEK_TO = 27.5  # seconds: near the end, far past what preload="metadata" reads first
_CLIP_LINE = re.compile(rf'"GET {re.escape(CLIP_URL)} HTTP/1\.1" (\d{{3}}) (\d+) ')


# --- The clip's facts, read from the MP4 boxes ------------------------------------------------

def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, first byte of the payload, end of the box) of each ISO BMFF box in
    data[start:end]."""
    end = len(data) if end is None else end
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        assert header <= size <= end - start, (kind, start, size)
        yield kind, start + header, start + size
        start += size


def box(data: bytes, path: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """The payload (start, end) of the first box at `path` ("moov/mvhd") below data[start:end]."""
    first, _, rest = path.partition("/")
    for kind, payload, stop in boxes(data, start, end):
        if kind == first.encode():
            return box(data, rest, payload, stop) if rest else (payload, stop)
    raise AssertionError(f"no {path} box")


@dataclass
class Track:
    handler: str  # "vide" or "soun"
    codec: str  # the sample entry's four characters: "avc1", "mp4a"
    width: int
    height: int
    sync_times: list[float]  # decode times of the keyframes, in seconds (all samples if none)


@dataclass
class Clip:
    size: int
    top_level: list[str]
    duration: float
    tracks: list[Track]

    def track(self, handler: str) -> Track:
        return next(t for t in self.tracks if t.handler == handler)


def read_track(data: bytes, start: int, end: int) -> Track:
    tkhd = box(data, "tkhd", start, end)
    width, height = (v >> 16 for v in struct.unpack_from(">II", data, tkhd[1] - 8))
    mdhd = box(data, "mdia/mdhd", start, end)
    version = data[mdhd[0]]
    timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))[0]
    handler = data[box(data, "mdia/hdlr", start, end)[0] + 8:][:4].decode()
    stbl = box(data, "mdia/minf/stbl", start, end)
    codec = data[box(data, "stsd", *stbl)[0] + 12:][:4].decode()
    stts = box(data, "stts", *stbl)[0]
    starts: list[int] = []  # each sample's decode time, in the track's timescale
    clock = 0
    for i in range(struct.unpack_from(">I", data, stts + 4)[0]):
        count, delta = struct.unpack_from(">II", data, stts + 8 + 8 * i)
        for _ in range(count):
            starts.append(clock)
            clock += delta
    try:
        stss = box(data, "stss", *stbl)[0]
        syncs = struct.unpack_from(f">{struct.unpack_from('>I', data, stss + 4)[0]}I", data,
                                   stss + 8)
    except AssertionError:  # no stss: every sample is a sync sample
        syncs = tuple(range(1, len(starts) + 1))
    return Track(handler, codec, width, height, [starts[n - 1] / timescale for n in syncs])


def read_clip(path: Path) -> Clip:
    data = path.read_bytes()
    moov = box(data, "moov")
    mvhd = box(data, "mvhd", *moov)[0]
    if data[mvhd] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mvhd + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, mvhd + 12)
    tracks = [read_track(data, start, end) for kind, start, end in boxes(data, *moov)
              if kind == b"trak"]
    return Clip(len(data), [kind.decode() for kind, _, _ in boxes(data)],
                duration / timescale, tracks)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    at = 2
    while at < len(data):
        marker, length = struct.unpack_from(">HH", data, at)
        if marker in (0xFFC0, 0xFFC1, 0xFFC2):
            height, width = struct.unpack_from(">HH", data, at + 5)
            return width, height
        at += 2 + length
    raise AssertionError("no start-of-frame segment")


def test_clip_is_a_few_mib_indexed_first_with_a_keyframe_every_second() -> None:
    """The clip is big enough that a browser must fetch it in ranges (3 to 6 MiB), its
    index (moov) comes before the media (mdat) so the head alone tells the player where
    every second is, it is H.264 and AAC, and each whole second is a keyframe a seek can
    land on."""
    clip = read_clip(CLIP)
    assert 3 * MIB <= clip.size <= 6 * MIB, clip.size
    assert clip.top_level[0] == "ftyp", clip.top_level
    assert clip.top_level.index("moov") < clip.top_level.index("mdat"), clip.top_level
    assert clip.duration == pytest.approx(CLIP_SECONDS, abs=0.05), clip.duration
    video = clip.track("vide")
    assert (video.codec, (video.width, video.height)) == ("avc1", CLIP_SIZE), video
    assert clip.track("soun").codec == "mp4a"
    assert video.sync_times == [float(s) for s in range(CLIP_SECONDS)], video.sync_times
    assert jpeg_size(POSTER.read_bytes()) == CLIP_SIZE  # the poster is a frame of this clip


def test_about_page_tells_the_clips_facts() -> None:
    """The About page's video has the clip's dimensions, and its caption the clip's
    length, dimensions and size, as the file has them."""
    page = parse(ABOUT)
    video = page.find("video")[0]
    assert (video.get("width"), video.get("height")) == tuple(str(n) for n in CLIP_SIZE)
    words = page.plain()
    mib = f"{CLIP.stat().st_size / MIB:.1f} MiB"
    for fact in (f"{CLIP_SECONDS} seconds", "{}\u00d7{}".format(*CLIP_SIZE), mib,
                 "keyframe every second", "206"):
        assert fact in words, (fact, words)


# --- A browser seeks --------------------------------------------------------------------------

# Resolves on `seeked`, or after 10 s with whatever state the element reached, so a server
# that breaks seeking fails an assertion instead of hanging the page.
_SEEK_JS = """async (to) => {
  const v = document.querySelector('video');
  const fired = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 10000);
    v.addEventListener('seeked', () => { clearTimeout(timer); resolve(true); }, {once: true});
    v.currentTime = to;
  });
  return {
    fired,
    currentTime: v.currentTime,
    duration: v.duration,
    seekableRanges: v.seekable.length,
    seekableEnd: v.seekable.length ? v.seekable.end(v.seekable.length - 1) : 0,
    readyState: v.readyState,
    error: v.error ? v.error.code : 0,
  };
}"""


_BUFFERED_JS = """() => {
  const b = document.querySelector('video').buffered;
  return Array.from({length: b.length}, (_, i) => [b.start(i), b.end(i)]);
}"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_browser_seeks_into_the_clip(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Chromium loads the about page's video (preload="metadata"): it reads the head of
    the clip and stops, far from its end. A seek to 27.5 s lands there, the whole clip is
    seekable, and the browser fetched the clip in more than one range: it asked for one
    that starts past the middle of the file, and the server's access log has two 206
    responses for the clip at least (the first bytes, then the seek's), and no 200."""
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright
    proc = start_process(root=REPO / "www")
    base = f"http://127.0.0.1:{proc.port}"
    size = CLIP.stat().st_size
    clip_statuses: list[int] = []
    ranges: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("response", lambda r: clip_statuses.append(r.status)
                if r.url == base + CLIP_URL else None)
        page.on("request", lambda r: ranges.append(r.headers.get("range", ""))
                if r.url == base + CLIP_URL else None)
        response = page.goto(base + "/about/", wait_until="load")
        assert response is not None and response.status == 200
        assert page.locator("video").count() == 1, page.content()[:2000]
        page.wait_for_function("document.querySelector('video').readyState >= 1",
                               timeout=15000)
        before = page.evaluate(_BUFFERED_JS)
        result = page.evaluate(_SEEK_JS, SEEK_TO)
        page.screenshot(path=str(tmp_path / "about-video.png"))
        browser.close()
    assert result["error"] == 0, result
    assert result["fired"], f"no 'seeked' event within 10 s: {result}"
    assert result["currentTime"] == pytest.approx(SEEK_TO, abs=0.1), result
    assert result["duration"] == pytest.approx(CLIP_SECONDS, abs=0.1), result
    assert result["seekableRanges"] == 1, result
    assert result["seekableEnd"] == pytest.approx(result["duration"], abs=0.1), result
    assert result["readyState"] >= 2, result  # the frame at 27.5 s is decoded
    # With preload="metadata" the browser stopped reading long before the seek's target:
    # the seek needs bytes it has not got.
    assert before and all(end < SEEK_TO - 1 for _, end in before), before
    # Chromium's HTTP cache answers a range request from data it holds with a 206 of its
    # own, so the browser's view proves only what it asked for: the server's log proves
    # what was fetched.
    assert clip_statuses, "the page never fetched the clip"
    starts = [int(m[1]) for r in ranges if (m := re.fullmatch(r"bytes=(\d+)-\d*", r))]
    assert starts and starts[0] == 0 and max(starts) > size // 2, ranges
    assert proc.terminate() == 0
    logged = [(int(m[1]), int(m[2])) for line in proc.log_path.read_text().splitlines()
              if (m := _CLIP_LINE.search(line))]
    partial = [sent for status, sent in logged if status == 206 and sent > 0]
    assert len(partial) >= 2 and all(status == 206 for status, _ in logged), (logged, ranges)
    # The seek's range, from near the end, is a small part of the file.
    assert min(partial) < size // 4, (logged, ranges)


IN_MEMORY = 8 * MIB  # a --cache-max-entry that keeps the clip in memory


@pytest.mark.parametrize("cache_max_entry", [IN_MEMORY, 1], ids=["in-memory", "sendfile"])
@pytest.mark.parametrize(("spec", "first", "last"), [
    pytest.param("1000-1999", 1000, 1999, id="1000-1999"),
    pytest.param("0-", 0, None, id="0-"),  # what a browser sends first for a media element
    pytest.param("200000-", 200000, None, id="200000-"),  # a seek: open-ended
    pytest.param("-34", -34, None, id="suffix-34"),  # the last 34 bytes
])
def test_clip_byte_range(start_server: Callable[..., RunningServer], cache_max_entry: int,
                         spec: str, first: int, last: int | None) -> None:
    """`Range: bytes=...` on the clip gives 206 with exactly those bytes of the file and a
    matching Content-Range, whether the clip is served from memory or with sendfile."""
    data = CLIP.read_bytes()
    size = len(data)
    assert size <= IN_MEMORY
    start = first if first >= 0 else size + first
    end = size - 1 if last is None else last
    server = start_server(docroot=str(REPO / "www"), cache_max_entry=cache_max_entry)
    resp = get(server.port, CLIP_URL, headers=f"Range: bytes={spec}\r\n")
    assert resp.status == 206, (resp.status, resp.headers)
    assert resp.header("content-range") == f"bytes {start}-{end}/{size}"
    assert resp.header("content-length") == str(end - start + 1)
    assert resp.header("content-type") == "video/mp4"
    assert resp.body == data[start:end + 1]
    lines = server.log_lines()
    assert f'"GET {CLIP_URL} HTTP/1.1" 206 {end - start + 1} ' in lines[-1], lines
