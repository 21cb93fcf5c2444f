"""Layer 2: HTTP Basic authentication in the connection: 401 with a challenge, the password
check in the pool, failures counted and limited, plain-HTTP logins refused from afar."""
from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest

from evserver.phases import Phase
from tests.wire import request

from .rig import HELLO, Rig

USERS = ("alice:wonderland",)


def basic(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Authorization: Basic {token}\r\n"


def test_no_credentials_gets_a_401_challenge(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True, auth_realm="team files")
    rig.serve(request("/hello.txt"))
    (reply,) = rig.replies()
    assert reply.status == 401
    assert reply.header("www-authenticate") == 'Basic realm="team files", charset="UTF-8"'
    assert rig.phase is Phase.IDLE and not rig.loop.jobs  # no password to check


def test_right_password_is_checked_in_the_pool_then_served(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.receive(request("/hello.txt", headers=basic("alice", "wonderland")))
    assert rig.phase is Phase.WAIT_LOGIN  # the check is a pool job, never on the loop
    rig.settle()
    assert [(r.status, r.body) for r in rig.replies()] == [(200, HELLO)]


@pytest.mark.parametrize("who", [("alice", "wrong"), ("mallory", "wonderland")])
def test_wrong_credentials_get_401_and_are_counted(make_rig: Callable[..., Rig],
                                                   who: tuple[str, str]) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.serve(request("/hello.txt", headers=basic(*who)))
    assert [r.status for r in rig.replies()] == [401]
    assert len(rig.owner.login_failures) == 1


def test_repeated_failures_are_limited(make_rig: Callable[..., Rig]) -> None:
    """After the limiter's allowance of failures, the client gets 429 without a check."""
    rig = make_rig(auth=USERS, auth_insecure=True)
    for _ in range(10):
        rig.serve(request("/hello.txt", headers=basic("alice", "guess")))
    jobs_before = len(rig.loop.jobs)
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    statuses = [r.status for r in rig.replies()]
    assert statuses == [401] * 10 + [429] and len(rig.loop.jobs) == jobs_before
    assert rig.replies()[-1].header("retry-after") == "60"


def test_only_the_auth_paths_need_a_login(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=USERS, auth_insecure=True, auth_paths=("/private/",),
                   health_path="/healthz")
    rig.serve(request("/hello.txt") + request("/private/x") + request("/healthz"))
    assert [r.status for r in rig.replies()] == [200, 401, 200]


def test_login_over_plain_http_from_another_machine_is_refused(
        make_rig: Callable[..., Rig]) -> None:
    """The rig's peer is 203.0.113.9: without --auth-insecure its password would cross the
    network unencrypted, so the login is refused with a page that says why."""
    rig = make_rig(auth=USERS)
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    (reply,) = rig.replies()
    assert reply.status == 403 and b"unencrypted" in reply.body and not rig.loop.jobs


# -- who logged in, in the access log -------------------------------------------------------

def users_logged(rig: Rig) -> list[tuple[bytes, int]]:
    """(user field, status) of each access-log line."""
    out = []
    for line in rig.owner.access_log.lines:
        m = re.match(rb'\S+ - (\S+) \[[^\]]+\] "[^"]*" (\d+) ', line)
        assert m is not None, line
        out.append((m.group(1), int(m.group(2))))
    return out


def test_the_log_names_the_user_who_logged_in_and_only_for_that_request(
        make_rig: Callable[..., Rig]) -> None:
    """A request answered after a login that succeeded logs its user (also when the file
    came through the pool); one without credentials, with wrong ones or for an unknown
    name logs `-`, and so does the next request of the connection, which must log in again."""
    rig = make_rig(auth=USERS, auth_insecure=True)
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))  # a cold cache
    rig.serve(request("/hello.txt"))
    rig.serve(request("/hello.txt", headers=basic("alice", "guess")))
    rig.serve(request("/hello.txt", headers=basic("mallory", "wonderland")))
    rig.serve(request("/index.html", headers=basic("alice", "wonderland")))  # a warm one
    assert users_logged(rig) == [(b"alice", 200), (b"-", 401), (b"-", 401), (b"-", 401),
                                 (b"alice", 200)]


def test_a_path_that_needs_no_login_logs_no_user(make_rig: Callable[..., Rig]) -> None:
    """Credentials sent where none are asked for are never checked: nobody logged in."""
    rig = make_rig(auth=USERS, auth_insecure=True, auth_paths=("/private/",))
    rig.serve(request("/hello.txt", headers=basic("alice", "wonderland")))
    assert users_logged(rig) == [(b"-", 200)]


def test_a_user_name_with_a_space_stays_one_log_field(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(auth=("john doe:pw", "-:dash"), auth_insecure=True)
    rig.serve(request("/hello.txt", headers=basic("john doe", "pw")))
    rig.serve(request("/hello.txt", headers=basic("-", "dash")))
    assert users_logged(rig) == [(b"john\\x20doe", 200), (b"\\x2D", 200)]


@pytest.mark.parametrize("after, status", [(request("/hello.txt"), 200),
                                           (b"GET /hello.txt HTTP/1.1\r\nno colon\r\n\r\n", 400)])
def test_a_request_after_a_login_logs_no_user_pipelined_or_not(
        make_rig: Callable[..., Rig], after: bytes, status: int) -> None:
    """The user belongs to the request that logged in: the next one (a path that needs no
    login, or one the parser refuses), whether it came in the same packet or later, logs
    `-`."""
    for pipelined in (True, False):
        rig = make_rig(auth=USERS, auth_insecure=True, auth_paths=("/index.html",))
        login = request("/index.html", headers=basic("alice", "wonderland"))
        if pipelined:
            rig.serve(login + after)
        else:
            rig.serve(login)
            rig.serve(after)
        assert users_logged(rig) == [(b"alice", 200), (b"-", status)], pipelined
