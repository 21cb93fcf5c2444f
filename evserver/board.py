"""`--workers N`: where each worker posts its numbers for the others to read.

Owns: `Board`, `Seat`. Imports nothing from evserver. The supervisor maps the board
(shared memory, anonymous) before it forks; each worker gets a seat (one slot) and posts
its snapshot there as JSON every sampling step and whenever it answers a scrape. Whichever
worker the kernel hands a scrape to then adds up every slot: a scrape sees the whole server.

A slot is a sequence lock: the writer makes the sequence odd, writes, makes it even
again; a reader that sees an odd or changed sequence reads again. Only one process writes
a slot, so writers need no lock between them.
"""
from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass

SLOT_SIZE = 256 * 1024  # a snapshot with its ten minutes of history is about 20 KiB
_HEAD = struct.Struct("<QI")  # sequence, length of the JSON that follows
_READ_ATTEMPTS = 100


class Board:
    """`slots` slots of shared memory, inherited by every process forked after it."""

    def __init__(self, slots: int, slot_size: int = SLOT_SIZE) -> None:
        self.slots = slots
        self.slot_size = slot_size
        self._memory = mmap.mmap(-1, slots * slot_size)  # MAP_SHARED | MAP_ANONYMOUS

    def post(self, slot: int, snapshot: dict[str, object]) -> bool:
        """Write a snapshot to `slot`; False if it does not fit (it is then left out)."""
        data = json.dumps(snapshot, separators=(",", ":")).encode()
        if _HEAD.size + len(data) > self.slot_size:
            return False
        base = slot * self.slot_size
        memory = self._memory
        sequence = _HEAD.unpack_from(memory, base)[0]
        sequence += sequence % 2  # odd: a worker died writing here; its successor goes on
        _HEAD.pack_into(memory, base, sequence + 1, 0)  # odd: being written
        memory[base + _HEAD.size:base + _HEAD.size + len(data)] = data
        _HEAD.pack_into(memory, base, sequence + 2, len(data))
        return True

    def read(self, slot: int) -> dict[str, object] | None:
        """The last snapshot posted to `slot`, or None if none was (or it stays torn)."""
        base = slot * self.slot_size
        memory = self._memory
        for _ in range(_READ_ATTEMPTS):
            sequence, length = _HEAD.unpack_from(memory, base)
            if sequence % 2:
                continue
            data = memory[base + _HEAD.size:base + _HEAD.size + length]
            if _HEAD.unpack_from(memory, base)[0] != sequence:
                continue
            if sequence == 0:
                return None
            try:
                snapshot = json.loads(data)
            except ValueError:
                continue
            return snapshot if isinstance(snapshot, dict) else None
        return None

    def close(self) -> None:
        self._memory.close()


@dataclass(frozen=True)
class Seat:
    """A worker's place on the board."""

    board: Board
    slot: int

    def others(self) -> list[dict[str, object]]:
        """What the other workers posted last."""
        found = (self.board.read(slot) for slot in range(self.board.slots) if slot != self.slot)
        return [snapshot for snapshot in found if snapshot is not None]
