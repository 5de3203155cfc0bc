"""The database target: the same operations as the API, done in-process."""

from __future__ import annotations

from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.errors import InvalidInput
from backwatch.ingest.lifecycle import (
    parse_files,
    parse_finish,
    parse_phase_event,
    parse_start,
    parse_status_update,
)
from backwatch.services import intake, retention
from backwatch.services import runs as run_service
from backwatch.services.hub import Hub
from backwatch.services.views import job_out, read_job, read_jobs, run_out, summary_out
from backwatch.settings import Settings
from backwatch.store import queries
from backwatch.timeutil import parse_time


class LocalTarget:
    def __init__(self, settings: Settings, *, actor: str = "cli") -> None:
        self.settings = settings
        self.hub = Hub(settings)
        self.actor = actor

    def report(self, obj: Any, *, source: str = "cli") -> dict[str, Any]:
        received = intake.parse_body(obj, default_job=self.settings.ingest.default_job)
        for report in received.reports:
            report.source = source
            report.trigger = "manual" if report.trigger == "api" else report.trigger
        data, _status = intake.answer(
            self.hub.write(intake.record(received, self.hub.now(), actor=self.actor))
        )
        return data

    def prune(self) -> int:
        return self.hub.write(retention.prune(self.hub.now(), self.settings.retention_days))  # type: ignore[no-any-return]

    def start(self, obj: dict[str, Any]) -> dict[str, Any]:
        now = self.hub.now()
        report = parse_start(obj, now, source="cli")
        return self.hub.write(run_service.start_run(report, now, actor=self.actor)).ack()

    def run_call(self, run_id: str, what: str, obj: dict[str, Any]) -> dict[str, Any]:
        now = self.hub.now()
        if what == "status":
            body = parse_status_update(obj)
            status = RunStatus(body.status) if body.status else None
            op = run_service.update_status(run_id, now, message=body.message, status=status)
            return run_out(self.hub.write(op))
        if what == "phases":
            ev = parse_phase_event(obj)
            at = parse_time(ev.at, field="at") if ev.at is not None else None
            phase = self.hub.write(
                run_service.record_phase(
                    run_id,
                    ev.name,
                    ev.event,
                    now,
                    at=at,
                    duration_s=ev.duration_s,
                    status=ev.status,
                )
            )
            return {"run": run_id, "phase": phase}
        if what == "files":
            return run_out(self.hub.write(run_service.record_files(run_id, parse_files(obj), now)))
        if what == "finish":
            status, fields, phases, log = parse_finish(obj)
            op = run_service.finish_run(
                run_id, status, now, fields=fields, phases=phases, log=log, actor=self.actor
            )
            return run_out(self.hub.write(op))
        raise InvalidInput(f"unknown run call {what!r}")

    def list_runs(self, **query: Any) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            rows, cursor = queries.list_runs(conn, **query)
        return {"items": [run_out(r) for r in rows], "next_cursor": cursor}

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            return run_out(queries.get_run(conn, run_id))

    def _job_out(self, row: dict[str, Any]) -> dict[str, Any]:
        base = self.settings.server.base_url or (
            f"http://{self.settings.server.host}:{self.settings.server.port}"
        )
        return job_out(
            row, self.hub.now(), stuck_minutes=self.settings.alerts.stuck_minutes, base_url=base
        )

    def list_jobs(self) -> list[dict[str, Any]]:
        with self.hub.read_engine.connect() as conn:
            return [self._job_out(r) for r in read_jobs(conn)]

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            return self._job_out(read_job(conn, job_id))

    def summary(self, days: int, job: str | None = None) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            return summary_out(
                conn,
                days=days,
                now=self.hub.now(),
                job=job,
                stuck_minutes=self.settings.alerts.stuck_minutes,
            )

    def close(self) -> None:
        self.hub.close()
