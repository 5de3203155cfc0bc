"""Status badges (docs/badges.md): public URLs whose key and signature are the secret; a
wrong key or signature, or a reset badge key, answers 404. The work is in
``services/badges.py`` and ``services/hc_api.badge_of``."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import badges, hc_api
from backwatch.web.deps import authorize, hub, json_response

router = APIRouter(tags=["badges"])
_HEADERS = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
_TYPES = {"svg": "image/svg+xml", "json": "application/json", "shields": "application/json"}


def _not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain")


def _badge(request: Request, key: str, sig: str, kind: str, file: str) -> Response:
    name, _, fmt = file.rpartition(".")
    if fmt not in badges.FORMATS or not name:
        return _not_found()
    h = hub(request)
    with h.read_engine.connect() as conn:
        stored = badges.badge_key(conn)
        if stored is None or not hmac.compare_digest(stored.encode(), key.encode()):
            return _not_found()
        states = badges.states_for(stored, kind, name, sig)
        if states is None:
            return _not_found()

    def compute() -> tuple[str, badges.BadgeState] | None:
        with h.read_engine.connect() as conn:
            return hc_api.badge_of(
                conn, kind, name, states, h.now(), h.settings.alerts.stuck_minutes
            )

    # a README's badge is fetched by every reader (and by image proxies): reuse the answer
    # until the next write, or for 10 s at most since health moves with the clock
    found = h.cached(("badge", kind, name, states), compute, max_age_s=10.0)
    if found is None:
        return _not_found()
    label, state = found
    if fmt == "svg":
        return Response(badges.svg(label, state.status), media_type=_TYPES[fmt], headers=_HEADERS)
    data = badges.shields(label, state) if fmt == "shields" else badges.plain(state)
    answer = json_response(data)
    answer.headers.update(_HEADERS)
    return answer


@router.get("/badge/{key}/{sig}/{file}", summary="A tag's badge ('*': every job)")
async def tag_badge(key: str, sig: str, file: str, request: Request) -> Response:
    return _badge(request, key, sig, "tag", file)


@router.get("/badge/{key}/{sig}/job/{file}", summary="A job's badge")
async def job_badge(key: str, sig: str, file: str, request: Request) -> Response:
    return _badge(request, key, sig, "job", file)


@router.post("/api/v1/badge-key/reset", summary="New badge key: every badge URL so far is 404")
async def reset_badge_key(request: Request) -> Response:
    actor = authorize(request, "admin")
    h = hub(request)
    key = await h.submit(badges.reset_badge_key(h.now(), actor=actor))
    base = (h.settings.server.base_url or str(request.base_url)).rstrip("/")
    return json_response({"badges": {badges.ALL: badges.tag_urls(base, key, badges.ALL)}})
