"""Retention: raw runs older than RETENTION_DAYS go; daily rollups stay for two years.

A run goes when it started before the cutoff *and* was last written before it, so that
importing old history (seed 001's sample line, a year of JSONL) keeps it for a full
retention period instead of deleting it on the spot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection, delete, select

from backwatch.services.unit import DAY, WriteUnit
from backwatch.store import tables as t
from backwatch.store.writer import Op

ROLLUP_KEEP_DAYS = 730
#: runs deleted per transaction: small enough that ingest waits at most a few ms for one
CHUNK = 1000


def prune(
    write: Callable[[Op[int]], int],
    now: float,
    retention_days: int,
    *,
    actor: str = "retention",
    chunk: int = CHUNK,
    stop: threading.Event | None = None,
) -> int:
    """Delete runs (with phases, files, logs, run events) started before the cutoff, and
    rollups older than two years; returns the number of runs removed.

    Each chunk of runs is its own transaction through ``write`` (``hub.write``), so a
    backlog of millions never holds the one writer: reports are stored between chunks.
    ``stop`` (set by a server that is stopping) ends it after the current chunk."""
    removed = 0
    while not (stop is not None and stop.is_set()):
        n = write(_prune_chunk(now, retention_days, chunk))
        if not n:
            break
        removed += n
    write(_finish(now, retention_days, removed, actor))
    return removed


def _prune_chunk(now: float, retention_days: int, chunk: int) -> Op[int]:
    cutoff = now - retention_days * DAY

    def op(conn: Connection, unit: WriteUnit) -> int:
        ids = list(
            conn.execute(
                select(t.runs.c.id)
                .where(t.runs.c.started_at < cutoff, t.runs.c.updated_at < cutoff)
                .limit(chunk)
            ).scalars()
        )
        if not ids:
            return 0
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
        return len(ids)

    return op


def _finish(now: float, retention_days: int, removed: int, actor: str) -> Op[int]:
    rollup_cutoff = int(now // DAY) - ROLLUP_KEEP_DAYS

    def op(conn: Connection, unit: WriteUnit) -> int:
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
