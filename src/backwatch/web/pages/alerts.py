"""The alerts page (``/alerts``): open, acknowledged and resolved alerts with ack, resolve
and snooze; ``active_alerts`` also feeds the overview's strip and the job page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

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
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _shaped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        alert = alert_service.alert_out(row)
        alert["_opened"] = row["opened_at"]
        alert["_acknowledged"] = row.get("acknowledged_at")
        alert["_resolved"] = row.get("resolved_at")
        out.append(alert)
    return out


def active_alerts(conn: Connection, job: str | None = None) -> list[dict[str, Any]]:
    """Open and acknowledged alerts, open and critical first."""
    rows = alert_service.list_alerts(conn, state="open", job=job, limit=PAGE_LIMIT)
    rows += alert_service.list_alerts(conn, state="acknowledged", job=job, limit=PAGE_LIMIT)
    alerts = _shaped(rows)
    alerts.sort(
        key=lambda a: (a["state"] != "open", _SEVERITY_RANK.get(a["severity"], 3), -a["_opened"])
    )
    return alerts


@router.get("/alerts")
@html_page
async def alerts_page(request: Request, state: str = "open", job: str | None = None) -> Response:
    if state not in STATES:
        raise InvalidInput.field("state", f"must be one of: {', '.join(STATES)}")
    hub = request.app.state.hub
    with hub.read_engine.connect() as conn:
        rows = alert_service.list_alerts(conn, state=state, job=job or None, limit=PAGE_LIMIT)
        counts = {
            s: len(alert_service.list_alerts(conn, state=s, job=job or None, limit=PAGE_LIMIT))
            for s in ("open", "acknowledged")
        }
    alerts = _shaped(rows)
    if state != "resolved":  # what needs a person first; the resolved tab stays a history
        alerts.sort(key=lambda a: (_SEVERITY_RANK.get(a["severity"], 3), -a["_opened"]))
    context = {
        "alerts": alerts,
        "state": state,
        "states": STATES,
        "counts": counts,
        "job": job or "",
        "limit": PAGE_LIMIT,
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
