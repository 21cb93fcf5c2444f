"""evserver.auth: password hashes, Basic credentials, the success cache, the failure limiter."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evserver import auth
from evserver.tools import passwords
from tests.conftest import REPO


@pytest.fixture
def cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made in the test are cheap (the format and code path are the same)."""
    monkeypatch.setattr(auth, "SCRYPT_PARAMS", (2**8, 8, 1))
    monkeypatch.setattr(auth, "PBKDF2_ITERATIONS", 1000)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The stored hashes `verify_password` is asked about, in order."""
    calls: list[str] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    yield calls


def basic(user_pass: bytes, scheme: bytes = b"Basic") -> bytes:
    return scheme + b" " + base64.b64encode(user_pass)


def write_file(tmp_path: Path, text: str, name: str = "users") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- hash_password / verify_password


def test_scrypt_round_trip_with_default_parameters() -> None:
    """The default scheme is scrypt with OWASP parameters and a random salt; it verifies."""
    stored = auth.hash_password("correct horse")
    match = re.fullmatch(r"scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)",
                         stored)
    assert match, stored
    n, r, p = (int(match[i]) for i in (1, 2, 3))
    assert n >= 2**14 and r >= 8 and p >= 1
    assert len(base64.b64decode(match[4])) >= 16 and len(base64.b64decode(match[5])) == 32
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("correct horsf", stored)
    assert not auth.verify_password("", stored)


def test_pbkdf2_round_trip_with_default_parameters() -> None:
    """pbkdf2_sha256 uses 600,000 iterations and verifies; a wrong password does not."""
    stored = auth.hash_password("hunter2", scheme="pbkdf2_sha256")
    assert re.fullmatch(r"pbkdf2_sha256\$600000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", stored)
    assert auth.verify_password("hunter2", stored)
    assert not auth.verify_password("hunter3", stored)


def test_salts_differ(cheap: None) -> None:
    """Two hashes of one password differ (fresh salt), and both verify."""
    first, second = auth.hash_password("pw"), auth.hash_password("pw")
    assert first != second
    assert auth.verify_password("pw", first) and auth.verify_password("pw", second)


def test_unknown_scheme_to_hash_is_an_error() -> None:
    """hash_password refuses a scheme it does not know."""
    with pytest.raises(ValueError, match="md5"):
        auth.hash_password("pw", scheme="md5")


@pytest.mark.parametrize("scheme", auth.SCHEMES)
def test_tampered_hashes_do_not_verify(cheap: None, scheme: str) -> None:
    """Changing the salt, the digest or the cost makes the right password fail."""
    stored = auth.hash_password("pw", scheme=scheme)
    name, cost, salt, digest = stored.split("$")
    flip = {"A": "B"}.get(digest[0], "A")
    tampered = [
        f"{name}${cost}${salt}${flip}{digest[1:]}",
        f"{name}${cost}${flip if salt[0] != flip else 'C'}{salt[1:]}${digest}",
        f"{name}${cost.replace('8', '16', 1) if scheme == 'scrypt' else '1001'}${salt}${digest}",
    ]
    for text in tampered:
        assert text != stored
        assert not auth.verify_password("pw", text), text


@pytest.mark.parametrize("stored", [
    "", "plaintext", "md5$1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
    "scrypt$n=256,r=8$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # p missing
    "scrypt$n=256,r=8,p=1,n=512$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # repeated key
    "scrypt$p=1,r=8,n=256$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # order
    "scrypt$n=256,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA==",  # salt lacks padding
    "scrypt$n=256,r=8,p=1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAB==",  # non-canonical base64
    "scrypt$n=256,r=8,p=1$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==",  # 4-byte salt
    "scrypt$n=256,r=8,p=1$c2FsdHNhbHQ=$AAAA",  # 3-byte digest
    "scrypt$n=２５６,r=8,p=1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # non-ASCII digits
    "pbkdf2_sha256$-5$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
    "pbkdf2_sha256$0$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
    "pbkdf2_sha256$1000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==$extra",
    "pbkdf2_sha256$1000$c2Fsd\u00e9NhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
])
def test_malformed_or_unknown_hashes_are_false(stored: str) -> None:
    """Unknown schemes and malformed strings verify as False, without raising."""
    assert auth._parse(stored) is None
    assert auth.verify_password("pw", stored) is False


@pytest.mark.parametrize("stored", [
    "scrypt$n=1073741824,r=8,p=1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # 1 TiB
    "scrypt$n=262144,r=8,p=1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # 256 MiB
    "scrypt$n=131072,r=8,p=16$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # 16x the work
    "scrypt$n=16384,r=8,p=99999$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
    "scrypt$n=1000,r=8,p=1$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",  # not a power of two
    "pbkdf2_sha256$1000000000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
    "pbkdf2_sha256$1500000$c2FsdHNhbHQ=$" + "A" * 86 + "==",  # 64-byte output: 2 blocks
])
def test_hostile_parameters_are_refused_without_hashing(
        monkeypatch: pytest.MonkeyPatch, stored: str) -> None:
    """Costs beyond the caps are refused before any key derivation runs."""
    def derive(*args: Any) -> bytes:
        raise AssertionError("key derivation ran")

    monkeypatch.setattr(auth, "_derive", derive)
    assert auth.verify_password("pw", stored) is False


def test_the_caps_admit_owasp_parameters() -> None:
    """OWASP's stronger settings (scrypt N=2^17 r=8 p=1, PBKDF2 600,000) stay within the caps."""
    salt, digest = "c2FsdHNhbHRzYWx0c2FsdA==", "A" * 43 + "="
    assert auth._parse(f"scrypt$n=131072,r=8,p=1${salt}${digest}") is not None
    assert auth._parse(f"scrypt$n=16384,r=8,p=5${salt}${digest}") is not None
    assert auth._parse(f"pbkdf2_sha256$1200000${salt}${digest}") is not None


def test_passwords_compare_in_nfc(cheap: None) -> None:
    """RFC 7617 charset=UTF-8: composed and decomposed spellings of a password are equal."""
    composed = "caf\u00e9"
    stored = auth.hash_password(composed)
    assert auth.verify_password(unicodedata.normalize("NFD", composed), stored)


def test_unencodable_password_is_false(cheap: None) -> None:
    """A password with a lone surrogate is a non-match, not an exception."""
    assert auth.verify_password("a\udc80", auth.hash_password("a")) is False


# --- parse_basic and challenge


@pytest.mark.parametrize(("value", "expected"), [
    (basic(b"alice:secret"), ("alice", "secret")),
    (basic(b"alice:secret", b"basic"), ("alice", "secret")),
    (basic(b"alice:secret", b"BASIC"), ("alice", "secret")),
    (b"  Basic   " + base64.b64encode(b"alice:secret") + b" ", ("alice", "secret")),
    (basic(b"alice:pa:ss:"), ("alice", "pa:ss:")),
    (basic(b"alice:"), ("alice", "")),
    (basic("j\u00fcrgen:p\u00e4ss".encode()), ("j\u00fcrgen", "p\u00e4ss")),
])
def test_basic_values_parse(value: bytes, expected: tuple[str, str]) -> None:
    """Scheme case-insensitive, split at the first colon, UTF-8."""
    assert auth.parse_basic(value) == expected


@pytest.mark.parametrize("value", [
    b"", b"Basic", b"Basic ", b"Bearer " + base64.b64encode(b"alice:secret"),
    b"Basicx " + base64.b64encode(b"alice:secret"),
    b"Basic !!!!", b"Basic YWxpY2U6cHc",  # padding missing
    b"Basic YWxpY2U6cHd=",  # non-zero trailing bits: not the canonical spelling
    b"Basic YWxp Y2U6cHc=", b"Basic YWxpY2U6cHc=\r\nX-Injected: 1",
    basic(b"alicesecret"),  # no colon
    basic(b"alice:\xffsecret"), basic(b"\xc3(:pw"),  # not UTF-8
    basic(b"alice:sec\nret"), basic(b"al\x00ice:pw"),  # control characters
    basic(b"alice:" + b"x" * 3100),  # valid, but over MAX_HEADER
    "Basic YWxpY2U6cHc\u00e9".encode("latin-1"),
])
def test_bad_basic_values_are_none(value: bytes) -> None:
    """Anything but a strictly valid Basic credential is None."""
    assert auth.parse_basic(value) is None


@given(st.binary(max_size=200))
def test_parse_basic_never_raises(data: bytes) -> None:
    """Arbitrary bytes give None or a (user, password) pair, never an exception."""
    result = auth.parse_basic(b"Basic " + data)
    assert result is None or isinstance(result, tuple)


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":")),
       st.text(st.characters(blacklist_categories=("Cc", "Cs"))))
def test_parse_basic_round_trips(user: str, password: str) -> None:
    """Every user-id without a colon and any password survive encoding and parsing."""
    assert auth.parse_basic(basic(f"{user}:{password}".encode())) == (user, password)


def test_challenge_quotes_the_realm() -> None:
    """The realm is a quoted-string: quotes and backslashes escaped, UTF-8 declared."""
    assert auth.challenge("My site") == b'Basic realm="My site", charset="UTF-8"'
    assert auth.challenge('a"b\\c') == b'Basic realm="a\\"b\\\\c", charset="UTF-8"'
    assert auth.challenge("caf\u00e9") == 'Basic realm="caf\u00e9", charset="UTF-8"'.encode()


def test_challenge_refuses_control_characters() -> None:
    """A realm with CR/LF could split the header: refused."""
    with pytest.raises(ValueError):
        auth.challenge("x\r\nSet-Cookie: a=b")


# --- Credentials


def test_pairs_check(verify_calls: list[str]) -> None:
    """--auth pairs: the right password gives the user; wrong ones, no header, others give None."""
    creds = auth.Credentials(["alice:secret", "bob:pa:ss"])
    assert len(creds) == 2
    assert creds.check(basic(b"alice:secret"), 0.0) == "alice"
    assert creds.check(basic(b"bob:pa:ss"), 0.0) == "bob"
    assert creds.check(basic(b"alice:Secret"), 0.0) is None
    assert creds.check(basic(b"bob:pa"), 0.0) is None
    assert creds.check(basic(b"carol:secret"), 0.0) is None
    assert creds.check(None, 0.0) is None
    assert creds.check(b"Basic %%%", 0.0) is None
    assert verify_calls == []  # pairs use HMAC digests, not slow hashes
    assert all("secret" not in repr(v) for v in vars(creds).values())  # no plain text kept


@pytest.mark.parametrize("pairs", [["alice"], [":pw"], ["alice:"], ["a:b", "a:c"], ["a:b\nc"]])
def test_bad_pairs_are_errors_that_hide_the_password(pairs: list[str]) -> None:
    """A malformed --auth value raises ValueError naming its position, not its password."""
    with pytest.raises(ValueError, match=r"--auth #\d") as info:
        auth.Credentials(pairs)
    assert "b\nc" not in str(info.value) and ":b" not in str(info.value)


def test_auth_file_users(cheap: None, tmp_path: Path) -> None:
    """`user:hash` lines with comments and blank lines; both schemes work."""
    path = write_file(tmp_path, "# users\n\nalice:{}\n  bob : {}  \n".format(
        auth.hash_password("a-pw"), auth.hash_password("b-pw", scheme="pbkdf2_sha256")))
    creds = auth.Credentials(auth_file=path)
    assert len(creds) == 2
    assert creds.check(basic(b"alice:a-pw"), 0.0) == "alice"
    assert creds.check(basic(b"bob:b-pw"), 0.0) == "bob"
    assert creds.check(basic(b"bob:a-pw"), 0.0) is None


@pytest.mark.parametrize(("text", "line", "message"), [
    ("# c\nalice:{h}\nbob\n", 3, "expected user:hash"),
    ("alice:{h}\n:{h}\n", 2, "expected user:hash"),
    ("\n\nalice:hunter2\n", 3, "not a supported hash"),
    ("alice:{h}\nalice:{h}\n", 2, "defined twice"),
    ("alice:pbkdf2_sha256$999999999$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==\n", 1, "within limits"),
])
def test_auth_file_errors_name_the_line(cheap: None, tmp_path: Path, text: str, line: int,
                                        message: str) -> None:
    """A bad line raises ValueError with the file, the line number and the reason."""
    path = write_file(tmp_path, text.format(h=auth.hash_password("x")))
    with pytest.raises(ValueError, match=f"line {line}: .*{message}") as info:
        auth.Credentials(auth_file=path)
    assert str(path) in str(info.value) and "hunter2" not in str(info.value)


def test_auth_file_and_pairs_conflict_and_emptiness(cheap: None, tmp_path: Path) -> None:
    """A user both in --auth and the file, an empty file, or not UTF-8, is an error."""
    path = write_file(tmp_path, f"alice:{auth.hash_password('x')}\n")
    with pytest.raises(ValueError, match="line 1: .*defined twice"):
        auth.Credentials(["alice:y"], path)
    with pytest.raises(ValueError, match="no users"):
        auth.Credentials(auth_file=write_file(tmp_path, "# nobody\n\n", "empty"))
    with pytest.raises(ValueError):
        auth.Credentials()
    bad = tmp_path / "latin1"
    bad.write_bytes(b"j\xfcrgen:" + auth.hash_password("x").encode() + b"\n")
    with pytest.raises(ValueError):
        auth.Credentials(auth_file=bad)


def test_unknown_user_takes_the_dummy_hash_path(cheap: None, tmp_path: Path,
                                                verify_calls: list[str]) -> None:
    """An unknown name costs one verification against a hash shaped like the real ones."""
    path = write_file(tmp_path, f"alice:{auth.hash_password('pw', scheme='pbkdf2_sha256')}\n")
    creds = auth.Credentials(auth_file=path)
    assert creds.check(basic(b"mallory:pw"), 0.0) is None
    assert len(verify_calls) == 1
    dummy = verify_calls[0]
    assert dummy.split("$")[:2] == ["pbkdf2_sha256", "1000"]  # same cost as alice's
    assert dummy != creds._users.hashed["alice"]
    assert creds.check(basic(b"alice:wrong"), 0.0) is None  # a known name: also one verify
    assert len(verify_calls) == 2 and verify_calls[1] == creds._users.hashed["alice"]


def test_unknown_user_with_pairs_takes_the_digest_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only --auth users, an unknown name costs one HMAC and one compare_digest too."""
    creds = auth.Credentials(["alice:pw"])
    counts = {"digest": 0, "compare": 0}
    real_digest, real_compare = auth.Credentials._digest, auth.hmac.compare_digest

    def digest(self: auth.Credentials, password: str) -> bytes:
        counts["digest"] += 1
        return real_digest(self, password)

    def compare(a: bytes, b: bytes) -> bool:
        counts["compare"] += 1
        return real_compare(a, b)

    monkeypatch.setattr(auth.Credentials, "_digest", digest)
    monkeypatch.setattr(auth.hmac, "compare_digest", compare)
    assert creds.check(basic(b"mallory:pw"), 0.0) is None
    assert counts == {"digest": 1, "compare": 1}
    assert creds.check(basic(b"alice:nope"), 0.0) is None
    assert counts == {"digest": 2, "compare": 2}


def _file_creds(tmp_path: Path, users: int, **kwargs: Any) -> auth.Credentials:
    lines = "".join(f"u{i}:{auth.hash_password(f'p{i}')}\n" for i in range(users))
    return auth.Credentials(auth_file=write_file(tmp_path, lines), **kwargs)


def test_successes_are_cached_until_the_ttl(cheap: None, tmp_path: Path,
                                            verify_calls: list[str]) -> None:
    """A repeated right header skips the hash until `now` passes the TTL; failures never cache."""
    creds = _file_creds(tmp_path, 1, cache_ttl=30.0)
    right, wrong = basic(b"u0:p0"), basic(b"u0:nope")
    assert creds.check(right, 100.0) == "u0"
    assert creds.check(right, 129.9) == "u0"
    assert len(verify_calls) == 1
    assert creds.check(right, 130.0) == "u0"  # expired: verified afresh
    assert len(verify_calls) == 2
    for _ in range(2):
        assert creds.check(wrong, 131.0) is None
    assert len(verify_calls) == 4


def test_cache_is_bounded_least_recent_first(cheap: None, tmp_path: Path,
                                             verify_calls: list[str]) -> None:
    """Past `cache_size` the least recently used success is forgotten."""
    creds = _file_creds(tmp_path, 3, cache_size=2)
    headers = [basic(f"u{i}:p{i}".encode()) for i in range(3)]
    assert creds.check(headers[0], 0.0) == "u0" and creds.check(headers[1], 0.0) == "u1"
    assert creds.check(headers[0], 1.0) == "u0"  # u0 is now the most recent
    assert creds.check(headers[2], 1.0) == "u2"  # evicts u1
    assert len(creds._cache) == 2 and len(verify_calls) == 3
    assert creds.check(headers[0], 2.0) == "u0" and len(verify_calls) == 3
    assert creds.check(headers[1], 2.0) == "u1" and len(verify_calls) == 4


# --- FailureLimiter


def test_limiter_blocks_after_n_failures_for_the_window() -> None:
    """The Nth failure within the window blocks that address (only) until the window ends."""
    limiter = auth.FailureLimiter(max_failures=3, window=60.0)
    for t in (0.0, 10.0):
        limiter.failure("1.2.3.4", t)
    assert not limiter.blocked("1.2.3.4", 10.0)
    limiter.failure("1.2.3.4", 20.0)
    assert limiter.blocked("1.2.3.4", 20.0) and limiter.blocked("1.2.3.4", 59.9)
    assert not limiter.blocked("5.6.7.8", 20.0)
    assert not limiter.blocked("1.2.3.4", 60.0)
    limiter.failure("1.2.3.4", 61.0)  # a new window: one failure so far
    assert not limiter.blocked("1.2.3.4", 61.0)


def test_limiter_counts_per_window() -> None:
    """Failures in separate windows do not add up."""
    limiter = auth.FailureLimiter(max_failures=3, window=60.0)
    for t in (0.0, 1.0, 70.0, 71.0):
        limiter.failure("a", t)
    assert not limiter.blocked("a", 71.0)
    limiter.failure("a", 72.0)  # the third in the window that began at 70
    assert limiter.blocked("a", 72.0) and limiter.blocked("a", 129.9)
    assert not limiter.blocked("a", 130.0)


def test_limiter_success_resets() -> None:
    """A successful login forgets the address's failures."""
    limiter = auth.FailureLimiter(max_failures=2, window=60.0)
    limiter.failure("a", 0.0)
    limiter.success("a")
    limiter.failure("a", 1.0)
    assert not limiter.blocked("a", 1.0)
    limiter.failure("a", 2.0)
    assert limiter.blocked("a", 2.0)


def test_limiter_memory_is_bounded() -> None:
    """Past max_addresses the address that failed least recently is forgotten."""
    limiter = auth.FailureLimiter(max_failures=1, window=60.0, max_addresses=3)
    for name in "abc":
        limiter.failure(name, 0.0)
    limiter.failure("a", 1.0)  # a is now the most recent
    limiter.failure("d", 1.0)
    assert len(limiter) == 3
    assert not limiter.blocked("b", 1.0)
    assert all(limiter.blocked(name, 1.0) for name in "acd")
    for i in range(100):
        limiter.failure(f"x{i}", 2.0)
    assert len(limiter) == 3


# --- main (python3 -m evserver hash-password)


def run_main(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; from evserver.tools.passwords import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=30)


@pytest.mark.parametrize("scheme", auth.SCHEMES)
def test_main_stdin_prints_a_verifying_hash(scheme: str) -> None:
    """--stdin reads one line (without its newline) and prints its hash."""
    result = run_main("--stdin", "--scheme", scheme, stdin="s3cret pass\nignored\n")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith(scheme + "$") and result.stdout.count("\n") == 1
    assert auth.verify_password("s3cret pass", stored)


def test_main_refuses_a_non_tty_without_stdin_flag_and_empty_passwords() -> None:
    """Piped input needs --stdin; an empty password is refused."""
    result = run_main(stdin="pw\n")
    assert result.returncode == 2 and "--stdin" in result.stderr and result.stdout == ""
    result = run_main("--stdin", stdin="\n")
    assert result.returncode == 1 and "empty" in result.stderr and result.stdout == ""


class _Tty:
    def isatty(self) -> bool:
        return True


def _fake_getpass(monkeypatch: pytest.MonkeyPatch, *answers: str) -> Callable[[str], str]:
    replies = iter(answers)

    def getpass(prompt: str = "") -> str:
        return next(replies)

    monkeypatch.setattr(passwords.sys, "stdin", _Tty())
    monkeypatch.setattr(passwords.getpass, "getpass", getpass)
    return getpass


def test_main_terminal_asks_twice(cheap: None, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the password is asked twice; matching answers print a hash."""
    _fake_getpass(monkeypatch, "tty-pw", "tty-pw")
    assert passwords.main(["--scheme", "pbkdf2_sha256"]) == 0
    assert auth.verify_password("tty-pw", capsys.readouterr().out.strip())


def test_main_terminal_mismatch_fails(cheap: None, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Two different answers print no hash and exit 1."""
    _fake_getpass(monkeypatch, "one", "two")
    assert passwords.main([]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "differ" in captured.err
