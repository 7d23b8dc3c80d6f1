"""The Host header allow-list, against DNS rebinding: a page on another site whose name is made to
resolve to this server sends its own name as Host, and is answered 400.

Always answered: localhost, any IP literal (a browser that sends an IP as Host was pointed at
that IP itself, so no other site can be behind it) and the bound host; besides them the names
in `allowed_hosts` (comma-separated), or any name with `*`.
"""

from __future__ import annotations

import ipaddress
import socket

from ..settings import Settings
from .limits import send_error

WILDCARD_BINDS = ("0.0.0.0", "::", "")


def allowed_names(settings: Settings) -> frozenset[str] | None:
    """The names answered besides IP literals, lower case; None: any name."""
    names = {n.strip().lower().rstrip(".") for n in settings.allowed_hosts.split(",") if n.strip()}
    if "*" in names:
        return None
    names |= {"localhost", settings.host.lower()}
    if settings.host in WILDCARD_BINDS:
        names.add(socket.gethostname().lower())  # every interface: this machine's own name too
    return frozenset(names - {""})


def host_name(header: str) -> str:
    """The name of a Host header, without its port: "Example.org:8000" -> "example.org", "[::1]:80" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """Pure ASGI middleware: 400 for a request whose Host is not on the allow-list."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.names = allowed_names(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.names is not None:
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host_name(raw).rstrip(".")
            if name not in self.names and not is_ip(name):
                if scope["type"] == "http":
                    await send_error(send, 400, f"unknown Host {raw!r}: this server answers to its own names and "
                                                "IP addresses; add the name to QKATLAS_ALLOWED_HOSTS to answer it too")
                return
        await self.app(scope, receive, send)
