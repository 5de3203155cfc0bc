"""The native run report (SPEC §3.1), as sent to ``POST /api/v1/runs`` or ``backwatch push``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    field_validator,
)

from backwatch.domain.bounds import DURATION_PROBLEM, duration_ok
from backwatch.domain.lifecycle import parse_status
from backwatch.domain.report import MESSAGE_LIMIT, PhaseReport, RunReport, tail_text
from backwatch.errors import InvalidInput
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.ingest import register_record_format
from backwatch.ingest._validation import validate
from backwatch.timeutil import parse_time

#: the largest integer the database columns hold (BIGINT)
MAX_INT = 2**63 - 1
NonNegInt = Annotated[int, Field(ge=0, le=MAX_INT)]


def _seconds(value: float) -> float:
    if not duration_ok(value):
        raise ValueError(DURATION_PROBLEM)
    return value


#: a duration in seconds: 0 to 100 years (domain/bounds.py)
NonNegFloat = Annotated[float, Field(ge=0), AfterValidator(_seconds)]
RUN_ID_MAX = 64
PHASE_NAME_MAX = 64
#: what started a run (SPEC §2)
TRIGGERS = ("schedule", "manual", "api", "event")


def _check_time(value: Any) -> Any:
    """A time as sent: ISO 8601 text or epoch seconds. Kept as sent; parse_time reads it."""
    if value is None:
        return None
    return _check_required_time(value)


def _check_required_time(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be an ISO 8601 time (text) or epoch seconds (a number)")
    try:
        parse_time(value, field="time", report=True)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("time ")) from None
    return value


#: ISO 8601 text or epoch seconds (or None: TimeValue); checked once, with one clear message
TimeValue = Annotated[Any, PlainValidator(_check_time)]
Time = Annotated[Any, PlainValidator(_check_required_time)]
PhaseName = Annotated[str, Field(min_length=1, max_length=PHASE_NAME_MAX)]
Trigger = str  # checked against TRIGGERS


def _phases_shape(value: Any) -> str | None:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return None


class PhaseIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    name: PhaseName
    duration_s: NonNegFloat | None = None
    started_at: TimeValue = None
    finished_at: TimeValue = None
    status: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return None if value is None else parse_status(value).value


#: ``phases``: a list of phase objects, or an object ``{name: seconds}``
Phases = Annotated[
    Annotated[list[PhaseIn], Tag("list")] | Annotated[dict[PhaseName, NonNegFloat], Tag("object")],
    Discriminator(
        _phases_shape,
        custom_error_type="phases_shape",
        custom_error_message="must be a list of phases or an object {name: seconds}",
    ),
]


def check_trigger(value: str | None) -> str | None:
    if value is not None and value not in TRIGGERS:
        raise ValueError(f"must be one of: {', '.join(TRIGGERS)}")
    return value


def check_finite(value: Any, field: str) -> None:
    """Refuse NaN and infinities anywhere in free-form JSON (``stats``): no database stores them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput.field(field, "must not contain NaN or Infinity")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def phase_reports(phases: Any) -> list[PhaseReport]:
    """Validated ``phases`` (list or object) → PhaseReports; InvalidInput if a phase ends
    before it starts."""
    if isinstance(phases, dict):
        return [PhaseReport(name=n, duration_s=d) for n, d in phases.items()]
    out = []
    for i, p in enumerate(phases or []):
        start = finish = None  # the times were checked by the model; most phases have none
        if p.started_at is not None:
            start = parse_time(p.started_at, field=f"phases[{i}].started_at")
        if p.finished_at is not None:
            finish = parse_time(p.finished_at, field=f"phases[{i}].finished_at")
        if start is not None and finish is not None and finish < start:
            raise InvalidInput.field(f"phases[{i}].finished_at", "is before its started_at")
        out.append(PhaseReport(p.name, p.duration_s, start, finish, p.status))
    return out


KNOWN_FIELDS = {
    "id", "job", "host", "status", "started_at", "finished_at", "duration_s", "exit_code",
    "size_bytes", "files", "files_new", "files_changed", "bytes_added", "message", "log",
    "tool", "stats", "phases", "backup_id", "trigger", "source", "kind",
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


class ReportIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    id: str | None = None
    job: str
    host: Annotated[str, Field(max_length=255)] | None = None
    status: str
    started_at: Time
    finished_at: TimeValue = None
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
    phases: Phases | None = None
    backup_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    trigger: Trigger | None = None
    kind: Literal["backup", "check", "drill"] = "backup"

    _job = field_validator("job")(lambda cls, v: check_job_id(v))
    _id = field_validator("id")(lambda cls, v: None if v is None else check_run_id(v))

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return parse_status(value).value

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str | None) -> str | None:
        return check_trigger(value)


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
    if finished is not None and finished < started:
        raise InvalidInput.field("finished_at", "is before started_at")
    phases = phase_reports(model.phases)
    stats = dict(model.stats) if model.stats else None
    extra = model.model_extra or {}
    if extra:
        stats = dict(stats or {})
        kept = stats.get("extra", {})
        if not isinstance(kept, dict):
            raise InvalidInput.field(
                "stats.extra", "must be an object: unknown report fields are kept there"
            )
        stats["extra"] = {**kept, **extra}
    if stats is not None:
        check_finite(stats, "stats")
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
        kind=model.kind,
    )


def parse_native(
    obj: dict[str, Any], *, default_job: str = "backup", source: str = "api"
) -> RunReport:
    if "job" not in obj and default_job:
        raise InvalidInput.field("job", "is required")
    return to_report(validate(ReportIn, obj), source=source)


register_record_format("native", lambda obj: "status" in obj, parse_native)
