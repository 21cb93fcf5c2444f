"""Layer 2: compression as a connection carries it out, on the fakes: a variant encoded once
in the pool and then served from the cache, one job for a herd, the stream of a file too
large to keep encoded (chunked, or ended by closing for HTTP/1.0), ranges and conditionals
of each variant, no-transform, HEAD, and the savings counted."""
from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from evserver.connection import Connection
from evserver.loop import READ
from evserver.metrics import compression_summary
from evserver.phases import Phase
from tests.wire import parse_responses, request

from .fakes import FakeSocket
from .rig import PEER, Rig
from .test_connection import assert_kept_alive, assert_lingering

SCRIPT = b"".join(b"function f%d(a) { return a + %d; }\n" % (i, i * 7) for i in range(300))
BIG = SCRIPT * 40  # about 400 KB: over a quarter of the budget below, so it streams
BUDGET = 400_000
GZIP = "Accept-Encoding: gzip\r\n"


@pytest.fixture
def rig(make_rig: Callable[..., Rig], docroot: Path) -> Rig:
    (docroot / "app.js").write_bytes(SCRIPT)
    (docroot / "big.js").write_bytes(BIG)
    return make_rig(compress_cache_bytes=BUDGET, compress_encodings="gzip")


def get(target: str, headers: str = GZIP, **kwargs: object) -> bytes:
    return request(target, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_a_variant_is_encoded_once_then_served_from_the_cache(rig: Rig) -> None:
    rig.serve(get("/app.js"))
    rig.serve(get("/app.js"))
    first, second = rig.replies()
    assert len(rig.loop.jobs) == 1  # the second is the fast path: no pool job
    assert first.head[first.head.index(b"\r\n", 20):] == second.head[
        second.head.index(b"\r\n", 20):]  # the same fields after the status and date lines
    assert gzip.decompress(second.body) == SCRIPT
    assert second.header("content-encoding") == "gzip"
    assert second.header("vary") == "Accept-Encoding"
    assert second.header("content-length") == str(len(second.body))
    assert rig.owner.cache.encoded_entries == 1
    assert rig.log()[1] == (b"GET /app.js HTTP/1.1", 200, len(second.body))
    assert_kept_alive(rig)


def test_the_savings_are_counted_for_whole_encoded_bodies_only(rig: Rig) -> None:
    rig.serve(get("/app.js"))
    encoded = len(rig.replies()[0].body)
    etag = rig.replies()[0].header("etag")
    rig.serve(get("/app.js", method="HEAD"))
    rig.serve(get("/app.js", headers=GZIP + f"If-None-Match: {etag}\r\n"))
    rig.serve(get("/app.js", headers=GZIP + "Range: bytes=0-9\r\n"))
    rig.serve(request("/app.js"))
    counted = rig.owner.counters
    assert (counted.encoded_responses, counted.identity_bytes, counted.encoded_bytes) == (
        1, len(SCRIPT), encoded)
    assert compression_summary(counted.snapshot())["bytes_saved"] == len(SCRIPT) - encoded


def test_a_herd_of_first_requests_starts_one_encoding_job(rig: Rig) -> None:
    others = []
    for _ in range(3):
        sock = FakeSocket(rig.journal)
        conn = Connection(sock, PEER, rig.owner, sendfile=sock.sendfile)  # type: ignore[arg-type]
        conn.start()
        others.append((sock, conn))
    rig.receive(get("/app.js"))
    for sock, conn in others:
        sock.feed(get("/app.js"))
        conn.on_event(READ)
    assert len(rig.loop.undelivered()) == 1
    rig.settle()
    for sock, _ in [(rig.sock, rig.conn), *others]:
        (reply,) = parse_responses(bytes(sock.sent))
        assert gzip.decompress(reply.body) == SCRIPT
    assert len(rig.loop.jobs) == 1


def test_the_identity_variant_and_its_304_carry_vary(rig: Rig) -> None:
    rig.serve(request("/app.js"))
    (identity,) = rig.replies()
    rig.serve(request("/app.js", headers=f"If-None-Match: {identity.header('etag')}\r\n"))
    plain, not_modified = rig.replies()
    assert plain.body == SCRIPT and plain.header("content-encoding") is None
    assert not_modified.status == 304 and not_modified.header("vary") == "Accept-Encoding"


def test_each_representation_validates_only_itself(rig: Rig) -> None:
    """The encoded tag does not make the identity bytes 304, nor the reverse."""
    rig.serve(get("/app.js"))
    rig.serve(request("/app.js"))
    encoded_tag, identity_tag = (r.header("etag") for r in rig.replies())
    assert encoded_tag != identity_tag and encoded_tag is not None
    assert encoded_tag.endswith('-gzip6"')
    rig.serve(request("/app.js", headers=f"If-None-Match: {encoded_tag}\r\n"))
    rig.serve(get("/app.js", headers=GZIP + f"If-None-Match: {identity_tag}\r\n"))
    rig.serve(get("/app.js", headers=GZIP + f"If-None-Match: {encoded_tag}\r\n"))
    identity, encoded, not_modified = rig.replies()[2:]
    assert (identity.status, identity.body) == (200, SCRIPT)
    assert encoded.status == 200 and gzip.decompress(encoded.body) == SCRIPT
    assert not_modified.status == 304 and not_modified.header("etag") == encoded_tag
    assert not_modified.header("content-encoding") is None  # a 304 has no content


def test_ranges_of_a_cached_variant_are_ranges_of_its_encoded_bytes(rig: Rig) -> None:
    rig.serve(get("/app.js"))
    whole = rig.replies()[0]
    tag = whole.header("etag")
    rig.serve(get("/app.js", headers=GZIP + f"Range: bytes=10-19\r\nIf-Range: {tag}\r\n"))
    part = rig.replies()[1]
    assert part.status == 206 and part.body == whole.body[10:20]
    assert part.header("content-encoding") == "gzip"
    assert part.header("content-range") == f"bytes 10-19/{len(whole.body)}"


def test_head_has_the_fields_of_get_for_each_variant(rig: Rig) -> None:
    for target, headers in [("/app.js", GZIP), ("/app.js", ""), ("/big.js", GZIP)]:
        rig.serve(request(target, headers=headers))
        rig.serve(request(target, headers=headers, method="HEAD"))
    replies = rig.replies(head_only=(False, True) * 3)
    for got, head in zip(replies[::2], replies[1::2], strict=True):
        assert {k: v for k, v in got.headers.items() if k != "date"} == {
            k: v for k, v in head.headers.items() if k != "date"}
        assert head.body == b""


def test_a_large_file_is_encoded_as_it_is_sent_in_chunks(rig: Rig) -> None:
    rig.serve(get("/big.js"))
    (reply,) = rig.replies()
    assert reply.header("transfer-encoding") == "chunked"
    assert reply.header("content-length") is None and reply.header("accept-ranges") is None
    assert reply.header("content-encoding") == "gzip"
    assert gzip.decompress(reply.body) == BIG
    assert rig.owner.cache.encoded_entries == 0  # nothing held in memory
    sent = len(rig.sock.sent) - len(reply.head)
    assert rig.log() == [(b"GET /big.js HTTP/1.1", 200, sent)]
    counted = rig.owner.counters
    assert (counted.encoded_responses, counted.identity_bytes) == (1, len(BIG))
    assert counted.encoded_bytes < sent  # without the chunks' framing
    assert_kept_alive(rig)


def test_the_stream_is_read_by_the_pool_one_step_at_a_time(rig: Rig) -> None:
    rig.receive(get("/big.js"))
    rig.run_jobs()  # the load: the file opened, nothing encoded yet
    assert rig.phase is Phase.WAIT_CHUNK
    rig.run_jobs()  # the first step of 256 KiB
    assert rig.phase is Phase.WAIT_CHUNK and len(rig.loop.jobs) == 3
    rig.settle()
    assert gzip.decompress(rig.replies()[0].body) == BIG


def test_a_stream_for_http_10_ends_by_closing(rig: Rig) -> None:
    rig.serve(get("/big.js", headers=GZIP + "Connection: keep-alive\r\n", version="HTTP/1.0"))
    head, _, body = bytes(rig.sock.sent).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"Connection: close" in head
    assert gzip.decompress(body) == BIG
    assert_lingering(rig)


def test_a_range_of_a_streamed_file_is_a_range_of_the_file_itself(rig: Rig) -> None:
    rig.serve(get("/big.js", headers=GZIP + "Range: bytes=5-14\r\n"))
    (part,) = rig.replies()
    assert part.status == 206 and part.body == BIG[5:15]
    assert part.header("content-encoding") is None
    assert part.header("vary") == "Accept-Encoding"


def test_a_streamed_variant_has_its_304(rig: Rig) -> None:
    rig.serve(get("/big.js"))
    tag = rig.replies()[0].header("etag")
    rig.serve(get("/big.js", headers=GZIP + f"If-None-Match: {tag}\r\n"))
    not_modified = rig.replies()[1]
    assert not_modified.status == 304 and not_modified.header("etag") == tag
    assert not_modified.header("vary") == "Accept-Encoding"


def test_a_streamed_variant_answers_if_modified_since(rig: Rig) -> None:
    rig.serve(get("/big.js"))
    modified = rig.replies()[0].header("last-modified")
    rig.serve(get("/big.js", headers=GZIP + f"If-Modified-Since: {modified}\r\n"))
    assert rig.replies()[1].status == 304


def test_a_file_that_shrinks_while_streamed_ends_without_its_last_chunk(
        rig: Rig, docroot: Path) -> None:
    rig.receive(get("/big.js"))
    rig.run_jobs()  # opened
    rig.run_jobs()  # the first step sent
    (docroot / "big.js").open("r+b").truncate(300_000)
    rig.settle()
    assert not bytes(rig.sock.sent).endswith(b"0\r\n\r\n")
    assert_lingering(rig)
    assert rig.owner.counters.encoded_responses == 0


@pytest.mark.parametrize("cache_control", ["no-transform", "max-age=0, No-Transform"])
def test_no_transform_in_the_request_gets_identity(rig: Rig, cache_control: str) -> None:
    rig.serve(get("/app.js", headers=GZIP + f"Cache-Control: {cache_control}\r\n"))
    (reply,) = rig.replies()
    assert reply.body == SCRIPT and reply.header("content-encoding") is None
    assert reply.header("vary") == "Accept-Encoding"


def test_another_cache_control_does_not_stop_encoding(rig: Rig) -> None:
    rig.serve(get("/app.js", headers=GZIP + "Cache-Control: no-cache\r\n"))
    assert rig.replies()[0].header("content-encoding") == "gzip"


def test_an_encoded_variant_over_tls_goes_out_too(make_tls: Callable[..., Rig],
                                                 docroot: Path) -> None:
    (docroot / "big.js").write_bytes(BIG)
    rig = make_tls(compress_cache_bytes=BUDGET, compress_encodings="gzip")
    rig.serve(get("/big.js"))
    (reply,) = rig.replies()
    assert gzip.decompress(reply.body) == BIG


@pytest.mark.parametrize(("headers", "status"), [
    ("", 200),                            # the stream itself
    ("Range: bytes=0-9\r\n", 206),        # a range: from the file itself
    ("If-None-Match: {tag}\r\n", 304),
    ('If-Match: "nope"\r\n', 412),
])
def test_a_cached_stream_keeps_the_caches_fd(make_rig: Callable[..., Rig], docroot: Path,
                                            headers: str, status: int) -> None:
    """A streamed variant the open-file cache holds: whatever the answer, it sends from a
    dup (or closes nothing), so the cache's fd outlives it and the next request streams."""
    (docroot / "big.js").write_bytes(BIG)
    rig = make_rig(compress_cache_bytes=BUDGET, compress_encodings="gzip", cache_max_open=4)
    rig.serve(get("/big.js"))
    tag = rig.replies()[0].header("etag")
    fresh, _ = rig.owner.cache.lookup(next(iter(rig.owner.cache._open)), rig.loop.now)
    assert fresh is not None and fresh.fd is not None and fresh.stream == "gzip"
    rig.serve(get("/big.js", headers=GZIP + headers.format(tag=tag)))
    os.fstat(fresh.fd)  # still open: raises OSError (EBADF) otherwise
    rig.serve(get("/big.js"))
    replies = rig.replies()
    assert [r.status for r in replies] == [200, status, 200]
    assert gzip.decompress(replies[2].body) == BIG and len(rig.loop.jobs) > 1


def test_a_stream_says_chunked_in_its_head_exactly(rig: Rig) -> None:
    rig.serve(get("/big.js"))
    head = rig.replies()[0].head
    assert b"\r\nContent-Encoding: gzip\r\n" in head
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head


def test_get_is_counted_and_head_is_not(rig: Rig) -> None:
    rig.serve(get("/app.js"))
    rig.serve(get("/app.js"))
    rig.serve(get("/app.js", method="HEAD"))
    assert rig.owner.counters.encoded_responses == 2


def test_a_sibling_of_an_empty_file_counts_as_encoded(rig: Rig, docroot: Path) -> None:
    (docroot / "empty.js").write_bytes(b"")
    (docroot / "empty.js.gz").write_bytes(gzip.compress(b"", mtime=0))
    rig.serve(get("/empty.js"))
    counted = rig.owner.counters
    assert (counted.encoded_responses, counted.identity_bytes) == (1, 0)
