"""The cases: a case (bytes for one write, one HEAD flag per request), the request that
mutations change (Spec), the random source that builds requests (Gen), the registry of named
mutations, and generate(), which draws a seeded stream of cases from it.

The mutations are in the subpackage `mutations`, one module per topic; they register on
import, and the package's __init__ imports them, so MUTATIONS is complete whenever this
module is used.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .context import Context

HOST = b"127.0.0.1:8080"  # the valid Host of the cases (the same bytes go to both servers)


@dataclass(frozen=True)
class Case:
    """Bytes to send in one write. `name` is the mutation; `heads[i]` says whether the i-th
    request is a HEAD (its response has no body); `detail` says more (a pipeline's bad
    request)."""

    name: str
    data: bytes
    heads: tuple[bool, ...]
    detail: str = ""

    @property
    def requests(self) -> int:
        """How many requests the case meant to send."""
        return len(self.heads)


@dataclass
class Spec:
    """One request to render; mutations change its parts."""

    method: bytes = b"GET"
    target: bytes = b"/hello.txt"
    version: bytes = b"HTTP/1.1"
    fields: list[bytes] = field(default_factory=list)  # whole field lines, no line ends
    body: bytes = b""
    line: bytes | None = None  # a whole request line instead of method, target, version

    def render(self) -> bytes:
        """CRLF line ends (other line ends are Raw cases)."""
        line = self.line if self.line is not None else b" ".join(
            (self.method, self.target, self.version))
        return b"\r\n".join((line, *self.fields, b"")) + b"\r\n" + self.body

    @property
    def is_head(self) -> bool:
        return self.line is None and self.method == b"HEAD"


@dataclass(frozen=True)
class Raw:
    """Bytes a Spec cannot express (mixed line ends, a bare CR)."""

    data: bytes
    heads: tuple[bool, ...] = (False,)


Built = Spec | list[Spec] | Raw
T = TypeVar("T")

# Paths of the fixture that are served (200), and others.
FILE_PATHS = (b"/hello.txt", b"/notes.txt", b"/page.html", b"/image.png", b"/big.bin",
              b"/index.html", b"/sub/page.txt", b"/space%20name.txt", b"/50%25.txt")
OTHER_PATHS = (b"/", b"/sub/", b"/sub", b"/missing.txt", b"/sub/missing.html")
BENIGN_FIELDS = (b"User-Agent: difftest/1.0", b"Accept: */*", b"Accept-Language: en",
                 b"Accept-Encoding: identity", b"Cache-Control: no-cache")


class Gen:
    """The random source of one case and helpers to build valid requests."""

    def __init__(self, rng: random.Random, ctx: Context) -> None:
        self.rng = rng
        self.ctx = ctx
        self.detail = ""  # what a builder wants the report to say about its case

    def path(self) -> bytes:
        return self.rng.choice(FILE_PATHS if self.rng.random() < 0.8 else OTHER_PATHS)

    def method(self) -> bytes:
        return b"HEAD" if self.rng.random() < 0.2 else b"GET"

    def spec(self, *, method: bytes | None = None, target: bytes | None = None,
             version: bytes = b"HTTP/1.1", host: Sequence[bytes] | None = None,
             fields: Sequence[bytes] = (), body: bytes = b"", closing: bool = True) -> Spec:
        """A valid request, but for what the arguments change: `host` the Host lines (by
        default one valid Host), `fields` placed at a random spot among a few benign ones;
        `closing` lets one in ten single requests ask to close."""
        lines = [self.rng.choice(BENIGN_FIELDS) for _ in range(self.rng.randrange(3))]
        for line in fields:
            lines.insert(self.rng.randrange(len(lines) + 1), line)
        if closing and self.rng.random() < 0.1:
            lines.append(b"Connection: close")
        hosts = [b"Host: " + HOST] if host is None else list(host)
        return Spec(method or self.method(), target or self.path(), version,
                    [*hosts, *lines], body)

    def pick(self, choices: Sequence[T]) -> T:
        return self.rng.choice(choices)


Builder = Callable[[Gen], Built]
MUTATIONS: dict[str, Builder] = {}


def mutation(name: str) -> Callable[[Builder], Builder]:
    """Register a builder of cases under the mutation's name."""
    def register(builder: Builder) -> Builder:
        assert name not in MUTATIONS, name
        MUTATIONS[name] = builder
        return builder
    return register


def register_table(table: Mapping[str, Sequence[T]], make: Callable[[Gen, T], Built]) -> None:
    """Register one mutation per row of `table`: a random choice of the row, made a case."""
    def build(choices: Sequence[T], g: Gen) -> Built:
        return make(g, g.pick(choices))

    for name, choices in table.items():
        mutation(name)(functools.partial(build, choices))


def build_case(name: str, g: Gen) -> Case:
    """The mutation `name` made into a case (bytes, one HEAD flag per request)."""
    g.detail = ""
    built = MUTATIONS[name](g)
    detail = g.detail
    if isinstance(built, Raw):
        return Case(name, built.data, built.heads, detail)
    specs = built if isinstance(built, list) else [built]
    return Case(name, b"".join(spec.render() for spec in specs),
                tuple(spec.is_head for spec in specs), detail)


def generate(seed: int, count: int, ctx: Context) -> list[Case]:
    """`count` cases from `seed`: each a mutation drawn uniformly, built from the same
    random stream (so a seed and a context always give the same bytes)."""
    rng = random.Random(seed)
    g = Gen(rng, ctx)
    names = sorted(MUTATIONS)
    return [build_case(rng.choice(names), g) for _ in range(count)]
