"""The seed 001 compatibility endpoint, the summary and the audit trail (``/health`` is in
web/routes/health.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import InvalidInput
from backwatch.services import job_list, reads
from backwatch.services.views import SUMMARY_JOBS_MAX, seed001_out, summary_out
from backwatch.timeutil import iso
from backwatch.web.deps import authorize_read, hub, json_response, time_param

router = APIRouter()
#: per-job figures in one answer of the summary, at most


@router.get("/api/metrics", tags=["compat"], summary="30 newest runs in seed 001's JSONL shape")
async def api_metrics(request: Request) -> Response:
    authorize_read(request)
    with hub(request).read_engine.connect() as conn:
        runs = reads.newest_runs(conn, 30)
        phases = reads.phases_for(conn, [r["id"] for r in runs])
    return json_response([seed001_out(r, phases[r["id"]]) for r in runs])


@router.get("/api/v1/summary", tags=["overview"], summary="Totals and per-job figures")
async def summary(
    request: Request,
    days: int = 30,
    job: str | None = None,
    limit: int = SUMMARY_JOBS_MAX,
    cursor: str | None = None,
) -> Response:
    """``jobs`` holds the figures of ``limit`` jobs at most (by id); ``jobs_next_cursor``
    continues (null at the end)."""
    authorize_read(request)
    if not 1 <= days <= 730:
        raise InvalidInput.field("days", "must be between 1 and 730")
    if not 1 <= limit <= SUMMARY_JOBS_MAX:
        raise InvalidInput.field("limit", f"must be between 1 and {SUMMARY_JOBS_MAX}")
    after = job_list.decode_cursor(cursor, "summary")[1] if cursor else None
    h = hub(request)
    with h.read_engine.connect() as conn:
        stuck = h.settings.alerts.stuck_minutes
        data = h.cached(
            ("summary+health", days, job, limit, after),  # the overview caches the figures
            lambda: summary_out(
                conn,
                days=days,
                now=h.now(),
                job=job,
                stuck_minutes=stuck,
                jobs_limit=limit,
                jobs_after=after,
            ),
            max_age_s=5.0,  # its health counts move with the clock
        )
    return json_response(data)


@router.get("/api/v1/events", tags=["overview"], summary="The audit trail, newest first")
async def events(
    request: Request,
    since: str | None = None,
    kind: str | None = None,
    job: str | None = None,
    limit: int = 200,
) -> Response:
    authorize_read(request)
    if kind is not None and kind not in reads.EVENT_KINDS:
        raise InvalidInput.field("kind", f"must be one of: {', '.join(reads.EVENT_KINDS)}")
    h = hub(request)
    with h.read_engine.connect() as conn:
        rows = reads.list_events(
            conn, since=time_param(since, "since", h.now()), kind=kind, job=job, limit=limit
        )
    return json_response({"items": [{**r, "at": iso(r["at"])} for r in rows]})
