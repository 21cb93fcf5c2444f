"""Classification of a case, and the allow-list read from docs/http-conformance.md.

A case is an *agreement* (the same first status, by exact code below 400 and by class from
400, as many responses, and the same closed-ness), *serious*, or *other*. Serious are:
evserver sending more responses than nginx, or than the case sent requests; evserver
accepting (2xx, 3xx) what nginx rejects (4xx, 5xx); and any response, from either server,
carrying the canary token (bytes from outside the root). A serious finding is allowed only
when the table in docs/http-conformance.md names its mutation and class, with the RFC 9110
or 9112 section that lets evserver answer so; the table is read from the document, so the
two cannot drift.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cases import Case
from .exchange import Outcome

ALLOW_LIST_DOC = Path(__file__).resolve().parents[3] / "docs" / "http-conformance.md"

MORE_RESPONSES = "more-responses"  # evserver answered more times than nginx
MORE_THAN_SENT = "more-than-intended"  # evserver answered more times than requests were sent
ACCEPTS_REJECTED = "accepts-rejected"  # evserver 2xx/3xx where nginx said 4xx/5xx
CANARY = "canary"  # "canary-evserver", "canary-nginx": bytes from outside the root
SERIOUS_CLASSES = (MORE_RESPONSES, MORE_THAN_SENT, ACCEPTS_REJECTED, CANARY + "-evserver",
                   CANARY + "-nginx")
OTHER_CLASSES = ("status", "responses", "closed")


def status_key(status: int | None) -> str:
    """What is compared of a first status: the code below 400 (200, 206, 304 and 301 differ
    in meaning), the class from 400 (a 400 against a 414 is the same refusal)."""
    if status is None:
        return "none"
    return str(status) if status < 400 else f"{status // 100}xx"


@dataclass(frozen=True)
class Verdict:
    serious: tuple[str, ...]
    other: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "serious" if self.serious else "other" if self.other else "agreement"


def classify(case: Case, ev: Outcome, ng: Outcome) -> Verdict:
    """The serious findings of a case and, apart, how else the two servers differ."""
    serious = []
    if ev.answers > ng.answers:
        serious.append(MORE_RESPONSES)
    if ev.answers > case.requests:
        serious.append(MORE_THAN_SENT)
    if _accepts(ev.first) and ng.first is not None and ng.first >= 400:
        serious.append(ACCEPTS_REJECTED)
    serious += [f"{CANARY}-{name}" for name, o in (("evserver", ev), ("nginx", ng)) if o.canary]
    other = []
    if status_key(ev.first) != status_key(ng.first):
        other.append("status")
    if ev.answers != ng.answers:
        other.append("responses")
    if ev.closed != ng.closed:
        other.append("closed")
    return Verdict(tuple(serious), tuple(other))


def _accepts(status: int | None) -> bool:
    return status is not None and 200 <= status < 400


ALLOW_START = "<!-- allow-list"
ALLOW_END = "<!-- end of allow-list -->"
RFC_SECTION = re.compile(r"RFC 91(?:10|12) §\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Allowance:
    """A row of the table: a serious finding evserver may cause, and why."""

    mutation: str
    finding: str
    evserver: str
    nginx: str
    why: str


def read_allow_list(text: str) -> list[Allowance]:
    """The rows between the markers: `mutation` | `finding` | evserver | nginx | why. The
    mutation and the finding are in backticks; other rows (header, rule) are skipped."""
    start, end = text.index(ALLOW_START), text.index(ALLOW_END)
    rows = []
    for line in text[start:end].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.fullmatch(r"`[\w-]+`", cells[0]):
            continue
        mutation_name, finding = cells[0].strip("`"), cells[1].strip("`")
        rows.append(Allowance(mutation_name, finding, cells[2], cells[3], cells[4]))
    return rows


def allowed_pairs(rows: Sequence[Allowance]) -> frozenset[tuple[str, str]]:
    """(mutation, finding) pairs a case may show; a canary finding is never allowed."""
    return frozenset((row.mutation, row.finding) for row in rows
                     if not row.finding.startswith(CANARY))


def load_allow_list(path: Path = ALLOW_LIST_DOC) -> frozenset[tuple[str, str]]:
    return allowed_pairs(read_allow_list(path.read_text(encoding="utf-8")))
