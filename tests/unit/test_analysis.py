"""The performance analysis (domain/analysis.py) at its edges, with a fixed clock."""

from __future__ import annotations

import pytest

from backwatch.domain.analysis import (
    Analysis,
    Bottleneck,
    DiskForecast,
    Forecast,
    Trend,
    analyze,
    bottleneck,
    forecast,
    parse_period,
    recommendations,
    trend,
)
from backwatch.domain.rules import DiskFacts, JobFacts, RunFacts
from backwatch.domain.schedule import parse_schedule

DAY = 86400.0
T0 = 1_780_000_000.0


def history(durations, sizes=None, statuses=None, every=DAY):
    """Newest-first runs, one a day, the oldest first in the lists given."""
    n = len(durations)
    runs = [
        RunFacts(
            id=f"r{i}",
            status=(statuses or ["success"] * n)[i],
            started_at=T0 + i * every,
            duration_s=durations[i],
            size_bytes=(sizes or [1000] * n)[i],
            files=10,
        )
        for i in range(n)
    ]
    return tuple(reversed(runs))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600.0), ("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY), ("730d", 730 * DAY)],
)
def test_periods_accepted(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize(
    ("text", "problem"),
    [("59m", "between 1h and 730d"), ("731d", "between 1h and 730d"), ("soon", "such as 24h"),
     ("", "such as 24h"), ("-7d", "such as 24h")],
)  # fmt: skip
def test_periods_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_period(text)


@pytest.mark.parametrize(
    ("values", "direction"),
    [
        ([100, 100, 100, 100], "stable"),
        ([100, 102, 104, 106], "stable"),  # +6 %, under the 10 % that counts as a change
        ([100, 120, 140, 160], "increasing"),
        ([160, 140, 120, 100], "decreasing"),
    ],
)
def test_trend_direction(values: list[float], direction: str) -> None:
    result = trend("duration", [(T0 + i * DAY, v) for i, v in enumerate(values)])
    assert result is not None and result.direction == direction
    assert result.points == len(values)


def test_trend_slope_is_per_day() -> None:
    result = trend("size", [(T0 + i * DAY, 1000 + 50 * i) for i in range(5)])
    assert result is not None and result.slope_per_day == pytest.approx(50)
    assert result.change_percent == pytest.approx(20.0)  # 1000 → 1200 over the period


@pytest.mark.parametrize(
    "values",
    [
        [312, 2.1, 2.3, 0.5],  # the README's tour: one long run, then a few seconds each
        [1000, 10, 5, 1, 0],
        [5000, 4000, 10, 10, 10, 10],
    ],
)
def test_a_fall_is_never_more_than_100_percent(values: list[float]) -> None:
    result = trend("duration", [(T0 + i * 60, v) for i, v in enumerate(values)])
    assert result is not None and result.direction == "decreasing"
    assert -100.0 <= result.change_percent < -10.0


def test_a_rise_from_zero_is_measured_against_the_average() -> None:
    result = trend("size", [(T0 + i * DAY, v) for i, v in enumerate([0, 0, 0, 900])])
    assert result is not None and result.direction == "increasing"
    assert result.change_percent > 0


@pytest.mark.parametrize(
    "points",
    [[], [(T0, 1.0), (T0 + DAY, 2.0)], [(T0, 1.0), (T0, 2.0), (T0, 3.0)]],
    ids=["none", "two points", "one instant"],
)
def test_trend_needs_three_points_spread_in_time(points: list[tuple[float, float]]) -> None:
    assert trend("duration", points) is None


def test_trend_of_zero_average_is_stable() -> None:
    result = trend("size", [(T0 + i * DAY, 0.0) for i in range(3)])
    assert result is not None and result.direction == "stable"


def test_bottleneck_is_the_largest_share() -> None:
    found = bottleneck({"dump": (30.0, 3), "upload": (70.0, 3), "prune": (0.0, 3)})
    assert found == Bottleneck("upload", pytest.approx(70.0), 70.0, 3)


@pytest.mark.parametrize(
    "totals", [{}, {"dump": (0.0, 2)}], ids=["no phases", "phases without time"]
)
def test_no_bottleneck_without_timed_phases(totals: dict) -> None:
    assert bottleneck(totals) is None


def test_bottleneck_tie_is_decided_by_name() -> None:
    found = bottleneck({"a": (5.0, 1), "b": (5.0, 1)})
    assert found is not None and found.phase == "b" and found.share_percent == 50.0


def test_forecast_follows_a_moving_line_to_the_next_scheduled_run() -> None:
    runs = history([100, 110, 120, 130, 140])
    job = JobFacts(id="j", schedule=parse_schedule("1d"), runs=runs)
    points = [(r.started_at, r.duration_s) for r in reversed(runs)]
    now = runs[0].started_at + 3600
    result = forecast(job, points, [], now)
    assert result.next_run_at is not None
    assert result.duration_s == pytest.approx(150)  # one day after the last at +10 a day
    assert result.size_bytes is None


def test_forecast_of_a_steady_job_is_the_recent_median() -> None:
    runs = history([100, 101, 99, 100, 100])
    job = JobFacts(id="j", runs=runs)
    points = [(r.started_at, r.duration_s) for r in reversed(runs)]
    assert forecast(job, points, [], runs[0].started_at).duration_s == 100


def test_forecast_never_goes_below_zero() -> None:
    runs = history([400, 300, 200, 100, 10])
    job = JobFacts(id="j", schedule=parse_schedule("30d"), runs=runs)
    points = [(r.started_at, r.duration_s) for r in reversed(runs)]
    assert forecast(job, points, [], runs[0].started_at).duration_s == 200  # median of 5


def test_forecast_without_runs_or_schedule() -> None:
    result = forecast(JobFacts(id="j"), [], [], T0)
    assert result == Forecast(None, None, None, [])


def test_forecast_of_a_filling_disk() -> None:
    # five daily samples (a forecast needs ≥ 5 over ≥ 24 h): 70 used, +5/day
    samples = tuple((T0 + i * DAY, 50.0 + 5 * i, 100.0) for i in range(5))
    job = JobFacts(id="j", disks=(DiskFacts("/backups", samples),))
    now = T0 + 4 * DAY
    (disk,) = forecast(job, [], [], now).disks
    assert disk.path == "/backups" and disk.used_percent == 70.0
    assert disk.days_until_full == pytest.approx(6.0)
    assert disk.full_at is not None and disk.full_at.startswith("2026-06-07")


def test_forecast_of_a_steady_disk_has_no_date() -> None:
    samples = ((T0, 50.0, 100.0), (T0 + DAY, 50.0, 100.0))
    (disk,) = forecast(JobFacts(id="j", disks=(DiskFacts("/b", samples),)), [], [], T0).disks
    assert disk.days_until_full is None and disk.full_at is None


def test_analyze_reports_the_alert_rules_regression() -> None:
    durations = [100.0] * 10 + [200.0] * 3  # the duration_regression rule's own case
    runs = history(durations)
    now = runs[0].started_at + 60
    result = analyze(JobFacts(id="j", runs=runs), runs, {"upload": (90.0, 1)}, now, 30 * DAY)
    assert [r["rule"] for r in result.regressions] == ["duration_regression"]
    assert result.runs == 13 and result.failed == 0
    assert result.duration_trend is not None and result.duration_trend.direction == "increasing"
    assert result.bottleneck is not None and result.bottleneck.share_percent == 100.0
    assert any("longer than" in line for line in result.recommendations)
    assert result.to_dict()["bottleneck"]["phase"] == "upload"


def test_analyze_counts_failures_and_trends_successes_only() -> None:
    runs = history([100, 5, 100, 100], statuses=["success", "failed", "success", "success"])
    now = runs[0].started_at
    result = analyze(JobFacts(id="j", runs=runs), runs, {}, now, 7 * DAY)
    assert result.failed == 1
    assert result.duration_trend is not None and result.duration_trend.points == 3
    assert result.duration_trend.direction == "stable"
    assert result.bottleneck is None and result.regressions == []


def _analysis(**changes) -> Analysis:
    base = dict(
        job="j", period_s=DAY, since=None, runs=10, failed=0, duration_trend=None,
        size_trend=None, bottleneck=None, regressions=[], forecast=Forecast(None, None, None),
        recommendations=[],
    )  # fmt: skip
    return Analysis(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"failed": 2}, ["2 of 10 runs failed in the period"]),
        ({"bottleneck": Bottleneck("upload", 70.0, 700.0, 10)},
         ["phase upload takes 70 % of the time (1m10s a run)"]),
        ({"bottleneck": Bottleneck("upload", 49.9, 499.0, 10)}, []),
        ({"bottleneck": Bottleneck("upload", 50.0, 500.0, 10)}, ["phase upload takes 50 %"]),
        ({"duration_trend": Trend("duration", 5, 30.0, 25.0, "increasing")},
         ["runs are getting slower: +25 %"]),
        ({"duration_trend": Trend("duration", 5, -30.0, -25.0, "decreasing")}, []),
        ({"size_trend": Trend("size", 5, -1024.0, -20.0, "decreasing")},
         ["the backup shrinks by 1.0 KB a day"]),
        ({"size_trend": Trend("size", 5, 1.0, 1.0, "stable")}, []),
        ({"forecast": Forecast(None, None, None, [DiskForecast("/b", 90.0, 3.0, "x")])},
         ["/b will be full in about 3.0 days"]),
        ({"forecast": Forecast(None, None, None, [DiskForecast("/b", 90.0, 14.0, "x")])}, []),
        ({"regressions": [{"message": "j: slower"}]}, ["j: slower: look at what changed"]),
    ],
)  # fmt: skip
def test_recommendations(changes: dict, expected: list[str]) -> None:
    lines = recommendations(_analysis(**changes), forecast_days=14)
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), line
