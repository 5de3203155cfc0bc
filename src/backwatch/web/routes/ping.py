"""Healthchecks-compatible ping URLs (SPEC §3.4): the key in the URL is the secret.

    /ping/<job-ping-key>[/start|/fail|/log|/<exit-status>]
    /ping/<project-ping-key>/<job>[/start|/fail|/log|/<exit-status>][?create=1]

Answers are Healthchecks' own: ``200 OK``, ``201 Created`` (slug URL that created the job),
``404 not found``, ``400 invalid url format`` / ``invalid uuid format``, as plain text.
The pairing rules live in ``services/pings.py``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import BackwatchError, Forbidden, InvalidInput
from backwatch.services import pings
from backwatch.web.deps import authorize_grant, hub, json_response

router = APIRouter(tags=["pings"])
METHODS = ["GET", "POST", "HEAD"]
_HEADERS = {
    "Ping-Body-Limit": str(pings.PING_BODY_LIMIT),
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-cache",
}


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain", headers=_HEADERS)


def _not_found() -> Response:
    return _text("not found", 404)


async def _ping(
    request: Request, job: str, action: str | None, *, key: str, create: bool = False
) -> Response:
    """Validate the rest of the URL, read the body and apply the ping to ``job``."""
    try:
        parsed = pings.parse_action(action)
        if parsed is None:
            return _not_found()
        rid = pings.parse_rid(request.query_params.get("rid"))
    except pings.BadPingURL as exc:
        return _text(str(exc), 400)
    signal, exit_code = parsed
    h = hub(request)
    body = pings.body_text(await request.body(), hide=(key,))
    if body:  # any job's ping key or the project key, not just this one (issue 14.4)
        with h.read_engine.connect() as conn:
            body = pings.redact_body(conn, body)
    ping = pings.Ping(signal, exit_code=exit_code, rid=rid, body=body)
    try:
        outcome = await h.submit(pings.record_ping(job, ping, h.now(), create=create))
    except BackwatchError as exc:
        if exc.status == 404:
            return _not_found()
        return _text(exc.message, exc.status)
    if outcome.job_created:
        return _text("Created", 201)
    return _text("OK")


def _job_for_key(request: Request, key: str) -> str | None:
    if not pings.plausible_key(key):
        return None
    with hub(request).read_engine.connect() as conn:
        return pings.job_for_key(conn, key)


async def _by_slug(request: Request, key: str, slug: str, action: str | None) -> Response:
    create = request.query_params.get("create") == "1"
    if not (pings.plausible_key(key) and pings.plausible_key(slug)):
        return _not_found()
    with hub(request).read_engine.connect() as conn:
        if not pings.project_key_matches(conn, key):
            return _not_found()
        exists = pings.job_exists(conn, slug)
    if not exists:
        if not create:
            return _not_found()
        try:
            pings.check_slug(slug)
        except InvalidInput as exc:
            return _text(exc.message, 400)
    return await _ping(request, slug, action, key=key, create=create)


def _route(path: str, summary: str) -> Any:
    """Register the endpoint for each ping method as its own route: one route with three
    methods gives three OpenAPI operations one id (FastAPI warns: duplicate Operation ID)."""

    def register(endpoint: Any) -> Any:
        for method in METHODS:
            name = f"{endpoint.__name__}_{method.lower()}"
            router.add_api_route(path, endpoint, methods=[method], summary=summary, name=name)
        return endpoint

    return register


@_route("/ping/{key}", summary="Success ping (Healthchecks)")
async def ping(key: str, request: Request) -> Response:
    job = _job_for_key(request, key)
    if job is None:
        return _not_found()
    return await _ping(request, job, None, key=key)


@_route(
    "/ping/{key}/{part}",
    summary="start | fail | log | <exit-status> ping, or success ping by project key and job",
)
async def ping_action_or_slug(key: str, part: str, request: Request) -> Response:
    job = _job_for_key(request, key)
    if job is not None:
        return await _ping(request, job, part, key=key)
    return await _by_slug(request, key, part, None)


@_route(
    "/ping/{key}/{slug}/{action}",
    summary="start | fail | log | <exit-status> ping by project key and job",
)
async def ping_slug_action(key: str, slug: str, action: str, request: Request) -> Response:
    return await _by_slug(request, key, slug, action)


@router.get("/api/v1/ping-key", summary="The project ping key for slug ping URLs")
async def project_ping_key(request: Request) -> Response:
    grant = authorize_grant(request, "ingest")
    if not grant.reports_for_any_job:
        raise Forbidden(
            f"token {grant.name!r} may report only for some jobs or hosts; the project ping "
            "key reports for any job, so it needs an ingest token without patterns"
        )
    h = hub(request)
    key = await h.submit(pings.ensure_project_key())
    base = (h.settings.server.base_url or str(request.base_url)).rstrip("/")
    return json_response({"ping_key": key, "ping_url": f"{base}/ping/{key}/<job>"})
