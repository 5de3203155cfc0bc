"""Running the rules: each job's facts against the stored alerts, and what differs.

The changes are found on a read connection (``find_changes``) and applied by the writer
(``apply_changes``), so the writer — and the reports waiting for it — only pays for the
alerts that really change.

Jobs are read ``PAGE`` at a time, never all at once: a round over every job goes through
them by id (``find_changes_page``); the periodic check of the time rules reads only the
jobs whose time rules can say something now (``time_rule_jobs``: overdue by the due-time
index, running long, with an open alert of a time rule, or configured here), and the
round of the clock only those whose 7-day error rate can move as time passes
(``clock_rule_jobs``). The run rules of a job are otherwise judged when its runs change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, text, update

from backwatch.domain.rules import ERROR_RATE_WINDOW_S, RULES, Finding, learned_interval
from backwatch.domain.rules import evaluate as evaluate_rules
from backwatch.services import due
from backwatch.services.alerts.facts import (
    configured_jobs,
    job_facts,
    run_histories,
    snapshot_facts,
    snapshot_median,
)
from backwatch.services.alerts.lifecycle import ACTIVE, AlertWriter
from backwatch.services.unit import WriteUnit
from backwatch.settings import Settings
from backwatch.store import tables as t

#: jobs evaluated per batch: what a round holds in memory at once
PAGE = 500
#: the rules the periodic check evaluates (``kind == "time"``)
TIME_RULES = tuple(name for name, spec in RULES.items() if spec.kind == "time")


@dataclass
class AlertChanges:
    """What a round of the rules found to change: alerts (job, rule, finding or None when
    clear), and the learned intervals and median durations kept on the job rows."""

    changes: list[tuple[str, str, Finding | None]] = field(default_factory=list)
    intervals: dict[str, float | None] = field(default_factory=dict)
    medians: dict[str, float | None] = field(default_factory=dict)
    renotify: bool = False  # a periodic round: re-notifications are due too
    jobs: int = 0


def _differs(current: dict[str, Any] | None, finding: Finding | None) -> bool:
    if current is None:
        return finding is not None
    if finding is None:
        return True
    stored = (current["message"], current["severity"], current["run_id"])
    return (finding.message, finding.severity, finding.run_id) != stored


def find_changes(
    conn: Connection, settings: Settings, now: float, job_ids: list[str] | None, kind: str | None
) -> AlertChanges:
    """Evaluate the rules of ``kind`` (None: all) for these jobs (None: every job) and list
    what differs from the stored alerts. backwatch's own alerts (the ``_system`` job) are
    evaluated on every tick from measurements taken then: services/selfmon.py."""
    found = AlertChanges(renotify=job_ids is None)
    if job_ids is None:
        after: str | None = ""
        while after is not None:
            after = _find_page(conn, settings, now, kind, after, PAGE, found)
        return found
    ids = sorted(set(job_ids))
    for start in range(0, len(ids), PAGE):
        _find_in(conn, settings, now, _rows(conn, ids[start : start + PAGE]), kind, found)
    return found


def find_changes_page(
    conn: Connection, settings: Settings, now: float, kind: str | None, after: str, limit: int
) -> tuple[AlertChanges, str | None]:
    """One page of a round over every job: the ``limit`` jobs after the id ``after``
    (``""``: from the first). Answers what changes and where the next page starts (None:
    this was the last)."""
    found = AlertChanges()
    return found, _find_page(conn, settings, now, kind, after, limit, found)


def find_due_changes(conn: Connection, settings: Settings, now: float) -> AlertChanges:
    """The periodic check: the time rules of the jobs for which they can say something."""
    return find_changes(conn, settings, now, time_rule_jobs(conn, settings, now), "time")


def time_rule_jobs(conn: Connection, settings: Settings, now: float) -> list[str]:
    """The jobs whose time rules may find something, or clear something, at ``now``: past
    their due time and grace or running longer than the shortest a run may take
    (services/due.py, by index), with an open or acknowledged alert of a time rule, and the
    configured jobs (their disks, drills and own thresholds). For every other job each time
    rule is clear, and none of their alerts is open: evaluating them would change nothing."""
    found = set(due.time_rule_suspects(conn, now, settings.alerts.stuck_minutes))
    a = t.alerts
    found.update(
        conn.execute(
            select(a.c.job).where(a.c.state.in_(ACTIVE), a.c.rule.in_(TIME_RULES)).distinct()
        ).scalars()
    )
    found.update(job.id for job in settings.jobs)
    return sorted(found)


def find_clock_changes(
    conn: Connection, settings: Settings, since: float, now: float
) -> AlertChanges:
    """The round of the clock: every rule of the jobs whose 7-day error rate can have moved
    between ``since`` (the previous round's ``now``) and ``now`` as time passed alone, with
    the re-notifications that are due."""
    found = find_changes(conn, settings, now, clock_rule_jobs(conn, since, now), None)
    found.renotify = True
    return found


def clock_rule_jobs(conn: Connection, since: float, now: float) -> list[str]:
    """The jobs whose run rules can find or clear something only because time passed from
    ``since`` to ``now``. Of the run rules only ``error_rate`` reads the clock: its finding
    moves when a run leaves its 7-day window (a run entering it is judged when reported),
    and it can say something only of a job with a run in the window that did not succeed
    (found by the partial index on such runs) or clear its open alert. So: the jobs a run
    of which left the window meanwhile (by the index on start times), among those."""
    r, a = t.runs, t.alerts
    window_start = now - ERROR_RATE_WINDOW_S
    left = select(r.c.job).where(
        r.c.started_at >= since - ERROR_RATE_WINDOW_S, r.c.started_at < window_start
    )
    bad_in_window = select(r.c.job).where(
        text(t.NOT_SUCCEEDED_RUN), r.c.started_at >= window_start, r.c.job.in_(left)
    )
    alerting = select(a.c.job).where(
        a.c.state.in_(ACTIVE), a.c.rule == "error_rate", a.c.job.in_(left)
    )
    found = set(conn.execute(bad_in_window.distinct()).scalars())
    found.update(conn.execute(alerting.distinct()).scalars())
    return sorted(found)


def _rows(conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(t.jobs).where(t.jobs.c.id.in_(ids))).mappings()]


def _find_page(
    conn: Connection,
    settings: Settings,
    now: float,
    kind: str | None,
    after: str,
    limit: int,
    found: AlertChanges,
) -> str | None:
    query = select(t.jobs).where(t.jobs.c.id > after).order_by(t.jobs.c.id).limit(limit)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    _find_in(conn, settings, now, rows, kind, found)
    return rows[-1]["id"] if len(rows) == limit else None


def _find_in(
    conn: Connection,
    settings: Settings,
    now: float,
    rows: list[dict[str, Any]],
    kind: str | None,
    found: AlertChanges,
) -> None:
    """The rules of ``kind`` for these job rows, against their stored alerts, into ``found``."""
    if not rows:
        return
    ids = [row["id"] for row in rows]
    alerts_query = select(t.alerts).where(t.alerts.c.state.in_(ACTIVE), t.alerts.c.job.in_(ids))
    active = {r["fingerprint"]: dict(r) for r in conn.execute(alerts_query).mappings()}
    configured = configured_jobs(settings)
    found.jobs += len(rows)
    # the periodic check reads each job's snapshot alone, the others its latest runs
    histories = run_histories(conn, ids) if kind != "time" else {}
    for row in rows:
        if kind == "time":
            facts = snapshot_facts(conn, row, settings, now)
        else:
            facts = job_facts(conn, row, settings, now, histories.get(row["id"], ()))
            # health (computed when read) and the missed rule must agree on unscheduled jobs
            learned = None if facts.schedule is not None else learned_interval(facts)
            if learned != row.get("learned_interval_s"):
                found.intervals[row["id"]] = learned
            # the median duration (health's "stuck" threshold) is kept here, off ingest
            median = snapshot_median(facts)
            if median != row.get("median_duration_s"):
                found.medians[row["id"]] = median
        job = configured.get(row["id"])
        off = set(job.alerts.off) if job else set()
        for rule_name, finding in evaluate_rules(facts, now, kind).items():
            finding = None if rule_name in off else finding
            if _differs(active.get(f"{rule_name}:{row['id']}"), finding):
                found.changes.append((row["id"], rule_name, finding))


def apply_changes(settings: Settings, now: float, found: AlertChanges) -> Any:
    """Op: apply what ``find_changes`` found. Each change re-reads its alert, so changes
    that raced with another round or a manual resolve still leave one consistent alert
    per rule and job."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        for job_id, interval in found.intervals.items():
            conn.execute(
                update(t.jobs).where(t.jobs.c.id == job_id).values(learned_interval_s=interval)
            )
        for job_id, value in found.medians.items():
            conn.execute(
                update(t.jobs).where(t.jobs.c.id == job_id).values(median_duration_s=value)
            )
        writer = AlertWriter(conn, unit, settings, now)
        for job_id, rule_name, finding in found.changes:
            writer.apply(job_id, rule_name, finding)
        if found.renotify:
            writer.renotify()
        return len(found.changes)

    return op


def evaluate_jobs(
    settings: Settings, now: float, job_ids: list[str] | None, kind: str | None
) -> Any:
    """Op: find and apply the changes in one transaction (for callers without a read thread)."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        changes = find_changes(conn, settings, now, job_ids, kind)
        return apply_changes(settings, now, changes)(conn, unit)

    return op
