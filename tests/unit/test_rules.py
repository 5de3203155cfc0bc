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
        "store_unavailable",  # backwatch's own writes refused (issue 14)
        "drill_overdue",  # no restore drill passed for [jobs.drill] max_age (issue 16)
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


# issue 13: outcome truth ------------------------------------------------------------------


def test_a_forecast_needs_a_day_of_history_not_two_samples():
    # a 10 % full disk, two samples five minutes apart with some growth: no forecast
    burst = DiskFacts("/mnt/nas", ((T0, 100.0, 1000.0), (T0 + 300, 101.0, 1000.0)))
    assert days_until_full(burst) is None
    assert fired(JobFacts("x", disks=(burst,)), T0 + 300, "disk_space") is None
    # many samples, but all within an hour: still no forecast
    hour = DiskFacts("/mnt/nas", tuple((T0 + i * 300, 100.0 + i, 1000.0) for i in range(12)))
    assert days_until_full(hour) is None
    # a day and more of samples: the fit over all of them
    days = disk([0.50, 0.55, 0.60, 0.65, 0.70])
    assert days_until_full(days) == pytest.approx(6.0)


def test_empty_fires_on_a_warning_run_that_saved_nothing_after_real_backups():
    history = runs(sizes=[1_000_000] * 5)
    zero = RunFacts("z", "warning", T0 + 10 * DAY, size_bytes=0, files=0)
    finding = fired(JobFacts("x", runs=(zero, *history)), T0 + 10 * DAY, "empty")
    assert finding is not None and finding.run_id == "z" and "warning" in finding.message
    no_files = RunFacts("z", "warning", T0 + 10 * DAY, size_bytes=None, files=0)
    assert fired(JobFacts("x", runs=(no_files, *history)), T0 + 10 * DAY, "empty") is not None


def test_empty_fires_on_a_first_run_that_saved_nothing():
    first = RunFacts("z", "warning", T0, size_bytes=0, files=0)
    finding = fired(JobFacts("x", runs=(first,)), T0, "empty")
    assert finding is not None and "first backup" in finding.message


def test_empty_ignores_warnings_of_a_job_that_always_saves_nothing():
    always = tuple(
        RunFacts(f"r{i}", "warning", T0 - i * DAY, size_bytes=0, files=0) for i in range(4)
    )
    assert fired(JobFacts("x", runs=always), T0, "empty") is None


def test_unmeasured_figures_are_not_empty():
    run = RunFacts("r", "success", T0, size_bytes=None, files=None)
    assert fired(JobFacts("x", runs=(run,)), T0, "empty") is None


def test_check_runs_are_not_backups():
    backups = runs(sizes=[10_000_000_000] * 20)
    check = RunFacts("c", "success", T0 + 30 * DAY, size_bytes=0, files=0, kind="check")
    job = JobFacts("x", runs=(check, *backups))
    for rule_name in ("empty", "size_anomaly", "duration_regression", "failed"):
        assert fired(job, T0 + 30 * DAY, rule_name) is None, rule_name
    failed_check = RunFacts(
        "c", "failed", T0 + 30 * DAY, kind="check", verify_failed=True, message="pack damaged"
    )
    job = JobFacts("x", runs=(failed_check, *backups))
    assert fired(job, T0 + 30 * DAY, "failed") is None
    finding = fired(job, T0 + 30 * DAY, "verify_failed")
    assert finding is not None and "pack damaged" in finding.message


def test_a_successful_backup_does_not_clear_a_failed_check():
    failed_check = RunFacts("c", "failed", T0, kind="check", verify_failed=True)
    backup = RunFacts("b", "success", T0 + DAY)
    job = JobFacts("x", runs=(backup, failed_check))
    assert fired(job, T0 + DAY, "verify_failed") is not None
    passed = RunFacts("c2", "success", T0 + 2 * DAY, kind="check")
    assert fired(JobFacts("x", runs=(passed, backup, failed_check)), T0, "verify_failed") is None


def test_missed_counts_only_backups():
    schedule = parse_schedule("24h")
    backup = RunFacts("b", "success", T0)
    check = RunFacts("c", "success", T0 + 20 * H, kind="check")
    job = JobFacts("x", schedule=schedule, grace_s=H, runs=(check, backup))
    finding = fired(job, T0 + 25 * H + 1, "missed")
    assert finding is not None and finding.detail["last_started_at"] == T0


def test_a_scheduled_job_that_never_ran_goes_missed_after_its_first_due_time():
    job = JobFacts("x", schedule=parse_schedule("0 2 * * *"), grace_s=H, created_at=T0)
    first_due = parse_schedule("0 2 * * *").next_after(T0)
    assert fired(job, first_due + H - 1, "missed") is None
    finding = fired(job, first_due + H + 1, "missed")
    assert finding is not None and "declared" in finding.message
    period = JobFacts("x", schedule=parse_schedule("24h"), grace_s=H, created_at=T0)
    assert fired(period, T0 + 25 * H - 1, "missed") is None
    assert fired(period, T0 + 25 * H + 1, "missed") is not None


def test_an_unknown_latest_backup_is_a_warning_naming_the_reason():
    history = runs(sizes=[1_000_000] * 3)
    unknown = RunFacts("u", "unknown", T0 + 5 * DAY, message="no summary line in the output")
    finding = fired(JobFacts("x", runs=(unknown, *history)), T0 + 5 * DAY, "failed")
    assert finding is not None and finding.severity == "warning" and finding.run_id == "u"
    assert "unknown" in finding.message and "no summary line" in finding.message


def test_unknown_counts_against_the_error_rate():
    statuses = ["success"] * 18 + ["unknown"] * 2
    job = JobFacts("x", runs=runs(statuses=statuses, every=H))
    finding = fired(job, job.runs[0].started_at + H, "error_rate")
    assert finding is not None and "unknown outcome" in finding.message


# drill_overdue ---------------------------------------------------------------------------


def test_a_drilled_job_without_a_passed_drill_for_max_age_warns():
    job = JobFacts("x", created_at=T0, drill_max_age_s=14 * DAY, last_success_at=T0 + DAY)
    assert fired(job, T0 + 13 * DAY, "drill_overdue") is None
    finding = fired(job, T0 + 15 * DAY, "drill_overdue")
    assert finding is not None and finding.severity == "warning"
    assert "no drill or check has ever passed" in finding.message
    proven = JobFacts("x", created_at=T0, drill_max_age_s=14 * DAY, last_success_at=T0,
                      last_verified_at=T0 + 10 * DAY)  # fmt: skip
    assert fired(proven, T0 + 15 * DAY, "drill_overdue") is None
    assert "ended" in fired(proven, T0 + 25 * DAY, "drill_overdue").message
    # not drilled, or nothing backed up yet: never overdue
    assert fired(JobFacts("x", created_at=T0), T0 + 99 * DAY, "drill_overdue") is None
    unbacked = JobFacts("x", created_at=T0, drill_max_age_s=DAY)
    assert fired(unbacked, T0 + 99 * DAY, "drill_overdue") is None
