"""Retention: raw runs older than RETENTION_DAYS go; daily rollups stay for two years.

A run goes when it started before the cutoff *and* was last written before it, so that
importing old history (seed 001's sample line, a year of JSONL) keeps it for a full
retention period instead of deleting it on the spot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, delete, select

from backwatch.services.unit import DAY, WriteUnit
from backwatch.store import tables as t
from backwatch.store.writer import Op

ROLLUP_KEEP_DAYS = 730
#: how long a prune transaction aims to hold the one writer: a report waits at most about
#: this long behind one (1,000 runs took 0.2–0.3 s on SQLite and stalled ingest, issue 18)
CHUNK_TARGET_S = 0.02
#: runs per transaction, sized by how long the last one took within these bounds
MIN_CHUNK, MAX_CHUNK = 50, 1000


def prune(
    write: Callable[[Op[int]], int],
    now: float,
    retention_days: int,
    *,
    actor: str = "retention",
    chunk: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Delete runs (with phases, files, logs, run events) started before the cutoff, and
    rollups older than two years; returns the number of runs removed.

    Each chunk of runs is its own transaction through ``write`` (``hub.write``), sized to
    take about ``CHUNK_TARGET_S`` (or ``chunk`` runs, fixed), and after each one the prune
    waits as long as the chunk took: it holds the one writer at most about half the time,
    so reports keep being stored at their usual pace while a backlog of millions goes.
    ``stop`` (set by a server that is stopping) ends it after the current chunk or pause."""
    stop = stop or threading.Event()
    size = chunk or MIN_CHUNK
    removed = 0
    while not stop.is_set():
        started = clock()
        n = write(_prune_chunk(now, retention_days, size))
        removed += n
        if n < size:  # the last old runs are gone
            break
        took = max(clock() - started, 1e-3)
        if chunk is None:  # grows by a quarter at most: one quick chunk (timing is noisy)
            size = max(MIN_CHUNK, min(MAX_CHUNK, int(size * min(1.25, CHUNK_TARGET_S / took))))
        if stop.wait(took):  # the writer free for at least as long as the chunk held it
            break
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
        for table in (t.daily_rollups, t.daily_totals):
            conn.execute(delete(table).where(table.c.day < rollup_cutoff))
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
