"""Who is looking at a page: anonymous, signed in with a token (cookie), a bearer token, or a
user named by a trusted reverse proxy. What they may read, do and see is decided here.

Rules (documented in docs/configuration.md, "The dashboard"):

* reads are open unless ``[auth] read = "token"``;
* actions need the same scope as the API (``operate`` for pause/resume and alerts);
* secrets (ping URLs, the project ping key) are shown only to viewers that may report for
  any job (``admin``, or ``ingest`` without job or host patterns).
  Never to anonymous viewers, not even on 127.0.0.1: behind a reverse proxy on the same
  host every request comes from 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from backwatch.services.tokens import Grant

SESSION_COOKIE = "bw_session"
PROXY_NAME_MAX = 128


@dataclass(frozen=True)
class Viewer:
    name: str | None
    scope: str | None
    via: str  # anonymous | cookie | bearer | proxy
    read_protected: bool
    grant: Grant | None = None

    @property
    def signed_in(self) -> bool:
        return self.scope is not None

    @property
    def may_read(self) -> bool:
        return not self.read_protected or self.may("read")

    def may(self, needed: str) -> bool:
        return self.grant is not None and self.grant.allows(needed)

    @property
    def sees_secrets(self) -> bool:
        return self.grant is not None and self.grant.reports_for_any_job

    @property
    def actor(self) -> str:
        return f"web:{self.name}" if self.name else "web"


def token_scope(request: Request, token: str) -> Grant | None:
    """The Grant of an active token, through the app's short-lived cache."""
    token = token.strip()
    if not token:
        return None
    return request.app.state.token_cache.lookup(request.app.state.hub, token)  # type: ignore[no-any-return]


def viewer_for(request: Request) -> Viewer:
    """The request's viewer, worked out once per request."""
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    settings = request.app.state.hub.settings
    protected = settings.auth.read == "token"
    viewer = Viewer(None, None, "anonymous", protected)
    header = settings.auth.proxy_header
    proxied = request.headers.get(header, "").strip() if header else ""
    if proxied and len(proxied) <= PROXY_NAME_MAX:
        viewer = Viewer(proxied, "admin", "proxy", protected, Grant(proxied, "admin"))
    else:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        cookie = request.cookies.get(SESSION_COOKIE, "")
        found = None
        via = "anonymous"
        if scheme.lower() == "bearer" and bearer.strip():
            found, via = token_scope(request, bearer), "bearer"
        elif cookie:
            found, via = token_scope(request, cookie), "cookie"
        if found is not None:
            viewer = Viewer(found.name, found.scope, via, protected, found)
    request.state.viewer = viewer
    return viewer
