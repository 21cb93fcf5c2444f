"""What a person sees when the server starts: the root, the URLs to open, the log, a QR code.

Owns: `show()`, `url_hosts()` and this machine's addresses (`ipv4_addresses()`,
`ipv6_addresses()`, which `--tls-self-signed` also names in its certificate). Imports
`config`, and `tools.qr` only for `--qr`. Lines go to the `evserver` logger (stderr).
"""
from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import sys

from .config import Config
from .log import colour_allowed

log = logging.getLogger("evserver")
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def show(host: str, port: int, cfg: Config, tls_port: int = 0) -> None:
    """The root, every URL a browser can use (loopback, then LAN), the log, the number of
    --workers, and with --qr a QR code of the first LAN URL; "press Ctrl+C" last. Colour only
    when stderr is a terminal (and NO_COLOR and TERM=dumb do not say otherwise)."""
    tty = colour_allowed(sys.stderr)

    def bold(text: str) -> str:
        return f"\x1b[1;36m{text}\x1b[0m" if tty else text

    log.info("serving %s", os.path.abspath(cfg.docroot))
    hosts = url_hosts(host)
    if tls_port == port:  # --tls-cert alone: the one port speaks HTTPS
        urls = [f"https://{url_host}:{port}/" for url_host in hosts]
    else:
        urls = [f"http://{url_host}:{port}/" for url_host in hosts]
        if tls_port:
            urls += [f"https://{url_host}:{tls_port}/" for url_host in hosts]
    for url in urls:
        log.info("  %s", bold(url))
    if cfg.access_log is not None:
        where = "standard output" if cfg.access_log == "-" else os.path.abspath(cfg.access_log)
        log.info("access log: %s", where)
    if cfg.workers > 1:  # the supervisor's banner, once every worker listens
        log.info("%d worker processes", cfg.workers)
    if cfg.live_reload:
        log.info("live reload: open pages reload when a file under the root changes "
                 "(for development)")
    if cfg.qr:
        lan = [u for u in urls if "//127.0.0.1:" not in u and "//[::1]:" not in u]
        if lan:
            from .tools.qr import encode, for_stream  # only for --qr
            # black on white in explicit colours on a terminal, so it scans on light and dark
            # ones alike; plain text off a terminal and under NO_COLOR or TERM=dumb
            log.info("scan to open %s:\n%s", lan[0], for_stream(encode(lan[0]), sys.stderr))
        else:
            log.info("no LAN address to show as a QR code (listening on %s only)", host)
    log.info("press Ctrl+C to stop")


def url_hosts(host: str) -> list[str]:
    """The addresses a browser can use: loopback first, then every LAN address."""
    if host not in ("0.0.0.0", "::", ""):
        return [f"[{host}]" if ":" in host else host]
    hosts = ["127.0.0.1"] + ipv4_addresses()
    if host == "::":
        hosts += ["[::1]"] + [f"[{a}]" for a in ipv6_addresses()]
    return hosts


def ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses but loopback, one per interface that has one."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on this interface
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                found.append(address)
    return found


def ipv6_addresses() -> list[str]:
    """This machine's global IPv6 addresses (a URL cannot use a link-local one)."""
    found = []
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                hex_address, _, _, scope = line.split()[:4]
                if scope == "00":  # global scope only: link-local needs a zone id in URLs
                    found.append(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hex_address)))
    except OSError:
        pass
    return found
