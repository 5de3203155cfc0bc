"""borg ``create --json``: one JSON document on stdout, after the backup.

``archive.stats`` holds ``original_size``, ``compressed_size``, ``deduplicated_size`` and
``nfiles``; ``archive`` has ``name``, ``id``, ``start``, ``end`` (local time, no zone) and
``duration``; ``repository``, ``cache.stats`` and ``encryption`` describe the repository.
borg 1.x names no new or changed files there: they are counted from ``--list`` lines
(``A path`` / ``M path``, or ``--log-json`` ``file_status`` objects) when stderr was captured
too (``2>&1``). ``--show-rc``'s "terminating with … status, rc N" gives the exit code.

Exit codes: 0 success; 1 warning (and 100–127 with borg 1.4's modern codes); 2, 3–99 and
128+signal are errors.
"""

from __future__ import annotations

import re
from datetime import datetime
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
from backwatch.timeutil import human_bytes

TOOL = "borg"
WHAT = "`borg create --json` output"
_RC_RE = re.compile(r"terminating with \w+ status, rc (\d+)")
_LIST_RE = re.compile(r"^([AMUEdbchspfi?x-]) (.+)$")
_PROBLEM_LEVELS = {"WARNING", "ERROR", "CRITICAL"}


def status_for_exit(code: int) -> RunStatus:
    if code == 0:
        return RunStatus.SUCCESS
    if code == 1 or 100 <= code <= 127:
        return RunStatus.WARNING
    return RunStatus.FAILED


def parse(
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
) -> RunReport:
    """The run that ``borg create --json`` output (and its exit code, if known) describes."""
    check_job(job)
    chunks = scan(text, what=WHAT)
    documents = [c for c in chunks if c.obj is not None and "archive" in c.obj]
    if len(documents) > 1:
        lines = ", ".join(str(c.line) for c in documents)
        raise InvalidInput(
            f"lines {lines}: more than one archive; import the output of one backup at a time"
        )
    listing = _Listing()
    for chunk in chunks:
        if chunk is not (documents[0] if documents else None):
            listing.add(chunk)
    code = exit_code if exit_code is not None else listing.rc
    log = log_text(listing.log)

    if not documents:
        if code is not None and status_for_exit(code) is RunStatus.FAILED:
            return failed_run(
                TOOL, text, job=job, exit_code=code, log=log,
                message=listing.problems[0] if listing.problems else f"borg exited with {code}",
                started_at=started_at, finished_at=finished_at, now=now,
            )  # fmt: skip
        raise InvalidInput(_no_archive_problem(chunks))

    doc = documents[0].obj
    assert doc is not None
    where = Place(documents[0].line, "archive")
    archive = doc.get("archive")
    if not isinstance(archive, dict):
        raise Place(documents[0].line).invalid("archive", "must be a JSON object")
    figures = archive.get("stats") or {}
    if not isinstance(figures, dict):
        raise where.invalid("stats", "must be a JSON object")
    in_stats = where.at("stats")
    original = number(figures, "original_size", in_stats)
    compressed = number(figures, "compressed_size", in_stats)
    dedup = number(figures, "deduplicated_size", in_stats)
    nfiles = number(figures, "nfiles", in_stats)
    start, finish, duration = resolve_times(
        started_at=started_at,
        finished_at=finished_at,
        duration=seconds(archive, "duration", where),
        tool_start=_local_time(archive, "start", where),
        tool_end=_local_time(archive, "end", where),
        now=now,
    )
    stats: dict[str, Any] = {**figures}
    if original and compressed:
        stats["compression_ratio"] = round(original / compressed, 3)
    if compressed and dedup:
        stats["dedup_ratio"] = round(compressed / dedup, 3)
    stats["archive"] = {k: v for k, v in archive.items() if k != "stats"}
    stats.update({k: v for k, v in doc.items() if k != "archive"})
    if listing.problems:
        stats["problems"] = len(listing.problems)

    if code is not None:
        status = status_for_exit(code)
    else:
        status = RunStatus.WARNING if listing.problems else RunStatus.SUCCESS
    name = archive.get("name") or "?"
    if status is RunStatus.SUCCESS:
        message = (
            f"archive {name}: {nfiles if nfiles is not None else '?'} files, "
            f"{human_bytes(original)} original, {human_bytes(dedup)} added"
        )
    else:
        problem = listing.problems[0] if listing.problems else f"borg exited with {code}"
        message = f"archive {name}: {problem}"
    archive_id = archive.get("id")
    return RunReport(
        job=job,
        status=status,
        started_at=start,
        finished_at=finish,
        duration_s=duration,
        exit_code=code,
        size_bytes=original,
        files=nfiles,
        files_new=listing.new if listing.listed else None,
        files_changed=listing.changed if listing.listed else None,
        bytes_added=dedup,
        message=message,
        log=log,
        tool=TOOL,
        stats=stats,
        backup_id=(
            f"{TOOL}-{archive_id}" if archive_id else content_id(TOOL, job, text, start, finish)
        ),
    )


class _Listing:
    """What borg printed on stderr: --list lines, log messages, --show-rc's exit code."""

    def __init__(self) -> None:
        self.listed = False
        self.new = 0
        self.changed = 0
        self.problems: list[str] = []
        self.log: list[str] = []
        self.rc: int | None = None

    def add(self, chunk: Chunk) -> None:
        obj = chunk.obj
        if obj is None:
            self._text(chunk.text)
        elif obj.get("type") == "file_status":
            self._file(str(obj.get("status", "")), str(obj.get("path", "")))
        elif obj.get("type") == "log_message":
            message = str(obj.get("message", "")).strip()
            self._rc(message)
            self.log.append(message)
            if obj.get("levelname") in _PROBLEM_LEVELS and not _RC_RE.search(message):
                self.problems.append(message)

    def _text(self, line: str) -> None:
        self.log.append(line)
        listed = _LIST_RE.match(line)
        if listed:
            self._file(listed.group(1), listed.group(2))
        elif not self._rc(line):
            self.problems.append(line)

    def _file(self, status: str, path: str) -> None:
        self.listed = True
        if status == "A":
            self.new += 1
        elif status == "M":
            self.changed += 1
        elif status == "E":
            self.problems.append(f"{path}: could not be read")

    def _rc(self, message: str) -> bool:
        found = _RC_RE.search(message)
        if found:
            self.rc = int(found.group(1))
        return found is not None


def _local_time(obj: dict[str, Any], key: str, where: Place) -> float | None:
    """borg prints local time without a zone (1.x); a zone, if present, is honoured."""
    value = obj.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise where.invalid(key, f"is not an ISO 8601 time: {value!r}") from None


def _no_archive_problem(chunks: list[Chunk]) -> str:
    if not chunks:
        return f"empty input; expected {WHAT}"
    if all(c.obj is None for c in chunks):
        first = chunks[0]
        return (
            f"line {first.line}: not JSON ({first.text[:60]!r}); expected {WHAT} "
            "(run borg create with --json)"
        )
    return (
        f"no archive in {WHAT}: borg did not finish the backup; "
        "give borg's exit code (--exit-code) to record it as failed"
    )


register_tool(TOOL, parse)
