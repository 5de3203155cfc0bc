"""Job health, computed when read from the job, its latest run and ``now``.

Nothing here is stored or kept in sync by a timer (Healthchecks' ``get_status(now)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backwatch.domain.lifecycle import BAD, RunStatus
from backwatch.domain.schedule import Schedule


class Health(StrEnum):
    NEW = "new"
    OK = "ok"
    RUNNING = "running"
    LATE = "late"
    MISSED = "missed"
    FAILING = "failing"
    STUCK = "stuck"
    PAUSED = "paused"


@dataclass(frozen=True)
class JobState:
    """What health needs to know about a job: its settings and its latest run."""

    paused: bool
    schedule: Schedule | None
    grace_s: float
    timeout_s: float | None
    last_started_at: float | None
    last_status: str | None
    median_duration_s: float | None = None
    learned_interval_s: float | None = None


@dataclass(frozen=True)
class HealthVerdict:
    health: Health
    next_due: float | None
    reason: str


def stuck_after(state: JobState, stuck_minutes: float) -> float:
    """Seconds a run may take before it is stuck: the timeout if set, else
    max(stuck_minutes, 3 × the median duration)."""
    if state.timeout_s:
        return state.timeout_s
    floor = stuck_minutes * 60
    if state.median_duration_s:
        return max(floor, 3 * state.median_duration_s)
    return floor


def next_due(state: JobState) -> float | None:
    """When the next run should start, from the schedule (or learned interval)."""
    if state.last_started_at is None:
        return None
    if state.schedule is not None:
        return state.schedule.next_after(state.last_started_at)
    if state.learned_interval_s:
        return state.last_started_at + state.learned_interval_s
    return None


def job_health(state: JobState, now: float, *, stuck_minutes: float = 15) -> HealthVerdict:
    due = next_due(state)
    if state.paused:
        return HealthVerdict(Health.PAUSED, None, "paused")
    if state.last_started_at is None or state.last_status is None:
        return HealthVerdict(Health.NEW, None, "no run reported yet")
    status = RunStatus(state.last_status)
    if status in (RunStatus.RUNNING, RunStatus.QUEUED):
        limit = stuck_after(state, stuck_minutes)
        elapsed = now - state.last_started_at
        if status is RunStatus.RUNNING and elapsed > limit:
            return HealthVerdict(
                Health.STUCK, due, f"running for {elapsed:.0f}s, longer than {limit:.0f}s"
            )
        return HealthVerdict(Health.RUNNING, due, f"{status.value} since {elapsed:.0f}s")
    if status in BAD:
        return HealthVerdict(Health.FAILING, due, f"last run {status.value}")
    if due is not None:
        if now > due + state.grace_s:
            return HealthVerdict(Health.MISSED, due, "no run started by due time + grace")
        if now > due:
            return HealthVerdict(Health.LATE, due, "due, inside the grace period")
    return HealthVerdict(Health.OK, due, f"last run {status.value}")
