"""What the generator knows about the servers: each file's ETags, asked of the running
servers (or made up, offline), and the common Last-Modified date."""
from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import dataclass

from .fixture import FIXED_MTIME, fixture_files


@dataclass(frozen=True)
class Context:
    """Facts the cases use: each file's ETags (one per server, so a list of them matches on
    both) and the common Last-Modified date."""

    etags: Mapping[bytes, tuple[bytes, ...]]
    last_modified: int = FIXED_MTIME

    @staticmethod
    def offline() -> Context:
        """For generating cases without servers (the pure tests)."""
        return Context({b"/hello.txt": (b'"ev-hello"', b'"ng-hello"'),
                        b"/big.bin": (b'"ev-big"', b'"ng-big"')})


def probe_context(ports: Mapping[str, int]) -> Context:
    """Ask each server for the ETags of the files the conditional cases use, and check that
    both serve the fixture (a broken setup must not pass for agreement)."""
    expected = fixture_files()
    etags: dict[bytes, list[bytes]] = {}
    for name, port in ports.items():
        for path in (b"/hello.txt", b"/big.bin"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path.decode())
                resp = conn.getresponse()
                body = resp.read()
                etag = resp.getheader("ETag")
            finally:
                conn.close()
            if resp.status != 200 or body != expected[path.decode().lstrip("/")] or not etag:
                raise RuntimeError(f"{name} does not serve {path!r}: {resp.status}, {etag}")
            etags.setdefault(path, []).append(etag.encode())
    return Context({path: tuple(tags) for path, tags in etags.items()})
