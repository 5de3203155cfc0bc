"""Recording runs: complete reports and the start → status → phases → files → finish path.

Every function here returns an *operation* for a writer (``op(conn, unit)``), so the same
code runs batched in the server and one-at-a-time in the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Float, bindparam, case, func, select, update

from backwatch.domain import bounds
from backwatch.domain.lifecycle import TERMINAL, RunStatus, check_transition
from backwatch.domain.report import (
    PhaseReport,
    RunReport,
    lay_out_phases,
    storable,
    storable_json,
    storable_report,
    tail_text,
)
from backwatch.errors import Conflict, InvalidInput, NotFound
from backwatch.ids import new_run_id
from backwatch.services.jobs import ensure_jobs, job_created
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for, insert_rows, present
from backwatch.store.redact import redact_reports, redact_text, redact_texts
from backwatch.store.writer import Failed, Op, RetryAlone
from backwatch.timeutil import LATEST_TIME

FILE_RECORDS_PER_RUN = 1000
_RUN_FIELDS = (
    "host", "finished_at", "duration_s", "exit_code", "size_bytes", "files", "files_new",
    "files_changed", "bytes_added", "message", "tool", "stats",
)  # fmt: skip


@dataclass
class Recorded:
    """The outcome of a write: the run as stored and whether this call created it."""

    run: dict[str, Any]
    created: bool

    def ack(self) -> dict[str, Any]:
        """The answer to a report or a start: the run's id, job and status, and ``created``."""
        run = self.run
        return {
            "id": run["id"],
            "job": run["job"],
            "status": run["status"],
            "created": self.created,
        }


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
        kind=report.kind,
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
    """Store a complete (or running) report. Re-sending it returns the stored run.

    The operation has a bulk form: the group-commit writer stores many reports with a few
    statements (see ``_record_reports``), with the same results as one after another.
    A figure out of bounds (``domain/bounds.py``) raises InvalidInput here, before any write."""
    bounds.check_report(report)
    return _RecordReport(_storable(report), now, actor)


class _RecordReport:
    """The operation ``record_report`` returns: callable alone, or in bulk by the writer."""

    __slots__ = ("actor", "now", "report")

    def __init__(self, report: RunReport, now: float, actor: str) -> None:
        self.report = report
        self.now = now
        self.actor = actor

    def __call__(self, conn: Connection, unit: WriteUnit) -> Recorded:
        (result,) = _record_reports(conn, unit, [self])
        if isinstance(result, Failed):
            raise result.error
        return result

    @staticmethod
    def bulk(conn: Connection, unit: WriteUnit, ops: list[_RecordReport]) -> list[Any]:
        return _record_reports(conn, unit, ops)


def _record_reports(conn: Connection, unit: WriteUnit, ops: list[_RecordReport]) -> list[Any]:
    """Store ``ops``' reports as if one after another in this transaction: one SELECT finds
    the stored ids and (job, backup_id) pairs, duplicates within the batch are resolved here,
    then one INSERT stores the new runs. A report whose id belongs to another job fails alone
    (``Failed``), before anything is written for it."""
    # secrets out of messages and logs before they are stored (store/redact.py)
    for op, report in zip(ops, redact_reports(conn, [op.report for op in ops]), strict=True):
        op.report = report
    ids = [op.report.id or new_run_id(op.now) for op in ops]
    stored = present(conn, t.runs, "id", ids)  # usually none: then no rows to read
    by_id: dict[str, dict[str, Any]] = (
        {
            row["id"]: dict(row)
            for row in conn.execute(_RUNS_BY_ID, {"ids": sorted(stored)}).mappings()
        }
        if stored
        else {}
    )
    by_pair = _runs_by_pair(conn, {(op.report.job, op.report.backup_id) for op in ops})
    results: list[Any] = []
    new: list[tuple[_RecordReport, dict[str, Any]]] = []
    for op, run_id in zip(ops, ids, strict=True):
        report = op.report
        found = by_id.get(run_id)
        if found is not None and found["job"] != report.job:
            message = f"run id {run_id!r} already belongs to job {found['job']!r}"
            results.append(Failed(Conflict(message)))
            continue
        if found is None and report.backup_id is not None:
            found = by_pair.get((report.job, report.backup_id))
        if found is not None:
            results.append(Recorded(dict(found), False))
            continue
        row = _row_for(report, run_id, op.now)
        by_id[run_id] = row
        if report.backup_id is not None:
            by_pair[(report.job, report.backup_id)] = row
        new.append((op, row))
        results.append(Recorded(row, True))
    if not new:
        return results
    jobs: dict[str, tuple[str | None, str | None, float]] = {}
    for op, _row in new:
        jobs.setdefault(op.report.job, (op.report.host, op.report.tool, op.now))
    created = set(ensure_jobs(conn, unit, jobs))
    inserted = insert_rows(conn, t.runs, [row for _op, row in new], skip_conflicts=True)
    if inserted != len(new):
        # Another writer (a second process on PostgreSQL) stored one of these meanwhile.
        if len(ops) > 1:
            raise RetryAlone("a concurrent writer stored some of these runs")
        op, row = new[0]
        for job in created:
            job_created(unit, job, op.now, actor="ingest", origin="auto")
        existing = _existing(conn, op.report, row["id"])
        if existing is None:  # pragma: no cover - a conflict implies a row
            raise Conflict(f"run {row['id']!r} conflicts with a stored run")
        return [Recorded(existing, False)]
    logs = [{"run_id": row["id"], "log": op.report.log} for op, row in new if op.report.log]
    if logs:
        conn.execute(_INSERT_LOG, logs)
    for op, row in new:
        report = op.report
        if report.job in created:
            created.discard(report.job)
            job_created(unit, report.job, jobs[report.job][2], actor="ingest", origin="auto")
        unit.phases.extend(_phase_rows(row["id"], report.phases, report.started_at))
        unit.event(
            at=op.now,
            kind="state_change",
            entity="run",
            entity_id=row["id"],
            job=report.job,
            from_state=None,
            to_state=row["status"],
            trigger=report.trigger,
            actor=op.actor,
        )
        unit.run_written(row, new=True, became_terminal=report.status in TERMINAL)
    return results


def _runs_by_pair(
    conn: Connection, pairs: set[tuple[str, str | None]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored runs by (job, backup_id). ``job IN … AND backup_id IN …`` is what both
    databases look up in the unique index (SQLite scans the table for a row-value IN); it
    probes jobs × backup ids, so a batch with many of both asks job by job."""
    wanted: dict[str, list[str]] = {}
    for job, backup_id in pairs:
        if backup_id is not None:
            wanted.setdefault(job, []).append(backup_id)
    if not wanted:
        return {}
    backup_ids = sorted({b for bids in wanted.values() for b in bids})
    if len(wanted) * len(backup_ids) <= 4096:
        asks = [{"jobs": list(wanted), "backup_ids": backup_ids}]
    else:
        asks = [{"jobs": [job], "backup_ids": bids} for job, bids in wanted.items()]
    found = {}
    for params in asks:
        for row in conn.execute(_RUNS_BY_PAIR, params).mappings():
            if row["backup_id"] in wanted[row["job"]]:
                found[(row["job"], row["backup_id"])] = dict(row)
    return found


def _storable(report: RunReport) -> RunReport:
    """``storable_report(report)``, without a copy when no text needs cleaning (the rule)."""
    for name in _TEXT_FIELDS:
        value = getattr(report, name)
        if isinstance(value, str) and storable(value) is not value:
            return storable_report(report)
    for phase in report.phases:
        if storable(phase.name) is not phase.name:
            return storable_report(report)
    if report.stats is not None and storable_json(report.stats) is not report.stats:
        return storable_report(report)
    return report


_TEXT_FIELDS = tuple(f.name for f in fields(RunReport))
_RUNS_BY_ID = select(t.runs).where(t.runs.c.id.in_(bindparam("ids", expanding=True)))
_RUNS_BY_PAIR = select(t.runs).where(
    t.runs.c.job.in_(bindparam("jobs", expanding=True)),
    t.runs.c.backup_id.in_(bindparam("backup_ids", expanding=True)),
)
_INSERT_LOG = t.run_logs.insert()


_LOAD_RUN = select(t.runs).where(t.runs.c.id == bindparam("run_id"))  # built once: each finish


def _load_run(conn: Connection, run_id: str) -> dict[str, Any]:
    row = conn.execute(_LOAD_RUN, {"run_id": run_id}).mappings().first()
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
            changes["message"] = redact_text(conn, tail_text(message, 4096))
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
    bounds.check_phase_event(at, duration_s, now)
    name = storable(name)
    status = None if status is None else storable(status)

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
                        "path": storable(f["path"]),
                        "size_bytes": f.get("size"),
                        "status": storable(f.get("status") or "success"),
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
        if changes["size_bytes"] > bounds.MAX_COUNT:
            raise InvalidInput.field(
                "files", f"the run's total size would be more than {bounds.MAX_COUNT} bytes"
            )
        conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**changes))
        unit.changes.append({"type": "run", "id": run_id, "job": run["job"]})
        return {**run, **changes}

    return op


#: a finished run's open phases end with it (built once: each finish runs it)
_ph_end = bindparam("b_finished", type_=Float)
_CLOSE_PHASES = (
    update(t.phases)
    .where(t.phases.c.run_id == bindparam("b_run_id"), t.phases.c.finished_at.is_(None))
    .values(
        finished_at=_ph_end,
        status=bindparam("b_status"),
        duration_s=case(
            (t.phases.c.started_at < _ph_end, _ph_end - t.phases.c.started_at), else_=0.0
        ),
    )
)


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
    bounds.check_figures(fields)
    if isinstance(fields.get("stats"), dict):
        fields = {**fields, "stats": storable_json(fields["stats"])}

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        run = _load_run(conn, run_id)
        check_transition(run_id, RunStatus(run["status"]), status)
        changes = {k: v for k, v in fields.items() if v is not None}
        message, kept_log = redact_texts(conn, [changes.get("message"), log])
        if message is not None:
            changes["message"] = message
        finished = changes.get("finished_at")
        if finished is None:
            finished = now
            if changes.get("duration_s") is not None:
                finished = run["started_at"] + changes["duration_s"]
                if finished > LATEST_TIME:
                    raise InvalidInput.field("finished_at", bounds.END_PROBLEM)
            changes["finished_at"] = finished
        if finished < run["started_at"]:
            raise InvalidInput.field("finished_at", "is before the run's started_at")
        changes.setdefault("duration_s", finished - run["started_at"])
        ph = t.phases
        conn.execute(
            _CLOSE_PHASES, {"b_run_id": run_id, "b_finished": finished, "b_status": status.value}
        )
        if phases:
            base = conn.execute(
                select(func.coalesce(func.max(ph.c.seq), -1) + 1).where(ph.c.run_id == run_id)
            ).scalar_one()
            for row in _phase_rows(run_id, phases, run["started_at"]):
                row["seq"] += base
                unit.phases.append(row)
        if kept_log:
            stmt = insert_for(conn, t.run_logs).values(run_id=run_id, log=tail_text(kept_log))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.run_logs.c.run_id], set_={"log": stmt.excluded.log}
                )
            )
        return _transition(conn, unit, run, status, changes, now, trigger=trigger, actor=actor)

    return op
