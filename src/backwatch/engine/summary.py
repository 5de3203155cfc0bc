"""A backup's outcomes (one per destination) as one run: status, message, figures.

``backwatch backup`` records this itself; under ``backwatch run`` the backup runs as a
child process that prints it (``--json``), and ``parse_output`` gives the runner the
same figures.
"""

from __future__ import annotations

import json
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.engine.snapshot import FAILED, SKIPPED, Outcome
from backwatch.errors import InvalidInput

#: problems kept in a summary (the log has room for a few, not for 100 k unreadable files)
MAX_PROBLEMS = 50


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """status, message, the run's figures and ``stats`` (per destination)."""
    good = [o for o in outcomes if o.status != FAILED]
    failed = [o for o in outcomes if o.status == FAILED]
    problems = sorted({p for o in outcomes for p in o.problems})
    if not good:
        status = RunStatus.FAILED
    elif failed or problems:
        status = RunStatus.WARNING
    elif all(o.status == SKIPPED for o in outcomes):
        status = RunStatus.SKIPPED
    else:
        status = RunStatus.SUCCESS
    first = (good or outcomes)[0].stats
    figures: dict[str, Any] = {
        k: first[k] for k in ("files", "files_new", "files_changed", "size_bytes") if k in first
    }
    figures["bytes_added"] = sum(o.stats.get("bytes_added", 0) for o in good)
    return {
        "status": status.value,
        "message": _message(outcomes, failed, problems),
        **figures,
        "stats": {
            "destinations": [
                o.as_dict() | {"problems": o.problems[:MAX_PROBLEMS]} for o in outcomes
            ],
            "problems": len(problems),
        },
    }


def _message(outcomes: list[Outcome], failed: list[Outcome], problems: list[str]) -> str:
    parts = []
    for o in outcomes:
        if o.status == FAILED:
            parts.append(f"{o.destination}: failed: {o.error}")
        elif o.status == SKIPPED:
            parts.append(f"{o.destination}: nothing changed since {o.parent} (skipped)")
        else:
            s = o.stats
            parts.append(
                f"{o.destination}: {o.kind} snapshot {o.snapshot}: {s.get('files_new', 0)} new, "
                f"{s.get('files_changed', 0)} changed, {s.get('files_unchanged', 0)} unchanged"
            )
    if problems:
        parts.append(f"{len(problems)} problem(s), first: {problems[0]}")
    return "; ".join(parts)


def parse_output(
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
) -> RunReport:
    """The summary ``backwatch backup --json`` printed → a run (a tool output parser)."""
    start = text.find("{")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else (None, 0)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "status" not in data:
        raise InvalidInput("not the output of backwatch backup --json")
    at = started_at or now or 0.0
    return RunReport(
        job=job,
        status=RunStatus(data["status"]),
        started_at=at,
        finished_at=finished_at,
        exit_code=exit_code,
        size_bytes=data.get("size_bytes"),
        files=data.get("files"),
        files_new=data.get("files_new"),
        files_changed=data.get("files_changed"),
        bytes_added=data.get("bytes_added"),
        message=data.get("message"),
        tool="builtin",
        stats=data.get("stats"),
    )
