"""``GET /metrics``: OpenMetrics when the scraper asks for it, else the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from backwatch.errors import InvalidInput
from backwatch.services.job_list import JobFilter
from backwatch.services.prometheus import exposition
from backwatch.web.deps import authorize_read, hub

router = APIRouter(tags=["system"])


@router.get("/metrics", summary="Prometheus metrics (job gauges, run counters, phases)")
async def metrics(request: Request) -> Response:
    authorize_read(request)
    query = request.query_params
    wanted = None
    if any(name in query for name in ("health", "tag", "host", "q")):  # docs/alerts.md
        wanted = JobFilter.parse(
            query.getlist("health"), query.get("tag"), query.get("host"), query.get("q")
        )
    every_job = query.get("jobs")
    if every_job not in (None, "all"):
        raise InvalidInput.field(
            "jobs", "must be 'all' (every job's series, whatever [metrics] per_job_limit)"
        )
    # a rebuild reads the whole jobs table: off the event loop, so other requests go on
    body, content_type = await run_in_threadpool(
        exposition,
        hub(request),
        request.headers.get("accept"),
        wanted,
        every_job=every_job == "all",
    )
    # the format follows Accept: a cache in between must not hand one scraper's to another
    return Response(body, media_type=content_type, headers={"Vary": "Accept"})
