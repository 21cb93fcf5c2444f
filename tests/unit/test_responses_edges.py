"""Layer 1: the edges of `evserver.responses` that test_responses.py leaves open.

Each decision's exact bytes (error pages, OPTIONS and the CORS preflight, the status and
health pages, 206 and multipart heads), its boundaries (loopback for the login gate, the
failure limiter feeding it, the single-byte ranges of a file) and its order (which refusal
wins, If-Range with a date and an entity tag).
"""
from __future__ import annotations

from http import HTTPStatus

import pytest

from evserver import look, responses
from evserver.auth import FailureLimiter
from evserver.config import Config
from evserver.files import FileBody
from evserver.http11 import HTTPError, http_date
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
    method_plan,
    path_of,
    screen,
    spa_fallback,
    status_plan,
    whole_file_plan,
)
from evserver.site import Site
from tests.unit.test_responses import (
    CHALLENGE,
    ETAG,
    MTIME,
    NOW,
    PEER,
    SIZE,
    file_body,
    refused,
    request,
    site,
)

PREFLIGHT = (b"access-control-request-method", b"GET")
ASKED = b"access-control-request-headers"


# -- error pages: the error's own body, the root's NNN.html, or ours ---------------------------

def test_error_plan_fields_byte_for_byte() -> None:
    """Content-Type, Content-Length, then the error's own header lines, each ending CRLF."""
    err = HTTPError(HTTPStatus.TOO_MANY_REQUESTS, "x", close=False,
                    headers=((b"Retry-After", b"60"), (b"X-A", b"b")))
    plan = error_plan(err, {})
    page = error_page(HTTPStatus.TOO_MANY_REQUESTS)
    assert plan.fields == (b"Content-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                           b"Retry-After: 60\r\nX-A: b\r\n" % len(page))
    assert (plan.status, plan.body, plan.close, plan.segments) == (429, page, False, ())


def test_error_plan_picks_the_roots_page_of_that_status_only() -> None:
    """The root's 404.html answers a 404, never a 403; a 403 without its page gets ours."""
    pages = {404: b"<p>lost</p>", 500: b"<p>oops</p>"}
    not_found = error_plan(HTTPError(HTTPStatus.NOT_FOUND, close=False), pages)
    assert not_found.body == b"<p>lost</p>"
    assert not_found.fields == (b"Content-Type: text/html; charset=utf-8\r\n"
                                b"Content-Length: 11\r\n")
    forbidden = error_plan(HTTPError(HTTPStatus.FORBIDDEN, close=False), pages)
    assert forbidden.body == error_page(HTTPStatus.FORBIDDEN)


def test_an_empty_root_page_falls_back_to_ours() -> None:
    """A zero-byte NNN.html would be a blank error: the built-in page is sent instead."""
    plan = error_plan(HTTPError(HTTPStatus.NOT_FOUND), {404: b""})
    assert plan.body == error_page(HTTPStatus.NOT_FOUND) and plan.close is True


def test_the_errors_own_body_wins_even_when_empty() -> None:
    """An error that carries a body (even b"") is sent as is, not replaced by a page."""
    plan = error_plan(HTTPError(HTTPStatus.NOT_FOUND, body=b""), {404: b"<p>lost</p>"})
    assert plan.body == b"" and b"Content-Length: 0\r\n" in plan.fields


def test_the_built_in_page_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status code, reason phrase and description, in the generated pages' look."""
    monkeypatch.setattr(responses, "_generic_pages", {})  # built here, not by an earlier test
    main = ('<p class="status-number" aria-hidden="true">404</p>\n<h1>Not Found</h1>\n'
            "<p>Nothing matches the given URI.</p>\n"
            '<p><a href="/">Go to the home page</a></p>')
    assert error_page(HTTPStatus.NOT_FOUND) == look.document(
        "404 Not Found", main, tag="error 404", footer="evserver",
        css=responses._ERROR_CSS).encode()
    assert b"<title>416 Requested Range Not Satisfiable</title>" in error_page(
        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
    assert error_page(HTTPStatus.NOT_FOUND) is error_page(HTTPStatus.NOT_FOUND)  # built once


# -- OPTIONS, the CORS preflight, other methods ------------------------------------------------

def test_options_plan_byte_for_byte() -> None:
    """204 with Allow only, no body, the connection kept."""
    plan = method_plan(request(b"*", b"OPTIONS"), "")
    assert plan.fields == b"Allow: GET, HEAD, OPTIONS\r\n"
    assert (plan.status, plan.body, plan.segments, plan.close) == (204, b"", (), False)


def test_cors_preflight_byte_for_byte() -> None:
    """The preflight answer: Allow, the methods, a day's max-age, the asked-for headers."""
    req = request(b"/x", b"OPTIONS", PREFLIGHT, (ASKED, b" X-Token ,content-type,,"))
    assert method_plan(req, "https://app.example").fields == (
        b"Allow: GET, HEAD, OPTIONS\r\n"
        b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
        b"Access-Control-Max-Age: 86400\r\n"
        b"Access-Control-Allow-Headers: X-Token, content-type\r\n")


@pytest.mark.parametrize("asked", [None, b"", b" , ,", b"bad name", b"x\x7fy"])
def test_cors_preflight_without_clean_header_names_has_no_allow_headers(
        asked: bytes | None) -> None:
    """Nothing asked, or nothing that is a token: no Access-Control-Allow-Headers line."""
    fields = (PREFLIGHT,) if asked is None else (PREFLIGHT, (ASKED, asked))
    assert method_plan(request(b"/x", b"OPTIONS", *fields), "*").fields == (
        b"Allow: GET, HEAD, OPTIONS\r\n"
        b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
        b"Access-Control-Max-Age: 86400\r\n")


def test_preflight_needs_both_cors_and_the_request_method_field() -> None:
    """Headers asked for without Access-Control-Request-Method: a plain OPTIONS."""
    asked_only = request(b"/x", b"OPTIONS", (ASKED, b"X-Token"))
    assert method_plan(asked_only, "*").fields == b"Allow: GET, HEAD, OPTIONS\r\n"
    both = request(b"/x", b"OPTIONS", PREFLIGHT, (ASKED, b"X-Token"))
    assert method_plan(both, "").fields == b"Allow: GET, HEAD, OPTIONS\r\n"


@pytest.mark.parametrize("method", [
    b"POST", b"PUT", b"DELETE", b"PATCH", b"TRACE", b"CONNECT", b"PROPFIND", b"PROPPATCH",
    b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH", b"QUERY"])
def test_every_registered_method_is_405_with_allow(method: bytes) -> None:
    """A method that exists elsewhere is not allowed here (405), and says what is."""
    err = refused(method_plan, request(b"/x", method), "*")
    assert (err.status, err.headers, err.close) == (405, ((b"Allow", ALLOW),), False)


@pytest.mark.parametrize("method", [b"Options", b"PRI", b"POSTX", b"XPOST", b"QUER"])
def test_an_unknown_method_is_501_without_allow(method: bytes) -> None:
    """Methods are case-sensitive tokens: anything not registered is 501."""
    err = refused(method_plan, request(b"/x", method), "*")
    assert (err.status, err.headers, err.close) == (501, (), False)


# -- Expect ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "expect", "version", "body_follows", "answer"), [
    (b"GET", b"100-CONTINUE", b"HTTP/1.1", True, (CONTINUE, True)),
    (b"GET", b"100-continue", b"HTTP/1.0", True, (b"", True)),
    (b"PUT", b"100-continue", b"HTTP/1.1", False, (b"", True)),
    (b"HEAD", b"100-continue", b"HTTP/1.1", False, (b"", True)),
    (b"OPTIONS", b"100-continue", b"HTTP/1.1", True, (b"", False)),
])
def test_expect_100_continue_edges(method: bytes, expect: bytes, version: bytes,
                                   body_follows: bool, answer: tuple[bytes, bool]) -> None:
    """100 only for a GET or HEAD whose body is still to come; HTTP/1.0 ignores Expect."""
    req = request(b"/", method, (b"expect", expect), version=version)
    assert expectation(req, body_follows) == answer


def test_continue_is_the_exact_interim_response() -> None:
    """The interim response is a complete head on its own."""
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_an_unknown_expectation_keeps_the_connection_when_no_body_follows() -> None:
    """417 with no body left to read keeps framing; HTTP/1.0 never gets a 417."""
    req = request(b"/", b"GET", (b"expect", b"100-continue, x"))
    err = refused(expectation, req, False)
    assert (err.status, err.close) == (417, False)
    old = request(b"/", b"GET", (b"expect", b"x"), version=b"HTTP/1.0")
    assert expectation(old, True) == (b"", True)


# -- who is asking: plain HTTP on the TLS port, the redirect, the address rules ----------------

def redirect_site(**options: object) -> Site:
    cfg = Config(host="127.0.0.1", port=0, tls_redirect=True, tls_port=8443, tls_cert="c",
                 tls_key="k", **options)  # type: ignore[arg-type]
    return Site.build(cfg, "/srv/www", tls_port=8443)


def test_plain_http_on_the_tls_port_comes_before_the_redirect() -> None:
    """400 with our explanation, before any redirect or address rule, and it closes."""
    err = refused(screen, redirect_site(deny=(PEER,)), request(), PEER, tls=False,
                  plain_on_tls=True)
    assert (err.status, err.close) == (400, True)
    assert err.body is not None and b"<title>400 Bad Request</title>" in err.body
    assert b"<p>This port speaks HTTPS: use an <code>https://</code> address.</p>" in err.body


def test_the_redirect_comes_before_the_address_rules() -> None:
    """A denied client on plain HTTP is redirected first: HTTPS then refuses it."""
    s = redirect_site(deny=(PEER,))
    err = refused(screen, s, request(b"/a", b"GET", (b"host", b"h")), PEER, tls=False,
                  plain_on_tls=False)
    assert err.status == 301
    assert refused(screen, s, request(), PEER, tls=True, plain_on_tls=False).status == 403


def test_no_redirect_without_an_https_port() -> None:
    """--tls-redirect with no HTTPS port to send to: served as it is."""
    cfg = Config(host="127.0.0.1", port=0, tls_redirect=True, tls_port=8443, tls_cert="c",
                 tls_key="k")
    s = Site.build(cfg, "/srv/www", tls_port=0)
    assert screen(s, request(), PEER, tls=False, plain_on_tls=False) == PEER


@pytest.mark.parametrize(("host", "location"), [
    (b"files.lan", b"https://files.lan:8443/p?q"),
    (b"10.0.0.1:80", b"https://10.0.0.1:8443/p?q"),
    (b"[::1]", b"https://[::1]:8443/p?q"),
    (b"[::1", b"https://[::1]:8443/p?q"),
    (b"a_b", b"https://localhost:8443/p?q"),
    (b":80", b"https://localhost:8443/p?q"),
    (b"A-Z.example", b"https://A-Z.example:8443/p?q"),
])
def test_redirect_host_names(host: bytes, location: bytes) -> None:
    """The client's host without its port; anything but plain host bytes is localhost."""
    err = https_redirect(request(b"/p?q", b"GET", (b"host", host)), 8443)
    assert (err.status, err.headers, err.close) == (301, ((b"Location", location),), False)


def test_redirect_without_a_host_field_goes_to_localhost() -> None:
    """HTTP/1.0 may send no Host: the redirect still has a host."""
    err = https_redirect(request(b"/p", version=b"HTTP/1.0"), 443)
    assert err.headers == ((b"Location", b"https://localhost:443/p"),)


def test_forwarded_for_is_read_from_every_line() -> None:
    """Several X-Forwarded-For lines are one list: the nearest untrusted hop is the client."""
    s = site(trusted_proxies=("10.0.0.0/8",))
    req = request(b"/", b"GET", (b"x-forwarded-for", b"198.51.100.1"),
                  (b"x-forwarded-for", b"198.51.100.2, 10.0.0.5"))
    assert screen(s, req, "10.1.1.1", tls=False, plain_on_tls=False) == "198.51.100.2"


def test_allow_alone_admits_only_its_networks() -> None:
    """--allow without --deny: inside is served, outside is 403 (keeping the connection)."""
    s = site(allow=("198.51.100.0/24",))
    assert screen(s, request(), "198.51.100.200", tls=False, plain_on_tls=False) \
        == "198.51.100.200"
    err = refused(screen, s, request(), PEER, tls=False, plain_on_tls=False)
    assert (err.status, err.close) == (403, False)


def test_deny_alone_refuses_only_its_networks() -> None:
    """--deny without --allow: everyone else is served."""
    s = site(deny=("198.51.100.0/24",))
    assert screen(s, request(), PEER, tls=False, plain_on_tls=False) == PEER
    assert refused(screen, s, request(), "198.51.100.3", tls=False,
                   plain_on_tls=False).status == 403


@pytest.mark.parametrize(("target", "path"), [
    (b"/a?b?c", "/a"), (b"/a", "/a"), (b"?x", ""), (b"/%3F?x", "/%3F")])
def test_path_of_cuts_at_the_first_question_mark(target: bytes, path: str) -> None:
    """The query starts at the first `?`; percent-encoding is left alone."""
    assert path_of(target) == path


# -- the status and health pages ---------------------------------------------------------------

LOOPBACK = ("127.0.0.0/8",)


def test_status_plan_html_byte_for_byte_head() -> None:
    """HTML by default, never cached, its exact length, varying by Accept."""
    plan = status_plan(request(b"/_status"), "127.0.0.1", LOOPBACK, {"a": 1})
    assert plan.status == 200 and plan.body.startswith(b"<!doctype html>")
    assert plan.fields == (b"Content-Type: text/html; charset=utf-8\r\n"
                           b"Content-Length: %d\r\nCache-Control: no-store\r\n"
                           b"Vary: Accept\r\n" % len(plan.body))


@pytest.mark.parametrize(("target", "accept", "is_json"), [
    (b"/_status?json", None, True), (b"/_status?format=json", None, True),
    (b"/_status?sort=x&format=json", None, True), (b"/_status?jsonx", None, False),
    (b"/_status?x=json", None, False), (b"/_status?", None, False),
    (b"/_status?JSON", None, False), (b"/_status?x?json", None, False),
    (b"/_status", b"application/json", True), (b"/_status", b"*/*", False),
    (b"/_status", b"text/html,application/xhtml+xml,*/*;q=0.8", False),
    (b"/_status?format=html", b"application/json", False),
    (b"/_status?format=json", b"text/html", True)])
def test_status_plan_is_json_when_the_query_or_accept_asks(
        target: bytes, accept: bytes | None, is_json: bool) -> None:
    """`?format=json`, the old `?json`, or an Accept that prefers JSON; nothing else."""
    fields = ((b"accept", accept),) if accept is not None else ()
    plan = status_plan(request(target, b"GET", *fields), "127.0.0.1", LOOPBACK, {"a": 1})
    assert plan.fields.startswith(b"Content-Type: application/json\r\n") is is_json
    assert (plan.body == b'{\n  "a": 1\n}\n') is is_json


@pytest.mark.parametrize(("client", "allowed"), [
    ("127.0.0.1", True), ("127.255.255.255", True), ("128.0.0.1", False),
    ("126.255.255.255", False)])
def test_status_plan_allow_boundaries(client: str, allowed: bool) -> None:
    """Only addresses inside --status-allow read the counters."""
    if allowed:
        assert status_plan(request(b"/_status"), client, LOOPBACK, {}).status == 200
    else:
        err = refused(status_plan, request(b"/_status"), client, LOOPBACK, {})
        assert (err.status, err.close) == (403, False)


@pytest.mark.parametrize(("draining", "status", "body"), [
    (False, HTTPStatus.OK, b"ok\n"), (True, HTTPStatus.SERVICE_UNAVAILABLE, b"draining\n")])
def test_health_plan_byte_for_byte(draining: bool, status: HTTPStatus, body: bytes) -> None:
    """Plain text, never cached, the exact length."""
    plan = health_plan(draining)
    assert (plan.status, plan.body, plan.close) == (status, body, False)
    assert plan.fields == (b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                           b"Cache-Control: no-store\r\n" % len(body))


# -- the login gate ----------------------------------------------------------------------------

AUTH = (b"authorization", b"Basic dTpw")


def gate(client: str, *fields: tuple[bytes, bytes], tls: bool = False, insecure: bool = False,
         blocked: bool = False) -> bytes:
    return login_gate(request(b"/", b"GET", *fields), client, tls=tls, insecure=insecure,
                      blocked=blocked, challenge=CHALLENGE)


@pytest.mark.parametrize(("client", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("127.255.255.254", True), ("::1", True),
    ("128.0.0.1", False), ("126.0.0.1", False), ("10.127.0.1", False), ("::2", False),
    ("1.127.0.0", False)])
def test_login_over_plain_http_is_allowed_only_from_loopback(client: str,
                                                             loopback: bool) -> None:
    """A password may cross plain HTTP only on this machine (127/8, ::1)."""
    if loopback:
        assert gate(client, AUTH) == b"Basic dTpw"
    else:
        err = refused(gate, client, AUTH)
        assert (err.status, err.close, err.headers) == (403, False, ())
        assert err.body is not None and b"<title>403 Forbidden</title>" in err.body
        assert b"serve HTTPS or allow it with <code>--auth-insecure</code>.</p>" in err.body


def test_the_plaintext_refusal_comes_before_the_limiter_and_the_challenge() -> None:
    """403 (insecure) before 429 (blocked) before 401 (no credentials)."""
    assert refused(gate, PEER, blocked=True).status == 403
    assert refused(gate, PEER, tls=True, blocked=True).status == 429
    assert refused(gate, PEER, insecure=True, blocked=True).status == 429
    assert refused(gate, PEER, tls=True).status == 401


def test_blocked_client_gets_429_with_retry_after_even_with_credentials() -> None:
    """While limited, credentials are not even checked."""
    err = refused(gate, PEER, AUTH, tls=True, blocked=True)
    assert (err.status, err.headers, err.close, err.body) == (
        429, ((b"Retry-After", b"60"),), False, None)


def test_no_credentials_is_a_401_challenge() -> None:
    """The challenge is the only extra header, and the connection stays."""
    err = refused(gate, "127.0.0.1")
    assert (err.status, err.headers, err.close, err.body) == (
        401, ((b"WWW-Authenticate", CHALLENGE),), False, None)


@pytest.mark.parametrize(("failures", "at", "blocked"), [
    (2, 10.0, False),  # one failure below the limit
    (3, 10.0, True),  # at the limit
    (3, 59.9, True),  # just inside the window that began with the first failure
    (3, 60.0, False),  # the window is over
])
def test_the_failure_limiter_feeds_the_gate(failures: int, at: float, blocked: bool) -> None:
    """max_failures failures within the window block with 429; the window's end frees."""
    limiter = FailureLimiter(max_failures=3, window=60.0)
    for _ in range(failures):
        limiter.failure(PEER, 0.0)
    is_blocked = limiter.blocked(PEER, at)
    assert is_blocked is blocked
    if blocked:
        assert refused(gate, PEER, AUTH, tls=True, blocked=is_blocked).status == 429
    else:
        assert gate(PEER, AUTH, tls=True, blocked=is_blocked) == b"Basic dTpw"


# -- the SPA fallback --------------------------------------------------------------------------

def test_spa_fallback_compares_the_path_of_the_missing_file() -> None:
    """The missing key carries the variant asked for (codings, no-transform): whichever it
    is, a missing index is a 404, never tried again; another missing path falls back."""
    spa = site(spa=True)
    gzip = request(b"/", b"GET", (b"accept-encoding", b"gzip"))
    for key in ("/srv/www/index.html\0gzip", "/srv/www/index.html",
                "/srv/www/index.html\0br,gzip,no-transform"):
        assert spa_fallback(spa, gzip, key) is None
    assert spa_fallback(spa, gzip, "/srv/www/route\0gzip") == SPA_INDEX


@pytest.mark.parametrize(("target", "answer"), [
    (b"/v1.2/settings", SPA_INDEX),  # a dot in a directory is not an extension
    (b"/app/settings?x=a.b", SPA_INDEX),  # nor in the query
    (b"/app/settings.", None),
    (b"/app/.hidden", None),
    (b"/", SPA_INDEX),
])
def test_spa_fallback_looks_at_the_last_segment_only(target: bytes,
                                                     answer: bytes | None) -> None:
    """Only the last path segment decides whether a missing path is an asset."""
    assert spa_fallback(site(spa=True), request(target), "/srv/www/other") == answer


# -- a file's conditional and range plans ------------------------------------------------------

META = file_body().meta


def plan_for(*fields: tuple[bytes, bytes], method: bytes = b"GET",
             body: FileBody | None = None, max_ranges: int = 100) -> Plan | None:
    return file_plan(request(b"/file.txt", method, *fields), body or file_body(), max_ranges,
                     NOW)


def test_single_range_plan_byte_for_byte() -> None:
    """206: the file's type, the range's length and Content-Range, Accept-Ranges, then the
    validators; the body is one segment of the file."""
    plan = plan_for((b"range", b"bytes=999-"))
    assert plan is not None
    assert plan.fields == (b"Content-Type: text/plain\r\nContent-Length: 1\r\n"
                           b"Content-Range: bytes 999-999/1000\r\nAccept-Ranges: bytes\r\n"
                           + META)
    assert (plan.status, plan.body, plan.segments, plan.close) == (206, b"", ((999, 1),), False)


def test_single_range_of_a_precompressed_variant_names_its_coding() -> None:
    """The Content-Encoding line of the variant comes before Accept-Ranges."""
    body = FileBody("/srv/www/file.txt.gz", SIZE, MTIME * 10**9, 7, ETAG, b"", None, 3, META,
                    b"text/plain", b"Content-Encoding: gzip\r\n", True)
    plan = plan_for((b"range", b"bytes=0-0"), body=body)
    assert plan is not None and plan.fields == (
        b"Content-Type: text/plain\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/1000\r\n"
        b"Content-Encoding: gzip\r\nAccept-Ranges: bytes\r\n" + META)


def test_multipart_plan_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranges: multipart/byteranges with the boundary, the exact length, and pieces
    that interleave part heads with the file's segments."""
    monkeypatch.setattr(responses, "multipart_boundary", lambda: b"BOUND")
    plan = plan_for((b"range", b"bytes=-1,0-1"))
    assert plan is not None
    head1 = b"\r\n--BOUND\r\nContent-Type: text/plain\r\nContent-Range: bytes 999-999/1000\r\n\r\n"
    head2 = b"\r\n--BOUND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/1000\r\n\r\n"
    tail = b"\r\n--BOUND--\r\n"
    assert plan.segments == (head1, (999, 1), head2, (0, 2), tail)
    length = len(head1) + 1 + len(head2) + 2 + len(tail)
    assert plan.fields == (b"Content-Type: multipart/byteranges; boundary=BOUND\r\n"
                           b"Content-Length: %d\r\nAccept-Ranges: bytes\r\n" % length + META)
    assert (plan.status, plan.body) == (206, b"")


@pytest.mark.parametrize(("spec", "segments"), [
    (b"bytes=998-", ((998, 2),)),
    (b"bytes=999-", ((999, 1),)),
    (b"bytes=0-999", ((0, 1000),)),
    (b"bytes=0-1000", ((0, 1000),)),
    (b"bytes=-1", ((999, 1),)),
    (b"bytes=-1000", ((0, 1000),)),
    (b"bytes=-1001", ((0, 1000),)),
])
def test_single_range_segments_one_byte_apart(spec: bytes,
                                              segments: tuple[tuple[int, int], ...]) -> None:
    """The segment is (first, length) of the clipped range."""
    plan = plan_for((b"range", spec))
    assert plan is not None and plan.segments == segments


@pytest.mark.parametrize("spec", [b"bytes=1000-", b"bytes=-0", b"bytes=1000-1000"])
def test_ranges_just_past_the_end_are_416(spec: bytes) -> None:
    """Nothing satisfiable: 416 with `bytes */size`, the connection kept."""
    err = refused(plan_for, (b"range", spec))
    assert (err.status, err.headers, err.close) == (
        416, ((b"Content-Range", b"bytes */1000"),), False)


def test_max_ranges_is_passed_to_the_parser() -> None:
    """--max-ranges: at the limit a multipart, one above the whole file."""
    three = (b"range", b"bytes=0-0,2-2,4-4")
    plan = plan_for(three, max_ranges=3)
    assert plan is not None and plan.status == 206
    assert plan_for(three, max_ranges=2) is None


def test_not_modified_plan_byte_for_byte() -> None:
    """304: the validators only, no body, even when a Range was asked for too."""
    plan = plan_for((b"if-none-match", ETAG), (b"range", b"bytes=0-0"))
    assert plan is not None
    assert (plan.status, plan.fields, plan.body, plan.segments, plan.close) == (
        304, META, b"", (), False)


def test_precondition_failure_beats_the_range() -> None:
    """412 is decided before the Range is looked at; a 304 for HEAD too."""
    err = refused(plan_for, (b"if-match", b'"x"'), (b"range", b"bytes=0-0"))
    assert (err.status, err.close, err.headers) == (412, False, ())
    plan = plan_for((b"if-modified-since", http_date(MTIME)), method=b"HEAD")
    assert plan is not None and plan.status == 304


@pytest.mark.parametrize(("if_range", "now", "ranged"), [
    (ETAG, NOW, True),
    (b"W/" + ETAG, NOW, False),
    (b'"other"', NOW, False),
    (http_date(MTIME), NOW, True),
    (http_date(MTIME), MTIME + 0.5, False),  # Last-Modified is not yet a strong validator
    (http_date(MTIME - 1), NOW, False),
    (http_date(MTIME + 1), NOW, False),
])
def test_if_range_with_a_date_and_an_etag(if_range: bytes, now: float, ranged: bool) -> None:
    """A matching If-Range gives the 206; any other gives the whole file (None)."""
    req = request(b"/file.txt", b"GET", (b"range", b"bytes=0-0"), (b"if-range", if_range))
    plan = file_plan(req, file_body(), 100, now)
    assert (plan is not None and plan.status == 206) is ranged
    if not ranged:
        assert plan is None


def test_if_range_without_range_is_the_whole_file() -> None:
    """If-Range alone asks for nothing partial."""
    assert plan_for((b"if-range", ETAG)) is None


@pytest.mark.parametrize("method", [b"HEAD", b"POST", b"get"])
def test_only_get_has_ranges(method: bytes) -> None:
    """RFC 9110 §14.2: Range is defined for GET only."""
    assert plan_for((b"range", b"bytes=0-0"), method=method) is None


def test_whole_file_plan_byte_for_byte() -> None:
    """200 with the file's own header lines; memory body or one segment of the fd."""
    body = file_body()
    plan = whole_file_plan(body)
    assert (plan.status, plan.fields, plan.body, plan.segments, plan.close) == (
        200, body.fields, body.data, (), False)
    streamed = whole_file_plan(file_body(data=None, fd=5))
    assert (streamed.status, streamed.fields, streamed.body, streamed.segments) == (
        200, body.fields, b"", ((0, SIZE),))


def test_an_empty_file_in_memory_is_sent_from_memory() -> None:
    """b"" is data (an empty file), not a missing body: no segment of an fd."""
    body = FileBody("/srv/www/e", 0, MTIME * 10**9, 7, ETAG, b"F\r\n", b"", None, META)
    plan = whole_file_plan(body)
    assert (plan.body, plan.segments) == (b"", ())


def test_plan_repr_names_everything_but_the_body_bytes() -> None:
    """A plan's repr (for failing tests and debugging) shows the body's size only."""
    plan = Plan(HTTPStatus.OK, b"A: b\r\n", b"xyz", segments=((0, 1),), close=True)
    assert repr(plan) == "Plan(200, b'A: b\\r\\n', 3 bytes, segments=((0, 1),), close=True)"
    default = Plan(HTTPStatus.NO_CONTENT, b"")
    assert (default.body, default.segments, default.close) == (b"", (), False)
