"""Healthchecks' management API under ``/api/v1/``, ``/api/v2/`` and ``/api/v3/``
(docs/healthchecks-api.md); the work is in ``services/hc_api.py``.

Authentication as Healthchecks: ``X-Api-Key: <backwatch token>`` (or ``api_key`` in a JSON
body). Errors are Healthchecks' own shape, ``{"error": "..."}`` with 400/401/403/404, not
backwatch's envelope. Only v3 is in the OpenAPI schema; v1 and v2 answer the same (v1 says
``started`` for a running check, as Healthchecks' v1 does).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import BackwatchError, Forbidden, NotFound
from backwatch.services import badges, hc_api, hc_spec, tokens
from backwatch.services import jobs as job_service
from backwatch.web.deps import hub, json_response, parse_json

router = APIRouter(tags=["healthchecks"])
VERSIONS = (1, 2, 3)
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "X-Api-Key"}

Endpoint = Callable[..., Awaitable[Response]]


def _error(message: str, status: int) -> Response:
    return Response(
        json_response({"error": message}).body,
        status_code=status,
        media_type="application/json",
        headers=_CORS,
    )


def _answers_like_healthchecks(endpoint: Endpoint) -> Endpoint:
    """Any BackwatchError → ``{"error": message}``; a 422 is Healthchecks' 400."""

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            answer = await endpoint(*args, **kwargs)
        except BackwatchError as exc:
            return _error(exc.message, 400 if exc.status == 422 else exc.status)
        answer.headers.update(_CORS)
        return answer

    return wrapper


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.method != "POST" or not raw.strip():
        return {}
    try:
        body = parse_json(raw)
    except BackwatchError:
        raise hc_spec.HCInvalid("could not parse request body") from None
    if not isinstance(body, dict):
        raise hc_spec.HCInvalid("json validation error: value is not an object")
    return body


def _grant(request: Request, body: dict[str, Any], needed: str) -> tokens.Grant:
    key = request.headers.get("x-api-key")
    if key is None and "api_key" in body:
        key = str(body["api_key"])
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if key is None and scheme.lower() == "bearer":  # backwatch's own way, accepted too
        key = bearer
    if not key:
        raise _Unauthorized("missing api key")
    grant = request.app.state.token_cache.lookup(hub(request), key.strip())
    if grant is None:
        raise _Unauthorized("wrong api key")
    if not grant.allows(needed):
        raise Forbidden(
            f"token {grant.name!r} has scope {grant.scope!r}; this call needs {needed!r}"
        )
    return grant


class _Unauthorized(BackwatchError):
    status = 401
    code = "unauthorized"


def _base(request: Request) -> str:
    h = hub(request)
    return (h.settings.server.base_url or str(request.base_url)).rstrip("/")


async def _view(request: Request, grant: tokens.Grant, v: int) -> hc_api.View:
    h = hub(request)
    with h.read_engine.connect() as conn:
        key = badges.badge_key(conn)
        channels = ",".join(c["id"] for c in hc_api.channel_rows(conn))
    if key is None:
        key = await h.submit(badges.ensure_badge_key())
    return hc_api.View(
        readonly=not grant.reports_for_any_job,
        v=v,
        base=_base(request),
        badge_key=key,
        channels=channels,
        stuck_minutes=h.settings.alerts.stuck_minutes,
    )


def _find(request: Request, code: str, grant: tokens.Grant, *, by_key: bool = False) -> Any:
    """The job of ``code``: a uuid, or (for reads) a read-only key's ``unique_key``."""
    with hub(request).read_engine.connect() as conn:
        if by_key and _SHA1.match(code):
            return hc_api.find_by_unique_key(conn, code)
        return hc_api.find_check(conn, code)


async def _check_answer(
    request: Request, grant: tokens.Grant, v: int, job: str, status: int = 200
) -> Response:
    view = await _view(request, grant, v)
    h = hub(request)
    with h.read_engine.connect() as conn:
        rows = hc_api.list_checks(conn, tags=[], slug=job)
    if not rows:
        raise NotFound("check not found")
    return json_response(hc_api.check_out(rows[0], h.now(), view), status)


# --- endpoints (registered for each version below) -----------------------------------------


async def list_or_create(request: Request, v: int) -> Response:
    body = await _body(request)
    if request.method == "POST":
        grant = _grant(request, body, "admin")
        spec = hc_spec.parse_spec(body)
        h = hub(request)
        job, created = await h.submit(hc_api.create_check(spec, h.now(), actor=grant.name))
        return await _check_answer(request, grant, v, job, 201 if created else 200)
    grant = _grant(request, body, "read")
    view = await _view(request, grant, v)
    h = hub(request)
    with h.read_engine.connect() as conn:
        rows = hc_api.list_checks(
            conn,
            tags=request.query_params.getlist("tag"),
            slug=request.query_params.get("slug") or None,
        )
    now = h.now()
    return json_response({"checks": [hc_api.check_out(r, now, view) for r in rows]})


async def single(request: Request, v: int, code: str) -> Response:
    body = await _body(request)
    h = hub(request)
    if request.method == "GET":
        grant = _grant(request, body, "read")
        row = _find(request, code, grant, by_key=True)
        view = await _view(request, grant, v)
        return json_response(hc_api.check_out(row, h.now(), view))
    grant = _grant(request, body, "admin")
    row = _find(request, code, grant)
    if request.method == "DELETE":
        answer = await _check_answer(request, grant, v, row["id"])
        await h.submit(hc_api.delete_check(row["id"], h.now(), actor=grant.name))
        return answer
    spec = hc_spec.parse_spec(body)
    await h.submit(hc_api.update_check(row["id"], spec, h.now(), actor=grant.name))
    return await _check_answer(request, grant, v, row["id"])


async def _set_paused(request: Request, v: int, code: str, paused: bool) -> Response:
    body = await _body(request)
    grant = _grant(request, body, "operate")
    row = _find(request, code, grant)
    if not paused and not row["paused"]:
        return _error("check is not paused", 409)
    h = hub(request)
    now = h.now()
    await h.submit(
        lambda conn, unit: job_service.set_paused(conn, unit, row["id"], paused, now, grant.name)
    )
    return await _check_answer(request, grant, v, row["id"])


async def pause(request: Request, v: int, code: str) -> Response:
    return await _set_paused(request, v, code, True)


async def resume(request: Request, v: int, code: str) -> Response:
    return await _set_paused(request, v, code, False)


async def pings(request: Request, v: int, code: str) -> Response:
    grant = _grant(request, {}, "read")
    row = _find(request, code, grant)
    with hub(request).read_engine.connect() as conn:
        items = hc_api.pings_out(conn, row, _base(request), v)
    return json_response({"pings": items})


async def ping_body(request: Request, v: int, code: str, n: str) -> Response:
    grant = _grant(request, {}, "read")
    row = _find(request, code, grant)
    if not (n.isascii() and n.isdigit()):
        raise NotFound("no such ping")
    with hub(request).read_engine.connect() as conn:
        body = hc_api.ping_body(conn, row["id"], int(n))
    if body is None:
        raise NotFound("no such ping, or it has no body")
    return Response(body, media_type="text/plain")


async def flips(request: Request, v: int, code: str) -> Response:
    grant = _grant(request, {}, "read")
    row = _find(request, code, grant, by_key=True)
    params: dict[str, float | None] = {}
    for name in ("seconds", "start", "end"):
        value = request.query_params.get(name)
        if value is not None and not (value.isascii() and value.isdigit()):
            raise hc_spec.HCInvalid(f"{name} must be a whole number of seconds")
        params[name] = float(value) if value is not None else None
    h = hub(request)
    start, seconds = params["start"], params["seconds"]
    if seconds is not None:
        start = max(start or 0.0, h.now() - seconds)
    with h.read_engine.connect() as conn:
        items = hc_api.flips_out(conn, row["id"], start=start, end=params["end"])
    return json_response({"flips": items})


async def channels(request: Request, v: int) -> Response:
    _grant(request, {}, "read")
    with hub(request).read_engine.connect() as conn:
        return json_response({"channels": hc_api.channel_rows(conn)})


async def badge_list(request: Request, v: int) -> Response:
    grant = _grant(request, {}, "read")
    view = await _view(request, grant, v)
    with hub(request).read_engine.connect() as conn:
        rows = hc_api.list_checks(conn, tags=[], slug=None)
    tags = {badges.ALL} | {tag for r in rows for tag in (r.get("tags") or [])}
    return json_response(
        {"badges": {tag: badges.tag_urls(view.base, view.badge_key, tag) for tag in sorted(tags)}}
    )


async def status(request: Request, v: int) -> Response:
    with hub(request).read_engine.connect() as conn:
        hc_api.database_answers(conn)
    return Response("OK", media_type="text/plain")


_ROUTES: list[tuple[str, Endpoint, list[str], str]] = [
    ("checks/", list_or_create, ["GET", "POST"], "List checks (slug, tag filters) or create one"),
    ("checks/{code}", single, ["GET", "POST", "DELETE"], "Get, update or delete a check"),
    ("checks/{code}/pause", pause, ["POST"], "Pause a check"),
    ("checks/{code}/resume", resume, ["POST"], "Resume a paused check"),
    ("checks/{code}/pings/", pings, ["GET"], "A check's pings (its runs), newest first"),
    ("checks/{code}/pings/{n}/body", ping_body, ["GET"], "A ping's body (its run's log)"),
    ("checks/{code}/flips/", flips, ["GET"], "A check's up/down changes"),
    ("channels/", channels, ["GET"], "Notification channels"),
    ("badges/", badge_list, ["GET"], "Badge URLs per tag"),
    ("status/", status, ["GET"], "OK when the database answers"),
]


def _bind(endpoint: Endpoint, v: int, path: str) -> Endpoint:
    """``endpoint`` with its API version fixed, as a route FastAPI can call (its signature
    names the path's parameters, so that the OpenAPI document declares them)."""

    async def route(request: Request, **params: str) -> Response:
        return await endpoint(request, v, **params)

    wrapped = _answers_like_healthchecks(route)
    wrapped.__name__ = f"hc_{endpoint.__name__}_v{v}"
    wrapped.__doc__ = endpoint.__doc__
    first = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    named = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
        for name in re.findall(r"{(\w+)}", path)
    ]
    wrapped.__signature__ = inspect.Signature(first + named)  # type: ignore[attr-defined]
    return wrapped


for _v in VERSIONS:
    for _path, _endpoint, _methods, _summary in _ROUTES:
        for _method in _methods:
            _route = _bind(_endpoint, _v, _path)
            router.add_api_route(
                f"/api/v{_v}/{_path}",
                _route,
                methods=[_method],
                summary=_summary,
                name=f"{_route.__name__}_{_method.lower()}",
                include_in_schema=_v == 3,
            )
