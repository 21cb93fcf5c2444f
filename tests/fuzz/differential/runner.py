"""A run: fixture, servers, seeded cases on both, judged against the allow-list (suspects run
again), and the summary printed at the end."""
from __future__ import annotations

import concurrent.futures
import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cases import Case, generate
from .context import probe_context
from .exchange import Outcome, run_case
from .fixture import make_fixture
from .servers import REPO, SERVERS, running_servers
from .verdicts import Verdict, classify, load_allow_list


@dataclass(frozen=True)
class Result:
    case: Case
    evserver: Outcome
    nginx: Outcome
    verdict: Verdict
    unallowed: tuple[str, ...]  # the serious findings the allow-list does not name

    def describe(self) -> str:
        detail = f" ({self.case.detail})" if self.case.detail else ""
        return (f"{self.case.name}{detail}: {', '.join(self.verdict.serious or self.verdict.other)}"
                f"\n  case ({self.case.requests} request(s)): {self.case.data[:600]!r}"
                f"{' ...' if len(self.case.data) > 600 else ''}"
                f"\n  evserver: {self.evserver.describe()}\n  nginx:    {self.nginx.describe()}")


def judge(case: Case, outcomes: Mapping[str, Outcome],
          allow: frozenset[tuple[str, str]]) -> Result:
    ev, ng = outcomes["evserver"], outcomes["nginx"]
    verdict = classify(case, ev, ng)
    unallowed = tuple(f for f in verdict.serious if (case.name, f) not in allow)
    return Result(case, ev, ng, verdict, unallowed)


@dataclass
class Report:
    seed: int
    results: list[Result]
    seconds: float
    unstable: int = 0  # serious findings not allowed that a second try did not repeat

    def kind(self, kind: str) -> list[Result]:
        return [r for r in self.results if r.verdict.kind == kind]

    def unallowed(self) -> list[Result]:
        return [r for r in self.results if r.unallowed]


def run_cases(cases: Sequence[Case], ports: Mapping[str, int], token: bytes, jobs: int,
              allow: frozenset[tuple[str, str]]) -> list[Result]:
    """Every case on both servers, `jobs` at a time, in the order of `cases`."""
    with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="difftest") as pool:
        outcomes = pool.map(lambda case: run_case(case, ports, token), cases)
        return [judge(case, out, allow) for case, out in zip(cases, outcomes, strict=True)]


def confirm(results: list[Result], ports: Mapping[str, int], token: bytes, jobs: int,
            allow: frozenset[tuple[str, str]]) -> int:
    """Run again every case with a serious finding not allowed, and keep the second result
    when it differs: on a loaded machine a server may miss the deadline once, and the
    other then seems to answer more. Returns how many changed."""
    suspects = [i for i, r in enumerate(results) if r.unallowed]
    again = run_cases([results[i].case for i in suspects], ports, token, jobs, allow)
    changed = 0
    for i, second in zip(suspects, again, strict=True):
        if second.unallowed != results[i].unallowed:
            results[i] = second
            changed += 1
    return changed


def run(count: int, seed: int, jobs: int = 8, folder: Path | None = None,
        evserver_source: Path = REPO) -> Report:
    """Fixture, servers, `count` cases from `seed`, judged against the allow-list."""
    allow = load_allow_list()
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="difftest-")))
        fixture = make_fixture(folder)
        servers = stack.enter_context(running_servers(folder, fixture.root, evserver_source))
        ports = {name: servers[name].port for name in SERVERS}
        started = time.monotonic()
        cases = generate(seed, count, probe_context(ports))
        results = run_cases(cases, ports, fixture.token, jobs, allow)
        unstable = confirm(results, ports, fixture.token, jobs, allow)
        return Report(seed, results, time.monotonic() - started, unstable)


def _counts(items: Iterable[str], indent: str = "    ") -> str:
    """One line per distinct item, the most frequent first."""
    ranked = Counter(items).most_common()
    return "\n".join(f"{indent}{n:6}  {key}" for key, n in ranked) or f"{indent}(none)"


def summary(report: Report, show: int) -> str:
    serious = report.kind("serious")
    unallowed = report.unallowed()
    allowed = [r for r in serious if not r.unallowed]
    other = report.kind("other")
    lines = [
        f"cases: {len(report.results)} (seed {report.seed}, {report.seconds:.1f} s)",
        f"agreements: {len(report.kind('agreement'))}",
        f"serious: {len(serious)} ({len(allowed)} allowed, {len(unallowed)} not allowed; "
        f"{report.unstable} changed when run again)",
        "  not allowed, by class:", _counts([f for r in unallowed for f in r.unallowed]),
        "  not allowed, by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.unallowed)}" for r in unallowed]),
        "  allowed, by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.verdict.serious)}" for r in allowed]),
        f"other: {len(other)}",
        "  by class:", _counts([c for r in other for c in r.verdict.other]),
        "  by mutation:",
        _counts([f"{r.case.name}: {', '.join(r.verdict.other)}" for r in other]),
    ]
    if unallowed and show:
        lines.append(f"the first {min(show, len(unallowed))} serious findings not allowed:")
        lines += [r.describe() for r in unallowed[:show]]
    return "\n".join(lines)
