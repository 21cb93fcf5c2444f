"""The differential tester (tests/fuzz/differential/): a short seeded run against nginx,
and its pure parts (the response reader, the classifier, the allow-list table, the generator)
with no server."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.fuzz import differential as diff
from tests.tools import need_tool

SHORT_COUNT = 400
SHORT_SEED = 20240607


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_short_run_has_no_serious_finding_the_allow_list_does_not_name(
        tmp_path: Path) -> None:
    """400 seeded cases to evserver and nginx: every serious finding is allowed by a row of
    docs/http-conformance.md, and no response carries the canary."""
    need_tool("nginx")
    report = diff.run(SHORT_COUNT, SHORT_SEED, jobs=8, folder=tmp_path)
    assert len(report.results) == SHORT_COUNT
    # A broken setup (a server that answers nothing) must not pass quietly.
    assert len(report.kind("agreement")) > SHORT_COUNT // 2, diff.summary(report, 0)
    unallowed = report.unallowed()
    assert not unallowed, f"{len(unallowed)} serious findings not allowed:\n\n" + "\n\n".join(
        r.describe() for r in unallowed)


# -- the response reader ---------------------------------------------------------------------


def read(data: bytes, head_only: tuple[bool, ...] = (), pieces: int = 1,
         close: bool = False) -> diff.ResponseReader:
    """`data` fed to a reader whole, or in `pieces` of one byte each at the start."""
    reader = diff.ResponseReader(head_only)
    if pieces > 1:
        for i in range(len(data)):
            reader.feed(data[i:i + 1])
    else:
        reader.feed(data)
    if close:
        reader.close()
    return reader


PIPELINED = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
             b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
             b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"  # answers a HEAD: no body
             b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
             b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!")


@pytest.mark.parametrize("pieces", [1, 2])
def test_the_reader_splits_a_pipelined_stream(pieces: int) -> None:
    """Length, 304, HEAD with Content-Length, chunked with trailers: fed whole or byte by
    byte, the same five responses and nothing left over."""
    reader = read(PIPELINED, head_only=(False, False, True, False, False), pieces=pieces)
    assert [r.status for r in reader.responses] == [200, 304, 200, 200, 404]
    assert [bytes(r.body) for r in reader.responses] == [b"hello", b"", b"", b"abcde", b"no!"]
    assert not reader.pending and not reader.broken and reader.leftover == b""


def test_a_body_without_length_runs_to_the_close() -> None:
    data = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    assert read(data).responses == []  # not complete while the connection is open
    reader = read(data, close=True)
    assert [bytes(r.body) for r in reader.responses] == [b"until the end"]


def test_interim_responses_are_counted_apart() -> None:
    reader = read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert reader.interim == 1
    assert [r.status for r in reader.responses] == [204]


def test_bytes_that_are_no_response_are_left_over() -> None:
    """nginx answers an HTTP/0.9 request with the bare file; an unfinished body stays too."""
    reader = read(b"hello, world\n")
    assert reader.broken and reader.leftover == b"hello, world\n" and reader.responses == []
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    reader = read(head + b"short", close=True)
    assert reader.responses == [] and reader.pending
    bad_chunk = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert bad_chunk.broken and bad_chunk.responses == []


# -- the classifier ----------------------------------------------------------------------------


def case(name: str = "valid-get", requests: int = 1) -> diff.Case:
    return diff.Case(name, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * requests, (False,) * requests)


def outcome(*statuses: int, closed: bool = False, leftover: bytes = b"",
            canary: bool = False) -> diff.Outcome:
    return diff.Outcome(statuses, closed, leftover, len(leftover), canary=canary)


def test_the_same_answers_agree() -> None:
    verdict = diff.classify(case(), outcome(200), outcome(200))
    assert verdict.kind == "agreement"
    # 4xx and 5xx compare by class: a 414 against a 400 is the same refusal.
    assert diff.classify(case(), outcome(414, closed=True),
                         outcome(400, closed=True)).kind == "agreement"


def test_the_serious_classes() -> None:
    more = diff.classify(case(), outcome(200, 400, closed=True), outcome(400, closed=True))
    assert more.serious == (diff.MORE_RESPONSES, diff.MORE_THAN_SENT, diff.ACCEPTS_REJECTED)
    accepts = diff.classify(case(), outcome(301), outcome(400, closed=True))
    assert accepts.serious == (diff.ACCEPTS_REJECTED,) and accepts.other == ("status", "closed")
    canary = diff.classify(case(), outcome(200), outcome(200, canary=True))
    assert canary.serious == ("canary-nginx",)
    # An unparsable answer (HTTP/0.9) counts as one: a 400 against it is not "more".
    http09 = diff.classify(case(), outcome(400, closed=True),
                           outcome(closed=True, leftover=b"body"))
    assert http09.serious == () and http09.other == ("status",)


def test_differences_that_are_not_serious() -> None:
    stricter = diff.classify(case(), outcome(400, closed=True), outcome(200))
    assert stricter.kind == "other" and stricter.other == ("status", "closed")
    ranged = diff.classify(case(), outcome(200), outcome(206))
    assert ranged.kind == "other" and ranged.other == ("status",)
    fewer = diff.classify(case(requests=3), outcome(200, 400, closed=True),
                          outcome(200, 400, 200))
    assert fewer.other == ("responses", "closed") and not fewer.serious


def test_a_finding_is_allowed_only_by_mutation_and_class() -> None:
    allow = frozenset({("cl-list-equal", diff.ACCEPTS_REJECTED)})
    ev, ng = outcome(200), outcome(400, closed=True)
    assert diff.judge(case("cl-list-equal"), {"evserver": ev, "nginx": ng}, allow).unallowed == ()
    assert diff.judge(case("cl-duplicate-equal"), {"evserver": ev, "nginx": ng},
                      allow).unallowed == (diff.ACCEPTS_REJECTED,)
    more = {"evserver": outcome(200, 400, closed=True), "nginx": ng}
    assert diff.judge(case("cl-list-equal"), more, allow).unallowed == (
        diff.MORE_RESPONSES, diff.MORE_THAN_SENT)


# -- the allow-list table ----------------------------------------------------------------------

ROWS = diff.read_allow_list(diff.ALLOW_LIST_DOC.read_text(encoding="utf-8"))


def test_the_table_reader_reads_rows_between_the_markers() -> None:
    text = ("| `x` | `more-responses` | a | b | RFC 9112 §6.3 |\n"
            "<!-- allow-list: ... -->\n| Mutation | Finding | evserver | nginx | Why |\n"
            "|---|---|---|---|---|\n| `cl-list-equal` | `accepts-rejected` | 200 | 400 | "
            "RFC 9110 §8.6 |\n<!-- end of allow-list -->\n| `y` | `z` | a | b | c |\n")
    assert diff.read_allow_list(text) == [diff.Allowance(
        "cl-list-equal", "accepts-rejected", "200", "400", "RFC 9110 §8.6")]
    canary = text.replace("accepts-rejected", "canary-evserver")
    assert diff.allowed_pairs(diff.read_allow_list(canary)) == frozenset()


def test_the_documented_table_has_rows() -> None:
    assert ROWS, "no rows read from docs/http-conformance.md"
    assert len({(r.mutation, r.finding) for r in ROWS}) == len(ROWS), "a row is repeated"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.mutation}/{r.finding}")
def test_every_row_names_a_mutation_a_class_and_an_rfc_section(row: diff.Allowance) -> None:
    assert row.mutation in diff.MUTATIONS, f"the generator makes no {row.mutation!r}"
    assert row.finding in diff.SERIOUS_CLASSES, row.finding
    assert not row.finding.startswith(diff.CANARY), "bytes from outside the root: never allowed"
    assert re.search(r"RFC 91(10|12) §\d", row.why), f"{row.mutation}: no RFC section"
    assert row.evserver and row.nginx


# -- the generator -----------------------------------------------------------------------------


def test_the_generator_is_deterministic_and_names_every_case() -> None:
    ctx = diff.Context.offline()
    cases = diff.generate(7, 600, ctx)
    assert cases == diff.generate(7, 600, ctx)
    assert cases != diff.generate(8, 600, ctx)
    assert all(c.name in diff.MUTATIONS and c.data and c.requests >= 1 for c in cases)


@pytest.mark.parametrize("name", sorted(diff.MUTATIONS))
def test_every_mutation_builds_a_case(name: str) -> None:
    g = diff.Gen(random.Random(name), diff.Context.offline())
    built = diff.build_case(name, g)
    assert built.name == name and built.requests == len(built.heads) >= 1 and built.data
    if name == "pipeline-bad-middle":
        assert built.detail in diff.BAD_MIDDLE and built.requests == 3
