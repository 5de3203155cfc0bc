"""Jobs as a paged, filtered collection, and health counted in SQL.

``health_sql(now, stuck_minutes)`` is domain/health.py's precedence written as one SQL
``CASE`` over the job row (its snapshot of the latest backup run, ``due_at`` kept by
services/due.py, the learned interval) and the open critical alerts: so a fleet's counts
and a filtered page never load every job into Python. The health each listed job shows is
still computed by domain/health.py; tests/integration/test_job_list.py holds both equal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from backwatch.errors import InvalidInput
from backwatch.store import tables as t

_j = t.jobs
_a = t.alerts

#: most urgent first (the overview's order, web/pages/common.py): the ``health`` sort
HEALTH_STATES = (
    "failing", "missed", "stuck", "unknown", "late", "running", "ok", "new", "paused",
)  # fmt: skip
#: what the overview lists first: a backup not shown to work, or not on time
PROBLEMS = ("failing", "missed", "stuck", "unknown", "late")
SORTS = ("id", "last_run", "health")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_RUNNING = ("running", "queued")
_BAD = ("failed", "timed_out")
#: rules health judges first-hand (domain/health.py SEEN_BY_HEALTH): their alerts do not
#: turn a job failing
_SEEN_BY_HEALTH = ("missed", "failed", "stuck")


#: jobs with an open or acknowledged critical alert of a rule health does not judge: one
#: named CTE, so that a statement naming it in several places (the health CASE can be in
#: the filter, the rank, the sort and the hints at once) reads the open alerts once, not
#: once a place (each read is every open alert: 24,000 rows, 5 ms, at 100,000 jobs)
_ALERTING = (
    select(_a.c.job)
    .where(
        _a.c.state.in_(("open", "acknowledged")),
        _a.c.severity == "critical",
        _a.c.rule.not_in(_SEEN_BY_HEALTH),
    )
    .cte("alerting")
)


def _alerting() -> Select[Any]:
    """Jobs with an open or acknowledged critical alert of a rule health does not judge."""
    return select(_ALERTING.c.job)


def _scheduled() -> ColumnElement[bool]:
    return and_(_j.c.schedule.is_not(None), _j.c.schedule != "")


def due_sql() -> ColumnElement[Any]:
    """The job's next due time: ``due_at`` when scheduled, else its latest start plus the
    learned interval (NULL without either), as domain/health.py ``next_due``."""
    return case(
        (_scheduled(), _j.c.due_at),
        else_=t.LEARNED_DUE,
    )


def stuck_limit_sql(stuck_minutes: float) -> ColumnElement[float]:
    """How long the job's run may go before it is stuck (domain/health.py): its timeout,
    else three of its median durations, at least ``stuck_minutes``."""
    floor = stuck_minutes * 60
    three_median = 3 * _j.c.median_duration_s
    return case(
        (func.coalesce(_j.c.timeout_s, 0.0) != 0, _j.c.timeout_s),
        (three_median > floor, three_median),
        else_=literal(floor),
    )


def health_sql(now: float, stuck_minutes: float) -> ColumnElement[int]:
    """domain/health.py ``job_health`` as SQL, for a job row at ``now``: the health's
    position in ``HEALTH_STATES`` (problems first), so that one evaluation serves the
    filter, the count and the ``health`` sort alike."""
    code = {state: i for i, state in enumerate(HEALTH_STATES)}
    due = due_sql()
    grace = func.coalesce(_j.c.grace_s, 0.0)
    limit = stuck_limit_sql(stuck_minutes)
    never_ran = or_(_j.c.last_started_at.is_(None), _j.c.last_status.is_(None))
    at = literal(now)
    base = case(
        (never_ran & due.is_(None), code["new"]),
        (never_ran & (at > due + grace), code["missed"]),
        (never_ran & (at > due), code["late"]),
        (never_ran, code["new"]),
        ((_j.c.last_status == "running") & (at - _j.c.last_started_at > limit), code["stuck"]),
        (_j.c.last_status.in_(_RUNNING), code["running"]),
        (_j.c.last_status.in_(_BAD), code["failing"]),
        (due.is_not(None) & (at > due + grace), code["missed"]),
        (_j.c.last_status == "unknown", code["unknown"]),
        (due.is_not(None) & (at > due), code["late"]),
        else_=code["ok"],
    )
    overridden = [code[s] for s in ("ok", "new", "late", "unknown")]
    return case(
        (_j.c.paused == true(), code["paused"]),
        (base.in_(overridden) & _j.c.id.in_(_alerting()), code["failing"]),
        else_=base,
    )


def health_codes(states: Sequence[str]) -> list[int]:
    """The codes ``health_sql`` gives ``states``."""
    return [HEALTH_STATES.index(state) for state in states]


@dataclass(frozen=True)
class JobFilter:
    """What ``GET /api/v1/jobs`` and the overview narrow the jobs to; empty: all."""

    health: tuple[str, ...] = ()
    tag: str | None = None
    host: str | None = None
    q: str | None = None  # an id prefix

    @classmethod
    def parse(
        cls,
        health: Sequence[str] = (),
        tag: str | None = None,
        host: str | None = None,
        q: str | None = None,
    ) -> JobFilter:
        """From query parameters; ``health`` may repeat or hold commas (``failing,missed``).
        An unknown health is refused by name."""
        states: list[str] = []
        for value in health:
            for part in value.split(","):
                part = part.strip()
                if not part:
                    continue
                if part not in HEALTH_STATES:
                    raise InvalidInput.field(
                        "health", f"{part!r} is not one of: {', '.join(HEALTH_STATES)}"
                    )
                if part not in states:
                    states.append(part)
        for name, given in (("tag", tag), ("host", host), ("q", q)):
            if given is not None and ("\x00" in given or len(given) > 255):
                raise InvalidInput.field(name, "must be at most 255 characters, without NUL")
        return cls(tuple(states), tag or None, host or None, q or None)


def _tag_sql(conn: Connection, tag: str) -> ColumnElement[bool]:
    # tags are a JSON list on the row: matched in place (no index; see docs/api.md)
    if conn.dialect.name == "postgresql":
        return func.jsonb_exists(cast(_j.c.tags, JSONB), tag)
    each = func.json_each(_j.c.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _where(conn: Connection, f: JobFilter) -> list[ColumnElement[bool]]:
    """The filters but health, each served by an index but ``tag``."""
    where: list[ColumnElement[bool]] = []
    if f.host is not None:
        where.append(_j.c.host == f.host)
    if f.q is not None:  # a range on the primary key, then the exact prefix
        where += [
            _j.c.id >= f.q,
            _j.c.id < f.q + "\U0010ffff",
            func.substr(_j.c.id, 1, len(f.q)) == f.q,
        ]
    if f.tag is not None:
        where.append(_tag_sql(conn, f.tag))
    return where


def _state_hints(now: float) -> dict[str, list[ColumnElement[bool]]]:
    """Per health but ``ok``, indexed predicates that every job in it meets (each has an
    index: last_status, due_at, the learned due time, paused, last_started_at). A job that
    meets none of them is ``ok``: so the health CASE need only be worked out for the jobs
    that meet one, which in a healthy fleet are few."""
    running = _j.c.last_status.in_(_RUNNING)
    overdue = [_j.c.due_at <= now, now >= t.LEARNED_DUE]
    return {
        "failing": [_j.c.last_status.in_(_BAD), _j.c.id.in_(_alerting())],
        "missed": overdue,
        "stuck": [running],
        "unknown": [_j.c.last_status == "unknown"],
        "late": overdue,
        "running": [running],
        "new": [_j.c.last_started_at.is_(None), _j.c.last_status.is_(None)],
        "paused": [_j.c.paused == true()],
    }


def _hints_of(states: Sequence[str], now: float) -> list[ColumnElement[bool]] | None:
    """``_state_hints`` of ``states``, each once; None when ``ok`` is among them."""
    hints = _state_hints(now)
    if "ok" in states:
        return None
    found: list[ColumnElement[bool]] = []
    for state in states:
        found += [h for h in hints[state] if not any(h is seen for seen in found)]
    return found


def _health_hint(states: Sequence[str], now: float) -> ColumnElement[bool] | None:
    """``_state_hints`` of ``states`` as one predicate; None when ``ok`` is among them."""
    found = _hints_of(states, now)
    return or_(*found) if found else None


def _hinted(
    conn: Connection, states: Sequence[str], now: float, *, in_order: bool
) -> ColumnElement[bool] | None:
    """The jobs the hints of ``states`` name, as ``IN`` a list the database builds once
    from one indexed SELECT per hint (UNION ALL); None when ``ok`` is among them.

    Not the hints' OR tested on the jobs read in the page's order: that reads every job
    up to the page's end, so a state with fewer jobs than a page (or the last page of
    any) reads the whole table, 40–50 ms at 100,000 jobs; nor the OR as an inner WHERE,
    for which SQLite gives up its indexes from four or so terms on. On SQLite the list holds
    rowids, read from the indexes alone (``ix_jobs_due`` and the learned due time hold no
    id), and with ``in_order`` the list is tested with ``+`` so that it cannot drive the
    query: the page is then read in its order by index, each entry checked against the
    list before its row is read, and stops at the page's end; without ``in_order`` the
    list drives (the health sort's read of one state, /metrics' jobs in trouble)."""
    found = _hints_of(states, now)
    if not found:
        return None
    if conn.dialect.name != "sqlite":
        # PostgreSQL: the ids are read first and given as one array, which the planner
        # sees whole: a page in id order is then read by the primary key, an array element
        # at a time, and stops at the page's end. Given the SELECTs instead, it guessed 200
        # of them once the tables were ANALYZEd and read every job (70 ms at 100,000 jobs).
        each = [select(_j.c.id).where(hint) for hint in found]
        ids = sorted(set(conn.execute(union_all(*each)).scalars()))
        return _j.c.id == any_(bindparam("hinted", ids, type_=ARRAY(String), unique=True))
    key: Any = literal_column("jobs.rowid")
    tested: Any = literal_column("+jobs.rowid" if in_order else "jobs.rowid")
    # correlate(None): each SELECT reads its own jobs, not the outer query's row
    each = [select(key).select_from(_j).where(hint).correlate(None) for hint in found]
    return tested.in_(union_all(*each))


def _not_ok_hint(now: float) -> ColumnElement[bool]:
    """A predicate every job that is not ``ok`` meets (the rest are ok, by ``_state_hints``)."""
    hint = _health_hint([s for s in HEALTH_STATES if s != "ok"], now)
    assert hint is not None
    return hint


def encode_cursor(sort: str, key: Any, job_id: str) -> str:
    raw = json.dumps([sort, key, job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_sort, key, job_id = json.loads(raw)
        if found_sort != sort or not isinstance(job_id, str):
            raise ValueError(sort)
        if key is not None:
            if isinstance(key, bool) or not isinstance(key, (int, float)):
                raise ValueError(key)
            key = float(key)  # a huge integer is refused here, not by the driver
            if key != key or key in (float("inf"), float("-inf")):
                raise ValueError(key)
        return key, job_id
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise InvalidInput.field(
            "cursor", "is not a cursor this API returned for this sort"
        ) from None


def matching(
    conn: Connection,
    f: JobFilter,
    *,
    now: float,
    stuck_minutes: float,
    in_order: bool = False,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the jobs ``f`` keeps, health included; ``in_order`` when the
    query reads the jobs in an indexed order and stops at a limit (``_hinted``)."""
    where = _where(conn, f)
    if f.health:
        hinted = _hinted(conn, f.health, now, in_order=in_order)
        if hinted is not None:
            where.append(hinted)
        where.append(health_sql(now, stuck_minutes).in_(health_codes(f.health)))
    return where


def page(
    conn: Connection,
    f: JobFilter,
    *,
    now: float,
    stuck_minutes: float,
    sort: str = "id",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of job rows matching ``f``, in the order of ``sort`` (``id``; ``last_run``:
    latest start first, never-run jobs last; ``health``: problems first), and the cursor
    of the next page (None at the end)."""
    if sort not in SORTS:
        raise InvalidInput.field("sort", f"must be one of: {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.field("limit", f"must be between 1 and {MAX_LIMIT}")
    after = decode_cursor(cursor, sort) if cursor else None
    if sort == "health":
        rows = _by_health(conn, f, after, now=now, stuck_minutes=stuck_minutes, n=limit + 1)
    else:
        rows = _in_order(conn, f, sort, after, now=now, stuck_minutes=stuck_minutes, n=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        key = {"id": None, "last_run": last["last_started_at"]}.get(sort, last.get("_rank"))
        next_cursor = encode_cursor(sort, key, last["id"])
    for row in rows:
        row.pop("_rank", None)
    return rows, next_cursor


def _in_order(
    conn: Connection,
    f: JobFilter,
    sort: str,
    after: tuple[Any, str] | None,
    *,
    now: float,
    stuck_minutes: float,
    n: int,
) -> list[dict[str, Any]]:
    """The first ``n`` jobs matching ``f`` after the cursor ``after``, by id or by latest
    start: read in an index's order up to the page's end."""
    where = matching(conn, f, now=now, stuck_minutes=stuck_minutes, in_order=True)
    query = select(_j).where(*where)
    if sort == "id":
        if after:
            query = query.where(_j.c.id > after[1])
        query = query.order_by(_j.c.id)
    elif sort == "last_run":
        started = _j.c.last_started_at
        if after:
            key, job_id = after
            if key is None:
                query = query.where(started.is_(None), _j.c.id > job_id)
            else:
                query = query.where(
                    or_(
                        started < key,
                        and_(started == key, _j.c.id > job_id),
                        started.is_(None),
                    )
                )
        query = query.order_by(started.desc().nulls_last(), _j.c.id)
    return [dict(r) for r in conn.execute(query.limit(n)).mappings()]


def _by_health(
    conn: Connection,
    f: JobFilter,
    after: tuple[Any, str] | None,
    *,
    now: float,
    stuck_minutes: float,
    n: int,
) -> list[dict[str, Any]]:
    """The first ``n`` jobs matching ``f`` by (health, id), after the cursor ``after``,
    without ranking every job: a state at a time, most urgent first, until ``n`` are
    found. Each state but ``ok`` is read from its own hints' list (``_hinted``), so an
    empty or small state costs next to nothing and a large one no more than its own jobs;
    the ``ok`` jobs, most of a fleet, are read in id order."""
    rows: list[dict[str, Any]] = []
    for code, state in enumerate(HEALTH_STATES):
        if len(rows) >= n:
            break
        if (f.health and state not in f.health) or (after and code < after[0]):
            continue
        one = replace(f, health=(state,))
        where = matching(conn, one, now=now, stuck_minutes=stuck_minutes)
        query = select(_j, literal(code).label("_rank")).where(*where)
        if after and code == after[0]:
            query = query.where(_j.c.id > after[1])
        query = query.order_by(_j.c.id).limit(n - len(rows))
        rows += [dict(r) for r in conn.execute(query).mappings()]
    return rows


def counts(conn: Connection, f: JobFilter, *, now: float, stuck_minutes: float) -> dict[str, int]:
    """How many jobs matching ``f`` (but its health) are in each health now, every state
    named (0 included): the health worked out for the jobs a hint names, the rest counted."""
    health = health_sql(now, stuck_minutes).label("health")
    where = _where(conn, f)
    not_ok = _not_ok_hint(now)
    query = select(health, func.count()).where(*where, not_ok).group_by(health)
    found = {state: 0 for state in HEALTH_STATES}
    for code, n in conn.execute(query):
        found[HEALTH_STATES[code]] += n
    # the jobs none of the hints names are ok (``_state_hints``): counted, not evaluated
    total = conn.execute(select(func.count()).select_from(_j).where(*where)).scalar_one()
    found["ok"] += total - sum(found.values())
    return found


def counts_by_tags(
    conn: Connection, *, now: float, stuck_minutes: float
) -> dict[tuple[str, ...], dict[str, int]]:
    """How many jobs are in each health now, per set of tags (sorted; ``()`` for untagged
    jobs), every state named: as ``counts``, health is worked out for the jobs a hint names
    and the rest counted as ok. Grouped by the tags' JSON text, so a fleet whose jobs share
    a few tag sets costs two scans of the jobs table, whatever the tags."""
    tags = cast(_j.c.tags, String).label("tags")  # PostgreSQL's json cannot be grouped
    health = health_sql(now, stuck_minutes).label("health")
    not_ok = _not_ok_hint(now)
    found: dict[tuple[str, ...], dict[str, int]] = {}

    def tally(raw: str | None, state: str, n: int) -> None:
        key = tuple(sorted({str(tag) for tag in json.loads(raw or "[]")}))
        into = found.setdefault(key, {s: 0 for s in HEALTH_STATES})
        into[state] += n
        if state != "ok":  # the totals counted it as ok
            into["ok"] -= n

    for raw, n in conn.execute(select(tags, func.count()).group_by(tags)):
        tally(raw, "ok", n)
    hinted = select(tags, health, func.count()).where(not_ok).group_by(tags, health)
    for raw, code, n in conn.execute(hinted):
        tally(raw, HEALTH_STATES[code], n)
    return found


def hosts(conn: Connection, limit: int = 200) -> list[tuple[str, int]]:
    """The hosts with the most jobs first (the overview's grouping), at most ``limit``."""
    n = func.count().label("n")
    query = (
        select(_j.c.host, n)
        .where(_j.c.host.is_not(None))
        .group_by(_j.c.host)
        .order_by(n.desc(), _j.c.host)
        .limit(limit)
    )
    return [(host, count) for host, count in conn.execute(query)]
