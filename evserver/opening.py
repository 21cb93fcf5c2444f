"""The stage before HTTP: a balancer's PROXY preamble, then a TLS handshake.

Owns: `Opening`, `OpeningFailed`, and the results of `Opening.step()`: `WANT_READ`,
`WANT_WRITE`, `WRAP`, `READY`. Imports `proxyproto`. Loop thread only.

An `Opening` lives from accept until HTTP can begin, and only on connections that need it
(--proxy-protocol, or a TLS port). It reads and handshakes on the socket it is given, but
never registers, times or closes anything: the connection owns those, and asks the opening
which way to wait (`wants_write`) and what it learned (`client`, `rest`, `plain`).
"""
from __future__ import annotations

import socket
import ssl

from .proxyproto import PreambleParser, ProxyError, preamble_part

# What step() says: wait for the socket to be readable / writable; wrap the socket in TLS
# now (the connection unregisters the plain socket first, then calls wrap()); HTTP may begin.
WANT_READ, WANT_WRITE, WRAP, READY = 0, 1, 2, 3
_TLS_HANDSHAKE_RECORD = b"\x16"


class OpeningFailed(Exception):
    """The connection must be closed without a word: a malformed preamble, a failed
    handshake, or a client that left. Answering would speak HTTP to something that is not
    an HTTP client. The message is the reason, for the debug log; `stage` is what failed
    ("proxy": the preamble, "tls": the handshake; "" when the client closed before sending
    a byte, as a TCP health check does: nothing was attempted); `left` is true when the
    client went away (closed or reset), false when it sent something wrong."""

    def __init__(self, message: str, stage: str, left: bool = False) -> None:
        super().__init__(message)
        self.stage = stage
        self.left = left


class Opening:
    """The preamble (if --proxy-protocol) and then the handshake (if a TLS port)."""

    __slots__ = ("_preamble", "_tls", "_recv_size", "_handshaking", "wants_write", "client",
                 "rest", "plain", "preamble_read", "handshaken", "_heard")

    def __init__(self, proxy_protocol: bool, tls: ssl.SSLContext | None,
                 recv_size: int = 65536) -> None:
        self._preamble = PreambleParser() if proxy_protocol else None
        self._recv_size = recv_size
        self._tls = tls  # until the socket is wrapped
        self._handshaking = False
        self.wants_write = False  # OpenSSL waits to write handshake bytes
        self.client: str | None = None  # who the balancer says the client is
        self.rest = b""  # plain HTTP bytes that came in the preamble's packet
        self.plain = False  # plain HTTP arrived on the HTTPS port
        self.preamble_read = False  # (for the metrics) a PROXY preamble was accepted
        self.handshaken = False  # a TLS handshake completed
        self._heard = False  # the client sent a byte of its preamble

    def step(self, sock: socket.socket) -> int:
        """Go as far as the socket allows. Raises OpeningFailed, or OSError from the
        socket (for the connection's one errno classification)."""
        if self._preamble is not None:
            if not self._read_preamble(sock):
                return WANT_READ
            if self._tls is None and not self._handshaking:
                return READY
        if self._handshaking:
            return self._handshake(sock)
        if self._tls is not None:
            return self._sniff(sock)
        return READY

    def _read_preamble(self, sock: socket.socket) -> bool:
        assert self._preamble is not None
        try:
            if self._tls is not None:
                # Before TLS: read only the preamble's bytes, never the ClientHello's.
                peeked = sock.recv(self._recv_size, socket.MSG_PEEK)
                data = sock.recv(preamble_part(peeked)) if peeked else b""
            else:
                data = sock.recv(self._recv_size)
        except (BlockingIOError, InterruptedError):
            return False
        if not data:
            raise OpeningFailed("closed before its PROXY preamble",
                                "proxy" if self._heard else "", left=True)
        self._heard = True
        try:
            preamble = self._preamble.feed(data)
        except ProxyError as err:
            raise OpeningFailed(f"bad PROXY preamble: {err}", "proxy") from None
        if preamble is None:
            return False
        self._preamble = None
        self.preamble_read = True
        self.client = preamble.client  # None for LOCAL (a health check): the balancer itself
        if self._tls is not None and preamble.rest:
            raise OpeningFailed("data after the PROXY preamble on a TLS port", "proxy")
        self.rest = preamble.rest
        return True

    def _sniff(self, sock: socket.socket) -> int:
        """The first byte, peeked: a TLS handshake record, or plain HTTP (which gets a
        clean 400 pointing to https://, in plaintext a browser shows)."""
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return WANT_READ
        if not first:
            raise OpeningFailed("closed before the TLS handshake", "", left=True)
        if first != _TLS_HANDSHAKE_RECORD:
            self._tls = None
            self.plain = True
            return READY
        return WRAP

    @property
    def stage(self) -> str:
        """What a timeout interrupts: "proxy" (a preamble begun or awaited), "tls"."""
        return "proxy" if self._preamble is not None else "tls"

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """The TLS socket that replaces `sock` (same fd), its handshake still to do. The
        caller unregisters `sock` first: the selector must not keep the old object."""
        assert self._tls is not None
        context, self._tls = self._tls, None
        self._handshaking = True
        # OSError if reset already (wrap_socket asks for the peer's name).
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    def _handshake(self, sock: socket.socket) -> int:
        """Driven by the selector: OpenSSL says whether it waits to read or to write."""
        try:
            sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.wants_write = False
            return WANT_READ
        except ssl.SSLWantWriteError:
            self.wants_write = True
            return WANT_WRITE
        except (ssl.SSLEOFError, ConnectionError) as err:  # the client left halfway
            raise OpeningFailed(f"TLS handshake failed: {err}", "tls", left=True) from None
        except (ssl.SSLError, OSError) as err:
            raise OpeningFailed(f"TLS handshake failed: {err}", "tls") from None
        self._handshaking = False
        self.handshaken = True
        self.wants_write = False
        return READY
