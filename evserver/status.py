"""The status page's data (`--status-path`): the charts' history, and the metrics as JSON.

Owns: `History` (the last minutes, sampled), `merge_history()`, `render_json()`,
`HISTORY_STEP`, `HISTORY_SAMPLES`. Imports `metrics`. `statuspage` draws the page.
"""
from __future__ import annotations

import json
from collections import deque

from .metrics import Snapshot

HISTORY_STEP = 2.0  # seconds between samples
HISTORY_SAMPLES = 300  # ten minutes of them


class History:
    """Samples of the totals every HISTORY_STEP seconds, at wall-clock times that are
    multiples of the step (so the samples of several workers line up and add up)."""

    def __init__(self, size: int = HISTORY_SAMPLES, step: float = HISTORY_STEP) -> None:
        self.step = step
        self._samples: deque[tuple[float, int, int, int]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, wall: float, requests: int, body_bytes: int, connections: int) -> None:
        """A sample taken at `wall` (seconds since the epoch), filed under its step."""
        when = round(wall / self.step) * self.step
        if self._samples and self._samples[-1][0] >= when:
            self._samples.pop()  # a late timer: the newer sample replaces the older
        self._samples.append((when, requests, body_bytes, connections))

    def extend(self, earlier: object) -> None:
        """Begin with the samples of a `json()` (a replaced worker's, from the board)."""
        if isinstance(earlier, dict):
            for sample in earlier.get("samples", []):
                self._samples.append(tuple(sample))  # the deque keeps the newest

    def json(self) -> dict[str, object]:
        return {"step": self.step, "samples": [list(sample) for sample in self._samples]}


def merge_history(histories: list[object]) -> dict[str, object]:
    """Several workers' `History.json()`s as one: the samples of each time added up (a
    time some worker has no sample for is left out, so a worker's restart shows no dip)."""
    step = HISTORY_STEP
    by_time: dict[float, list[float]] = {}
    seen: dict[float, int] = {}
    count = 0
    for history in histories:
        if not isinstance(history, dict):
            continue
        count += 1
        step = float(history.get("step", step))
        for when, *values in history.get("samples", []):
            sums = by_time.setdefault(when, [0, 0, 0])
            for i, value in enumerate(values[:3]):
                sums[i] += value
            seen[when] = seen.get(when, 0) + 1
    samples = [[when, *sums] for when, sums in sorted(by_time.items()) if seen[when] == count]
    return {"step": step, "samples": samples}


def render_json(snapshot: Snapshot) -> bytes:
    return json.dumps(snapshot, indent=2, sort_keys=True).encode() + b"\n"
