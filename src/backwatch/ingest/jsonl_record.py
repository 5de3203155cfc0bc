"""Seed 001's JSONL record: one line per backup, written by a script at its end.

    {"timestamp": "2026-01-07T02:00:00-08:00", "backup_id": "2026-01-07_020000",
     "success": true, "duration_total": 1265, "duration_snapshot": 5, …, "size_bytes": 2912345678}

``timestamp`` is the run's start, ``backup_id`` its idempotency key, and every
``duration_<name>`` other than ``duration_total`` is a phase, in the order written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backwatch.domain.bounds import DURATION_PROBLEM, duration_ok
from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import MESSAGE_LIMIT, PhaseReport, RunReport, tail_text
from backwatch.errors import InvalidInput
from backwatch.ingest import register_record_format
from backwatch.ingest._validation import validate
from backwatch.ingest.native import (
    PHASE_NAME_MAX,
    NonNegFloat,
    NonNegInt,
    Time,
    check_finite,
    check_job_id,
)
from backwatch.timeutil import parse_time

PHASE_PREFIX = "duration_"
#: keys that mark a JSON object as a seed 001 record (when it has no native "status")
MARKERS = ("backup_id", "success", "timestamp", "duration_total")


class Seed001In(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    timestamp: Time
    backup_id: Annotated[str, Field(min_length=1, max_length=128)]
    success: bool
    duration_total: NonNegFloat | None = None
    size_bytes: NonNegInt | None = None
    job: str | None = None
    host: Annotated[str, Field(max_length=255)] | None = None
    message: str | None = None

    _job = field_validator("job")(lambda cls, v: None if v is None else check_job_id(v))


def is_seed001(obj: dict[str, Any]) -> bool:
    return "status" not in obj and any(key in obj for key in MARKERS)


def parse_seed001(
    obj: dict[str, Any], *, default_job: str = "backup", source: str = "api"
) -> RunReport:
    model: Seed001In = validate(Seed001In, obj)
    phases = []
    extra: dict[str, Any] = {}
    for key, value in (model.model_extra or {}).items():
        if not key.startswith(PHASE_PREFIX):
            extra[key] = value  # kept, as the native report keeps unknown fields
            continue
        name = key[len(PHASE_PREFIX) :]
        if not 1 <= len(name) <= PHASE_NAME_MAX:
            raise InvalidInput.field(key, f"the phase name must be 1–{PHASE_NAME_MAX} characters")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput.field(key, "must be a non-negative number of seconds")
        if not duration_ok(value):
            raise InvalidInput.field(key, DURATION_PROBLEM)
        phases.append(PhaseReport(name=name, duration_s=float(value)))
    if extra:
        check_finite(extra, "body")
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
        message=tail_text(model.message, MESSAGE_LIMIT),
        stats={"extra": extra} if extra else None,
        phases=phases,
        backup_id=model.backup_id,
        source=source,
        trigger="api",
    )


register_record_format("seed001", is_seed001, parse_seed001)
