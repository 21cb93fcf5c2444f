"""REDbot, the HTTP linter, checks evserver's responses against the HTTP RFCs.

For each URL REDbot fetches the resource, lints the response, and on its own probes a
`Range` request (is the 206 byte-exact?), If-None-Match and If-Modified-Since (304?) and
`Accept-Encoding: gzip` (are Vary, ETag and the decoded body consistent?). The test fails
on any note of level `bad` or on a failed fetch, and prints the `warn` and `info` notes
(`pytest -rA` shows them). All traffic stays on 127.0.0.1.

Skipped when redbot is not installed, failed instead when CI is set (tests/tools.py).
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import need_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

BIG = 5 * 1024 * 1024
CSS = (REPO / "www" / "css" / "style.css").read_bytes()

# The CLI has no option for request headers, so a Range or Accept-Encoding request as the
# *main* request goes through the same few calls `redbot.cli.main` makes, with one header added.
_HEADER_DRIVER = """
import sys
from configparser import ConfigParser
import thor
from redbot.formatter import find_formatter
from redbot.resource import HttpResource

url, name, value = sys.argv[1:4]
parser = ConfigParser()
parser.read_dict({"redbot": {"enable_local_access": "True"}})
config = parser["redbot"]
resource = HttpResource(config)
resource.set_request(url, headers=[(name, value)])
formatter = find_formatter("har", "text", False)(
    config, resource, sys.stdout.write, {"tty_out": False, "descend": False})
formatter.bind_resource(resource)

@thor.events.on(formatter)
def formatter_done():
    thor.stop()

resource.check()
thor.run()
"""


@pytest.fixture(scope="module")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page, a stylesheet with a gzip sibling, a PNG, a 5 MiB file; no 404.html."""
    root = tmp_path_factory.mktemp("redbot-root")
    (root / "index.html").write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>redbot</title>'
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css"></head>\n'
        '<body><h1>redbot</h1><img src="/logo.png" alt="logo"></body></html>\n')
    (root / "style.css").write_bytes(CSS)
    # A precompressed sibling: REDbot's Accept-Encoding probe then sees real negotiation.
    (root / "style.css.gz").write_bytes(gzip.compress(CSS, 9, mtime=0))
    (root / "logo.png").write_bytes((REPO / "www" / "img" / "logo.png").read_bytes())
    (root / "big.bin").write_bytes(os.urandom(BIG))
    # Text with no sibling, encoded here: one kept in memory, one encoded as it is sent (the
    # server's budget makes files over 100,000 bytes stream).
    script = "".join(f"function step{i}(a) {{ return a * {i * 7919 % 1000} + {i % 97}; }}\n"
                     for i in range(600)).encode()
    (root / "app.js").write_bytes(script)
    (root / "log.txt").write_bytes(b"".join(b"line %d: request %d served in %d ms\n"
                                            % (i, i * 31 % 977, i % 13) for i in range(6000)))
    return root


@pytest.fixture
def server(start_process: Callable[..., ServerProcess], docroot: Path) -> Iterator[str]:
    need_module("redbot")
    proc = start_process("--compress-cache-bytes", "400000", root=docroot)
    yield f"http://127.0.0.1:{proc.port}"
    assert proc.terminate() == 0


def _run(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, *args], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    log: dict[str, Any] = json.loads(done.stdout)["log"]
    return log


def redbot_har(url: str) -> dict[str, Any]:
    """`redbot -o har URL`, run with this interpreter; the HAR `log` object."""
    return _run(["-m", "redbot.cli", "-o", "har", url])


def redbot_har_with(url: str, name: str, value: str) -> dict[str, Any]:
    """As `redbot_har`, with one more header on the main request."""
    return _run(["-c", _HEADER_DRIVER, url, name, value])


def redbot_har_range(url: str, range_value: str) -> dict[str, Any]:
    return redbot_har_with(url, "Range", range_value)


def _flatten(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for message in messages:
        yield message
        yield from _flatten(message.get("subnotes", []))


def lint(log: dict[str, Any], status: int, allow_bad: frozenset[str] = frozenset(),
         ) -> tuple[dict[str, Any], set[str]]:
    """Check one HAR log: fetched, `status`, no `bad` note but those in `allow_bad`;
    print the warn/info notes. Returns the entry and the ids of its notes.
    """
    assert "_red_error" not in log, log["_red_error"]
    assert len(log["entries"]) == 1, log["entries"]
    entry = log["entries"][0]
    assert entry["response"]["status"] == status, entry["response"]
    notes = list(_flatten(entry["_red_messages"]))
    bad = [n for n in notes if n["level"].lower() == "bad" and n["note_id"] not in allow_bad]
    assert not bad, json.dumps(bad, indent=2)
    print(f"\n{entry['request']['method']} {entry['request']['url']} "
          f"-> {entry['response']['status']}")
    for note in notes:
        if note["level"].lower() in ("warn", "info") or note["note_id"] in allow_bad:
            print(f"  {note['level'].lower():4} {note['note_id']}: {note['summary']}")
    return entry, {n["note_id"] for n in notes}


def header(entry: dict[str, Any], name: str) -> str | None:
    for field in entry["response"]["headers"]:
        if field["name"].lower() == name:
            return str(field["value"]).strip()  # REDbot keeps the space after the colon
    return None


# Notes REDbot sets only after checking a behaviour on the wire (its "good" level):
# a byte-exact 206 to its own Range probe, and 304s to If-None-Match / If-Modified-Since.
VERIFIED = {"RANGE_CORRECT", "INM_304", "IMS_304"}


@pytest.mark.parametrize(("path", "content_type"), [
    ("/", "text/html"),
    ("/logo.png", "image/png"),
    ("/big.bin", "application/octet-stream"),
])
def test_file_passes_redbot(server: str, path: str, content_type: str) -> None:
    """A page, an image and a 5 MiB file: no `bad` note, and REDbot verified ranges and
    both kinds of conditional request on each."""
    entry, ids = lint(redbot_har(server + path), 200)
    assert entry["response"]["content"]["mimeType"].startswith(content_type)
    assert VERIFIED <= ids, sorted(ids)


def test_precompressed_stylesheet_passes_redbot(server: str) -> None:
    """The CSS with a .gz sibling: REDbot's gzip probe gets a gzip body that decodes to
    the same bytes, with consistent Vary and a different ETag (no `bad` note)."""
    entry, ids = lint(redbot_har(server + "/style.css"), 200)
    assert VERIFIED | {"CONNEG_GZIP_GOOD"} <= ids, sorted(ids)
    assert "accept-encoding" in (header(entry, "vary") or "").lower()
    assert not ids & {"VARY_INCONSISTENT", "CONNEG_NO_VARY", "VARY_ETAG_DOESNT_CHANGE"}


@pytest.mark.parametrize("coding", ["gzip", "br"])
@pytest.mark.parametrize("path", ["/app.js", "/log.txt"])
def test_a_variant_encoded_here_passes_redbot_without_a_warning(server: str, path: str,
                                                                coding: str) -> None:
    """The main request asks for a coding: the variant encoded here (kept in memory, or for
    log.txt encoded as it is sent, chunked) draws no `bad` and no `warn` note, and its
    conditional requests give 304; the one in memory also has a correct Content-Length and
    a byte-exact 206 of its encoded bytes."""
    entry, ids = lint(redbot_har_with(server + path, "Accept-Encoding", coding), 200)
    assert header(entry, "content-encoding") == coding
    assert "accept-encoding" in (header(entry, "vary") or "").lower()
    notes = list(_flatten(entry["_red_messages"]))
    assert [n["note_id"] for n in notes if n["level"].lower() == "warn"] == []
    assert {"INM_304", "IMS_304"} <= ids, sorted(ids)
    if path == "/app.js":
        assert {"CL_CORRECT", "RANGE_CORRECT"} <= ids, sorted(ids)
    else:
        assert header(entry, "transfer-encoding") == "chunked"


def test_a_file_encoded_here_negotiates_gzip(server: str) -> None:
    """Asked without a coding, REDbot's own gzip probe finds the encoded variant consistent
    with the identity one: decoded the same, Vary on both, a different ETag."""
    entry, ids = lint(redbot_har(server + "/app.js"), 200)
    assert VERIFIED | {"CONNEG_GZIP_GOOD"} <= ids, sorted(ids)
    assert "accept-encoding" in (header(entry, "vary") or "").lower()
    assert not ids & {"VARY_INCONSISTENT", "CONNEG_NO_VARY", "VARY_ETAG_DOESNT_CHANGE"}


def test_range_request_passes_redbot(server: str) -> None:
    """A Range request as the main request: a 206 REDbot finds nothing bad in."""
    entry, _ = lint(redbot_har_range(server + "/big.bin", "bytes=1000-1999"), 206)
    assert header(entry, "content-range") == f"bytes 1000-1999/{BIG}"
    assert entry["response"]["bodySize"] == 1000


def test_multiple_ranges_pass_redbot_but_one_false_alarm(server: str) -> None:
    """Two ranges: a multipart/byteranges 206 with no Content-Range in its header section.

    RFC 9110 §15.3.7.2: a server "MUST NOT generate a Content-Range header field in the HTTP
    header section of a multiple part response" (each part carries its own). httplint's
    206 check does not know that and reports PARTIAL_WITHOUT_RANGE as `bad`: the one note
    allowed here, and only because the header is rightly absent.
    """
    entry, _ = lint(redbot_har_range(server + "/big.bin", "bytes=0-9,100-109"), 206,
                      allow_bad=frozenset({"PARTIAL_WITHOUT_RANGE"}))
    assert entry["response"]["content"]["mimeType"].startswith("multipart/byteranges")
    assert header(entry, "content-range") is None


def test_unsatisfiable_range_passes_redbot(server: str) -> None:
    """A range past the end: 416 with `Content-Range: bytes */SIZE`, nothing bad."""
    entry, _ = lint(redbot_har_range(server + "/big.bin", f"bytes={BIG}-"), 416)
    assert header(entry, "content-range") == f"bytes */{BIG}"


def test_missing_file_passes_redbot(server: str) -> None:
    """A missing file: a 404 REDbot finds nothing bad in."""
    entry, ids = lint(redbot_har(server + "/no/such/file.txt"), 404)
    assert "STATUS_NOT_FOUND" in ids
