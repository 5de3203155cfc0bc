"""Seed 003's analyzer and health monitor: a job's performance analysis, diagnostic checks
and their safe automatic fix."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from backwatch.services import analysis, diagnostics
from backwatch.web.deps import authorize, authorize_read, hub, json_response

router = APIRouter(prefix="/api/v1")


@router.get(
    "/jobs/{job_id}/analysis",
    tags=["jobs"],
    summary="Trend, bottleneck phase, regressions, forecast and recommendations",
)
async def job_analysis(request: Request, job_id: str, period: str = "30d") -> Response:
    authorize_read(request)
    h = hub(request)

    def build() -> dict:
        with h.read_engine.connect() as conn:
            return analysis.job_analysis(conn, h.settings, job_id, period, h.now())

    return json_response(await run_in_threadpool(build))


def _names(checks: str | None) -> list[str] | None:
    names = [n.strip() for n in (checks or "").split(",") if n.strip()]
    return names or None


@router.get("/health/checks", tags=["system"], summary="Diagnostic checks with suggested fixes")
async def health_checks(request: Request, checks: str | None = None) -> Response:
    """``?checks=database,writer`` runs only those; ``status`` is the worst of them."""
    authorize_read(request)
    h = hub(request)
    names = _names(checks)
    return json_response(await run_in_threadpool(diagnostics.run_checks, h, h.now(), names))


@router.post("/health/checks/fix", tags=["system"], summary="Apply the safe automatic fixes")
async def fix_checks(request: Request) -> Response:
    """Clears run locks left by processes that are gone (and closes their runs), records an
    ``auto_resolve`` event for each, and answers what was done and the checks afterwards."""
    actor = authorize(request, "admin")
    h = hub(request)
    fixed = await run_in_threadpool(diagnostics.apply_fixes, h, actor)
    after = await run_in_threadpool(diagnostics.run_checks, h, h.now(), None)
    return json_response({"fixed": fixed, **after})
