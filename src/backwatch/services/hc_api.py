"""Healthchecks' management API (``/api/v1|v2|v3/``, docs/healthchecks-api.md) over
backwatch jobs: a check is a job, a ping is a run.

* A check's ``uuid`` is the job's ``check_uuid``; like Healthchecks' it is also a ping URL
  (``/ping/<uuid>``), so only callers that may see ping URLs see it. The others see
  ``unique_key`` instead (Healthchecks' read-only keys).
* ``name`` and ``slug`` are the job id: a name that is not a valid id is made one
  (``slugify``); a job cannot be renamed.
* ``timeout`` is a period schedule (``86400`` → ``1d``), ``schedule`` + ``tz`` a cron
  schedule; ``grace`` is the job's grace. Status comes from the job's health
  (``badges.HC_STATUS``).
* Errors are raised as BackwatchError; the route answers them as ``{"error": "..."}``.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from backwatch.domain.health import Health, HealthVerdict
from backwatch.domain.schedule import parse_schedule
from backwatch.errors import Conflict, Forbidden, NotFound
from backwatch.services import badges, hc_spec
from backwatch.services import jobs as job_service
from backwatch.services.unit import WriteUnit, add_to_totals
from backwatch.services.views import job_verdict, with_health_facts
from backwatch.store import tables as t
from backwatch.store.writer import Op
from backwatch.timeutil import MAX_EPOCH

#: pings listed per check, newest first (Healthchecks' free plan keeps 100)
PING_LIMIT = 100
_GOOD = ("success", "warning", "skipped")
_OPEN = ("queued", "running")
#: alert rules that mean "down" (Healthchecks' flips are up/down changes)
_DOWN_RULES = ("failed", "missed", "stuck")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SLUG_CUT = re.compile(r"[^a-z0-9._-]+")


def unique_key(check_uuid: str) -> str:
    """Healthchecks' ``unique_key``: what a read-only key sees instead of the uuid."""
    return hashlib.sha1(uuid.UUID(check_uuid).hex[:16].encode()).hexdigest()


def plausible_uuid(code: str) -> bool:
    return bool(_UUID_RE.match(code))


# --- reads ---------------------------------------------------------------------------------


def _rows(conn: Connection, where: Any = None) -> list[dict[str, Any]]:
    query = select(t.jobs).order_by(t.jobs.c.id)
    if where is not None:
        query = query.where(where)
    return with_health_facts(conn, [dict(r) for r in conn.execute(query).mappings()])


def find_check(conn: Connection, code: str) -> dict[str, Any]:
    """The job whose check uuid is ``code`` (with its health facts), or NotFound."""
    code = code.lower()
    rows = _rows(conn, t.jobs.c.check_uuid == code) if plausible_uuid(code) else []
    if not rows:
        raise NotFound("check not found")
    return rows[0]


def find_by_unique_key(conn: Connection, key: str) -> dict[str, Any]:
    """The job whose ``unique_key`` is ``key`` (read-only callers address checks so)."""
    uuids = conn.execute(select(t.jobs.c.check_uuid).where(t.jobs.c.check_uuid.isnot(None)))
    for (code,) in uuids:
        if unique_key(code) == key.lower():
            return find_check(conn, code)
    raise NotFound("check not found")


def list_checks(conn: Connection, *, tags: list[str], slug: str | None) -> list[dict[str, Any]]:
    """Jobs with every tag of ``tags`` (and id ``slug``), ordered by id."""
    rows = _rows(conn, t.jobs.c.id == slug) if slug else _rows(conn)
    wanted = set(tags)
    return [r for r in rows if wanted.issubset(r.get("tags") or [])]


def hc_status(verdict: HealthVerdict, v: int) -> str:
    """Healthchecks' status of a job; API v1 says ``started`` while it runs."""
    if verdict.health is Health.RUNNING and v == 1:
        return "started"
    return badges.HC_STATUS[verdict.health]


def isostring(ts: float | None) -> str | None:
    """Healthchecks' time format: whole seconds, ``+00:00``."""
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(int(min(max(ts, 0.0), MAX_EPOCH)), UTC).isoformat()


def _whole(value: float | None) -> int | None:
    """Seconds as Healthchecks' whole numbers; None for a figure that is no number."""
    if value is None or not math.isfinite(value):
        return None
    return int(value)


@dataclass(frozen=True)
class View:
    """How to show checks to one caller."""

    readonly: bool
    v: int
    base: str
    badge_key: str
    channels: str
    stuck_minutes: float


def check_out(row: dict[str, Any], now: float, view: View) -> dict[str, Any]:
    """A job as Healthchecks' ``Check.to_dict``."""
    verdict = job_verdict(row, now, stuck_minutes=view.stuck_minutes)
    last_ping = max((x for x in (row.get("last_started_at"), row.get("last_finished_at")) if x),
                    default=None)  # fmt: skip
    job = row["id"]
    out: dict[str, Any] = {
        "name": row.get("name") or job,
        "slug": job,
        "tags": " ".join(row.get("tags") or []),
        "desc": row.get("description") or "",
        "grace": _whole(row.get("grace_s")) or 0,
        "n_pings": row.get("runs_total") or 0,
        "status": hc_status(verdict, view.v),
        "started": row.get("last_status") in _OPEN,
        "last_ping": isostring(last_ping),
        "next_ping": isostring(verdict.next_due),
        "manual_resume": False,
        "methods": "",
        "subject": "",
        "subject_fail": "",
        "start_kw": "",
        "success_kw": "",
        "failure_kw": "",
        "filter_subject": False,
        "filter_body": False,
        "filter_http_body": False,
        "filter_default_fail": False,
        "badge_url": badges.job_urls(view.base, view.badge_key, job)["svg"],
    }
    if row.get("last_duration_s") is not None and row.get("last_status") not in _OPEN:
        out["last_duration"] = _whole(row["last_duration_s"])
    code = row.get("check_uuid") or ""
    if view.readonly:
        out["unique_key"] = unique_key(code) if code else None
    else:
        out["uuid"] = code
        out["ping_url"] = f"{view.base}/ping/{code}"
        update_url = f"{view.base}/api/v{view.v}/checks/{code}"
        out["update_url"] = update_url
        out["pause_url"] = update_url + "/pause"
        out["resume_url"] = update_url + "/resume"
        out["channels"] = view.channels
    schedule = row.get("schedule")
    if schedule:
        try:
            period = parse_schedule(schedule, row.get("timezone") or "UTC").period_s
        except ValueError:
            period = None
        if period is not None:
            out["timeout"] = _whole(period)
        else:
            out["schedule"] = schedule
            out["tz"] = row.get("timezone") or "UTC"
    return out


def channel_rows(conn: Connection) -> list[dict[str, str]]:
    """The notification channels as Healthchecks' ``Channel.to_dict`` (never the URL)."""
    out = []
    for row in conn.execute(select(t.channels).order_by(t.channels.c.id)).mappings():
        masked = row["masked_url"] or ""
        kind = masked.split("://", 1)[0] if "://" in masked else "apprise"
        out.append({"id": row["id"], "name": masked, "kind": kind})
    return out


def pings_out(conn: Connection, row: dict[str, Any], base: str, v: int) -> list[dict[str, Any]]:
    """The job's runs as Healthchecks pings, newest first: ``n`` counts the stored runs
    from the oldest (1); a run with a log has a ``body_url``."""
    r = t.runs
    total = conn.execute(select(func.count()).where(r.c.job == row["id"])).scalar_one()
    has_log = select(t.run_logs.c.run_id).where(t.run_logs.c.run_id == r.c.id).exists()
    found = conn.execute(
        select(r, has_log.label("has_log"))
        .where(r.c.job == row["id"])
        .order_by(r.c.started_at.desc(), r.c.id.desc())
        .limit(PING_LIMIT)
    ).mappings()
    code = row.get("check_uuid")
    out = []
    for i, run in enumerate(found):
        n = total - i
        finished = run["finished_at"]
        rid = run["backup_id"] if run["backup_id"] and plausible_uuid(run["backup_id"]) else None
        item: dict[str, Any] = {
            "type": _ping_type(run["status"]),
            "date": isostring(finished if finished is not None else run["started_at"]),
            "n": n,
            "scheme": "http",
            "remote_addr": run["host"] or "",
            "method": "",
            "ua": "",
            "rid": rid,
            "body_url": f"{base}/api/v{v}/checks/{code}/pings/{n}/body" if run["has_log"] else None,
            "run_id": run["id"],
            "status": run["status"],
        }
        if finished is not None and run["duration_s"]:
            item["duration"] = round(float(run["duration_s"]), 2)
        out.append(item)
    return out


def _ping_type(status: str) -> str:
    if status in _OPEN:
        return "start"
    return "success" if status in _GOOD else "fail"


def ping_body(conn: Connection, job: str, n: int) -> str | None:
    """The log of the job's ``n``-th stored run (as ``pings_out`` numbers them), or None."""
    if not 1 <= n <= 2**31:  # an OFFSET the databases take
        return None
    r = t.runs
    run_id = conn.execute(
        select(r.c.id).where(r.c.job == job).order_by(r.c.started_at, r.c.id).offset(n - 1).limit(1)
    ).scalar_one_or_none()
    if run_id is None:
        return None
    log: str | None = conn.execute(
        select(t.run_logs.c.log).where(t.run_logs.c.run_id == run_id)
    ).scalar_one_or_none()
    return log or None


def flips_out(
    conn: Connection, job: str, *, start: float | None, end: float | None
) -> list[dict[str, Any]]:
    """Up/down changes of the job, newest first: down when its first failed, missed or
    stuck alert opened, up when the last of them resolved."""
    a = t.alerts
    changes: list[tuple[float, int]] = []
    for opened, resolved in conn.execute(
        select(a.c.opened_at, a.c.resolved_at).where(a.c.job == job, a.c.rule.in_(_DOWN_RULES))
    ):
        changes.append((opened, 1))
        if resolved is not None:
            changes.append((resolved, -1))
    changes.sort()
    flips, open_count = [], 0
    for at, step in changes:
        before = open_count
        open_count += step
        if before == 0 and open_count > 0:
            flips.append((at, 0))
        elif before > 0 and open_count == 0:
            flips.append((at, 1))
    out = [
        {"timestamp": isostring(at), "up": up}
        for at, up in reversed(flips)
        if (start is None or at >= start) and (end is None or at < end)
    ]
    return out


def database_answers(conn: Connection) -> None:
    """``status/``: a query the database must answer (raises when it cannot)."""
    conn.execute(select(1)).scalar_one()


def badge_of(
    conn: Connection, kind: str, name: str, states: int, now: float, stuck_minutes: float
) -> tuple[str, badges.BadgeState] | None:
    """(label, state) of a job's (``kind`` 'job') or a tag's badge; None: no such job."""
    if kind == "job":
        rows = list_checks(conn, tags=[], slug=name)
        if not rows:
            return None
    else:
        rows = list_checks(conn, tags=[] if name == badges.ALL else [name], slug=None)
    statuses = [hc_status(job_verdict(r, now, stuck_minutes=stuck_minutes), 3) for r in rows]
    label = badges.ALL_LABEL if kind == "tag" and name == badges.ALL else name
    return label, badges.badge_state(statuses, states)


# --- writes --------------------------------------------------------------------------------


def _check_channels(conn: Connection, channels: str | None) -> None:
    """Healthchecks' channel identifiers are checked; backwatch routes notifications by its
    ``[[notify]]`` filters, so what a check names is not stored."""
    if channels in (None, "", "*"):
        return
    known = {c["id"] for c in channel_rows(conn)} | {c["name"] for c in channel_rows(conn)}
    for item in (channels or "").split(","):
        if item == "":
            raise hc_spec.HCInvalid("empty channel identifier")
        if item not in known:
            raise hc_spec.HCInvalid(f"invalid channel identifier: {item}")


def create_check(spec: hc_spec.Spec, now: float, *, actor: str) -> Op[tuple[str, bool]]:
    """Op → (job id, created). With ``unique``, an existing job matching those fields is
    updated instead (Healthchecks' upsert)."""
    patch = job_service.job_patch(hc_spec.patch_body(spec))

    def op(conn: Connection, unit: WriteUnit) -> tuple[str, bool]:
        _check_channels(conn, spec.channels)
        if spec.unique:
            for row in conn.execute(select(t.jobs).order_by(t.jobs.c.id)).mappings():
                if hc_spec.matches(dict(row), spec):
                    job_service.update_job(conn, unit, row["id"], patch, now, actor)
                    return row["id"], False
        job = hc_spec.job_id_for(spec)
        if conn.execute(select(t.jobs.c.id).where(t.jobs.c.id == job)).first() is not None:
            raise Conflict(
                f"a check named {job!r} exists already (backwatch names a check by its job "
                'id, which is unique); send unique: ["name"] to update it instead'
            )
        job_service.ensure_job(conn, unit, job, now, actor=actor, origin="api")
        job_service.update_job(conn, unit, job, patch, now, actor)
        return job, True

    return op


def update_check(job: str, spec: hc_spec.Spec, now: float, *, actor: str) -> Op[None]:
    # the name is the job's display name and may change; the slug is its id and may not
    if spec.slug is not None and spec.slug != job:
        raise hc_spec.HCInvalid(
            f"slug: a check's slug is its backwatch job id ({job!r}) and cannot be changed"
        )
    patch = job_service.job_patch(hc_spec.patch_body(spec))

    def op(conn: Connection, unit: WriteUnit) -> None:
        _check_channels(conn, spec.channels)
        job_service.update_job(conn, unit, job, patch, now, actor)

    return op


def delete_check(job: str, now: float, *, actor: str) -> Op[None]:
    """Delete the job and everything stored about it (runs, logs, alerts, rollups); the
    audit events stay. A job declared in backwatch.toml is refused: it would come back."""

    def op(conn: Connection, unit: WriteUnit) -> None:
        origin = conn.execute(select(t.jobs.c.origin).where(t.jobs.c.id == job)).scalar()
        if origin is None:
            raise NotFound("check not found")
        if origin == "config":
            raise Forbidden(
                f"job {job!r} is declared in backwatch.toml; remove it there to delete it"
            )
        run_ids = select(t.runs.c.id).where(t.runs.c.job == job).scalar_subquery()
        for table in (t.run_logs, t.phases, t.run_files):
            conn.execute(delete(table).where(table.c.run_id.in_(run_ids)))
        conn.execute(delete(t.runs).where(t.runs.c.job == job))
        rollups = select(t.daily_rollups).where(t.daily_rollups.c.job == job)
        add_to_totals(conn, [dict(r) for r in conn.execute(rollups).mappings()], sign=-1)
        conn.execute(delete(t.daily_rollups).where(t.daily_rollups.c.job == job))
        conn.execute(delete(t.alerts).where(t.alerts.c.job == job))
        conn.execute(delete(t.job_alert_state).where(t.job_alert_state.c.job == job))
        conn.execute(delete(t.jobs).where(t.jobs.c.id == job))
        job_service.forget_job(conn, job)
        unit.event(
            at=now, kind="config", entity="job", entity_id=job, job=job, to_state="deleted",
            actor=actor,
        )  # fmt: skip
        unit.changes.append({"type": "job", "id": job})

    return op
