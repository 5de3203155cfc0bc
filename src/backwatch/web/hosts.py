"""Allowed ``Host`` headers: the defence against DNS rebinding.

A web page the user visits can make its own domain resolve to 127.0.0.1 (or to the
server's LAN address) and then read this server as if it were that page's origin: with
the default open reads, every run, log and event. The browser still sends the page's
domain as ``Host``, so a request naming a host the server is not is refused (421, with the
error envelope) before anything else, ``/ping/…`` included (a rebinding page could ping).

Allowed without configuration:

* IP addresses (``127.0.0.1:5001``, ``[::1]``, ``192.168.1.10``) and ``localhost``: a
  rebinding attack needs a domain name of its own, so a literal address is never one;
* the host of ``[server] base_url`` and the bound address (``[server] host``, ``--host``).

``[server] allowed_hosts`` adds names (``"nas.lan"``, ``"*.example.com"`` for any
subdomain); ``["*"]`` switches the check off (a reverse proxy that checks Host itself).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from backwatch.errors import BackwatchError
from backwatch.web.errors import send_error

STATUS = 421
_WILDCARD_BINDS = {"", "0.0.0.0", "::", "[::]", "*"}


def host_name(value: str) -> str:
    """The host of a ``Host`` header or URL authority: no port, no brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:5001
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AllowedHosts:
    """Which ``Host`` headers this server answers."""

    def __init__(
        self, *, bind_host: str | None, base_url: str | None, extra: list[str] | None = None
    ) -> None:
        extra = [e.strip().lower() for e in extra or [] if e.strip()]
        self.any = "*" in extra
        names = {"localhost"}
        if bind_host and bind_host.strip() not in _WILDCARD_BINDS:
            names.add(host_name(bind_host))
        if base_url:
            netloc = urlsplit(base_url.strip()).netloc.rsplit("@", 1)[-1]
            if netloc:
                names.add(host_name(netloc))
        self.suffixes = tuple(e[1:] for e in extra if e.startswith("*."))
        names.update(host_name(e) for e in extra if not e.startswith("*."))
        self.names = frozenset(names)

    @classmethod
    def from_settings(cls, server: Any) -> AllowedHosts:
        return cls(
            bind_host=server.host,
            base_url=server.base_url,
            extra=list(getattr(server, "allowed_hosts", None) or []),
        )

    def allows(self, header: str | None) -> bool:
        """True for a ``Host`` header (None: none sent) this server answers."""
        if self.any or header is None:
            return True
        name = host_name(header)
        if name in self.names or _is_address(name):
            return True
        return bool(self.suffixes) and name.endswith(self.suffixes)


def names_hint(server: Any) -> str | None:
    """What ``serve`` tells a user who binds every address but names no host: browsers
    that reach the server by a name get 421 until it is listed."""
    wildcard = (server.host or "").strip() in _WILDCARD_BINDS
    if not wildcard or server.base_url or getattr(server, "allowed_hosts", None):
        return None
    return (
        "requests by IP address or localhost are answered; to reach the server by a host "
        "name, set [server] base_url or allowed_hosts (DNS rebinding defence)"
    )


def host_header(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return str(value.decode("latin-1"))
    return None


class Misdirected(BackwatchError):
    status = STATUS
    code = "misdirected"


async def refuse(send: Any, header: str) -> None:
    """Answer 421 with the error envelope (``web/errors.py``)."""
    shown = header[:100]
    await send_error(
        send,
        Misdirected(
            f"this server does not answer for host {shown!r}; add it to "
            "[server] allowed_hosts (or set [server] base_url) in backwatch.toml"
        ),
    )
