"""Conditionals on hello.txt or big.bin, whose mtime is the fixture's FIXED_MTIME:
If-Modified-Since, If-None-Match, If-Match, If-Unmodified-Since and If-Range."""
from __future__ import annotations

import calendar
import email.utils
import time

from ..cases import Built, Gen, Spec, mutation


def _date(seconds: float, style: int = 0) -> bytes:
    """IMF-fixdate, or (style 1) RFC 850, or (style 2) asctime."""
    fixdate = email.utils.formatdate(seconds, usegmt=True).encode()
    if style == 0:
        return fixdate
    t = time.gmtime(seconds)
    if style == 1:
        return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t).encode()
    return time.strftime("%a %b %e %H:%M:%S %Y", t).encode()


def _conditional(g: Gen, *lines: bytes, ranged: bool = False) -> Spec:
    target = g.pick((b"/hello.txt", b"/big.bin"))
    fields = [*lines, *([b"Range: bytes=0-9"] if ranged else [])]
    return g.spec(method=b"GET" if ranged else None, target=target, fields=fields)


def _etags(g: Gen, weak: bool = False) -> bytes:
    """Every server's ETags of both conditional files, so the list matches on each."""
    tags = [tag for path in sorted(g.ctx.etags) for tag in g.ctx.etags[path]]
    return b", ".join(b"W/" + tag if weak else tag for tag in tags)


DAY = 86400
INVALID_DATES = (b"yesterday", b"Tue, 32 Jan 2024 03:04:05 GMT", b"0", b"",
                 b"Tue, 02 Jan 2024 03:04:05", b"Tue, 02 Jan 0000 03:04:05 GMT")


@mutation("ims-equal")
def _ims_equal(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified, g.pick((0, 1, 2))))


@mutation("ims-later")
def _ims_later(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified + DAY))


@mutation("ims-earlier")
def _ims_earlier(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("ims-future")
def _ims_future(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + _date(calendar.timegm((2099, 1, 1, 0, 0, 0))))


@mutation("ims-invalid")
def _ims_invalid(g: Gen) -> Built:
    return _conditional(g, b"If-Modified-Since: " + g.pick(INVALID_DATES))


@mutation("inm-star")
def _inm_star(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: *")


@mutation("inm-match")
def _inm_match(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + _etags(g, weak=g.rng.random() < 0.5))


@mutation("inm-nomatch")
def _inm_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + g.pick((b'"nope"', b'W/"nope"', b'"a", "b"')))


@mutation("inm-malformed")
def _inm_malformed(g: Gen) -> Built:
    return _conditional(g, b"If-None-Match: " + g.pick((b"nope", b'"unclosed', b"W/", b",")))


@mutation("inm-match-ims-earlier")
def _inm_match_ims_earlier(g: Gen) -> Built:
    """If-None-Match matches, If-Modified-Since says modified: RFC 9110 §13.1.3 says to
    ignore If-Modified-Since when If-None-Match is present."""
    return _conditional(g, b"If-None-Match: " + _etags(g),
                        b"If-Modified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("if-match-star")
def _if_match_star(g: Gen) -> Built:
    return _conditional(g, b"If-Match: *")


@mutation("if-match-nomatch")
def _if_match_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-Match: " + g.pick((b'"nope"', b'W/"nope"')))


@mutation("ius-earlier")
def _ius_earlier(g: Gen) -> Built:
    return _conditional(g, b"If-Unmodified-Since: " + _date(g.ctx.last_modified - DAY))


@mutation("ius-later")
def _ius_later(g: Gen) -> Built:
    return _conditional(g, b"If-Unmodified-Since: " + _date(g.ctx.last_modified + DAY))


@mutation("if-range-date-match")
def _if_range_date_match(g: Gen) -> Built:
    return _conditional(g, b"If-Range: " + _date(g.ctx.last_modified), ranged=True)


@mutation("if-range-date-other")
def _if_range_date_other(g: Gen) -> Built:
    shift = g.pick((-DAY, DAY))
    return _conditional(g, b"If-Range: " + _date(g.ctx.last_modified + shift), ranged=True)


@mutation("if-range-etag-nomatch")
def _if_range_etag_nomatch(g: Gen) -> Built:
    return _conditional(g, b"If-Range: " + g.pick((b'"nope"', b'W/"nope"')), ranged=True)


@mutation("if-range-weak")
def _if_range_weak(g: Gen) -> Built:
    """If-Range compares strongly: a weak tag never matches (RFC 9110 §13.1.5)."""
    tag = g.pick(g.ctx.etags[g.pick(sorted(g.ctx.etags))])
    return _conditional(g, b"If-Range: W/" + tag, ranged=True)
