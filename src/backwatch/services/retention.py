"""Retention: raw runs older than RETENTION_DAYS go; daily rollups stay for two years.

A run goes when it started before the cutoff *and* was last written before it, so that
importing old history (seed 001's sample line, a year of JSONL) keeps it for a full
retention period instead of deleting it on the spot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from backwatch.services.unit import DAY, WriteUnit
from backwatch.store import tables as t

ROLLUP_KEEP_DAYS = 730
CHUNK = 5000


def prune(now: float, retention_days: int, *, actor: str = "retention") -> Any:
    """Op: delete runs (with phases, files, logs, run events) started before the cutoff.

    Returns the number of runs removed. Work is chunked so a huge backlog does not hold
    one giant statement; the whole prune is still one transaction.
    """
    cutoff = now - retention_days * DAY
    rollup_cutoff = int(now // DAY) - ROLLUP_KEEP_DAYS

    def op(conn: Connection, unit: WriteUnit) -> int:
        removed = 0
        while True:
            ids = list(
                conn.execute(
                    select(t.runs.c.id)
                    .where(t.runs.c.started_at < cutoff, t.runs.c.updated_at < cutoff)
                    .limit(CHUNK)
                ).scalars()
            )
            if not ids:
                break
            for table, column in (
                (t.phases, t.phases.c.run_id),
                (t.run_files, t.run_files.c.run_id),
                (t.run_logs, t.run_logs.c.run_id),
            ):
                conn.execute(delete(table).where(column.in_(ids)))
            # only the runs' own events: a job (or token) may share a run's id
            conn.execute(
                delete(t.events).where(t.events.c.entity == "run", t.events.c.entity_id.in_(ids))
            )
            conn.execute(delete(t.runs).where(t.runs.c.id.in_(ids)))
            removed += len(ids)
        conn.execute(delete(t.daily_rollups).where(t.daily_rollups.c.day < rollup_cutoff))
        if removed:
            unit.event(
                at=now,
                kind="config",
                entity="system",
                entity_id="retention",
                actor=actor,
                detail={"runs_removed": removed, "retention_days": retention_days},
            )
        return removed

    return op
