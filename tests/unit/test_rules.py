"""Alert rules at their edges, with a fixed clock (SPEC §8)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from backwatch.domain.rules import (
    RULES,
    DiskFacts,
    JobFacts,
    RunFacts,
    Thresholds,
    days_until_full,
    evaluate,
)
from backwatch.domain.schedule import parse_schedule

H = 3600.0
DAY = 86400.0
T0 = 1_780_000_000.0  # 2026-05-28


def runs(sizes=None, durations=None, statuses=None, every=DAY, start=T0):
    """Newest-first runs, one per ``every`` seconds, oldest at ``start``."""
    n = len(sizes or durations or statuses)
    out = []
    for i in range(n):
        out.append(
            RunFacts(
                id=f"r{i}",
                status=(statuses or ["success"] * n)[i],
                started_at=start + i * every,
                finished_at=start + i * every + 60,
                duration_s=(durations or [60.0] * n)[i],
                size_bytes=(sizes or [1_000_000] * n)[i],
                files=100,
            )
        )
    return tuple(reversed(out))


def fired(job, now, name):
    return RULES[name].fn(job, now)


def test_every_rule_of_the_spec_is_registered():
    assert set(RULES) == {
        "failed", "missed", "stuck", "empty", "size_anomaly",
        "duration_regression", "error_rate", "disk_space", "verify_failed",
    }  # fmt: skip


# failed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "after", "fires"),
    [
        (["success", "failed"], 1, True),
        (["failed", "success"], 1, False),
        (["success", "timed_out"], 1, True),
        (["success", "failed"], 2, False),
        (["failed", "failed"], 2, True),
        (["success", "warning"], 1, False),
    ],
)
def test_failed_fires_on_the_latest_failure_streak(statuses, after, fires):
    job = JobFacts(
        "db", runs=runs(statuses=statuses), thresholds=Thresholds(alert_after_failures=after)
    )
    finding = fired(job, T0 + 10 * DAY, "failed")
    assert (finding is not None) is fires
    if finding:
        assert finding.severity == "critical" and "db" in finding.message


# missed ---------------------------------------------------------------------------------


def berlin(*args):
    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


def test_missed_cron_job_across_the_spring_dst_change():
    # 02:30 daily does not exist on 2026-03-29 in Berlin; croniter moves it. The job ran on
    # the 28th; with 1 h grace it is missed only after the next real fire time + 1 h.
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    last = berlin(2026, 3, 28, 2, 30)
    job = JobFacts(
        "photos", schedule=schedule, grace_s=H, runs=runs(statuses=["success"], start=last)
    )
    due = schedule.next_after(last)
    assert due > last + 20 * H  # the next day, whatever the DST shift
    assert fired(job, due + H - 1, "missed") is None
    finding = fired(job, due + H + 1, "missed")
    assert finding is not None and finding.severity == "critical"
    assert "due" in finding.message


def test_missed_cron_job_across_the_autumn_dst_change_is_not_early():
    schedule = parse_schedule("0 2 * * *", "Europe/Berlin")
    last = berlin(2026, 10, 24, 2, 0)
    job = JobFacts(
        "photos", schedule=schedule, grace_s=H, runs=runs(statuses=["success"], start=last)
    )
    # 25 October has 25 hours: 24 h after the last run it is not yet due.
    assert fired(job, last + 24 * H + 30 * 60, "missed") is None
    assert fired(job, berlin(2026, 10, 25, 3, 1) + 1, "missed") is not None


def test_missed_with_a_period_schedule_and_grace():
    job = JobFacts(
        "x", schedule=parse_schedule("24h"), grace_s=2 * H, runs=runs(statuses=["success"])
    )
    assert fired(job, T0 + 26 * H - 1, "missed") is None
    assert fired(job, T0 + 26 * H + 1, "missed") is not None


def test_missed_learns_the_interval_of_an_unscheduled_job():
    job = JobFacts("x", grace_s=H, runs=runs(statuses=["success"] * 5, every=6 * H))
    last = job.runs[0].started_at
    assert fired(job, last + 7 * H - 1, "missed") is None
    finding = fired(job, last + 7 * H + 1, "missed")
    assert finding is not None and "learned interval" in finding.message
    # fewer than 5 runs: nothing to learn from, no alert
    few = JobFacts("x", grace_s=H, runs=runs(statuses=["success"] * 4, every=6 * H))
    assert fired(few, last + 100 * H, "missed") is None


def test_paused_job_never_alerts():
    job = JobFacts("x", paused=True, schedule=parse_schedule("1h"), runs=runs(statuses=["failed"]))
    assert all(f is None for f in evaluate(job, T0 + 100 * DAY).values())


# stuck ----------------------------------------------------------------------------------


def test_stuck_uses_fifteen_minutes_or_three_medians():
    history = list(runs(durations=[600.0] * 5))  # 10 min each → 3 × median = 30 min
    running = RunFacts("now", "running", started_at=T0 + 10 * DAY)
    job = JobFacts("x", runs=(running, *history))
    assert fired(job, running.started_at + 29 * 60, "stuck") is None
    assert fired(job, running.started_at + 31 * 60, "stuck") is not None
    short = JobFacts("x", runs=(running,))
    assert fired(short, running.started_at + 14 * 60, "stuck") is None
    assert fired(short, running.started_at + 16 * 60, "stuck") is not None


# empty and size anomalies ---------------------------------------------------------------


def test_empty_backup_after_twenty_normal_ones():
    sizes = [10_000_000_000] * 20 + [200_000_000]  # shrinks to 2 %
    job = JobFacts("nas", runs=runs(sizes=sizes))
    finding = fired(job, T0 + 30 * DAY, "empty")
    assert finding is not None and finding.severity == "critical"
    assert "2.0%" in finding.message


@pytest.mark.parametrize(("size", "files"), [(0, 10), (100, 0)])
def test_zero_size_or_zero_files_is_empty(size, files):
    run = RunFacts("r", "success", T0, size_bytes=size, files=files)
    assert fired(JobFacts("x", runs=(run,)), T0, "empty") is not None


def test_normal_backup_is_not_empty():
    job = JobFacts("nas", runs=runs(sizes=[10_000] * 20 + [9_000]))
    assert fired(job, T0 + 30 * DAY, "empty") is None


def test_size_anomaly_fires_on_a_jump_not_on_noise():
    noisy = [1_000_000 + (i % 5) * 10_000 for i in range(20)]
    assert fired(JobFacts("x", runs=runs(sizes=[*noisy, 1_020_000])), T0, "size_anomaly") is None
    finding = fired(JobFacts("x", runs=runs(sizes=[*noisy, 3_000_000])), T0, "size_anomaly")
    assert finding is not None and "larger" in finding.message


# duration regression ----------------------------------------------------------------------


def test_slow_drift_does_not_fire():
    durations = [600.0 * 1.01**i for i in range(23)]  # 1 % slower each run
    job = JobFacts("x", runs=runs(durations=durations))
    assert fired(job, T0 + 30 * DAY, "duration_regression") is None


def test_sudden_slowdown_fires():
    durations = [600.0] * 20 + [900.0, 910.0, 905.0]
    finding = fired(JobFacts("x", runs=runs(durations=durations)), T0, "duration_regression")
    assert finding is not None and "51% longer" in finding.message


def test_regression_threshold_comes_from_the_job():
    durations = [600.0] * 20 + [700.0] * 3  # +17 %
    assert fired(JobFacts("x", runs=runs(durations=durations)), T0, "duration_regression") is None
    strict = JobFacts(
        "x", runs=runs(durations=durations), thresholds=Thresholds(regression_percent=10)
    )
    assert fired(strict, T0, "duration_regression") is not None


# error rate -------------------------------------------------------------------------------


def test_error_rate_over_seven_days():
    statuses = ["success"] * 19 + ["failed"]  # 5 % exactly: not above
    job = JobFacts("x", runs=runs(statuses=statuses, every=H))
    now = job.runs[0].started_at + H
    assert fired(job, now, "error_rate") is None
    job2 = JobFacts("x", runs=runs(statuses=["success"] * 18 + ["failed"] * 2, every=H))
    assert fired(job2, now, "error_rate") is not None


# disk space -------------------------------------------------------------------------------


def disk(used_fractions, total=1000.0, every=DAY):
    return DiskFacts(
        "/mnt/nas", tuple((T0 + i * every, f * total, total) for i, f in enumerate(used_fractions))
    )


@pytest.mark.parametrize(
    ("fractions", "severity"),
    [([0.50, 0.50], None), ([0.86, 0.86], "warning"), ([0.96, 0.96], "critical")],
)
def test_disk_thresholds(fractions, severity):
    finding = fired(JobFacts("x", disks=(disk(fractions),)), T0, "disk_space")
    assert (finding.severity if finding else None) == severity


def test_disk_forecast_full_within_two_weeks_warns():
    growing = disk([0.50, 0.55, 0.60, 0.65, 0.70])  # +5 %/day → full in 6 days
    assert days_until_full(growing[0] if isinstance(growing, tuple) else growing) == pytest.approx(
        6.0
    )
    finding = fired(JobFacts("x", disks=(growing,)), T0, "disk_space")
    assert (
        finding is not None and finding.severity == "warning" and "full in about" in finding.message
    )
    slow = disk([0.50, 0.501, 0.502])
    assert fired(JobFacts("x", disks=(slow,)), T0, "disk_space") is None


def test_verify_failed_until_a_later_success():
    bad = RunFacts("v", "failed", T0, verify_failed=True, message="hash mismatch in a.txt")
    finding = fired(JobFacts("x", runs=(bad,)), T0, "verify_failed")
    assert finding is not None and "hash mismatch" in finding.message
    good = RunFacts("n", "success", T0 + DAY)
    assert fired(JobFacts("x", runs=(good, bad)), T0 + DAY, "verify_failed") is None
