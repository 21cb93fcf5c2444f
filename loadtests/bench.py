"""Side-by-side benchmark: evserver and `python3 -m http.server` under the same wrk load.

    python3 loadtests/bench.py [--duration 10] [--connections 50] [--path /] [--rounds 1]

Each server is pinned to CPU 0 and wrk to CPU 1 (when there are two CPUs), both serve the
repository's `www/`, and the rounds are interleaved so drift on a noisy machine hits both
alike. Prints req/s per round, the medians and their ratio, and checks that evserver logged
every request wrk completed. Needs `wrk` (Debian package `wrk`). Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WWW = REPO / "www"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(name: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    if name == "evserver":
        argv = [sys.executable, "-m", "evserver", "--host", "127.0.0.1", "--port", str(port),
                "--root", str(WWW), "--log", str(log)]
    else:
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                "--directory", str(WWW), str(port)]
    proc = subprocess.Popen(pinned(0, argv), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port, proc)
    return proc


def wrk(port: int, path: str, duration: int, connections: int) -> tuple[float, int, str]:
    out = subprocess.run(
        pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                   f"http://127.0.0.1:{port}{path}"]),
        capture_output=True, text=True, timeout=duration + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
    return rate, total, errors.group(0) if errors else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--path", default="/")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="evbench-"))
    log = tmp / "access.log"
    servers = {name: (start(name, port := free_port(), log), port)
               for name in ("evserver", "http.server")}
    rates: dict[str, list[float]] = {name: [] for name in servers}
    completed = 0
    try:
        for round_no in range(args.rounds):
            for name, (_, port) in servers.items():
                rate, total, errors = wrk(port, args.path, args.duration, args.connections)
                rates[name].append(rate)
                if name == "evserver":
                    completed += total
                print(f"round {round_no + 1}: {name:12} {rate:10.0f} req/s {errors}")
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s http://127.0.0.1:PORT{args.path}")
    for name, value in medians.items():
        print(f"  {name:12} {value:10.0f} req/s (median of {args.rounds})")
    print(f"  ratio evserver / http.server: {medians['evserver'] / medians['http.server']:.1f}x")
    logged = sum(1 for _ in log.open("rb"))
    print(f"  evserver access log: {logged} lines for {completed} completed requests"
          f" ({'ok' if logged >= completed else 'MISSING LINES'})")
    return 0 if logged >= completed else 1


if __name__ == "__main__":
    sys.exit(main())
