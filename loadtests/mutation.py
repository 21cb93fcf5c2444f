"""Mutation scores of the modules whose behaviour the fast test layers pin.

    python3 -m pip install mutmut==3.8.1
    python3 loadtests/mutation.py                      # all of them: about 25 min on 2 cores
    python3 loadtests/mutation.py http11 semantics     # some
    python3 loadtests/mutation.py --report             # the table of the last run again

mutmut (configured in pyproject.toml's [tool.mutmut]) changes one operator, constant or
call at a time and runs the unit and connection tests (tests/unit, tests/conn: no process,
no sleep) against each mutant; a mutant no test notices "survives". It works in `mutants/`
at the repository's root (git ignores it); the tests' tmp_path folders go to a temporary
folder of this run, pruned as it goes and removed at its end.

A surviving mutant that no test can tell apart from the original (the same behaviour by
another road) is *equivalent*: loadtests/equivalent_mutants.txt names each one with the
reason, after review. The score counts them apart:

    score = (killed + timed out) / (mutants - equivalent)

A mutant in a function no fast test calls ("no tests") counts as survived.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = ("semantics", "http11", "responses", "files", "connection", "codings", "metrics", "board",
           "status", "listing", "look")
EQUIVALENT = Path(__file__).resolve().parent / "equivalent_mutants.txt"
_PRUNE_EVERY, _PRUNE_KEEP = 5.0, 8  # seconds between prunings; test folders left
# mutmut's exit codes of a mutant's test run (mutmut/stats.py), folded into four outcomes.
KILLED, SURVIVED, TIMEOUT, UNTESTED = "killed", "survived", "timeout", "no tests"
UNCHECKED = "not checked"  # a run stopped before this mutant: left out of the score
OUTCOME_BY_EXIT = {1: KILLED, 3: KILLED, -11: KILLED, -9: KILLED, 0: SURVIVED,
                   36: TIMEOUT, 24: TIMEOUT, -24: TIMEOUT, 152: TIMEOUT, 255: TIMEOUT,
                   5: UNTESTED, 33: UNTESTED}


def equivalent_mutants(path: Path = EQUIVALENT) -> dict[str, str]:
    """Mutant name -> the reviewed reason it cannot be told apart ('#' starts a comment)."""
    named: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        named[name] = reason.strip()
    return named


def outcomes(module: str) -> dict[str, str]:
    """Mutant name -> outcome, from the last run's record of `module`."""
    meta = REPO / "mutants" / "evserver" / f"{module}.py.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: UNCHECKED if code is None else OUTCOME_BY_EXIT.get(code, SURVIVED)
            for name, code in codes.items()}


def score_row(module: str, results: dict[str, str], equivalent: dict[str, str]
              ) -> tuple[str, int, int, int, int, int, float]:
    """(module, mutants, killed or timed out, survived, of them no tests, equivalent,
    score %)."""
    results = {name: outcome for name, outcome in results.items() if outcome != UNCHECKED}
    counts = Counter(results.values())
    same = sum(1 for name, outcome in results.items()
               if name in equivalent and outcome in (SURVIVED, UNTESTED))
    caught = counts[KILLED] + counts[TIMEOUT]
    alive = counts[SURVIVED] + counts[UNTESTED] - same
    judged = len(results) - same
    return (module, len(results), caught, alive, counts[UNTESTED], same,
            100.0 * caught / judged if judged else 100.0)


def report(modules: list[str]) -> int:
    """Print the table and the survivors; 1 if a listed equivalent mutant is stale."""
    equivalent = equivalent_mutants()
    print(f"{'module':<12} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} "
          f"{'equivalent':>11} {'score':>7}")
    stale: list[str] = []
    for module in modules:
        results = outcomes(module)
        if not results:
            print(f"{module:<12} (not run)")
            continue
        name, total, caught, alive, untested, same, score = score_row(module, results,
                                                                      equivalent)
        unchecked = sum(1 for outcome in results.values() if outcome == UNCHECKED)
        print(f"{name:<12} {total:>8} {caught:>7} {alive:>9} {untested:>9} {same:>11} "
              f"{score:>6.1f}%" + (f"  ({unchecked} not checked)" if unchecked else ""))
        prefix = f"evserver.{module}."
        stale += [n for n in equivalent if n.startswith(prefix)
                  and results.get(n) not in (SURVIVED, UNTESTED, UNCHECKED)]
    survivors = [n for m in modules for n, outcome in outcomes(m).items()
                 if outcome in (SURVIVED, UNTESTED) and n not in equivalent]
    if survivors:
        print(f"\n{len(survivors)} survivors (see one: mutmut show NAME):")
        for name in survivors:
            print("   ", name)
    if stale:
        print("\nListed as equivalent but killed or gone (renumbered? review the list):")
        for name in stale:
            print("   ", name)
        return 1
    return 0


def _run_pruning(patterns: list[str], temproot: Path) -> subprocess.CompletedProcess[bytes]:
    """`mutmut run`, its tests' tmp_path folders in `temproot`, pruned as it goes.

    mutmut runs each mutant's tests in a forked child that exits without pytest's own
    clean-up, so every one leaves its numbered folder behind (about 7 MB each here; one
    session's runs once left 78 GB in /tmp). All but the newest few go every few seconds."""
    env = dict(os.environ, PYTEST_DEBUG_TEMPROOT=str(temproot))
    with subprocess.Popen([sys.executable, "-m", "mutmut", "run", *patterns], cwd=REPO,
                          env=env, stdout=subprocess.DEVNULL) as proc:
        while True:
            try:
                code = proc.wait(timeout=_PRUNE_EVERY)
            except subprocess.TimeoutExpired:
                _prune(temproot)
                continue
            return subprocess.CompletedProcess(proc.args, code)


def _prune(temproot: Path) -> None:
    """Remove the tests' numbered folders but the newest (which a test may still use)."""
    folders = sorted(temproot.glob("pytest-of-*/pytest-[0-9]*"),
                     key=lambda p: int(p.name.removeprefix("pytest-")))  # pytest numbers them
    for folder in folders[:-_PRUNE_KEEP]:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules of evserver/ to mutate (default: {', '.join(MODULES)})")
    parser.add_argument("--report", action="store_true", help="only print the last run's table")
    args = parser.parse_args(argv)
    modules = list(args.modules) or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}: choose from {', '.join(MODULES)}")
    if not args.report:
        patterns = [f"evserver.{m}.*" for m in modules]
        with tempfile.TemporaryDirectory(prefix="evserver-mutation-") as temproot:
            run = _run_pruning(patterns, Path(temproot))
        if run.returncode:
            print(f"mutmut run failed (exit {run.returncode}); is mutmut installed?",
                  file=sys.stderr)
            return 2
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())
