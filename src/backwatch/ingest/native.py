"""The native run report (SPEC §3.1), as sent to ``POST /api/v1/runs`` or ``backwatch push``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backwatch.domain.lifecycle import parse_status
from backwatch.domain.report import MESSAGE_LIMIT, PhaseReport, RunReport, tail_text
from backwatch.errors import InvalidInput
from backwatch.ingest import register_record_format
from backwatch.ingest._validation import validate
from backwatch.settings import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.timeutil import parse_time

NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
TimeValue = str | float
RUN_ID_MAX = 64

KNOWN_FIELDS = {
    "id", "job", "host", "status", "started_at", "finished_at", "duration_s", "exit_code",
    "size_bytes", "files", "files_new", "files_changed", "bytes_added", "message", "log",
    "tool", "stats", "phases", "backup_id", "trigger", "source",
}  # fmt: skip


def _time(value: object, field: str) -> float | None:
    if value is None:
        return None
    return parse_time(value, field=field)


def check_job_id(value: str) -> str:
    if not JOB_ID_RE.match(value):
        raise ValueError(JOB_ID_PROBLEM)
    return value


def check_run_id(value: str) -> str:
    if not value or len(value) > RUN_ID_MAX or not value.isprintable() or "/" in value:
        raise ValueError(f"must be 1–{RUN_ID_MAX} printable characters without '/'")
    return value


class PhaseIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    duration_s: NonNegFloat | None = None
    started_at: TimeValue | None = None
    finished_at: TimeValue | None = None
    status: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return None if value is None else parse_status(value).value


class ReportIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    id: str | None = None
    job: str
    host: Annotated[str, Field(max_length=255)] | None = None
    status: str
    started_at: TimeValue
    finished_at: TimeValue | None = None
    duration_s: NonNegFloat | None = None
    exit_code: Annotated[int, Field(ge=-255, le=255)] | None = None
    size_bytes: NonNegInt | None = None
    files: NonNegInt | None = None
    files_new: NonNegInt | None = None
    files_changed: NonNegInt | None = None
    bytes_added: NonNegInt | None = None
    message: str | None = None
    log: str | None = None
    tool: Annotated[str, Field(max_length=64)] | None = None
    stats: dict[str, Any] | None = None
    phases: list[PhaseIn] | dict[str, NonNegFloat] | None = None
    backup_id: Annotated[str, Field(max_length=128)] | None = None
    trigger: str | None = None

    _job = field_validator("job")(lambda cls, v: check_job_id(v))
    _id = field_validator("id")(lambda cls, v: None if v is None else check_run_id(v))

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return parse_status(value).value

    @field_validator("started_at", "finished_at")
    @classmethod
    def _times(cls, value: TimeValue | None, info: Any) -> TimeValue | None:
        if value is not None:
            parse_time(value, field=info.field_name)
        return value

    @model_validator(mode="after")
    def _order(self) -> ReportIn:
        start = _time(self.started_at, "started_at")
        finish = _time(self.finished_at, "finished_at")
        if start is not None and finish is not None and finish < start:
            raise ValueError("finished_at is before started_at")
        return self


def to_report(
    model: ReportIn, *, source: str = "api", trigger: str = "api", now: float | None = None
) -> RunReport:
    started = parse_time(model.started_at, field="started_at")
    finished = _time(model.finished_at, "finished_at")
    duration = model.duration_s
    status = parse_status(model.status)
    if duration is None and finished is not None:
        duration = finished - started
    if finished is None and duration is not None and status.value not in ("running", "queued"):
        finished = started + duration
    if isinstance(model.phases, dict):
        phases = [PhaseReport(name=n, duration_s=d) for n, d in model.phases.items()]
    else:
        phases = [
            PhaseReport(
                name=p.name,
                duration_s=p.duration_s,
                started_at=_time(p.started_at, "phases.started_at"),
                finished_at=_time(p.finished_at, "phases.finished_at"),
                status=p.status,
            )
            for p in model.phases or []
        ]
    stats = dict(model.stats) if model.stats else None
    extra = model.model_extra or {}
    if extra:
        stats = dict(stats or {})
        stats.setdefault("extra", {}).update(extra)
    return RunReport(
        id=model.id,
        job=model.job,
        host=model.host,
        status=status,
        started_at=started,
        finished_at=finished,
        duration_s=duration,
        exit_code=model.exit_code,
        size_bytes=model.size_bytes,
        files=model.files,
        files_new=model.files_new,
        files_changed=model.files_changed,
        bytes_added=model.bytes_added,
        message=tail_text(model.message, MESSAGE_LIMIT),
        log=tail_text(model.log),
        tool=model.tool,
        stats=stats,
        phases=phases,
        backup_id=model.backup_id,
        source=source,
        trigger=model.trigger or trigger,
    )


def parse_native(
    obj: dict[str, Any], *, default_job: str = "backup", source: str = "api"
) -> RunReport:
    if "job" not in obj and default_job:
        raise InvalidInput.field("job", "is required")
    return to_report(validate(ReportIn, obj), source=source)


register_record_format("native", lambda obj: "status" in obj, parse_native)
