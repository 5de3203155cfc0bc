"""Alerts: list, acknowledge, resolve; snooze a job's notifications; test a channel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.domain.bounds import MAX_INT32
from backwatch.errors import InvalidInput, NotFound
from backwatch.services import alerts as alert_service
from backwatch.services import notifier
from backwatch.timeutil import iso, parse_duration
from backwatch.web.deps import authorize, authorize_read, hub, json_body, json_response

router = APIRouter(tags=["alerts"])
STATES = ("open", "acknowledged", "resolved")
MAX_LIMIT = 10_000


def check_alert_id(alert_id: int) -> None:
    """Alert ids are positive INTEGERs: any other number names no alert (404), rather
    than an overflow in the database driver (500 on SQLite, 503 on PostgreSQL)."""
    if not 1 <= alert_id <= MAX_INT32:
        raise NotFound(f"alert {alert_id} not found")


@router.get("/api/v1/alerts", summary="Alerts, newest first, a page at a time")
async def list_alerts(
    request: Request,
    state: str | None = None,
    job: str | None = None,
    limit: int = 200,
    cursor: str | None = None,
    counts: bool = False,
) -> Response:
    """At most 1,000 a page (a larger ``limit`` is served 1,000 at a time); ``next_cursor``
    gives the next page, null at the end; ``counts=true`` adds how many alerts (of ``job``,
    if given) are in each state."""
    authorize_read(request)
    if state is not None and state not in STATES:
        raise InvalidInput.field("state", f"must be one of: {', '.join(STATES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.field("limit", f"must be between 1 and {MAX_LIMIT}")
    with hub(request).read_engine.connect() as conn:
        page = alert_service.alert_page(conn, state=state, job=job, limit=limit, cursor=cursor)
        if counts:
            page["counts"] = alert_service.alert_counts(conn, job=job)
    return json_response(page)


async def _act(request: Request, alert_id: int, action: str) -> Response:
    actor = authorize(request, "operate")
    check_alert_id(alert_id)
    h = hub(request)
    row = await h.submit(
        alert_service.set_alert_state(h.settings, alert_id, action, h.now(), actor)
    )
    return json_response(alert_service.alert_out(row))


@router.post("/api/v1/alerts/{alert_id}/ack", summary="Acknowledge: no more reminders")
async def ack_alert(alert_id: int, request: Request) -> Response:
    return await _act(request, alert_id, "ack")


@router.post("/api/v1/alerts/{alert_id}/resolve", summary="Resolve by hand")
async def resolve_alert(alert_id: int, request: Request) -> Response:
    return await _act(request, alert_id, "resolve")


@router.post("/api/v1/jobs/{job_id}/snooze", summary="Hold back a job's notifications")
async def snooze_job(job_id: str, request: Request) -> Response:
    actor = authorize(request, "operate")
    body = await json_body(request)
    if not isinstance(body, dict) or "for" not in body:
        raise InvalidInput.field("for", "is required: a duration such as '2h' (0 lifts it)")
    try:
        seconds = parse_duration(body["for"], field="for")
    except ValueError as exc:
        raise InvalidInput.field("for", str(exc)) from None
    h = hub(request)
    until = await h.submit(alert_service.snooze(job_id, seconds, h.now(), actor))
    return json_response({"job": job_id, "snoozed_until": iso(until)})


@router.post("/api/v1/notify/test", summary="Queue a test message to every channel")
async def notify_test(request: Request) -> Response:
    authorize(request, "operate")
    h = hub(request)
    urls = [url for target in h.settings.notify for url in target.urls]
    if not urls:
        raise InvalidInput("no [[notify]] channels are configured")
    queued = await h.submit(notifier.queue_test(h.settings, urls, h.now()))
    return json_response({"queued": queued})


@router.get("/api/v1/notify/channels", summary="Channels (masked) with their last error")
async def channels(request: Request) -> Response:
    authorize(request, "admin")
    rows = notifier.channel_status(hub(request).read_engine)
    return json_response(
        {
            "items": [
                {
                    "id": r["id"],
                    "url": r["masked_url"],
                    "failing": bool(r["failing"]),
                    "last_error": r["last_error"],
                    "last_error_at": iso(r["last_error_at"]),
                    "last_success_at": iso(r["last_success_at"]),
                }
                for r in rows
            ]
        }
    )
