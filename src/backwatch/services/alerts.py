"""Alerts: evaluate the rules, keep one open alert per rule and job, queue notifications.

Lifecycle: open → acknowledged → resolved. An alert resolves by itself when its rule
answers "clear"; acknowledged alerts are not re-notified; open ones are re-notified every
``[alerts] renotify``. Notifications are rows in the ``deliveries`` outbox, sent by the
notifier (services/notifier.py) — never from inside the transaction that caused them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Connection, select, update

from backwatch.domain.health import Health
from backwatch.domain.lifecycle import BAD
from backwatch.domain.rules import (
    DiskFacts,
    Finding,
    JobFacts,
    RunFacts,
    Thresholds,
    learned_interval,
)
from backwatch.domain.rules import evaluate as evaluate_rules
from backwatch.errors import Conflict, InvalidInput, NotFound
from backwatch.job_settings import drill_max_age
from backwatch.notify.render import render
from backwatch.notify.transport import channel
from backwatch.services.unit import WriteUnit
from backwatch.services.views import job_verdict
from backwatch.settings import JobSettings, Settings
from backwatch.store import tables as t
from backwatch.timeutil import iso, parse_duration

SYSTEM_JOB = "_system"  # alerts about backwatch itself (its data directory's disk)
RUN_HISTORY = 50
DISK_HISTORY_S = 14 * 86400
ACTIVE = ("open", "acknowledged")


def thresholds_for(settings: Settings, job: JobSettings | None) -> Thresholds:
    a = settings.alerts
    values: dict[str, Any] = {
        "stuck_minutes": a.stuck_minutes,
        "regression_percent": a.regression_percent,
        "error_rate_percent": a.error_rate_percent,
        "disk_warning_percent": a.disk_warning_percent,
        "disk_critical_percent": a.disk_critical_percent,
        "alert_after_failures": a.alert_after_failures,
    }
    if job is not None:
        for key, value in job.alerts.model_dump(exclude={"off"}).items():
            if value is not None:
                values[key] = value
    return Thresholds(**values)


def _configured(settings: Settings) -> dict[str, JobSettings]:
    return {job.id: job for job in settings.jobs}


def _run_facts(row: Any) -> RunFacts:
    stats = row.stats if isinstance(row.stats, dict) else {}
    kind = row.kind or "backup"
    # a failed check or drill is a failed verification (never a failed backup)
    verify_failed = stats.get("verify") == "failed" or (
        (row.trigger == "verify" or kind != "backup") and row.status in BAD
    )
    return RunFacts(
        id=row.id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        size_bytes=row.size_bytes,
        files=row.files,
        message=row.message,
        verify_failed=verify_failed,
        kind=kind,
    )


def disk_facts(conn: Connection, paths: list[str], now: float) -> tuple[DiskFacts, ...]:
    out = []
    for path in paths:
        rows = conn.execute(
            select(t.disk_samples.c.at, t.disk_samples.c.used_bytes, t.disk_samples.c.total_bytes)
            .where(t.disk_samples.c.path == path, t.disk_samples.c.at >= now - DISK_HISTORY_S)
            .order_by(t.disk_samples.c.at)
        ).all()
        if rows:
            out.append(DiskFacts(path, tuple((r[0], float(r[1]), float(r[2])) for r in rows)))
    return tuple(out)


def job_facts(conn: Connection, job: dict[str, Any], settings: Settings, now: float) -> JobFacts:
    r = t.runs
    rows = conn.execute(
        select(
            r.c.id,
            r.c.status,
            r.c.started_at,
            r.c.finished_at,
            r.c.duration_s,
            r.c.size_bytes,
            r.c.files,
            r.c.message,
            r.c.stats,
            r.c.trigger,
            r.c.kind,
        )
        .where(r.c.job == job["id"])
        .order_by(r.c.started_at.desc())
        .limit(RUN_HISTORY)
    ).all()
    return _facts(conn, job, settings, now, tuple(_run_facts(row) for row in rows))


def snapshot_facts(
    conn: Connection, job: dict[str, Any], settings: Settings, now: float
) -> JobFacts:
    """Facts for the time-based rules from the job row alone: its latest run, learned
    interval and median duration are kept there, so checking 500 jobs every 30 s reads no
    run history (and does not hold up the requests served meanwhile)."""
    latest: tuple[RunFacts, ...] = ()
    if job.get("last_run_id"):
        latest = (
            RunFacts(
                id=job["last_run_id"],
                status=job["last_status"],
                started_at=job["last_started_at"],
                finished_at=job.get("last_finished_at"),
                duration_s=job.get("last_duration_s"),
                size_bytes=job.get("last_size_bytes"),
            ),
        )
    return _facts(
        conn,
        job,
        settings,
        now,
        latest,
        learned_interval_s=job.get("learned_interval_s"),
        median_duration_s=job.get("median_duration_s"),
    )


def _facts(
    conn: Connection,
    job: dict[str, Any],
    settings: Settings,
    now: float,
    runs: tuple[RunFacts, ...],
    *,
    learned_interval_s: float | None = None,
    median_duration_s: float | None = None,
) -> JobFacts:
    """A job's facts from its row and configuration, with ``runs`` (and what was learned)."""
    from backwatch.services.views import _schedule

    configured = _configured(settings).get(job["id"])
    destinations = list(configured.destinations) if configured else []
    return JobFacts(
        id=job["id"],
        paused=bool(job["paused"]),
        schedule=_schedule(job),
        grace_s=job.get("grace_s") or 0.0,
        timeout_s=job.get("timeout_s"),
        thresholds=thresholds_for(settings, configured),
        runs=runs,
        disks=disk_facts(conn, destinations, now) if destinations else (),
        learned_interval_s=learned_interval_s,
        median_duration_s=median_duration_s,
        created_at=job.get("created_at"),
        drill_max_age_s=drill_max_age(configured) if configured else None,
        last_verified_at=job.get("last_verified_at"),
        last_success_at=job.get("last_success_at"),
    )


def in_maintenance(job: JobSettings | None, now: float, tz: str = "UTC") -> bool:
    if job is None:
        return False
    for window in job.maintenance:
        start = croniter(window.start, datetime.fromtimestamp(now + 0.001, ZoneInfo(tz)))
        began = float(start.get_prev(datetime).timestamp())
        if now < began + parse_duration(window.duration):
            return True
    return False


def failing_parent(
    conn: Connection, job: JobSettings | None, settings: Settings, now: float
) -> str | None:
    """The first parent (``depends_on``) that is failing or missed, if any."""
    if job is None or not job.depends_on:
        return None
    rows = conn.execute(select(t.jobs).where(t.jobs.c.id.in_(job.depends_on))).mappings()
    for row in rows:
        verdict = job_verdict(dict(row), now, stuck_minutes=settings.alerts.stuck_minutes)
        if verdict.health in (Health.FAILING, Health.MISSED):
            return str(row["id"])
    return None


def snoozed_until(conn: Connection, job_id: str) -> float | None:
    return conn.execute(
        select(t.job_alert_state.c.snoozed_until).where(t.job_alert_state.c.job == job_id)
    ).scalar()


class Evaluator:
    """Applies rule findings to the alerts table inside one write transaction."""

    def __init__(self, conn: Connection, unit: WriteUnit, settings: Settings, now: float) -> None:
        self.conn = conn
        self.unit = unit
        self.settings = settings
        self.now = now
        self.configured = _configured(settings)

    def apply(self, job_id: str, rule_name: str, finding: Finding | None) -> None:
        a = t.alerts
        fingerprint = f"{rule_name}:{job_id}"
        current = (
            self.conn.execute(
                select(a).where(a.c.fingerprint == fingerprint, a.c.state.in_(ACTIVE))
            )
            .mappings()
            .first()
        )
        if current is None and finding is None:
            return
        if current is None:
            assert finding is not None
            self._open(job_id, fingerprint, finding)
        elif finding is None:
            self._resolve(dict(current), actor="auto", kind="auto_resolve")
        else:
            self._refresh(dict(current), finding)

    def _suppression(self, job_id: str) -> str | None:
        """Why notifications for this job are held back now, or None."""
        configured = self.configured.get(job_id)
        until = snoozed_until(self.conn, job_id)
        if until is not None and until > self.now:
            return f"snoozed until {iso(until)}"
        if in_maintenance(configured, self.now):
            return "maintenance window"
        parent = failing_parent(self.conn, configured, self.settings, self.now)
        if parent:
            return f"parent:{parent}"
        return None

    def _open(self, job_id: str, fingerprint: str, finding: Finding) -> None:
        suppressed = self._suppression(job_id)
        row = {
            "fingerprint": fingerprint,
            "rule": finding.rule,
            "job": job_id,
            "run_id": finding.run_id,
            "severity": finding.severity,
            "state": "open",
            "message": finding.message,
            "detail": finding.detail or None,
            "opened_at": self.now,
            "updated_at": self.now,
            "suppressed_by": suppressed,
        }
        key = self.conn.execute(t.alerts.insert().values(**row)).inserted_primary_key
        assert key is not None
        alert_id = key[0]
        row["id"] = alert_id
        self.unit.event(
            at=self.now,
            kind="alert",
            entity="alert",
            entity_id=str(alert_id),
            job=job_id,
            to_state="open",
            actor="rules",
            detail={"rule": finding.rule, "severity": finding.severity},
        )
        self.unit.changes.append(
            {"type": "alert", "id": alert_id, "job": job_id, "state": "open", "rule": finding.rule}
        )
        if suppressed is None:
            self.enqueue(row, "open")

    def _refresh(self, current: dict[str, Any], finding: Finding) -> None:
        changes: dict[str, Any] = {}
        if finding.message != current["message"]:
            changes["message"] = finding.message
        if finding.run_id != current["run_id"]:
            changes["run_id"] = finding.run_id
        if (finding.detail or None) != current.get("detail"):
            changes["detail"] = finding.detail or None
        escalated = current["severity"] == "warning" and finding.severity == "critical"
        if finding.severity != current["severity"]:
            changes["severity"] = finding.severity
        if not changes:
            return
        changes["updated_at"] = self.now
        self.conn.execute(update(t.alerts).where(t.alerts.c.id == current["id"]).values(**changes))
        if escalated and current["state"] == "open" and not current["suppressed_by"]:
            self.enqueue({**current, **changes}, "open")

    def _resolve(self, current: dict[str, Any], *, actor: str, kind: str) -> None:
        self.conn.execute(
            update(t.alerts)
            .where(t.alerts.c.id == current["id"])
            .values(state="resolved", resolved_at=self.now, resolved_by=actor, updated_at=self.now)
        )
        self.unit.event(
            at=self.now,
            kind=kind,
            entity="alert",
            entity_id=str(current["id"]),
            job=current["job"],
            from_state=current["state"],
            to_state="resolved",
            actor=actor,
            detail={"rule": current["rule"]},
        )
        self.unit.changes.append(
            {
                "type": "alert",
                "id": current["id"],
                "job": current["job"],
                "state": "resolved",
                "rule": current["rule"],
            }
        )
        if current["last_notified_at"] is not None:
            self.enqueue(current, "resolve")

    def enqueue(self, alert: dict[str, Any], event: str) -> int:
        """Queue one delivery per matching channel; returns how many."""
        children = self._held_children(alert["job"]) if event != "resolve" else []
        title, body = render(alert, event, self.settings.server.base_url, children)
        severity = "resolved" if event == "resolve" else alert["severity"]
        queued = 0
        for target in self.settings.notify:
            if alert["severity"] not in target.severities:
                continue
            if target.jobs and alert["job"] not in target.jobs:
                continue
            wanted = "resolve" if event == "resolve" else "open"
            if wanted not in target.events:
                continue
            for url in target.urls:
                queued += self._queue(channel(url), alert.get("id"), event, title, body, severity)
        if queued and event != "resolve":
            self.conn.execute(
                update(t.alerts)
                .where(t.alerts.c.id == alert["id"])
                .values(last_notified_at=self.now)
            )
        return queued

    def _queue(
        self, ch: Any, alert_id: int | None, event: str, title: str, body: str, severity: str
    ) -> int:
        ensure_channel(self.conn, ch.id, ch.masked)
        self.conn.execute(
            t.deliveries.insert().values(
                alert_id=alert_id,
                channel=ch.id,
                event=event,
                title=title,
                body=body,
                severity=severity,
                status="pending",
                attempts=0,
                created_at=self.now,
                next_attempt_at=self.now,
            )
        )
        return 1

    def _held_children(self, job_id: str) -> list[str]:
        return sorted(j.id for j in self.settings.jobs if job_id in j.depends_on)

    def renotify(self) -> int:
        every = parse_duration(self.settings.alerts.renotify)
        rows = self.conn.execute(
            select(t.alerts).where(
                t.alerts.c.state == "open",
                t.alerts.c.suppressed_by.is_(None),
                t.alerts.c.last_notified_at.isnot(None),
                t.alerts.c.last_notified_at <= self.now - every,
            )
        ).mappings()
        return sum(1 for row in list(rows) if self.enqueue(dict(row), "renotify"))


def ensure_channel(conn: Connection, channel_id: str, masked: str) -> None:
    if conn.execute(select(t.channels.c.id).where(t.channels.c.id == channel_id)).first() is None:
        conn.execute(t.channels.insert().values(id=channel_id, masked_url=masked, failing=False))


@dataclass
class Plan:
    """What an evaluation found to change: worked out on a read connection, so the writer
    (and the reports waiting for it) only pays for the alerts that really change."""

    changes: list[tuple[str, str, Finding | None]] = field(default_factory=list)
    intervals: dict[str, float | None] = field(default_factory=dict)
    medians: dict[str, float | None] = field(default_factory=dict)
    full: bool = False  # every job was evaluated: re-notifications are due too
    jobs: int = 0


MEDIAN_OF_LAST = 20


def snapshot_median(facts: JobFacts) -> float | None:
    """The job row's median duration: of its last 20 successful backups, sorted[n // 2]."""
    backups = [r for r in facts.runs if r.kind == "backup"]
    good = [r.duration_s for r in backups if r.status == "success"][:MEDIAN_OF_LAST]
    durations = sorted(d for d in good if d is not None)
    return durations[len(durations) // 2] if durations else None


def _differs(current: dict[str, Any] | None, finding: Finding | None) -> bool:
    if current is None:
        return finding is not None
    if finding is None:
        return True
    stored = (current["message"], current["severity"], current["run_id"])
    return (finding.message, finding.severity, finding.run_id) != stored


def plan_evaluation(
    conn: Connection, settings: Settings, now: float, job_ids: list[str] | None, kind: str | None
) -> Plan:
    """Evaluate the rules of ``kind`` (None: all) for these jobs (None: every job) and list
    what differs from the stored alerts. backwatch's own alerts (the ``_system`` job) are
    evaluated on every tick from measurements taken then: services/selfmon.py."""
    query = select(t.jobs)
    alerts_query = select(t.alerts).where(t.alerts.c.state.in_(ACTIVE))
    if job_ids is not None:
        query = query.where(t.jobs.c.id.in_(job_ids))
        alerts_query = alerts_query.where(t.alerts.c.job.in_(job_ids))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    active = {r["fingerprint"]: dict(r) for r in conn.execute(alerts_query).mappings()}
    configured = _configured(settings)
    plan = Plan(full=job_ids is None, jobs=len(rows))
    for row in rows:
        if kind == "time":  # the periodic check: the job's snapshot is enough, no history
            facts = snapshot_facts(conn, row, settings, now)
        else:
            facts = job_facts(conn, row, settings, now)
            # health (computed when read) and the missed rule must agree on unscheduled jobs
            learned = None if facts.schedule is not None else learned_interval(facts)
            if learned != row.get("learned_interval_s"):
                plan.intervals[row["id"]] = learned
            # the median duration (health's "stuck" threshold) is kept here, off ingest
            median = snapshot_median(facts)
            if median != row.get("median_duration_s"):
                plan.medians[row["id"]] = median
        job = configured.get(row["id"])
        off = set(job.alerts.off) if job else set()
        for rule_name, finding in evaluate_rules(facts, now, kind).items():
            finding = None if rule_name in off else finding
            if _differs(active.get(f"{rule_name}:{row['id']}"), finding):
                plan.changes.append((row["id"], rule_name, finding))
    return plan


def apply_plan(settings: Settings, now: float, plan: Plan) -> Any:
    """Op: apply a plan. Each change re-reads its alert, so a plan that raced with another
    evaluation or a manual resolve still leaves one consistent alert per rule and job."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        for job_id, interval in plan.intervals.items():
            conn.execute(
                update(t.jobs).where(t.jobs.c.id == job_id).values(learned_interval_s=interval)
            )
        for job_id, value in plan.medians.items():
            conn.execute(
                update(t.jobs).where(t.jobs.c.id == job_id).values(median_duration_s=value)
            )
        evaluator = Evaluator(conn, unit, settings, now)
        for job_id, rule_name, finding in plan.changes:
            evaluator.apply(job_id, rule_name, finding)
        if plan.full:
            evaluator.renotify()
        return len(plan.changes)

    return op


def evaluate_jobs(
    settings: Settings, now: float, job_ids: list[str] | None, kind: str | None
) -> Any:
    """Op: plan and apply in one transaction (for callers without a read thread)."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        plan = plan_evaluation(conn, settings, now, job_ids, kind)
        return apply_plan(settings, now, plan)(conn, unit)

    return op


def set_alert_state(settings: Settings, alert_id: int, action: str, now: float, actor: str) -> Any:
    """Op: acknowledge or resolve an alert by hand."""
    if action not in ("ack", "resolve"):
        raise InvalidInput.field("action", "must be 'ack' or 'resolve'")

    def op(conn: Connection, unit: WriteUnit) -> dict[str, Any]:
        row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        current = dict(row)
        if current["state"] == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved")
        if action == "ack":
            if current["state"] == "acknowledged":
                return current
            changes = {
                "state": "acknowledged",
                "acknowledged_at": now,
                "acknowledged_by": actor,
                "updated_at": now,
            }
            conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(**changes))
            unit.event(
                at=now,
                kind="ack",
                entity="alert",
                entity_id=str(alert_id),
                job=current["job"],
                from_state=current["state"],
                to_state="acknowledged",
                actor=actor,
            )
            unit.changes.append(
                {"type": "alert", "id": alert_id, "job": current["job"], "state": "acknowledged"}
            )
            return {**current, **changes}
        Evaluator(conn, unit, settings, now)._resolve(current, actor=actor, kind="alert")
        return {**current, "state": "resolved", "resolved_at": now, "resolved_by": actor}

    return op


def snooze(job_id: str, seconds: float, now: float, actor: str) -> Any:
    """Op: hold back notifications of a job for ``seconds`` (0 lifts the snooze)."""

    def op(conn: Connection, unit: WriteUnit) -> float | None:
        if (
            job_id != SYSTEM_JOB
            and conn.execute(select(t.jobs.c.id).where(t.jobs.c.id == job_id)).first() is None
        ):
            raise NotFound(f"job {job_id!r} not found")
        until = now + seconds if seconds > 0 else None
        exists = conn.execute(
            select(t.job_alert_state.c.job).where(t.job_alert_state.c.job == job_id)
        ).first()
        values = {"snoozed_until": until, "snoozed_by": actor}
        if exists:
            conn.execute(
                update(t.job_alert_state).where(t.job_alert_state.c.job == job_id).values(**values)
            )
        else:
            conn.execute(t.job_alert_state.insert().values(job=job_id, **values))
        unit.event(
            at=now,
            kind="config",
            entity="job",
            entity_id=job_id,
            job=job_id,
            to_state="snoozed" if until else "unsnoozed",
            actor=actor,
            detail={"until": iso(until)},
        )
        return until

    return op


def list_alerts(
    conn: Connection, *, state: str | None = None, job: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    a = t.alerts
    query = select(a)
    if state is not None:
        query = query.where(a.c.state == state)
    if job is not None:
        query = query.where(a.c.job == job)
    query = query.order_by(a.c.id.desc()).limit(max(1, min(limit, 1000)))
    return [dict(r) for r in conn.execute(query).mappings()]


def alert_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rule": row["rule"],
        "job": row["job"],
        "run_id": row["run_id"],
        "severity": row["severity"],
        "state": row["state"],
        "message": row["message"],
        "detail": row.get("detail"),
        "suppressed_by": row.get("suppressed_by"),
        "opened_at": iso(row["opened_at"]),
        "acknowledged_at": iso(row.get("acknowledged_at")),
        "acknowledged_by": row.get("acknowledged_by"),
        "resolved_at": iso(row.get("resolved_at")),
        "resolved_by": row.get("resolved_by"),
        "last_notified_at": iso(row.get("last_notified_at")),
    }


def open_counts(conn: Connection) -> dict[str, int]:
    a = t.alerts
    rows = conn.execute(select(a.c.severity, a.c.id).where(a.c.state.in_(ACTIVE))).all()
    counts = {"info": 0, "warning": 0, "critical": 0}
    for severity, _id in rows:
        counts[severity] = counts.get(severity, 0) + 1
    return counts
