"""The command line: `python3 -m evserver` (and the `evserver` console script).

Owns: `main()`: the subcommands (`stats`, `hash-password`), then the options, checked as
`--check-config` checks them, and the server process. Imports `cmdline`, and `process`,
`tools.stats` or `tools.passwords` only when they run: `--help`, `--version` and
`--check-config` start without loading the server.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from . import cmdline


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["stats"]:  # `python3 -m evserver stats LOGFILE`: no server at all
        from .tools.stats import main as stats_main
        return stats_main(args[1:])
    if args[:1] == ["hash-password"]:  # a line for --auth-file
        from .tools.passwords import main as hash_main
        return hash_main(args[1:])
    # The same checks as --check-config, the disk's included (the root, the log's and the
    # pid file's folders, the TLS files, the auth file): refused here, before any bind.
    cfg = cmdline.parse(args, check_environment=True)
    from .process import run
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
