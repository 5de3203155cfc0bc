"""Notification texts: what is wrong, in plain words, with a link to look closer."""

from __future__ import annotations

from typing import Any

RULE_TITLES = {
    "failed": "backup failed",
    "missed": "backup missed",
    "stuck": "backup stuck",
    "empty": "backup empty or shrunk",
    "size_anomaly": "backup size unusual",
    "duration_regression": "backup slower",
    "error_rate": "backups failing often",
    "disk_space": "disk filling up",
    "verify_failed": "verification failed",
    "store_unavailable": "writes refused",
    "drill_overdue": "restore drill overdue",
}
#: a rule whose findings differ by severity: ``failed`` warns for an ``unknown`` outcome
SEVERITY_TITLES = {("failed", "warning"): "backup outcome unknown"}


def link(base_url: str | None, alert: dict[str, Any]) -> str | None:
    if not base_url:
        return None
    base = base_url.rstrip("/")
    if alert.get("run_id"):
        return f"{base}/runs/{alert['run_id']}"
    return f"{base}/jobs/{alert['job']}"


def render(
    alert: dict[str, Any], event: str, base_url: str | None, also: list[str] | None = None
) -> tuple[str, str]:
    """(title, body) for an alert event: open, renotify or resolve."""
    what = SEVERITY_TITLES.get(
        (alert["rule"], alert["severity"]), RULE_TITLES.get(alert["rule"], alert["rule"])
    )
    if event == "resolve":
        title = f"[RESOLVED] {alert['job']}: {what}"
        body = f"Resolved: {alert['message']}"
    else:
        prefix = "[REMINDER] " if event == "renotify" else ""
        title = f"{prefix}[{alert['severity'].upper()}] {alert['job']}: {what}"
        body = alert["message"]
    if also:
        body += f"\nAlerts of dependent jobs are held back meanwhile: {', '.join(also)}."
    url = link(base_url, alert)
    if url:
        body += f"\n{url}"
    return title, body
