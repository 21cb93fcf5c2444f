"""Layer 1: every decision of `evserver.responses`, as a pure function (no socket, no loop,
no clock: `now` is an argument). Each test calls one decision with a request, a site and
the client's facts, and checks the plan (status, header lines, body) or the HTTPError."""
from __future__ import annotations

import json
from dataclasses import replace
from http import HTTPStatus
from typing import Any

import pytest

from evserver.config import Config
from evserver.files import FileBody
from evserver.http11 import HTTPError, Request, http_date
from evserver.responses import (
    ALLOW,
    CONTINUE,
    SPA_INDEX,
    Plan,
    error_page,
    error_plan,
    expectation,
    file_plan,
    health_plan,
    https_redirect,
    login_gate,
    login_refused,
    method_plan,
    metrics_plan,
    path_of,
    screen,
    spa_fallback,
    status_plan,
    whole_file_plan,
)
from evserver.site import Site

PEER = "203.0.113.9"
MTIME = 1_700_000_000
NOW = MTIME + 3600.0
ETAG = b'"abc-123"'
SIZE = 1000
CHALLENGE = b'Basic realm="evserver", charset="UTF-8"'


def request(target: bytes = b"/file.txt", method: bytes = b"GET", *fields: tuple[bytes, bytes],
            version: bytes = b"HTTP/1.1") -> Request:
    return Request(method, target, version, tuple(fields), True)


def site(docroot: str = "/srv/www", **options: Any) -> Site:
    cfg = replace(Config(host="127.0.0.1", port=0, docroot=docroot, access_log=None), **options)
    return Site.build(cfg, docroot)


def file_body(data: bytes | None = b"x" * SIZE, fd: int | None = None) -> FileBody:
    meta = (b"Last-Modified: %s\r\nETag: %s\r\nCache-Control: max-age=600\r\n"
            % (http_date(MTIME), ETAG))
    fields = b"Content-Type: text/plain\r\nContent-Length: %d\r\n%s" % (SIZE, meta)
    return FileBody("/srv/www/file.txt", SIZE, MTIME * 10**9, 7, ETAG, fields, data, fd,
                    meta, b"text/plain")


def lines(plan: Plan) -> dict[bytes, bytes]:
    """A plan's header lines as a dict (lower-cased names); each line must end in CRLF."""
    assert plan.fields.endswith(b"\r\n") or not plan.fields
    pairs = [line.split(b": ", 1) for line in plan.fields.split(b"\r\n") if line]
    return {name.lower(): value for name, value in pairs}


def refused(call: Any, *args: Any, **kwargs: Any) -> HTTPError:
    with pytest.raises(HTTPError) as info:
        call(*args, **kwargs)
    return info.value


# -- error pages ---------------------------------------------------------------------------

def test_error_plan_uses_the_errors_own_body_first() -> None:
    err = HTTPError(HTTPStatus.BAD_REQUEST, "x", body=b"<p>own</p>",
                    headers=((b"Retry-After", b"5"),))
    plan = error_plan(err, {400: b"<p>the root's</p>"})
    assert (plan.status, plan.body, plan.close) == (400, b"<p>own</p>", True)
    assert lines(plan) == {b"content-type": b"text/html; charset=utf-8",
                           b"content-length": b"10", b"retry-after": b"5"}


def test_error_plan_then_the_roots_page_then_ours() -> None:
    err = HTTPError(HTTPStatus.NOT_FOUND, "missing", close=False)
    assert error_plan(err, {404: b"custom"}).body == b"custom"
    ours = error_plan(err, {})
    assert ours.body == error_page(HTTPStatus.NOT_FOUND) and ours.close is False
    assert b"<title>404 Not Found</title>" in ours.body and b"<h1>Not Found</h1>" in ours.body
    assert lines(ours)[b"content-length"] == b"%d" % len(ours.body)


# -- methods, OPTIONS and CORS preflight -----------------------------------------------------

def test_options_is_204_with_allow_and_no_preflight_without_cors() -> None:
    plan = method_plan(request(b"*", b"OPTIONS", (b"access-control-request-method", b"GET")), "")
    assert plan.status == HTTPStatus.NO_CONTENT and plan.body == b""
    assert lines(plan) == {b"allow": ALLOW}


def test_cors_preflight_echoes_only_token_header_names() -> None:
    req = request(b"/x", b"OPTIONS", (b"access-control-request-method", b"GET"),
                  (b"access-control-request-headers", b"X-Token, bad name, ,Content-Type"))
    fields = lines(method_plan(req, "*"))
    assert fields[b"access-control-allow-methods"] == ALLOW
    assert fields[b"access-control-max-age"] == b"86400"
    assert fields[b"access-control-allow-headers"] == b"X-Token, Content-Type"


def test_options_without_a_preflight_request_method_is_plain() -> None:
    assert lines(method_plan(request(b"/x", b"OPTIONS"), "*")) == {b"allow": ALLOW}


@pytest.mark.parametrize("method, status", [(b"POST", 405), (b"DELETE", 405), (b"PROPFIND", 405),
                                            (b"BREW", 501), (b"get", 501)])
def test_other_methods_are_405_or_501_and_keep_the_connection(method: bytes,
                                                              status: int) -> None:
    err = refused(method_plan, request(b"/x", method), "")
    assert err.status == status and err.close is False
    assert ((b"Allow", ALLOW) in err.headers) is (status == 405)


# -- Expect ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, expect, version, body_follows, answer", [
    (b"GET", None, b"HTTP/1.1", True, (b"", True)),
    (b"GET", b"100-continue", b"HTTP/1.1", True, (CONTINUE, True)),
    (b"HEAD", b"100-Continue", b"HTTP/1.1", True, (CONTINUE, True)),
    (b"POST", b"100-continue", b"HTTP/1.1", True, (b"", False)),  # answered without its body
    (b"GET", b"100-continue", b"HTTP/1.1", False, (b"", True)),  # no body to invite
    (b"GET", b"something-else", b"HTTP/1.0", True, (b"", True)),  # HTTP/1.0: ignored
])
def test_expectation(method: bytes, expect: bytes | None, version: bytes, body_follows: bool,
                     answer: tuple[bytes, bool]) -> None:
    fields = ((b"expect", expect),) if expect is not None else ()
    assert expectation(request(b"/", method, *fields, version=version), body_follows) == answer


@pytest.mark.parametrize("body_follows", [True, False])
def test_unknown_expectation_is_417_closing_only_if_a_body_follows(body_follows: bool) -> None:
    err = refused(expectation, request(b"/", b"GET", (b"expect", b"teapot")), body_follows)
    assert err.status == HTTPStatus.EXPECTATION_FAILED and err.close is body_follows


# -- who is asking -----------------------------------------------------------------------------

def test_screen_plain_http_on_the_https_port_is_400_and_closes() -> None:
    err = refused(screen, site(), request(), PEER, tls=False, plain_on_tls=True)
    assert err.status == 400 and err.close and b"https://" in (err.body or b"")


def test_screen_redirects_plain_http_when_asked() -> None:
    cfg = Config(host="127.0.0.1", port=0, tls_redirect=True, tls_port=8443, tls_cert="c",
                 tls_key="k")
    s = Site.build(cfg, "/srv/www", tls_port=8443)
    err = refused(screen, s, request(b"/a?b", b"GET", (b"host", b"files.lan:8080")), PEER,
                  tls=False, plain_on_tls=False)
    assert err.status == 301 and (b"Location", b"https://files.lan:8443/a?b") in err.headers
    assert screen(s, request(), PEER, tls=True, plain_on_tls=False) == PEER  # already HTTPS


@pytest.mark.parametrize("host, target, location", [
    (b"[2001:db8::1]:8080", b"/x", b"https://[2001:db8::1]:8443/x"),
    (b"", b"/x", b"https://localhost:8443/x"),
    (b"evil.example/path", b"/x", b"https://localhost:8443/x"),  # not a plain host name
    (b"lan", b"http://lan/abs", b"https://lan:8443/"),  # an absolute-form target
])
def test_https_redirect_location(host: bytes, target: bytes, location: bytes) -> None:
    err = https_redirect(request(target, b"GET", (b"host", host)), 8443)
    assert dict(err.headers)[b"Location"] == location and err.close is False


def test_screen_address_rules_deny_wins_over_allow() -> None:
    s = site(allow=("203.0.113.0/24",), deny=("203.0.113.9",))
    assert refused(screen, s, request(), PEER, tls=False, plain_on_tls=False).status == 403
    assert screen(s, request(), "203.0.113.10", tls=False, plain_on_tls=False) == "203.0.113.10"
    err = refused(screen, s, request(), "198.51.100.1", tls=False, plain_on_tls=False)
    assert err.status == 403 and err.close is False


def test_screen_believes_x_forwarded_for_only_from_trusted_proxies() -> None:
    s = site(trusted_proxies=("10.0.0.0/8",), deny=("198.51.100.7",))
    forwarded = request(b"/", b"GET", (b"x-forwarded-for", b"198.51.100.8"))
    assert screen(s, forwarded, "10.1.1.1", tls=False, plain_on_tls=False) == "198.51.100.8"
    assert screen(s, forwarded, PEER, tls=False, plain_on_tls=False) == PEER  # untrusted peer
    denied = request(b"/", b"GET", (b"x-forwarded-for", b"198.51.100.7"))
    assert refused(screen, s, denied, "10.1.1.1", tls=False, plain_on_tls=False).status == 403


def test_path_of() -> None:
    assert path_of(b"/_status?json") == "/_status"
    assert path_of(b"/caf\xc3\xa9") == "/caf\xc3\xa9"  # latin-1: every byte maps to itself


# -- the server's own pages ------------------------------------------------------------------

def test_status_page_only_for_allowed_clients() -> None:
    allow = ("127.0.0.0/8",)
    snapshot = {"http_requests_total": [{"method": "GET", "code": "200", "value": 7}]}
    err = refused(status_plan, request(b"/_status"), PEER, allow, snapshot)
    assert err.status == 403 and err.close is False
    html_plan = status_plan(request(b"/_status"), "127.0.0.1", allow, snapshot)
    assert html_plan.status == 200 and b"<html" in html_plan.body
    assert lines(html_plan)[b"content-type"].startswith(b"text/html")
    json_plan = status_plan(request(b"/_status?json"), "127.0.0.1", allow, snapshot)
    assert json.loads(json_plan.body) == snapshot
    assert lines(json_plan) == {b"content-type": b"application/json",
                                b"content-length": b"%d" % len(json_plan.body),
                                b"cache-control": b"no-store", b"vary": b"Accept"}


def test_metrics_only_for_allowed_clients_in_the_text_format() -> None:
    allow = ("127.0.0.0/8",)
    snapshot = {"http_response_bytes_total": 12}
    err = refused(metrics_plan, PEER, allow, snapshot)
    assert err.status == 403 and err.close is False
    plan = metrics_plan("127.0.0.1", allow, snapshot)
    assert plan.status == 200
    assert plan.body.endswith(b"\nevserver_http_response_bytes_total 12\n")
    assert plan.fields == (b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                           b"Content-Length: %d\r\nCache-Control: no-store\r\n"
                           % len(plan.body))
    assert lines(plan) == {b"content-type": b"text/plain; version=0.0.4; charset=utf-8",
                           b"content-length": b"%d" % len(plan.body),
                           b"cache-control": b"no-store"}


@pytest.mark.parametrize("draining, status, body", [(False, 200, b"ok\n"),
                                                    (True, 503, b"draining\n")])
def test_health(draining: bool, status: int, body: bytes) -> None:
    plan = health_plan(draining)
    assert (plan.status, plan.body) == (status, body)
    assert lines(plan)[b"cache-control"] == b"no-store"


# -- logins ------------------------------------------------------------------------------------

def gate(req: Request, client: str = PEER, *, tls: bool = True, insecure: bool = False,
         blocked: bool = False) -> bytes:
    return login_gate(req, client, tls=tls, insecure=insecure, blocked=blocked,
                      challenge=CHALLENGE)


AUTHORIZED = request(b"/", b"GET", (b"authorization", b"Basic dTpw"))


def test_login_gate_returns_the_credentials_to_check() -> None:
    assert gate(AUTHORIZED) == b"Basic dTpw"


def test_login_over_plain_http_from_another_machine_is_refused() -> None:
    err = refused(gate, AUTHORIZED, tls=False)
    assert err.status == 403 and b"--auth-insecure" in (err.body or b"")
    assert gate(AUTHORIZED, tls=False, insecure=True) == b"Basic dTpw"
    assert gate(AUTHORIZED, "127.0.0.5", tls=False) == b"Basic dTpw"  # loopback
    assert gate(AUTHORIZED, "::1", tls=False) == b"Basic dTpw"


def test_login_gate_limits_then_challenges() -> None:
    err = refused(gate, AUTHORIZED, blocked=True)
    assert err.status == 429 and (b"Retry-After", b"60") in err.headers
    err = refused(gate, request())
    assert err.status == 401 and (b"WWW-Authenticate", CHALLENGE) in err.headers
    wrong = login_refused(CHALLENGE)
    assert wrong.status == 401 and (b"WWW-Authenticate", CHALLENGE) in wrong.headers
    assert wrong.close is False


# -- the SPA fallback ------------------------------------------------------------------------

def test_spa_fallback() -> None:
    spa = site(spa=True)
    route_key = "/srv/www/app/settings"
    assert spa_fallback(spa, request(b"/app/settings"), route_key) == SPA_INDEX
    assert spa_fallback(spa, request(b"/app/logo.png"), route_key) is None  # an asset: 404
    assert spa_fallback(site(), request(b"/app/settings"), route_key) is None  # --spa off
    # The index itself is what is missing: 404, not a loop.
    assert spa_fallback(spa, request(b"/"), "/srv/www/index.html") is None


# -- a file's conditional and range plans ----------------------------------------------------

def plan_for(*fields: tuple[bytes, bytes], method: bytes = b"GET", body: FileBody | None = None,
             max_ranges: int = 100) -> Plan | None:
    return file_plan(request(b"/file.txt", method, *fields), body or file_body(), max_ranges, NOW)


def test_no_condition_and_no_range_is_the_whole_file() -> None:
    assert plan_for() is None
    assert plan_for((b"if-none-match", b'"other"')) is None


def test_not_modified_repeats_only_the_validators() -> None:
    plan = plan_for((b"if-none-match", ETAG))
    assert plan is not None and plan.status == 304 and plan.body == b""
    assert plan.fields == file_body().meta
    assert plan_for((b"if-modified-since", http_date(MTIME))) is not None


def test_failed_precondition_is_412() -> None:
    err = refused(plan_for, (b"if-match", b'"other"'))
    assert err.status == 412 and err.close is False


def test_one_range_is_206_with_its_segment() -> None:
    plan = plan_for((b"range", b"bytes=10-19"))
    assert plan is not None and plan.status == 206 and plan.segments == ((10, 10),)
    assert lines(plan)[b"content-range"] == b"bytes 10-19/1000"
    assert lines(plan)[b"content-length"] == b"10"


def test_several_ranges_are_multipart_with_a_fresh_boundary() -> None:
    plan = plan_for((b"range", b"bytes=0-1,-2"))
    assert plan is not None and plan.status == 206
    ctype = lines(plan)[b"content-type"]
    assert ctype.startswith(b"multipart/byteranges; boundary=")
    boundary = ctype.rpartition(b"=")[2]
    assert [s for s in plan.segments if isinstance(s, tuple)] == [(0, 2), (998, 2)]
    length = sum(len(s) if isinstance(s, bytes) else s[1] for s in plan.segments)
    assert lines(plan)[b"content-length"] == b"%d" % length
    assert plan.segments[-1] == b"\r\n--%s--\r\n" % boundary
    other = plan_for((b"range", b"bytes=0-1,-2"))
    assert other is not None and lines(other)[b"content-type"] != ctype


def test_unsatisfiable_range_is_416_naming_the_size() -> None:
    err = refused(plan_for, (b"range", b"bytes=5000-"))
    assert err.status == 416 and (b"Content-Range", b"bytes */1000") in err.headers


@pytest.mark.parametrize("fields, method", [
    (((b"range", b"bytes=0-1"),), b"HEAD"),  # HEAD ignores Range
    (((b"range", b"bytes=0-1"), (b"if-range", b'"other"')), b"GET"),  # a changed file
    (((b"range", b"bytes=0-1,3-4,6-7"),), b"GET"),  # more ranges than max_ranges=2
    (((b"range", b"lines=0-1"),), b"GET"),  # not bytes
])
def test_ranges_that_are_ignored_give_the_whole_file(fields: tuple[tuple[bytes, bytes], ...],
                                                     method: bytes) -> None:
    assert plan_for(*fields, method=method, max_ranges=2) is None


@pytest.mark.parametrize("fields", [
    ((b"range", b"bytes=0-1"), (b"range", b"bytes=2-3")),  # which one? neither
    ((b"range", b"bytes=0-1"), (b"range", b"bytes=0-1")),  # even the same twice
    ((b"range", b"bytes=0-1"), (b"if-range", ETAG), (b"if-range", ETAG)),
])
def test_a_singleton_sent_twice_makes_the_range_invalid_and_ignored(
        fields: tuple[tuple[bytes, bytes], ...]) -> None:
    """Range and If-Range may appear once (RFC 9110 §5.3); twice, the Range is invalid and
    a server may ignore it (§14.2): the whole file, never a guess at which was meant."""
    assert plan_for(*fields) is None
    one = tuple(dict(fields).items())  # each name once: the same request, valid
    plan = plan_for(*one)
    assert plan is not None and plan.status == 206


def test_whole_file_plan_from_memory_or_from_the_fd() -> None:
    in_memory = whole_file_plan(file_body())
    assert in_memory.status == 200 and in_memory.body == b"x" * SIZE
    assert in_memory.segments == () and in_memory.fields == file_body().fields
    streamed = whole_file_plan(file_body(data=None, fd=99))
    assert streamed.body == b"" and streamed.segments == ((0, SIZE),)
    assert "segments=((0, 1000),)" in repr(streamed)


# -- --no-cache on the answers decided here ------------------------------------------------

@pytest.mark.parametrize("err", [
    HTTPError(HTTPStatus.NOT_FOUND, "missing", close=False),
    HTTPError(HTTPStatus.MOVED_PERMANENTLY, "directory", headers=((b"Location", b"/d/"),),
              close=False),
    HTTPError(HTTPStatus.UNAUTHORIZED, "login", headers=((b"WWW-Authenticate", CHALLENGE),)),
    HTTPError(HTTPStatus.BAD_REQUEST, "x", body=b"<p>own</p>"),
])
def test_error_plan_says_no_store_under_no_cache(err: HTTPError) -> None:
    """--no-cache: every error, redirect and refusal says `Cache-Control: no-store`, once;
    without it, none says anything of caching (as before)."""
    plan = error_plan(err, {404: b"custom"}, no_store=True)
    assert plan.fields.lower().count(b"cache-control") == 1
    assert lines(plan)[b"cache-control"] == b"no-store"
    assert b"cache-control" not in lines(error_plan(err, {404: b"custom"}))


def test_error_plan_keeps_an_errors_own_cache_control() -> None:
    err = HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "x",
                    headers=((b"Cache-Control", b"max-age=5"),))
    plan = error_plan(err, {}, no_store=True)
    assert plan.fields.lower().count(b"cache-control") == 1
    assert lines(plan)[b"cache-control"] == b"max-age=5"


def test_options_says_no_store_under_no_cache() -> None:
    req = request(b"*", b"OPTIONS", (b"access-control-request-method", b"GET"))
    assert lines(method_plan(req, "*", no_store=True))[b"cache-control"] == b"no-store"
    assert b"cache-control" not in lines(method_plan(req, "*"))
