"""The database target: the same operations as the API, done in-process."""

from __future__ import annotations

from typing import Any

from backwatch.ingest.lifecycle import parse_start
from backwatch.services import intake, reads, retention
from backwatch.services import runs as run_service
from backwatch.services.hub import Hub
from backwatch.services.views import (
    SUMMARY_JOBS_MAX,
    job_out,
    read_job,
    read_jobs,
    run_out,
    summary_out,
)
from backwatch.settings import Settings


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
        return retention.prune(self.hub.write, self.hub.now(), self.settings.retention_days)

    def start(self, obj: dict[str, Any]) -> dict[str, Any]:
        now = self.hub.now()
        report = parse_start(obj, now, source="cli")
        return self.hub.write(run_service.start_run(report, now, actor=self.actor)).ack()

    def run_call(self, run_id: str, what: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.hub.write(intake.run_call(run_id, what, obj, self.hub.now(), actor=self.actor))

    def list_runs(self, **query: Any) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            rows, cursor = reads.list_runs(conn, **query)
        return {"items": [run_out(r) for r in rows], "next_cursor": cursor}

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.hub.read_engine.connect() as conn:
            return run_out(reads.get_run(conn, run_id))

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

    def job_page(
        self, *, health: tuple[str, ...] = (), counts: bool = False, **query: Any
    ) -> dict[str, Any]:
        """One page of jobs as ``GET /api/v1/jobs`` answers it, read the same way."""
        from backwatch.services import job_list

        stuck = self.settings.alerts.stuck_minutes
        wanted = job_list.JobFilter.parse(
            health, query.pop("tag", None), query.pop("host", None), query.pop("q", None)
        )
        with self.hub.read_engine.connect() as conn:
            found = job_list.read_page(
                conn, wanted, now=self.hub.now(), stuck_minutes=stuck, with_counts=counts, **query
            )
            return {
                "items": [self._job_out(r) for r in found.rows],
                "next_cursor": found.next_cursor,
                "counts": found.counts,
            }

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
                jobs_limit=SUMMARY_JOBS_MAX,  # a page, as the API answers
            )

    def close(self) -> None:
        self.hub.close()
