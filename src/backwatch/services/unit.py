"""What one write transaction defers to its end: batched inserts, rollups, job snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, or_, update

from backwatch.domain.lifecycle import BAD, GOOD, RunStatus
from backwatch.errors import BackwatchError
from backwatch.services import changefeed, due
from backwatch.store import tables as t
from backwatch.store.dialect import execute_many, insert_for, insert_rows

DAY = 86400

#: listeners called after a commit with the list of changes (run and job ids), e.g. the
#: live stream and the alert evaluator.
Listener = Callable[[list[dict[str, Any]]], None]


@dataclass
class _Rollup:
    runs: int = 0
    success: int = 0
    warning: int = 0
    failed: int = 0
    other: int = 0
    duration_sum: float = 0.0
    duration_count: int = 0
    size_sum: float = 0.0
    size_count: int = 0


@dataclass
class WriteUnit:
    listeners: list[Listener] = field(default_factory=list)
    #: this instance's name in the changes it announces to others (PostgreSQL: changefeed)
    origin: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    rollups: dict[tuple[str, int], _Rollup] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: job → the latest finish of a good run in this transaction (not only the newest run's)
    last_success: dict[str, float] = field(default_factory=dict)
    #: job → the end of its latest passed drill or check in this transaction
    last_verified: dict[str, float] = field(default_factory=dict)
    new_runs: dict[str, int] = field(default_factory=dict)
    #: jobs this transaction created or found; added to ``job_cache`` once it commits
    known_jobs: set[str] = field(default_factory=set)
    #: the writer's process-wide set of jobs known to exist (see services.jobs.ensure_job)
    job_cache: set[str] | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)

    def event(self, **row: Any) -> None:
        row.setdefault("detail", None)
        for key in ("entity_id", "job", "from_state", "to_state", "trigger", "actor"):
            row.setdefault(key, None)
        self.events.append(row)

    def run_written(self, run: dict[str, Any], *, new: bool, became_terminal: bool) -> None:
        """Note a run insert/update so the job snapshot and rollups follow."""
        job = run["job"]
        if new:
            self.new_runs[job] = self.new_runs.get(job, 0) + 1
        self.changes.append({"type": "run", "id": run["id"], "job": job, "status": run["status"]})
        if became_terminal and _proves_restorable(run):
            at = run.get("finished_at") or run["started_at"]
            self.last_verified[job] = max(at, self.last_verified.get(job, at))
        if run.get("kind", "backup") != "backup":
            return  # a check or drill proves backups; it is not the job's latest backup
        seen = self.latest.get(job)
        if seen is None or run["started_at"] >= seen["started_at"]:
            self.latest[job] = run
        status = RunStatus(run["status"])
        finished = run.get("finished_at")
        if status in GOOD and finished is not None:
            self.last_success[job] = max(finished, self.last_success.get(job, finished))
        if became_terminal:
            key = (job, int(run["started_at"] // DAY))
            r = self.rollups.setdefault(key, _Rollup())
            r.runs += 1
            if status is RunStatus.SUCCESS:
                r.success += 1
            elif status is RunStatus.WARNING:
                r.warning += 1
            elif status in BAD:
                r.failed += 1
            else:
                r.other += 1
            if run.get("duration_s") is not None:
                r.duration_sum += run["duration_s"]
                r.duration_count += 1
            if run.get("size_bytes") is not None and status in GOOD:
                r.size_sum += run["size_bytes"]
                r.size_count += 1

    def flush(self, conn: Connection) -> None:
        if self.last_verified:
            execute_many(
                conn,
                _SET_LAST_VERIFIED,
                [{"b_job": job, "b_at": at} for job, at in self.last_verified.items()],
            )
        # Statements are built once with bind parameters and run with executemany: building
        # a statement with literal .values() costs SQLAlchemy work on every call.
        insert_rows(conn, t.phases, self.phases)
        insert_rows(conn, t.events, self.events)
        if self.latest:
            self._refresh_jobs(conn)
        touched = due.touched_jobs(self.changes)
        if touched:  # after the snapshot: a new start moves a scheduled job's due time
            due.refresh_due(conn, touched)
        if self.rollups:
            rows = [{"job": j, "day": d, **r.__dict__} for (j, d), r in self.rollups.items()]
            execute_many(conn, _rollup_upsert(conn, t.daily_rollups), rows)
            add_to_totals(conn, rows)
        if self.changes and self.origin and conn.dialect.name == "postgresql":
            changefeed.announce(conn, self.origin, self.changes)  # heard once committed

    def _refresh_jobs(self, conn: Connection) -> None:
        """The snapshot of every job this transaction touched, in a few executemany calls."""
        execute_many(
            conn,
            _SET_LATEST,
            [
                {
                    "b_job": job,
                    "b_run_id": run["id"],
                    "b_started": run["started_at"],
                    "b_finished": run.get("finished_at"),
                    "b_status": run["status"],
                    "b_duration": run.get("duration_s"),
                    "b_size": run.get("size_bytes"),
                }
                for job, run in self.latest.items()
            ],
        )
        if self.last_success:
            execute_many(
                conn,
                _SET_LAST_SUCCESS,
                [{"b_job": job, "b_finished": at} for job, at in self.last_success.items()],
            )
        totals = [{"b_job": job, "b_new": n} for job, n in self.new_runs.items() if n]
        execute_many(conn, _ADD_RUNS_TOTAL, totals)

    def after_commit(self) -> None:
        if self.job_cache is not None:
            self.job_cache.update(self.known_jobs)
        if not self.changes:
            return
        for listener in self.listeners:
            listener(self.changes)

    def after_rollback(self, exc: BaseException) -> bool:
        """A database error may mean that a job we believed in is gone (a foreign key
        failed): forget the known jobs, and answer True, "running it again may succeed".
        A refused request (BackwatchError) says nothing about jobs."""
        if self.job_cache and not isinstance(exc, BackwatchError):
            self.job_cache.clear()
            return True
        return False


_jobs = t.jobs
_SET_LATEST = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("b_job"),
        or_(_jobs.c.last_started_at.is_(None), _jobs.c.last_started_at <= bindparam("b_started")),
    )
    .values(
        last_run_id=bindparam("b_run_id"),
        last_started_at=bindparam("b_started"),
        last_finished_at=bindparam("b_finished"),
        last_status=bindparam("b_status"),
        last_duration_s=bindparam("b_duration"),
        last_size_bytes=bindparam("b_size"),
    )
)
_SET_LAST_SUCCESS = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("b_job"),
        or_(_jobs.c.last_success_at.is_(None), _jobs.c.last_success_at < bindparam("b_finished")),
    )
    .values(last_success_at=bindparam("b_finished"))
)
_SET_LAST_VERIFIED = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("b_job"),
        or_(_jobs.c.last_verified_at.is_(None), _jobs.c.last_verified_at < bindparam("b_at")),
    )
    .values(last_verified_at=bindparam("b_at"))
)


def _proves_restorable(run: dict[str, Any]) -> bool:
    """A passed drill or check, or a backup whose own check step passed."""
    found = run.get("stats")
    stats: dict[str, Any] = found if isinstance(found, dict) else {}
    if run.get("kind") in ("drill", "check"):
        return run["status"] == RunStatus.SUCCESS.value and stats.get("verify") != "failed"
    good = run["status"] in (RunStatus.SUCCESS.value, RunStatus.WARNING.value)
    return good and stats.get("verify") == "ok"


_ADD_RUNS_TOTAL = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("b_job"))
    .values(runs_total=_jobs.c.runs_total + bindparam("b_new"))
)
_ROLLUP_UPSERTS: dict[tuple[str, str], Any] = {}


def _rollup_upsert(conn: Connection, table: Any) -> Any:
    """INSERT … ON CONFLICT (its key) DO UPDATE SET runs = runs + excluded.runs, … into
    ``daily_rollups`` or ``daily_totals`` (cached per dialect; rows go to executemany)."""
    key = (conn.dialect.name, table.name)
    if key not in _ROLLUP_UPSERTS:
        stmt = insert_for(conn, table)
        _ROLLUP_UPSERTS[key] = stmt.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={f: table.c[f] + stmt.excluded[f] for f in _Rollup().__dict__},
        )
    return _ROLLUP_UPSERTS[key]


def add_to_totals(conn: Connection, rows: list[dict[str, Any]], sign: int = 1) -> None:
    """Add (``sign`` -1: take away) rollup figures, each a dict with its ``day``, to the
    fleet's daily totals: what went into or out of ``daily_rollups`` in this transaction."""
    per_day: dict[int, dict[str, Any]] = {}
    for row in rows:
        into = per_day.setdefault(row["day"], dict.fromkeys(_Rollup().__dict__, 0))
        for name in into:
            into[name] += sign * row[name]
    execute_many(
        conn, _rollup_upsert(conn, t.daily_totals), [{"day": d, **f} for d, f in per_day.items()]
    )
