"""Push one run's metrics to a Prometheus Pushgateway (seed 002, option A).

For setups that already scrape a Pushgateway: the same series as ``/metrics`` for one
run, grouped by ``job`` and ``host`` so each job keeps its latest values.
"""

from __future__ import annotations

import urllib.error
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from backwatch.domain.lifecycle import GOOD, TERMINAL
from backwatch.domain.report import RunReport, lay_out_phases
from backwatch.errors import BackwatchError


class PushgatewayError(BackwatchError):
    code = "pushgateway"


def run_registry(report: RunReport) -> Any:
    """A prometheus_client registry holding the run's metrics."""

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float | None, **labels: str) -> None:
        if value is None:
            return
        g = Gauge(name, doc, list(labels), registry=registry)
        (g.labels(**labels) if labels else g).set(value)

    finished = report.status in TERMINAL
    good = report.status in GOOD
    gauge("backwatch_job_last_run_timestamp_seconds", "Start of the run.", report.started_at)
    if finished:
        gauge("backwatch_job_last_run_success", "1 if the run succeeded.", 1 if good else 0)
    if good and report.finished_at is not None:
        gauge("backwatch_job_last_success_timestamp_seconds", "End of the run.", report.finished_at)
    gauge("backwatch_job_last_duration_seconds", "Duration of the run.", report.duration_s)
    gauge(
        "backwatch_job_last_size_bytes",
        "Size of the run.",
        None if report.size_bytes is None else float(report.size_bytes),
    )
    phases = [p for p in lay_out_phases(report.phases, report.started_at) if p.duration_s]
    if phases:
        g = Gauge(
            "backwatch_job_phase_duration_seconds",
            "Phase durations of the run.",
            ["phase"],
            registry=registry,
        )
        for phase in phases:
            g.labels(phase=phase.name).set(phase.duration_s or 0.0)
    return registry


def push_run(gateway: str, report: RunReport, *, host: str) -> None:
    """Replace the metrics of this job and host on the Pushgateway at ``gateway``."""

    try:
        push_to_gateway(
            gateway,
            job=report.job,
            grouping_key={"host": host},
            registry=run_registry(report),
            timeout=10,
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushgatewayError(f"cannot push to the Pushgateway at {gateway}: {reason}") from None
