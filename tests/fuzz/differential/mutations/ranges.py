"""Ranges on big.bin (or hello.txt): single, open, suffix, multiple, overlapping,
unsatisfiable, malformed, too many, with HEAD."""
from __future__ import annotations

from collections.abc import Sequence

from ..cases import Built, Gen, Spec, mutation, register_table


def _range_spec(g: Gen, value: bytes, *, method: bytes = b"GET",
                extra: Sequence[bytes] = ()) -> Spec:
    return g.spec(method=method, target=g.pick((b"/big.bin", b"/big.bin", b"/hello.txt")),
                  fields=[b"Range: " + value, *extra])


RANGES: dict[str, Sequence[bytes]] = {
    "range-single": (b"bytes=0-99", b"bytes=100-199", b"bytes=5-5", b"bytes=0-0"),
    "range-open": (b"bytes=100-", b"bytes=0-", b"bytes=12-"),
    "range-suffix": (b"bytes=-100", b"bytes=-1", b"bytes=-999999"),
    "range-multi": (b"bytes=0-9,20-29", b"bytes=0-0,-1", b"bytes=0-4,6-8,10-11"),
    "range-overlapping": (b"bytes=0-50,40-99", b"bytes=0-9,0-9", b"bytes=0-,5-10"),
    "range-unsatisfiable": (b"bytes=999999-", b"bytes=204800-204900", b"bytes=-0",
                            b"bytes=999999-1000000"),
    "range-malformed": (b"bytes=abc", b"bytes=", b"bytes=-", b"bytes=5-3", b"bytes 0-5",
                        b"bytes=0-5;", b"bytes=--1", b"bytes=1-2-3", b"bytes=0x1-2"),
    "range-whitespace": (b"bytes=0-5, 10-20", b"bytes=0-5 ,10-20", b"bytes = 0-5",
                         b"bytes= 0-5", b"bytes=0 -5"),
    "range-other-unit": (b"items=0-5", b"Bytes=0-5", b"none"),
    "range-many": (b"bytes=" + b",".join(b"%d-%d" % (i * 20, i * 20 + 9) for i in range(150)),),
}


def _range(g: Gen, value: bytes) -> Built:
    return _range_spec(g, value)


register_table(RANGES, _range)


@mutation("range-two-lines")
def _range_two_lines(g: Gen) -> Built:
    spec = _range_spec(g, g.pick((b"bytes=0-9", b"bytes=5-")))
    spec.fields.append(b"Range: " + g.pick((b"bytes=20-29", b"bytes=0-9", b"bytes=-5")))
    return spec


@mutation("range-head")
def _range_head(g: Gen) -> Built:
    return _range_spec(g, g.pick((b"bytes=0-9", b"bytes=-5")), method=b"HEAD")
