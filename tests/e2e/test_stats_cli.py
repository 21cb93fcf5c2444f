"""`python3 -m evserver stats` on the access log a real server process wrote."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess
from tests.wire import get


@dataclass
class Served:
    log: Path
    bytes: int  # body bytes of every response, as the log should count them
    not_found_bytes: int  # of the two 404s
    statuses: dict[int, int]


def run_stats(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evserver", "stats", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=15)


def serve_known_requests(start_process: Callable[..., ServerProcess], *args: str) -> Served:
    """Two 200s, a 304 (If-None-Match), two 404s, then stop the server (flushing its log)."""
    sp = start_process(*args)
    first = get(sp.port, "/hello.txt")
    etag = first.header("etag")
    assert first.status == 200 and etag
    responses = [first, get(sp.port, "/hello.txt", f"If-None-Match: {etag}\r\n"),
                 get(sp.port, "/index.html"), get(sp.port, "/nope.txt"),
                 get(sp.port, "/nope.txt")]
    assert sp.terminate() == 0
    statuses: dict[int, int] = {}
    for response in responses:
        statuses[response.status] = statuses.get(response.status, 0) + 1
    assert statuses == {200: 2, 304: 1, 404: 2}
    return Served(sp.log_path, sum(len(r.body) for r in responses),
                  sum(len(r.body) for r in responses if r.status == 404), statuses)


def check_numbers(doc: dict[str, object], served: Served, fmt: str) -> None:
    assert doc["requests"] == 5 and doc["skipped"] == 0
    assert doc["bytes"] == served.bytes
    assert doc["clients"] == 1
    assert doc["formats"] == {"combined": 0, "common": 0, "json": 0} | {fmt: 5}
    status = doc["status"]
    assert isinstance(status, list)
    assert {row["status"]: row["requests"] for row in status} == served.statuses
    assert doc["top_404"] == [{"key": "/nope.txt", "requests": 2,
                               "bytes": served.not_found_bytes}]
    assert doc["top_clients"] == [{"key": "127.0.0.1", "requests": 5, "bytes": served.bytes}]
    timeline = doc["timeline"]
    assert isinstance(timeline, dict) and sum(timeline["counts"]) == 5


def test_stats_json_counts_what_was_served(
        start_process: Callable[..., ServerProcess]) -> None:
    """The --json numbers match the requests made: totals, statuses, top lists."""
    served = serve_known_requests(start_process)
    result = run_stats(str(served.log), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    check_numbers(doc, served, "combined")
    files = {row["key"]: (row["requests"], row["bytes"]) for row in doc["top_files"]}
    assert files["/hello.txt"] == (2, len("hello, world\n"))  # the 200 and the 304
    assert files["/nope.txt"][0] == 2 and files["/index.html"][0] == 1


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_stats_text_and_html(start_process: Callable[..., ServerProcess],
                             tmp_path: Path) -> None:
    """The text report has its sections, the requests over time per second (a log of
    moments); --html writes the page in evserver's look: its sections, the statuses named
    with their counts and shares, no script."""
    served = serve_known_requests(start_process)
    page = tmp_path / "report.html"
    result = run_stats(str(served.log), "--html", str(page), "--top", "3")
    assert result.returncode == 0, result.stderr
    for section in ("Totals", "By status", "Top 3 files by requests", "Top 3 clients",
                    "Top 3 404 paths", "Requests per second (UTC)"):
        assert f"\n{section}\n" in result.stdout, result.stdout
    assert "  Requests    5\n" in result.stdout and "/nope.txt" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    text = page.read_text()
    parser = _Page()
    parser.feed(text)
    parser.close()
    assert "table" in parser.tags and "script" not in parser.tags
    assert '<span class="tag">log report</span>' in text
    for ident in ("over-time", "status", "log", "files", "clients", "not-found"):
        assert f'id="{ident}"' in text
    assert '<span class="phrase">Not Modified</span>' in text
    assert '<span class="num">2</span> <span class="pct" title="of all 5 requests">40.0 %' \
        in text  # the 200s, and the 404s
    assert f'title="{served.bytes:,} bytes"' in text
    # Five requests within a second or two: a sentence, or a bar a second, never minutes.
    assert "Requests over time <span class=\"unit\">per second, UTC</span>" in text


def test_stats_missing_file() -> None:
    """A missing log file: exit status 2 and one `evserver: error:` line."""
    result = run_stats("/nonexistent/access.log")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("evserver: error: cannot read '/nonexistent/access.log'")


def test_stats_bad_argument() -> None:
    """A bad option: status 2, one line, no usage dump or traceback."""
    result = run_stats("--top", "many", "x.log")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("evserver: error: argument --top")


@pytest.mark.parametrize("fmt", ["json", "common"])
def test_stats_of_other_log_formats(start_process: Callable[..., ServerProcess],
                                    fmt: str) -> None:
    """`--log-format json|common` logs count the same requests (common has no referer)."""
    served = serve_known_requests(start_process, "--log-format", fmt)
    result = run_stats(str(served.log), "--json")
    assert result.returncode == 0, result.stderr
    check_numbers(json.loads(result.stdout), served, fmt)
