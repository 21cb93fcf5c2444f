"""The phases of a connection, and the selector interest and deadline each one implies.

Owns: `Phase`, `interest_of()`, and each member under a module name of its own (`IDLE`,
`SEND`...): in Python 3.11 every `Phase.MEMBER` lookup runs `EnumType.__getattr__` (about
0.1 µs), so the hot path names members through these globals. Imports `loop` (its event
masks).

    phase       interest    while                                 deadline (then)
    OPENING     READ/WRITE  PROXY preamble, TLS handshake         handshake_timeout (close)
    IDLE        READ        before a request's first byte         header_timeout, later
                                                                  keepalive_timeout (close)
    HEAD        READ        a request is arriving                 header_timeout from its
                                                                  first byte; body_timeout
                                                                  for a body (408)
    WAIT_LOGIN  none        the pool checks a password            login_timeout (503)
    WAIT_FILE   none        the pool opens the file               send_timeout (503)
    SEND        WRITE       a response is going out               send_timeout since the
                                                                  last progress (close)
    WAIT_CHUNK  none        the pool reads (or encodes) a chunk   send_timeout (close)
    EVENTS      READ        an open page's --live-reload stream   none: a heartbeat every
                                                                  15 s keeps it open
    LINGER      READ        our side is shut: drain until EOF     linger_timeout (close)
    CLOSED      none        a sink: every entry point returns at once

OPENING is the stage before HTTP (`opening.Opening` says which way it waits); LINGER and
CLOSED end the connection; the others are the HTTP cycle of one request after another.
"""
from __future__ import annotations

from enum import Enum

from .loop import READ, WRITE


class Phase(Enum):
    OPENING = "opening"
    IDLE = "idle"
    HEAD = "head"
    WAIT_LOGIN = "wait_login"
    WAIT_FILE = "wait_file"
    SEND = "send"
    WAIT_CHUNK = "wait_chunk"
    EVENTS = "events"
    LINGER = "linger"
    CLOSED = "closed"


OPENING, IDLE, HEAD, SEND = Phase.OPENING, Phase.IDLE, Phase.HEAD, Phase.SEND
WAIT_LOGIN, WAIT_FILE, WAIT_CHUNK = Phase.WAIT_LOGIN, Phase.WAIT_FILE, Phase.WAIT_CHUNK
LINGER, CLOSED, EVENTS = Phase.LINGER, Phase.CLOSED, Phase.EVENTS


def interest_of(phase: Phase) -> int:
    """The selector events a connection in `phase` waits for (OPENING asks its opening)."""
    # Identity tests, not a dict: hashing an Enum member runs Python code. Level triggering
    # means a stale WRITE interest would spin the loop, so SEND alone asks for it.
    if phase is SEND:
        return WRITE
    if phase is WAIT_FILE or phase is CLOSED or phase is WAIT_CHUNK or phase is WAIT_LOGIN:
        return 0
    return READ
