"""``POST /api/v1/jobs/{id}/run``: run a configured job now, on the server."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import StoreUnavailable
from backwatch.web.deps import authorize, json_response

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.post("/{job_id}/run", summary="Run a configured job now (answers 202 with the run id)")
async def run_job(job_id: str, request: Request) -> Response:
    authorize(request, "operate")
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        raise StoreUnavailable("the scheduler is not running on this server")
    run_id = scheduler.trigger(job_id, "api")
    return json_response({"id": run_id, "job": job_id, "status": "queued", "trigger": "api"}, 202)
