"""restic ``backup --json``: JSON lines keyed by ``message_type`` (restic's doc/075_scripting).

- ``status`` lines report progress and are skipped; ``verbose_status`` lines (``-v``) too.
- ``summary`` is the last line of a backup that made a snapshot. restic 0.14 prints
  ``files_new``, ``files_changed``, ``data_added``, ``total_files_processed``,
  ``total_bytes_processed``, ``total_duration`` and a short ``snapshot_id``; 0.17 adds
  ``backup_start``, ``backup_end``, ``data_added_packed`` and a full ``snapshot_id``.
- ``error`` lines (on stderr) name a file that could not be read: ``error`` is
  ``{"message": …}`` since 0.17 and Go's ``{"Op", "Path", "Err"}`` before.
- ``exit_error`` (0.17+, on stderr) carries the exit code and the fatal message.

Exit codes: 0 success, 3 snapshot made but some files unreadable (→ warning), anything
else failed (1 fatal, 10 no repository, 11 lock failed, 12 wrong password, 130 interrupted).
"""

from __future__ import annotations

import json
import os
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.errors import InvalidInput
from backwatch.ingest.tools import register_tool
from backwatch.ingest.tools._common import (
    Chunk,
    Place,
    check_job,
    content_id,
    failed_run,
    log_text,
    number,
    resolve_times,
    scan,
    seconds,
)
from backwatch.timeutil import human_bytes, parse_time

TOOL = "restic"
WHAT = "`restic backup --json` output"
PARTIAL = 3
EXIT_MEANINGS = {
    1: "fatal error, no snapshot was made",
    3: "some source files could not be read",
    10: "the repository does not exist",
    11: "the repository could not be locked",
    12: "wrong password",
    130: "interrupted",
}


def parse(
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
) -> RunReport:
    """The run that ``restic backup --json`` output (and its exit code, if known) describes."""
    check_job(job)
    chunks = scan(text, what=WHAT)
    by_type: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        kind = chunk.obj.get("message_type") if chunk.obj is not None else None
        by_type.setdefault(str(kind) if kind is not None else "", []).append(chunk)
    summaries = by_type.get("summary", [])
    errors = [_error_text(c.obj) for c in by_type.get("error", []) if c.obj is not None]
    exits = [c.obj for c in by_type.get("exit_error", []) if c.obj is not None]
    texts = [c.text for c in chunks if c.obj is None]
    code = exit_code
    if code is None and exits and isinstance(exits[-1].get("code"), int):
        code = exits[-1]["code"]
    fatal = [str(e.get("message", "")).strip() for e in exits]
    log = log_text([*errors, *fatal, *texts])

    if len(summaries) > 1:
        lines = ", ".join(str(c.line) for c in summaries)
        raise InvalidInput(
            f"lines {lines}: more than one summary; import the output of one backup at a time"
        )
    failed = code is not None and code not in (0, PARTIAL)
    if not summaries:
        if failed:
            assert code is not None
            reason = next((m for m in [*fatal, *errors, *texts] if m), None)
            return failed_run(
                TOOL, text, job=job, exit_code=code, log=log,
                message=reason or f"restic exited with code {code} ({_meaning(code)})",
                started_at=started_at, finished_at=finished_at, now=now,
            )  # fmt: skip
        raise InvalidInput(_no_summary_problem(chunks))

    summary = summaries[0].obj
    assert summary is not None
    where = Place(summaries[0].line)
    files = number(summary, "total_files_processed", where)
    files_new = number(summary, "files_new", where)
    files_changed = number(summary, "files_changed", where)
    size = number(summary, "total_bytes_processed", where)
    added = number(summary, "data_added", where)
    packed = number(summary, "data_added_packed", where)
    start, finish, duration = resolve_times(
        started_at=started_at,
        finished_at=finished_at,
        duration=seconds(summary, "total_duration", where),
        tool_start=_time(summary, "backup_start", where),
        tool_end=_time(summary, "backup_end", where),
        now=now,
    )
    stats: dict[str, Any] = {k: v for k, v in summary.items() if k != "message_type"}
    if added and packed:
        stats["compression_ratio"] = round(added / packed, 3)
    if errors:
        stats["errors"] = len(errors)

    snapshot = summary.get("snapshot_id")
    snapshot = str(snapshot) if snapshot else None
    if failed:
        status = RunStatus.FAILED
    elif code == PARTIAL or errors:
        status = RunStatus.WARNING
    else:
        status = RunStatus.SUCCESS
    saved = f"snapshot {snapshot[:8]} saved" if snapshot else "no snapshot saved"
    if status is RunStatus.FAILED:
        message = next((m for m in fatal if m), None) or (
            f"restic exited with code {code} ({_meaning(code)})"
        )
    elif status is RunStatus.WARNING:
        count = f"{len(errors)} file(s)" if errors else "some files"
        message = f"{saved}, but {count} could not be read"
        if errors:
            message += f": {errors[0]}"
    else:
        message = (
            f"{saved}: {files if files is not None else '?'} files "
            f"({files_new or 0} new, {files_changed or 0} changed), "
            f"{human_bytes(added)} added"
        )
    return RunReport(
        job=job,
        status=status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=code,
        size_bytes=size,
        files=files,
        files_new=files_new,
        files_changed=files_changed,
        bytes_added=added,
        message=message,
        log=log,
        tool=TOOL,
        stats=stats,
        backup_id=f"{TOOL}-{snapshot}" if snapshot else content_id(TOOL, job, text, start, finish),
    )


def _meaning(code: int | None) -> str:
    return EXIT_MEANINGS.get(code or 0, "failed")


def _time(obj: dict[str, Any], key: str, where: Place) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_time(value, field=key)
    except ValueError:
        raise where.invalid(key, f"is not an RFC 3339 time: {value!r}") from None


def _error_text(obj: dict[str, Any]) -> str:
    """One ``error`` line as text: ``ITEM: MESSAGE (during …)``, either shape."""
    err = obj.get("error")
    if isinstance(err, dict) and "message" in err:
        problem = str(err["message"])
    elif isinstance(err, dict) and "Op" in err:
        errno = err.get("Err")
        reason = os.strerror(errno).lower() if isinstance(errno, int) else str(errno)
        problem = f"{err.get('Op')} {err.get('Path')}: {reason}"
    elif err is None:
        problem = "error"
    else:
        problem = err if isinstance(err, str) else json.dumps(err)
    item = obj.get("item")
    during = obj.get("during")
    text = f"{item}: {problem}" if item else problem
    return f"{text} (during {during})" if during else text


def _no_summary_problem(chunks: list[Chunk]) -> str:
    if not chunks:
        return f"empty input; expected {WHAT}"
    if all(c.obj is None for c in chunks):
        first = chunks[0]
        return (
            f"line {first.line}: not JSON ({first.text[:60]!r}); expected {WHAT} "
            "(run restic with --json)"
        )
    typed = [c for c in chunks if c.obj is not None and "message_type" in c.obj]
    if not typed:
        first = next(c for c in chunks if c.obj is not None)
        return f"line {first.line}: a JSON object without message_type; expected {WHAT}"
    return (
        f'no summary line (message_type "summary") in {WHAT}: the backup did not finish; '
        "give restic's exit code (--exit-code) to record it as failed"
    )


register_tool(TOOL, parse)
