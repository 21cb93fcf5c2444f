"""Mutations of the body framing: Content-Length and Transfer-Encoding, and the chunked
bodies after `Transfer-Encoding: chunked`."""
from __future__ import annotations

from collections.abc import Sequence

from ..cases import Built, Gen, mutation, register_table

# Body framing: (field lines, body) added to a GET.
CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
FRAMING: dict[str, Sequence[tuple[tuple[bytes, ...], bytes]]] = {
    "cl-valid": (((b"Content-Length: 5",), b"hello"), ((b"Content-Length: 1",), b"x")),
    "cl-zero": (((b"Content-Length: 0",), b""),),
    "cl-leading-zeros": (((b"Content-Length: 005",), b"hello"),),
    "cl-duplicate-equal": (((b"Content-Length: 5", b"Content-Length: 5"), b"hello"),
                           ((b"Content-Length: 0", b"Content-Length: 0"), b"")),
    "cl-duplicate-different": (((b"Content-Length: 5", b"Content-Length: 6"), b"hello!"),
                               ((b"Content-Length: 0", b"Content-Length: 5"), b"hello")),
    "cl-list-equal": (((b"Content-Length: 5, 5",), b"hello"), ((b"Content-Length: 5,5",), b"hello"),
                      ((b"Content-Length: 0, 0",), b"")),
    "cl-list-different": (((b"Content-Length: 5, 6",), b"hello!"),
                          ((b"Content-Length: 0, 5",), b"hello")),
    "cl-list-empty-element": (((b"Content-Length: 5,",), b"hello"),
                              ((b"Content-Length: , 5",), b"hello")),
    "cl-negative": (((b"Content-Length: -5",), b"hello"), ((b"Content-Length: -0",), b"")),
    "cl-plus": (((b"Content-Length: +5",), b"hello"),),
    "cl-hex": (((b"Content-Length: 0x5",), b"hello"), ((b"Content-Length: 5h",), b"hello")),
    "cl-huge": (((b"Content-Length: 99999999999999999999999",), b""),
                ((b"Content-Length: 18446744073709551617",), b"")),
    "cl-over-limit": (((b"Content-Length: 2000000",), b""),),
    "cl-empty": (((b"Content-Length:",), b""), ((b"Content-Length: ",), b"")),
    "cl-inner-space": (((b"Content-Length: 5 5",), b"hello"), ((b"Content-Length: 1 0",), b"")),
    "cl-short-body": (((b"Content-Length: 10",), b"hello"),),
    "cl-and-te": (((b"Content-Length: 5", b"Transfer-Encoding: chunked"), b"0\r\n\r\n"),
                  ((b"Transfer-Encoding: chunked", b"Content-Length: 0"), CHUNKED)),
    "te-chunked": (((b"Transfer-Encoding: chunked",), CHUNKED),),
    "te-chunked-gzip": (((b"Transfer-Encoding: chunked, gzip",), CHUNKED),),
    "te-gzip-chunked": (((b"Transfer-Encoding: gzip, chunked",), CHUNKED),),
    "te-identity": (((b"Transfer-Encoding: identity",), b""),
                    ((b"Transfer-Encoding: identity",), CHUNKED)),
    "te-unknown": (((b"Transfer-Encoding: xchunked",), CHUNKED),
                   ((b"Transfer-Encoding: chunk",), CHUNKED)),
    "te-empty": (((b"Transfer-Encoding:",), b""),),
    "te-trailing-space": (((b"Transfer-Encoding: chunked ",), CHUNKED),
                          ((b"Transfer-Encoding:  chunked  ",), CHUNKED)),
    "te-capitalized": (((b"Transfer-Encoding: Chunked",), CHUNKED),
                       ((b"Transfer-Encoding: CHUNKED",), CHUNKED)),
    "te-chunked-twice": (((b"Transfer-Encoding: chunked, chunked",), CHUNKED),
                         ((b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
                          CHUNKED)),
    "te-two-lines": (((b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"), CHUNKED),),
    "te-list-empty-element": (((b"Transfer-Encoding: , chunked",), CHUNKED),
                              ((b"Transfer-Encoding: chunked,",), CHUNKED)),
}


def _framing(g: Gen, choice: tuple[tuple[bytes, ...], bytes]) -> Built:
    lines, body = choice
    return g.spec(method=g.pick((b"GET", b"GET", b"POST")), fields=lines, body=body)


register_table(FRAMING, _framing)


@mutation("te-http10")
def _te_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Transfer-Encoding: chunked"], body=CHUNKED)


# Chunked bodies after `Transfer-Encoding: chunked`.
CHUNKED_BODIES: dict[str, Sequence[bytes]] = {
    "chunk-valid": (CHUNKED, b"0\r\n\r\n", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                    b"A\r\n0123456789\r\n0\r\n\r\n", b"00005\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension": (b"5;ext=1\r\nhello\r\n0\r\n\r\n", b'5;a;b="c d"\r\nhello\r\n0;x\r\n\r\n',
                        b"5 ;ext\r\nhello\r\n0\r\n\r\n"),
    "chunk-trailers": (b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
                       b"0\r\nX-A: 1\r\nX-B: 2\r\n\r\n"),
    "chunk-bad-hex": (b"xyz\r\nhello\r\n0\r\n\r\n", b"5g\r\nhello\r\n0\r\n\r\n",
                      b"-5\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\nzz\r\n\r\n"),
    "chunk-size-prefix": (b"0x5\r\nhello\r\n0\r\n\r\n", b"+5\r\nhello\r\n0\r\n\r\n",
                          b" 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-empty-size": (b"\r\nhello\r\n0\r\n\r\n", b";ext\r\nhello\r\n0\r\n\r\n"),
    "chunk-missing-crlf": (b"5\r\nhelloX\r\n0\r\n\r\n", b"5\r\nhello0\r\n\r\n",
                           b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": (b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                            b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
    "chunk-too-big": (b"7fffffffffffffff\r\nhello\r\n0\r\n\r\n", b"200000\r\nhello"),
    "chunk-bare-lf": (b"5\nhello\n0\n\n", b"5\r\nhello\n0\r\n\r\n"),
    "chunk-bare-cr": (b"5\rhello\r\n0\r\n\r\n", b"5\r\nhello\r0\r\n\r\n"),
    "chunk-bad-trailer": (b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
                          b"0\r\nX: \x00\r\n\r\n", b"0\r\n : folded\r\n\r\n"),
    "chunk-incomplete": (b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n"),
}


def _chunked(g: Gen, body: bytes) -> Built:
    return g.spec(method=g.pick((b"GET", b"GET", b"POST")),
                  fields=[b"Transfer-Encoding: chunked"], body=body)


register_table(CHUNKED_BODIES, _chunked)
