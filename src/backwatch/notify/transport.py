"""The Apprise adapter: one ``send`` for every kind of channel, and URL masking.

Apprise is imported lazily (it is slow to import); nothing here runs on the ingest path.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

_USERINFO = re.compile(r"(?P<scheme>[a-z0-9+.-]+://)(?P<user>[^:/@]*):(?P<pw>[^@/]*)@", re.I)
_SECRET_QUERY = re.compile(
    r"(?P<key>(?:pass|password|token|key|secret|apikey|api_key|webhook)=)[^&]*", re.I
)


class TransportError(Exception):
    """A delivery failed. ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Channel:
    id: str
    url: str
    masked: str


def channel_id(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def mask_url(url: str) -> str:
    """The URL with its secrets hidden, for logs, the API and pages.

    Apprise's own privacy rendering is used when it knows the scheme (it hides tokens in
    paths too); otherwise passwords in the user part and secret-looking query values.
    """
    try:
        import apprise  # heavy (all its plugins): loaded when a URL is first masked or sent to

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return _keep_own_query(str(plugin.url(privacy=True)), url)
    except Exception:
        pass
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:****@", url)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}****", masked)


def channel(url: str) -> Channel:
    return Channel(channel_id(url), url, mask_url(url))


def send(url: str, title: str, body: str, *, severity: str = "info") -> None:
    """Deliver one message; raise TransportError with Apprise's reason on failure."""
    import apprise  # heavy: see mask_url

    kinds = {
        "critical": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
        "resolved": apprise.NotifyType.SUCCESS,
        "info": apprise.NotifyType.INFO,
    }
    app = apprise.Apprise()
    if not app.add(url):
        raise TransportError(
            f"not a valid Apprise URL: {mask_url(url)} (see the Apprise wiki for its form)",
            permanent=True,
        )
    with apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s") as captured:
        ok = app.notify(
            title=title,
            body=body,
            notify_type=kinds.get(severity, kinds["info"]),
            # the texts are plain text (a run's message is whatever a client sent): Apprise
            # escapes them for HTML (e-mail) and Markdown channels instead of passing markup on
            body_format=apprise.NotifyFormat.TEXT,
        )
    if not ok:
        detail = " ".join(captured.getvalue().split())[-500:] or "the service refused it"
        raise TransportError(_scrub(detail, url))


def _keep_own_query(masked: str, original: str) -> str:
    """Apprise adds every default parameter to the URL it renders; keep only the user's."""

    base, _, query = masked.partition("?")
    own = {k for k, _v in parse_qsl(urlsplit(original).query)}
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] in own]
    return base + ("?" + "&".join(kept) if kept else "")


def _scrub(text: str, url: str) -> str:
    """Apprise log lines may repeat parts of the URL; never let the secret through."""
    m = _USERINFO.search(url)
    if m and m["pw"]:
        text = text.replace(m["pw"], "****")
    return text
