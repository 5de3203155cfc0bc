"""Alerts: evaluate the rules, keep one open alert per rule and job, queue notifications.

- ``facts``: what the rules read (a job's runs, disks, configuration and thresholds);
- ``evaluation``: a round of the rules, and the alerts it changes;
- ``lifecycle``: open → acknowledged → resolved, snoozes, and the notification outbox;
- ``output``: alerts as the API, the pages and the CLI show them.

The names callers use are re-exported here (``from backwatch.services import alerts``).
"""

from __future__ import annotations

from backwatch.services.alerts.evaluation import (
    PAGE,
    AlertChanges,
    apply_changes,
    clock_rule_jobs,
    evaluate_jobs,
    find_changes,
    find_changes_page,
    find_clock_changes,
    find_due_changes,
    time_rule_jobs,
)
from backwatch.services.alerts.facts import (
    disk_facts,
    job_facts,
    snapshot_facts,
    thresholds_for,
)
from backwatch.services.alerts.lifecycle import (
    ACTIVE,
    SYSTEM_JOB,
    AlertWriter,
    ensure_channel,
    set_alert_state,
    snooze,
)
from backwatch.services.alerts.output import (
    alert_counts,
    alert_out,
    alert_page,
    list_alerts,
    open_counts,
    urgent_alerts,
)

__all__ = [
    "ACTIVE",
    "PAGE",
    "SYSTEM_JOB",
    "AlertChanges",
    "AlertWriter",
    "alert_counts",
    "alert_out",
    "alert_page",
    "apply_changes",
    "clock_rule_jobs",
    "disk_facts",
    "ensure_channel",
    "evaluate_jobs",
    "find_changes",
    "find_changes_page",
    "find_clock_changes",
    "find_due_changes",
    "job_facts",
    "list_alerts",
    "open_counts",
    "set_alert_state",
    "snapshot_facts",
    "snooze",
    "thresholds_for",
    "time_rule_jobs",
    "urgent_alerts",
]
