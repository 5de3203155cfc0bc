"""Jobs as a paged, searchable collection: the one read behind ``GET /api/v1/jobs``, the
overview page and the terminal dashboard (store/job_list.py holds the SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from backwatch.domain.thresholds import Thresholds
from backwatch.services.views import with_health_facts
from backwatch.store import job_list as q
from backwatch.store.job_list import (
    DEFAULT_LIMIT,
    HEALTH_STATES,
    MAX_LIMIT,
    PROBLEMS,
    SORTS,
    JobFilter,
    decode_cursor,
    encode_cursor,
)

__all__ = [
    "DEFAULT_LIMIT",
    "HEALTH_STATES",
    "MAX_LIMIT",
    "PROBLEMS",
    "SORTS",
    "JobFilter",
    "JobPage",
    "decode_cursor",
    "encode_cursor",
    "health_counts",
    "hosts",
    "read_page",
]


@dataclass(frozen=True)
class JobPage:
    """One page of job rows (with their health facts), the next page's cursor and, when
    asked, the count per health of the jobs the filters other than health match."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    counts: dict[str, int] | None = None


def read_page(
    conn: Connection,
    f: JobFilter,
    *,
    now: float,
    stuck_minutes: float = Thresholds.stuck_minutes,
    sort: str = "id",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    with_counts: bool = False,
) -> JobPage:
    """A page of jobs matching ``f``; the rows are ready for ``views.job_out``."""
    rows, next_cursor = q.page(
        conn, f, now=now, stuck_minutes=stuck_minutes, sort=sort, limit=limit, cursor=cursor
    )
    counts = health_counts(conn, f, now=now, stuck_minutes=stuck_minutes) if with_counts else None
    return JobPage(with_health_facts(conn, rows), next_cursor, counts)


def health_counts(
    conn: Connection,
    f: JobFilter | None = None,
    *,
    now: float,
    stuck_minutes: float = Thresholds.stuck_minutes,
) -> dict[str, int]:
    """Jobs per health (every state named, 0 included), counted in the database."""
    return q.counts(conn, f or JobFilter(), now=now, stuck_minutes=stuck_minutes)


def hosts(conn: Connection, limit: int = 200) -> list[tuple[str, int]]:
    """(host, number of jobs), the most jobs first."""
    return q.hosts(conn, limit)
