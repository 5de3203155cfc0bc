"""Performance analysis of one job (seed 003's analyzer) as pure functions: facts in, findings out.

Trend lines and the disk forecast use ``stats.linear_fit`` and ``rules.days_until_full``;
regressions are the alert rules themselves (``duration_regression``, ``size_anomaly``,
``empty``), so an analysis never disagrees with the alerts about what "slower" means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from backwatch.domain.health import JobState, next_due
from backwatch.domain.lifecycle import BAD, RunStatus
from backwatch.domain.rules import (
    DAY,
    DiskFacts,
    JobFacts,
    RunFacts,
    days_until_full,
    duration_regression,
    empty,
    learned_interval,
    size_anomaly,
)
from backwatch.domain.stats import linear_fit, median
from backwatch.timeutil import human_bytes, human_duration, iso, parse_duration

#: a change smaller than this share of the average over the period counts as "stable"
STEADY_PERCENT = 10.0
#: a trend needs at least this many successful runs
MIN_TREND_POINTS = 3
#: a phase taking at least this share of the time is worth a recommendation
BOTTLENECK_PERCENT = 50.0
MIN_PERIOD_S = 3600.0
MAX_PERIOD_S = 730 * DAY
REGRESSION_RULES = (duration_regression, size_anomaly, empty)


def parse_period(text: str) -> float:
    """'24h', '7d', '30d' (any span from 1 hour to 730 days) → seconds, or ValueError."""
    try:
        seconds = parse_duration(text, field="period")
    except ValueError:
        raise ValueError("must be a span such as 24h, 7d or 30d") from None
    if not MIN_PERIOD_S <= seconds <= MAX_PERIOD_S:
        raise ValueError("must be between 1h and 730d")
    return seconds


@dataclass(frozen=True)
class Trend:
    """A least-squares line through (start time, value): change per day and in words."""

    metric: str
    points: int
    slope_per_day: float
    change_percent: float  # the line's end against its start, never below -100
    direction: str  # increasing | decreasing | stable


def trend(metric: str, points: Sequence[tuple[float, float]]) -> Trend | None:
    """The trend of ``points``; None with fewer than 3 points or no spread in time."""
    if len(points) < MIN_TREND_POINTS:
        return None
    fit = linear_fit(points)
    if fit is None:
        return None
    slope, intercept = fit
    # where the line starts and ends in the period; durations and sizes are never below
    # zero, so neither is the line (a steep fall once read "decreasing -299%")
    start = max(slope * min(p[0] for p in points) + intercept, 0.0)
    end = max(slope * max(p[0] for p in points) + intercept, 0.0)
    average = sum(p[1] for p in points) / len(points)
    base = start if start > 0 else average  # a line rising from zero: against the average
    change = (end - start) / base * 100 if base > 0 else 0.0
    if abs(change) < STEADY_PERCENT:
        direction = "stable"
    else:
        direction = "increasing" if change > 0 else "decreasing"
    return Trend(metric, len(points), slope * DAY, change, direction)


@dataclass(frozen=True)
class Bottleneck:
    phase: str
    share_percent: float
    total_s: float
    runs: int


def bottleneck(phase_totals: dict[str, tuple[float, int]]) -> Bottleneck | None:
    """The phase with the largest share of the phases' time: name → (seconds, runs)."""
    timed = {name: v for name, v in phase_totals.items() if v[0] > 0}
    whole = sum(v[0] for v in timed.values())
    if not timed or whole <= 0:
        return None
    name, (seconds, runs) = max(timed.items(), key=lambda item: (item[1][0], item[0]))
    return Bottleneck(name, seconds / whole * 100, seconds, runs)


@dataclass(frozen=True)
class DiskForecast:
    path: str
    used_percent: float
    days_until_full: float | None
    full_at: str | None


@dataclass(frozen=True)
class Forecast:
    next_run_at: str | None
    duration_s: float | None
    size_bytes: float | None
    disks: list[DiskForecast] = field(default_factory=list)


def _expected(points: Sequence[tuple[float, float]], at: float | None) -> float | None:
    """The next value: on the trend line at ``at`` when the values move, else (steady, too
    few points, or a line that would go below zero) the median of the last 5."""
    if not points:
        return None
    recent = median([p[1] for p in points[-5:]])
    moving = trend("value", points)
    fit = linear_fit(points)
    if at is None or moving is None or moving.direction == "stable" or fit is None:
        return recent
    slope, intercept = fit
    value = slope * at + intercept
    return value if value > 0 else recent


def disk_forecast(disk: DiskFacts, now: float) -> DiskForecast | None:
    if not disk.samples or disk.samples[-1][2] <= 0:
        return None
    _ts, used, total = disk.samples[-1]
    left = days_until_full(disk)
    return DiskForecast(
        disk.path, used / total * 100, left, iso(now + left * DAY) if left is not None else None
    )


def forecast(
    job: JobFacts,
    durations: list[tuple[float, float]],
    sizes: list[tuple[float, float]],
    now: float,
) -> Forecast:
    """Next run's time (schedule or learned interval), duration and size; disks' fill date."""
    backups = [r for r in job.runs if r.kind == "backup"]
    latest = backups[0] if backups else None
    state = JobState(
        paused=False,
        schedule=job.schedule,
        grace_s=job.grace_s,
        timeout_s=job.timeout_s,
        last_started_at=latest.started_at if latest else None,
        last_status=latest.status if latest else None,
        learned_interval_s=None
        if job.schedule
        else job.learned_interval_s or learned_interval(job),
        created_at=job.created_at,
    )
    due = next_due(state)
    next_at = None if due is None else max(due, now)  # an overdue run is expected now
    disks = [d for d in (disk_forecast(disk, now) for disk in job.disks) if d is not None]
    return Forecast(iso(next_at), _expected(durations, next_at), _expected(sizes, next_at), disks)


@dataclass
class Analysis:
    job: str
    period_s: float
    since: str | None
    runs: int
    failed: int
    duration_trend: Trend | None
    size_trend: Trend | None
    bottleneck: Bottleneck | None
    regressions: list[dict[str, Any]]
    forecast: Forecast
    recommendations: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _series(runs: Sequence[RunFacts], attr: str) -> list[tuple[float, float]]:
    """(start, value) of the successful runs that carry ``attr``, oldest first."""
    good = [r for r in runs if r.status == RunStatus.SUCCESS and getattr(r, attr) is not None]
    return sorted((r.started_at, float(getattr(r, attr))) for r in good)


def analyze(
    job: JobFacts,
    period_runs: Sequence[RunFacts],
    phase_totals: dict[str, tuple[float, int]],
    now: float,
    period_s: float,
) -> Analysis:
    """The whole analysis. ``job.runs`` is the recent history the alert rules look at (newest
    first); ``period_runs`` every run of the period; ``phase_totals`` the phases' time in the
    period's successful runs."""
    durations = _series(period_runs, "duration_s")
    sizes = _series(period_runs, "size_bytes")
    findings = [f for f in (rule(job, now) for rule in REGRESSION_RULES) if f is not None]
    result = Analysis(
        job=job.id,
        period_s=period_s,
        since=iso(now - period_s),
        runs=len(period_runs),
        failed=sum(1 for r in period_runs if r.status in BAD),
        duration_trend=trend("duration", durations),
        size_trend=trend("size", sizes),
        bottleneck=bottleneck(phase_totals),
        regressions=[asdict(f) for f in findings],
        forecast=forecast(job, durations, sizes, now),
        recommendations=[],
    )
    result.recommendations = recommendations(result, job.thresholds.forecast_days)
    return result


def recommendations(analysis: Analysis, forecast_days: float = 14) -> list[str]:
    """Plain sentences, most useful first, derived from the findings above."""
    out: list[str] = []
    a = analysis
    if a.failed:
        out.append(
            f"{a.failed} of {a.runs} runs failed in the period: "
            f"see `backwatch history {a.job} --status failed` for their messages."
        )
    for finding in a.regressions:
        out.append(f"{finding['message']}: look at what changed in the source or destination.")
    b = a.bottleneck
    if b is not None and b.share_percent >= BOTTLENECK_PERCENT:
        out.append(
            f"phase {b.phase} takes {b.share_percent:.0f} % of the time "
            f"({human_duration(b.total_s / max(b.runs, 1))} a run): speeding it up helps most."
        )
    d = a.duration_trend
    if d is not None and d.direction == "increasing":
        out.append(
            f"runs are getting slower: {d.change_percent:+.0f} % over the period "
            f"({human_duration(d.slope_per_day)} more each day)."
        )
    s = a.size_trend
    if s is not None and s.direction != "stable":
        verb = "grows" if s.direction == "increasing" else "shrinks"
        out.append(
            f"the backup {verb} by {human_bytes(abs(s.slope_per_day))} a day "
            f"({s.change_percent:+.0f} % over the period): check that this is expected."
        )
    for disk in a.forecast.disks:
        if disk.days_until_full is not None and disk.days_until_full < forecast_days:
            out.append(
                f"{disk.path} will be full in about {disk.days_until_full:.1f} days "
                f"({disk.used_percent:.0f} % used): free space or keep fewer snapshots."
            )
    return out
