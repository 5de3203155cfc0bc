"""Deleting a run by hand: ``DELETE /api/v1/runs/{id}`` and ``backwatch runs delete ID``.

The tool for a run that should never have been stored (a report from a clock set to the
year 9999, a test run sent to the production hub). Retention is left as it is: it removes
runs by age, this removes the one run named.

The run goes with its phases, file records and log; its own transitions stay in the audit
trail, followed by a ``delete`` event naming the actor. What the run had added to its job is
taken back: the job's latest-run columns and last success are recomputed from the runs
that remain (so the job's health follows them), its run count and the day's rollup drop it.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, case, delete, func, select, update

from backwatch.domain.lifecycle import GOOD, TERMINAL, RunStatus
from backwatch.errors import NotFound
from backwatch.services.unit import DAY, WriteUnit, add_to_totals
from backwatch.store import tables as t
from backwatch.store.writer import Op
from backwatch.timeutil import iso

#: the rollup columns a run counts in (see ``WriteUnit.run_written``)
_SUMS = ("duration_sum", "size_sum")
_COUNTS = ("runs", "success", "warning", "failed", "other", "duration_count", "size_count")


def delete_run(run_id: str, now: float, *, actor: str) -> Op[dict[str, Any]]:
    """Op: delete run ``run_id`` (NotFound if there is none); answers ``{"id", "job",
    "deleted": True}``."""

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        found = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if found is None:
            raise NotFound(f"run {run_id!r} not found")
        run = dict(found)
        job = run["job"]
        for table, column in (
            (t.phases, t.phases.c.run_id),
            (t.run_files, t.run_files.c.run_id),
            (t.run_logs, t.run_logs.c.run_id),
        ):
            conn.execute(delete(table).where(column == run_id))
        conn.execute(delete(t.runs).where(t.runs.c.id == run_id))
        _take_out_of_rollup(conn, run)
        _refresh_job(conn, job)
        unit.event(
            at=now,
            kind="delete",
            entity="run",
            entity_id=run_id,
            job=job,
            from_state=run["status"],
            to_state=None,
            trigger="manual",
            actor=actor,
            detail={"started_at": iso(run["started_at"]), "source": run["source"]},
        )
        unit.changes.append({"type": "run", "id": run_id, "job": job, "status": "deleted"})
        unit.changes.append({"type": "job", "id": job})
        return {"id": run_id, "job": job, "deleted": True}

    return op


def _refresh_job(conn: Connection, job: str) -> None:
    """The job's latest-run columns and last success, from the runs that remain."""
    runs = t.runs
    latest = (
        conn.execute(
            select(runs)
            .where(runs.c.job == job)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    last_success = conn.execute(
        select(func.max(runs.c.finished_at)).where(
            runs.c.job == job, runs.c.status.in_([s.value for s in GOOD])
        )
    ).scalar_one_or_none()
    values: dict[str, Any] = {
        "last_run_id": None,
        "last_started_at": None,
        "last_finished_at": None,
        "last_status": None,
        "last_duration_s": None,
        "last_size_bytes": None,
    }
    if latest is not None:
        values.update(
            last_run_id=latest["id"],
            last_started_at=latest["started_at"],
            last_finished_at=latest["finished_at"],
            last_status=latest["status"],
            last_duration_s=latest["duration_s"],
            last_size_bytes=latest["size_bytes"],
        )
    conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == job)
        .values(
            last_success_at=last_success,
            runs_total=case((t.jobs.c.runs_total > 0, t.jobs.c.runs_total - 1), else_=0),
            **values,
        )
    )


def _take_out_of_rollup(conn: Connection, run: dict[str, Any]) -> None:
    """The day's rollup without this run: what ``WriteUnit.run_written`` added, taken away
    (recounted from the day's remaining runs if a sum is no longer a number)."""
    try:
        status = RunStatus(run["status"])
    except ValueError:
        return
    started = run["started_at"]
    if status not in TERMINAL or not math.isfinite(started):
        return
    day = int(started // DAY)
    if not -(2**31) < day < 2**31:
        return
    r = t.daily_rollups
    where = (r.c.job == run["job"], r.c.day == day)
    row = conn.execute(select(r).where(*where)).mappings().first()
    if row is None:
        return
    scratch = WriteUnit()
    scratch.run_written({**run, "status": status.value}, new=False, became_terminal=True)
    minus = scratch.rollups[(run["job"], day)].__dict__
    values = {name: row[name] - minus[name] for name in (*_COUNTS, *_SUMS)}
    if values["runs"] <= 0:
        conn.execute(delete(r).where(*where))
        add_to_totals(conn, [dict(row)], sign=-1)
        return
    if not all(math.isfinite(values[name]) for name in _SUMS):
        values = _recount(conn, run["job"], day)
    for name in _COUNTS:
        values[name] = max(0, int(values[name]))
    for name in _SUMS:
        values[name] = max(0.0, float(values[name]))
    conn.execute(update(r).where(*where).values(**values))
    taken = {name: row[name] - values[name] for name in (*_COUNTS, *_SUMS)}
    add_to_totals(conn, [{"day": day, **taken}], sign=-1)


def _recount(conn: Connection, job: str, day: int) -> dict[str, Any]:
    """The rollup of ``job`` on ``day`` counted again from its stored runs."""
    runs = t.runs
    scratch = WriteUnit()
    rows = conn.execute(
        select(runs).where(
            runs.c.job == job,
            runs.c.started_at >= day * DAY,
            runs.c.started_at < (day + 1) * DAY,
            runs.c.status.in_([s.value for s in TERMINAL]),
        )
    ).mappings()
    for row in rows:
        scratch.run_written(dict(row), new=False, became_terminal=True)
    found = scratch.rollups.get((job, day))
    values: dict[str, Any] = (
        dict(found.__dict__) if found is not None else dict.fromkeys(_COUNTS + _SUMS, 0)
    )
    for name in _SUMS:
        if not math.isfinite(values[name]):
            values[name] = 0.0
    return values
