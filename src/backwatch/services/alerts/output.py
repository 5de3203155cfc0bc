"""Alerts as the API, the pages and the CLI show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from backwatch.domain.bounds import MAX_INT32
from backwatch.errors import InvalidInput
from backwatch.services.alerts.lifecycle import ACTIVE
from backwatch.store import tables as t
from backwatch.timeutil import iso

#: the most alerts one read answers; the API pages beyond it (``alert_page``)
PAGE_MAX = 1000
#: most urgent first: the alerts page and the overview's strip
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def list_alerts(
    conn: Connection,
    *,
    state: str | None = None,
    job: str | None = None,
    limit: int = 200,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """Alerts newest first (by id), those before the id ``before`` if given."""
    a = t.alerts
    query = select(a)
    if state is not None:
        query = query.where(a.c.state == state)
    if job is not None:
        query = query.where(a.c.job == job)
    if before is not None:
        query = query.where(a.c.id < before)
    query = query.order_by(a.c.id.desc()).limit(max(1, min(limit, PAGE_MAX)))
    return [dict(r) for r in conn.execute(query).mappings()]


def alert_page(
    conn: Connection,
    *,
    state: str | None = None,
    job: str | None = None,
    limit: int = 200,
    cursor: str | None = None,
) -> dict[str, Any]:
    """``GET /api/v1/alerts``: a page of alerts newest first (at most ``PAGE_MAX``), and
    the cursor of the next (the last id shown; None at the end)."""
    before = None
    if cursor is not None:
        if not cursor.isdigit() or not 1 <= int(cursor) <= MAX_INT32:
            raise InvalidInput.field("cursor", "is not a cursor this API returned")
        before = int(cursor)
    limit = max(1, min(limit, PAGE_MAX))
    rows = list_alerts(conn, state=state, job=job, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [alert_out(r) for r in rows],
        "next_cursor": str(rows[-1]["id"]) if more else None,
    }


def urgent_alerts(
    conn: Connection,
    *,
    states: tuple[str, ...] = ACTIVE,
    job: str | None = None,
    limit: int = 200,
    after: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Alerts in ``states``, most urgent first: open before acknowledged, critical before
    warning before info, newest first; those after the (severity rank, id) ``after`` if
    given. Each row carries its ``_rank``. Read a state and severity at a time, newest
    first by the (state, severity, id) index: never every open alert sorted to show six."""
    a = t.alerts
    limit = max(1, min(limit, PAGE_MAX))
    known = list(_SEVERITY_RANK)
    rows: list[dict[str, Any]] = []
    for state in sorted(states, key=lambda s: s != "open"):
        for rank in range(len(known) + 1):  # the last: a severity none of these
            if after is not None and rank < after[0]:
                continue
            if len(rows) >= limit:
                return rows
            severity = (
                a.c.severity == known[rank] if rank < len(known) else a.c.severity.not_in(known)
            )
            query = select(a).where(a.c.state == state, severity)
            if job is not None:
                query = query.where(a.c.job == job)
            if after is not None and rank == after[0]:
                query = query.where(a.c.id < after[1])
            query = query.order_by(a.c.id.desc()).limit(limit - len(rows))
            rows += [{**r, "_rank": rank} for r in conn.execute(query).mappings()]
    return rows


def alert_counts(conn: Connection, job: str | None = None) -> dict[str, int]:
    """How many alerts are in each state (of one job, if given), counted in SQL."""
    a = t.alerts
    query = select(a.c.state, func.count()).group_by(a.c.state)
    if job is not None:
        query = query.where(a.c.job == job)
    counts = {"open": 0, "acknowledged": 0, "resolved": 0}
    counts.update({state: n for state, n in conn.execute(query).all()})
    return counts


def alert_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rule": row["rule"],
        "job": row["job"],
        "run_id": row["run_id"],
        "severity": row["severity"],
        "state": row["state"],
        "message": row["message"],
        "detail": row.get("detail"),
        "suppressed_by": row.get("suppressed_by"),
        "opened_at": iso(row["opened_at"]),
        "acknowledged_at": iso(row.get("acknowledged_at")),
        "acknowledged_by": row.get("acknowledged_by"),
        "resolved_at": iso(row.get("resolved_at")),
        "resolved_by": row.get("resolved_by"),
        "last_notified_at": iso(row.get("last_notified_at")),
    }


def open_counts(conn: Connection) -> dict[str, int]:
    """Open and acknowledged alerts by severity, counted in SQL."""
    a = t.alerts
    query = select(a.c.severity, func.count()).where(a.c.state.in_(ACTIVE)).group_by(a.c.severity)
    counts = {"info": 0, "warning": 0, "critical": 0}
    counts.update({severity: n for severity, n in conn.execute(query).all()})
    return counts
