"""``POST /api/v1/jobs/{id}/drill``: restore a sample of a job's latest backup on the server
and record the drill as a run (docs/drills.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from backwatch.errors import InvalidInput, NotFound
from backwatch.job_settings import parse_size
from backwatch.runners.drill import drill_job
from backwatch.services import runs as run_service
from backwatch.services.views import run_out
from backwatch.web.deps import authorize, hub, json_response

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.post("/{job_id}/drill", summary="Restore a sample of the latest backup and compare it")
async def drill(
    request: Request,
    job_id: str,
    files: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    max_bytes: Annotated[str | None, Query(description="e.g. 200MB")] = None,
) -> Response:
    actor = authorize(request, "operate")
    h = hub(request)
    job = next((j for j in h.settings.jobs if j.id == job_id), None)
    if job is None:
        raise NotFound(f"job {job_id!r} is not declared in this server's config file")
    try:
        limit = None if max_bytes is None else parse_size(max_bytes, field="max_bytes")
    except ValueError as exc:
        raise InvalidInput.field("max_bytes", str(exc)) from None
    # the drill runs tools for seconds or minutes: off the event loop
    report = await run_in_threadpool(
        drill_job, h.settings, job, files=files, max_bytes=limit, trigger="api"
    )
    recorded = await h.submit(run_service.record_report(report, h.now(), actor=actor))
    return json_response(run_out(recorded.run), 201)
