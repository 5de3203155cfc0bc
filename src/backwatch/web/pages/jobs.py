"""The job page (``/jobs/{id}``): charts, run history, schedule, snippets; pause and resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.domain.lifecycle import parse_status
from backwatch.errors import Forbidden, InvalidInput
from backwatch.services import analysis, badges, reads
from backwatch.services import jobs as job_service
from backwatch.services.views import read_job, run_out
from backwatch.timeutil import parse_time
from backwatch.web.pages.alerts import SNOOZE_CHOICES, active_alerts
from backwatch.web.pages.common import RUN_STATUSES, base_url, page_job
from backwatch.web.pages.render import (
    check_csrf,
    html_page,
    local_path,
    read_form,
    redirect,
    render,
)
from backwatch.web.pages.viewer import viewer_for
from backwatch.web.pages.welcome import snippets

router = APIRouter(include_in_schema=False)
#: runs drawn in the charts (the newest ones, oldest left)
CHART_RUNS = 100
HISTORY_PAGE = 25


def chart_data(runs: list[dict[str, Any]], phases: dict[str, list[dict]]) -> dict[str, Any]:
    """The four charts' series, oldest run first; one point per run in every series."""
    ordered = list(reversed(runs))
    names: list[str] = []
    for run in ordered:
        for phase in phases.get(run["id"], []):
            if phase["name"] not in names:
                names.append(phase["name"])
    latest = next((r for r in runs if phases.get(r["id"])), None)
    return {
        "runs": [{"id": r["id"], "t": r["started_at"], "status": r["status"]} for r in ordered],
        "duration": [r.get("duration_s") for r in ordered],
        "size": [r.get("size_bytes") for r in ordered],
        "phases": {
            name: [
                next((p["duration_s"] for p in phases.get(r["id"], []) if p["name"] == name), None)
                for r in ordered
            ]
            for name in names
        },
        "latest": {
            "id": latest["id"],
            "t": latest["started_at"],
            "phases": {p["name"]: p["duration_s"] or 0 for p in phases[latest["id"]]},
        }
        if latest
        else None,
    }


ANALYSIS_PERIOD = "30d"


@router.get("/jobs/{job_id}")
@html_page
async def job_page(
    request: Request, job_id: str, status: str | None = None, cursor: str | None = None
) -> Response:
    hub = request.app.state.hub
    now = hub.now()
    viewer = viewer_for(request)
    if status:
        try:
            status = parse_status(status).value
        except ValueError as exc:
            raise InvalidInput.field("status", str(exc)) from None
    with hub.read_engine.connect() as conn:
        row = read_job(conn, job_id)
        recent, _ = reads.list_runs(conn, job=job_id, limit=CHART_RUNS)
        phases = reads.phases_for(conn, [r["id"] for r in recent])
        history, next_cursor = reads.list_runs(
            conn, job=job_id, status=status or None, limit=HISTORY_PAGE, cursor=cursor
        )
        alerts = active_alerts(conn, job=job_id)
        # the same sentences as GET /api/v1/jobs/{id}/analysis (issue 19)
        findings = analysis.job_analysis(conn, hub.settings, job_id, ANALYSIS_PERIOD, now)
        badge_key = badges.badge_key(conn) if viewer.grant is not None else None
    if viewer.grant is not None and badge_key is None:
        badge_key = await hub.submit(badges.ensure_badge_key())
    job = page_job(request, row, now, secrets=viewer.sees_secrets)
    runs = [run_out(r) for r in history]
    for run in runs:
        # None: a start stored as NaN, which no calendar prints (iso() gives None)
        run["_started"] = parse_time(run["started_at"]) if run["started_at"] else None
    token_file = str(hub.settings.token_file.resolve())
    context = {
        "job": job,
        "row": row,
        "runs": runs,
        "status": status or "",
        "statuses": RUN_STATUSES,
        "cursor": cursor,
        "next_cursor": next_cursor,
        "chart": chart_data(recent, phases),
        "chart_count": len(recent),
        "snippets": snippets(base_url(request), token_file, job_id, job.get("ping_url")),
        "can_act": viewer.may("operate"),
        "token_file": token_file,
        "alerts": alerts,
        "findings": findings["recommendations"],
        "analysis_period": ANALYSIS_PERIOD,
        "snooze_choices": SNOOZE_CHOICES,
        # badge URLs (docs/badges.md) for signed-in viewers: they hold the badge key
        "badges": badges.job_urls(base_url(request), badge_key, job_id) if badge_key else None,
    }
    return render(request, "job.html", context, page="job")


async def _set_paused(request: Request, job_id: str, paused: bool) -> Response:
    form = await read_form(request)
    check_csrf(request, form)
    viewer = viewer_for(request)
    if not viewer.may("operate"):
        raise Forbidden("sign in with an operate or admin token to pause or resume jobs")
    hub = request.app.state.hub
    now = hub.now()
    await hub.submit(
        lambda conn, unit: job_service.set_paused(conn, unit, job_id, paused, now, viewer.actor)
    )
    said = (
        f"{job_id} paused: no alerts and health 'paused' until you resume it."
        if paused
        else f"{job_id} resumed: its schedule and alerts count again."
    )
    return redirect(request, local_path(form.get("next"), f"/jobs/{job_id}"), said)


@router.post("/jobs/{job_id}/pause")
@html_page
async def pause(request: Request, job_id: str) -> Response:
    return await _set_paused(request, job_id, True)


@router.post("/jobs/{job_id}/resume")
@html_page
async def resume(request: Request, job_id: str) -> Response:
    return await _set_paused(request, job_id, False)
