"""Mutations of the request line: methods, versions, spacing, control bytes, absolute-,
authority- and asterisk-form, and of the target: every spelling of `..`, encoded slashes and
backslashes, `%00`, overlong UTF-8, fragments, queries, long targets."""
from __future__ import annotations

from collections.abc import Sequence

from ..cases import FILE_PATHS, Built, Gen, mutation, register_table

# Whole request lines; {t} becomes a path of the fixture.
REQUEST_LINES: dict[str, Sequence[bytes]] = {
    "method-lowercase": (b"get {t} HTTP/1.1", b"Get {t} HTTP/1.1", b"head {t} HTTP/1.1"),
    "method-unknown": (b"FOO {t} HTTP/1.1", b"GETT {t} HTTP/1.1", b"BREW {t} HTTP/1.1"),
    "method-registered": (b"PUT {t} HTTP/1.1", b"DELETE {t} HTTP/1.1", b"TRACE {t} HTTP/1.1",
                          b"PATCH {t} HTTP/1.1", b"POST {t} HTTP/1.1"),
    "method-options": (b"OPTIONS {t} HTTP/1.1",),
    "method-options-asterisk": (b"OPTIONS * HTTP/1.1",),
    "method-connect": (b"CONNECT 127.0.0.1:80 HTTP/1.1", b"CONNECT example.com:443 HTTP/1.1"),
    "method-invalid-token": (b"G(T {t} HTTP/1.1", b"GE:T {t} HTTP/1.1", b"G/ET {t} HTTP/1.1"),
    "target-asterisk-get": (b"GET * HTTP/1.1", b"HEAD * HTTP/1.1"),
    "version-http10": (b"GET {t} HTTP/1.0",),
    "version-http2": (b"GET {t} HTTP/2.0", b"GET {t} HTTP/3.0", b"GET {t} HTTP/2"),
    "version-two-digit": (b"GET {t} HTTP/1.10", b"GET {t} HTTP/1.01", b"GET {t} HTTP/01.1",
                          b"GET {t} HTTP/11.1"),
    "version-future-minor": (b"GET {t} HTTP/1.2", b"GET {t} HTTP/1.9"),
    "version-http09": (b"GET {t} HTTP/0.9",),
    "version-trailing-space": (b"GET {t} HTTP/1.1 ", b"GET {t} HTTP/1.1\t"),
    "version-lowercase": (b"GET {t} http/1.1", b"GET {t} Http/1.1", b"GET {t} HTTP/1.1".lower()),
    "version-missing": (b"GET {t}", b"GET {t} "),
    "version-garbage": (b"GET {t} HTTP/1.1x", b"GET {t} HTTP/x.y", b"GET {t} FOO/1.1",
                        b"GET {t} HTTP/1", b"GET {t} HTTP/1.", b"GET {t} HTTP/+1.1"),
    "line-missing-target": (b"GET HTTP/1.1", b"GET  HTTP/1.1"),
    "line-missing-method": (b" {t} HTTP/1.1", b"{t} HTTP/1.1"),
    "line-extra-space": (b"GET  {t} HTTP/1.1", b"GET {t}  HTTP/1.1", b"GET {t} HTTP/1.1 x"),
    "line-tab-separator": (b"GET\t{t}\tHTTP/1.1", b"GET\t{t} HTTP/1.1", b"GET {t}\tHTTP/1.1"),
    "line-control-char": (b"GET {t}\x01 HTTP/1.1", b"GE\x00T {t} HTTP/1.1",
                          b"GET /a\x7fb HTTP/1.1", b"GET {t} HTTP/1.1\x0b",
                          b"GET /a\x00b HTTP/1.1", b"GET {t}\x0c HTTP/1.1"),
    "target-absolute-form": (b"GET http://127.0.0.1:8080{t} HTTP/1.1",
                             b"GET http://example.com{t} HTTP/1.1",
                             b"GET HTTP://EXAMPLE.COM{t} HTTP/1.1",
                             b"GET http://example.com{t}?q=1 HTTP/1.1"),
    "target-absolute-no-path": (b"GET http://example.com HTTP/1.1",
                                b"GET http://example.com?x=1 HTTP/1.1"),
    "target-absolute-https": (b"GET https://example.com{t} HTTP/1.1",),
    "target-absolute-other-scheme": (b"GET ftp://example.com{t} HTTP/1.1",
                                     b"GET foo:bar HTTP/1.1", b"GET mailto:a@b HTTP/1.1"),
    "target-absolute-userinfo": (b"GET http://user@example.com{t} HTTP/1.1",
                                 b"GET http://u:p@127.0.0.1:8080{t} HTTP/1.1"),
    "target-absolute-traversal": (b"GET http://example.com/../canary.txt HTTP/1.1",
                                  b"GET http://example.com/%2e%2e/canary.txt HTTP/1.1",
                                  b"GET http://example.com/sub/../../canary.txt HTTP/1.1"),
    "target-authority-form": (b"GET 127.0.0.1:8080 HTTP/1.1", b"GET example.com:80 HTTP/1.1"),
}


def _request_line(g: Gen, line: bytes) -> Built:
    spec = g.spec(method=b"GET")
    spec.line = line.replace(b"{t}", g.pick(FILE_PATHS))
    return spec


register_table(REQUEST_LINES, _request_line)

# Request targets; the canary lies beside the root, at /../canary.txt.
TARGETS: dict[str, Sequence[bytes]] = {
    "target-dotdot": (b"/../canary.txt", b"/sub/../../canary.txt", b"/..", b"/../",
                      b"/./../canary.txt", b"/sub/../../../../canary.txt", b"/../root/hello.txt"),
    "target-dot-segments-inside": (b"/sub/../hello.txt", b"/./hello.txt", b"/sub/./page.txt",
                                   b"/sub/..", b"/sub/.", b"/sub/page.txt/.."),
    "target-encoded-dots": (b"/%2e%2e/canary.txt", b"/%2E%2E/canary.txt", b"/.%2e/canary.txt",
                            b"/%2e./canary.txt", b"/sub/%2e%2e/%2e%2e/canary.txt",
                            b"/%2e%2e", b"/sub/%2e%2e/hello.txt"),
    "target-encoded-slash": (b"/..%2fcanary.txt", b"/sub%2f..%2f..%2fcanary.txt",
                             b"/%2e%2e%2fcanary.txt", b"/sub%2fpage.txt", b"/%2F..%2Fcanary.txt"),
    "target-encoded-backslash": (b"/..%5ccanary.txt", b"/%2e%2e%5ccanary.txt",
                                 b"/sub%5cpage.txt", b"/sub/..%5C..%5Ccanary.txt"),
    "target-backslash": (b"/..\\canary.txt", b"/sub\\..\\..\\canary.txt", b"/sub\\page.txt",
                         b"\\hello.txt"),
    "target-double-slash": (b"//hello.txt", b"/sub//page.txt", b"//../canary.txt", b"///",
                            b"//sub//"),
    "target-encoded-nul": (b"/hello.txt%00", b"/hello.txt%00.html", b"/%00/../canary.txt",
                           b"/sub/%00"),
    "target-overlong-utf8": (b"/%c0%ae%c0%ae/canary.txt", b"/%c0%ae%c0%ae%c0%afcanary.txt",
                             b"/..%c0%afcanary.txt", b"/%e0%80%ae%e0%80%ae/canary.txt",
                             b"/%c1%9c..%c1%9ccanary.txt"),
    "target-fragment": (b"/hello.txt#x", b"/hello.txt#/../../canary.txt", b"/sub/#frag",
                        b"/#", b"/hello.txt#?q"),
    "target-query": (b"/hello.txt?a=1", b"/hello.txt?/../../canary.txt", b"/?x", b"/sub/?a=b&c",
                     b"/hello.txt?", b"/sub?x=1", b"/hello.txt??"),
    "target-bad-percent": (b"/hello%zz.txt", b"/hello.txt%", b"/%2", b"/%g0"),
    "target-non-ascii": (b"/h\xc3\xa9llo.txt", b"/\xff.txt", b"/sub/\xe2\x80\xae.txt"),
    "target-no-leading-slash": (b"hello.txt", b"..", b"%2fhello.txt", b"./hello.txt"),
    "target-encoded-name": (b"/space%20name.txt", b"/50%25.txt", b"/%68ello.txt",
                            b"/sub/%70age.txt", b"/space name.txt"),
}


def _target(g: Gen, target: bytes) -> Built:
    return g.spec(target=target)


register_table(TARGETS, _target)


@mutation("target-long-ok")
def _long_target_ok(g: Gen) -> Built:
    """Well under both servers' request-line limit (8 KiB)."""
    return g.spec(target=g.pick(FILE_PATHS) + b"?" + b"a" * g.pick((1000, 3000, 6000)))


@mutation("target-long-over")
def _long_target_over(g: Gen) -> Built:
    """Well over both servers' request-line limit."""
    return g.spec(target=b"/" + b"a" * g.pick((9000, 12000, 20000)))
