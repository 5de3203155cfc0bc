"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/update`` on this connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def lock_for_transaction(conn: Connection, name: str) -> None:
    """Hold the lock ``name`` until this transaction ends, so that instances sharing one
    PostgreSQL database (and schema) do a piece of start-up work one at a time. On SQLite
    the writer's ``BEGIN IMMEDIATE`` already serializes every write transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended("
                ":name || current_database() || '.' || current_schema(), 0))"
            ),
            {"name": name},
        )


def execute_many(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
    """``conn.execute(stmt, rows).rowcount`` with less work per row, for the hot batches of
    the write path (runs, their phases and events, job snapshots: many per transaction).

    SQLAlchemy's executemany builds and processes a parameter set per row, which costs more
    than SQLite's own insert. Here the statement is compiled once per dialect, each bind's
    own processor (JSON, say) is applied, and the rows go straight to the driver's
    executemany as tuples (or dicts, for a named paramstyle); both drivers count an
    executemany's rows in total. A statement that needs SQLAlchemy at run time (expanding
    IN lists, Python-side defaults) or rows that do not fit it go through ``conn.execute``."""
    if not rows:
        return 0
    ready = _compiled(conn, stmt)
    keys = rows[0].keys()
    if ready is None or not ready.keys <= keys or any(row.keys() != keys for row in rows):
        return int(conn.execute(stmt, rows).rowcount)
    return _driver_executemany(conn, ready.sql, ready.parameters(rows))


def _driver_executemany(conn: Connection, sql: str, params: list[Any]) -> int:
    with driver_cursor(conn) as cursor:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)


def present(conn: Connection, table: Table, column: str, values: list[Any]) -> set[Any]:
    """Which of ``values`` are stored in ``table.column``: one plain query straight to the
    driver (the write path asks this for every batch, and the answer is almost always
    "none"; SQLAlchemy's expanding IN costs more than the lookup)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: set[Any] = set()
    with driver_cursor(conn) as cursor:
        for i in range(0, len(values), _IN_CHUNK):
            chunk = values[i : i + _IN_CHUNK]
            # table and column names come from our own schema, never from input
            marks = ", ".join([mark] * len(chunk))
            cursor.execute(f"SELECT {column} FROM {table.name} WHERE {column} IN ({marks})", chunk)
            found.update(row[0] for row in cursor.fetchall())
    return found


@contextlib.contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the driver's own connection, inside ``conn``'s transaction: SQLAlchemy's
    execution layer (events, result objects) costs more per statement than SQLite's insert.
    A driver error is raised as SQLAlchemy raises it, so callers see the same errors."""
    dbapi = conn.dialect.loaded_dbapi
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        yield cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc
    finally:
        cursor.close()


_IN_CHUNK = 500


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


class _Compiled:
    """A statement compiled once, and how to turn row dicts into the driver's parameters:
    tuples in bind order (``itemgetter``, in C) for a positional paramstyle, the dicts
    themselves for a named one; a bind's processor (JSON, say) applied where it has one."""

    def __init__(self, sql: str, names: list[str], processors: list[Any], positional: bool):
        self.sql = sql
        self.keys = frozenset(names)
        self.positional = positional
        self._processed = [
            (i, n, p) for i, (n, p) in enumerate(zip(names, processors, strict=True)) if p
        ]
        self._getter = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))

    def parameters(self, rows: list[dict[str, Any]]) -> list[Any]:
        if self.positional:
            tuples = list(map(self._getter, rows))
            if not self._processed:
                return tuples
            out = []
            for values in tuples:
                listed = list(values)
                for i, _name, process in self._processed:
                    listed[i] = process(listed[i])
                out.append(tuple(listed))
            return out
        if not self._processed:
            return rows  # the driver looks up the names it needs
        named = [dict(row) for row in rows]
        for row in named:
            for _i, name, process in self._processed:
                row[name] = process(row[name])
        return named


_INSERTS: dict[tuple[str, str, tuple[str, ...], bool], Any] = {}
#: (dialect, id(statement)) → (statement, its _Compiled or None); the statement is kept so
#: that its id stays its own. Meant for the write path's fixed statements, so it stays small.
_COMPILED: dict[tuple[str, int], tuple[Any, _Compiled | None]] = {}


def _compiled(conn: Connection, stmt: Any) -> _Compiled | None:
    """The statement compiled for this dialect, if plain bind parameters are all it needs."""
    dialect = conn.dialect
    cache_key = (dialect.name, id(stmt))
    if cache_key in _COMPILED:
        return _COMPILED[cache_key][1]
    compiled = stmt.compile(dialect=dialect)
    ready = None
    defaults = getattr(compiled, "insert_prefetch", None) or getattr(
        compiled, "update_prefetch", None
    )
    runtime = compiled.literal_execute_params or compiled.post_compile_params or defaults
    if not runtime:
        names = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        processors = [compiled.binds[n].type._cached_bind_processor(dialect) for n in names]
        ready = _Compiled(compiled.string, names, processors, bool(dialect.positional))
    if len(_COMPILED) > 256:  # not meant for statements built per call; stay bounded anyway
        _COMPILED.clear()
    _COMPILED[cache_key] = (stmt, ready)
    return ready
