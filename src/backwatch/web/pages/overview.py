"""The overview (``/``): 30-day cards, the counts per health, the jobs that need attention
first, then the other jobs a page at a time, open alerts and recent runs.

Bounded at any fleet size: the jobs come from ``services.job_list`` (the same read as
``GET /api/v1/jobs``), a page at a time, with the counts per health counted in the
database; only the cards of the jobs shown are rendered (``overview_cards``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import job_list, reads
from backwatch.services.views import run_out
from backwatch.timeutil import parse_time
from backwatch.web.pages.alerts import alert_strip
from backwatch.web.pages.common import HEALTH_LABELS
from backwatch.web.pages.overview_cards import card_cache
from backwatch.web.pages.render import html_page, render
from backwatch.web.pages.viewer import viewer_for
from backwatch.web.pages.welcome import welcome_context

router = APIRouter(include_in_schema=False)
SUMMARY_DAYS = 30
RECENT_RUNS = 12
#: health moves with the clock: what the page shows is worked out again after every write,
#: else after this long ("3 h ago" or "late" may lag by that much)
CARDS_MAX_AGE_S = 5.0
#: jobs that need attention shown above the others (the rest: a link to them filtered)
ATTENTION_SHOWN = 48
#: other jobs per page
PAGE_SIZE = 60
#: from this many jobs on, what the overview shows is reused across writes (``_reused``)
LARGE_FLEET = 10_000

T = TypeVar("T")


def _reused(request: Request, key: Any, compute: Callable[[], T]) -> T:
    """``compute()`` through the hub's cache (rebuilt after every write); on a large fleet
    (``LARGE_FLEET`` jobs, as last counted) also reused across writes for up to
    ``CARDS_MAX_AGE_S``: the counts, the lists and the 30-day totals cost tenths of a
    second there, and a fleet under steady ingest would pay them on every view. Such a
    page may show a change up to 5 s late; live updates bring it."""
    hub = request.app.state.hub
    state = request.app.state
    if not getattr(state, "overview_large", False):
        return hub.cached(key, compute, max_age_s=CARDS_MAX_AGE_S)
    held_all: dict[Any, tuple[float, Any]] = getattr(state, "overview_held", None) or {}
    state.overview_held = held_all
    held = held_all.get(key)
    if held is not None and time.monotonic() - held[0] < CARDS_MAX_AGE_S:
        return held[1]
    value = hub.cached(key, compute, max_age_s=CARDS_MAX_AGE_S)
    if len(held_all) > 32:
        held_all.clear()
    held_all[key] = (time.monotonic(), value)
    return value


@router.get("/")
@html_page
async def overview(
    request: Request,
    tag: str | None = None,
    host: str | None = None,
    health: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    hub = request.app.state.hub
    now = hub.now()
    stuck = hub.settings.alerts.stuck_minutes
    wanted = job_list.JobFilter.parse([health] if health else [], tag, host, q)
    everyone = job_list.JobFilter()
    with hub.read_engine.connect() as conn:
        total = _reused(
            request,
            ("overview-counts", everyone),
            lambda: job_list.health_counts(conn, everyone, now=now, stuck_minutes=stuck),
        )
        request.app.state.overview_large = sum(total.values()) >= LARGE_FLEET
        if not sum(total.values()):
            return render(request, "welcome.html", await welcome_context(request), page="welcome")
        counts = total
        if wanted != job_list.JobFilter(wanted.health):  # a tag, host or id prefix
            key = ("overview-counts", job_list.JobFilter((), wanted.tag, wanted.host, wanted.q))
            counts = _reused(
                request,
                key,
                lambda: job_list.health_counts(conn, wanted, now=now, stuck_minutes=stuck),
            )
        attention, others = _reused(
            request,
            ("overview-jobs", wanted, cursor),
            lambda: _jobs(conn, wanted, now, stuck, cursor),
        )
        cards = card_cache(request)
        attention_cards = cards.cards_for(request, conn, attention.rows, now)
        other_cards = cards.cards_for(request, conn, others.rows, now)
        summary = _reused(
            request,
            ("summary-totals", SUMMARY_DAYS),
            lambda: reads.summary(conn, days=SUMMARY_DAYS, now=now, job=None, jobs_limit=0),
        )
        recent = [run_out(r) for r in reads.newest_runs(conn, RECENT_RUNS)]
        alerts = hub.cached(
            ("overview-alerts",), lambda: alert_strip(conn), max_age_s=CARDS_MAX_AGE_S
        )
    for run in recent:
        # None: a start stored as NaN, which no calendar prints (iso() gives None)
        run["_started"] = parse_time(run["started_at"]) if run["started_at"] else None
    attention_total = sum(counts[s] for s in job_list.PROBLEMS)
    filters = {"tag": tag or "", "host": host or "", "health": health or "", "q": q or ""}
    context: dict[str, Any] = {
        "summary": summary,
        "attention": attention_cards,
        "attention_total": attention_total,
        "attention_more": attention.next_cursor is not None,
        "cards": other_cards,
        "next_cursor": others.next_cursor,
        "paged": cursor is not None,
        "job_count": sum(total.values()),
        "matching": sum(counts.get(s, 0) for s in (wanted.health or counts)),
        "counts": counts,
        "total_counts": total,
        "problems": job_list.PROBLEMS,
        "labels": HEALTH_LABELS,
        "filters": filters,
        "filtered": any(filters.values()),
        "query": {k: v for k, v in filters.items() if v},
        "recent": recent,
        "alerts": alerts,
        "days": SUMMARY_DAYS,
        "can_act": viewer_for(request).may("operate"),
    }
    return render(request, "overview.html", context, page="overview")


def _jobs(
    conn: Any,
    wanted: job_list.JobFilter,
    now: float,
    stuck: float,
    cursor: str | None,
) -> tuple[job_list.JobPage, job_list.JobPage]:
    """Without a health asked for: the jobs that need attention (most urgent first, on the
    first page only) and a page of the others (by id), each job in one of the two. With
    one: no attention list, a page of those jobs, most urgent first."""
    if wanted.health:
        found = job_list.read_page(
            conn, wanted, now=now, stuck_minutes=stuck, sort="health", limit=PAGE_SIZE,
            cursor=cursor,
        )  # fmt: skip
        return job_list.JobPage([], None), found
    attention = job_list.JobPage([], None)
    if cursor is None:
        attention = job_list.read_page(
            conn,
            job_list.JobFilter(job_list.PROBLEMS, wanted.tag, wanted.host, wanted.q),
            now=now,
            stuck_minutes=stuck,
            sort="health",
            limit=ATTENTION_SHOWN,
        )
    rest = tuple(s for s in job_list.HEALTH_STATES if s not in job_list.PROBLEMS)
    others = job_list.read_page(
        conn,
        job_list.JobFilter(rest, wanted.tag, wanted.host, wanted.q),
        now=now,
        stuck_minutes=stuck,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    return attention, others
