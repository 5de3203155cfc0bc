"""The events page (``/events``): the audit trail, filtered by kind, job and time."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.errors import InvalidInput
from backwatch.services import reads
from backwatch.web.deps import time_param
from backwatch.web.pages.render import html_page, render

router = APIRouter(include_in_schema=False)
SPANS = (("1h", "last hour"), ("6h", "last 6 hours"), ("24h", "last 24 hours"),
         ("7d", "last 7 days"), ("30d", "last 30 days"), ("", "all time"))  # fmt: skip
LIMIT = 300


@router.get("/events")
@html_page
async def events_page(
    request: Request, kind: str | None = None, since: str | None = "7d", job: str | None = None
) -> Response:
    hub = request.app.state.hub
    if kind and kind not in reads.EVENT_KINDS:
        raise InvalidInput.field("kind", f"must be one of: {', '.join(reads.EVENT_KINDS)}")
    start = time_param(since, "since", hub.now())
    with hub.read_engine.connect() as conn:
        rows = reads.list_events(conn, since=start, kind=kind or None, job=job or None, limit=LIMIT)
    for row in rows:
        detail = row.get("detail")
        row["_detail"] = (
            json.dumps(detail, separators=(", ", ": "), ensure_ascii=False, default=str)
            if detail
            else ""
        )
    context = {
        "events": rows,
        "kinds": reads.EVENT_KINDS,
        "spans": SPANS,
        "filters": {"kind": kind or "", "since": since or "", "job": job or ""},
        "limit": LIMIT,
    }
    return render(request, "events.html", context, page="events")
