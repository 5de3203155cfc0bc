"""An alert's life: open → acknowledged → resolved, snoozes, and the notification outbox.

An alert resolves by itself when its rule answers "clear"; acknowledged alerts are not
re-notified; open ones are re-notified every ``[alerts] renotify``. Notifications are rows
in the ``deliveries`` outbox, sent by the notifier (services/notifier.py) — never from
inside the transaction that caused them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Connection, select, update

from backwatch.domain.health import Health
from backwatch.domain.rules import Finding
from backwatch.errors import Conflict, InvalidInput, NotFound
from backwatch.notify.render import render
from backwatch.notify.transport import channel
from backwatch.services.alerts.facts import configured_jobs
from backwatch.services.unit import WriteUnit
from backwatch.services.views import job_verdict
from backwatch.settings import JobSettings, Settings
from backwatch.store import tables as t
from backwatch.timeutil import iso, parse_duration

SYSTEM_JOB = "_system"  # alerts about backwatch itself (its data directory's disk)
ACTIVE = ("open", "acknowledged")


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


class AlertWriter:
    """Opens, refreshes and resolves alerts, and queues their notifications in the
    ``deliveries`` outbox, inside one write transaction."""

    def __init__(self, conn: Connection, unit: WriteUnit, settings: Settings, now: float) -> None:
        self.conn = conn
        self.unit = unit
        self.settings = settings
        self.now = now
        self.configured = configured_jobs(settings)

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
            self.resolve(dict(current), actor="auto", kind="auto_resolve")
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

    def resolve(self, current: dict[str, Any], *, actor: str, kind: str) -> None:
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
        AlertWriter(conn, unit, settings, now).resolve(current, actor=actor, kind="alert")
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
