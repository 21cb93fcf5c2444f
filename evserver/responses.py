"""What to answer, decided without I/O: each function takes the request, the site, the
file's metadata and the client's facts, and returns a `Plan` or raises `HTTPError`.

Owns: `Plan`, and the decisions: error pages (`error_plan`), OPTIONS and CORS preflight
(`method_plan`), `Expect` (`expectation`), plain HTTP on the HTTPS port, the HTTPS redirect
and the address rules (`screen`, with the X-Forwarded-For walk), the status, metrics and
health answers, the login gate, the SPA fallback, and the conditional / range / multipart
plan of a file (`file_plan`, `whole_file_plan`). Imports `http11`, `semantics`, `files`, `site`,
`addresses`, `status`, `statuspage`, `metrics`, `live`.

A plan holds only what is particular to its response: the status, the header lines after
the ones every response carries (which the connection adds with `Date` and `Connection`),
and the body. The connection executes plans; it never decides one. Nothing here touches a
socket, a file, the clock (`now` is passed in) or the server's mutable state.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from http import HTTPStatus

from .addresses import forwarded_client, in_networks
from .files import FileBody, route
from .http11 import TCHAR, HTTPError, Request
from .live import inject
from .look import document
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Snapshot, render_text
from .semantics import (
    Validators,
    content_range,
    if_range_allows,
    multipart_boundary,
    multipart_plan,
    parse_range,
    precondition_status,
    prefers_json,
    unsatisfied_range,
)
from .site import Site
from .status import render_json
from .statuspage import render_html

ALLOW = b"GET, HEAD, OPTIONS"
# Registered methods (IANA) that exist but are not allowed on static files: 405, not 501.
_KNOWN_METHODS = frozenset(b"POST PUT DELETE PATCH TRACE CONNECT PROPFIND PROPPATCH MKCOL COPY "
                           b"MOVE LOCK UNLOCK SEARCH QUERY".split())
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SPA_INDEX = b"/index.html"
_HOST_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:"
_OK, _NOT_MODIFIED = HTTPStatus.OK, HTTPStatus.NOT_MODIFIED  # Enum lookups are slow in 3.11
NO_STORE = b"Cache-Control: no-store\r\n"  # --no-cache: on every response

Segment = bytes | tuple[int, int]  # bytes, or (offset, length) of the plan's file


class Plan:
    """A response decided: its status, its own header lines, and its body.

    `fields` are the lines after those every response carries (Server, `--header`, Date),
    each ending in CRLF. The body is `body`, or `segments` when part of it comes from a
    file: bytes and (offset, length) pieces of that file. `close`: framing is lost, the
    connection closes after this response. A HEAD's plan goes out without its body.
    """

    __slots__ = ("status", "fields", "body", "segments", "close")

    def __init__(self, status: HTTPStatus, fields: bytes, body: bytes = b"", *,
                 segments: tuple[Segment, ...] = (), close: bool = False) -> None:
        self.status = status
        self.fields = fields
        self.body = body
        self.segments = segments
        self.close = close

    def __repr__(self) -> str:
        return (f"Plan({self.status.value}, {self.fields!r}, {len(self.body)} bytes, "
                f"segments={self.segments!r}, close={self.close})")


# -- errors, methods, expectations ----------------------------------------------------------

_generic_pages: dict[HTTPStatus, bytes] = {}
# The status number large above its phrase, as a person meets an error page.
_ERROR_CSS = (".status-number{margin:1.5rem 0 0;font-size:clamp(3rem,12vw,5rem);font-weight:800;"
              "line-height:1;color:var(--accent);letter-spacing:-.03em}"
              "main .status-number+h1{margin-top:.25rem}")


def error_page(status: HTTPStatus, explanation: str = "") -> bytes:
    """evserver's own page for `status` (when the root has no NNN.html), in the look of
    every generated page. `explanation` (HTML, escaped by the caller) replaces the
    status's standard description."""
    page = None if explanation else _generic_pages.get(status)
    if page is None:
        text = explanation or html.escape(status.description) + "."
        main = (f'<p class="status-number" aria-hidden="true">{status.value}</p>\n'
                f"<h1>{html.escape(status.phrase)}</h1>\n<p>{text}</p>\n"
                '<p><a href="/">Go to the home page</a></p>')
        page = document(f"{status.value} {status.phrase}", main, tag=f"error {status.value}",
                        footer="evserver", css=_ERROR_CSS).encode()
        if not explanation:
            _generic_pages[status] = page
    return page


_PLAIN_ON_TLS = error_page(HTTPStatus.BAD_REQUEST,
                           "This port speaks HTTPS: use an <code>https://</code> address.")
_PLAIN_HTTP_LOGIN = error_page(
    HTTPStatus.FORBIDDEN, "This server asks for a password, and this connection would carry it "
    "unencrypted across the network, so it is refused. The operator can serve HTTPS or allow "
    "it with <code>--auth-insecure</code>.")


def error_plan(err: HTTPError, pages: Mapping[int, bytes], live_path: str = "", *,
               no_store: bool = False) -> Plan:
    """The answer to an `HTTPError`: its own body, the root's NNN.html, or ours. With
    `live_path` (--live-reload) an HTML page listens for changes too: a 404 for a page not
    written yet reloads when it is. `no_store` (--no-cache): `Cache-Control: no-store`, as
    on every response then (unless the error brings a Cache-Control of its own)."""
    status = err.status
    body = err.body
    if body is None:
        body = pages.get(status) or error_page(status)
    if live_path:
        body = inject(body, live_path) or body
    extra = b"".join(b"%s: %s\r\n" % pair for pair in err.headers)
    if no_store and all(name.lower() != b"cache-control" for name, _ in err.headers):
        extra += NO_STORE
    fields = b"Content-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n%s" % (
        len(body), extra)
    return Plan(status, fields, body, close=err.close)


def method_plan(req: Request, cors: str, *, no_store: bool = False) -> Plan:
    """A method other than GET and HEAD: OPTIONS (with a CORS preflight when --cors is on)
    gets 204; a method that exists gets 405, an unknown one 501 (RFC 9110 §15.5.6, §15.6.2).
    `no_store` (--no-cache): the 204 says `Cache-Control: no-store` too."""
    if req.method == b"OPTIONS":
        return Plan(HTTPStatus.NO_CONTENT, b"Allow: %s\r\n%s%s" % (
            ALLOW, _preflight(req, cors), NO_STORE if no_store else b""))
    if req.method in _KNOWN_METHODS:
        raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, "method", headers=((b"Allow", ALLOW),),
                        close=False)
    raise HTTPError(HTTPStatus.NOT_IMPLEMENTED, "unknown method", close=False)


def _preflight(req: Request, cors: str) -> bytes:
    """The CORS preflight answer (Fetch standard) when --cors is on and this OPTIONS is
    one: the methods we serve, the request headers asked for, cached a day.
    Access-Control-Allow-Origin itself is among the site's fields already."""
    if not cors or b"access-control-request-method" not in req.fields:
        return b""
    asked = req.fields.get(b"access-control-request-headers", b"")
    # Echo only a clean list of tokens: the value goes back into our head.
    names = [n.strip() for n in asked.split(b",") if n.strip()]
    allow_headers = b", ".join(n for n in names if not n.translate(None, TCHAR))
    lines = b"Access-Control-Allow-Methods: %s\r\nAccess-Control-Max-Age: 86400\r\n" % ALLOW
    if allow_headers:
        lines += b"Access-Control-Allow-Headers: %s\r\n" % allow_headers
    return lines


def expectation(req: Request, body_follows: bool) -> tuple[bytes, bool]:
    """RFC 9110 §10.1.1, `Expect`: (an interim response to send before the final one,
    whether the connection may stay open). Raises 417 for any expectation but
    100-continue. `body_follows`: the request's body has not been read yet."""
    expect = req.fields.get(b"expect")
    if expect is None or req.version == b"HTTP/1.0":
        return b"", True  # an HTTP/1.0 client cannot have meant it: ignored (§10.1.1)
    if expect.lower() != b"100-continue":
        raise HTTPError(HTTPStatus.EXPECTATION_FAILED, "expectation", close=body_follows)
    if not body_follows:
        return b"", True
    if req.method == b"GET" or req.method == b"HEAD":
        return CONTINUE, True  # let the body come; the parser discards it
    return b"", False  # answered without the body: close instead of reading it


# -- who is asking --------------------------------------------------------------------------

def screen(site: Site, req: Request, peer: str, *, tls: bool, plain_on_tls: bool) -> str:
    """The rules that need the connection or the client's address, in order: plain HTTP
    sent to the HTTPS port (400), --tls-redirect (301), then who the client really is
    (behind a trusted proxy, from X-Forwarded-For) and --deny / --allow (403). Returns the
    client's address."""
    cfg = site.cfg
    if plain_on_tls:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "plain HTTP to HTTPS", body=_PLAIN_ON_TLS)
    if cfg.tls_redirect and not tls and site.tls_port:
        raise https_redirect(req, site.tls_port)
    client = peer
    if cfg.trusted_proxies and b"x-forwarded-for" in req.fields:
        client = forwarded_client(peer, [v for k, v in req.headers if k == b"x-forwarded-for"],
                                  cfg.trusted_proxies)
    if (cfg.deny and in_networks(client, cfg.deny)) or (cfg.allow
                                                        and not in_networks(client, cfg.allow)):
        raise HTTPError(HTTPStatus.FORBIDDEN, "address rule", close=False)
    return client


def https_redirect(req: Request, tls_port: int) -> HTTPError:
    """--tls-redirect: a 301 to the same path on the HTTPS port, at the host name the
    client used (when it is a plain name or address; `localhost` otherwise)."""
    host_field = req.fields.get(b"host", b"")
    if host_field.startswith(b"["):  # [v6]:port
        host = host_field.partition(b"]")[0] + b"]"
    else:
        host = host_field.partition(b":")[0]
    if not host or host.translate(None, _HOST_BYTES):
        host = b"localhost"
    target = req.target if req.target.startswith(b"/") else b"/"
    location = b"https://%s:%d%s" % (host, tls_port, target)
    return HTTPError(HTTPStatus.MOVED_PERMANENTLY, "to https", headers=((b"Location", location),),
                     close=False)


def path_of(target: bytes) -> str:
    """The path of a request target, without its query, as text (for the options that
    name paths: --status-path, --health-path, --auth-path, --spa)."""
    return target.partition(b"?")[0].decode("latin-1")


# -- pages of the server's own --------------------------------------------------------------

def status_plan(req: Request, client: str, allow: tuple[str, ...], snapshot: Snapshot) -> Plan:
    """--status-path: the metrics, as a page with charts, or as JSON (`?format=json`, the
    old `?json`, or `Accept: application/json`); only to the addresses --status-allow names
    (loopback by default), 403 to others."""
    if not in_networks(client, allow):
        raise HTTPError(HTTPStatus.FORBIDDEN, "status page", close=False)
    if prefers_json(req.target.partition(b"?")[2], req.fields.get(b"accept")):
        body, ctype = render_json(snapshot), b"application/json"
    else:
        body, ctype = render_html(snapshot), b"text/html; charset=utf-8"
    return Plan(_OK, b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
                b"Vary: Accept\r\n" % (ctype, len(body)), body)


def metrics_plan(client: str, allow: tuple[str, ...], snapshot: Snapshot) -> Plan:
    """--metrics-path: the Prometheus text exposition (format 0.0.4), to the addresses
    --status-allow names, 403 to others."""
    if not in_networks(client, allow):
        raise HTTPError(HTTPStatus.FORBIDDEN, "metrics", close=False)
    body = render_text(snapshot)
    return Plan(_OK, b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
                % (METRICS_TYPE, len(body)), body)


def health_plan(draining: bool) -> Plan:
    """--health-path: 200 `ok` while serving, 503 `draining` once a stop began, so a load
    balancer takes this server out before it goes (HAProxy's `option httpchk` sends
    HTTP/1.0 without Host: fine here)."""
    body = b"draining\n" if draining else b"ok\n"
    return Plan(HTTPStatus.SERVICE_UNAVAILABLE if draining else _OK,
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                b"Cache-Control: no-store\r\n" % len(body), body)


# -- logins ---------------------------------------------------------------------------------

def login_gate(req: Request, client: str, *, tls: bool, insecure: bool, blocked: bool,
               challenge: bytes) -> bytes:
    """HTTP Basic authentication (RFC 7617) before a protected path: the Authorization
    value to check (in the pool: a slow hash by design), or an HTTPError: 403 for a
    password that would cross the network in plaintext (unless --auth-insecure or from
    loopback), 429 while the client's failures are limited, 401 without credentials."""
    if not tls and not insecure and not _loopback(client):
        raise HTTPError(HTTPStatus.FORBIDDEN, "login over plain HTTP", close=False,
                        body=_PLAIN_HTTP_LOGIN)
    if blocked:
        raise HTTPError(HTTPStatus.TOO_MANY_REQUESTS, "failed logins",
                        headers=((b"Retry-After", b"60"),), close=False)
    header = req.fields.get(b"authorization")
    if header is None:
        raise HTTPError(HTTPStatus.UNAUTHORIZED, "no credentials",
                        headers=((b"WWW-Authenticate", challenge),), close=False)
    return header


def login_refused(challenge: bytes) -> HTTPError:
    """Wrong credentials: 401 again, with the challenge."""
    return HTTPError(HTTPStatus.UNAUTHORIZED, "wrong credentials",
                     headers=((b"WWW-Authenticate", challenge),), close=False)


def _loopback(address: str) -> bool:
    return address == "::1" or address.startswith("127.")


# -- files ----------------------------------------------------------------------------------

def spa_fallback(site: Site, req: Request, missing_key: str) -> bytes | None:
    """--spa: a path with no file extension that found nothing is answered with
    /index.html, so a single-page app's client-side routes survive a reload. The target
    to serve instead, or None: a missing asset stays a 404, as does a missing index."""
    if not site.cfg.spa or "." in path_of(req.target).rpartition("/")[2]:
        return None
    # The index itself is missing: 404, not a loop. Paths are compared, not keys: the
    # variant asked for (codings, no-transform) does not change which file is missing.
    if route(site.docroot, SPA_INDEX, None)[1] == missing_key.partition("\0")[0]:
        return None
    return SPA_INDEX


def file_plan(req: Request, body: FileBody, max_ranges: int, now: float) -> Plan | None:
    """A conditional or ranged request for `body` (which has validators): 304, 206, or
    None when the whole file is the answer. Raises 412 and 416. `now`: the wall clock."""
    validators = Validators(body.etag, body.mtime)
    status = precondition_status(req, validators, now)
    if status is _NOT_MODIFIED:
        return Plan(status, body.meta)
    if status is not None:
        raise HTTPError(status, "precondition failed", close=False)
    spec = _singleton(req, b"range")
    # RFC 9110 §14.2: GET is the only method with range handling; HEAD ignores Range. An
    # If-Range sent twice cannot be evaluated, so it does not match: the whole file.
    if spec is None or req.method != b"GET" or (
            b"if-range" in req.fields and _singleton(req, b"if-range") is None) or not (
            if_range_allows(req.fields.get(b"if-range"), validators, now)):
        return None
    ranges = parse_range(spec, body.size, max_ranges)
    return None if ranges is None else _ranges_plan(body, ranges)


def _singleton(req: Request, name: bytes) -> bytes | None:
    """The value of a field that may appear once, or None when it is absent or repeated:
    a singleton field sent twice is invalid (RFC 9110 §5.3), and an invalid Range or
    If-Range may be ignored (§14.2, §13.1.5) rather than guessed at (the first? the last?)."""
    value = req.fields.get(name)
    if value is not None and sum(1 for field, _ in req.headers if field == name) > 1:
        return None
    return value


def _ranges_plan(body: FileBody, ranges: list[tuple[int, int]]) -> Plan:
    size = body.size
    if not ranges:
        raise HTTPError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "range",
                        headers=((b"Content-Range", unsatisfied_range(size)),), close=False)
    if len(ranges) == 1:
        first, last = ranges[0]
        segments: list[Segment] = [(first, last - first + 1)]
        length, ctype = last - first + 1, body.ctype
        extra = b"Content-Range: %s\r\n" % content_range(first, last, size)
    else:
        # A fresh boundary per response: nobody can plant it in a file beforehand.
        boundary = multipart_boundary()
        segments, length = multipart_plan(ranges, size, body.ctype, boundary)
        ctype, extra = b"multipart/byteranges; boundary=" + boundary, b""
    fields = b"Content-Type: %s\r\nContent-Length: %d\r\n%s%sAccept-Ranges: bytes\r\n%s" % (
        ctype, length, extra, body.coding, body.meta)
    return Plan(HTTPStatus.PARTIAL_CONTENT, fields, segments=tuple(segments))


def whole_file_plan(body: FileBody) -> Plan:
    """A 200 with the whole file: its bytes, or all of it from its fd."""
    if body.data is not None:
        return Plan(_OK, body.fields, body.data)
    return Plan(_OK, body.fields, segments=((0, body.size),))
