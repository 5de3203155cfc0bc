"""Seed 003's monitoring commands: ``health``, ``performance``, ``report``, ``audit``,
``dashboard``. Each reads a server (``--url``) or the database (``--db``) through the same
target plumbing as ``status``: over HTTP the API's answers, in-process the services behind
them, so both give the same JSON."""

from __future__ import annotations

import math
import sys
import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from backwatch.cli import insight_dashboard as board
from backwatch.cli import insight_report
from backwatch.cli import seed_spellings as seed
from backwatch.cli.alerts import _call
from backwatch.cli.common import console, echo, fail, print_json
from backwatch.cli.insight_fetch import (
    fetch_analysis,
    fetch_checks,
    fetch_events,
    fetch_open_alerts,
    first_jobs,
)
from backwatch.cli.job_pages import json_line, pages
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.cli.views import _since
from backwatch.domain.analysis import parse_period
from backwatch.errors import InvalidInput
from backwatch.timeutil import human_bytes, human_duration, iso

STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}
PeriodOpt = Annotated[str, typer.Option(help="How far back: 24h, 7d, 30d (any 1h…730d).")]


def register(app: typer.Typer) -> None:
    app.command()(health)
    app.command()(performance)
    app.command()(report)
    app.command()(audit)
    app.command()(dashboard)


def checked_period(period: str) -> float:
    """``--period`` in seconds, or a clear error before anything is read."""

    try:
        return parse_period(period)
    except ValueError as exc:
        raise InvalidInput(f"--period {period!r}: {exc}") from None


# --- health ------------------------------------------------------------------------------


@targeted()
def health(
    checks: Annotated[
        str | None, typer.Option(help="Only these checks, comma-separated (e.g. database,writer).")
    ] = None,
    more_checks: seed.MoreChecksArg = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the safe fixes first (admin token on a server).")
    ] = False,
    json_out: JsonOpt = False,
    output: seed.OutputOpt = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Diagnostic checks with a suggested fix for each problem; exit 1 when one is critical.

    --fix clears run locks left by processes that are gone and closes their runs as failed
    (recorded in the audit trail)."""
    names = seed.check_names(checks, more_checks)
    json_out = seed.json_wanted(json_out, output)
    tgt = open_target(where, read_only=not fix)
    fixed: list[str] | None = None
    try:
        if fix:
            from backwatch.services import diagnostics  # the store: see cli/root.py

            fixed = _call(
                tgt,
                ("POST", "/api/v1/health/checks/fix", {}, None),
                lambda h: {"fixed": diagnostics.apply_fixes(h, "cli")},
            )["fixed"]
        result = fetch_checks(tgt, names)
    finally:
        tgt.close()
    if json_out:
        print_json(result if fixed is None else {"fixed": fixed, **result})
    else:
        _print_checks(result, fixed)
    critical = [c for c in result["checks"] if c["status"] == "critical"]
    if critical:  # the reasons too: a script or a cron mail may show only this line
        reasons = "; ".join(f"{c['name']}: {c['detail']}" for c in critical)
        raise fail(f"{len(critical)} check(s) critical: {reasons}")


def _print_checks(result: dict[str, Any], fixed: list[str] | None) -> None:
    out = console()
    if fixed is not None:
        out.print("\n".join(f"fixed: {escape(line)}" for line in fixed) or "nothing to fix")
    table = Table(header_style="bold")
    for col in ("check", "status", "detail", "fix"):
        table.add_column(col, overflow="fold", no_wrap=col in ("check", "status"))
    for c in result["checks"]:
        style = STATUS_STYLE.get(c["status"], "white")
        table.add_row(c["name"], f"[{style}]{c['status']}[/]", escape(c["detail"]),
                      escape(c["fix"] or ""))  # fmt: skip
    out.print(table)
    style = STATUS_STYLE.get(result["status"], "white")
    out.print(f"overall: [{style}]{result['status']}[/]")


# --- performance -------------------------------------------------------------------------


#: the jobs ``performance`` analyses and a report lists (problems first when there are more):
#: one page at any fleet size; ``performance --all`` and ``backwatch list`` go through the rest
JOBS_SHOWN = 100


@targeted()
def performance(
    period: PeriodOpt = "7d",
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every job, a page at a time, problems first (for scripts)."),
    ] = False,
    json_out: JsonOpt = False,
    output: seed.OutputOpt = None,
    operation_type: seed.OperationTypeOpt = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Trends, bottleneck phase, regressions, forecast and recommendations per job.

    Without --job, the first 100 jobs (those that need attention first when there are more)
    and how many more; --all analyses every job page by page, writing as it goes."""
    json_out = seed.json_wanted(json_out, output)
    seed.operation_type(operation_type)
    checked_period(period)
    if every and job:
        raise InvalidInput("--all and --job: give one or the other")
    tgt = open_target(where, read_only=True)
    try:
        if every:
            _all_performance(tgt, period, json_out)
            return
        jobs, total = ([{"id": job}], 1) if job else first_jobs(tgt, JOBS_SHOWN)
        analyses = [fetch_analysis(tgt, j["id"], period) for j in jobs]
    finally:
        tgt.close()
    more = total - len(analyses)
    if json_out:
        print_json(analyses)
        if more > 0:
            sys.stderr.write(f"{_more_jobs(len(analyses), more, period)}\n")
        return
    if not analyses:
        echo("no jobs yet: report a run with `backwatch push --job NAME`")
        return
    out = console()
    out.print(performance_table(analyses, title=f"performance, last {period}"))
    _print_recommendations(analyses)
    if more > 0:
        out.print(_more_jobs(len(analyses), more, period), markup=False, highlight=False)


def _more_jobs(shown: int, more: int, period: str) -> str:
    """How many jobs were not analysed, and the commands that analyse them."""
    also = "" if period == "7d" else f" --period {period}"
    return (
        f"… {more:,} more job(s) (the first {shown} by health are above): "
        f"`backwatch performance{also} --job NAME` analyses one, "
        f"`backwatch performance{also} --all` every job, a page at a time"
    )


def _print_recommendations(analyses: list[dict[str, Any]]) -> None:
    out = console()
    for a in analyses:
        for line in a["recommendations"]:
            out.print(f"[bold]{escape(a['job'])}:[/] {escape(line)}")


def _all_performance(tgt: Any, period: str, json_out: bool) -> None:
    """Every job's analysis, problems first, a page of jobs at a time: a table per page, or
    one JSON array written as each analysis comes; a fleet's analyses are never all held."""
    query: dict[str, Any] = {"sort": "health", "limit": JOBS_SHOWN}
    if json_out:
        first = True
        sys.stdout.write("[")
        for page in pages(tgt, query):
            for j in page["items"]:
                analysis = fetch_analysis(tgt, j["id"], period)
                sys.stdout.write(("\n" if first else ",\n") + json_line(analysis))
                first = False
            sys.stdout.flush()
        sys.stdout.write("\n]\n")
        return
    shown = 0
    for page in pages(tgt, query):
        analyses = [fetch_analysis(tgt, j["id"], period) for j in page["items"]]
        if not analyses:
            continue
        title = f"performance, last {period}" if not shown else None
        console().print(performance_table(analyses, title=title))
        _print_recommendations(analyses)
        shown += len(analyses)
    if not shown:
        echo("no jobs yet: report a run with `backwatch push --job NAME`")


def trend_text(trend: dict[str, Any] | None) -> str:
    if not trend:
        return "-"
    if trend["direction"] == "stable":
        return "stable"
    return f"{trend['direction']} {trend['change_percent']:+.0f}%"


def performance_table(analyses: list[dict[str, Any]], title: str | None = None) -> Any:
    table = Table(title=title, header_style="bold")
    columns = ("job", "runs", "failed", "duration", "size", "bottleneck", "next run")
    for col in columns:
        table.add_column(col, overflow="fold")
    for a in analyses:
        b, f = a["bottleneck"], a["forecast"]
        table.add_row(
            a["job"],
            str(a["runs"]),
            str(a["failed"]),
            trend_text(a["duration_trend"]),
            trend_text(a["size_trend"]),
            f"{b['phase']} {b['share_percent']:.0f}%" if b else "-",
            f"{human_duration(f['duration_s'])}, {human_bytes(f['size_bytes'])}",
        )
    return table


# --- report ------------------------------------------------------------------------------


@targeted()
def report(
    period: PeriodOpt = "7d",
    fmt: Annotated[str, typer.Option("--format", help="text, markdown, json or html.")] = "text",
    save: Annotated[
        str | None, typer.Option(help="Write the report to this file instead of printing it.")
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """A report for a period: summary, health checks, open alerts, per-job performance."""

    if fmt not in insight_report.FORMATS:
        raise InvalidInput(f"--format {fmt!r}: use one of {', '.join(insight_report.FORMATS)}")
    seconds = checked_period(period)
    tgt = open_target(where, read_only=True)
    try:
        data = gather_report(tgt, period, seconds)
    finally:
        tgt.close()
    text = insight_report.render(data, fmt)
    if save is None:
        echo(text.rstrip("\n"))
        return
    try:
        with open(save, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise fail(f"cannot write the report to {save}: {exc.strerror or exc}") from None
    echo(f"report saved to {save}")


def gather_report(tgt: Any, period: str, seconds: float) -> dict[str, Any]:
    """Everything a report shows, read through the target (server or database). The per-job
    sections cover ``JOBS_SHOWN`` jobs at most (problems first when there are more) and the
    open alerts ``ALERTS_SHOWN``; then ``jobs_total`` and ``open_alerts_total`` say how many
    there are in all (keys present only then, so a small installation's report is as before)."""

    days = max(1, min(730, math.ceil(seconds / 86400)))
    jobs, jobs_total = first_jobs(tgt, JOBS_SHOWN)
    alerts = fetch_open_alerts(tgt)
    data = {
        "generated_at": iso(time.time()),
        "period": period,
        "summary": tgt.summary(days),
        "health": fetch_checks(tgt, None),
        "open_alerts": alerts["items"],
        "jobs": jobs,
        "performance": [fetch_analysis(tgt, j["id"], period) for j in jobs],
    }
    if alerts["total"] > len(alerts["items"]):
        data["open_alerts_total"] = alerts["total"]
    if jobs_total > len(jobs):
        data["jobs_total"] = jobs_total
        data["jobs_more"] = insight_report.more_jobs_line(len(jobs), jobs_total)
    return data


# --- audit -------------------------------------------------------------------------------


@targeted()
def audit(
    since: Annotated[str, typer.Option(help="ISO time or a span back from now, e.g. 6h.")] = "24h",
    kind: Annotated[
        str | None, typer.Option("--filter", help="Only events of this kind (e.g. state_change).")
    ] = None,
    job: Annotated[str | None, typer.Option(help="Only events of this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 200,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """The audit trail, newest first: state changes, triggers, alerts, acks, fixes."""

    start = _since(since)
    tgt = open_target(where, read_only=True)
    try:
        events = fetch_events(tgt, start, kind, job, limit)
    finally:
        tgt.close()
    if json_out:
        print_json(events)
        return
    if not events:
        echo(f"no events since {since}")
        return
    console().print(_events_table(events))


def _events_table(events: list[dict[str, Any]]) -> Any:
    table = Table(header_style="bold")
    for col in ("at", "kind", "job", "change", "by", "about"):
        table.add_column(col, overflow="fold", no_wrap=col in ("at", "kind"))
    for e in events:
        to, was = e.get("to_state"), e.get("from_state")
        detail = e.get("detail") if isinstance(e.get("detail"), dict) else {}
        about = detail.get("message") or f"{e['entity']} {e.get('entity_id') or ''}"
        table.add_row(
            (e["at"] or "").replace("T", " ")[:19],
            e["kind"],
            escape(e.get("job") or ""),
            f"{was} → {to}" if was and to else (to or ""),
            escape(e.get("actor") or e.get("trigger") or ""),
            escape(str(about).strip()),
        )
    return table


# --- dashboard ---------------------------------------------------------------------------


@targeted()
def dashboard(
    mode: Annotated[
        str, typer.Option(help="terminal (a live table) or web (the URL).")
    ] = "terminal",
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 5.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Print one frame and stop (the default when not a terminal)."),
    ] = False,
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="web: open the page in a browser.")
    ] = True,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Every job's health, last run and next due, refreshed until Ctrl-C; or the web page.

    Printed once when the output is not a terminal (a pipe, a file, cron), as `top -b` does."""

    if mode not in ("terminal", "web"):
        raise InvalidInput(f"--mode {mode!r}: use terminal or web")
    if interval < 0.5:
        raise InvalidInput("--interval must be at least 0.5 seconds")

    if mode == "web":
        board.open_web(where, browser)
        return
    tgt = open_target(where, read_only=True)
    try:
        if once or not sys.stdout.isatty():  # nobody to watch it refresh
            console().print(board.frame(tgt))
            return
        board.live(tgt, interval)
    finally:
        tgt.close()
