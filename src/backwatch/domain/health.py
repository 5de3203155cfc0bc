"""Job health, computed when read from the job, its latest backup run, its open critical
alerts and ``now``.

Nothing here is stored or kept in sync by a timer (Healthchecks' ``get_status(now)``).

Precedence: ``paused``; then the latest backup run (``running``/``stuck``, ``failing``);
then ``missed`` (due + grace passed; a job that never ran is due one schedule step after it
was declared); ``unknown`` (the latest backup's outcome); ``late``; then ``ok`` — or
``new`` for a job with no run that is not due yet. An open or acknowledged *critical*
alert turns any of ``ok``, ``new``, ``late`` and ``unknown`` into ``failing`` and is named
in the reason: such a backup is not fine (alerts of rules health judges itself, such as
``missed`` and ``failed``, are left to health, which is fresher).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backwatch.domain.lifecycle import BAD, RunStatus
from backwatch.domain.schedule import Schedule
from backwatch.domain.thresholds import Thresholds
from backwatch.timeutil import iso


class Health(StrEnum):
    NEW = "new"
    OK = "ok"
    RUNNING = "running"
    LATE = "late"
    MISSED = "missed"
    FAILING = "failing"
    STUCK = "stuck"
    PAUSED = "paused"
    #: the latest backup ended ``unknown``: its evidence does not show that it worked
    UNKNOWN = "unknown"


#: states an open critical alert overrides: none of them would tell the user that
#: something is wrong as loudly as the alert does
ALERT_OVERRIDES = frozenset({Health.OK, Health.NEW, Health.LATE, Health.UNKNOWN})
#: rules whose condition health judges first-hand from the latest run and the schedule,
#: fresher than the alert (which clears on the next evaluation): a ``missed`` alert must
#: not call a job failing after its grace was raised, nor ``failed`` after a good run
SEEN_BY_HEALTH = frozenset({"missed", "failed", "stuck"})


@dataclass(frozen=True)
class CriticalAlert:
    """An open or acknowledged critical alert of the job, as health names it."""

    rule: str
    state: str  # open | acknowledged
    message: str = ""


@dataclass(frozen=True)
class JobState:
    """What health needs to know about a job: its settings and its latest backup run."""

    paused: bool
    schedule: Schedule | None
    grace_s: float
    timeout_s: float | None
    last_started_at: float | None
    last_status: str | None
    median_duration_s: float | None = None
    learned_interval_s: float | None = None
    #: when the job was declared: a scheduled job that never ran is due from here
    created_at: float | None = None
    #: the latest backup run's message (read for an ``unknown`` one, to say why)
    last_message: str | None = None
    critical_alerts: tuple[CriticalAlert, ...] = ()


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
    """When the next backup should start: from the latest start by the schedule (or the
    learned interval); for a scheduled job that never ran, from when it was declared."""
    if state.last_started_at is None:
        if state.schedule is None or state.created_at is None:
            return None
        return state.schedule.next_after(state.created_at)
    if state.schedule is not None:
        return state.schedule.next_after(state.last_started_at)
    if state.learned_interval_s:
        return state.last_started_at + state.learned_interval_s
    return None


def alerts_reason(alerts: tuple[CriticalAlert, ...]) -> str:
    """'open critical alert empty: …; acknowledged critical alert verify_failed: …'."""
    parts = []
    for alert in alerts:
        state = "acknowledged" if alert.state == "acknowledged" else "open"
        text = f"{state} critical alert {alert.rule}"
        parts.append(f"{text}: {alert.message}" if alert.message else text)
    return "; ".join(parts)


def job_health(
    state: JobState, now: float, *, stuck_minutes: float = Thresholds.stuck_minutes
) -> HealthVerdict:
    """The job's health as of ``now`` (see the module docstring for the precedence)."""
    if state.paused:
        return HealthVerdict(Health.PAUSED, None, "paused")
    verdict = _run_health(state, now, stuck_minutes)
    alerts = tuple(a for a in state.critical_alerts if a.rule not in SEEN_BY_HEALTH)
    if alerts and verdict.health in ALERT_OVERRIDES:
        return HealthVerdict(Health.FAILING, verdict.next_due, alerts_reason(alerts))
    return verdict


def _run_health(state: JobState, now: float, stuck_minutes: float) -> HealthVerdict:
    due = next_due(state)
    if state.last_started_at is None or state.last_status is None:
        return _never_ran(state, due, now)
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
    if due is not None and now > due + state.grace_s:
        return HealthVerdict(Health.MISSED, due, "no run started by due time + grace")
    if status is RunStatus.UNKNOWN:
        why = f": {state.last_message}" if state.last_message else ""
        return HealthVerdict(Health.UNKNOWN, due, f"the latest backup's outcome is unknown{why}")
    if due is not None and now > due:
        return HealthVerdict(Health.LATE, due, "due, inside the grace period")
    return HealthVerdict(Health.OK, due, f"last run {status.value}")


def _never_ran(state: JobState, due: float | None, now: float) -> HealthVerdict:
    """A job without a backup run: new until its first due time, then late and missed."""
    if due is None:
        return HealthVerdict(Health.NEW, None, "no run reported yet")
    if now > due + state.grace_s:
        return HealthVerdict(
            Health.MISSED,
            due,
            f"no run reported since the job was declared; the first was due {iso(due)} "
            "and the grace has passed",
        )
    if now > due:
        return HealthVerdict(Health.LATE, due, f"first run due {iso(due)}, inside the grace")
    return HealthVerdict(Health.NEW, due, f"no run reported yet; the first is due {iso(due)}")
