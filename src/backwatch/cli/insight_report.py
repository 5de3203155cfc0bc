"""``backwatch report`` rendered as text, Markdown, JSON or HTML.

The report is built once as sections of plain lines (``sections``); each format only
decides how a heading and a line look, so the four never disagree about the content.
"""

from __future__ import annotations

import html
import json
from typing import Any

from backwatch.timeutil import human_bytes, human_duration

FORMATS = ("text", "markdown", "json", "html")
Section = tuple[str, list[str]]


def render(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    title = f"backwatch report: last {data['period']} (generated {data['generated_at']})"
    return {"text": _text, "markdown": _markdown, "html": _html}[fmt](title, sections(data))


def sections(data: dict[str, Any]) -> list[Section]:
    jobs = [_job(j) for j in data["jobs"]] or ["no jobs yet"]
    performance = [_performance(a) for a in data["performance"]] or ["no runs"]
    if data.get("jobs_more"):  # a fleet: its first page of jobs, and where the rest are
        jobs.append(data["jobs_more"])
        performance.append(data["jobs_more"])
    alerts = [f"[{a['severity']}] {a['message']}" for a in data["open_alerts"]] or ["none"]
    more_alerts = data.get("open_alerts_total", 0) - len(data["open_alerts"])
    if more_alerts > 0:
        alerts.append(f"… {more_alerts:,} more open alert(s): `backwatch alerts list --state open`")
    return [
        ("Summary", _summary(data["summary"])),
        (f"Health checks: {data['health']['status']}", _checks(data["health"]["checks"])),
        ("Open alerts", alerts),
        ("Jobs", jobs),
        (f"Performance, the last {data['period']} until now", performance),
        ("Recommendations", [f"{a['job']}: {line}" for a in data["performance"]
                             for line in a["recommendations"]] or ["nothing to change"]),
    ]  # fmt: skip


def more_jobs_line(shown: int, total: int) -> str:
    """The line a report adds to its per-job sections when it covers a page of a fleet."""
    return (
        f"… the first {shown:,} of {total:,} jobs by health (problems first) are above; "
        f"the other {total - shown:,}: `backwatch list --sort health`, "
        "`backwatch performance --all`"
    )


def _summary(s: dict[str, Any]) -> list[str]:
    rate = s.get("success_rate")
    # the summary counts whole UTC days (its daily rollups), the performance a rolling period
    since = f" since {s['since']}" if s.get("since") else ""
    return [
        f"{s['total']} runs in {s['days']} UTC day(s){since}, today included: "
        f"{s['success']} succeeded, "
        f"{s['warning']} with warnings, {s['failed']} failed",
        f"success rate {'-' if rate is None else f'{rate * 100:.1f}%'}, average duration "
        f"{human_duration(s.get('avg_duration_s'))}, average size "
        f"{human_bytes(s.get('avg_size_bytes'))}",
    ]


def _checks(checks: list[dict[str, Any]]) -> list[str]:
    out = []
    for c in checks:
        line = f"{c['name']}: {c['status']}, {c['detail']}"
        out.append(line + (f" (fix: {c['fix']})" if c["fix"] else ""))
    return out


def _job(j: dict[str, Any]) -> str:
    last = j.get("last_run") or {}
    # when the runs ended (docs/alerts.md#job-health), as the API, pages and status say
    ended = j.get("last_run_at") or last.get("started_at")
    success = f", last success {j.get('last_success_at') or 'never'}"
    when = f"last run {ended} {last['status']}{success}" if last else "never ran"
    return f"{j['id']}: {j['health']} ({j.get('health_reason') or ''}), {when}"


def _trend(t: dict[str, Any] | None) -> str:
    if not t:
        return "too few runs"
    return t["direction"] if t["direction"] == "stable" else (
        f"{t['direction']} {t['change_percent']:+.0f}%"
    )  # fmt: skip


def _performance(a: dict[str, Any]) -> str:
    b, f = a["bottleneck"], a["forecast"]
    neck = f", slowest phase {b['phase']} ({b['share_percent']:.0f}%)" if b else ""
    return (
        f"{a['job']}: {a['runs']} runs, {a['failed']} failed; "
        f"duration {_trend(a['duration_trend'])}, "
        f"size {_trend(a['size_trend'])}{neck}; next run about "
        f"{human_duration(f['duration_s'])}, {human_bytes(f['size_bytes'])}"
    )


def _text(title: str, parts: list[Section]) -> str:
    out = [title, "=" * len(title)]
    for heading, lines in parts:
        out += ["", heading, "-" * len(heading), *(f"  - {line}" for line in lines)]
    return "\n".join(out) + "\n"


def _markdown(title: str, parts: list[Section]) -> str:
    out = [f"# {title}"]
    for heading, lines in parts:
        out += ["", f"## {heading}", "", *(f"- {_md(line)}" for line in lines)]
    return "\n".join(out) + "\n"


def _md(line: str) -> str:
    """Markdown-escape the characters that would change the meaning of a plain line."""
    for char in "\\`*_[]<>|":
        line = line.replace(char, "\\" + char)
    return line


def _html(title: str, parts: list[Section]) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for heading, lines in parts:
        items = "".join(f"<li>{e(line)}</li>" for line in lines)
        body.append(f"<h2>{e(heading)}</h2><ul>{items}</ul>")
    style = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
