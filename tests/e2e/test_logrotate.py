"""SIGHUP reopens the access log, so logrotate (rename, then HUP) loses no line."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

from tests.conftest import ServerProcess, wait_for
from tests.wire import get


def test_sighup_after_rename_keeps_every_line(start_process: Callable[..., ServerProcess]
                                              ) -> None:
    """Requests before the rotation are in the old file, after it in the new one."""
    proc = start_process()
    for i in range(5):
        assert get(proc.port, f"/hello.txt?before={i}").status == 200
    # The writer flushes every 0.1 s: rotate once all five lines are in the file.
    assert wait_for(lambda: proc.log_path.read_text().count("?before=") == 5)
    rotated = proc.log_path.with_name(proc.log_path.name + ".1")
    os.rename(proc.log_path, rotated)
    proc.proc.send_signal(signal.SIGHUP)
    assert wait_for(proc.log_path.exists), "log not reopened after SIGHUP"
    for i in range(5):
        assert get(proc.port, f"/hello.txt?after={i}").status == 200
    assert proc.terminate() == 0
    old = rotated.read_text()
    new = proc.log_path.read_text()
    assert old.count("?before=") == 5 and "?after=" not in old
    assert new.count("?after=") == 5 and "?before=" not in new
