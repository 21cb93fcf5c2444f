"""workers.py: how the supervisor words a worker's end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from evserver.workers import ended


@pytest.mark.parametrize(("wait_status", "words"), [
    (signal.SIGKILL, "was killed by SIGKILL"),  # Linux wait statuses: the signal number
    (signal.SIGTERM, "was killed by SIGTERM"),
    (0x80 | signal.SIGSEGV, "was killed by SIGSEGV (core dumped)"),  # the core-dump bit
    (3 << 8, "exited with status 3"),  # exit status in the second byte
    (0, "exited with status 0"),
    (signal.SIGRTMIN + 5, f"was killed by signal {signal.SIGRTMIN + 5}"),  # no name of its own
])
def test_ended_names_the_signal_or_the_exit_status(wait_status: int, words: str) -> None:
    assert ended(wait_status) == words


def test_ended_of_a_real_process_killed_with_sigkill() -> None:
    """What `os.wait` reports for a process killed with SIGKILL, as a worker's was."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    _, wait_status = os.waitpid(child.pid, 0)
    child.returncode = -9  # reaped here: Popen must not wait for it again
    assert ended(wait_status) == "was killed by SIGKILL"
