"""cache.py: the file cache (freshness, LRU by bytes and entries, open files) and its
single-flight loads."""
from __future__ import annotations

from evserver.cache import FileCache
from evserver.files import FileBody


def body(size: int, name: str = "f", fd: int | None = None) -> FileBody:
    data = None if fd is not None else b"x" * size
    return FileBody(name, size, 0, 0, b'"e"', b"", data, fd)


def test_cache_fresh_then_stale() -> None:
    """Within ttl an entry is fresh; after it, it comes back as stale for revalidation."""
    cache = FileCache(max_bytes=1000, max_entries=10, ttl=1.0)
    b = body(10)
    cache.put("/a", b, now=100.0)
    assert cache.lookup("/a", 100.5) == (b, None)
    assert cache.lookup("/a", 100.999) == (b, None)
    assert cache.lookup("/a", 101.0) == (None, b)
    assert cache.lookup("/a", 500.0) == (None, b)
    assert cache.lookup("/missing", 100.0) == (None, None)


def test_cache_put_refreshes_age() -> None:
    """Putting a revalidated entry back makes it fresh again."""
    cache = FileCache(1000, 10, ttl=1.0)
    b = body(10)
    cache.put("/a", b, 100.0)
    assert cache.lookup("/a", 102.0) == (None, b)
    cache.put("/a", b, 102.0)
    assert cache.lookup("/a", 102.5) == (b, None)
    assert cache.bytes == 10 and len(cache) == 1


def test_cache_counters() -> None:
    """Fresh lookups count as hits; missing and stale ones as misses."""
    cache = FileCache(1000, 10, ttl=1.0)
    cache.lookup("/a", 0.0)
    cache.put("/a", body(1), 0.0)
    cache.lookup("/a", 0.1)
    cache.lookup("/a", 0.2)
    cache.lookup("/a", 5.0)
    assert (cache.hits, cache.misses) == (2, 2)


def test_cache_lru_by_entries() -> None:
    """Beyond max_entries the least recently used entry goes; a hit refreshes recency."""
    cache = FileCache(max_bytes=10_000, max_entries=3, ttl=10.0)
    for name in ("/a", "/b", "/c"):
        cache.put(name, body(1, name), 0.0)
    assert cache.lookup("/a", 1.0)[0] is not None  # /a is now most recent
    cache.put("/d", body(1), 0.0)
    assert len(cache) == 3
    assert cache.lookup("/b", 1.0) == (None, None)
    for name in ("/a", "/c", "/d"):
        assert cache.lookup(name, 1.0)[0] is not None, name


def test_cache_lru_by_bytes() -> None:
    """Beyond max_bytes the oldest entries go until the total fits."""
    cache = FileCache(max_bytes=100, max_entries=100, ttl=10.0)
    cache.put("/a", body(40), 0.0)
    cache.put("/b", body(40), 0.0)
    assert cache.bytes == 80
    cache.put("/c", body(50), 0.0)
    assert cache.bytes == 90
    assert cache.lookup("/a", 0.0) == (None, None)
    assert cache.lookup("/b", 0.0)[0] is not None
    assert cache.lookup("/c", 0.0)[0] is not None
    cache.put("/d", body(100), 0.0)  # exactly the budget: everything else goes
    assert len(cache) == 1 and cache.bytes == 100


def test_cache_replace_counts_bytes_once() -> None:
    """Putting the same path again replaces it without double counting."""
    cache = FileCache(100, 10, 10.0)
    cache.put("/a", body(30), 0.0)
    cache.put("/a", body(50), 0.0)
    assert cache.bytes == 50 and len(cache) == 1


def test_cache_oversize_not_cached() -> None:
    """A body larger than the whole budget, or one with an fd, is not cached."""
    cache = FileCache(max_bytes=100, max_entries=10, ttl=10.0)
    cache.put("/small", body(10), 0.0)
    cache.put("/big", body(101), 0.0)
    assert cache.lookup("/big", 0.0) == (None, None)
    assert cache.lookup("/small", 0.0)[0] is not None  # not evicted for nothing
    cache.put("/fd", body(10, fd=99), 0.0)
    assert cache.lookup("/fd", 0.0) == (None, None)
    assert cache.bytes == 10


def test_cache_uncacheable_replacement_drops_old_entry() -> None:
    """When a cached file grows into an uncacheable one, the old entry is dropped."""
    cache = FileCache(max_bytes=100, max_entries=10, ttl=1.0)
    cache.put("/a", body(10), 0.0)
    cache.put("/a", body(10, fd=99), 5.0)  # revalidation found a large file
    assert cache.lookup("/a", 5.0) == (None, None)
    assert cache.bytes == 0 and len(cache) == 0


def test_cache_discard() -> None:
    """discard removes an entry and its bytes; unknown paths are ignored."""
    cache = FileCache(100, 10, 10.0)
    cache.put("/a", body(30), 0.0)
    cache.discard("/a")
    cache.discard("/never")
    assert cache.lookup("/a", 0.0) == (None, None)
    assert cache.bytes == 0 and len(cache) == 0


def test_single_flight_load_queues_waiters_until_it_finishes() -> None:
    """While a key is loading, later requests wait (once each) and are handed back, in
    order, when the load finishes; then the key loads afresh."""
    cache = FileCache(100, 10, 10.0)
    calls: list[str] = []
    assert not cache.wait_for_load("/a", lambda: calls.append("early"))  # nothing loading
    cache.load_started("/a")
    assert cache.wait_for_load("/a", lambda: calls.append("first"))
    assert cache.wait_for_load("/a", lambda: calls.append("second"))
    assert not cache.wait_for_load("/b", lambda: calls.append("other key"))
    for retry in cache.load_finished("/a"):
        retry()
    assert calls == ["first", "second"]
    assert cache.load_finished("/a") == []  # over: nobody waits any more
    assert not cache.wait_for_load("/a", lambda: calls.append("late"))


def encoded(size: int) -> FileBody:
    return FileBody("f", size, 0, 0, b'"e-gzip6"', b"", b"z" * size, None, identity_size=size * 4,
                    encoded_here=True)


def test_encoded_variants_have_a_budget_of_their_own() -> None:
    """Variants encoded here never evict the files (nor the reverse), LRU within theirs."""
    cache = FileCache(max_bytes=100, max_entries=10, ttl=1.0, encoded_max_bytes=50)
    plain = body(100)
    cache.put("/a", plain, 0.0)
    first, second = encoded(30), encoded(30)
    assert cache.put("/a\0gzip", first, 0.0) and cache.put("/b\0gzip", second, 0.0)
    assert cache.lookup("/a", 0.5) == (plain, None) and cache.bytes == 100
    assert cache.lookup("/a\0gzip", 0.5) == (None, None)  # evicted by the second
    assert cache.lookup("/b\0gzip", 0.5) == (second, None)
    assert (cache.encoded_bytes, cache.encoded_entries, len(cache)) == (30, 1, 2)
    assert not cache.put("/c\0gzip", encoded(51), 0.0)  # over the whole budget: not kept
    cache.discard("/b\0gzip")
    assert (cache.encoded_bytes, cache.encoded_entries) == (0, 0)


def test_encoded_variants_are_bounded_in_count_too() -> None:
    cache = FileCache(max_bytes=100, max_entries=2, ttl=1.0, encoded_max_bytes=1000)
    for name in "abc":
        cache.put(name, encoded(1), 0.0)
    assert cache.encoded_entries == 2 and cache.lookup("a", 0.0) == (None, None)


def test_closing_the_cache_forgets_encoded_variants() -> None:
    cache = FileCache(max_bytes=100, max_entries=2, ttl=1.0, encoded_max_bytes=1000)
    cache.put("a", encoded(5), 0.0)
    cache.close()
    assert (cache.encoded_bytes, len(cache)) == (0, 0)


def test_expire_makes_every_entry_stale_and_keeps_the_bodies() -> None:
    """--live-reload, after a change: each entry is checked before it is served again."""
    cache = FileCache(max_bytes=1000, max_entries=10, ttl=100.0, encoded_max_bytes=1000)
    plain, enc = body(10), encoded(5)
    cache.put("/a", plain, 0.0)
    cache.put("/a\0gzip", enc, 0.0)
    cache.expire()
    assert cache.lookup("/a", 1.0) == (None, plain)
    assert cache.lookup("/a\0gzip", 1.0) == (None, enc)
    assert (len(cache), cache.bytes, cache.encoded_bytes) == (2, 10, 5)
