"""Differential testing: the same seeded requests to evserver and to nginx, answers compared.

    python3 -m tests.fuzz.differential --count 400 --seed 7     # a short run, seconds
    python3 -m tests.fuzz.differential --count 20000 --seed 1   # a long one, minutes

A run builds a temporary site with a canary file beside its root (fixture), starts nginx
and evserver on it (servers), asks both for what the cases need to know (context), draws a
seeded stream of valid and mutated requests (cases, and mutations/ by topic), sends each case
to both servers on fresh connections and parses the answers (exchange, reader), classifies
every difference against the allow-list in docs/http-conformance.md (verdicts), and
summarizes (runner; __main__ is the command line). Exit status 1 when a serious finding is
not allowed.
"""
from __future__ import annotations

from . import mutations  # registers every mutation in MUTATIONS
from .cases import HOST, MUTATIONS, Case, Gen, Raw, Spec, build_case, generate
from .context import Context, probe_context
from .exchange import Exchange, Outcome, run_case
from .fixture import Fixture, fixture_files, make_fixture
from .mutations import BAD_MIDDLE
from .reader import Response, ResponseReader, Unparsable
from .runner import Report, Result, confirm, judge, run, run_cases, summary
from .servers import REPO, SERVERS, Running, running_servers, start_evserver, start_nginx
from .verdicts import (
    ACCEPTS_REJECTED,
    ALLOW_LIST_DOC,
    CANARY,
    MORE_RESPONSES,
    MORE_THAN_SENT,
    OTHER_CLASSES,
    SERIOUS_CLASSES,
    Allowance,
    Verdict,
    allowed_pairs,
    classify,
    load_allow_list,
    read_allow_list,
    status_key,
)

__all__ = [
    "ACCEPTS_REJECTED", "ALLOW_LIST_DOC", "BAD_MIDDLE", "CANARY", "HOST", "MORE_RESPONSES",
    "MORE_THAN_SENT", "MUTATIONS", "OTHER_CLASSES", "REPO", "SERIOUS_CLASSES", "SERVERS",
    "Allowance", "Case", "Context", "Exchange", "Fixture", "Gen", "Outcome", "Raw", "Report",
    "Response", "ResponseReader", "Result", "Running", "Spec", "Unparsable", "Verdict",
    "allowed_pairs", "build_case", "classify", "confirm", "fixture_files", "generate", "judge",
    "load_allow_list", "make_fixture", "mutations", "probe_context", "read_allow_list", "run",
    "run_case", "run_cases", "running_servers", "start_evserver", "start_nginx", "status_key",
    "summary",
]
