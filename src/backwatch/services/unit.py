"""What one write transaction defers to its end: batched inserts, rollups, job snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from backwatch.domain.lifecycle import BAD, GOOD, RunStatus
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for

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
    events: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    rollups: dict[tuple[str, int], _Rollup] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: job → the latest finish of a good run in this transaction (not only the newest run's)
    last_success: dict[str, float] = field(default_factory=dict)
    new_runs: dict[str, int] = field(default_factory=dict)
    median_dirty: set[str] = field(default_factory=set)
    known_jobs: set[str] = field(default_factory=set)
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
            if status is RunStatus.SUCCESS:
                self.median_dirty.add(job)
        self.changes.append({"type": "run", "id": run["id"], "job": job, "status": run["status"]})

    def flush(self, conn: Connection) -> None:
        if self.phases:
            conn.execute(t.phases.insert(), self.phases)
        if self.events:
            conn.execute(t.events.insert(), self.events)
        for job, run in self.latest.items():
            self._refresh_job(conn, job, run)
        for (job, day), r in self.rollups.items():
            self._add_rollup(conn, job, day, r)

    def _refresh_job(self, conn: Connection, job: str, run: dict[str, Any]) -> None:
        jobs = t.jobs
        values: dict[str, Any] = {
            "last_run_id": run["id"],
            "last_started_at": run["started_at"],
            "last_finished_at": run.get("finished_at"),
            "last_status": run["status"],
            "last_duration_s": run.get("duration_s"),
            "last_size_bytes": run.get("size_bytes"),
        }
        conn.execute(
            update(jobs)
            .where(
                and_(
                    jobs.c.id == job,
                    or_(
                        jobs.c.last_started_at.is_(None),
                        jobs.c.last_started_at <= run["started_at"],
                    ),
                )
            )
            .values(**values)
        )
        extra: dict[str, Any] = {}
        if self.new_runs.get(job):
            extra["runs_total"] = jobs.c.runs_total + self.new_runs[job]
        success = self.last_success.get(job)
        if success is not None:
            conn.execute(
                update(jobs)
                .where(
                    and_(
                        jobs.c.id == job,
                        or_(jobs.c.last_success_at.is_(None), jobs.c.last_success_at < success),
                    )
                )
                .values(last_success_at=success)
            )
        if job in self.median_dirty:
            durations = sorted(
                d
                for d in conn.execute(
                    select(t.runs.c.duration_s)
                    .where(t.runs.c.job == job, t.runs.c.status == "success")
                    .order_by(t.runs.c.started_at.desc())
                    .limit(20)
                ).scalars()
                if d is not None
            )
            if durations:
                extra["median_duration_s"] = durations[len(durations) // 2]
        if extra:
            conn.execute(update(jobs).where(jobs.c.id == job).values(**extra))

    @staticmethod
    def _add_rollup(conn: Connection, job: str, day: int, r: _Rollup) -> None:
        table = t.daily_rollups
        row = {"job": job, "day": day, **r.__dict__}
        stmt = insert_for(conn, table).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.job, table.c.day],
            set_={name: table.c[name] + stmt.excluded[name] for name in r.__dict__},
        )
        conn.execute(stmt)

    def after_commit(self) -> None:
        if not self.changes:
            return
        for listener in self.listeners:
            listener(self.changes)
