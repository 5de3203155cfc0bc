"""``GET /metrics``: OpenMetrics when the scraper asks for it, else the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

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
    body, content_type = exposition(hub(request), request.headers.get("accept"), wanted)
    # the format follows Accept: a cache in between must not hand one scraper's to another
    return Response(body, media_type=content_type, headers={"Vary": "Accept"})
