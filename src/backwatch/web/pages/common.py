"""Small helpers shared by the page modules: job rows for pages, health ordering."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from backwatch.services.views import job_out, last_run_at

#: most urgent first: the overview lists jobs in this order
HEALTH_ORDER = (
    "failing", "missed", "stuck", "unknown", "late", "running", "ok", "new", "paused",
)  # fmt: skip
HEALTH_LABELS = {
    "failing": "Failing",
    "missed": "Missed",
    "stuck": "Stuck",
    "unknown": "Unknown",
    "late": "Late",
    "running": "Running",
    "ok": "OK",
    "new": "New",
    "paused": "Paused",
}
RUN_STATUSES = (
    "success",
    "warning",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "unknown",
    "running",
    "queued",
)


def base_url(request: Request) -> str:
    configured = request.app.state.hub.settings.server.base_url
    return (configured or str(request.base_url)).rstrip("/")


def page_job(request: Request, row: dict[str, Any], now: float, *, secrets: bool) -> dict:
    """A job as the API shows it, without its ping URL unless the viewer may see secrets."""
    hub = request.app.state.hub
    out = job_out(
        row, now, stuck_minutes=hub.settings.alerts.stuck_minutes, base_url=base_url(request)
    )
    if not secrets:
        out.pop("ping_url", None)
    out["_last_run"] = last_run_at(row)  # when the latest backup ended (its start if running)
    out["_last_success"] = row.get("last_success_at")
    out["_last_verified"] = row.get("last_verified_at")
    return out


def health_rank(health: str) -> int:
    return HEALTH_ORDER.index(health) if health in HEALTH_ORDER else len(HEALTH_ORDER)
