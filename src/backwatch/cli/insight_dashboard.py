"""``backwatch dashboard``: one frame of every job's health (``--once``), the same frame
refreshed until Ctrl-C, or the web dashboard's URL."""

from __future__ import annotations

import os
import time
import webbrowser
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.text import Text

from backwatch.cli.common import console, echo
from backwatch.cli.insight_fetch import fetch_open_alerts
from backwatch.cli.target import Where
from backwatch.cli.views import _jobs_table
from backwatch.masking import display_url
from backwatch.services import job_list

#: rows of each table in a frame: a fleet of 100,000 jobs still draws two short tables
ATTENTION_ROWS = 20
OTHER_ROWS = 15


def frame(tgt: Any) -> Any:
    """Counts per health, the jobs that need attention (most urgent first), then a few of
    the others: two bounded reads, whatever the number of jobs."""
    problems = job_list.PROBLEMS
    attention = tgt.job_page(health=problems, sort="health", limit=ATTENTION_ROWS, counts=True)
    rest = tuple(h for h in job_list.HEALTH_STATES if h not in problems)
    others = tgt.job_page(health=rest, sort="last_run", limit=OTHER_ROWS)
    open_alerts = fetch_open_alerts(tgt, limit=1)["total"]  # counted, not all loaded
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    counts: dict[str, int] = attention.get("counts") or {}
    total = sum(counts.values())
    tally = ", ".join(f"{n} {h}" for h, n in counts.items() if n) or "no jobs yet"
    head = Text(
        f"backwatch — {stamp} — {total} job(s): {tally} — {open_alerts} open alert(s)",
        style="bold",
    )
    parts: list[Any] = [head]
    need = sum(counts.get(h, 0) for h in problems)
    if attention["items"]:
        parts.append(_jobs_table(attention["items"], title=f"Needs attention ({need})"))
        if need > len(attention["items"]):
            more = need - len(attention["items"])
            command = f"backwatch list --health {','.join(problems)} --sort health"
            parts.append(Text(f"… {more} more: {command}, or the web dashboard", style="dim"))
    if others["items"]:
        title = "Other jobs, latest run first" if attention["items"] else None
        parts.append(_jobs_table(others["items"], title=title))
        shown_others = total - need
        if shown_others > len(others["items"]):
            more = shown_others - len(others["items"])
            parts.append(Text(f"… {more} more", style="dim"))
    return Group(*parts)


def live(tgt: Any, interval: float) -> None:
    with Live(frame(tgt), console=console(), refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(frame(tgt))
        except KeyboardInterrupt:  # Ctrl-C is how it ends, not an error
            pass


def open_web(where: Where, browser: bool) -> None:
    base = where.url or os.environ.get("BACKWATCH_URL")
    if not base:
        server = where.settings().server
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
        base = server.base_url or f"http://{host}:{server.port}"
    base = base.rstrip("/") + "/"

    echo(f"dashboard: {display_url(base)}")  # a password in BACKWATCH_URL is not printed
    if browser:
        webbrowser.open(base)
