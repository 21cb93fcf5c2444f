"""HTTP Basic authentication (RFC 7617) and password hashing, sans-IO: no sockets, no clock.

Stored hashes describe themselves: `scrypt$n=16384,r=8,p=1$<salt>$<hash>` or
`pbkdf2_sha256$600000$<salt>$<hash>` (standard base64). Verifying one costs ~50-250 ms, so
`Credentials.check` belongs in the thread pool; a small cache of successes (keyed by a digest of
the header, expiry from the caller's `now`) spares a browser a full hash on every request.
A changed auth file is read again when SIGHUP rebuilds the `Site` (a new `Credentials`), or
at a restart.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

# Defaults, read at call time (tests lower them). OWASP Password Storage Cheat Sheet: scrypt r=8 p=1
# with N >= 2^14 (its current minimum is 2^17, or 2^14 with p=5); PBKDF2-HMAC-SHA256 600,000.
SCRYPT_PARAMS = (2**14, 8, 1)
PBKDF2_ITERATIONS = 600_000
SCHEMES = ("scrypt", "pbkdf2_sha256")
# Caps on what a (possibly hostile) auth file may ask of one check: about a second, <= 129 MiB.
MAX_SCRYPT_MEMORY = 128 * 2**17 * 8  # 128*N*r bytes: room for N=2^17, r=8
MAX_SCRYPT_WORK = 2**17 * 8 * 2  # N*r*p
MAX_PBKDF2_WORK = 2_000_000  # iterations * 32-byte output blocks
MAX_HEADER = 4096  # longer Authorization values are refused before any decoding
_CTL = re.compile(r"[\x00-\x1f\x7f]")
_UINT = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class _Hash:
    scheme: str
    cost: tuple[int, ...]  # (n, r, p) or (iterations,)
    salt: bytes
    digest: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Strict, canonical base64 (one spelling per byte string), else None."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        return None
    return raw if _b64(raw) == text else None


def _parse(stored: str) -> _Hash | None:
    """The parsed hash when well formed and within the caps, else None."""
    parts = stored.split("$")
    if len(stored) > 512 or len(parts) != 4:
        return None
    scheme, cost_text, salt_text, digest_text = parts
    salt, digest = _unb64(salt_text), _unb64(digest_text)
    if salt is None or digest is None or not (8 <= len(salt) <= 64 and 16 <= len(digest) <= 64):
        return None
    if scheme == "scrypt":
        pairs = [item.partition("=") for item in cost_text.split(",")]
        if [key for key, _, _ in pairs] != ["n", "r", "p"]:
            return None
        values = [value for _, _, value in pairs]
        if not all(_UINT.fullmatch(v) for v in values):
            return None
        n, r, p = (int(v) for v in values)
        if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16:
            return None
        if 128 * n * r > MAX_SCRYPT_MEMORY or n * r * p > MAX_SCRYPT_WORK:
            return None
        return _Hash(scheme, (n, r, p), salt, digest)
    if scheme == "pbkdf2_sha256" and _UINT.fullmatch(cost_text):
        iterations = int(cost_text)
        if 1 <= iterations * -(-len(digest) // 32) <= MAX_PBKDF2_WORK:
            return _Hash(scheme, (iterations,), salt, digest)
    return None


def _secret(password: str) -> bytes:
    # RFC 7617 section 2.1: with charset UTF-8 the password is compared in Unicode NFC.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _derive(scheme: str, cost: tuple[int, ...], salt: bytes, secret: bytes, size: int) -> bytes:
    if scheme == "scrypt":
        n, r, p = cost
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=size,
                              maxmem=128 * r * (n + p + 2) + 2**20)
    return hashlib.pbkdf2_hmac("sha256", secret, salt, cost[0], dklen=size)


def _format(scheme: str, cost: tuple[int, ...], salt: bytes, digest: bytes) -> str:
    text = "n={},r={},p={}".format(*cost) if scheme == "scrypt" else str(cost[0])
    return f"{scheme}${text}${_b64(salt)}${_b64(digest)}"


def hash_password(password: str, *, scheme: str = "scrypt") -> str:
    """A self-describing hash of `password` with a fresh 16-byte random salt."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    cost = SCRYPT_PARAMS if scheme == "scrypt" else (PBKDF2_ITERATIONS,)
    salt = secrets.token_bytes(16)
    return _format(scheme, cost, salt, _derive(scheme, cost, salt, _secret(password), 32))


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False (never raises) if malformed or too costly."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    try:
        actual = _derive(parsed.scheme, parsed.cost, parsed.salt, _secret(password),
                         len(parsed.digest))
    except (ValueError, MemoryError):  # e.g. lone surrogates, or OpenSSL refusing the parameters
        return False
    return hmac.compare_digest(actual, parsed.digest)


def parse_basic(header_value: bytes) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic <b64>` value, or None when it is not one."""
    scheme, _, token = header_value.strip(b" \t").partition(b" ")
    token = token.lstrip(b" ")  # RFC 7235: auth-scheme 1*SP token68
    if len(header_value) > MAX_HEADER or scheme.lower() != b"basic" or not token:
        return None
    raw = _unb64(token.decode("latin-1"))
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    user, colon, password = text.partition(":")  # user-ids cannot hold a colon; passwords can
    if not colon or _CTL.search(text):
        return None
    return user, password


def challenge(realm: str) -> bytes:
    """The `WWW-Authenticate` value; the realm is a quoted-string (control characters refused)."""
    if _CTL.search(realm):
        raise ValueError("the realm must not contain control characters")
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{quoted}", charset="UTF-8"'.encode()


@dataclass(frozen=True)
class _Users:
    hashed: dict[str, str]  # from the auth file: user -> stored hash
    plain: dict[str, bytes]  # from --auth: user -> HMAC-SHA256(process key, password)
    dummy: str | None  # what unknown users are checked against: like the file's first hash


class Credentials:
    """Who may log in: `--auth USER:PASSWORD` pairs and/or an auth file of `user:hash` lines.

    Passwords given on the command line are kept only as HMAC-SHA256 under a random per-process
    key (salted, not reversible from the digest alone, and fast); `hmac.compare_digest` compares
    them. An unknown user is verified against a dummy hash with the parameters of the file's first
    entry (or a dummy digest when there is no file), so a wrong name costs what a wrong password
    does. When both sources are used, --auth users answer faster than file users.
    """

    def __init__(self, pairs: Iterable[str] = (), auth_file: str | os.PathLike[str] | None = None,
                 *, cache_size: int = 256, cache_ttl: float = 300.0) -> None:
        self._key = secrets.token_bytes(32)
        self._plain: dict[str, bytes] = {}
        for number, pair in enumerate(pairs, 1):
            user, colon, password = pair.partition(":")
            if not colon or not user or not password or _CTL.search(pair):
                raise ValueError(f"--auth #{number}: expected USER:PASSWORD (non-empty)")
            if user in self._plain:
                raise ValueError(f"--auth #{number}: user {user!r} given twice")
            self._plain[user] = self._digest(password)
        self._file = auth_file
        self._cache_size, self._cache_ttl = cache_size, cache_ttl
        self._cache: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()  # check() runs on several pool threads at once
        self._users = self._load()

    def _digest(self, password: str) -> bytes:
        return hmac.digest(self._key, _secret(password), "sha256")

    def _load(self) -> _Users:
        hashed: dict[str, str] = {}
        if self._file is not None:
            with open(self._file, encoding="utf-8") as stream:  # universal newlines
                lines = stream.readlines()
            for lineno, line in enumerate(lines, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                where = f"{os.fspath(self._file)}, line {lineno}"
                user, colon, stored = (part.strip() for part in line.partition(":"))
                if not colon or not user:
                    raise ValueError(f"{where}: expected user:hash")
                if user in hashed or user in self._plain:
                    raise ValueError(f"{where}: user {user!r} defined twice")
                if _parse(stored) is None:  # the text may be a password: never echo it
                    raise ValueError(f"{where}: not a supported hash within limits (make one "
                                     "with `python3 -m evserver hash-password`)")
                hashed[user] = stored
        if not hashed and not self._plain:
            raise ValueError("no users: give --auth USER:PASSWORD or a non-empty auth file")
        dummy = None
        if hashed:
            first = _parse(next(iter(hashed.values())))
            assert first is not None
            dummy = _format(first.scheme, first.cost, secrets.token_bytes(len(first.salt)),
                            secrets.token_bytes(len(first.digest)))
        return _Users(hashed, dict(self._plain), dummy)

    def __len__(self) -> int:
        return len(self._users.hashed) + len(self._users.plain)

    def check(self, header_value: bytes | None, now: float) -> str | None:
        """The user name when `header_value` (an Authorization value) is right, else None.
        `now` is any monotonic clock, used only for the success cache's expiry."""
        if header_value is None:
            return None
        key = hashlib.sha256(header_value).digest()  # the cache never holds a password
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now < hit[1]:
                self._cache.move_to_end(key)
                return hit[0]
        parsed = parse_basic(header_value)
        if parsed is None:
            return None
        user, password = parsed
        users = self._users
        if user in users.hashed:
            ok = verify_password(password, users.hashed[user])
        elif user in users.plain:
            ok = hmac.compare_digest(self._digest(password), users.plain[user])
        else:  # the same work as a known user, then a refusal
            if users.dummy is not None:
                verify_password(password, users.dummy)
            else:
                hmac.compare_digest(self._digest(password), self._key)
            return None
        if not ok:
            return None
        with self._lock:
            self._cache[key] = (user, now + self._cache_ttl)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return user


class FailureLimiter:
    """At most `max_failures` failed logins per address per `window` seconds; then `blocked`
    until the window that began with the first failure has passed. Memory is bounded: past
    `max_addresses` the address that failed least recently is forgotten."""

    def __init__(self, max_failures: int = 10, window: float = 60.0,
                 max_addresses: int = 10_000) -> None:
        self.max_failures, self.window, self.max_addresses = max_failures, window, max_addresses
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()  # (start, count)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def blocked(self, address: str, now: float) -> bool:
        with self._lock:
            entry = self._entries.get(address)
            return (entry is not None and now - entry[0] < self.window
                    and entry[1] >= self.max_failures)

    def failure(self, address: str, now: float) -> None:
        with self._lock:
            start, count = self._entries.pop(address, (now, 0))
            if now - start >= self.window:  # a new window begins with this failure
                start, count = now, 0
            self._entries[address] = (start, count + 1)
            while len(self._entries) > self.max_addresses:
                self._entries.popitem(last=False)

    def success(self, address: str) -> None:
        with self._lock:
            self._entries.pop(address, None)
