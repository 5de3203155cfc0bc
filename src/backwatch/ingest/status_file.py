"""Seed 000's status file: one ``<service>_status.json`` per service, rewritten by a script
as its backup moves on::

    {"service": "plex", "description": "Plex Media Server backup",
     "backup_path": "/mnt/share/media/backups/plex", "status": "success",
     "start_time": "2025-06-18T02:00:00-04:00", "end_time": "2025-06-18T02:05:30-04:00",
     "duration_seconds": 330, "files_processed": 3, "total_size_bytes": 1073741824,
     "message": "Backup completed successfully", "hostname": "media-server"}

A file going ``running`` → ``success`` is one run: its id is the file's ``run_id`` (written
by the shell library, which may also report the same run over HTTP), else derived from the
service and the start time (``status_run_id``), so the same backup always maps to the same
run however often the file is read. Shell scripts write these files, so numbers may arrive
as strings and a missing ``end_time`` may be ``""`` or ``"null"``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from backwatch.domain.bounds import (
    COUNT_PROBLEM,
    DURATION_PROBLEM,
    count_ok,
    duration_ok,
)
from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import MESSAGE_LIMIT, RunReport, storable_json, tail_text
from backwatch.errors import InvalidInput
from backwatch.ids import JOB_ID_RE
from backwatch.timeutil import parse_time

SUFFIX = "_status.json"
SOURCE = "status-file"

#: what scripts write in ``status`` → the run status it means
_STATUS_WORDS = {
    "running": RunStatus.RUNNING,
    "started": RunStatus.RUNNING,
    "start": RunStatus.RUNNING,
    "in_progress": RunStatus.RUNNING,
    "in-progress": RunStatus.RUNNING,
    "queued": RunStatus.QUEUED,
    "success": RunStatus.SUCCESS,
    "succeeded": RunStatus.SUCCESS,
    "successful": RunStatus.SUCCESS,
    "completed": RunStatus.SUCCESS,
    "complete": RunStatus.SUCCESS,
    "done": RunStatus.SUCCESS,
    "ok": RunStatus.SUCCESS,
    "warning": RunStatus.WARNING,
    "partial": RunStatus.WARNING,
    "failed": RunStatus.FAILED,
    "failure": RunStatus.FAILED,
    "fail": RunStatus.FAILED,
    "error": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
    "canceled": RunStatus.CANCELLED,
    "timed_out": RunStatus.TIMED_OUT,
    "timeout": RunStatus.TIMED_OUT,
    "skipped": RunStatus.SKIPPED,
}
_EMPTY = (None, "", "null", "none")


@dataclass
class StatusFile:
    """A parsed status file: the run it describes plus the job details it carries."""

    report: RunReport
    description: str | None = None
    backup_path: str | None = None


def job_from_service(name: str) -> str:
    """A service name → a job id, exactly as backwatch.sh derives it (so a watched
    METRICS_DIR and the library's own reports name the same job): lower case, every other
    character becomes '-', leading non-alphanumerics dropped, at most 64 characters."""
    slug = re.sub(r"[^a-z0-9._-]", "-", name.lower())
    slug = re.sub(r"^[^a-z0-9]+", "", slug)[:64]
    if not JOB_ID_RE.match(slug):
        raise InvalidInput.field("service", f"cannot make a job id from {name!r}")
    return slug


def status_run_id(job: str, started_at: float) -> str:
    """The same service and start time always give the same run id (``sf-`` + 24 hex)."""
    digest = hashlib.sha256(f"{job}\n{started_at:.3f}".encode()).hexdigest()
    return "sf-" + digest[:24]


def _given_run_id(obj: dict[str, Any]) -> str | None:
    """The shell library (and serve) write the run's id: the run its API calls made."""
    value = obj.get("run_id")
    if not isinstance(value, str) or "/" in value or not value.isprintable():
        return None
    return value if 0 < len(value) <= 64 else None


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value in _EMPTY:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidInput.field(key, "must be text")
    return str(value)


def _count(obj: dict[str, Any], key: str, *, whole: bool = True) -> Any:
    value = obj.get(key)
    if value in _EMPTY:
        return None
    if isinstance(value, bool):
        raise InvalidInput.field(key, "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput.field(key, f"must be a number, not {value!r}") from None
    if not isinstance(value, int | float) or value != value:
        raise InvalidInput.field(key, "must be a number")
    if value < 0:
        raise InvalidInput.field(key, "must not be negative")
    if not whole:
        if not duration_ok(value):
            raise InvalidInput.field(key, DURATION_PROBLEM)
        return float(value)
    if not (value < float(2**63) and count_ok(int(value))):  # int(inf) would raise
        raise InvalidInput.field(key, COUNT_PROBLEM)
    return int(value)


def _time(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value in _EMPTY:
        return None
    try:
        return parse_time(value, field=key, report=True)
    except ValueError as exc:
        raise InvalidInput.field(key, str(exc)) from None


def _status(obj: dict[str, Any]) -> RunStatus:
    raw = obj.get("status")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput.field("status", "is required (running, success, failed …)")
    status = _STATUS_WORDS.get(raw.strip().lower())
    if status is None:
        raise InvalidInput.field("status", f"unknown status {raw!r}")
    return status


def parse_status_file(
    obj: Any, *, file_name: str | None = None, mtime: float | None = None
) -> StatusFile:
    """A decoded status file → ``StatusFile`` (InvalidInput naming the field if wrong).

    ``file_name`` supplies the service when the file names none; ``mtime`` is the end of a
    finished run whose file gives neither ``end_time`` nor ``duration_seconds``.
    """
    if not isinstance(obj, dict):
        raise InvalidInput("a status file must hold a JSON object")
    obj = storable_json(obj)  # the description and path reach the job's row too
    service = _text(obj, "service")
    if service is None and file_name and file_name.endswith(SUFFIX):
        service = file_name[: -len(SUFFIX)]
    if not service:
        raise InvalidInput.field("service", "is required")
    job = job_from_service(service)
    status = _status(obj)
    started = _time(obj, "start_time")
    if started is None:
        raise InvalidInput.field("start_time", "is required to tell one run from the next")
    finished = _time(obj, "end_time")
    duration = _count(obj, "duration_seconds", whole=False)
    running = status in (RunStatus.RUNNING, RunStatus.QUEUED)
    if running:
        finished = duration = None
    else:
        if finished is None:
            finished = started + duration if duration is not None else mtime
        if finished is not None and finished < started:
            raise InvalidInput.field("end_time", "is before start_time")
        if duration is None and finished is not None:
            duration = finished - started
    report = RunReport(
        id=_given_run_id(obj) or status_run_id(job, started),
        job=job,
        host=(_text(obj, "hostname") or "")[:255] or None,
        status=status,
        started_at=started,
        finished_at=finished,
        duration_s=duration,
        files=_count(obj, "files_processed"),
        size_bytes=_count(obj, "total_size_bytes"),
        message=tail_text(_text(obj, "message"), MESSAGE_LIMIT),
        source=SOURCE,
        trigger="api",
    )
    return StatusFile(report, _text(obj, "description"), _text(obj, "backup_path"))


def parse_status_text(
    text: str, *, file_name: str | None = None, mtime: float | None = None
) -> StatusFile:
    """The text of a status file → ``StatusFile``; malformed JSON is an InvalidInput too."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    return parse_status_file(obj, file_name=file_name, mtime=mtime)
