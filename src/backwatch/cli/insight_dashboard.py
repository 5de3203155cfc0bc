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


def frame(tgt: Any) -> Any:
    jobs = tgt.list_jobs()
    alerts = fetch_open_alerts(tgt)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j["health"]] = counts.get(j["health"], 0) + 1
    tally = ", ".join(f"{n} {h}" for h, n in sorted(counts.items())) or "no jobs yet"
    head = Text(f"backwatch — {stamp} — {tally} — {len(alerts)} open alert(s)", style="bold")
    return Group(head, _jobs_table(jobs))


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
