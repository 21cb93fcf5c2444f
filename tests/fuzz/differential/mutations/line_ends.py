"""Mutations of the line ends: bare LF, bare CR, mixed, LF CR, and line ends before the
request."""
from __future__ import annotations

from ..cases import Built, Gen, Raw, mutation


def _lines_of(g: Gen) -> list[bytes]:
    spec = g.spec(method=b"GET", closing=False)
    return [b" ".join((spec.method, spec.target, spec.version)), *spec.fields]


@mutation("eol-bare-lf")
def _bare_lf(g: Gen) -> Built:
    return Raw(b"\n".join(_lines_of(g)) + b"\n\n")


@mutation("eol-mixed")
def _mixed_eol(g: Gen) -> Built:
    lines = _lines_of(g)
    return Raw(b"".join(line + g.pick((b"\r\n", b"\n")) for line in lines) + g.pick(
        (b"\r\n", b"\n")))


@mutation("eol-bare-cr")
def _bare_cr(g: Gen) -> Built:
    """Bare CR as the line end, everywhere or on one field line (RFC 9112 §2.2)."""
    lines = _lines_of(g)
    if g.rng.random() < 0.5:
        return Raw(b"\r".join(lines) + b"\r\r\n\r\n")
    where = g.rng.randrange(1, len(lines) + 1)
    lines.insert(where, b"X-Test: 1\rX-Other: 2")
    return Raw(b"\r\n".join(lines) + b"\r\n\r\n")


@mutation("eol-cr-before-request")
def _cr_before(g: Gen) -> Built:
    return Raw(g.pick((b"\r", b"\r\r\n", b" \r\n")) + b"\r\n".join(_lines_of(g)) + b"\r\n\r\n")


@mutation("eol-empty-lines-before-request")
def _empty_lines_before(g: Gen) -> Built:
    return Raw(g.pick((b"\r\n", b"\n", b"\r\n\r\n")) + b"\r\n".join(_lines_of(g)) + b"\r\n\r\n")


@mutation("eol-lf-cr")
def _lf_cr(g: Gen) -> Built:
    """LF CR in place of CR LF: the CR then starts the next line."""
    return Raw(b"\n\r".join(_lines_of(g)) + b"\n\r\n\r")
