"""The overview (``/``): 30-day cards, the job grid with filters, open alerts, recent runs.

Light with 500 jobs: the jobs table's latest-run snapshot, one summary query on the daily
rollups, one bounded sparkline query and the newest runs; nothing per job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services.views import run_out
from backwatch.store import page_queries, queries
from backwatch.timeutil import human_bytes, human_duration, parse_time
from backwatch.web.pages.alerts import active_alerts
from backwatch.web.pages.common import HEALTH_LABELS, HEALTH_ORDER, health_rank, page_job
from backwatch.web.pages.render import html_page, relative, render
from backwatch.web.pages.viewer import viewer_for
from backwatch.web.pages.welcome import welcome_context

router = APIRouter(include_in_schema=False)
SUMMARY_DAYS = 30
RECENT_RUNS = 12


def _spark(values: list[float]) -> str:
    return " ".join(f"{v:.3g}" for v in values)


def _cards(
    request: Request, rows: list[dict[str, Any]], sparks: dict[str, list[float]], now: float
) -> list[dict[str, Any]]:
    """Every job as an overview card (formatted here: a template macro per card costs too
    much at 500 jobs). No secrets: the overview never shows ping URLs."""
    jobs = [page_job(request, row, now, secrets=False) for row in rows]
    for job in jobs:
        last = job["last_run"] or {}
        job["_spark"] = _spark(sparks.get(job["id"], []))
        job["_last_rel"] = relative(job["_last_started"], now)
        job["_next_rel"] = relative(parse_time(job["next_due"]), now) if job["next_due"] else ""
        job["_size"] = (
            human_bytes(last["size_bytes"]) if last.get("size_bytes") is not None else "–"
        )
        job["_duration"] = (
            human_duration(last["duration_s"]) if last.get("duration_s") is not None else "–"
        )
    return jobs


@router.get("/")
@html_page
async def overview(
    request: Request, tag: str | None = None, host: str | None = None, health: str | None = None
) -> Response:
    hub = request.app.state.hub
    now = hub.now()
    with hub.read_engine.connect() as conn:
        rows = queries.list_jobs(conn)
        if not rows:
            return render(request, "welcome.html", await welcome_context(request), page="welcome")
        summary = hub.cached(
            ("summary", SUMMARY_DAYS, None),
            lambda: queries.summary(conn, days=SUMMARY_DAYS, now=now, job=None),
        )
        sparks = hub.cached(("sparks",), lambda: page_queries.recent_durations(conn))
        recent = [run_out(r) for r in queries.newest_runs(conn, RECENT_RUNS)]
        alerts = active_alerts(conn)
    # the 500 cards, formatted: rebuilt after every write, else reused for up to 5 s
    # ("3 h ago" may lag by that much; health changes are writes or minutes apart)
    jobs = hub.cached(
        ("overview-jobs", str(request.base_url)),
        lambda: _cards(request, rows, sparks, now),
        max_age_s=5.0,
    )
    counts = {name: 0 for name in HEALTH_ORDER}
    for job in jobs:
        counts[job["health"]] = counts.get(job["health"], 0) + 1
    tags = sorted({t for job in jobs for t in job["tags"]})
    hosts = sorted({job["host"] for job in jobs if job["host"]})
    shown = [
        job
        for job in jobs
        if (not tag or tag in job["tags"])
        and (not host or job["host"] == host)
        and (not health or job["health"] == health)
    ]
    shown.sort(key=lambda j: (health_rank(j["health"]), j["id"]))
    for run in recent:
        run["_started"] = parse_time(run["started_at"])
    context: dict[str, Any] = {
        "summary": summary,
        "jobs": shown,
        "job_count": len(jobs),
        "counts": counts,
        "labels": HEALTH_LABELS,
        "tags": tags,
        "hosts": hosts,
        "filters": {"tag": tag or "", "host": host or "", "health": health or ""},
        "recent": recent,
        "alerts": alerts,
        "days": SUMMARY_DAYS,
        "can_act": viewer_for(request).may("ingest"),
    }
    return render(request, "overview.html", context, page="overview")
