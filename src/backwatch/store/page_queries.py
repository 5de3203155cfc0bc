"""Read queries the dashboard pages need beyond ``queries``. Plain dicts, no writes."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, literal_column, select, text

from backwatch.store import tables as t

SPARK_POINTS = 20

# SQLite has no LATERAL; a correlated rowid IN (… LIMIT n) does the same seek per job.
_SQLITE_RECENT = (
    "SELECT r.job, r.started_at, r.duration_s FROM jobs j "
    "JOIN runs r ON r.rowid IN ("
    " SELECT r2.rowid FROM runs r2"
    " WHERE r2.job = j.id AND r2.duration_s IS NOT NULL"
    " ORDER BY r2.started_at DESC LIMIT :n)"
)


def recent_durations(
    conn: Connection, per_job: int = SPARK_POINTS, jobs: Collection[str] | None = None
) -> dict[str, list[float]]:
    """The last ``per_job`` durations of every job (or of ``jobs`` only), oldest first, for
    the overview sparklines. A job without any duration is absent from the answer.

    Bounded: per job, at most ``per_job`` entries of the (job, started_at) index are read,
    so the cost grows with the number of jobs, never with the number of runs.
    """
    if conn.dialect.name == "sqlite":
        rows = _sqlite_recent(conn, per_job, jobs)
    else:
        rows = _lateral_recent(conn, per_job, jobs)
    series: dict[str, list[tuple[float, float]]] = {}
    for job, started_at, duration_s in rows:
        series.setdefault(job, []).append((started_at, duration_s))
    return {job: [d for _, d in sorted(points)] for job, points in series.items()}


def _sqlite_recent(conn: Connection, per_job: int, jobs: Collection[str] | None) -> Iterable[Any]:
    if jobs is None:
        return conn.execute(text(_SQLITE_RECENT), {"n": per_job})
    subset = text(_SQLITE_RECENT + " WHERE j.id IN :jobs").bindparams(
        bindparam("jobs", expanding=True)
    )
    return conn.execute(subset, {"n": per_job, "jobs": list(jobs)})


def _lateral_recent(conn: Connection, per_job: int, jobs: Collection[str] | None) -> Iterable[Any]:
    r = t.runs
    latest = (
        select(r.c.started_at, r.c.duration_s)
        .where(r.c.job == t.jobs.c.id, r.c.duration_s.isnot(None))
        .order_by(r.c.started_at.desc())
        .limit(per_job)
        .lateral("latest")
    )
    query = (
        select(t.jobs.c.id.label("job"), latest.c.started_at, latest.c.duration_s)
        .select_from(t.jobs)
        .join(latest, literal_column("true"))
    )
    if jobs is not None:
        query = query.where(t.jobs.c.id.in_(list(jobs)))
    return conn.execute(query)
