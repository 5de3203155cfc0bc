"""Seed 001's JSONL record: one line per backup, written by a script at its end.

    {"timestamp": "2026-01-07T02:00:00-08:00", "backup_id": "2026-01-07_020000",
     "success": true, "duration_total": 1265, "duration_snapshot": 5, …, "size_bytes": 2912345678}

``timestamp`` is the run's start, ``backup_id`` its idempotency key, and every
``duration_<name>`` other than ``duration_total`` is a phase, in the order written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import PhaseReport, RunReport
from backwatch.errors import InvalidInput
from backwatch.ingest import register_record_format
from backwatch.ingest._validation import validate
from backwatch.ingest.native import check_job_id
from backwatch.timeutil import parse_time

PHASE_PREFIX = "duration_"


class Seed001In(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    timestamp: str | float
    backup_id: Annotated[str, Field(min_length=1, max_length=128)]
    success: bool
    duration_total: Annotated[float, Field(ge=0)] | None = None
    size_bytes: Annotated[int, Field(ge=0)] | None = None
    job: str | None = None
    host: str | None = None
    message: str | None = None

    _job = field_validator("job")(lambda cls, v: None if v is None else check_job_id(v))

    @field_validator("timestamp")
    @classmethod
    def _ts(cls, value: str | float) -> str | float:
        parse_time(value, field="timestamp")
        return value


def is_seed001(obj: dict[str, Any]) -> bool:
    return "backup_id" in obj and "success" in obj and "status" not in obj


def parse_seed001(
    obj: dict[str, Any], *, default_job: str = "backup", source: str = "api"
) -> RunReport:
    model: Seed001In = validate(Seed001In, obj)
    phases = []
    for key, value in (model.model_extra or {}).items():
        if not key.startswith(PHASE_PREFIX):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidInput.field(key, "must be a non-negative number of seconds")
        phases.append(PhaseReport(name=key[len(PHASE_PREFIX) :], duration_s=float(value)))
    started = parse_time(model.timestamp, field="timestamp")
    duration = model.duration_total
    if duration is None and phases:
        duration = sum(p.duration_s or 0 for p in phases)
    return RunReport(
        job=model.job or default_job,
        host=model.host,
        status=RunStatus.SUCCESS if model.success else RunStatus.FAILED,
        started_at=started,
        finished_at=started + duration if duration is not None else started,
        duration_s=duration,
        size_bytes=model.size_bytes,
        message=model.message,
        phases=phases,
        backup_id=model.backup_id,
        source=source,
        trigger="api",
    )


register_record_format("seed001", is_seed001, parse_seed001)
