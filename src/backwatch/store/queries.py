"""Read queries. Each takes a Connection and returns plain dicts; no writes here."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from backwatch.errors import InvalidInput, NotFound
from backwatch.store import tables as t
from backwatch.store.redact import redact_events, redact_messages, redact_texts
from backwatch.timeutil import iso

DAY = 86400
MAX_PAGE = 500
ROLLUP_FIELDS = (
    "runs", "success", "warning", "failed", "other",
    "duration_sum", "duration_count", "size_sum", "size_count",
)  # fmt: skip


def encode_cursor(started_at: float, run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{started_at!r}|{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, run_id = raw.split("|", 1)
        return float(started), run_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput.field("cursor", "is not a cursor returned by this API") from None


def list_runs(
    conn: Connection,
    *,
    job: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; ``next_cursor`` continues after the last item, None at the end."""
    r = t.runs
    query = select(r)
    if job is not None:
        query = query.where(r.c.job == job)
    if status is not None:
        query = query.where(r.c.status == status)
    if since is not None:
        query = query.where(r.c.started_at >= since)
    if until is not None:
        query = query.where(r.c.started_at < until)
    if cursor:
        c_started, c_id = decode_cursor(cursor)
        query = query.where(
            or_(r.c.started_at < c_started, and_(r.c.started_at == c_started, r.c.id < c_id))
        )
    limit = max(1, min(limit, MAX_PAGE))
    rows = [
        dict(row)
        for row in conn.execute(
            query.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit + 1)
        ).mappings()
    ]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["started_at"], rows[-1]["id"])
    return redact_messages(conn, rows), next_cursor


def get_run(conn: Connection, run_id: str) -> dict[str, Any]:
    row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    run = dict(row)
    run["phases"] = [
        dict(p)
        for p in conn.execute(
            select(
                t.phases.c.name,
                t.phases.c.status,
                t.phases.c.started_at,
                t.phases.c.finished_at,
                t.phases.c.duration_s,
            )
            .where(t.phases.c.run_id == run_id)
            .order_by(t.phases.c.seq)
        ).mappings()
    ]
    run["events"] = [
        dict(e)
        for e in conn.execute(
            select(
                t.events.c.at,
                t.events.c.kind,
                t.events.c.from_state,
                t.events.c.to_state,
                t.events.c.trigger,
                t.events.c.actor,
            )
            .where(t.events.c.entity_id == run_id, t.events.c.entity == "run")
            .order_by(t.events.c.id)
        ).mappings()
    ]
    run["file_records"] = [
        dict(f)
        for f in conn.execute(
            select(t.run_files.c.path, t.run_files.c.size_bytes, t.run_files.c.status)
            .where(t.run_files.c.run_id == run_id)
            .order_by(t.run_files.c.id)
            .limit(1000)
        ).mappings()
    ]
    log = conn.execute(select(t.run_logs.c.log).where(t.run_logs.c.run_id == run_id)).scalar()
    # masked again when shown: runs stored before a key existed, or by older versions
    run["message"], run["log"] = redact_texts(conn, [run.get("message"), log])
    return run


def phases_for(conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in run_ids}
    if not run_ids:
        return out
    rows = conn.execute(
        select(t.phases.c.run_id, t.phases.c.name, t.phases.c.duration_s)
        .where(t.phases.c.run_id.in_(run_ids))
        .order_by(t.phases.c.run_id, t.phases.c.seq)
    ).mappings()
    for row in rows:
        out[row["run_id"]].append(dict(row))
    return out


def list_jobs(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(t.jobs).order_by(t.jobs.c.id)).mappings()]


def get_job(conn: Connection, job_id: str) -> dict[str, Any]:
    row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFound(f"job {job_id!r} not found")
    return dict(row)


def summary(
    conn: Connection,
    *,
    days: int,
    now: float,
    job: str | None = None,
    jobs_limit: int | None = None,
    jobs_after: str | None = None,
) -> dict[str, Any]:
    """Totals over the last ``days`` days (today included) from the daily rollups, and the
    figures per job: of every job, or of ``jobs_limit`` jobs by id after ``jobs_after``
    (then ``jobs_next`` names the last one when more follow; 0: the totals alone)."""
    first_day = int(now // DAY) - days + 1
    d = t.daily_rollups
    sums = _sums(d)
    query = select(d.c.job, *sums).where(d.c.day >= first_day).group_by(d.c.job)
    if job is None:  # the fleet's: a row a day
        whole = select(*_sums(t.daily_totals)).where(t.daily_totals.c.day >= first_day)
    else:
        query = query.where(d.c.job == job)
        whole = select(*sums).where(d.c.day >= first_day, d.c.job == job)
    if jobs_after is not None:
        query = query.where(d.c.job > jobs_after)
    if jobs_limit is not None:
        query = query.order_by(d.c.job).limit(jobs_limit + 1)
    per_job = (
        {row["job"]: _figures(row) for row in conn.execute(query).mappings()}
        if jobs_limit != 0
        else {}
    )
    jobs_next = None
    if jobs_limit is not None and len(per_job) > jobs_limit:
        per_job = dict(list(per_job.items())[:jobs_limit])
        jobs_next = list(per_job)[-1]
    totals = _figures(conn.execute(whole).mappings().one())
    for figures in [totals, *per_job.values()]:
        figures.pop("_raw")
    out = {
        "days": days,
        "since": iso(first_day * DAY),  # 00:00 UTC of the first day counted
        **totals,
        "jobs": per_job,
    }
    if jobs_limit is not None:
        out["jobs_next"] = jobs_next
    return out


_SUMMED = ("runs", "success", "warning", "failed", "other", "duration_sum", "duration_count",
           "size_sum", "size_count")  # fmt: skip


def _sums(table: Any) -> list[Any]:
    """The sums of a rollup table's figures (``daily_rollups`` or ``daily_totals``)."""
    return [func.sum(table.c[name]).label(name) for name in _SUMMED]


def _figures(row: Any) -> dict[str, Any]:
    raw = {k: (row[k] or 0) for k in row.keys() if k != "job"}  # noqa: SIM118
    total = int(raw["runs"])
    good = int(raw["success"]) + int(raw["warning"])
    return {
        "total": total,
        "success": int(raw["success"]),
        "warning": int(raw["warning"]),
        "failed": int(raw["failed"]),
        "success_rate": round(good / total, 4) if total else None,
        "avg_duration_s": (
            round(raw["duration_sum"] / raw["duration_count"], 3) if raw["duration_count"] else None
        ),
        "avg_size_bytes": (
            round(raw["size_sum"] / raw["size_count"]) if raw["size_count"] else None
        ),
        "_raw": raw,
    }


def list_events(
    conn: Connection,
    *,
    since: float | None = None,
    kind: str | None = None,
    job: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    e = t.events
    query = select(e)
    if since is not None:
        query = query.where(e.c.at >= since)
    if kind is not None:
        query = query.where(e.c.kind == kind)
    if job is not None:
        query = query.where(e.c.job == job)
    query = query.order_by(e.c.id.desc()).limit(max(1, min(limit, 5000)))
    return redact_events(conn, [dict(r) for r in conn.execute(query).mappings()])


def newest_runs(conn: Connection, limit: int = 30) -> list[dict[str, Any]]:
    r = t.runs
    return [
        dict(row)
        for row in conn.execute(
            select(r).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
        ).mappings()
    ]


def totals(conn: Connection) -> tuple[int, int]:
    """(jobs, runs ever recorded) from the jobs table, without counting the runs table."""
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(t.jobs.c.runs_total), 0)).select_from(t.jobs)
    ).one()
    return int(row[0]), int(row[1])


def count_runs(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.runs)).scalar_one())
