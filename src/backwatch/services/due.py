"""A scheduled job's next due time, kept on its row (``jobs.due_at``).

Health is computed when read (domain/health.py), and for one job that stays so. But a
fleet's counts and its filtered pages are answered in SQL (store/job_list.py), and a cron
walk is not SQL: so each write transaction sets ``due_at`` for the scheduled jobs it
touched, from the same ``Schedule.next_after`` health uses. ``due_from`` (the start, or
the creation, it counts from) and ``due_key`` (schedule and time zone) say what it was
computed for: a row whose inputs moved since (a migration, a write that went around the
services) is *stale*; ``refresh_due(conn)`` finds those with one query, on start.
Unscheduled jobs need nothing here: their due time (last start + learned interval) is SQL.

The same index serves the periodic check of the time rules (services/alerts):
``time_rule_suspects`` names the jobs past their due time and grace, or running longer than
a run may take, without reading the others.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    update,
)

from backwatch.domain.schedule import parse_schedule
from backwatch.store import tables as t
from backwatch.store.dialect import execute_many
from backwatch.store.job_list import stuck_limit_sql

_IN_CHUNK = 500
_j = t.jobs


def scheduled() -> ColumnElement[bool]:
    """The job has a schedule (an empty one is none, as health reads it)."""
    return and_(_j.c.schedule.is_not(None), _j.c.schedule != "")


def due_key_sql() -> ColumnElement[Any]:
    return _j.c.schedule + literal("|") + _j.c.timezone


def due_base_sql() -> ColumnElement[Any]:
    return func.coalesce(_j.c.last_started_at, _j.c.created_at)


def stale() -> ColumnElement[bool]:
    """A scheduled job whose ``due_at`` was not computed for its current inputs."""
    return and_(
        scheduled(),
        or_(
            _j.c.due_from.is_(None),
            _j.c.due_key.is_(None),
            _j.c.due_from != due_base_sql(),
            _j.c.due_key != due_key_sql(),
        ),
    )


def due_for(schedule: str, timezone: str | None, base: float) -> float | None:
    """The first due time after ``base`` (None: an unreadable schedule, or never)."""
    try:
        found = parse_schedule(schedule, timezone or "UTC").next_after(base)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return None if math.isinf(found) else found


_SET_DUE = (
    update(_j)
    .where(_j.c.id == bindparam("b_id"))
    .values(due_at=bindparam("b_due"), due_from=bindparam("b_from"), due_key=bindparam("b_key"))
)


#: the stale rows among some jobs, and a page of every job's: built once, since each write
#: transaction asks (building the statement cost more than running it)
_STALE = select(_j.c.id, _j.c.schedule, _j.c.timezone, _j.c.last_started_at, _j.c.created_at).where(
    stale()
)
_STALE_AMONG = _STALE.where(_j.c.id.in_(bindparam("ids", expanding=True)))
_STALE_AFTER = _STALE.where(_j.c.id > bindparam("after")).order_by(_j.c.id).limit(_IN_CHUNK)


def refresh_due(conn: Connection, job_ids: Iterable[str] | None = None) -> int:
    """Set ``due_at`` on the stale rows among ``job_ids`` (all jobs: None, ``_IN_CHUNK`` at
    a time by id); answers how many it set."""
    count = 0
    if job_ids is None:
        after = ""
        while True:
            rows = list(conn.execute(_STALE_AFTER, {"after": after}))
            count += _set_due(conn, rows)
            if len(rows) < _IN_CHUNK:
                return count
            after = rows[-1][0]
    ids = sorted(set(job_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        count += _set_due(conn, list(conn.execute(_STALE_AMONG, {"ids": chunk})))
    return count


def _set_due(conn: Connection, rows: list[Any]) -> int:
    updates = []
    for job_id, schedule, timezone, last_started, created in rows:
        base = last_started if last_started is not None else created
        updates.append(
            {
                "b_id": job_id,
                "b_due": due_for(schedule, timezone, base),
                "b_from": base,
                "b_key": f"{schedule}|{timezone}",
            }
        )
    execute_many(conn, _SET_DUE, updates)
    return len(updates)


def time_rule_suspects(conn: Connection, now: float, stuck_minutes: float) -> set[str]:
    """The jobs not paused that are past their due time and grace (a scheduled job by
    ``due_at``, an unscheduled one by its learned interval), or whose latest run has been
    running longer than ``stuck_minutes`` and three of its median durations (or than its
    timeout): each found by an index, the other jobs not read."""
    grace = func.coalesce(_j.c.grace_s, 0.0)
    awake = or_(_j.c.paused.is_(None), _j.c.paused == false())
    scheduled_late = select(_j.c.id).where(
        _j.c.due_at < now, _j.c.due_at + grace < now, scheduled(), awake
    )
    learned_late = select(_j.c.id).where(
        now > t.LEARNED_DUE,  # found by its index; then past the grace too
        t.LEARNED_DUE + grace < now,
        awake,  # scheduled ones too: a schedule that does not parse falls back on it
    )
    running_long = select(_j.c.id).where(
        _j.c.last_status == "running",
        literal(now) - _j.c.last_started_at > stuck_limit_sql(stuck_minutes),
        awake,
    )
    found: set[str] = set()
    for query in (scheduled_late, learned_late, running_long):
        found.update(conn.execute(query).scalars())
    return found


def touched_jobs(changes: list[dict[str, Any]]) -> set[str]:
    """The jobs a transaction's changes name (a job's own change, or a run's job)."""
    found = set()
    for change in changes:
        job = change.get("id") if change.get("type") == "job" else change.get("job")
        if isinstance(job, str):
            found.add(job)
    return found


def refresh_stale_due(conn: Connection, _unit: Any = None) -> int:
    """``refresh_due`` over every job, as a write op (``hub.write(refresh_stale_due)``)."""
    return refresh_due(conn)
