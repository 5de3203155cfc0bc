"""Intake: a body of one report or a batch, as ``POST /api/v1/runs`` and ``backwatch push``
to a database take it: parsed, checked against the token, recorded and acknowledged; and
the lifecycle calls on a stored run (``POST /api/v1/runs/{id}/status|phases|files|finish``).

The routes, the ingest fast path (``web/fastpath.py``) and the CLI's database target
(``cli/local.py``) all call these, so they answer the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.errors import BackwatchError, Forbidden, InvalidInput
from backwatch.ingest import parse_record
from backwatch.ingest.lifecycle import (
    parse_files,
    parse_finish,
    parse_phase_event,
    parse_status_update,
)
from backwatch.services.runs import (
    Recorded,
    finish_run,
    record_files,
    record_phase,
    record_report,
    update_status,
)
from backwatch.services.tokens import Grant
from backwatch.services.unit import WriteUnit
from backwatch.services.views import run_out
from backwatch.store.writer import Op
from backwatch.timeutil import parse_time

MAX_BATCH = 1000


@dataclass
class Received:
    """The reports of one body; ``batch``: it was a list (answered as ``{"items": […]}``)."""

    reports: list[RunReport]
    batch: bool


def parse_body(body: Any, *, default_job: str) -> Received:
    """A JSON value → its reports. A batch names the failing item: ``[3] job: …``."""
    if not isinstance(body, list):
        return Received([parse_record(body, default_job=default_job)], batch=False)
    if not body or len(body) > MAX_BATCH:
        raise InvalidInput(f"a batch must hold 1–{MAX_BATCH} reports")
    reports = []
    for i, item in enumerate(body):
        try:
            reports.append(parse_record(item, default_job=default_job))
        except InvalidInput as exc:
            raise _in_item(i, exc) from None
    return Received(reports, batch=True)


def check_grant(received: Received, grant: Grant) -> None:
    """Forbidden unless ``grant`` may report every one: one it may not refuses the batch."""
    if not grant.limited:
        return
    for i, report in enumerate(received.reports):
        try:
            grant.check_report(report.job, report.host)
        except Forbidden as exc:
            raise _in_item(i, exc, received.batch) from None


def record(received: Received, now: float, *, actor: str) -> Op[Any]:
    """The write: one report alone (the writer may store it with other requests' reports,
    see ``record_report``), or a whole batch in one transaction: all of it, or none."""
    if not received.batch:
        return record_report(received.reports[0], now, actor=actor)
    ops = []
    for i, report in enumerate(received.reports):
        try:  # a figure out of bounds is refused here, before anything is written
            ops.append(record_report(report, now, actor=actor))
        except BackwatchError as exc:
            raise _in_item(i, exc) from None

    def op(conn: Connection, unit: WriteUnit) -> list[Recorded]:
        out = []
        for i, one in enumerate(ops):
            try:
                out.append(one(conn, unit))
            except BackwatchError as exc:
                raise _in_item(i, exc) from None
        return out

    return op


def answer(result: Recorded | list[Recorded]) -> tuple[dict[str, Any], int]:
    """What the write answered → (JSON body, HTTP status): 201 when something was created,
    200 when every report was stored before (a re-sent report)."""
    if isinstance(result, Recorded):
        return result.ack(), 201 if result.created else 200
    acks = [r.ack() for r in result]
    return {"items": acks}, 201 if any(a["created"] for a in acks) else 200


def run_call(run_id: str, call: str, body: Any, now: float, *, actor: str) -> Op[dict[str, Any]]:
    """A lifecycle call on a stored run (``call``: status, phases, files or finish) with its
    JSON body → the write, which answers what the API answers: the run, or for ``phases``
    ``{"run", "phase"}``. The body is checked before anything is written."""
    op: Op[dict[str, Any]]
    if call == "status":
        update = parse_status_update(body)
        status = RunStatus(update.status) if update.status else None
        op = update_status(run_id, now, message=update.message, status=status, actor=actor)
    elif call == "phases":
        event = parse_phase_event(body)
        phase = record_phase(
            run_id,
            event.name,
            event.event,
            now,
            at=parse_time(event.at, field="at") if event.at is not None else None,
            duration_s=event.duration_s,
            status=event.status,
        )
        return lambda conn, unit: {"run": run_id, "phase": phase(conn, unit)}
    elif call == "files":
        op = record_files(run_id, parse_files(body), now)
    elif call == "finish":
        status, fields, phases, log = parse_finish(body)
        op = finish_run(run_id, status, now, fields=fields, phases=phases, log=log, actor=actor)
    else:
        raise InvalidInput(f"unknown run call {call!r}")
    return lambda conn, unit: run_out(op(conn, unit))


def _in_item(i: int, exc: BackwatchError, batch: bool = True) -> BackwatchError:
    """``exc`` naming item ``i`` of a batch (its message and its details' fields)."""
    if not batch:
        return exc
    details = [{**d, "field": f"[{i}].{d['field']}"} for d in exc.details]
    return type(exc)(f"[{i}] {exc.message}", details=details)
