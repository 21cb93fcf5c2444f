"""Layer 2: the file cache's validity period (--cache-ttl) as a connection sees it, on the
fake loop's manual clock: within the TTL a cached file is served from memory with no pool
job; once it has passed, the pool revalidates it and the change on disk shows.

(These replace end-to-end tests that slept past a 0.2 s TTL.)
"""
from __future__ import annotations

import gzip
import os

from tests.wire import request

from .rig import HELLO, Rig

NEW = b"version two, longer\n"


def past_ttl(rig: Rig) -> None:
    rig.loop.advance(rig.owner.cfg.cache_ttl + 0.001)


def test_within_the_ttl_the_cached_file_is_served_and_after_it_the_changed_one(
        rig: Rig) -> None:
    """A file rewritten in place: until the TTL passes the cache answers (no pool job,
    the old bytes); just after it one pool job revalidates, and the new content goes out
    with its own length and a new ETag."""
    first = request("/hello.txt")
    rig.serve(first)
    assert len(rig.loop.jobs) == 1
    (rig.docroot / "hello.txt").write_bytes(NEW)
    rig.loop.advance(rig.owner.cfg.cache_ttl - 0.001)
    rig.serve(first)
    assert len(rig.loop.jobs) == 1  # still fresh: from memory
    past_ttl(rig)
    rig.serve(first)
    assert len(rig.loop.jobs) == 2  # stale: revalidated in the pool
    old, within, fresh = rig.replies()
    assert old.body == within.body == HELLO and within.header("etag") == old.header("etag")
    assert (fresh.status, fresh.body) == (200, NEW)
    assert fresh.header("content-length") == str(len(NEW))
    assert fresh.header("etag") != old.header("etag")
    rig.serve(first)  # the revalidated entry is fresh again
    assert len(rig.loop.jobs) == 2 and rig.replies()[-1].body == NEW


def test_a_same_size_file_replaced_by_rename_is_noticed_after_the_ttl(rig: Rig) -> None:
    """Same size, an older mtime, a new inode (replaced by rename): the revalidation after
    the TTL still sees the change."""
    (rig.docroot / "f.txt").write_bytes(b"AAAA\n")
    rig.serve(request("/f.txt"))
    (rig.docroot / "new.tmp").write_bytes(b"BBBB\n")
    os.utime(rig.docroot / "new.tmp", (1_000_000_000, 1_000_000_000))
    os.replace(rig.docroot / "new.tmp", rig.docroot / "f.txt")
    rig.serve(request("/f.txt"))
    past_ttl(rig)
    rig.serve(request("/f.txt"))
    assert [r.body for r in rig.replies()] == [b"AAAA\n", b"AAAA\n", b"BBBB\n"]


def test_a_deleted_file_is_404_after_the_ttl_and_leaves_the_cache(rig: Rig) -> None:
    """A cached file deleted: 404 once the TTL has passed, its entry dropped, and 404 again
    on the next request (nothing stale is served from memory)."""
    (rig.docroot / "gone.txt").write_bytes(b"here\n")
    rig.serve(request("/gone.txt"))
    (rig.docroot / "gone.txt").unlink()
    past_ttl(rig)
    rig.serve(request("/gone.txt"))
    assert len(rig.owner.cache) == 0
    rig.serve(request("/gone.txt"))
    assert [r.status for r in rig.replies()] == [200, 404, 404]
    assert [status for _, status, _ in rig.log()] == [200, 404, 404]


def test_a_new_precompressed_sibling_is_served_with_vary_after_the_ttl(rig: Rig) -> None:
    """A .gz added later: the cached identity entry is served until the TTL passes; after
    it the revalidation finds the sibling, sent with Content-Encoding and Vary."""
    (rig.docroot / "plain.css").write_bytes(b"body{color:red}\n")
    gz = request("/plain.css", headers="Accept-Encoding: gzip\r\n")
    rig.serve(gz)
    encoded = gzip.compress(b"body{color:red}\n", mtime=0)
    (rig.docroot / "plain.css.gz").write_bytes(encoded)
    rig.serve(gz)
    past_ttl(rig)
    rig.serve(gz)
    rig.serve(request("/plain.css"))
    before, within, after, identity = rig.replies()
    for reply in (before, within):
        assert reply.header("vary") is None and reply.header("content-encoding") is None
    assert after.header("content-encoding") == "gzip" and after.body == encoded
    assert after.header("vary") == "Accept-Encoding"
    assert identity.header("vary") == "Accept-Encoding"
    assert identity.body == b"body{color:red}\n"
