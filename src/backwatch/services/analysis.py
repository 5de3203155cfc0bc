"""Reading what ``domain.analysis`` needs: a job's runs and phases of a period, its recent
history (the alert rules' facts) and its disks' usage samples."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from backwatch.domain.analysis import analyze, parse_period
from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.rules import RunFacts
from backwatch.errors import InvalidInput
from backwatch.services.alerts import job_facts
from backwatch.settings import Settings
from backwatch.store import queries
from backwatch.store import tables as t

#: the newest runs of a period that a trend looks at (an hourly job has 720 in 30 days)
PERIOD_RUNS = 5000


def period_seconds(text: str) -> float:
    """The ``period`` parameter in seconds, or InvalidInput naming it."""
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InvalidInput.field("period", str(exc)) from None


def _period_runs(conn: Connection, job_id: str, since: float) -> list[RunFacts]:
    r = t.runs
    rows = conn.execute(
        select(r.c.id, r.c.status, r.c.started_at, r.c.duration_s, r.c.size_bytes)
        # a job's backups: its checks and drills are not what its trends are about
        .where(r.c.job == job_id, r.c.started_at >= since, r.c.kind == "backup")
        .order_by(r.c.started_at.desc())
        .limit(PERIOD_RUNS)
    ).all()
    return [
        RunFacts(id=row.id, status=row.status, started_at=row.started_at,
                 duration_s=row.duration_s, size_bytes=row.size_bytes)
        for row in rows
    ]  # fmt: skip


def _phase_totals(conn: Connection, job_id: str, since: float) -> dict[str, tuple[float, int]]:
    """Phase name → (seconds, runs) over the period's successful backups."""
    r, p = t.runs, t.phases
    good = select(r.c.id).where(
        r.c.job == job_id,
        r.c.started_at >= since,
        r.c.status == RunStatus.SUCCESS.value,
        r.c.kind == "backup",
    )
    rows = conn.execute(
        select(p.c.name, func.sum(p.c.duration_s), func.count(func.distinct(p.c.run_id)))
        .where(p.c.run_id.in_(good), p.c.duration_s.is_not(None))
        .group_by(p.c.name)
    ).all()
    return {name: (float(total or 0.0), int(runs)) for name, total, runs in rows}


def job_analysis(
    conn: Connection, settings: Settings, job_id: str, period: str, now: float
) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}/analysis``: NotFound for an unknown job, InvalidInput for a
    bad period."""
    period_s = period_seconds(period)
    job = queries.get_job(conn, job_id)
    since = now - period_s
    facts = job_facts(conn, job, settings, now)
    result = analyze(
        facts, _period_runs(conn, job_id, since), _phase_totals(conn, job_id, since), now, period_s
    ).to_dict()
    result["period"] = period
    return result
