"""What every connection of one server reads and nobody changes: the `Site`.

Owns: `Site`, `response_fields()`. Imports `config`, `auth`, `files`.

A `Site` is built at start and again at SIGHUP (in the pool: it reads the root's error pages
and the auth file), then swapped in whole, so a request sees one consistent version of it.
What changes while serving (counters, the file cache, draining) stays on the server.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from .auth import Credentials, challenge
from .config import Config
from .files import load_error_pages

log = logging.getLogger("evserver")


@dataclass(frozen=True, slots=True, eq=False)
class Site:
    """Per-server facts, with the header bytes that every response repeats rendered once."""

    cfg: Config
    docroot: str  # the root's real path: what files are checked against
    fields: bytes  # Server, nosniff, --header and --cors lines: every response over HTTP
    tls_fields: bytes  # the same over HTTPS: with Strict-Transport-Security if asked
    ok_start: bytes  # a 200's status line and `fields`: the start of a cached file's answer
    tls_ok_start: bytes
    error_pages: dict[int, bytes]  # the root's NNN.html pages, by status
    credentials: Credentials | None  # --auth / --auth-file users, if any
    challenge: bytes  # the WWW-Authenticate value of a 401
    tls_port: int  # the HTTPS port, for --tls-redirect (0: none)
    screening: bool  # some rule needs each request's path or client address
    live_path: str  # --live-reload: where pages listen ("" without it)

    @classmethod
    def build(cls, cfg: Config, docroot: str, *, tls_port: int = 0,
              error_pages: dict[int, bytes] | None = None,
              credentials: Credentials | None = None) -> Site:
        """A site for `cfg` served from `docroot` (a real path). Reads nothing itself.

        `screening` is whether every request must pass the rules that need its path or its
        client's address. Plain HTTP arriving on the HTTPS port is screened too, but that
        is known per connection (`Connection._plain_on_tls`): an HTTPS site alone does not
        screen its requests."""
        fields = response_fields(cfg)
        tls_fields = fields + (b"Strict-Transport-Security: max-age=%d\r\n" % cfg.hsts
                               if cfg.hsts else b"")
        screening = bool(cfg.status_path or cfg.metrics_path or cfg.health_path or cfg.allow
                         or cfg.deny or cfg.trusted_proxies or credentials is not None
                         or cfg.tls_redirect or cfg.live_reload)
        return cls(cfg, docroot, fields, tls_fields, b"HTTP/1.1 200 OK\r\n" + fields,
                   b"HTTP/1.1 200 OK\r\n" + tls_fields, error_pages or {}, credentials,
                   challenge(cfg.auth_realm), tls_port, screening,
                   cfg.live_reload_path if cfg.live_reload else "")

    def reloaded(self) -> Site:
        """The same site with its error pages and auth file read again: SIGHUP, in the
        pool (it reads files). A bad auth file keeps the users this site has, and says why."""
        credentials = self.credentials
        if credentials is not None and self.cfg.auth_file is not None:
            try:
                credentials = Credentials(self.cfg.auth, self.cfg.auth_file)
            except (ValueError, OSError) as err:
                log.error("auth file not reloaded: %s", err)
        return replace(self, error_pages=load_error_pages(self.docroot),
                       credentials=credentials)


def response_fields(cfg: Config) -> bytes:
    """The header lines of every response: ours, then --header's, then --cors's."""
    # nosniff on every response: browsers must trust our Content-Type, never guess one.
    lines = [b"Server: evserver", b"X-Content-Type-Options: nosniff"]
    lines += [h.encode("latin-1") for h in cfg.headers]
    if cfg.cors:
        lines.append(b"Access-Control-Allow-Origin: " + cfg.cors.encode("latin-1"))
        if cfg.cors != "*":
            lines.append(b"Vary: Origin")  # caches must not reuse it for other origins
    return b"".join(line + b"\r\n" for line in lines)
