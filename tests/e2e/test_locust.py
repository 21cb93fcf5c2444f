"""A short headless Locust run of loadtests/locustfile.py against a real server process."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess
from tests.tools import need_module

pytestmark = pytest.mark.slow


@pytest.mark.timeout(60)
def test_locust_run_has_no_failures_and_every_request_is_logged(
        start_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """20 users for 5 s over the demo site: exit 0, zero failures, hundreds of requests,
    and at least as many access-log lines as Locust counted requests."""
    # Never import locust here: it monkey-patches the stdlib (gevent) for the whole
    # pytest process. Only look it up; it runs in its own process below.
    need_module("locust", load=False)
    sp = start_process(root=REPO / "www")
    out = tmp_path / "locust"
    with open(tmp_path / "locust-output.txt", "wb") as output:
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"),
             "--headless", "-u", "20", "-r", "20", "-t", "5s", "--host", f"http://127.0.0.1:{sp.port}",
             "--only-summary", "--loglevel", "WARNING", "--json-file", str(out)],
            cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT, timeout=45)
    report = (tmp_path / "locust-output.txt").read_text(errors="replace")[-3000:]
    assert result.returncode == 0, report
    stats = json.loads(Path(f"{out}.json").read_text())
    requests = sum(entry["num_requests"] for entry in stats)
    failures = sum(entry["num_failures"] for entry in stats)
    assert failures == 0, [(e["name"], e["num_failures"]) for e in stats if e["num_failures"]]
    # A server that stalls also shows zero failures: insist on real throughput.
    assert requests >= 500, requests
    names = {entry["name"] for entry in stats}
    assert {"/", "/css/style.css", "/no-such-page"} <= names, names

    assert sp.terminate() == 0
    log_lines = sp.log_path.read_text().splitlines()
    assert len(log_lines) >= requests, (len(log_lines), requests)
    assert "Traceback" not in sp.stderr()
