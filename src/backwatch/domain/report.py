"""The one shape every ingest format becomes: a ``RunReport`` (with its phases)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from backwatch.domain.lifecycle import RunStatus

LOG_LIMIT = 100 * 1024  # bytes of log tail kept per run
MESSAGE_LIMIT = 4096


@dataclass
class PhaseReport:
    name: str
    duration_s: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    status: str | None = None


@dataclass
class RunReport:
    job: str
    status: RunStatus
    started_at: float
    id: str | None = None
    host: str | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    size_bytes: int | None = None
    files: int | None = None
    files_new: int | None = None
    files_changed: int | None = None
    bytes_added: int | None = None
    message: str | None = None
    log: str | None = None
    tool: str | None = None
    stats: dict[str, Any] | None = None
    phases: list[PhaseReport] = field(default_factory=list)
    backup_id: str | None = None
    source: str = "api"
    trigger: str = "api"
    #: ``backup`` (default), ``check`` or ``drill`` (``lifecycle.RUN_KINDS``)
    kind: str = "backup"


#: the RunReport fields a native report (SPEC §3.1) carries, in its own names
NATIVE_FIELDS = (
    "id", "job", "host", "started_at", "finished_at", "duration_s", "exit_code", "size_bytes",
    "files", "files_new", "files_changed", "bytes_added", "message", "log", "tool", "stats",
    "backup_id", "kind",
)  # fmt: skip


def native_body(report: RunReport) -> dict[str, Any]:
    """``report`` as the JSON body of ``POST /api/v1/runs`` (unset fields left out), for a
    client that reads a run itself and reports it (``import``, ``drill``)."""
    body = {name: value for name in NATIVE_FIELDS if (value := getattr(report, name)) is not None}
    body["status"] = report.status.value
    return body


def storable(text: str) -> str:
    """``text`` as both databases can store it: no NUL (PostgreSQL refuses it in text) and
    no lone surrogates (not encodable as UTF-8); each becomes a replacement character."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON: ``stats``) with every key and string ``storable``; the very
    same object when nothing needed cleaning (the rule), so a clean report costs no copy.
    Every report passes here: the loops are written for speed."""
    kind = type(value)
    if kind is str:
        return storable(value)
    if kind is dict:
        out = None
        for i, (key, item) in enumerate(value.items()):
            new_key = storable(key) if type(key) is str else key
            new_item = item if item is None or type(item) in _PLAIN else storable_json(item)
            if out is None and (new_key is not key or new_item is not item):
                out = dict(list(value.items())[:i])
            if out is not None:
                out[new_key] = new_item
        return value if out is None else out
    if kind is list:
        copy = None
        for i, item in enumerate(value):
            new_item = item if item is None or type(item) in _PLAIN else storable_json(item)
            if copy is None and new_item is not item:
                copy = value[:i]
            if copy is not None:
                copy.append(new_item)
        return value if copy is None else copy
    return value


_PLAIN = (int, float, bool)


def storable_report(report: RunReport) -> RunReport:
    """A copy of ``report`` whose every text field, phase name and ``stats`` key and string
    is ``storable``."""
    changes: dict[str, Any] = {
        f.name: storable(value)
        for f in fields(report)
        if isinstance(value := getattr(report, f.name), str)
    }
    changes["phases"] = [
        replace(p, name=storable(p.name), status=p.status and storable(p.status))
        for p in report.phases
    ]
    changes["stats"] = storable_json(report.stats)
    return replace(report, **changes)


def tail_text(text: str | None, limit: int = LOG_LIMIT) -> str | None:
    """The last ``limit`` bytes of ``text`` (UTF-8), cut on a character boundary."""
    if text is None:
        return None
    text = storable(text)
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    return raw[-limit:].decode("utf-8", "ignore")


def lay_out_phases(phases: list[PhaseReport], started_at: float) -> list[PhaseReport]:
    """Give phases without times consecutive start/finish times from the run's start."""
    cursor = started_at
    out = []
    for phase in phases:
        start = phase.started_at if phase.started_at is not None else cursor
        finish = phase.finished_at
        duration = phase.duration_s
        if finish is None and duration is not None:
            finish = start + duration
        if duration is None and finish is not None:
            duration = max(0.0, finish - start)
        out.append(PhaseReport(phase.name, duration, start, finish, phase.status or "success"))
        if finish is not None:
            cursor = finish
    return out
