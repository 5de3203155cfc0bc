"""Prometheus exposition: a custom collector that reads the store on every scrape.

Gauges come from the per-job snapshot on the ``jobs`` row (no scan of runs), run counters
from the daily rollups, phase durations from each job's latest run, disk gauges from the
stored disk samples (the latest one per path, and the same forecast as the ``disk_space``
rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Connection, func, select

from backwatch.domain.health import Health
from backwatch.domain.rules import days_until_full
from backwatch.services.alerts import disk_facts, open_counts
from backwatch.services.hub import Hub
from backwatch.store import tables as t
from backwatch.store.job_list import HEALTH_STATES, JobFilter, counts, health_sql, matching

OVERDUE = {Health.LATE, Health.MISSED}


_OVERDUE_NAMES = frozenset(h.value for h in OVERDUE)
#: the per-job gauges, in the order they are written: name, help, the row's value
_JOB_GAUGES: tuple[tuple[str, str, Callable[[Any], float | None]], ...] = (
    (
        "last_run_timestamp_seconds",
        "When the job's latest backup run ended (its start while it runs).",
        lambda r: r.last_finished_at if r.last_finished_at is not None else r.last_started_at,
    ),
    (
        "last_success_timestamp_seconds",
        "When the job's latest good backup run (success, warning, skipped) ended.",
        lambda r: r.last_success_at,
    ),
    (
        "last_verified_timestamp_seconds",
        "When the job's latest passed restore drill or repository check ended.",
        lambda r: r.last_verified_at,
    ),
    (
        "last_run_success",
        "1 if the latest finished backup run succeeded, else 0 (unknown is 0).",
        lambda r: (
            None
            if r.last_status in (None, "running", "queued")
            else (1.0 if r.last_status in ("success", "warning", "skipped") else 0.0)
        ),
    ),
    ("last_duration_seconds", "Duration of the latest run.", lambda r: r.last_duration_s),
    ("last_size_bytes", "Size of the latest run.", lambda r: r.last_size_bytes),
    (
        "overdue",
        "1 if the job is late or missed its schedule.",
        lambda r: 1.0 if HEALTH_STATES[r.health] in _OVERDUE_NAMES else 0.0,
    ),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _job_series(
    hub: Hub, conn: Connection, now: float, *, openmetrics: bool, wanted: JobFilter | None
) -> tuple[str, dict[str, int]]:
    """The per-job families as exposition text (the same lines in both formats), written
    straight from one pass over the jobs table: prometheus_client's objects cost seconds
    per 100,000 jobs. Health comes from store/job_list.py's SQL (domain/health.py's
    precedence, open critical alerts included). Also answers the jobs per health."""
    j = t.jobs
    stuck = hub.settings.alerts.stuck_minutes
    rows = conn.execute(
        select(
            j.c.id,
            j.c.host,
            j.c.last_started_at,
            j.c.last_finished_at,
            j.c.last_success_at,
            j.c.last_verified_at,
            j.c.last_status,
            j.c.last_duration_s,
            j.c.last_size_bytes,
            health_sql(now, stuck).label("health"),
        )
        .where(*matching(conn, wanted or JobFilter(), now=now, stuck_minutes=stuck))
        .order_by(j.c.id)
    ).all()
    # labels in name order, as prometheus_client writes them: health, host, job, phase, status
    keys = {row.id: f'host="{_escape(row.host or "")}",job="{_escape(row.id)}"' for row in rows}
    out: list[str] = []
    for name, doc, value in _JOB_GAUGES:
        metric = f"backwatch_job_{name}"
        out.append(f"# HELP {metric} {doc}\n# TYPE {metric} gauge\n")
        for row in rows:
            found = value(row)
            if found is not None:
                out.append(f"{metric}{{{keys[row.id]}}} {float(found)!r}\n")
    out.append(
        "# HELP backwatch_job_health 1 for the job's current health (an open critical alert "
        "makes it failing).\n# TYPE backwatch_job_health gauge\n"
    )
    per_health = dict.fromkeys(HEALTH_STATES, 0)
    for row in rows:
        state = HEALTH_STATES[row.health]
        per_health[state] += 1
        out.append(f'backwatch_job_health{{health="{state}",{keys[row.id]}}} 1.0\n')
    d = t.daily_rollups
    totals = conn.execute(
        select(
            d.c.job,
            func.sum(d.c.success),
            func.sum(d.c.warning),
            func.sum(d.c.failed),
            func.sum(d.c.other),
        )
        .group_by(d.c.job)
        .order_by(d.c.job)
    ).all()
    # OpenMetrics names a counter family without its ``_total``; the text format with it
    runs = "backwatch_job_runs" if openmetrics else "backwatch_job_runs_total"
    out.append(f"# HELP {runs} Finished runs by status.\n# TYPE {runs} counter\n")
    for job_id, *by_status in totals:
        key = keys.get(job_id) or f'host="",job="{_escape(job_id)}"'
        if wanted is not None and job_id not in keys:
            continue  # a job the filter leaves out
        for status, count in zip(("success", "warning", "failed", "other"), by_status, strict=True):
            out.append(
                f'backwatch_job_runs_total{{{key},status="{status}"}} {float(count or 0)!r}\n'
            )
    p = t.phases
    phase_rows = conn.execute(
        select(j.c.id, p.c.name, p.c.duration_s)
        .join(p, p.c.run_id == j.c.last_run_id)
        .where(p.c.duration_s.is_not(None))
        .order_by(j.c.id, p.c.seq)
    ).all()
    out.append(
        "# HELP backwatch_job_phase_duration_seconds Phase durations of the job's latest run.\n"
        "# TYPE backwatch_job_phase_duration_seconds gauge\n"
    )
    for job_id, name, duration in phase_rows:
        if job_id not in keys:
            continue
        out.append(
            f"backwatch_job_phase_duration_seconds{{{keys[job_id]},"
            f'phase="{_escape(name)}"}} {float(duration)!r}\n'
        )
    if wanted is not None:  # backwatch_jobs counts every job, whatever the filter
        per_health = counts(conn, JobFilter(), now=now, stuck_minutes=stuck)
    return "".join(out), per_health


class StoreCollector:
    """The small families (alerts, disks, jobs per health) as a prometheus_client collector;
    ``_job_series`` writes the per-job ones."""

    def __init__(self, hub: Hub, conn: Connection, now: float, per_health: dict[str, int]) -> None:
        self.hub = hub
        self.conn = conn
        self.now = now
        self.per_health = per_health

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily(
            "backwatch_jobs",
            "Jobs in each health now (every health named, 0 included).",
            labels=["health"],
        )
        for state, count in self.per_health.items():
            jobs.add_metric([state], count)
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
        conn = self.conn
        for severity, count in open_counts(conn).items():
            alerts_open.add_metric([severity], count)
        paths = [row[0] for row in conn.execute(select(t.disk_samples.c.path).distinct()).all()]
        for disk in disk_facts(conn, sorted(paths), self.now):
            _at, used, total = disk.samples[-1]
            disk_used.add_metric([disk.path], used)
            disk_size.add_metric([disk.path], total)
            left = days_until_full(disk)
            if left is not None:
                disk_days.add_metric([disk.path], left)
        yield jobs
        yield alerts_open
        yield disk_used
        yield disk_size
        yield disk_days


def exposition(
    hub: Hub, accept: str | None = None, wanted: JobFilter | None = None
) -> tuple[bytes, str]:
    """The store's metrics in the format a scraper's ``Accept`` header asks for, and its
    content type: OpenMetrics when it names ``application/openmetrics-text`` (Prometheus
    does by default), else the Prometheus text format (also with no header at all).
    ``wanted``: the per-job series of those jobs only (``backwatch_jobs`` counts them all).

    The text is built in one pass and reused until the next write (at most 10 s: health
    moves with the clock), so scrapes between changes cost nothing."""
    encode, content_type = choose_encoder(accept or "")

    def build() -> bytes:
        now = hub.now()
        with hub.read_engine.connect() as conn:
            openmetrics = content_type.startswith("application/openmetrics-text")
            per_job, per_health = _job_series(
                hub, conn, now, openmetrics=openmetrics, wanted=wanted
            )
            registry = CollectorRegistry(auto_describe=False)
            registry.register(StoreCollector(hub, conn, now, per_health))
            rest = encode(registry)
        return per_job.encode() + rest

    return hub.cached(("metrics", content_type, wanted), build, max_age_s=10.0), content_type
