"""Alerts as the API, the pages and the CLI show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from backwatch.services.alerts.lifecycle import ACTIVE
from backwatch.store import tables as t
from backwatch.timeutil import iso


def list_alerts(
    conn: Connection, *, state: str | None = None, job: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    a = t.alerts
    query = select(a)
    if state is not None:
        query = query.where(a.c.state == state)
    if job is not None:
        query = query.where(a.c.job == job)
    query = query.order_by(a.c.id.desc()).limit(max(1, min(limit, 1000)))
    return [dict(r) for r in conn.execute(query).mappings()]


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
    a = t.alerts
    rows = conn.execute(select(a.c.severity, a.c.id).where(a.c.state.in_(ACTIVE))).all()
    counts = {"info": 0, "warning": 0, "critical": 0}
    for severity, _id in rows:
        counts[severity] = counts.get(severity, 0) + 1
    return counts
