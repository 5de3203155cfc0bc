"""The overview (``/``): 30-day cards, the job grid with filters, open alerts, recent runs.

Light with 500 jobs: the jobs table's latest-run snapshot, one summary query on the daily
rollups, the newest runs, and job cards rendered once and reused until they change
(``overview_cards``); nothing per job on a request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import reads
from backwatch.services.views import run_out
from backwatch.timeutil import parse_time
from backwatch.web.pages.alerts import active_alerts
from backwatch.web.pages.common import HEALTH_LABELS
from backwatch.web.pages.overview_cards import card_cache
from backwatch.web.pages.render import html_page, render
from backwatch.web.pages.viewer import viewer_for
from backwatch.web.pages.welcome import welcome_context

router = APIRouter(include_in_schema=False)
SUMMARY_DAYS = 30
RECENT_RUNS = 12
#: health moves with the clock: the grid is worked out again after every write, else
#: after this long ("3 h ago" or "late" may lag by that much)
CARDS_MAX_AGE_S = 5.0


@router.get("/")
@html_page
async def overview(
    request: Request, tag: str | None = None, host: str | None = None, health: str | None = None
) -> Response:
    hub = request.app.state.hub
    now = hub.now()
    with hub.read_engine.connect() as conn:
        deck = hub.cached(
            ("overview-deck",),
            lambda: card_cache(request).deck(request, conn, now),
            max_age_s=CARDS_MAX_AGE_S,
        )
        if not deck.cards:
            return render(request, "welcome.html", await welcome_context(request), page="welcome")
        summary = hub.cached(
            ("summary", SUMMARY_DAYS, None),
            lambda: reads.summary(conn, days=SUMMARY_DAYS, now=now, job=None),
        )
        recent = [run_out(r) for r in reads.newest_runs(conn, RECENT_RUNS)]
        alerts = hub.cached(
            ("overview-alerts",), lambda: active_alerts(conn), max_age_s=CARDS_MAX_AGE_S
        )
    for run in recent:
        # None: a start stored as NaN, which no calendar prints (iso() gives None)
        run["_started"] = parse_time(run["started_at"]) if run["started_at"] else None
    context: dict[str, Any] = {
        "summary": summary,
        "cards": deck.matching(tag, host, health),
        "job_count": len(deck.cards),
        "counts": deck.counts,
        "labels": HEALTH_LABELS,
        "tags": deck.tags,
        "hosts": deck.hosts,
        "filters": {"tag": tag or "", "host": host or "", "health": health or ""},
        "recent": recent,
        "alerts": alerts,
        "days": SUMMARY_DAYS,
        "can_act": viewer_for(request).may("operate"),
    }
    return render(request, "overview.html", context, page="overview")
