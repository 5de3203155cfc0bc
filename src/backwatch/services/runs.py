"""Recording runs: complete reports and the start → status → phases → files → finish path.

Every function here returns an *operation* for a writer (``op(conn, unit)``), so the same
code runs batched in the server and one-at-a-time in the CLI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from backwatch.domain.lifecycle import TERMINAL, RunStatus, check_transition
from backwatch.domain.report import PhaseReport, RunReport, lay_out_phases, tail_text
from backwatch.errors import Conflict, InvalidInput, NotFound
from backwatch.services.jobs import ensure_job
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for
from backwatch.store.writer import Op

FILE_RECORDS_PER_RUN = 1000
_RUN_FIELDS = (
    "host", "finished_at", "duration_s", "exit_code", "size_bytes", "files", "files_new",
    "files_changed", "bytes_added", "message", "tool", "stats",
)  # fmt: skip


def new_run_id(now: float | None = None) -> str:
    """Time-ordered, 22 characters: 11 hex digits of milliseconds + 11 random."""
    ms = int((now if now is not None else time.time()) * 1000)
    return f"{ms:011x}{os.urandom(6).hex()[:11]}"


@dataclass
class Recorded:
    """The outcome of a write: the run as stored and whether this call created it."""

    run: dict[str, Any]
    created: bool


def _row_for(report: RunReport, run_id: str, now: float) -> dict[str, Any]:
    row = {name: getattr(report, name) for name in _RUN_FIELDS}
    row.update(
        id=run_id,
        job=report.job,
        status=report.status.value,
        started_at=report.started_at,
        source=report.source,
        trigger=report.trigger,
        backup_id=report.backup_id,
        updated_at=now,
    )
    if row["finished_at"] is None and report.status in TERMINAL:
        # a finished run has an end, so "last success" and durations always have one
        row["finished_at"] = report.started_at + (report.duration_s or 0.0)
    return row


def _phase_rows(run_id: str, phases: list[PhaseReport], started_at: float) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "name": p.name,
            "seq": i,
            "status": p.status or "success",
            "started_at": p.started_at,
            "finished_at": p.finished_at,
            "duration_s": p.duration_s,
        }
        for i, p in enumerate(lay_out_phases(phases, started_at))
    ]


def _existing(conn: Connection, report: RunReport, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
    if row is None and report.backup_id is not None:
        row = (
            conn.execute(
                select(t.runs).where(
                    t.runs.c.job == report.job, t.runs.c.backup_id == report.backup_id
                )
            )
            .mappings()
            .first()
        )
    if row is not None and row["job"] != report.job:
        raise Conflict(f"run id {run_id!r} already belongs to job {row['job']!r}")
    return dict(row) if row is not None else None


def record_report(report: RunReport, now: float, *, actor: str = "api") -> Op[Recorded]:
    """Store a complete (or running) report. Re-sending it returns the stored run."""

    def op(conn: Connection, unit: WriteUnit) -> Recorded:
        run_id = report.id or new_run_id(now)
        ensure_job(conn, unit, report.job, now, host=report.host, tool=report.tool)
        row = _row_for(report, run_id, now)
        # RETURNING, not rowcount: drivers report -1 for INSERT … ON CONFLICT (psycopg 3)
        stmt = insert_for(conn, t.runs).values(**row).on_conflict_do_nothing()
        if conn.execute(stmt.returning(t.runs.c.id)).first() is None:
            existing = _existing(conn, report, run_id)
            if existing is None:  # pragma: no cover - a conflict implies a row
                raise Conflict(f"run {run_id!r} conflicts with a stored run")
            return Recorded(existing, False)
        if report.log:
            conn.execute(t.run_logs.insert().values(run_id=run_id, log=report.log))
        unit.phases.extend(_phase_rows(run_id, report.phases, report.started_at))
        unit.event(
            at=now,
            kind="state_change",
            entity="run",
            entity_id=run_id,
            job=report.job,
            from_state=None,
            to_state=report.status.value,
            trigger=report.trigger,
            actor=actor,
        )
        unit.run_written(row, new=True, became_terminal=report.status in TERMINAL)
        return Recorded(row, True)

    return op


def _load_run(conn: Connection, run_id: str) -> dict[str, Any]:
    row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return dict(row)


def _transition(
    conn: Connection,
    unit: WriteUnit,
    run: dict[str, Any],
    target: RunStatus,
    changes: dict[str, Any],
    now: float,
    *,
    trigger: str,
    actor: str,
) -> dict[str, Any]:
    current = RunStatus(run["status"])
    check_transition(run["id"], current, target)
    changes = {**changes, "status": target.value, "updated_at": now}
    conn.execute(update(t.runs).where(t.runs.c.id == run["id"]).values(**changes))
    unit.event(
        at=now,
        kind="state_change",
        entity="run",
        entity_id=run["id"],
        job=run["job"],
        from_state=current.value,
        to_state=target.value,
        trigger=trigger,
        actor=actor,
    )
    run = {**run, **changes}
    unit.run_written(run, new=False, became_terminal=target in TERMINAL)
    return run


def start_run(report: RunReport, now: float, *, actor: str = "api") -> Op[Recorded]:
    """Open a run in ``running`` (or ``queued``) state. Idempotent on a client-given id."""
    if report.status not in (RunStatus.RUNNING, RunStatus.QUEUED):
        raise InvalidInput.field("status", "a started run must be 'running' or 'queued'")
    return record_report(report, now, actor=actor)


def update_status(
    run_id: str,
    now: float,
    *,
    message: str | None = None,
    status: RunStatus | None = None,
    actor: str = "api",
) -> Op[dict[str, Any]]:
    """A progress message, or a move along the lifecycle (queued → running, → cancelled …)."""

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        run = _load_run(conn, run_id)
        changes: dict[str, Any] = {}
        if message is not None:
            changes["message"] = tail_text(message, 4096)
        if status is not None and status.value != run["status"]:
            return _transition(conn, unit, run, status, changes, now, trigger="api", actor=actor)
        if RunStatus(run["status"]) in TERMINAL:
            check_transition(run_id, RunStatus(run["status"]), RunStatus.RUNNING)
        if changes:
            changes["updated_at"] = now
            conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**changes))
            unit.changes.append({"type": "run", "id": run_id, "job": run["job"]})
        return {**run, **changes}

    return op


def record_phase(
    run_id: str,
    name: str,
    event: str,
    now: float,
    *,
    at: float | None = None,
    duration_s: float | None = None,
    status: str | None = None,
) -> Op[dict[str, Any]]:
    """``event``: 'start' opens a phase, 'end' closes the open one of that name, 'record'
    stores a finished phase with its duration."""
    if event not in ("start", "end", "record"):
        raise InvalidInput.field("event", "must be 'start', 'end' or 'record'")

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        run = _load_run(conn, run_id)
        if RunStatus(run["status"]) in TERMINAL:
            raise Conflict(f"run {run_id} already finished as {run['status']}; no more phases")
        ph = t.phases
        when = at if at is not None else now
        if event == "end":
            open_row = conn.execute(
                select(ph.c.id, ph.c.started_at)
                .where(ph.c.run_id == run_id, ph.c.name == name, ph.c.finished_at.is_(None))
                .order_by(ph.c.seq.desc())
                .limit(1)
            ).first()
            if open_row is None:
                raise Conflict(f"phase {name!r} of run {run_id} was not started")
            duration = max(0.0, when - (open_row.started_at or when))
            conn.execute(
                update(ph)
                .where(ph.c.id == open_row.id)
                .values(finished_at=when, duration_s=duration, status=status or "success")
            )
            unit.changes.append({"type": "run", "id": run_id, "job": run["job"]})
            return {"name": name, "started_at": open_row.started_at, "duration_s": duration}
        seq = conn.execute(
            select(func.coalesce(func.max(ph.c.seq), -1) + 1).where(ph.c.run_id == run_id)
        ).scalar_one()
        values: dict[str, Any]
        if event == "start":
            values = {"started_at": when, "finished_at": None, "duration_s": None}
            values["status"] = "running"
        else:
            start = when - (duration_s or 0.0) if at is None else when
            values = {
                "started_at": start,
                "finished_at": start + (duration_s or 0.0),
                "duration_s": duration_s or 0.0,
                "status": status or "success",
            }
        conn.execute(ph.insert().values(run_id=run_id, name=name, seq=seq, **values))
        unit.changes.append({"type": "run", "id": run_id, "job": run["job"]})
        return {"name": name, **values}

    return op


def record_files(run_id: str, files: list[dict[str, Any]], now: float) -> Op[dict[str, Any]]:
    """Seed 000's ``metrics_file_backup_complete``: counts and sums always, records capped."""

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        run = _load_run(conn, run_id)
        if RunStatus(run["status"]) in TERMINAL:
            raise Conflict(f"run {run_id} already finished as {run['status']}; no more files")
        stored = conn.execute(
            select(func.count()).select_from(t.run_files).where(t.run_files.c.run_id == run_id)
        ).scalar_one()
        room = max(0, FILE_RECORDS_PER_RUN - stored)
        if room and files:
            conn.execute(
                t.run_files.insert(),
                [
                    {
                        "run_id": run_id,
                        "path": f["path"],
                        "size_bytes": f.get("size"),
                        "status": f.get("status", "success"),
                        "at": now,
                    }
                    for f in files[:room]
                ],
            )
        added_size = sum(int(f.get("size") or 0) for f in files)
        changes = {
            "files": (run["files"] or 0) + len(files),
            "size_bytes": (run["size_bytes"] or 0) + added_size,
            "updated_at": now,
        }
        conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**changes))
        unit.changes.append({"type": "run", "id": run_id, "job": run["job"]})
        return {**run, **changes}

    return op


def finish_run(
    run_id: str,
    status: RunStatus,
    now: float,
    *,
    fields: dict[str, Any],
    phases: list[PhaseReport] | None = None,
    log: str | None = None,
    trigger: str = "api",
    actor: str = "api",
) -> Op[dict[str, Any]]:
    """Close a running run. ``fields`` may set any measured field; finishing twice is refused."""
    if status not in TERMINAL:
        raise InvalidInput.field("status", "a finished run needs a final status")

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        run = _load_run(conn, run_id)
        check_transition(run_id, RunStatus(run["status"]), status)
        changes = {k: v for k, v in fields.items() if v is not None}
        finished = changes.get("finished_at")
        if finished is None:
            finished = now
            if changes.get("duration_s") is not None:
                finished = run["started_at"] + changes["duration_s"]
            changes["finished_at"] = finished
        if finished < run["started_at"]:
            raise InvalidInput.field("finished_at", "is before the run's started_at")
        changes.setdefault("duration_s", finished - run["started_at"])
        ph = t.phases
        conn.execute(
            update(ph)
            .where(ph.c.run_id == run_id, ph.c.finished_at.is_(None))
            .values(
                finished_at=finished,
                status=status.value,
                duration_s=case(
                    (ph.c.started_at < finished, finished - ph.c.started_at), else_=0.0
                ),
            )
        )
        if phases:
            base = conn.execute(
                select(func.coalesce(func.max(ph.c.seq), -1) + 1).where(ph.c.run_id == run_id)
            ).scalar_one()
            for row in _phase_rows(run_id, phases, run["started_at"]):
                row["seq"] += base
                unit.phases.append(row)
        if log:
            stmt = insert_for(conn, t.run_logs).values(run_id=run_id, log=tail_text(log))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.run_logs.c.run_id], set_={"log": stmt.excluded.log}
                )
            )
        return _transition(conn, unit, run, status, changes, now, trigger=trigger, actor=actor)

    return op
