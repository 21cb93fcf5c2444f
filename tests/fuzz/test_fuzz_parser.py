"""The atheris fuzz target for the request parser: a short bounded run, and its corpus and
invariant checks replayed in-process (these need no atheris)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evserver.http11 import Request
from tests.fuzz import fuzz_parser
from tests.tools import need_module

HERE = Path(__file__).resolve().parent
TARGET = HERE / "fuzz_parser.py"
CORPUS = HERE / "corpus"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_bounded_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    """Ten seconds of coverage-guided fuzzing from the seed corpus end without a crash, with
    the parser instrumented; nothing is written into the repository."""
    need_module("atheris")  # only to know it is there: the run is a subprocess
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)  # libFuzzer adds new inputs to its first corpus folder
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    seeds = sorted(p.name for p in CORPUS.iterdir())
    proc = subprocess.run(
        [sys.executable, str(TARGET), "-max_total_time=10", "-rss_limit_mb=2048", "-timeout=10",
         "-print_final_stats=1", f"-dict={HERE / 'http.dict'}", f"-artifact_prefix={artifacts}/",
         str(corpus)],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=50)
    out = proc.stdout.decode(errors="replace")
    found = {p.name: p.read_bytes() for p in artifacts.iterdir()}
    assert proc.returncode == 0 and not found, f"{out[-4000:]}\nartifacts: {found!r}"
    assert "INFO: Instrumenting evserver.http11" in out  # coverage-guided, not blind
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert runs is not None and int(runs[1]) >= 1000, out[-2000:]
    assert sorted(p.name for p in CORPUS.iterdir()) == seeds  # the repo's corpus untouched


@pytest.mark.parametrize("seed", sorted(p.name for p in CORPUS.iterdir()))
def test_seed_corpus_passes_the_invariants(seed: str) -> None:
    """Every seed input passes the fuzz target's checks (without atheris)."""
    fuzz_parser.TestOneInput((CORPUS / seed).read_bytes())


def test_seed_corpus_reaches_errors_and_requests() -> None:
    """The seeds cover accepted requests and each error status the parser can give."""
    statuses: set[object] = set()
    accepted = 0
    for path in CORPUS.iterdir():
        data = path.read_bytes()
        limits = fuzz_parser.limits_of(data[:fuzz_parser.HEADER])
        result = fuzz_parser.feed([data[fuzz_parser.HEADER:]], limits, lambda r: None)
        accepted += len(result[0])  # type: ignore[arg-type]
        statuses.add(result[1])
    assert accepted >= 10
    assert statuses >= {None, 400, 413, 414, 431, 501, 505}


def test_reference_grammar_refuses_what_the_old_parser_accepted() -> None:
    """The span oracle refuses the bytes behind bugs the fuzzer found (a bare CR before the
    request line, bare CRs in chunk lines, a request line hidden in a trailer section) and
    takes their valid neighbours."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert fuzz_parser.HEAD.fullmatch(b"\r\n\n" + head) is not None
    assert fuzz_parser.HEAD.fullmatch(b"\r" + head) is None
    assert fuzz_parser.HEAD.fullmatch(head.replace(b"x\r", b"x\r\r")) is None
    valid = b"3;a=1\r\nabc\n0\r\nT: 1\r\n\r\n"
    assert fuzz_parser.chunked_length(valid + head) == len(valid)
    for bad in (b"3\r\r\nabc\r\n0\r\n\r\n", b"3\r\nabc\r\r\n0\r\n\r\n",
                b"0\r\nGET /hidden HTTP/1.1\r\n\r\n", b" 3\r\nabc\r\n0\r\n\r\n"):
        assert fuzz_parser.chunked_length(bad + head) is None, bad


@pytest.mark.parametrize("bad", [
    Request(b"G T", b"/", b"HTTP/1.1", ((b"host", b"x"),), True),
    Request(b"GET", b"/a b", b"HTTP/1.1", ((b"host", b"x"),), True),
    Request(b"GET", b"/", b"HTTP/2.0", ((b"host", b"x"),), True),
    Request(b"GET", b"/", b"HTTP/1.1", (), True),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"Host", b"y")), True),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"x", b"a\rb")), True),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"x", b"\x00")), True),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"content-length", b"1"),
                                        (b"transfer-encoding", b"chunked")), True),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"content-length", b"1, 2")), True),
    Request(b"GET", b"/", b"HTTP/1.0", ((b"transfer-encoding", b"chunked"),), False),
    Request(b"GET", b"/", b"HTTP/1.1", ((b"host", b"x"), (b"connection", b"close")), True),
    Request(b"GET", b"/", b"HTTP/1.0", (), True),
])
def test_request_checker_catches_rfc_violations(bad: Request) -> None:
    """The fuzz target's per-request check fails on requests RFC 9112 forbids."""
    with pytest.raises(AssertionError):
        fuzz_parser.checker({})(bad)
