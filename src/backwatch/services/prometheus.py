"""Prometheus exposition: a custom collector that reads the store on every scrape.

Gauges come from the per-job snapshot on the ``jobs`` row (no scan of runs), run counters
from the daily rollups, phase durations from each job's latest run, disk gauges from the
stored disk samples (the latest one per path, and the same forecast as the ``disk_space``
rule).

Two kinds of series (docs/alerts.md, "Cardinality"): the aggregates, a fixed number
whatever the fleet's size (jobs per health and per tag, runs per status, alerts, disks),
always cover every job; the per-job series (about 12 a job) cover every job up to
``[metrics] per_job_limit`` jobs, above it only the jobs with a problem (``PROBLEMS``),
unless the scrape names its jobs (``?health=…``, ``?jobs=all``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Connection, func, select

from backwatch.domain.health import Health
from backwatch.domain.rules import days_until_full
from backwatch.services.alerts import disk_facts, open_counts
from backwatch.services.hub import Hub
from backwatch.store import tables as t
from backwatch.store.job_list import (
    HEALTH_STATES,
    PROBLEMS,
    JobFilter,
    counts_by_tags,
    health_sql,
    matching,
)

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


#: the statuses of the run counters, in the order of the rollups' columns
_RUN_STATUSES = ("success", "warning", "failed", "other")
_NO_RUNS = (None, None, None, None)


def _escape(value: str) -> str:
    if "\\" not in value and "\n" not in value and '"' not in value:
        return value  # most names: three scans instead of three copies
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _job_series(
    hub: Hub, conn: Connection, now: float, *, openmetrics: bool, wanted: JobFilter | None
) -> tuple[str, int]:
    """The per-job families of the jobs ``wanted`` keeps (None: every job) as exposition
    text (the same lines in both formats), written straight from one pass over the jobs
    table: prometheus_client's objects cost seconds per 100,000 jobs. Health comes from
    store/job_list.py's SQL (domain/health.py's precedence, open critical alerts
    included); the filter is worked out once for the jobs and once for their phases.
    Also answers how many jobs have series."""
    j = t.jobs
    d = t.daily_rollups
    stuck = hub.settings.alerts.stuck_minutes
    where = matching(conn, wanted or JobFilter(), now=now, stuck_minutes=stuck)
    # each job's run counts as four index lookups on its own rollups (free beside the row)
    sums = [
        select(func.sum(column)).where(d.c.job == j.c.id).scalar_subquery()
        for column in (d.c.success, d.c.warning, d.c.failed, d.c.other)  # _RUN_STATUSES
    ]
    result = conn.execute(
        select(
            j.c.id,
            j.c.host,
            j.c.last_run_id,
            j.c.last_started_at,
            j.c.last_finished_at,
            j.c.last_success_at,
            j.c.last_verified_at,
            j.c.last_status,
            j.c.last_duration_s,
            j.c.last_size_bytes,
            health_sql(now, stuck).label("health"),
            *sums,
        ).where(*where)
    ).all()
    rows = sorted(result, key=lambda row: row.id)  # cheaper than an ORDER BY over its index
    # labels in name order, as prometheus_client writes them: health, host, job, phase, status
    keys = [f'host="{_escape(row.host or "")}",job="{_escape(row.id)}"' for row in rows]
    out: list[str] = []
    # one comprehension per family: this loop is most of a large scrape's time
    for name, doc, value in _JOB_GAUGES:
        metric = f"backwatch_job_{name}"
        out.append(f"# HELP {metric} {doc}\n# TYPE {metric} gauge\n")
        out += [
            f"{metric}{{{key}}} {float(found)!r}\n"
            for key, found in zip(keys, map(value, rows), strict=True)
            if found is not None
        ]
    out.append(
        "# HELP backwatch_job_health 1 for the job's current health (an open critical alert "
        "makes it failing).\n# TYPE backwatch_job_health gauge\n"
    )
    out += [
        f'backwatch_job_health{{health="{HEALTH_STATES[row.health]}",{key}}} 1.0\n'
        for key, row in zip(keys, rows, strict=True)
    ]
    # OpenMetrics names a counter family without its ``_total``; the text format with it
    runs = "backwatch_job_runs" if openmetrics else "backwatch_job_runs_total"
    out.append(f"# HELP {runs} Finished runs by status.\n# TYPE {runs} counter\n")
    counted = [  # a job without rollups (never finished a run, or pruned) has no counts
        (key, row[-4:]) for key, row in zip(keys, rows, strict=True) if row[-4:] != _NO_RUNS
    ]
    for key, by_status in counted:
        for status, count in zip(_RUN_STATUSES, by_status, strict=True):
            out.append(
                f'backwatch_job_runs_total{{{key},status="{status}"}} {float(count or 0)!r}\n'
            )
    p = t.phases
    of_run = {
        row.last_run_id: key
        for key, row in zip(keys, rows, strict=True)
        if row.last_run_id is not None
    }
    phase_rows = sorted(
        conn.execute(
            select(p.c.run_id, p.c.name, p.c.duration_s)
            .where(p.c.run_id.in_(select(j.c.last_run_id).where(*where)))
            .where(p.c.duration_s.is_not(None))
            .order_by(p.c.run_id, p.c.seq)
        ).all(),
        key=lambda row: of_run.get(row.run_id, ""),  # by job; stable: its phases in order
    )
    out.append(
        "# HELP backwatch_job_phase_duration_seconds Phase durations of the job's latest run.\n"
        "# TYPE backwatch_job_phase_duration_seconds gauge\n"
    )
    for run_id, name, duration in phase_rows:
        job_key = of_run.get(run_id)
        if job_key is None:
            continue  # a job that changed between the two reads
        out.append(
            f"backwatch_job_phase_duration_seconds{{{job_key},"
            f'phase="{_escape(name)}"}} {float(duration)!r}\n'
        )
    return "".join(out), len(rows)


@dataclass(frozen=True)
class Fleet:
    """The aggregates over every job, whatever the scrape keeps per job."""

    per_health: dict[str, int]
    per_tag: dict[str, dict[str, int]]
    limited: bool  # the per-job series were cut to the problems by [metrics] per_job_limit
    left_out: int  # jobs without per-job series in this answer (the limit or the filters)


def _per_tag(by_tags: dict[tuple[str, ...], dict[str, int]]) -> dict[str, dict[str, int]]:
    per_tag: dict[str, dict[str, int]] = {}
    for tags, found in by_tags.items():
        for tag in tags:
            into = per_tag.setdefault(tag, dict.fromkeys(HEALTH_STATES, 0))
            for state, n in found.items():
                into[state] += n
    return dict(sorted(per_tag.items()))


def chosen_jobs(
    wanted: JobFilter | None, *, every_job: bool, jobs: int, limit: int
) -> tuple[JobFilter | None, bool]:
    """Whose per-job series a scrape gets (None: every job's), and whether the limit
    chose: the jobs the scrape names, else every job up to ``limit`` jobs, else the jobs
    with a problem (those an alert is about)."""
    if wanted is not None:
        return wanted, False
    if every_job or jobs <= limit:
        return None, False
    return JobFilter(health=PROBLEMS), True


class StoreCollector:
    """The aggregates (jobs per health and tag, runs, alerts, disks, the limit) as a
    prometheus_client collector; ``_job_series`` writes the per-job ones."""

    def __init__(self, hub: Hub, conn: Connection, now: float, fleet: Fleet) -> None:
        self.hub = hub
        self.conn = conn
        self.now = now
        self.fleet = fleet

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        fleet = self.fleet
        jobs = GaugeMetricFamily(
            "backwatch_jobs",
            "Jobs in each health now (every health named, 0 included).",
            labels=["health"],
        )
        for state, count in fleet.per_health.items():
            jobs.add_metric([state], count)
        by_tag = GaugeMetricFamily(
            "backwatch_jobs_by_tag",
            "Jobs with this tag in each health now (every health named, 0 included).",
            labels=["tag", "health"],
        )
        for tag, found in fleet.per_tag.items():
            for state, count in found.items():
                by_tag.add_metric([tag, state], count)
        # the fleet's totals a day (a row a day), not every job's rollups: at 10 M runs
        # those are 9.9 M rows, 2 s a scrape
        d = t.daily_totals
        runs = CounterMetricFamily(
            "backwatch_runs", "Finished runs of every job by status.", labels=["status"]
        )
        sums = self.conn.execute(
            select(func.sum(d.c.success), func.sum(d.c.warning), func.sum(d.c.failed),
                   func.sum(d.c.other))
        ).one()  # fmt: skip
        for status, count in zip(_RUN_STATUSES, sums, strict=True):
            runs.add_metric([status], float(count or 0))
        limited = GaugeMetricFamily(
            "backwatch_metrics_per_job_limited",
            "1 when per-job series are kept only for jobs with a problem (failing, missed, "
            "stuck, unknown, late): more jobs than [metrics] per_job_limit.",
            value=1 if fleet.limited else 0,
        )
        left_out = GaugeMetricFamily(
            "backwatch_metrics_jobs_left_out",
            "Jobs without per-job series in this answer (the limit, or the scrape's filters).",
            value=fleet.left_out,
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
        yield by_tag
        yield runs
        yield limited
        yield left_out
        yield alerts_open
        yield disk_used
        yield disk_size
        yield disk_days


def exposition(
    hub: Hub, accept: str | None = None, wanted: JobFilter | None = None, *, every_job: bool = False
) -> tuple[bytes, str]:
    """The store's metrics in the format a scraper's ``Accept`` header asks for, and its
    content type: OpenMetrics when it names ``application/openmetrics-text`` (Prometheus
    does by default), else the Prometheus text format (also with no header at all).
    ``wanted``: the per-job series of those jobs only; ``every_job``: of every job however
    many (else above ``[metrics] per_job_limit`` jobs, of the jobs with a problem only).
    The aggregates count every job either way.

    The text is built in one pass and reused until the next write (at most 10 s: health
    moves with the clock), so scrapes between changes cost nothing."""
    encode, content_type = choose_encoder(accept or "")

    def build() -> bytes:
        now = hub.now()
        with hub.read_engine.connect() as conn:
            openmetrics = content_type.startswith("application/openmetrics-text")
            stuck = hub.settings.alerts.stuck_minutes
            by_tags = counts_by_tags(conn, now=now, stuck_minutes=stuck)
            per_health = dict.fromkeys(HEALTH_STATES, 0)
            for found in by_tags.values():
                for state, n in found.items():
                    per_health[state] += n
            jobs = sum(per_health.values())
            limit = hub.settings.metrics.per_job_limit
            kept, limited = chosen_jobs(wanted, every_job=every_job, jobs=jobs, limit=limit)
            per_job, shown = _job_series(hub, conn, now, openmetrics=openmetrics, wanted=kept)
            fleet = Fleet(per_health, _per_tag(by_tags), limited, max(0, jobs - shown))
            registry = CollectorRegistry(auto_describe=False)
            registry.register(StoreCollector(hub, conn, now, fleet))
            rest = encode(registry)
        return per_job.encode() + rest

    key = ("metrics", content_type, wanted, every_job)
    return hub.cached(key, build, max_age_s=10.0), content_type
