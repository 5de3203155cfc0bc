"""Jobs: list with health, read, change, pause and resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import job_list
from backwatch.services import jobs as job_service
from backwatch.services.views import job_out, read_job
from backwatch.web.deps import (
    authorize,
    authorize_grant,
    authorize_read,
    hub,
    json_body,
    json_response,
)

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _out(
    request: Request, row: dict[str, Any], now: float, secrets: bool | None = None
) -> dict[str, Any]:
    h = hub(request)
    base = h.settings.server.base_url or str(request.base_url)
    out = job_out(row, now, stuck_minutes=h.settings.alerts.stuck_minutes, base_url=base)
    if not (_can_see_secrets(request) if secrets is None else secrets):
        out.pop("ping_url")
    return out


def _can_see_secrets(request: Request) -> bool:
    if not request.headers.get("authorization"):
        return False
    try:  # ping URLs report without a token: only for tokens that may report for any job
        return authorize_grant(request, "ingest").reports_for_any_job
    except Exception:
        return False


@router.get("", summary="Jobs with health, last run and next due time: a page, filtered")
async def list_jobs(
    request: Request,
    limit: int = job_list.DEFAULT_LIMIT,
    cursor: str | None = None,
    tag: str | None = None,
    host: str | None = None,
    q: str | None = None,
    sort: str = "id",
    counts: bool = False,
) -> Response:
    """``health`` may repeat or list states with commas; ``counts=true`` adds the number of
    jobs per health among those the other filters match (docs/api.md)."""
    authorize_read(request)
    h = hub(request)
    secrets = _can_see_secrets(request)  # once per request, not once per job
    wanted = job_list.JobFilter.parse(request.query_params.getlist("health"), tag, host, q)
    stuck = h.settings.alerts.stuck_minutes

    def build() -> Response:
        now = h.now()
        with h.read_engine.connect() as conn:
            found = job_list.read_page(
                conn, wanted, now=now, stuck_minutes=stuck, sort=sort, limit=limit, cursor=cursor
            )
            body: dict[str, Any] = {
                "items": [_out(request, r, now, secrets) for r in found.rows],
                "next_cursor": found.next_cursor,
            }
            if counts:
                body["counts"] = h.cached(
                    ("job-counts", wanted.tag, wanted.host, wanted.q),
                    lambda: job_list.health_counts(conn, wanted, now=now, stuck_minutes=stuck),
                    max_age_s=5.0,
                )
        return json_response(body)

    # Rebuilt after every write; otherwise reused for up to 2 s (health moves with the
    # clock): dashboards poll this.
    key = ("jobs", secrets, str(request.base_url), wanted, sort, limit, cursor, counts)
    cached = h.cached(key, build, max_age_s=2.0)
    return Response(cached.body, media_type="application/json")


@router.get("/{job_id}", summary="One job")
async def get_job(job_id: str, request: Request) -> Response:
    authorize_read(request)
    h = hub(request)
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, h.now()))


@router.put("/{job_id}", summary="Create or change a job")
async def put_job(job_id: str, request: Request) -> Response:
    actor = authorize(request, "admin")
    h = hub(request)
    now = h.now()
    await h.submit(job_service.put_job(job_id, await json_body(request), now, actor=actor))
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, now))


async def _set_paused(request: Request, job_id: str, paused: bool) -> Response:
    actor = authorize(request, "operate")
    h = hub(request)
    now = h.now()
    await h.submit(
        lambda conn, unit: job_service.set_paused(conn, unit, job_id, paused, now, actor)
    )
    with h.read_engine.connect() as conn:
        row = read_job(conn, job_id)
    return json_response(_out(request, row, now))


@router.post("/{job_id}/pause", summary="Pause: no alerts, health 'paused'")
async def pause_job(job_id: str, request: Request) -> Response:
    return await _set_paused(request, job_id, True)


@router.post("/{job_id}/resume", summary="Resume a paused job")
async def resume_job(job_id: str, request: Request) -> Response:
    return await _set_paused(request, job_id, False)
