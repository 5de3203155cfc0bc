"""Looking at runs and jobs: ``status [JOB]``, ``history JOB`` (``list``: cli/listing.py)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from backwatch.cli.common import console, print_json
from backwatch.cli.job_pages import ALL_PAGE, json_line, write_json_pages
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.errors import InvalidInput
from backwatch.timeutil import human_ago, human_bytes, human_duration, parse_duration, parse_time

HEALTH_STYLE = {
    "ok": "green",
    "running": "cyan",
    "late": "yellow",
    "missed": "bold red",
    "failing": "bold red",
    "stuck": "yellow",
    "unknown": "yellow",
    "paused": "dim",
    "new": "blue",
}
STATUS_STYLE = {
    "success": "green",
    "warning": "yellow",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "dim",
    "running": "cyan",
    "queued": "cyan",
    "skipped": "dim",
    "unknown": "yellow",
}


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(history)


def _ts(value: str | None) -> float | None:
    if not value:
        return None

    return parse_time(value)


def _ago(value: str | None) -> str:
    return human_ago(_ts(value), time.time())


def _escape(text: str) -> str:
    return escape(text)


def _health(value: str) -> str:
    return f"[{HEALTH_STYLE.get(value, 'white')}]{value}[/]"


def _status(value: str | None) -> str:
    if not value:
        return "-"
    return f"[{STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _jobs_table(jobs: list[dict[str, Any]], title: str | None = None) -> Any:
    table = Table(title=title, header_style="bold")
    for col in ("job", "health", "last run", "status", "duration", "size", "next due"):
        table.add_column(col, no_wrap=col != "job")
    for job in jobs:
        last = job.get("last_run") or {}
        table.add_row(
            job["id"],
            _health(job["health"]),
            _ago(job.get("last_run_at") or last.get("started_at")) if last else "never",
            _status(last.get("status")),
            human_duration(last.get("duration_s")),
            human_bytes(last.get("size_bytes")),
            _ago(job.get("next_due")) if job.get("next_due") else "-",
        )
    return table


def _local(value: str | None) -> str:
    """An API time (ISO 8601, UTC) as local wall-clock time to the minute."""
    stamp = _ts(value)
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


#: optional columns of the runs table with the width they need; shown when the terminal has it
_OPTIONAL_RUN_COLUMNS = (("files", 7), ("id", 24))


def _runs_table(runs: list[dict[str, Any]], title: str | None = None) -> Any:
    # Fixed columns never wrap; the message takes what is left. On a narrow terminal the
    # optional columns go first (the full record is in --json).
    room = console().width - 66 - 20  # fixed columns, and at least 20 for the message
    shown = set()
    for name, width in _OPTIONAL_RUN_COLUMNS:
        if room >= width:
            shown.add(name)
            room -= width
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["started", "status", "duration", "size", "files", "exit", "id"]
    for col in columns:
        if col in ("files", "id") and col not in shown:
            continue
        numeric = col in ("duration", "size", "files", "exit")
        table.add_column(col, no_wrap=True, justify="right" if numeric else "left")
    table.add_column("message", overflow="fold")
    for run in runs:
        cells = {
            "started": _local(run.get("started_at")),
            "status": _status(run["status"]),
            "duration": human_duration(run.get("duration_s")),
            "size": human_bytes(run.get("size_bytes")),
            "files": "-" if run.get("files") is None else str(run["files"]),
            "exit": "-" if run.get("exit_code") is None else str(run["exit_code"]),
            "id": run["id"],
        }
        row = [v for k, v in cells.items() if k not in ("files", "id") or k in shown]
        row.append(_escape((run.get("message") or "").replace("\n", " ")[:200]))
        table.add_row(*row)
    return table


#: the jobs ``backwatch status`` shows (problems first); ``backwatch list`` pages the rest
STATUS_SHOWN = 100


@targeted()
def status(
    job: Annotated[str | None, typer.Argument(help="One job; without it, all jobs.")] = None,
    days: Annotated[int, typer.Option(help="Summary period in days.")] = 30,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Health at a glance: every job, or one job with its recent runs and ping URL."""

    tgt = open_target(where, read_only=True)
    try:
        if job is None:
            summary = tgt.summary(days)
            if json_out:  # every job, as always, written page by page
                sys.stdout.write(f'{{"summary": {json_line(summary)}, "jobs": ')
                write_json_pages(tgt, {"sort": "id", "limit": ALL_PAGE})
                sys.stdout.write("}\n")
                return
            # a glance: the jobs that need attention first, one page of them at any size
            page = tgt.job_page(sort="health", limit=STATUS_SHOWN)
            jobs = page["items"]
            out = console()
            rate = summary.get("success_rate")
            out.print(
                f"[bold]last {days} days:[/] {summary['total']} runs, "
                f"success rate {'-' if rate is None else f'{rate * 100:.1f}%'}, "
                f"avg duration {human_duration(summary.get('avg_duration_s'))}, "
                f"avg size {human_bytes(summary.get('avg_size_bytes'))}"
            )
            if summary.get("health"):
                counts = ", ".join(f"{n} {_health(h)}" for h, n in summary["health"].items())
                out.print(f"[bold]jobs now:[/] {counts}")
            if not jobs:
                out.print("no jobs yet: report a run with `backwatch push --job NAME`")
                return
            out.print(_jobs_table(jobs))
            if page.get("next_cursor"):
                more = sum(summary.get("health", {}).values()) - len(jobs)
                out.print(
                    f"… {more:,} more (the first {len(jobs)} by health are above): "
                    "`backwatch list` pages and filters them, `backwatch list --all` shows all"
                )
            return
        detail = tgt.get_job(job)
        runs = tgt.list_runs(job=job, limit=10)["items"]
    finally:
        tgt.close()
    if json_out:
        print_json({"job": detail, "runs": runs})
        return
    out = console()
    out.print(_jobs_table([detail], title=f"job {job}"))
    facts = [
        ("health", f"{detail['health']} ({detail.get('health_reason', '')})"),
        ("schedule", _schedule_text(detail)),
        ("last run", _ended(detail.get("last_run_at"))),
        ("last success", _ended(detail.get("last_success_at"))),
        (
            "restorable as of",
            _ended(detail.get("last_verified_at"))
            if detail.get("last_verified_at")
            else "never proven (run `backwatch drill`)",
        ),
        ("latest drill", _drill_text(detail.get("last_drill"))),
        ("runs", str(detail.get("runs_total", 0))),
    ]
    if detail.get("ping_url"):
        facts.append(("ping URL", detail["ping_url"]))
    for key, value in facts:
        out.print(f"[bold]{key}:[/] {value}")
    if runs:
        out.print(_runs_table(runs, title="recent runs"))


def _ended(value: str | None) -> str:
    """An end time as '2026-12-07 14:02 (3 h ago)', or 'never'."""
    return f"{_local(value)} ({_ago(value)})" if value else "never"


def _schedule_text(job: dict[str, Any]) -> str:
    if job.get("schedule"):
        return f"{job['schedule']} ({job.get('timezone') or 'UTC'})"
    if job.get("learned_interval_s"):
        return f"learned: every {human_duration(job['learned_interval_s'])} (median interval)"
    return "none yet (learned after 5 runs; no missed-run check until then)"


@targeted()
def history(
    job: Annotated[str, typer.Argument(help="Job id.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 20,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="Only runs with this status.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or span such as 7d.")] = None,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """The runs of one job, newest first."""
    tgt = open_target(where, read_only=True)
    try:
        tgt.get_job(job)  # a clear "job not found" instead of an empty list
        query: dict[str, Any] = {"job": job, "limit": limit, "status": status_filter}
        if since is not None:
            query["since"] = _since(since)
        runs = tgt.list_runs(**query)["items"]
    finally:
        tgt.close()
    if json_out:
        print_json(runs)
        return
    console().print(_runs_table(runs, title=f"history of {job}"))


def _since(value: str) -> Any:
    try:
        return parse_time(value, field="--since")
    except ValueError:
        try:
            return time.time() - parse_duration(value, field="--since")
        except ValueError:
            raise InvalidInput("--since: use an ISO time or a span such as 7d") from None


def _drill_text(drill: dict[str, Any] | None) -> str:
    if not drill:
        return "none yet"
    text = f"{drill['status']} {_ended(drill.get('finished_at'))}"
    estimate = drill.get("estimate_full_restore_s")
    if estimate is not None:
        text += f"; a full restore would take about {human_duration(estimate)}"
    return text
