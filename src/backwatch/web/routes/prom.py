"""``GET /metrics``: OpenMetrics when the scraper asks for it, else the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services.prometheus import exposition
from backwatch.web.deps import authorize_read, hub

router = APIRouter(tags=["system"])


@router.get("/metrics", summary="Prometheus metrics (job gauges, run counters, phases)")
async def metrics(request: Request) -> Response:
    authorize_read(request)
    body, content_type = exposition(hub(request), request.headers.get("accept"))
    # the format follows Accept: a cache in between must not hand one scraper's to another
    return Response(body, media_type=content_type, headers={"Vary": "Accept"})
