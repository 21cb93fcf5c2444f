"""Requests without a mutation: a valid GET, HEAD, and HTTP/1.0 keep-alive."""
from __future__ import annotations

from ..cases import Built, Gen, mutation


@mutation("valid-get")
def _valid_get(g: Gen) -> Built:
    return g.spec(method=b"GET")


@mutation("valid-head")
def _valid_head(g: Gen) -> Built:
    return g.spec(method=b"HEAD")


@mutation("valid-http10-keep-alive")
def _valid_http10_keep_alive(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Connection: keep-alive"], closing=False)
