"""Stored rows → the shapes the API, the CLI and the pages show. Health is computed here,
when read, from the job row, what ``with_health_facts`` adds to it and ``now``.

Two times of a job, one definition each (docs/api.md): ``last_run_at`` is when its latest
backup run ended (its start while it still runs); ``last_success_at`` when its latest good
backup (success, warning, skipped) ended. Both are end times, so a job that just succeeded
shows the same time for both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from backwatch.domain.health import CriticalAlert, HealthVerdict, JobState, job_health
from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.schedule import Schedule, parse_schedule
from backwatch.domain.thresholds import Thresholds
from backwatch.store import job_list, queries
from backwatch.store import tables as t
from backwatch.timeutil import iso

#: keys ``with_health_facts`` adds to a job row (never stored): what health reads beyond it
ALERTS_KEY = "_critical_alerts"
MESSAGE_KEY = "_last_message"
_ACTIVE_ALERTS = ("open", "acknowledged")
_IN_CHUNK = 500

RUN_TIME_FIELDS = ("started_at", "finished_at")


def run_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "job": row["job"],
        "host": row.get("host"),
        "status": row["status"],
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row.get("finished_at")),
        "duration_s": row.get("duration_s"),
        "exit_code": row.get("exit_code"),
        "size_bytes": row.get("size_bytes"),
        "files": row.get("files"),
        "files_new": row.get("files_new"),
        "files_changed": row.get("files_changed"),
        "bytes_added": row.get("bytes_added"),
        "message": row.get("message"),
        "tool": row.get("tool"),
        "stats": row.get("stats"),
        "source": row.get("source"),
        "trigger": row.get("trigger"),
        "backup_id": row.get("backup_id"),
        "kind": row.get("kind") or "backup",
    }
    if "phases" in row:
        out["phases"] = [
            {
                "name": p["name"],
                "status": p["status"],
                "started_at": iso(p["started_at"]),
                "finished_at": iso(p["finished_at"]),
                "duration_s": p["duration_s"],
            }
            for p in row["phases"]
        ]
    if "events" in row:
        out["events"] = [{**e, "at": iso(e["at"])} for e in row["events"]]
    if "file_records" in row:
        out["file_records"] = row["file_records"]
    if "log" in row:
        out["log"] = row["log"]
    return out


def _schedule(row: dict[str, Any]) -> Schedule | None:
    if not row.get("schedule"):
        return None
    try:
        return parse_schedule(row["schedule"], row.get("timezone") or "UTC")
    except ValueError:
        return None


def with_health_facts(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each job row what its health needs beyond the row: its open or acknowledged
    critical alerts (a job with one is never ok) and, when its latest backup ended
    ``unknown``, that run's message (the reason). Two small queries for any number of jobs:
    open critical alerts are few, and only unknown latest runs are read."""
    if not rows:
        return rows
    a = t.alerts
    state_sql: ColumnElement[str] = a.c.state
    if len(rows) <= _IN_CHUNK:
        # found by the jobs' index, not the state's: without ANALYZE statistics SQLite
        # takes the state's and reads every open alert of the fleet for a page's few (24,000
        # at 100,000 jobs: 5 ms a page); ``state || ''`` is no indexed column
        state_sql = state_sql.concat("")
    query = select(a.c.job, a.c.rule, a.c.state, a.c.message).where(
        state_sql.in_(_ACTIVE_ALERTS), a.c.severity == "critical"
    )
    if len(rows) <= _IN_CHUNK:
        query = query.where(a.c.job.in_([row["id"] for row in rows]))
    alerts: dict[str, list[CriticalAlert]] = {}
    for job, rule, state, message in conn.execute(query.order_by(a.c.id)):
        alerts.setdefault(job, []).append(CriticalAlert(rule, state, message or ""))
    unknown = [
        row["last_run_id"]
        for row in rows
        if row.get("last_status") == RunStatus.UNKNOWN and row.get("last_run_id")
    ]
    messages: dict[str, str | None] = {}
    for chunk in _chunks(unknown):
        found = conn.execute(select(t.runs.c.id, t.runs.c.message).where(t.runs.c.id.in_(chunk)))
        messages.update({run_id: message for run_id, message in found})
    for row in rows:
        row[ALERTS_KEY] = tuple(alerts.get(row["id"], ()))
        row[MESSAGE_KEY] = messages.get(row.get("last_run_id") or "")
    return rows


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def read_jobs(conn: Connection) -> list[dict[str, Any]]:
    """Every job row, ordered by id, with its health facts (``with_health_facts``)."""
    return with_health_facts(conn, queries.list_jobs(conn))


def read_job(conn: Connection, job_id: str) -> dict[str, Any]:
    """One job row with its health facts and its latest restore drill; NotFound when there
    is no such job."""
    row = with_health_facts(conn, [queries.get_job(conn, job_id)])[0]
    r = t.runs
    drill = conn.execute(
        select(r.c.id, r.c.status, r.c.finished_at, r.c.stats)
        .where(r.c.job == job_id, r.c.kind == "drill")
        .order_by(r.c.started_at.desc())
        .limit(1)
    ).first()
    row["_last_drill"] = dict(drill._mapping) if drill is not None else None
    return row


def drill_out(drill: dict[str, Any] | None) -> dict[str, Any] | None:
    """A job's latest drill as the API shows it: how it ended, and what it measured."""
    if drill is None:
        return None
    stats = drill.get("stats")
    found = stats.get("drill") if isinstance(stats, dict) else None
    figures: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "id": drill["id"],
        "status": drill["status"],
        "finished_at": iso(drill.get("finished_at")),
        "snapshot": figures.get("snapshot"),
        "files_checked": figures.get("files_checked"),
        "rate_bytes_per_s": figures.get("rate_bytes_per_s"),
        "estimate_full_restore_s": figures.get("estimate_full_restore_s"),
    }


#: the summary's per-job figures come a page of this many jobs at a time (by id)
SUMMARY_JOBS_MAX = 1000


def summary_out(
    conn: Connection,
    *,
    days: int,
    now: float,
    job: str | None = None,
    stuck_minutes: float = Thresholds.stuck_minutes,
    jobs_limit: int | None = None,
    jobs_after: str | None = None,
) -> dict[str, Any]:
    """``GET /api/v1/summary``: the period's figures (``queries.summary``; per job, a page
    of them with ``jobs_limit``) and ``health``, how many jobs (or whether the one ``job``)
    are in each health now — counted as the overview counts them, open critical alerts
    included (in the database for all jobs: store/job_list.py)."""
    out = queries.summary(
        conn, days=days, now=now, job=job, jobs_limit=jobs_limit, jobs_after=jobs_after
    )
    health: dict[str, int] = {}
    if job is None:
        counted = job_list.counts(conn, job_list.JobFilter(), now=now, stuck_minutes=stuck_minutes)
        health = {name: n for name, n in counted.items() if n}
    else:  # an unknown job has an empty summary, as before, not a 404
        found = conn.execute(select(t.jobs).where(t.jobs.c.id == job)).mappings().first()
        for row in with_health_facts(conn, [dict(found)]) if found else []:
            health[job_verdict(row, now, stuck_minutes=stuck_minutes).health.value] = 1
    out["health"] = dict(sorted(health.items()))
    last = out.pop("jobs_next", None)  # where the next page of per-job figures starts
    out["jobs_next_cursor"] = job_list.encode_cursor("summary", None, last) if last else None
    return out


def last_run_at(row: dict[str, Any]) -> float | None:
    """When the latest backup run ended; its start while it has not ended."""
    finished = row.get("last_finished_at")
    return finished if finished is not None else row.get("last_started_at")


def job_verdict(
    row: dict[str, Any], now: float, *, stuck_minutes: float = Thresholds.stuck_minutes
) -> HealthVerdict:
    """The job's health from its row (with ``with_health_facts`` for alerts and the reason
    of an unknown outcome: without them, health sees the latest run and schedule only)."""
    state = JobState(
        paused=bool(row["paused"]),
        schedule=_schedule(row),
        grace_s=row.get("grace_s") or 0.0,
        timeout_s=row.get("timeout_s"),
        last_started_at=row.get("last_started_at"),
        last_status=row.get("last_status"),
        median_duration_s=row.get("median_duration_s"),
        learned_interval_s=None if row.get("schedule") else row.get("learned_interval_s"),
        created_at=row.get("created_at"),
        last_message=row.get(MESSAGE_KEY),
        critical_alerts=row.get(ALERTS_KEY, ()),
    )
    return job_health(state, now, stuck_minutes=stuck_minutes)


def job_out(
    row: dict[str, Any],
    now: float,
    *,
    stuck_minutes: float = Thresholds.stuck_minutes,
    base_url: str | None = None,
) -> dict[str, Any]:
    verdict = job_verdict(row, now, stuck_minutes=stuck_minutes)
    ping_base = (base_url or "").rstrip("/")
    last_run = None
    if row.get("last_run_id"):
        last_run = {
            "id": row["last_run_id"],
            "status": row["last_status"],
            "started_at": iso(row["last_started_at"]),
            "finished_at": iso(row.get("last_finished_at")),
            "duration_s": row.get("last_duration_s"),
            "size_bytes": row.get("last_size_bytes"),
        }
    return {
        "id": row["id"],
        "name": row.get("name") or "",
        "description": row.get("description") or "",
        "host": row.get("host"),
        "backup_path": row.get("backup_path"),
        "tool": row.get("tool"),
        "schedule": row.get("schedule"),
        # an unscheduled job with ≥ 5 runs is expected at its median interval ("learned")
        "learned_interval_s": None if row.get("schedule") else row.get("learned_interval_s"),
        "timezone": row.get("timezone") or "UTC",
        "grace_s": row.get("grace_s"),
        "timeout_s": row.get("timeout_s"),
        "tags": row.get("tags") or [],
        "paused": bool(row["paused"]),
        "origin": row.get("origin"),
        "health": verdict.health.value,
        "health_reason": verdict.reason,
        "next_due": iso(verdict.next_due),
        "last_run": last_run,
        "last_run_at": iso(last_run_at(row)),
        "last_success_at": iso(row.get("last_success_at")),
        "last_verified_at": iso(row.get("last_verified_at")),
        **({"last_drill": drill_out(row["_last_drill"])} if "_last_drill" in row else {}),
        "runs_total": row.get("runs_total") or 0,
        "ping_url": f"{ping_base}/ping/{row['ping_key']}",
        "created_at": iso(row["created_at"]),
    }


def seed001_out(run: dict[str, Any], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """A run in seed 001's JSONL shape (for ``GET /api/metrics``)."""
    out: dict[str, Any] = {
        "timestamp": iso(run["started_at"]),
        "backup_id": run.get("backup_id") or run["id"],
        "success": run["status"] in ("success", "warning", "skipped"),
        "duration_total": run.get("duration_s"),
    }
    for phase in phases:
        out[f"duration_{phase['name']}"] = phase["duration_s"]
    out["size_bytes"] = run.get("size_bytes")
    out["job"] = run["job"]
    out["status"] = run["status"]
    out["id"] = run["id"]
    return out
