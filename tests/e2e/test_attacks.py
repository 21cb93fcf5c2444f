"""slowhttptest attacks of 1,000 connections each on a real `python -m evserver` process.

Slowloris (-H), slow body (-B) and slow read (-X) run one after another against a server
started with 3 s header/body/send/keep-alive timeouts, while a side probe fetches `/` on a
fresh connection every 0.25 s and a sampler reads the server's fds, RSS and kernel send
queues from /proc. Each test prints its figures (see them with `-s` or `-rA`). A last test
runs all three attacks at once beside normal clients and sends SIGTERM in the middle.

The measuring code is shared with `loadtests/attack.py`, the longer rerunnable version.
Skipped without slowhttptest (Debian package), failed instead when CI is set (tests/tools.py).
Traffic stays on 127.0.0.1; only processes started here are signalled.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO
from tests.tools import need_tool


def _load_attack_module() -> ModuleType:
    path = REPO / "loadtests" / "attack.py"
    spec = importlib.util.spec_from_file_location("evserver_loadtests_attack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


attack = _load_attack_module()

pytestmark = pytest.mark.slow

CONNECTIONS = 1000
TIMEOUT = 3.0  # header, body, keep-alive and send timeouts of the server under attack
RAMP = 3.0  # seconds slowhttptest may take to open its connections (-r 1000)
SLACK = 3.0
RSS_GROWTH_LIMIT_KIB = 200 * 1024
PROBE_INTERVAL = 0.25
SENDQ_LIMIT = 512 * 1024  # kernel send queue one slow reader may pin (--send-buffer, doubled)


@pytest.fixture(scope="module")
def attack_tool() -> None:
    need_tool("slowhttptest")
    attack.raise_fd_limit(4 * CONNECTIONS + 1024)  # inherited by slowhttptest


def _start_server(work: Path) -> attack.ServerProcess:
    root = work / "root"
    attack.make_docroot(root)  # index.html and a 1 MiB big.bin
    server = attack.ServerProcess(root, work, attack.Timeouts(
        TIMEOUT, TIMEOUT, TIMEOUT, TIMEOUT).argv())
    attack.fetch(server.port, "/")  # warm the cache and the pool before measuring
    attack.fetch(server.port, "/big.bin")
    return server


@pytest.fixture(scope="module")
def server(attack_tool: None, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[attack.ServerProcess]:
    """One server for the three single attacks: each must leave it as it found it."""
    sp = _start_server(tmp_path_factory.mktemp("attacks"))
    yield sp
    sp.kill()


def _run(server: attack.ServerProcess, name: str, tmp: Path, duration: int,
         stop_after_release: float | None = None) -> attack.AttackResult:
    chosen = next(a for a in attack.ATTACKS if a.name == name)
    result = attack.run_attack(
        server, chosen, connections=CONNECTIONS, rate=CONNECTIONS, duration=duration,
        release_wait=TIMEOUT + SLACK, workdir=tmp, probe_interval=PROBE_INTERVAL,
        stop_after_release=stop_after_release, min_seconds=4.0)
    print("\n" + attack.report(result))
    return result


def _entries(result: attack.AttackResult) -> list[tuple[str, int, int, float]]:
    """(path, status, body bytes, duration) of each access-log line the attack produced."""
    out = []
    for line in result.log_lines:
        m = attack.LOG_LINE.search(line)
        assert m, f"unparsable access-log line: {line!r}"
        out.append((m.group(2), int(m.group(3)), int(m.group(4)), float(line.rsplit(" ", 1)[1])))
    return out


def _assert_server_healthy(server: attack.ServerProcess, result: attack.AttackResult) -> None:
    assert server.alive(), server.stderr()[-2000:]
    assert "Traceback" not in server.stderr()
    growth = result.rss_max_kib - result.rss_before_kib
    assert growth < RSS_GROWTH_LIMIT_KIB, f"RSS grew by {growth} KiB"
    tail = [x.fds for x in result.samples[-10:]]
    assert result.samples[-1].fds <= result.fds_before + 3, (
        f"fds not released: last samples {tail}, now {attack.fd_count(server.pid)}, "
        f"sockets {dict(attack.server_socket_states(server.port))}")


def _assert_probes_served(result: attack.AttackResult, *, within: float | None) -> None:
    """Enough probes ran across the attack, and each got its page (within `within` s)."""
    assert len(result.probes) >= 10, len(result.probes)
    bad = [(p.path, p.detail) for p in result.probes if not p.complete]
    assert not bad, bad
    if within is not None:
        slow = [(p.path, round(p.latency, 3)) for p in result.probes if p.latency > within]
        assert not slow, slow


@pytest.mark.timeout(45)
def test_slowloris_is_cut_off_by_the_whole_head_timeout_with_408(
        server: attack.ServerProcess, tmp_path: Path) -> None:
    """1,000 slowloris connections (a header line every 2 s): each gets 408 header_timeout
    after its first byte, however it trickles; probes get `/` within 1 s throughout."""
    r = _run(server, "slowloris", tmp_path, duration=12)
    assert r.held_max >= CONNECTIONS, "slowhttptest never held its 1,000 connections"
    _assert_probes_served(r, within=attack.PROBE_LIMIT)
    _assert_server_healthy(server, r)
    # slowhttptest ends before its time limit only when every connection was closed on it.
    assert r.exit_status.startswith("No open connections"), r.exit_status
    assert r.released_after is not None and r.released_after <= RAMP + TIMEOUT + SLACK
    timed_out = [e for e in _entries(r) if e[1] == 408]
    assert len(timed_out) >= CONNECTIONS
    # The head's deadline counts from its first byte and is never extended by trickling.
    durations = sorted(e[3] for e in timed_out)
    assert TIMEOUT - 0.05 <= durations[0] and durations[-1] <= TIMEOUT + 1.5, \
        (durations[0], durations[-1])


@pytest.mark.timeout(45)
def test_slow_body_posts_are_answered_at_once_and_closed(
        server: attack.ServerProcess, tmp_path: Path) -> None:
    """1,000 slow-body POSTs (Content-Length 100000, a few bytes every 2 s): each gets its
    405 at once without the body being awaited, and is closed; probes stay under 1 s."""
    r = _run(server, "slow body", tmp_path, duration=12)
    _assert_probes_served(r, within=attack.PROBE_LIMIT)
    _assert_server_healthy(server, r)
    assert r.exit_status.startswith("No open connections"), r.exit_status
    assert r.released, "the server still holds slow-body connections"
    if r.released_after is not None:
        assert r.released_after <= RAMP + attack.Timeouts().linger + SLACK
    answered = [e for e in _entries(r) if e[1] == 405]
    assert len(answered) >= CONNECTIONS
    assert max(e[3] for e in answered) < 1.0  # answered before the body, not after it


@pytest.fixture(scope="module")
def slow_read(server: attack.ServerProcess,
              tmp_path_factory: pytest.TempPathFactory) -> attack.AttackResult:
    """One slow-read attack, shared by the tests below (ended 1 s after the server let go)."""
    return _run(server, "slow read", tmp_path_factory.mktemp("slow-read"), duration=20,
                stop_after_release=1.0)


@pytest.mark.timeout(50)
def test_slow_readers_are_dropped_after_the_send_timeout(
        server: attack.ServerProcess, slow_read: attack.AttackResult) -> None:
    """1,000 slow readers (512-byte window, 3 pipelined 1 MiB GETs): the server closes each
    once its response stalled for send_timeout, while slowhttptest still runs, frees
    every fd and file, and keeps serving probes."""
    r = slow_read
    assert r.held_max >= CONNECTIONS
    _assert_probes_served(r, within=None)  # latency: the test below
    _assert_server_healthy(server, r)
    assert r.released_by_server, "fds came back only when slowhttptest itself ended"
    assert r.released_after is not None
    # The per-connection bound is the log check below; this one allows for a slow ramp.
    assert r.released_after <= RAMP + TIMEOUT + 2 * SLACK, r.released_after
    # Each connection ends in a response cut short by the send timeout, logged with the
    # bytes that went out, and none is cut before the timeout.
    cut = [e for e in _entries(r) if e[0] == "/big.bin" and e[1] == 200
           and e[2] < attack.BIG_SIZE and e[3] >= TIMEOUT - 0.05]
    assert len(cut) >= CONNECTIONS, len(cut)
    assert max(e[3] for e in cut) <= TIMEOUT + SLACK


@pytest.mark.timeout(50)
def test_slow_readers_pin_bounded_kernel_memory_and_probes_stay_under_1s(
        slow_read: attack.AttackResult) -> None:
    """Under the slow-read attack each server socket's kernel send queue stays within
    512 KiB, and every probe gets `/` within 1 s."""
    r = slow_read
    assert r.sendq_max <= SENDQ_LIMIT, (
        f"{r.sendq_max // 1024} KiB queued on one socket, {r.sendq_total_max >> 20} MiB in "
        f"all; host TCP memory {r.tcp_mem_max_kib >> 10} MiB")
    _assert_probes_served(r, within=attack.PROBE_LIMIT)


@pytest.mark.timeout(60)
def test_sigterm_during_all_three_attacks_and_load_loses_no_response(
        attack_tool: None, tmp_path: Path) -> None:
    """All three attacks at once, four keep-alive clients and the probe; SIGTERM after
    5 s: exit 0, no response cut short, and every complete response in the access log."""
    sp = _start_server(tmp_path)
    try:
        r = attack.run_all_then_sigterm(sp, connections=CONNECTIONS, rate=CONNECTIONS,
                                        run_for=5.0, clients=4, workdir=tmp_path)
    finally:
        sp.kill()
    print("\n" + attack.report_shutdown(r))
    assert r.exit_code == 0, sp.stderr()[-2000:]
    assert not r.traceback
    assert r.complete >= 20, "the normal clients were not served"
    assert not r.cut, r.cut[:5]
    assert not r.missing, r.missing[:5]
    # Slow readers stall in SEND: the drain ends at their send timeout, within the grace.
    assert r.stop_seconds <= TIMEOUT + SLACK + 2, r.stop_seconds
