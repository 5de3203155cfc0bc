"""Bodies of the lifecycle calls: start, status, phases, files, finish (SPEC §4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backwatch.domain.lifecycle import RunStatus, parse_status
from backwatch.domain.report import (
    MESSAGE_LIMIT,
    PhaseReport,
    RunReport,
    storable_json,
    tail_text,
)
from backwatch.errors import InvalidInput
from backwatch.ingest._validation import validate
from backwatch.ingest.native import (
    NonNegFloat,
    NonNegInt,
    PhaseName,
    Phases,
    TimeValue,
    Trigger,
    check_finite,
    check_job_id,
    check_run_id,
    check_trigger,
    phase_reports,
)
from backwatch.timeutil import parse_time


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class StartIn(_Body):
    job: str
    id: str | None = None
    host: Annotated[str, Field(max_length=255)] | None = None
    started_at: TimeValue = None
    tool: Annotated[str, Field(max_length=64)] | None = None
    message: str | None = None
    status: str = "running"
    trigger: Trigger | None = None
    kind: Literal["backup", "check", "drill"] = "backup"

    _job = field_validator("job")(lambda cls, v: check_job_id(v))
    _id = field_validator("id")(lambda cls, v: None if v is None else check_run_id(v))

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        status = parse_status(value)
        if status not in (RunStatus.RUNNING, RunStatus.QUEUED):
            raise ValueError("a started run must be 'running' or 'queued'")
        return status.value

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str | None) -> str | None:
        return check_trigger(value)


class StatusIn(_Body):
    message: str | None = None
    status: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return None if value is None else parse_status(value).value


class PhaseEventIn(_Body):
    name: PhaseName
    event: str = "record"
    at: TimeValue = None
    duration_s: NonNegFloat | None = None
    status: str | None = None

    @field_validator("event")
    @classmethod
    def _event(cls, value: str) -> str:
        if value not in ("start", "end", "record"):
            raise ValueError("must be 'start', 'end' or 'record'")
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return None if value is None else parse_status(value).value


class FileIn(_Body):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    size: NonNegInt | None = None
    status: Annotated[str, Field(min_length=1, max_length=16)] = "success"


class FilesIn(_Body):
    files: Annotated[list[FileIn], Field(max_length=10_000)]


class FinishIn(_Body):
    status: str
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
    stats: dict[str, Any] | None = None
    phases: Phases | None = None
    trigger: Trigger | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        status = parse_status(value)
        if status in (RunStatus.RUNNING, RunStatus.QUEUED):
            raise ValueError("a finished run needs a final status (success, warning, failed …)")
        return status.value

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str | None) -> str | None:
        return check_trigger(value)


def parse_start(obj: Any, now: float, *, source: str = "api") -> RunReport:
    body: StartIn = validate(StartIn, _obj(obj))
    return RunReport(
        id=body.id,
        job=body.job,
        host=body.host,
        status=RunStatus(body.status),
        started_at=parse_time(body.started_at) if body.started_at is not None else now,
        tool=body.tool,
        message=tail_text(body.message, MESSAGE_LIMIT),
        source=source,
        trigger=body.trigger or "api",
        kind=body.kind,
    )


def parse_status_update(obj: Any) -> StatusIn:
    result: StatusIn = validate(StatusIn, _obj(obj))
    return result


def parse_phase_event(obj: Any) -> PhaseEventIn:
    result: PhaseEventIn = validate(PhaseEventIn, _obj(obj))
    return result


def parse_files(obj: Any) -> list[dict[str, Any]]:
    obj = _obj(obj)
    body: FilesIn = validate(FilesIn, obj if "files" in obj else {"files": [obj]})
    return [f.model_dump() for f in body.files]


def parse_finish(obj: Any) -> tuple[RunStatus, dict[str, Any], list[PhaseReport], str | None]:
    body: FinishIn = validate(FinishIn, _obj(obj))
    fields = body.model_dump(exclude={"status", "phases", "log", "trigger"})
    if fields.get("finished_at") is not None:
        fields["finished_at"] = parse_time(fields["finished_at"], field="finished_at")
    fields["message"] = tail_text(fields.get("message"), MESSAGE_LIMIT)
    if body.stats is not None:
        check_finite(body.stats, "stats")
    phases = phase_reports(body.phases)
    return RunStatus(body.status), fields, phases, body.log


def _obj(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InvalidInput("the body must be a JSON object")
    return storable_json(obj)  # phase names, file paths, messages: NUL and lone surrogates
