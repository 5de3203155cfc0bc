"""Job health computed when read, and the schedules it is computed from (fixed ``now``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from backwatch.domain.health import Health, JobState, job_health, next_due, stuck_after
from backwatch.domain.schedule import parse_schedule

HOUR = 3600.0
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz=UTC) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def state(**kw) -> JobState:
    values = {
        "paused": False,
        "schedule": None,
        "grace_s": HOUR,
        "timeout_s": None,
        "last_started_at": None,
        "last_status": None,
    }
    values.update(kw)
    return JobState(**values)


DAILY_2AM = parse_schedule("0 2 * * *", "UTC")
LAST_RUN = at(2026, 5, 1, 2, 0, 5)  # the 02:00 run of 1 May
DUE = at(2026, 5, 2, 2, 0)  # the next one


class TestHealth:
    def test_new_job_without_runs(self):
        verdict = job_health(state(schedule=DAILY_2AM), now=LAST_RUN)
        assert verdict.health is Health.NEW
        assert verdict.next_due is None

    def test_ok_after_a_success_before_the_next_due_time(self):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="success")
        verdict = job_health(s, now=LAST_RUN + 10 * HOUR)
        assert verdict.health is Health.OK
        assert verdict.next_due == DUE

    @pytest.mark.parametrize("status", ["warning", "skipped"])
    def test_warning_and_skipped_count_as_ok(self, status):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status=status)
        assert job_health(s, now=LAST_RUN + HOUR).health is Health.OK

    def test_late_inside_the_grace_period(self):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="success")
        verdict = job_health(s, now=DUE + 30 * 60)
        assert verdict.health is Health.LATE
        assert verdict.next_due == DUE

    def test_exactly_at_due_time_is_still_ok(self):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="success")
        assert job_health(s, now=DUE).health is Health.OK

    def test_missed_after_due_time_plus_grace(self):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="success")
        assert job_health(s, now=DUE + HOUR - 1).health is Health.LATE
        verdict = job_health(s, now=DUE + HOUR + 1)
        assert verdict.health is Health.MISSED
        assert "grace" in verdict.reason

    def test_grace_is_taken_from_the_job(self):
        s = state(
            schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="success", grace_s=6 * HOUR
        )
        assert job_health(s, now=DUE + 5 * HOUR).health is Health.LATE

    @pytest.mark.parametrize("status", ["failed", "timed_out"])
    def test_failing_when_the_last_run_failed(self, status):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status=status)
        verdict = job_health(s, now=LAST_RUN + HOUR)
        assert verdict.health is Health.FAILING
        assert status in verdict.reason

    def test_running(self):
        s = state(last_started_at=LAST_RUN, last_status="running")
        assert job_health(s, now=LAST_RUN + 60).health is Health.RUNNING

    def test_queued_is_running_and_never_stuck(self):
        s = state(last_started_at=LAST_RUN, last_status="queued")
        assert job_health(s, now=LAST_RUN + 10 * HOUR).health is Health.RUNNING

    def test_stuck_after_the_default_15_minutes(self):
        s = state(last_started_at=LAST_RUN, last_status="running")
        assert job_health(s, now=LAST_RUN + 14 * 60).health is Health.RUNNING
        verdict = job_health(s, now=LAST_RUN + 16 * 60)
        assert verdict.health is Health.STUCK
        assert "900s" in verdict.reason

    def test_stuck_uses_three_times_the_median_duration(self):
        s = state(last_started_at=LAST_RUN, last_status="running", median_duration_s=HOUR)
        assert stuck_after(s, 15) == 3 * HOUR
        assert job_health(s, now=LAST_RUN + 2 * HOUR).health is Health.RUNNING
        assert job_health(s, now=LAST_RUN + 3 * HOUR + 1).health is Health.STUCK

    def test_stuck_uses_the_timeout_when_set(self):
        s = state(last_started_at=LAST_RUN, last_status="running", timeout_s=120)
        assert job_health(s, now=LAST_RUN + 121).health is Health.STUCK

    def test_stuck_minutes_setting(self):
        s = state(last_started_at=LAST_RUN, last_status="running")
        assert job_health(s, now=LAST_RUN + 6 * 60, stuck_minutes=5).health is Health.STUCK

    @pytest.mark.parametrize("status", [None, "success", "failed", "running"])
    def test_paused_wins_over_everything(self, status):
        s = state(
            paused=True,
            schedule=DAILY_2AM,
            last_started_at=LAST_RUN if status else None,
            last_status=status,
        )
        verdict = job_health(s, now=DUE + 10 * HOUR)
        assert verdict.health is Health.PAUSED
        assert verdict.next_due is None

    def test_no_schedule_stays_ok(self):
        s = state(last_started_at=LAST_RUN, last_status="success")
        verdict = job_health(s, now=LAST_RUN + 1000 * HOUR)
        assert verdict.health is Health.OK
        assert verdict.next_due is None

    def test_learned_interval_when_there_is_no_schedule(self):
        s = state(last_started_at=LAST_RUN, last_status="success", learned_interval_s=6 * HOUR)
        assert next_due(s) == LAST_RUN + 6 * HOUR
        assert job_health(s, now=LAST_RUN + 7.5 * HOUR).health is Health.MISSED

    def test_period_schedule(self):
        s = state(schedule=parse_schedule("24h"), last_started_at=LAST_RUN, last_status="success")
        assert next_due(s) == LAST_RUN + 24 * HOUR
        assert job_health(s, now=LAST_RUN + 24.5 * HOUR).health is Health.LATE
        assert job_health(s, now=LAST_RUN + 25.5 * HOUR).health is Health.MISSED


class TestSchedule:
    @pytest.mark.parametrize(
        ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("1h30m", 5400), ("2d", 172800)]
    )
    def test_periods(self, text, seconds):
        schedule = parse_schedule(text)
        assert schedule.kind == "period"
        assert schedule.next_after(1000.0) == 1000.0 + seconds

    @pytest.mark.parametrize("text", ["0 2 * * *", "*/15 * * * *", "@daily", "0 0 2 * * *"])
    def test_cron_expressions(self, text):
        assert parse_schedule(text).kind == "cron"

    @pytest.mark.parametrize("text", ["", "  ", "soon", "0 25 * * *", "61 * * * *", "0s"])
    def test_bad_schedules(self, text):
        with pytest.raises(ValueError):
            parse_schedule(text)

    def test_cron_in_a_time_zone(self):
        schedule = parse_schedule("0 2 * * *", "America/New_York")
        # 06:00 UTC on 1 May is 02:00 EDT: the next run is the following day's 02:00 EDT.
        assert schedule.next_after(at(2026, 5, 1, 6, 0, 5)) == at(2026, 5, 2, 6, 0)
        assert schedule.next_after(at(2026, 5, 1, 5, 0)) == at(2026, 5, 1, 6, 0)

    def test_next_is_strictly_after(self):
        schedule = parse_schedule("0 2 * * *")
        assert schedule.next_after(at(2026, 5, 1, 2, 0)) == at(2026, 5, 2, 2, 0)

    def test_spring_forward_in_berlin(self):
        # 29 March 2026: clocks jump from 02:00 CET to 03:00 CEST; the day has 23 hours.
        schedule = parse_schedule("0 3 * * *", "Europe/Berlin")
        last = at(2026, 3, 28, 3, 0, 5, tz=BERLIN)
        due = schedule.next_after(last)
        assert due == at(2026, 3, 29, 3, 0, tz=BERLIN)
        assert round((due - last + 5) / HOUR) == 23

    def test_fall_back_in_berlin(self):
        # 25 October 2026: clocks go back from 03:00 CEST to 02:00 CET; the day has 25 hours.
        schedule = parse_schedule("0 3 * * *", "Europe/Berlin")
        last = at(2026, 10, 24, 3, 0, 5, tz=BERLIN)
        due = schedule.next_after(last)
        assert due == at(2026, 10, 25, 3, 0, tz=BERLIN)
        assert round((due - last + 5) / HOUR) == 25

    def test_a_time_in_the_repeated_hour_is_due_once(self):
        # 02:30 happens twice on 25 October 2026 in Berlin. Cron runs the job once; health
        # must not expect it again an hour later (that would raise a false "missed").
        schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
        first = datetime(2026, 10, 25, 2, 30, 5, tzinfo=BERLIN, fold=0).timestamp()
        due = schedule.next_after(first)
        assert due == at(2026, 10, 26, 2, 30, tz=BERLIN)
        s = state(schedule=schedule, last_started_at=first, last_status="success")
        assert job_health(s, now=first + 3 * HOUR).health is Health.OK

    def test_a_time_in_the_skipped_hour_still_comes_due(self):
        # 02:30 does not exist on 29 March 2026 in Berlin; the run is due after the jump.
        schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
        last = at(2026, 3, 28, 2, 30, 5, tz=BERLIN)
        due = schedule.next_after(last)
        assert at(2026, 3, 29, 3, 0, tz=BERLIN) <= due <= at(2026, 3, 29, 3, 30, tz=BERLIN)

    def test_hourly_jobs_run_in_both_passes_of_the_repeated_hour(self):
        schedule = parse_schedule("15 * * * *", "Europe/Berlin")
        first = datetime(2026, 10, 25, 2, 15, 5, tzinfo=BERLIN, fold=0).timestamp()
        second = schedule.next_after(first)
        assert second == datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN, fold=1).timestamp()
        assert schedule.next_after(second + 5) == at(2026, 10, 25, 3, 15, tz=BERLIN)

    def test_previous_fire_time(self):
        schedule = parse_schedule("0 2 * * *", "Europe/Berlin")
        now = at(2026, 5, 3, 12, 0, tz=BERLIN)
        assert schedule.previous_at_or_before(now) == at(2026, 5, 3, 2, 0, tz=BERLIN)
        exact = at(2026, 5, 3, 2, 0, tz=BERLIN)
        assert schedule.previous_at_or_before(exact) == exact
        assert parse_schedule("24h").previous_at_or_before(now) is None


class TestNeverRanAndAlerts:
    """Issue 13: a declared job that never reports, open critical alerts, unknown outcomes."""

    DECLARED = at(2026, 5, 1, 12, 0)

    def test_a_scheduled_job_that_never_ran_is_due_from_its_declaration(self):
        s = state(schedule=DAILY_2AM, created_at=self.DECLARED)
        first_due = at(2026, 5, 2, 2, 0)
        verdict = job_health(s, now=self.DECLARED + HOUR)
        assert verdict.health is Health.NEW and verdict.next_due == first_due
        assert job_health(s, now=first_due + 30 * 60).health is Health.LATE
        missed = job_health(s, now=first_due + HOUR + 1)
        assert missed.health is Health.MISSED
        assert "declared" in missed.reason

    def test_a_period_schedule_counts_from_the_declaration_too(self):
        s = state(schedule=parse_schedule("24h"), created_at=self.DECLARED)
        assert next_due(s) == self.DECLARED + 24 * HOUR
        assert job_health(s, now=self.DECLARED + 25 * HOUR + 1).health is Health.MISSED

    def test_an_unscheduled_job_that_never_ran_stays_new(self):
        s = state(created_at=self.DECLARED)
        verdict = job_health(s, now=self.DECLARED + 1000 * HOUR)
        assert verdict.health is Health.NEW and verdict.next_due is None

    @pytest.mark.parametrize("alert_state", ["open", "acknowledged"])
    def test_an_open_critical_alert_is_never_ok(self, alert_state):
        from backwatch.domain.health import CriticalAlert

        alert = CriticalAlert("empty", alert_state, "nas: the run backed up 2.0% of the usual")
        s = state(
            schedule=DAILY_2AM,
            last_started_at=LAST_RUN,
            last_status="success",
            critical_alerts=(alert,),
        )
        verdict = job_health(s, now=LAST_RUN + HOUR)
        assert verdict.health is Health.FAILING
        assert f"{alert_state} critical alert empty" in verdict.reason
        assert "2.0%" in verdict.reason
        assert verdict.next_due == DUE

    def test_a_critical_alert_does_not_hide_a_more_telling_state(self):
        from backwatch.domain.health import CriticalAlert

        alert = (CriticalAlert("empty", "open"),)
        running = state(last_started_at=LAST_RUN, last_status="running", critical_alerts=alert)
        assert job_health(running, now=LAST_RUN + 60).health is Health.RUNNING
        paused = state(
            paused=True, last_started_at=LAST_RUN, last_status="success", critical_alerts=alert
        )
        assert job_health(paused, now=LAST_RUN + 60).health is Health.PAUSED

    def test_an_unknown_latest_backup_is_not_ok_and_says_why(self):
        s = state(
            schedule=DAILY_2AM,
            last_started_at=LAST_RUN,
            last_status="unknown",
            last_message="restic printed no summary",
        )
        verdict = job_health(s, now=LAST_RUN + HOUR)
        assert verdict.health is Health.UNKNOWN
        assert verdict.reason == "the latest backup's outcome is unknown: restic printed no summary"

    def test_an_unknown_backup_followed_by_silence_is_missed(self):
        s = state(schedule=DAILY_2AM, last_started_at=LAST_RUN, last_status="unknown")
        verdict = job_health(s, now=DUE + 2 * HOUR)
        assert verdict.health is Health.MISSED

    @pytest.mark.parametrize("rule", ["missed", "failed"])
    def test_alerts_of_what_health_judges_itself_do_not_override_it(self, rule):
        # the grace was raised, or a good run came in: health knows before the alert clears
        from backwatch.domain.health import CriticalAlert

        s = state(
            schedule=DAILY_2AM,
            last_started_at=LAST_RUN,
            last_status="success",
            critical_alerts=(CriticalAlert(rule, "open"),),
        )
        assert job_health(s, now=DUE + 30 * 60).health is Health.LATE
