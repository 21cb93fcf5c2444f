"""The status page (`--status-path`): the server's counters, and who may read them.

Owns: `Counters`, `render_json()`, `render_html()`. Imports nothing from
evserver: the server fills a `Snapshot` dict and these functions only format it.
"""
from __future__ import annotations

import html
import json

Snapshot = dict[str, object]


class Counters:
    """What the loop counts per answered request: two dict/int updates, nothing more; and
    per encoded body sent whole, what it would have weighed without its coding."""

    __slots__ = ("by_status", "bytes_sent", "encoded_responses", "identity_bytes",
                 "encoded_bytes")

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}
        self.bytes_sent = 0
        self.encoded_responses = 0
        self.identity_bytes = 0  # what the encoded responses' files weigh
        self.encoded_bytes = 0  # what their bodies weighed as sent

    def count(self, status: int, body_bytes: int) -> None:
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1
        self.bytes_sent += body_bytes

    def encoded(self, identity_bytes: int, encoded_bytes: int) -> None:
        self.encoded_responses += 1
        self.identity_bytes += identity_bytes
        self.encoded_bytes += encoded_bytes

    def compression(self) -> dict[str, object]:
        """The savings, for the status page and the stop line."""
        saved = self.identity_bytes - self.encoded_bytes
        return {"responses": self.encoded_responses, "bytes_before": self.identity_bytes,
                "bytes_after": self.encoded_bytes, "bytes_saved": saved,
                "saved_ratio": round(saved / self.identity_bytes, 3)
                if self.identity_bytes else None}


def render_json(snapshot: Snapshot) -> bytes:
    return json.dumps(snapshot, indent=2, sort_keys=True).encode() + b"\n"


def render_html(snapshot: Snapshot) -> bytes:
    """A small page that refreshes itself every 5 s; every value is escaped."""
    rows = []
    for key, value in snapshot.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))
            value = inner or "none"
        rows.append(f"<tr><th>{html.escape(key.replace('_', ' '))}</th>"
                    f"<td>{html.escape(str(value))}</td></tr>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evserver status</title>
<style>body{{font:16px system-ui,sans-serif;margin:2em auto;max-width:40em;padding:0 1em}}
th{{text-align:left;padding:.3em 1em .3em 0;font-weight:600}}td{{font-family:monospace}}
table{{border-collapse:collapse}}tr{{border-bottom:1px solid #ddd}}</style></head>
<body><h1>evserver status</h1><table>
{chr(10).join(rows)}
</table><p>The same as JSON: <a href="?json">?json</a></p></body></html>
"""
    return page.encode()
