"""Mutations of the field lines: names and values, obsolete folding, too many fields, Host,
and Expect."""
from __future__ import annotations

from collections.abc import Sequence

from ..cases import Built, Gen, mutation, register_table

# Field lines added to a valid request.
FIELD_LINES: dict[str, Sequence[bytes]] = {
    "name-space-before-colon": (b"X-Test : 1", b"Accept : */*", b"Host : other"),
    "name-tab-before-colon": (b"X-Test\t: 1",),
    "name-invalid-token": (b"X@Test: 1", b"X[1]: 2", b'X"Y: 1', b"X(Y): 1", b"X/Y: 1",
                           b"X=Y: 1", b"X{Y}: 1"),
    "name-underscore": (b"X_Test: 1", b"Accept_Encoding: identity"),
    "name-empty": (b": value", b":", b": "),
    "name-no-colon": (b"X-Test", b"X-Test 1", b"X-Test;1"),
    "name-non-ascii": (b"X-T\xe9st: 1", b"\xffX: 1"),
    "name-control-char": (b"X-\x01Test: 1", b"X-Te\x00st: 1", b"X-Test\x7f: 1"),
    "value-control-char": (b"X-Test: a\x01b", b"X-Test: a\x1fb", b"X-Test: \x0c",
                           b"X-Test: a\x0bb"),
    "value-nul": (b"X-Test: a\x00b", b"X-Test: \x00", b"Accept: */*\x00"),
    "value-del": (b"X-Test: a\x7fb",),
    "value-bare-cr": (b"X-Test: a\rb", b"X-Test: a\r"),
    "value-tab-after-colon": (b"X-Test:\t1", b"Accept:\t*/*", b"X-Test: \t 1"),
    "value-no-space-after-colon": (b"X-Test:1", b"Accept:*/*"),
    "value-trailing-whitespace": (b"X-Test: 1 ", b"X-Test: 1\t", b"Accept: */*  ",
                                  b"X-Test: 1 \t "),
    "value-obs-text": (b"X-Test: caf\xe9", b"X-Test: \xff\xfe", b"X-Test: \xe2\x82\xac"),
    "value-empty": (b"X-Test:", b"X-Test: ", b"Accept:"),
    "value-long-ok": (b"X-Long: " + b"a" * 4000, b"X-Long: " + b"b" * 7000),
    "value-long-over": (b"X-Long: " + b"a" * 10000, b"X-Long: " + b"b" * 17000),
    "connection-close": (b"Connection: close", b"Connection: Close", b"Connection: foo, close"),
    "connection-keep-alive": (b"Connection: keep-alive", b"Connection: Keep-Alive"),
    "connection-upgrade": (b"Connection: Upgrade\r\nUpgrade: h2c",
                           b"Connection: Upgrade\r\nUpgrade: websocket"),
    "expect-100-continue": (b"Expect: 100-continue", b"Expect: 100-Continue"),
    "expect-unknown": (b"Expect: foo", b"Expect: 200-ok", b"Expect: 100-continue, foo"),
}


def _field(g: Gen, line: bytes) -> Built:
    return g.spec(fields=[line])


register_table(FIELD_LINES, _field)


@mutation("fields-many")
def _many_fields(g: Gen) -> Built:
    """More field lines than evserver's default limit (100), each short."""
    return g.spec(fields=[b"X-F%d: %d" % (i, i) for i in range(g.pick((90, 120, 200)))])


@mutation("name-obs-fold")
def _obs_fold(g: Gen) -> Built:
    """A continuation line (obsolete line folding) after a field line."""
    fold = g.pick((b" b", b"\tb", b"  folded value"))
    return g.spec(fields=[b"X-Test: a\r\n" + fold])  # one entry: placed together


@mutation("name-whitespace-first-line")
def _whitespace_first_line(g: Gen) -> Built:
    """Whitespace between the request line and the first field line (RFC 9112 §2.2)."""
    spec = g.spec()
    spec.fields.insert(0, g.pick((b" X-Test: 1", b"\tHost: other", b" Host: 127.0.0.1")))
    return spec


# Host field lines (a list: none, one or two lines).
HOSTS: dict[str, Sequence[Sequence[bytes]]] = {
    "host-valid": ((b"Host: 127.0.0.1:8080",), (b"Host: localhost",), (b"Host: example.com",),
                   (b"Host: 127.0.0.1",), (b"Host: EXAMPLE.com.",), (b"host: localhost",)),
    "host-valid-ipv6": ((b"Host: [::1]:80",), (b"Host: [::1]",), (b"Host: [fe80::1]:8080",)),
    "host-valid-reg-name": ((b"Host: a_b",), (b"Host: a%20b",), (b"Host: a,b",),
                            (b"Host: a!$&'()*+;=b",), (b"Host: host:",)),
    "host-missing": ((),),
    "host-duplicate-equal": ((b"Host: localhost", b"Host: localhost"),),
    "host-duplicate-different": ((b"Host: a", b"Host: b"),),
    "host-empty": ((b"Host:",), (b"Host: ",)),
    "host-invalid-space": ((b"Host: a b",), (b"Host: a\tb",)),
    "host-ipv6-unclosed": ((b"Host: [::1",), (b"Host: [::1:80",), (b"Host: ::1]",)),
    "host-two-colons": ((b"Host: host:80:x",), (b"Host: a:1:2",), (b"Host: ::1",)),
    "host-negative-port": ((b"Host: host:-1",), (b"Host: host:-80",)),
    "host-port-too-big": ((b"Host: host:99999",), (b"Host: host:65536",)),
    "host-port-letters": ((b"Host: host:http",), (b"Host: host:8o",)),
    "host-userinfo": ((b"Host: u@h",), (b"Host: user:pass@host",), (b"Host: @host",)),
    "host-slash": ((b"Host: a/b",), (b"Host: /",), (b"Host: ../canary.txt",)),
    "host-backslash": ((b"Host: a\\b",),),
    "host-double-dot": ((b"Host: a..b",), (b"Host: ..",), (b"Host: .",)),
    "host-non-ascii": ((b"Host: h\xe9",), (b"Host: \xff",)),
    "host-bad-chars": ((b"Host: a<b>",), (b'Host: a"b',), (b"Host: a{b}",), (b"Host: a^b",)),
}


def _hosts(g: Gen, lines: Sequence[bytes]) -> Built:
    return g.spec(host=lines)


register_table(HOSTS, _hosts)


@mutation("host-missing-http10")
def _host_missing_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", host=())


@mutation("expect-100-continue-body")
def _expect_with_body(g: Gen) -> Built:
    return g.spec(method=b"GET", fields=[b"Expect: 100-continue", b"Content-Length: 5"],
                  body=b"hello")


@mutation("expect-100-http10")
def _expect_http10(g: Gen) -> Built:
    return g.spec(version=b"HTTP/1.0", fields=[b"Expect: 100-continue"])
