"""The workers' board (shared memory) and the status page's history, without a server."""
from __future__ import annotations

import json
import os
import struct

import pytest

from evserver.board import Board, Seat
from evserver.status import History, merge_history


def test_a_post_is_read_back_and_the_latest_wins() -> None:
    board = Board(2, slot_size=4096)
    assert board.read(0) is None and board.read(1) is None
    assert board.post(1, {"a": 1})
    assert board.post(1, {"a": 2, "b": [1, 2]})
    assert board.read(1) == {"a": 2, "b": [1, 2]} and board.read(0) is None
    board.close()


def test_a_snapshot_too_big_for_its_slot_is_left_out() -> None:
    board = Board(1, slot_size=64)
    assert board.post(0, {"a": 1})
    assert not board.post(0, {"a": "x" * 100})
    assert board.read(0) == {"a": 1}  # the previous one stays whole


def test_a_slot_being_written_is_not_read() -> None:
    """An odd sequence is a write in progress: the reader tries again, then gives up."""
    board = Board(1, slot_size=256)
    board.post(0, {"a": 1})
    memory = board._memory
    sequence, length = struct.unpack_from("<QI", memory, 0)
    struct.pack_into("<QI", memory, 0, sequence + 1, length)
    assert board.read(0) is None
    struct.pack_into("<QI", memory, 0, sequence + 2, length)
    assert board.read(0) == {"a": 1}


def test_a_torn_payload_is_not_taken_for_a_snapshot() -> None:
    board = Board(1, slot_size=256)
    board.post(0, {"a": 1})
    board._memory[12:14] = b"}{"  # as if another writer were halfway through
    assert board.read(0) is None


def test_a_forked_worker_posts_and_its_parent_reads() -> None:
    """The memory is shared across fork (MAP_SHARED): what --workers relies on."""
    board = Board(2, slot_size=4096)
    pid = os.fork()
    if pid == 0:  # the child: post, then leave without running the test's teardown
        code = 0 if board.post(1, {"worker": os.getpid()}) else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert board.read(1) == {"worker": pid}
    assert Seat(board, 0).others() == [{"worker": pid}]
    assert Seat(board, 1).others() == []


# -- the history of the charts ---------------------------------------------------------------

def test_samples_are_filed_at_multiples_of_the_step() -> None:
    history = History(size=3, step=2.0)
    history.add(100.9, 1, 10, 1)
    history.add(103.1, 5, 50, 2)
    assert history.json() == {"step": 2.0, "samples": [[100.0, 1, 10, 1], [104.0, 5, 50, 2]]}


def test_a_late_sample_replaces_the_one_of_its_step_and_old_ones_go() -> None:
    history = History(size=3, step=2.0)
    history.add(100.0, 1, 1, 1)
    history.add(100.4, 2, 2, 2)  # the same step: replaced
    for when in (102.0, 104.0, 106.0):
        history.add(when, 3, 3, 3)
    assert [s[0] for s in history.json()["samples"]] == [102.0, 104.0, 106.0]
    assert len(history) == 3


def test_a_replacement_worker_begins_with_its_predecessors_samples() -> None:
    old = History(size=4, step=2.0)
    for when in (0.0, 2.0, 4.0, 6.0):
        old.add(when, int(when), 0, 0)
    new = History(size=2, step=2.0)
    new.extend(old.json())
    new.extend("not a history")
    assert new.json()["samples"] == [[4.0, 4, 0, 0], [6.0, 6, 0, 0]]


def test_workers_histories_add_up_at_the_times_all_of_them_have() -> None:
    a = {"step": 2.0, "samples": [[0.0, 1, 10, 1], [2.0, 2, 20, 1], [4.0, 3, 30, 2]]}
    b = {"step": 2.0, "samples": [[2.0, 5, 50, 3], [4.0, 6, 60, 0]]}
    assert merge_history([a, b, None]) == {
        "step": 2.0, "samples": [[2.0, 7, 70, 4], [4.0, 9, 90, 2]]}
    assert merge_history([]) == {"step": 2.0, "samples": []}


@pytest.mark.parametrize("step", [1.0, 5.0])
def test_the_step_travels_with_the_history(step: float) -> None:
    history = History(step=step)
    history.add(10.0, 0, 0, 0)
    assert merge_history([history.json()])["step"] == step


def test_each_post_moves_its_slots_sequence_by_two() -> None:
    """The protocol: even when whole, odd while written; each slot its own sequence."""
    board = Board(2, slot_size=256)
    for _ in range(3):
        board.post(0, {"a": 1})
    board.post(1, {"b": 2})
    assert struct.unpack_from("<Q", board._memory, 0)[0] == 6
    assert struct.unpack_from("<Q", board._memory, 256)[0] == 2
    assert board.read(0) == {"a": 1} and board.read(1) == {"b": 2}


def test_a_snapshot_that_just_fits_is_posted_compact() -> None:
    snapshot = {"a": [1, 2], "b": "x"}
    compact = json.dumps(snapshot, separators=(",", ":")).encode()
    board = Board(1, slot_size=12 + len(compact))  # the head: sequence and length
    assert board.post(0, snapshot) and board.read(0) == snapshot


def test_a_slot_holding_json_that_is_no_snapshot_reads_as_none() -> None:
    board = Board(1, slot_size=256)
    board._memory[12:16] = b"[1] "
    struct.pack_into("<QI", board._memory, 0, 2, 3)
    assert board.read(0) is None


def test_a_history_without_step_or_samples_merges_to_the_defaults() -> None:
    good = {"step": 2.0, "samples": [[0.0, 1, 2, 3, 99]]}  # a field more: ignored
    assert merge_history([None, good]) == {"step": 2.0, "samples": [[0.0, 1, 2, 3]]}
    assert merge_history([{"samples": [[0.0, 1, 1, 1]]}])["step"] == 2.0
    assert merge_history([{"step": 5.0}]) == {"step": 5.0, "samples": []}
    history = History()
    history.extend({"step": 2.0})
    assert len(history) == 0


def test_a_sample_of_the_same_step_replaces_the_last_at_once() -> None:
    history = History(step=2.0)
    history.add(100.0, 500, 9000, 1)  # counts far above the times
    history.add(100.4, 501, 9001, 2)
    assert history.json()["samples"] == [[100.0, 501, 9001, 2]]
    history.add(102.0, 502, 9002, 3)
    assert [s[0] for s in history.json()["samples"]] == [100.0, 102.0]


def test_the_sequence_never_goes_back_after_a_writer_died_midway() -> None:
    """A reader compares the sequence before and after its copy: were it to go back, an
    old value could match by chance. After an odd one the next post starts above it."""
    board = Board(1, slot_size=256)
    struct.pack_into("<QI", board._memory, 0, 7, 0)  # a writer died after marking
    board.post(0, {"a": 1})
    assert struct.unpack_from("<Q", board._memory, 0)[0] == 10
    assert board.read(0) == {"a": 1}
