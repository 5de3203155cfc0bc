"""What the alert rules read: a job's facts (``domain.rules.JobFacts``) from its row, its
run history, its disks' samples and its configuration, with its thresholds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from backwatch.domain.lifecycle import BAD
from backwatch.domain.rules import DiskFacts, JobFacts, RunFacts, typical_duration
from backwatch.domain.thresholds import SETTINGS as THRESHOLD_SETTINGS
from backwatch.domain.thresholds import Thresholds
from backwatch.job_settings import drill_max_age
from backwatch.services.views import _schedule
from backwatch.settings import JobSettings, Settings
from backwatch.store import tables as t

RUN_HISTORY = 50
DISK_HISTORY_S = 14 * 86400


def thresholds_for(settings: Settings, job: JobSettings | None) -> Thresholds:
    """The thresholds of ``job``: ``[alerts]``, with its ``[jobs.alerts]`` overrides."""
    values = {name: getattr(settings.alerts, name) for name in THRESHOLD_SETTINGS}
    if job is not None:
        values.update(job.alerts.overrides())
    return Thresholds(**values)


def configured_jobs(settings: Settings) -> dict[str, JobSettings]:
    return {job.id: job for job in settings.jobs}


def _run_facts(row: Any) -> RunFacts:
    stats = row.stats if isinstance(row.stats, dict) else {}
    kind = row.kind or "backup"
    # a failed check or drill is a failed verification (never a failed backup)
    verify_failed = stats.get("verify") == "failed" or (
        (row.trigger == "verify" or kind != "backup") and row.status in BAD
    )
    return RunFacts(
        id=row.id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        size_bytes=row.size_bytes,
        files=row.files,
        message=row.message,
        verify_failed=verify_failed,
        kind=kind,
    )


def disk_facts(conn: Connection, paths: list[str], now: float) -> tuple[DiskFacts, ...]:
    out = []
    for path in paths:
        rows = conn.execute(
            select(t.disk_samples.c.at, t.disk_samples.c.used_bytes, t.disk_samples.c.total_bytes)
            .where(t.disk_samples.c.path == path, t.disk_samples.c.at >= now - DISK_HISTORY_S)
            .order_by(t.disk_samples.c.at)
        ).all()
        if rows:
            out.append(DiskFacts(path, tuple((r[0], float(r[1]), float(r[2])) for r in rows)))
    return tuple(out)


_r = t.runs
_HISTORY_COLUMNS = (
    _r.c.id,
    _r.c.status,
    _r.c.started_at,
    _r.c.finished_at,
    _r.c.duration_s,
    _r.c.size_bytes,
    _r.c.files,
    _r.c.message,
    _r.c.stats,
    _r.c.trigger,
    _r.c.kind,
)
#: one job's latest runs (its analysis: services/analysis.py), built once: building the
#: statement each time cost as much as running it; rounds of the rules read a page of
#: jobs' runs at once instead (``run_histories``)
_HISTORY = (
    select(*_HISTORY_COLUMNS)
    .where(_r.c.job == bindparam("job_id"))
    .order_by(_r.c.started_at.desc())
    .limit(RUN_HISTORY)
)


def job_facts(
    conn: Connection,
    job: dict[str, Any],
    settings: Settings,
    now: float,
    runs: tuple[RunFacts, ...] | None = None,
) -> JobFacts:
    """A job's facts with its latest ``RUN_HISTORY`` runs (read here unless ``runs`` are
    given: ``run_histories`` reads those of a page of jobs at once)."""
    if runs is None:
        rows = conn.execute(_HISTORY, {"job_id": job["id"]}).all()
        runs = tuple(_run_facts(row) for row in rows)
    return _facts(conn, job, settings, now, runs)


def run_histories(conn: Connection, job_ids: list[str]) -> dict[str, tuple[RunFacts, ...]]:
    """The latest ``RUN_HISTORY`` runs of each of these jobs, newest first, with one query
    (a round over every job: one statement per page, not one per job)."""
    rank = (
        func.row_number().over(partition_by=_r.c.job, order_by=_r.c.started_at.desc()).label("rank")
    )
    ranked = select(_r.c.job, *_HISTORY_COLUMNS, rank).where(_r.c.job.in_(job_ids)).subquery()
    query = select(ranked).where(ranked.c.rank <= RUN_HISTORY).order_by(ranked.c.job, ranked.c.rank)
    found: dict[str, list[RunFacts]] = {}
    for row in conn.execute(query):
        found.setdefault(row.job, []).append(_run_facts(row))
    return {job: tuple(runs) for job, runs in found.items()}


def snapshot_facts(
    conn: Connection, job: dict[str, Any], settings: Settings, now: float
) -> JobFacts:
    """Facts for the time-based rules from the job row alone: its latest run, learned
    interval and median duration are kept there, so the periodic check of every job
    reads no run history (and does not hold up the requests served meanwhile)."""
    latest: tuple[RunFacts, ...] = ()
    if job.get("last_run_id"):
        latest = (
            RunFacts(
                id=job["last_run_id"],
                status=job["last_status"],
                started_at=job["last_started_at"],
                finished_at=job.get("last_finished_at"),
                duration_s=job.get("last_duration_s"),
                size_bytes=job.get("last_size_bytes"),
            ),
        )
    return _facts(
        conn,
        job,
        settings,
        now,
        latest,
        learned_interval_s=job.get("learned_interval_s"),
        median_duration_s=job.get("median_duration_s"),
    )


def _facts(
    conn: Connection,
    job: dict[str, Any],
    settings: Settings,
    now: float,
    runs: tuple[RunFacts, ...],
    *,
    learned_interval_s: float | None = None,
    median_duration_s: float | None = None,
) -> JobFacts:
    """A job's facts from its row and configuration, with ``runs`` (and what was learned)."""
    configured = configured_jobs(settings).get(job["id"])
    destinations = list(configured.destinations) if configured else []
    return JobFacts(
        id=job["id"],
        paused=bool(job["paused"]),
        schedule=_schedule(job),
        grace_s=job.get("grace_s") or 0.0,
        timeout_s=job.get("timeout_s"),
        thresholds=thresholds_for(settings, configured),
        runs=runs,
        disks=disk_facts(conn, destinations, now) if destinations else (),
        learned_interval_s=learned_interval_s,
        median_duration_s=median_duration_s,
        created_at=job.get("created_at"),
        drill_max_age_s=drill_max_age(configured) if configured else None,
        last_verified_at=job.get("last_verified_at"),
        last_success_at=job.get("last_success_at"),
    )


def snapshot_median(facts: JobFacts) -> float | None:
    """The job row's median duration (domain/rules.py ``typical_duration`` of its backups)."""
    return typical_duration(facts.runs, "backup")
