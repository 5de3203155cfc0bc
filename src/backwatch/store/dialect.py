"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/update`` on this connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
    """``conn.execute(stmt, rows).rowcount`` with less work per row, for the hot batches of
    the write path (runs, their phases and events, job snapshots: many per transaction).

    SQLAlchemy's executemany builds and processes a parameter set per row, which costs more
    than SQLite's own insert. Here the statement is compiled once per dialect, each bind's
    own processor (JSON, say) is applied, and the rows go to the driver's executemany as
    tuples (or dicts, for a named paramstyle); both drivers count an executemany's rows in
    total. A statement that needs SQLAlchemy at run time (expanding IN lists, Python-side
    defaults) or rows that do not fit it go through ``conn.execute``."""
    if not rows:
        return 0
    plan = _plan(conn, stmt)
    keys = rows[0].keys()
    if plan is None or not plan.keys <= keys or any(row.keys() != keys for row in rows):
        return int(conn.execute(stmt, rows).rowcount)
    if plan.positional:
        params: list[Any] = [
            tuple(row[k] if p is None else p(row[k]) for k, p in plan.binds) for row in rows
        ]
    else:
        params = [{k: row[k] if p is None else p(row[k]) for k, p in plan.binds} for row in rows]
    return int(conn.exec_driver_sql(plan.sql, params).rowcount)


def insert_rows(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_conflicts: bool = False
) -> int:
    """``execute_many`` of ``INSERT INTO table (the rows' keys)``; answers how many rows were
    inserted. With ``skip_conflicts`` a row whose unique key is already stored is left out
    (``ON CONFLICT DO NOTHING``), which the count shows."""
    if not rows:
        return 0
    keys = tuple(rows[0])
    cache_key = (conn.dialect.name, table.name, keys, skip_conflicts)
    stmt = _INSERTS.get(cache_key)
    if stmt is None:
        stmt = insert_for(conn, table).values({k: bindparam(k) for k in keys})
        stmt = _INSERTS[cache_key] = stmt.on_conflict_do_nothing() if skip_conflicts else stmt
    return execute_many(conn, stmt, rows)


@dataclass(frozen=True)
class _Plan:
    sql: str
    binds: list[tuple[str, Any]]  # (name, bind processor or None), in parameter order
    keys: frozenset[str]
    positional: bool


_INSERTS: dict[tuple[str, str, tuple[str, ...], bool], Any] = {}
#: (dialect, id(statement)) → (statement, plan); the statement is kept so that its id
#: stays its own. Meant for the write path's fixed statements, so it stays small.
_PLANS: dict[tuple[str, int], tuple[Any, _Plan | None]] = {}


def _plan(conn: Connection, stmt: Any) -> _Plan | None:
    """The statement compiled for this dialect, if plain bind parameters are all it needs."""
    dialect = conn.dialect
    cache_key = (dialect.name, id(stmt))
    if cache_key in _PLANS:
        return _PLANS[cache_key][1]
    compiled = stmt.compile(dialect=dialect)
    plan = None
    defaults = getattr(compiled, "insert_prefetch", None) or getattr(
        compiled, "update_prefetch", None
    )
    runtime = compiled.literal_execute_params or compiled.post_compile_params or defaults
    if not runtime:
        names = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        binds = [(n, compiled.binds[n].type._cached_bind_processor(dialect)) for n in names]
        plan = _Plan(compiled.string, binds, frozenset(names), bool(dialect.positional))
    if len(_PLANS) > 256:  # not meant for statements built per call; stay bounded anyway
        _PLANS.clear()
    _PLANS[cache_key] = (stmt, plan)
    return plan
