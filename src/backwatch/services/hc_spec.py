"""What a Healthchecks create or update body means for a backwatch job
(docs/healthchecks-api.md): checked as Healthchecks checks it, with its error texts, and
turned into the job fields ``PUT /api/v1/jobs`` would set. Used by ``services/hc_api.py``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from backwatch.domain.schedule import parse_schedule
from backwatch.errors import InvalidInput
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE

MIN_SECONDS, MAX_SECONDS = 60, 31536000
UNIQUE_FIELDS = ("name", "slug", "tags", "timeout", "grace")
_SLUG_CUT = re.compile(r"[^a-z0-9._-]+")


class HCInvalid(InvalidInput):
    """A body Healthchecks would answer with 400: the message is its own wording."""

    status = 400


@dataclass(frozen=True)
class Spec:
    """The fields of a create or update body that were sent (None: not sent)."""

    name: str | None = None
    slug: str | None = None
    tags: str | None = None
    desc: str | None = None
    timeout: int | None = None
    grace: int | None = None
    schedule: str | None = None
    tz: str | None = None
    manual_resume: bool | None = None
    methods: str | None = None
    channels: str | None = None
    unique: tuple[str, ...] = ()


def _invalid(field: str, problem: str) -> HCInvalid:
    return HCInvalid(f"json validation error: {field} {problem}")


def parse_spec(body: dict[str, Any]) -> Spec:
    """A create or update body → Spec, checked as Healthchecks checks it (strict types,
    its ranges) with its error texts: ``json validation error: timeout is too small``."""
    values: dict[str, Any] = {}
    limits = {"name": 100, "slug": 100, "schedule": 100, "tags": 500, "desc": 10_000}
    for field in ("name", "slug", "tags", "desc", "schedule", "tz", "methods", "channels"):
        if field not in body:
            continue
        value = body[field]
        if not isinstance(value, str):
            raise _invalid(field, "is not a string")
        if len(value) > limits.get(field, 1000):
            raise _invalid(field, "is too long")
        values[field] = value
    for field in ("timeout", "grace"):
        if field not in body:
            continue
        value = body[field]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(field, "is not a number")
        if value < MIN_SECONDS:
            raise _invalid(field, "is too small")
        if value > MAX_SECONDS:
            raise _invalid(field, "is too large")
        values[field] = value
    if "manual_resume" in body:
        if not isinstance(body["manual_resume"], bool):
            raise _invalid("manual_resume", "is not a boolean")
        values["manual_resume"] = body["manual_resume"]
    if "unique" in body:
        unique = body["unique"]
        if not isinstance(unique, list):
            raise _invalid("unique", "is not an array")
        if any(item not in UNIQUE_FIELDS for item in unique):
            raise _invalid("an item in 'unique'", "has unexpected value")
        values["unique"] = tuple(unique)
    spec = Spec(**values)
    _check_spec(spec)
    return spec


def _check_spec(spec: Spec) -> None:
    if spec.slug is not None and not re.fullmatch(r"[a-z0-9-_]*", spec.slug):
        raise _invalid("slug", "does not match pattern")
    if spec.methods not in (None, ""):
        if spec.methods != "POST":
            raise _invalid("methods", "has unexpected value")
        raise HCInvalid("methods: backwatch accepts pings by HEAD, GET and POST; leave it ''")
    if spec.manual_resume:
        raise HCInvalid(
            "manual_resume: backwatch does not resume a paused job on a ping; "
            "resume it with POST …/resume (leave manual_resume false)"
        )
    if spec.schedule is not None and spec.schedule.strip():
        try:
            parse_schedule(spec.schedule, "UTC")
            if len(spec.schedule.split()) < 5 and not spec.schedule.startswith("@"):
                raise ValueError("not cron")
        except ValueError:
            raise _invalid("schedule", "is not a valid cron expression") from None
    if spec.tz is not None and spec.tz not in _timezones():
        raise _invalid("tz", "is not a valid timezone")


_TZ: set[str] = set()


def _timezones() -> set[str]:
    if not _TZ:
        _TZ.update(available_timezones())
        _TZ.add("UTC")
    return _TZ


def slugify(name: str) -> str:
    """A check name → a job id ('My DB backup' → 'my-db-backup'); '' when nothing is left."""
    return _SLUG_CUT.sub("-", name.strip().lower()).strip("-._")[:64].strip("-._")


def _period(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def patch_body(spec: Spec) -> dict[str, Any]:
    """The job fields a spec sets, in ``PUT /api/v1/jobs`` terms (``job_patch`` checks)."""
    body: dict[str, Any] = {}
    if spec.name is not None:
        body["name"] = spec.name  # the check's name as written; the job id is its slug
    if spec.desc is not None:
        body["description"] = spec.desc
    if spec.tags is not None:
        body["tags"] = spec.tags.split()
    if spec.schedule:
        body["schedule"] = spec.schedule
    elif spec.timeout is not None:
        body["schedule"] = _period(spec.timeout)
    if spec.tz is not None and spec.schedule:
        body["timezone"] = spec.tz
    if spec.grace is not None:
        body["grace"] = f"{spec.grace}s"
    return body


def job_id_for(spec: Spec) -> str:
    if spec.slug:
        if not JOB_ID_RE.match(spec.slug):
            raise HCInvalid(f"slug: {JOB_ID_PROBLEM}")
        return spec.slug
    if spec.name:
        job = slugify(spec.name)
        if job and JOB_ID_RE.match(job):
            return job
    return "check-" + uuid.uuid4().hex[:8]


def _named(row: dict[str, Any], name: str) -> bool:
    """The job is the check called ``name``: by its display name, or by its id when it has
    none (a job that reports made before any check was created for it)."""
    return row.get("name") == name or (not row.get("name") and row["id"] == slugify(name))


def matches(row: dict[str, Any], spec: Spec) -> bool:
    for field in spec.unique:
        value = getattr(spec, field)
        if value is None:
            return False
        if field == "name" and not _named(row, value):
            return False
        if field == "slug" and row["id"] != value:
            return False
        if field == "tags" and (row.get("tags") or []) != value.split():
            return False
        if field == "grace" and float(row.get("grace_s") or 0) != float(value):
            return False
        if field == "timeout":
            try:
                period = parse_schedule(row.get("schedule") or "", "UTC").period_s
            except ValueError:
                return False
            if period != float(value):
                return False
    return True
