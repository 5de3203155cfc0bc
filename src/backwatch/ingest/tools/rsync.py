"""rsync ``--stats`` text: "Key: value" lines, then the two-line trailer.

    Number of files: 24 (reg: 22, dir: 2)
    Number of created files: 1 (reg: 1)
    Number of regular files transferred: 2
    Total file size: 210,020 bytes
    Literal data: 20 bytes
    …
    sent 497 bytes  received 58 bytes  1,110.00 bytes/sec
    total size is 210,020  speedup is 378.41

``files`` are the regular files (``reg:``), ``files_new`` the regular files created,
``files_changed`` the regular files transferred that were not created, ``size_bytes`` the
total file size and ``bytes_added`` the literal data (what really had to be sent). Every
other figure goes into ``stats`` under its snake_cased name. rsync prints no times:
``duration_s`` comes from the caller's start and finish. Numbers with ``-h`` suffixes
(``206.42K``) are rounded by rsync and read as powers of 1000.

Exit codes: 0 success, 24 (source files vanished during the transfer) warning, anything
else failed. Without a given exit code, "rsync error: … (code N)" or "rsync warning: …
(code N)" supplies it. A dry run (``-n``, "(DRY RUN)") copied nothing: it is recorded as
``unknown``, never as a backup. The outcome contract is in docs/tool-output.md.
"""

from __future__ import annotations

import re
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.errors import InvalidInput
from backwatch.ingest.tools import register_tool
from backwatch.ingest.tools._common import (
    Verdict,
    check_job,
    content_id,
    log_text,
    outcome_run,
    resolve_times,
)
from backwatch.timeutil import human_bytes

TOOL = "rsync"
WHAT = "`rsync --stats` output"
VANISHED = 24
INTERRUPTED = 20
_NUMBER = r"[\d.,']+[KMGTP]?"
_FIGURE_RE = re.compile(rf"^([A-Z][A-Za-z ]+): ({_NUMBER})(?: bytes| seconds)?(?: \((.*)\))?$")
_SENT_RE = re.compile(
    rf"^sent ({_NUMBER}) bytes\s+received ({_NUMBER}) bytes\s+({_NUMBER}) bytes/sec$"
)
_TOTAL_RE = re.compile(rf"^total size is ({_NUMBER})\s+speedup is ([\d.,]+)(.*)$")
_ERROR_RE = re.compile(r"^rsync (?:error|warning): .*\(code (\d+)\)")
#: rsync's own lines besides the statistics: it ran, whatever the outcome
_OURS_RE = re.compile(
    r"^(rsync(: | error: | warning: )|sending incremental file list|"
    r"receiving incremental file list|created directory |file has vanished: )"
)
MEANINGS = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files, dirs",
    5: "error starting client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in rsync protocol data stream",
    20: "interrupted (SIGUSR1 or SIGINT)",
    23: "partial transfer due to error",
    24: "partial transfer due to vanished source files",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
}
_PART_RE = re.compile(r"(\w+):\s*([\d.,']*\d[KMGTP]?)")
_SUFFIX_RE = re.compile(r"\d[KMGTP]$")
_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}


def status_for_exit(code: int) -> RunStatus:
    if code == 0:
        return RunStatus.SUCCESS
    return RunStatus.WARNING if code == VANISHED else RunStatus.FAILED


def parse(
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
    kind: str | None = None,
) -> RunReport:
    """The run that ``rsync --stats`` output (and its exit code, if known) describes."""
    check_job(job)
    if kind == "check":
        raise InvalidInput.field("kind", "rsync has no check: its output is a transfer")
    stats: dict[str, Any] = {}
    breakdown: dict[str, dict[str, int]] = {}
    seen: dict[str, int] = {}
    other: list[str] = []
    code = exit_code
    rounded = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        figure = _FIGURE_RE.match(line)
        sent = _SENT_RE.match(line)
        total = _TOTAL_RE.match(line)
        found = [g for m in (figure, sent, total) if m for g in m.groups()[:3] if g]
        rounded = rounded or any(_SUFFIX_RE.search(g) for g in found)
        if figure:
            key = _key(figure.group(1))
            if key in seen:
                raise InvalidInput(
                    f"lines {seen[key]} and {number}: {figure.group(1)!r} twice; "
                    "import the output of one rsync run at a time"
                )
            seen[key] = number
            stats[key] = _value(figure.group(2), key)
            if figure.group(3):
                breakdown[key] = _breakdown(figure.group(3))
        elif sent:
            stats["sent_bytes"] = _int(sent.group(1))
            stats["received_bytes"] = _int(sent.group(2))
            stats["bytes_per_sec"] = _float(sent.group(3))
        elif total:
            stats["total_size"] = _int(total.group(1))
            stats["speedup"] = _float(total.group(2))
            if "DRY RUN" in total.group(3):
                stats["dry_run"] = True
        else:
            other.append(line)
            error = _ERROR_RE.match(line)
            if error and code is None:  # the first is the cause; the others follow from it
                code = int(error.group(1))
    for key, parts in breakdown.items():
        stats[f"{key}_by_type"] = parts
    if rounded:
        stats["rounded"] = True
    errors = [line for line in other if line.startswith(("rsync:", "rsync error:"))]
    warnings = [line for line in other if line.startswith(("rsync warning:", "file has vanished:"))]
    log = log_text(other)
    times = {"started_at": started_at, "finished_at": finished_at, "now": now}
    if "number_of_files" not in stats and "total_size" not in stats:
        if code is None and not any(_OURS_RE.match(line) for line in other):
            raise InvalidInput(_no_stats_problem(text))
        return outcome_run(
            TOOL, text, job=job, exit_code=code, log=log,
            verdict=_verdict(code, errors, warnings, stated=False), **times,
        )  # fmt: skip
    if stats.get("dry_run"):
        return outcome_run(
            TOOL, text, job=job, exit_code=code, log=log, stats=stats,
            verdict=Verdict(
                RunStatus.UNKNOWN,
                "a dry run (rsync -n): nothing was copied, so it is not a backup",
            ),
            **times,
        )  # fmt: skip

    files = _regular(stats, breakdown, "number_of_files")
    created = _regular(stats, breakdown, "number_of_created_files")
    transferred = stats.get("number_of_regular_files_transferred")
    changed = None
    if isinstance(transferred, int):
        changed = max(0, transferred - (created or 0))
    size = stats.get("total_file_size", stats.get("total_size"))
    added = stats.get("literal_data")
    start, finish, duration = resolve_times(
        started_at=started_at, finished_at=finished_at, duration=None,
        tool_start=None, tool_end=None, now=now,
    )  # fmt: skip
    verdict = _verdict(code, errors, warnings, stated=True)
    if verdict.status is RunStatus.SUCCESS:
        verdict.message = (
            f"{files if files is not None else '?'} files, "
            f"{transferred if transferred is not None else '?'} transferred "
            f"({human_bytes(added)} literal data), total {human_bytes(size)}"
        )
    return RunReport(
        job=job,
        status=verdict.status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=code,
        size_bytes=size if isinstance(size, int) else None,
        files=files,
        files_new=created,
        files_changed=changed,
        bytes_added=added if isinstance(added, int) else None,
        message=verdict.message,
        log=log,
        tool=TOOL,
        stats=stats,
        backup_id=content_id(TOOL, job, text, start, finish),
    )


def _verdict(code: int | None, errors: list[str], warnings: list[str], *, stated: bool) -> Verdict:
    """rsync's exit code first, then its own error and warning lines; output without the
    statistics shows no finished transfer."""
    said = "; ".join(dict.fromkeys(errors[:2])) + (
        f" (+{len(errors) - 2} more)" if len(errors) > 2 else ""
    )
    if code == INTERRUPTED:
        return Verdict(RunStatus.CANCELLED, f"rsync was interrupted: {said or 'code 20'}")
    if code is not None and status_for_exit(code) is RunStatus.FAILED:
        return Verdict(
            RunStatus.FAILED,
            f"rsync exited with code {code}: {said or MEANINGS.get(code, 'failed')}",
        )
    if code is None and errors:
        return Verdict(RunStatus.FAILED, said)
    if not stated:
        said = f"rsync exited with code {code}" if code is not None else "rsync's output"
        return Verdict(
            RunStatus.UNKNOWN,
            f"{said} has no transfer statistics (run rsync with --stats): the transfer is "
            "not known to have finished",
        )
    if code is not None and status_for_exit(code) is RunStatus.WARNING:
        reason = warnings[0] if warnings else MEANINGS.get(code, "warning")
        return Verdict(RunStatus.WARNING, f"rsync exited with code {code}: {reason}")
    if warnings:
        return Verdict(RunStatus.WARNING, warnings[0])
    return Verdict(RunStatus.SUCCESS, "done")


def _key(label: str) -> str:
    return "_".join(label.lower().split())


def _split_unit(text: str) -> tuple[str, int]:
    if text[-1] in _UNITS:
        return text[:-1].replace(",", ""), _UNITS[text[-1]]
    return text, 1


def _float(text: str) -> float:
    digits, unit = _split_unit(text)
    return float(digits.replace(",", "").replace("'", "")) * unit


def _int(text: str) -> int:
    digits, unit = _split_unit(text)
    if unit > 1:
        return round(float(digits) * unit)
    return int(re.sub(r"[.,']", "", digits))


def _value(text: str, key: str) -> int | float:
    """Counts and byte sizes are whole; times ("… time: 0.001 seconds") are not."""
    return _float(text) if key.endswith("_time") else _int(text)


def _breakdown(text: str) -> dict[str, int]:
    """ "reg: 1,000, dir: 234" → {"reg": 1000, "dir": 234}."""
    return {name: _int(value) for name, value in _PART_RE.findall(text)}


def _regular(stats: dict[str, Any], breakdown: dict[str, dict[str, int]], key: str) -> int | None:
    """The regular files of a "Number of …" figure: its ``reg:`` part, else the whole."""
    if key not in stats:
        return None
    parts = breakdown.get(key)
    if parts is None:
        return stats[key]
    return parts.get("reg", 0)


def _no_stats_problem(text: str) -> str:
    first = next(
        ((n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()), None
    )
    if first is None:
        return f"empty input; expected {WHAT}"
    return (
        f"no rsync statistics found (line {first[0]}: {first[1][:60]!r}); expected {WHAT} "
        "(run rsync with --stats); give its exit code (--exit-code) to record a failed run"
    )


register_tool(TOOL, parse)
