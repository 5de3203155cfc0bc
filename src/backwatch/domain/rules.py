"""Alert rules (SPEC §8) as pure functions: facts and ``now`` in, a finding or None out.

Only backup runs (``kind == "backup"``) are the job's backups: ``failed``, ``missed``,
``empty``, ``size_anomaly``, ``duration_regression`` and ``error_rate`` read those alone.
Check and drill runs prove backups: when they fail they feed ``verify_failed``. ``stuck``
watches any running run.

A rule returns a ``Finding`` while its condition holds and ``None`` when it is clear; the
alert service opens an alert on the first finding (one per rule and job) and resolves it
when the rule answers None again. Messages say in plain words what is wrong, with the
numbers compared, so a notification can be read on a phone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from backwatch.domain.health import JobState, next_due, stuck_after
from backwatch.domain.lifecycle import BAD, GOOD, RunStatus
from backwatch.domain.schedule import Schedule
from backwatch.domain.stats import linear_fit, mad, median
from backwatch.domain.thresholds import Thresholds
from backwatch.timeutil import human_bytes, human_duration, iso

DAY = 86400.0


@dataclass(frozen=True)
class RunFacts:
    id: str
    status: str
    started_at: float
    finished_at: float | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    files: int | None = None
    message: str | None = None
    verify_failed: bool = False
    #: backup | check | drill (``lifecycle.RUN_KINDS``)
    kind: str = "backup"


@dataclass(frozen=True)
class DiskFacts:
    """One filesystem: where, and usage samples (time, used bytes, total bytes), oldest first."""

    path: str
    samples: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class WriteFacts:
    """backwatch's own writes that the database refused (store/writer.py ``WriteTrouble``)."""

    refused: int
    first_failed_at: float
    last_failed_at: float
    last_error: str
    failing: int  # in a row now; 0 once a write stored something again
    recovered_at: float | None = None


@dataclass(frozen=True)
class JobFacts:
    id: str
    paused: bool = False
    schedule: Schedule | None = None
    grace_s: float = 3600.0
    timeout_s: float | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    runs: tuple[RunFacts, ...] = ()  # newest first
    disks: tuple[DiskFacts, ...] = ()
    # Known from the job's stored snapshot when ``runs`` holds only the latest run (the
    # periodic check of time rules reads no run history): used instead of ``runs``.
    learned_interval_s: float | None = None
    median_duration_s: float | None = None
    #: when the job was declared: a scheduled job that never ran is due from here
    created_at: float | None = None
    #: refused writes, for backwatch itself (the ``_system`` job) only
    writes: WriteFacts | None = None
    #: restore drills: how long a job may go without a passed drill or check (None: the
    #: job is not drilled), the end of the latest one, and of the latest good backup
    drill_max_age_s: float | None = None
    last_verified_at: float | None = None
    last_success_at: float | None = None


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    run_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Rule = Callable[[JobFacts, float], Finding | None]


@dataclass(frozen=True)
class RuleSpec:
    name: str
    fn: Rule
    kind: str  # "run": evaluated on ingest; "time": on the periodic tick


RULES: dict[str, RuleSpec] = {}


def rule(name: str, kind: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        if name in RULES:
            raise ValueError(f"alert rule {name!r} registered twice")
        RULES[name] = RuleSpec(name, fn, kind)
        return fn

    return register


def _backups(job: JobFacts) -> list[RunFacts]:
    """The job's backup runs, newest first (checks and drills are not its backups)."""
    return [r for r in job.runs if r.kind == "backup"]


def _finished(job: JobFacts) -> list[RunFacts]:
    return [r for r in _backups(job) if r.status not in (RunStatus.RUNNING, RunStatus.QUEUED)]


def _successes(job: JobFacts) -> list[RunFacts]:
    return [r for r in _backups(job) if r.status == RunStatus.SUCCESS]


def _last_good(job: JobFacts) -> str:
    """When the latest good backup ended, from the job's snapshot (``last_success_at``) when
    there is one: so that a round over the job's runs and the time check over its snapshot
    say the same (else an alert's text would change back and forth between them)."""
    at = job.last_success_at
    if at is None:
        good = [r for r in _backups(job) if r.status in GOOD]
        at = (good[0].finished_at or good[0].started_at) if good else None
    return f"last good run ended {iso(at)}" if at is not None else "no good run on record"


#: a job's typical duration is the median of its latest this many successful runs
MEDIAN_OF_LAST = 20


def typical_duration(runs: tuple[RunFacts, ...] | list[RunFacts], kind: str) -> float | None:
    """The median duration of the latest ``MEDIAN_OF_LAST`` successful runs of ``kind``
    (sorted[n // 2]): for backups, what the job row keeps as ``median_duration_s``."""
    good = [r.duration_s for r in runs if r.kind == kind and r.status == RunStatus.SUCCESS]
    durations = sorted(d for d in good[:MEDIAN_OF_LAST] if d is not None)
    return durations[len(durations) // 2] if durations else None


@rule("failed", "run")
def failed(job: JobFacts, now: float) -> Finding | None:
    """The latest finished backup failed or timed out (after N in a row, if so configured):
    critical; or its outcome is ``unknown`` (its evidence does not show it worked): warning."""
    finished = _finished(job)
    need = max(1, job.thresholds.alert_after_failures)
    streak = 0
    for r in finished:
        if r.status in BAD:
            streak += 1
        else:
            break
    reason = f": {finished[0].message}" if finished and finished[0].message else ""
    if streak < need:
        if finished and finished[0].status == RunStatus.UNKNOWN:
            last = finished[0]
            return Finding(
                "failed",
                "warning",
                f"{job.id}: the outcome of the run of {iso(last.started_at)} is unknown"
                f"{reason or ' (the tool reported no evidence that it worked)'}; "
                f"{_last_good(job)}",
                run_id=last.id,
                detail={"status": "unknown"},
            )
        return None
    last = finished[0]
    what = "timed out" if last.status == RunStatus.TIMED_OUT else "failed"
    count = f" ({streak} in a row)" if streak > 1 else ""
    return Finding(
        "failed",
        "critical",
        f"{job.id}: the run of {iso(last.started_at)} {what}{count}{reason}; {_last_good(job)}",
        run_id=last.id,
        detail={"streak": streak},
    )


def learned_interval(job: JobFacts) -> float | None:
    """Median interval between backup starts, for unscheduled jobs with at least 5 backups."""
    starts = sorted(r.started_at for r in _backups(job))
    if len(starts) < 5:
        return None
    gaps = [b - a for a, b in pairwise(starts) if b > a]
    return median(gaps)


@rule("missed", "time")
def missed(job: JobFacts, now: float) -> Finding | None:
    """No backup started by the due time + grace (schedule, or the learned interval). A
    scheduled job that never ran is due one schedule step after it was declared."""
    if job.paused:
        return None
    backups = _backups(job)
    latest = backups[0] if backups else None
    interval = None
    if job.schedule is None:
        interval = job.learned_interval_s or learned_interval(job)
    if job.schedule is None and interval is None:
        return None
    state = JobState(
        paused=False,
        schedule=job.schedule,
        grace_s=job.grace_s,
        timeout_s=job.timeout_s,
        last_started_at=latest.started_at if latest else None,
        last_status=latest.status if latest else None,
        learned_interval_s=interval,
        created_at=job.created_at,
    )
    due = next_due(state)
    if due is None or now <= due + job.grace_s:
        return None
    basis = (
        f"schedule {job.schedule.expression!r}"
        if job.schedule
        else f"learned interval {human_duration(interval)}"
    )
    since = (
        f"no run since {iso(latest.started_at)}"
        if latest
        else f"no run reported since the job was declared {iso(job.created_at)}"
    )
    return Finding(
        "missed",
        "critical",
        f"{job.id}: {since}; one was due {iso(due)} "
        f"({basis}, grace {human_duration(job.grace_s)}); {_last_good(job)}",
        detail={"due": due, "last_started_at": latest.started_at if latest else None},
    )


@rule("stuck", "time")
def stuck(job: JobFacts, now: float) -> Finding | None:
    """Running longer than max(stuck_minutes, 3 × median duration), or the job's timeout."""
    running = [r for r in job.runs if r.status == RunStatus.RUNNING]
    if not running:
        return None
    run = running[0]
    # typical: of successful runs of the same kind (a check is not a backup); for a backup
    # the job row's median when known, as health's "stuck" reads it
    typical = typical_duration(job.runs, run.kind)
    if run.kind == "backup" and job.median_duration_s is not None:
        typical = job.median_duration_s
    state = JobState(
        paused=job.paused,
        schedule=None,
        grace_s=0,
        timeout_s=job.timeout_s,
        last_started_at=run.started_at,
        last_status=run.status,
        median_duration_s=typical,
    )
    limit = stuck_after(state, job.thresholds.stuck_minutes)
    elapsed = now - run.started_at
    if elapsed <= limit:
        return None
    # the text and detail hold no elapsed time: they would change on every tick
    return Finding(
        "stuck",
        "warning",
        f"{job.id}: running since {iso(run.started_at)}, longer than the "
        f"{human_duration(limit)} it should take",
        run_id=run.id,
        detail={"started_at": run.started_at, "limit_s": limit},
    )


def _saved_nothing(run: RunFacts) -> str | None:
    """'0 bytes' or '0 files' when the run measured that it saved nothing (null = unmeasured)."""
    if run.size_bytes == 0:
        return "0 bytes"
    if run.files == 0:
        return "0 files"
    return None


@rule("empty", "run")
def empty(job: JobFacts, now: float) -> Finding | None:
    """The latest good backup (success or warning) saved nothing (0 bytes or 0 files): a
    successful one always; one that ended with a warning when it is the first backup or
    earlier ones were not empty. Or it is below 10 % of the median size of the good backups
    before it."""
    good = [r for r in _backups(job) if r.status in (RunStatus.SUCCESS, RunStatus.WARNING)]
    if not good:
        return None
    last, before = good[0], good[1:]
    nothing = _saved_nothing(last)
    if nothing is not None:
        history = not before or any(_saved_nothing(r) is None for r in before)
        if last.status == RunStatus.SUCCESS or history:
            how = "succeeded" if last.status == RunStatus.SUCCESS else "ended with a warning"
            first = " (the job's first backup)" if not before else ""
            return Finding(
                "empty",
                "critical",
                f"{job.id}: the run of {iso(last.started_at)}{first} {how} but backed up {nothing}",
                run_id=last.id,
            )
        return None
    sizes = [r.size_bytes for r in before[:20] if r.size_bytes is not None]
    if last.size_bytes is None or len(sizes) < 3:
        return None
    base = median(sizes)
    if base and last.size_bytes < job.thresholds.empty_ratio * base:
        share = last.size_bytes / base * 100
        return Finding(
            "empty",
            "critical",
            f"{job.id}: the run of {iso(last.started_at)} backed up "
            f"{human_bytes(last.size_bytes)}, {share:.1f}% of the usual {human_bytes(base)} "
            f"(median of the last {len(sizes)} good runs)",
            run_id=last.id,
            detail={"size_bytes": last.size_bytes, "median_bytes": base},
        )
    return None


@rule("size_anomaly", "run")
def size_anomaly(job: JobFacts, now: float) -> Finding | None:
    """Size outside median ± 5 MAD of the 20 successes before the latest."""
    successes = _successes(job)
    if len(successes) < 6 or successes[0].size_bytes is None:
        return None
    last = successes[0]
    sizes = [float(r.size_bytes) for r in successes[1:21] if r.size_bytes is not None]
    if len(sizes) < 5:
        return None
    center = median(sizes)
    spread = mad(sizes)
    assert center is not None and spread is not None
    # A perfectly steady job has MAD 0: allow 1 % of the median so rounding does not alarm.
    band = job.thresholds.anomaly_mads * max(spread, 0.01 * center)
    size = float(last.size_bytes or 0)
    if abs(size - center) <= band:
        return None
    direction = "larger" if size > center else "smaller"
    return Finding(
        "size_anomaly",
        "warning",
        f"{job.id}: the run of {iso(last.started_at)} is {human_bytes(size)}, {direction} "
        f"than the usual {human_bytes(center)} ± {human_bytes(band)}",
        run_id=last.id,
        detail={"size_bytes": size, "median_bytes": center, "band_bytes": band},
    )


@rule("duration_regression", "run")
def duration_regression(job: JobFacts, now: float) -> Finding | None:
    """Median of the last 3 successful durations > (100 + N) % of the median of the 20 before."""
    durations = [r.duration_s for r in _successes(job) if r.duration_s is not None]
    if len(durations) < 3 + 5:
        return None
    recent = median(durations[:3])
    before = median(durations[3:23])
    if not recent or not before:
        return None
    limit = before * (1 + job.thresholds.regression_percent / 100)
    if recent <= limit:
        return None
    return Finding(
        "duration_regression",
        "warning",
        f"{job.id}: the last 3 runs took {human_duration(recent)} (median), "
        f"{(recent / before - 1) * 100:.0f}% longer than the {human_duration(before)} "
        f"of the {len(durations[3:23])} runs before",
        run_id=_successes(job)[0].id,
        detail={"recent_s": recent, "before_s": before},
    )


#: outcomes error_rate counts against a job: failures, and backups nobody can vouch for
NOT_SUCCEEDED = BAD | {RunStatus.UNKNOWN}
#: the window of error_rate: the one run rule whose finding moves with the clock alone, as
#: runs leave it (services/alerts ``clock_rule_jobs``)
ERROR_RATE_WINDOW_S = 7 * DAY


@rule("error_rate", "run")
def error_rate(job: JobFacts, now: float) -> Finding | None:
    """Backups over the last 7 days that failed or ended ``unknown``, above
    error_rate_percent (with at least 5 backups)."""
    week = [r for r in _finished(job) if r.started_at >= now - ERROR_RATE_WINDOW_S]
    if len(week) < job.thresholds.error_rate_min_runs:
        return None
    bad = sum(1 for r in week if r.status in NOT_SUCCEEDED)
    unknown = sum(1 for r in week if r.status == RunStatus.UNKNOWN)
    rate = bad / len(week) * 100
    if rate <= job.thresholds.error_rate_percent:
        return None
    of_which = f", {unknown} of them with an unknown outcome" if unknown else ""
    return Finding(
        "error_rate",
        "warning",
        f"{job.id}: {bad} of {len(week)} runs failed in the last 7 days{of_which} "
        f"({rate:.0f}%, threshold {job.thresholds.error_rate_percent:g}%)",
        detail={"failed": bad, "unknown": unknown, "runs": len(week), "rate_percent": rate},
    )


def days_until_full(
    disk: DiskFacts,
    *,
    min_span_s: float = Thresholds.forecast_min_span_s,
    min_samples: int = Thresholds.forecast_min_samples,
) -> float | None:
    """Days until the disk is full by a least-squares line through all its usage samples;
    None when usage is not growing or the history is too short to mean anything (fewer
    than ``min_samples`` samples, or spanning less than ``min_span_s``)."""
    if len(disk.samples) < max(2, min_samples):
        return None
    if disk.samples[-1][0] - disk.samples[0][0] < min_span_s:
        return None
    points = [(ts, used) for ts, used, _total in disk.samples]
    fit = linear_fit(points)
    if fit is None:
        return None
    slope, _intercept = fit
    if slope <= 0:
        return None
    _ts, used, total = disk.samples[-1]
    return max(0.0, total - used) / slope / DAY


@rule("disk_space", "time")
def disk_space(job: JobFacts, now: float) -> Finding | None:
    """A destination over the warning/critical share, or forecast to be full within 14 days."""
    worst: Finding | None = None
    for disk in job.disks:
        if not disk.samples:
            continue
        _ts, used, total = disk.samples[-1]
        if total <= 0:
            continue
        percent = used / total * 100
        t = job.thresholds
        left = days_until_full(
            disk, min_span_s=t.forecast_min_span_s, min_samples=t.forecast_min_samples
        )
        severity = None
        short = total - used < t.disk_min_free_bytes  # a floor: the data directory's
        if percent > t.disk_critical_percent or short:
            severity = "critical"
        elif percent > t.disk_warning_percent or (left is not None and left < t.forecast_days):
            severity = "warning"
        if severity is None:
            continue
        forecast = (
            f", full in about {left:.1f} days at the current rate" if left is not None else ""
        )
        if short:
            forecast += f", less than the {human_bytes(t.disk_min_free_bytes)} it must keep free"
        finding = Finding(
            "disk_space",
            severity,
            f"{job.id}: {disk.path} is {percent:.1f}% full "
            f"({human_bytes(total - used)} free of {human_bytes(total)}){forecast}",
            detail={"path": disk.path, "percent": percent, "days_until_full": left},
        )
        if worst is None or (severity == "critical" and worst.severity != "critical"):
            worst = finding
    return worst


@rule("store_unavailable", "time")
def store_unavailable(job: JobFacts, now: float) -> Finding | None:
    """backwatch's database refused writes (a full disk, a lost connection): reports were
    answered 503 and not stored. Held until it is on record, so a full disk, during which
    nothing can be written, is still reported once writing works again."""
    w = job.writes
    if w is None or w.refused < max(1, job.thresholds.refused_writes):
        return None
    if w.failing:
        what = f"writes fail since {iso(w.first_failed_at)}: {w.refused} refused"
    else:
        what = (
            f"{w.refused} writes were refused from {iso(w.first_failed_at)} to "
            f"{iso(w.last_failed_at)}; writing works again since {iso(w.recovered_at)}"
        )
    return Finding(
        "store_unavailable",
        "critical",
        f"{job.id}: {what} (the database said: {w.last_error}); "
        "those reports were answered 503 (the CLI and the shell library spool and resend them)",
        detail={"refused": w.refused, "failing": w.failing, "error": w.last_error},
    )


@rule("verify_failed", "run")
def verify_failed(job: JobFacts, now: float) -> Finding | None:
    """The latest verification failed: a check or drill run that failed, or a backup whose
    own verification failed. A later passing check or drill clears either; a later
    successful backup clears only a backup's own failed verification."""
    backup_since = False
    for r in job.runs:
        if r.verify_failed and not (backup_since and r.kind == "backup"):
            return Finding(
                "verify_failed",
                "critical",
                f"{job.id}: verification of {iso(r.started_at)} failed"
                + (f": {r.message}" if r.message else ""),
                run_id=r.id,
            )
        if r.status == RunStatus.SUCCESS:
            if r.kind != "backup":
                return None
            backup_since = True
    return None


@rule("drill_overdue", "time")
def drill_overdue(job: JobFacts, now: float) -> Finding | None:
    """A drilled job (``[jobs.drill]``, or one the server runs) whose backups nobody has
    proven restorable for ``[jobs.drill] max_age``: no passed drill or check since."""
    if job.drill_max_age_s is None or job.last_success_at is None:
        return None  # not drilled, or nothing backed up to drill yet
    since = job.last_verified_at if job.last_verified_at is not None else job.created_at
    if since is None or now - since <= job.drill_max_age_s:
        return None
    proven = (
        f"the last passed drill or check ended {iso(job.last_verified_at)}"
        if job.last_verified_at is not None
        else "no drill or check has ever passed"
    )
    return Finding(
        "drill_overdue",
        "warning",
        f"{job.id}: {proven}; a restore drill is due every "
        f"{human_duration(job.drill_max_age_s)} (run `backwatch drill {job.id}`)",
        detail={"last_verified_at": job.last_verified_at, "max_age_s": job.drill_max_age_s},
    )


def evaluate(job: JobFacts, now: float, kind: str | None = None) -> dict[str, Finding | None]:
    """Every rule (or those of one kind) → its finding, or None when its condition is clear."""
    if job.paused:
        return {name: None for name, spec in RULES.items() if kind in (None, spec.kind)}
    return {name: spec.fn(job, now) for name, spec in RULES.items() if kind in (None, spec.kind)}
