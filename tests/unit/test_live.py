"""live.py: the script injected into pages, and the hub of open pages' event streams
(numbered events, the history a reconnecting page resumes from, heartbeats, the stop)."""
from __future__ import annotations

import json

import pytest

from evserver.live import SCRIPT, LiveReload, inject

PATH = "/.evserver/live"
SCRIPT_HERE = SCRIPT % PATH.encode()


@pytest.mark.parametrize(("page", "expected"), [
    (b"<html><body><p>x</p></body></html>", b"<html><body><p>x</p>%s</body></html>"),
    (b"<BODY>x</BODY>", b"<BODY>x%s</BODY>"),
    (b"<body>a</body> and </body> again", b"<body>a</body> and %s</body> again"),  # the last
    (b"</Body>", b"%s</Body>"),
])
def test_the_script_goes_before_the_last_body_end(page: bytes, expected: bytes) -> None:
    assert inject(page, PATH) == expected % SCRIPT_HERE


@pytest.mark.parametrize("page", [b"", b"<p>a fragment</p>", b"<body>not closed", b"</bod y>"])
def test_a_page_without_a_body_end_gets_no_script(page: bytes) -> None:
    assert inject(page, PATH) is None


def test_the_script_listens_at_the_path_and_swaps_stylesheets() -> None:
    assert b'const PATH = "/.evserver/live"' in SCRIPT_HERE
    assert b'new EventSource(PATH + "?last="' in SCRIPT_HERE
    assert b'addEventListener("change"' in SCRIPT_HERE and b"location.reload()" in SCRIPT_HERE
    assert b"navigator.locks.request" in SCRIPT_HERE and b"BroadcastChannel" in SCRIPT_HERE
    assert SCRIPT_HERE.startswith(b"<script>") and SCRIPT_HERE.endswith(b"</script>\n")


class Page:
    """A listener that records what it was sent."""

    def __init__(self, hub: LiveReload | None = None) -> None:
        self.sent: list[bytes] = []
        self.ended = False
        self.hub = hub

    def push(self, data: bytes) -> None:
        self.sent.append(data)

    def end_events(self) -> None:
        self.ended = True


def events(data: bytes) -> list[dict[str, str]]:
    """The events of a stream's bytes, as the HTML standard's parser would see them."""
    out = []
    for block in data.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if line and not line.startswith(":"))
        if fields:
            out.append(fields)
    return out


def test_a_new_page_gets_the_retry_delay_and_the_current_id() -> None:
    hub = LiveReload(10, instance="a1")
    first = hub.subscribe(Page(), None)
    assert first == b"retry: 1000\nid: a1-0\n\n"
    assert len(hub) == 1


def test_a_change_goes_to_every_page_as_one_numbered_event() -> None:
    hub = LiveReload(10, instance="a1")
    pages = [Page() for _ in range(3)]
    for page in pages:
        hub.subscribe(page, None)
    hub.changed(["/css/site.css", "/index.html"])
    for page in pages:
        (event,) = page.sent
        assert events(event) == [{"id": "a1-1", "event": "change",
                                  "data": '{"paths":["/css/site.css","/index.html"]}'}]
    assert json.loads(events(pages[0].sent[0])[0]["data"])["paths"][0] == "/css/site.css"


def test_a_page_that_reconnects_gets_what_it_missed() -> None:
    hub = LiveReload(10, instance="a1")
    hub.changed(["/a.css"])
    hub.changed(["/b.html"])
    hub.changed(["/c.js"])
    missed = events(hub.subscribe(Page(), b"a1-1"))
    assert [e.get("id") for e in missed] == ["a1-3", "a1-2", "a1-3"]  # current, then 2 and 3
    assert [e.get("data") for e in missed[1:]] == ['{"paths":["/b.html"]}',
                                                  '{"paths":["/c.js"]}']
    assert events(hub.subscribe(Page(), b"a1-3")) == [{"retry": "1000", "id": "a1-3"}]


@pytest.mark.parametrize("last", [b"b2-0", b"b2-7", b"a1-x", b"junk", b"a1-0"])
def test_a_page_from_another_process_or_too_long_ago_reloads(last: bytes) -> None:
    hub = LiveReload(10, instance="a1")
    for n in range(70):  # more than the history holds: a1-0 is too old to replay
        hub.changed([f"/{n}.css"])
    (_, reload) = events(hub.subscribe(Page(), last))
    assert reload["event"] == "change" and reload["data"] == '{"paths":["/"]}'


def test_heartbeats_are_comments_and_the_stop_ends_every_stream() -> None:
    hub = LiveReload(2, instance="a1")
    pages = [Page(), Page()]
    for page in pages:
        hub.subscribe(page, None)
    assert hub.full
    hub.heartbeat()
    assert all(page.sent == [b": keep-alive\n\n"] for page in pages)
    assert events(b": keep-alive\n\n") == []
    hub.close()
    assert all(page.ended for page in pages) and len(hub) == 0 and not hub.full


def test_an_unsubscribed_page_hears_nothing_more() -> None:
    hub = LiveReload(10, instance="a1")
    page = Page()
    hub.subscribe(page, None)
    hub.unsubscribe(page)
    hub.unsubscribe(page)  # twice is harmless
    hub.changed(["/x.css"])
    assert page.sent == [] and hub.events_sent == 1


def test_the_instance_is_random_by_default() -> None:
    assert LiveReload(1).instance != LiveReload(1).instance


def test_error_pages_listen_under_live_reload() -> None:
    """A 404 for a page not written yet reloads when it is: the error page gets the script
    too (the built-in page and the root's own), and nothing without --live-reload."""
    from http import HTTPStatus

    from evserver.http11 import HTTPError
    from evserver.responses import error_page, error_plan

    missing = HTTPError(HTTPStatus.NOT_FOUND, "missing", close=False)
    plan = error_plan(missing, {}, PATH)
    assert plan.body == inject(error_page(HTTPStatus.NOT_FOUND), PATH)
    assert b"Content-Length: %d\r\n" % len(plan.body) in plan.fields
    own = b"<html><body>not here</body></html>"
    assert error_plan(missing, {404: own}, PATH).body == inject(own, PATH)
    assert error_plan(missing, {404: b"no body end"}, PATH).body == b"no body end"
    assert error_plan(missing, {404: own}).body == own
