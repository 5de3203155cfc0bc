"""The alerts page (``/alerts``): open, acknowledged and resolved alerts with ack, resolve
and snooze; ``active_alerts`` also feeds the overview's strip and the job page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from backwatch.domain.bounds import MAX_INT32
from backwatch.errors import Forbidden, InvalidInput
from backwatch.services import alerts as alert_service
from backwatch.timeutil import parse_duration
from backwatch.web.pages.render import (
    check_csrf,
    html_page,
    local_path,
    read_form,
    redirect,
    render,
)
from backwatch.web.pages.viewer import viewer_for
from backwatch.web.routes.alerts import check_alert_id

router = APIRouter(include_in_schema=False)
STATES = ("open", "acknowledged", "resolved")
SNOOZE_CHOICES = (("1h", "1 hour"), ("4h", "4 hours"), ("24h", "1 day"), ("7d", "1 week"))
PAGE_LIMIT = 200
STRIP_LIMIT = 6


def _shaped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        alert = alert_service.alert_out(row)
        alert["_opened"] = row["opened_at"]
        alert["_acknowledged"] = row.get("acknowledged_at")
        alert["_resolved"] = row.get("resolved_at")
        out.append(alert)
    return out


def active_alerts(
    conn: Connection, job: str | None = None, limit: int = PAGE_LIMIT
) -> list[dict[str, Any]]:
    """Open and acknowledged alerts, open and critical first: the most urgent ``limit``."""
    return _shaped(alert_service.urgent_alerts(conn, job=job, limit=limit))


def alert_strip(conn: Connection) -> dict[str, Any]:
    """The overview's strip: the ``STRIP_LIMIT`` most urgent active alerts, and how many
    are open and acknowledged in all."""
    return {
        "shown": active_alerts(conn, limit=STRIP_LIMIT),
        "counts": alert_service.alert_counts(conn),
    }


def _after(cursor: str | None) -> tuple[int, int] | None:
    """The alerts page's ``after`` (``<severity rank>.<id>`` of the last alert shown)."""
    if not cursor:
        return None
    rank, _, alert_id = cursor.partition(".")
    if not (
        rank.isdigit() and alert_id.isdigit() and int(rank) < 10 and int(alert_id) <= MAX_INT32
    ):
        raise InvalidInput.field("after", "is not a link this page gave")
    return int(rank), int(alert_id)


@router.get("/alerts")
@html_page
async def alerts_page(
    request: Request, state: str = "open", job: str | None = None, after: str | None = None
) -> Response:
    """A tab per state, ``PAGE_LIMIT`` alerts a page: open and acknowledged ones most urgent
    first, resolved ones newest first."""
    if state not in STATES:
        raise InvalidInput.field("state", f"must be one of: {', '.join(STATES)}")
    start = _after(after)
    hub = request.app.state.hub
    with hub.read_engine.connect() as conn:
        if state == "resolved":  # a history: newest first
            before = start[1] if start else None
            rows = alert_service.list_alerts(
                conn, state=state, job=job or None, limit=PAGE_LIMIT + 1, before=before
            )
            rows = [{**row, "_rank": 0} for row in rows]
        else:  # what needs a person first
            rows = alert_service.urgent_alerts(
                conn, states=(state,), job=job or None, limit=PAGE_LIMIT + 1, after=start
            )
        counts = alert_service.alert_counts(conn, job=job or None)
    more = len(rows) > PAGE_LIMIT
    rows = rows[:PAGE_LIMIT]
    next_after = f"{rows[-1]['_rank']}.{rows[-1]['id']}" if more else None
    context = {
        "alerts": _shaped(rows),
        "state": state,
        "states": STATES,
        "counts": counts,
        "job": job or "",
        "paged": start is not None,
        "next_after": next_after,
        "snooze_choices": SNOOZE_CHOICES,
        "can_act": viewer_for(request).may("operate"),
    }
    return render(request, "alerts.html", context, page="alerts")


async def _checked_form(request: Request) -> dict[str, str]:
    form = await read_form(request)
    check_csrf(request, form)
    if not viewer_for(request).may("operate"):
        raise Forbidden("sign in with an operate or admin token to handle alerts")
    return form


async def _act(request: Request, alert_id: int, action: str) -> Response:
    form = await _checked_form(request)
    check_alert_id(alert_id)
    hub = request.app.state.hub
    actor = viewer_for(request).actor
    await hub.submit(
        alert_service.set_alert_state(hub.settings, alert_id, action, hub.now(), actor)
    )
    return redirect(request, local_path(form.get("next"), "/alerts"), _SAID[action](alert_id))


_SAID = {
    "ack": lambda alert_id: (
        f"Alert {alert_id} acknowledged: no more reminders. It resolves by itself when its"
        " condition clears."
    ),
    "resolve": lambda alert_id: (
        f"Alert {alert_id} resolved. If what raised it still holds, the next check opens a"
        " new alert."
    ),
}


@router.post("/alerts/{alert_id}/ack")
@html_page
async def ack(request: Request, alert_id: int) -> Response:
    return await _act(request, alert_id, "ack")


@router.post("/alerts/{alert_id}/resolve")
@html_page
async def resolve(request: Request, alert_id: int) -> Response:
    return await _act(request, alert_id, "resolve")


@router.post("/jobs/{job_id}/snooze")
@html_page
async def snooze(request: Request, job_id: str) -> Response:
    form = await _checked_form(request)
    try:
        seconds = parse_duration(form.get("for", ""), field="for")
    except ValueError as exc:
        raise InvalidInput.field("for", str(exc)) from None
    hub = request.app.state.hub
    await hub.submit(alert_service.snooze(job_id, seconds, hub.now(), viewer_for(request).actor))
    label = dict(SNOOZE_CHOICES).get(form.get("for", ""), form.get("for", ""))
    said = f"Notifications of {job_id} held back for {label}; its alerts still open and show."
    return redirect(request, local_path(form.get("next"), "/alerts"), said)
