"""The run page (``/runs/{id}``): timeline of transitions and phases, stats, the log."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backwatch.services import reads
from backwatch.web.pages.render import html_page, render, strip_ansi

router = APIRouter(include_in_schema=False)
_ERROR_WORDS = re.compile(
    r"\b(error|errors|fatal|failed|failure|panic|traceback|exception|denied|refused)\b",
    re.IGNORECASE,
)
_OK_STATUSES = {"success", "running", "queued"}


def first_error_line(lines: list[str], status: str) -> int | None:
    """The index of the log's first line that reads like an error, for a run that did not
    succeed (the page opens its log there); None for a good run or a log without one."""
    if status in _OK_STATUSES:
        return None
    return next((i for i, line in enumerate(lines) if _ERROR_WORDS.search(line)), None)


def dedup_ratio(run: dict[str, Any]) -> float | None:
    """The tool's own figure (borg), else bytes processed ÷ bytes added."""
    stats = run.get("stats") or {}
    value = stats.get("dedup_ratio") if isinstance(stats, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    size, added = run.get("size_bytes"), run.get("bytes_added")
    if size and added:
        return size / added
    return None


def timeline(run: dict[str, Any]) -> dict[str, Any]:
    """Transitions and phases on one time axis, plus the phase bars' geometry (0–1000)."""
    start = run["started_at"]
    end = run.get("finished_at") or start
    items: list[dict[str, Any]] = []
    for event in run["events"]:
        items.append(
            {
                "at": event["at"],
                "kind": "transition",
                "title": " → ".join(s for s in (event["from_state"], event["to_state"]) if s)
                or event["kind"],
                "detail": ", ".join(
                    f"{k} {event[k]}" for k in ("trigger", "actor") if event.get(k)
                ),
            }
        )
    bars = []
    cursor = start
    for phase in run["phases"]:
        p_start = phase["started_at"]
        duration = phase["duration_s"] or 0.0
        if p_start is None:  # phases reported as {name: seconds}: lay them end to end
            p_start = cursor
        p_end = phase["finished_at"] or p_start + duration
        cursor = p_end
        end = max(end, p_end)
        items.append(
            {
                "at": p_start,
                "kind": "phase",
                "title": f"phase {phase['name']}",
                "detail": phase["status"],
                "duration": p_end - p_start,
            }
        )
        bars.append(
            {"name": phase["name"], "start": p_start, "end": p_end, "status": phase["status"]}
        )
    span = max(end - start, 1e-9)
    for bar in bars:
        bar["x"] = round((bar["start"] - start) / span * 1000, 1)
        bar["w"] = max(round((bar["end"] - bar["start"]) / span * 1000, 1), 2)
    items.sort(key=lambda i: (i["at"], i["kind"] != "transition"))
    return {"items": items, "bars": bars, "start": start, "end": end}


@router.get("/runs/{run_id}")
@html_page
async def run_page(request: Request, run_id: str) -> Response:
    hub = request.app.state.hub
    with hub.read_engine.connect() as conn:
        run = reads.get_run(conn, run_id)
    log = strip_ansi(run.get("log") or "")
    stats = run.get("stats")
    lines = log.split("\n") if log else []
    context = {
        "run": run,
        "timeline": timeline(run),
        "dedup": dedup_ratio(run),
        "log_lines": lines,
        "error_line": first_error_line(lines, run["status"]),
        "extra_stats": sorted(stats.items()) if isinstance(stats, dict) else [],
    }
    return render(request, "run.html", context, page="run")
