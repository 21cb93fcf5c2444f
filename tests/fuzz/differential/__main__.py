"""The command line: `python3 -m tests.fuzz.differential --count 20000 --seed 1`."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .runner import run, summary
from .servers import REPO


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.fuzz.differential",
                                     description=package_doc.split("\n\n")[0]
                                     if package_doc else None)
    parser.add_argument("--count", type=int, default=2000, help="cases to run (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1)")
    parser.add_argument("--jobs", type=int, default=8, help="cases at once (default 8)")
    parser.add_argument("--show", type=int, default=10,
                        help="print this many unallowed serious findings in full (default 10)")
    parser.add_argument("--evserver-source", type=Path, default=REPO, metavar="DIR",
                        help="run the evserver of another checkout (default: this one)")
    o = parser.parse_args(argv)
    report = run(o.count, o.seed, o.jobs, evserver_source=o.evserver_source.resolve())
    print(summary(report, o.show))
    return 1 if report.unallowed() else 0


if __name__ == "__main__":
    sys.exit(main())
