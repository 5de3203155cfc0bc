"""Jobs: auto-created on first report, declared in the config file, edited over the API."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select, update

from backwatch.domain.report import storable_json
from backwatch.errors import InvalidInput, NotFound
from backwatch.ingest._validation import invalid_from
from backwatch.ingest.native import check_job_id
from backwatch.services.unit import WriteUnit
from backwatch.settings import JobSettings
from backwatch.store import tables as t
from backwatch.store.dialect import insert_for
from backwatch.store.writer import Op
from backwatch.timeutil import parse_duration

#: fields a user may change with PUT /api/v1/jobs/{id} (the rest is derived)
EDITABLE = (
    "name",
    "description",
    "host",
    "backup_path",
    "tool",
    "schedule",
    "timezone",
    "grace_s",
    "timeout_s",
    "tags",
    "paused",
)


def new_ping_key() -> str:
    return secrets.token_urlsafe(16)


def new_job_row(job_id: str, now: float, origin: str, **fields: Any) -> dict[str, Any]:
    """A new job's row: the defaults every job starts with, then ``fields``."""
    return {
        "id": job_id,
        "name": "",
        "description": "",
        "host": None,
        "tool": None,
        "timezone": "UTC",
        "grace_s": 3600.0,
        "tags": [],
        "paused": False,
        "ping_key": new_ping_key(),
        "check_uuid": str(uuid.uuid4()),
        "origin": origin,
        "created_at": now,
        "updated_at": now,
        "runs_total": 0,
        **fields,
    }


#: write engine → ids of jobs known to exist there. Filled only after a commit (WriteUnit
#: .after_commit) and cleared by a failed transaction (WriteUnit.after_rollback), so a job
#: that went away is re-created by the next report instead of failing it.
_JOB_CACHES: WeakKeyDictionary[Engine, set[str]] = WeakKeyDictionary()


def forget_job(conn: Connection, job_id: str) -> None:
    """A deleted job is no longer known to exist: its next report creates it again."""
    cache = _JOB_CACHES.get(conn.engine)
    if cache is not None:
        cache.discard(job_id)


def _job_cache(conn: Connection, unit: WriteUnit) -> set[str]:
    cache = _JOB_CACHES.get(conn.engine)
    if cache is None:
        cache = _JOB_CACHES[conn.engine] = set()
    unit.job_cache = cache
    return cache


def ensure_job(
    conn: Connection,
    unit: WriteUnit,
    job_id: str,
    now: float,
    *,
    host: str | None = None,
    tool: str | None = None,
    actor: str = "ingest",
    origin: str = "auto",
) -> None:
    """Create the job on its first report (no-op if it exists). ``origin`` says who made it:
    ``auto`` (a report), ``api`` (PUT /api/v1/jobs/{id})."""
    for created in ensure_jobs(conn, unit, {job_id: (host, tool, now)}, origin=origin):
        job_created(unit, created, now, actor=actor, origin=origin)


def ensure_jobs(
    conn: Connection,
    unit: WriteUnit,
    jobs: dict[str, tuple[str | None, str | None, float]],
    *,
    origin: str = "auto",
) -> list[str]:
    """Create those of ``jobs`` (id → host, tool, time) that do not exist yet, in one
    statement; answers the ids created. The caller announces them with ``job_created``
    (so that a batch of reports keeps its events in report order)."""
    cache = _job_cache(conn, unit)
    rows: list[dict[str, Any]] = [
        new_job_row(job_id, now, origin, host=host, tool=tool)
        for job_id, (host, tool, now) in jobs.items()
        if job_id not in unit.known_jobs and job_id not in cache
    ]
    unit.known_jobs.update(jobs)
    if not rows:
        return []
    # parameters, not .values(**row): the statement's SQL is then compiled once; RETURNING
    # because rowcount is -1 for INSERT … ON CONFLICT on psycopg 3
    stmt = _INSERT_JOB.get(conn.dialect.name)
    if stmt is None:
        stmt = _INSERT_JOB[conn.dialect.name] = (
            insert_for(conn, t.jobs)
            .on_conflict_do_nothing(index_elements=[t.jobs.c.id])
            .returning(t.jobs.c.id)
        )
    created = set(conn.execute(stmt, rows).scalars())
    return [row["id"] for row in rows if row["id"] in created]


_INSERT_JOB: dict[str, Any] = {}


def job_created(unit: WriteUnit, job_id: str, now: float, *, actor: str, origin: str) -> None:
    """The event and change of a job that ``ensure_jobs`` created."""
    unit.event(
        at=now,
        kind="config",
        entity="job",
        entity_id=job_id,
        job=job_id,
        to_state="created",
        actor=actor,
        detail={"origin": origin},
    )
    unit.changes.append({"type": "job", "id": job_id})


def upsert_configured(
    conn: Connection, unit: WriteUnit, values: dict[str, Any], now: float, *, actor: str
) -> bool:
    """Create or update a job from the config file; True if anything changed."""
    job_id = values["id"]
    row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    fields = {k: values[k] for k in EDITABLE if k in values}
    if row is None:
        conn.execute(t.jobs.insert().values(**new_job_row(job_id, now, "config", **fields)))
        changed = dict(fields)
    else:
        changed = {k: v for k, v in fields.items() if row[k] != v}
        if not changed and row["origin"] == "config":
            return False
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.id == job_id)
            .values(origin="config", updated_at=now, **changed)
        )
    _config_changed(unit, job_id, "configured", changed, now, actor)
    return True


def _config_changed(
    unit: WriteUnit, job_id: str, to_state: str, changed: Any, now: float, actor: str
) -> None:
    """The audit event and live-stream change of a job whose settings changed."""
    unit.event(
        at=now,
        kind="config",
        entity="job",
        entity_id=job_id,
        job=job_id,
        to_state=to_state,
        actor=actor,
        detail={"changed": sorted(changed)},
    )
    unit.changes.append({"type": "job", "id": job_id})


def update_job(
    conn: Connection, unit: WriteUnit, job_id: str, patch: dict[str, Any], now: float, actor: str
) -> None:
    unknown = sorted(set(patch) - set(EDITABLE))
    if unknown:
        raise InvalidInput.field(unknown[0], "cannot be changed (not an editable job field)")
    row = conn.execute(select(t.jobs.c.id).where(t.jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"job {job_id!r} not found")
    if not patch:
        return
    patch = storable_json(patch)  # a description or tags with NUL or lone surrogates
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(updated_at=now, **patch))
    _config_changed(unit, job_id, "updated", patch, now, actor)


#: what PUT /api/v1/jobs/{id} may change; the rest of a job lives in backwatch.toml
PUT_FIELDS = frozenset(
    {"name", "description", "host", "backup_path", "tool", "schedule", "timezone", "grace",
     "timeout", "tags", "paused"}
)  # fmt: skip


def job_patch(body: Any) -> dict[str, Any]:
    """A PUT body ({description, schedule, grace: '1h', timeout, tags, paused, …}) → columns."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    body = dict(body)
    body.pop("id", None)
    for key in sorted(body):
        if key not in PUT_FIELDS:
            known = key in JobSettings.model_fields
            raise InvalidInput.field(
                key,
                "is set in backwatch.toml, not over the API" if known else "unknown job field",
            )
    try:
        parsed = JobSettings.model_validate({"id": "x", **body})
    except ValidationError as exc:
        raise invalid_from(exc) from None
    patch: dict[str, Any] = {}
    for key in EDITABLE:  # the columns named as their fields (not grace_s, timeout_s)
        if key in body:
            patch[key] = getattr(parsed, key)
    if "grace" in body:
        patch["grace_s"] = parse_duration(parsed.grace)
    if "timeout" in body:
        patch["timeout_s"] = parse_duration(parsed.timeout) if parsed.timeout else None
    return patch


def put_job(job_id: str, body: Any, now: float, *, actor: str) -> Op[None]:
    """``PUT /api/v1/jobs/{id}``: create the job if it is new, then change what ``body``
    sets (``job_patch``). The id and the body are checked before anything is written."""
    try:
        check_job_id(job_id)
    except ValueError as exc:
        raise InvalidInput.field("id", str(exc)) from None
    patch = job_patch(body)

    def op(conn: Connection, unit: WriteUnit) -> None:
        ensure_job(conn, unit, job_id, now, actor=actor, origin="api")
        update_job(conn, unit, job_id, patch, now, actor)

    return op


def set_paused(
    conn: Connection, unit: WriteUnit, job_id: str, paused: bool, now: float, actor: str
) -> None:
    row = conn.execute(select(t.jobs.c.paused).where(t.jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"job {job_id!r} not found")
    if bool(row.paused) == paused:
        return
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(paused=paused, updated_at=now))
    unit.event(
        at=now,
        kind="state_change",
        entity="job",
        entity_id=job_id,
        job=job_id,
        from_state="paused" if not paused else "active",
        to_state="paused" if paused else "active",
        actor=actor,
        trigger="manual",
    )
    unit.changes.append({"type": "job", "id": job_id})
