"""--live-reload: the pages that listen for changes, and what they are told.

Owns: `LiveReload` (the listeners, the numbered events and their recent history),
`Listener`, `SCRIPT` and `inject()` (the page side). Imports nothing from evserver. Loop
thread only, except `inject()`, a pure function the pool calls while it loads a page.

Each open page holds one server-sent-events stream (the HTML standard's
`text/event-stream`): an event names the URL paths that changed; a comment every
`HEARTBEAT` seconds keeps idle timeouts, proxies and balancers from closing the stream.
Event ids are `<instance>-<n>`: a page that reconnects to the same server process with
`Last-Event-ID` gets the events it missed; one that reconnects to another process (the
server restarted, or another worker answered) is told to reload, since files may have
changed while it was away.
"""
from __future__ import annotations

import json
import secrets
from collections import deque
from typing import Protocol

HEARTBEAT = 15.0  # seconds between comments on an idle stream (proxies often cut at 60)
RETRY_MS = 1000  # how soon a page's EventSource reconnects after the stream ends
_HISTORY = 64  # events kept for pages that reconnect

# The page side. Browsers give HTTP/1.1 six connections per host, and a stream holds one for
# as long as its page is open: with one stream per tab, six tabs would starve everything
# else. So the tabs of one browser share one stream: the tab holding a Web Lock listens and
# passes each event to the others over a BroadcastChannel; when it goes (a reload, a closed
# tab) the lock passes to another, which resumes from the last event id, kept in
# localStorage and sent as `?last=`. A change of stylesheets only swaps those links (the
# page keeps its state and scroll); anything else reloads the page. EventSource reconnects
# by itself when the server restarts.
SCRIPT = b"""<script>/* evserver --live-reload */(() => {
  const PATH = "%s", KEY = "evserver-live-reload";
  const apply = (paths) => {
    if (!paths.length || !paths.every((path) => path.endsWith(".css"))) {
      location.reload();
      return;
    }
    const links = [...document.querySelectorAll('link[rel~="stylesheet"]')]
      .filter((link) => new URL(link.href, location.href).origin === location.origin);
    const named = links.filter((link) => paths.includes(new URL(link.href).pathname));
    for (const link of named.length ? named : links) {
      const url = new URL(link.href);
      url.searchParams.set("evserver-reload", Date.now());
      const fresh = link.cloneNode();
      fresh.href = url.href;
      fresh.onload = () => link.remove();
      link.after(fresh);
    }
  };
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(KEY) : null;
  if (channel) channel.onmessage = (event) => apply(event.data);
  const store = (id) => { try { localStorage.setItem(KEY, id); } catch (e) {} };
  const last = () => { try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; } };
  const listen = () => new Promise(() => {
    const source = new EventSource(PATH + "?last=" + encodeURIComponent(last()));
    source.addEventListener("change", (event) => {
      const paths = JSON.parse(event.data).paths;
      store(event.lastEventId);
      if (channel) channel.postMessage(paths);
      apply(paths);
    });
  });
  if (navigator.locks && channel) navigator.locks.request(KEY, listen); else listen();
})();</script>
"""
_BODY_END = b"</body>"


def inject(page: bytes, path: str) -> bytes | None:
    """`page` with the live-reload script (listening at `path`) before its last `</body>`
    (any case), or None when it has none: a fragment or a page without a body end is
    served as it is."""
    end = page.lower().rfind(_BODY_END)
    if end < 0:
        return None
    return page[:end] + SCRIPT % path.encode("ascii") + page[end:]


class Listener(Protocol):
    """An open page's stream (a connection in its EVENTS phase)."""

    def push(self, data: bytes) -> None: ...

    def end_events(self) -> None: ...


class LiveReload:
    """The open pages, bounded in number, and the events sent to them. Loop thread only."""

    def __init__(self, max_listeners: int, instance: str = "") -> None:
        self.max_listeners = max_listeners
        self.instance = instance or secrets.token_hex(4)
        self.listeners: set[Listener] = set()
        self.events_sent = 0  # numbered events, and the number of the last one
        self._history: deque[tuple[int, bytes]] = deque(maxlen=_HISTORY)

    def __len__(self) -> int:
        return len(self.listeners)

    @property
    def full(self) -> bool:
        return len(self.listeners) >= self.max_listeners

    def subscribe(self, listener: Listener, last_event_id: bytes | None) -> bytes:
        """Add a page; returns the stream's first bytes: the reconnection delay, this
        process's current id (so a later reconnection says where it left off), and what a
        reconnecting page missed."""
        self.listeners.add(listener)
        start = b"retry: %d\nid: %s\n\n" % (RETRY_MS, self._id(self.events_sent))
        return start + self._missed(last_event_id)

    def unsubscribe(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def changed(self, paths: list[str]) -> None:
        """Files changed (a burst already coalesced): one event to every open page."""
        self.events_sent += 1
        event = self._event(self.events_sent, paths)
        self._history.append((self.events_sent, event))
        for listener in list(self.listeners):  # a push that fails unsubscribes
            listener.push(event)

    def heartbeat(self) -> None:
        for listener in list(self.listeners):
            listener.push(b": keep-alive\n\n")

    def close(self) -> None:
        """The server stops: every stream ends now (a stop does not wait for them)."""
        for listener in list(self.listeners):
            listener.end_events()
        self.listeners.clear()

    def _id(self, n: int) -> bytes:
        return b"%s-%d" % (self.instance.encode("ascii"), n)

    def _event(self, n: int, paths: list[str]) -> bytes:
        data = json.dumps({"paths": paths}, separators=(",", ":")).encode()
        return b"id: %s\nevent: change\ndata: %s\n\n" % (self._id(n), data)

    def _missed(self, last_event_id: bytes | None) -> bytes:
        if last_event_id is None:
            return b""
        instance, _, number = last_event_id.strip().decode("latin-1").rpartition("-")
        if instance == self.instance and number.isdigit():
            seen = int(number)
            if seen == self.events_sent:
                return b""
            if self._history and seen >= self._history[0][0] - 1:
                return b"".join(event for n, event in self._history if n > seen)
        # Another process, or too long ago to replay: whatever changed, reload.
        return self._event(self.events_sent, ["/"])
