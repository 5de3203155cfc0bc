"""Prometheus exposition: a custom collector that reads the store on every scrape.

Gauges come from the per-job snapshot on the ``jobs`` row (no scan of runs), run counters
from the daily rollups, phase durations from each job's latest run, disk gauges from the
stored disk samples (the latest one per path, and the same forecast as the ``disk_space``
rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from sqlalchemy import func, select

from backwatch.domain.health import Health
from backwatch.domain.rules import days_until_full
from backwatch.services.alerts import disk_facts, open_counts
from backwatch.services.hub import Hub
from backwatch.services.views import job_verdict, last_run_at, with_health_facts
from backwatch.store import tables as t

OVERDUE = {Health.LATE, Health.MISSED}


class StoreCollector:
    """prometheus_client collector over one Hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        labels = ["job", "host"]
        g = {
            name: GaugeMetricFamily(f"backwatch_job_{name}", doc, labels=labels)
            for name, doc in (
                (
                    "last_run_timestamp_seconds",
                    "When the job's latest backup run ended (its start while it runs).",
                ),
                (
                    "last_success_timestamp_seconds",
                    "When the job's latest good backup run (success, warning, skipped) ended.",
                ),
                (
                    "last_verified_timestamp_seconds",
                    "When the job's latest passed restore drill or repository check ended.",
                ),
                (
                    "last_run_success",
                    "1 if the latest finished backup run succeeded, else 0 (unknown is 0).",
                ),
                ("last_duration_seconds", "Duration of the latest run."),
                ("last_size_bytes", "Size of the latest run."),
                ("overdue", "1 if the job is late or missed its schedule."),
            )
        }
        health = GaugeMetricFamily(
            "backwatch_job_health",
            "1 for the job's current health (an open critical alert makes it failing).",
            labels=[*labels, "health"],
        )
        runs_total = CounterMetricFamily(
            "backwatch_job_runs", "Finished runs by status.", labels=[*labels, "status"]
        )
        phases = GaugeMetricFamily(
            "backwatch_job_phase_duration_seconds",
            "Phase durations of the job's latest run.",
            labels=[*labels, "phase"],
        )
        alerts_open = GaugeMetricFamily(
            "backwatch_alerts_open", "Open or acknowledged alerts.", labels=["severity"]
        )
        disk_used = GaugeMetricFamily(
            "backwatch_disk_used_bytes",
            "Used bytes of a watched disk (latest sample).",
            labels=["path"],
        )
        disk_size = GaugeMetricFamily(
            "backwatch_disk_size_bytes", "Size of a watched disk (latest sample).", labels=["path"]
        )
        disk_days = GaugeMetricFamily(
            "backwatch_disk_days_until_full",
            "Days until the disk is full at its current growth (absent while not forecast).",
            labels=["path"],
        )
        now = self.hub.now()
        stuck = self.hub.settings.alerts.stuck_minutes
        with self.hub.read_engine.connect() as conn:
            jobs = with_health_facts(
                conn, [dict(r) for r in conn.execute(select(t.jobs)).mappings()]
            )
            d = t.daily_rollups
            totals = conn.execute(
                select(
                    d.c.job,
                    func.sum(d.c.success),
                    func.sum(d.c.warning),
                    func.sum(d.c.failed),
                    func.sum(d.c.other),
                ).group_by(d.c.job)
            ).all()
            for severity, count in open_counts(conn).items():
                alerts_open.add_metric([severity], count)
            paths = [row[0] for row in conn.execute(select(t.disk_samples.c.path).distinct()).all()]
            disks = disk_facts(conn, sorted(paths), now)
            last_ids = [j["last_run_id"] for j in jobs if j["last_run_id"]]
            phase_rows = (
                conn.execute(
                    select(t.phases.c.run_id, t.phases.c.name, t.phases.c.duration_s).where(
                        t.phases.c.run_id.in_(last_ids)
                    )
                ).all()
                if last_ids
                else []
            )
        hosts = {j["id"]: j["host"] or "" for j in jobs}
        by_run = {j["last_run_id"]: j["id"] for j in jobs if j["last_run_id"]}
        for job in jobs:
            key = [job["id"], hosts[job["id"]]]
            verdict = job_verdict(job, now, stuck_minutes=stuck)
            health.add_metric([*key, verdict.health.value], 1)
            g["overdue"].add_metric(key, 1 if verdict.health in OVERDUE else 0)
            last_run = last_run_at(job)
            if last_run is not None:
                g["last_run_timestamp_seconds"].add_metric(key, last_run)
            if job["last_success_at"] is not None:
                g["last_success_timestamp_seconds"].add_metric(key, job["last_success_at"])
            if job.get("last_verified_at") is not None:
                g["last_verified_timestamp_seconds"].add_metric(key, job["last_verified_at"])
            if job["last_status"] not in (None, "running", "queued"):
                ok = job["last_status"] in ("success", "warning", "skipped")
                g["last_run_success"].add_metric(key, 1 if ok else 0)
            if job["last_duration_s"] is not None:
                g["last_duration_seconds"].add_metric(key, job["last_duration_s"])
            if job["last_size_bytes"] is not None:
                g["last_size_bytes"].add_metric(key, job["last_size_bytes"])
        for job_id, success, warning, failed, other in totals:
            host = hosts.get(job_id, "")
            for status, value in (
                ("success", success),
                ("warning", warning),
                ("failed", failed),
                ("other", other),
            ):
                runs_total.add_metric([job_id, host, status], value or 0)
        for run_id, name, duration in phase_rows:
            if duration is not None:
                job_id = by_run[run_id]
                phases.add_metric([job_id, hosts[job_id], name], duration)
        for disk in disks:
            _at, used, total = disk.samples[-1]
            disk_used.add_metric([disk.path], used)
            disk_size.add_metric([disk.path], total)
            left = days_until_full(disk)
            if left is not None:
                disk_days.add_metric([disk.path], left)
        yield from g.values()
        yield health
        yield runs_total
        yield phases
        yield alerts_open
        yield disk_used
        yield disk_size
        yield disk_days


def exposition(hub: Hub, accept: str | None = None) -> tuple[bytes, str]:
    """The store's metrics in the format a scraper's ``Accept`` header asks for, and its
    content type: OpenMetrics when it names ``application/openmetrics-text`` (Prometheus
    does by default), else the Prometheus text format (also with no header at all)."""

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(hub))
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type
