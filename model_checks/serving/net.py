"""Loopback only: the service binds, and the load generator targets, addresses of this machine alone."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from model_checks.core.errors import ModelChecksError, NotLoopback


def require_loopback(host: str, what: str = "host") -> str:
    """`host` when it is a loopback address (127.0.0.0/8, ::1, localhost), else NotLoopback."""
    name = host.strip("[]")
    if name == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        raise NotLoopback(
            f"{what} {host!r} is not an IP address; only loopback (127.0.0.1, ::1, localhost) is allowed"
        ) from None
    if not ip.is_loopback:
        raise NotLoopback(
            f"{what} {host!r} is not a loopback address; model-checks serves and load-tests on this machine only "
            "(127.0.0.1, ::1, localhost)"
        )
    return name


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of an http:// URL on loopback."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise NotLoopback(f"URL {url!r}: expected http://HOST:PORT[/prefix] on loopback")
    host = require_loopback(parts.hostname, f"URL {url!r}: host")
    return host, parts.port or 80, parts.path.rstrip("/")


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on loopback; port 0 picks a free one."""
    host = require_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it
    # Nagle's algorithm against delayed ACKs adds 40 ms to every answer written in two parts
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ModelChecksError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock
