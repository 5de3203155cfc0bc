"""Engines for SQLite (default) and PostgreSQL, with the settings each needs.

SQLite runs in WAL mode with ``synchronous=FULL`` (an acknowledged report survives power
loss), a busy timeout and foreign keys on. The writer's transactions start with
``BEGIN IMMEDIATE`` so that a batch takes the write lock up front instead of failing
half-way with SQLITE_BUSY.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from backwatch.errors import StoreUnavailable
from backwatch.private_files import create_private_file, make_private_dir

BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _check_sqlite_file(path: Path) -> None:
    if path.exists():
        if path.is_dir():
            raise StoreUnavailable(f"database path {path} is a directory, not a SQLite file")
        with path.open("rb") as fh:
            head = fh.read(16)
        if head and head != b"SQLite format 3\x00":
            raise StoreUnavailable(f"{path} is not a SQLite database (wrong file header)")
    else:
        try:
            make_private_dir(path.parent)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create database directory {path.parent}: {exc}"
            ) from None
        try:  # 0600 from the start: it will hold every ping key
            create_private_file(path)
        except OSError:
            pass  # SQLite says why it cannot open it


def make_engine(url: str, *, writer: bool = False, pool_size: int = 4) -> Engine:
    """An Engine for ``url``. ``writer=True`` gives SQLite connections that BEGIN IMMEDIATE."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"not a database URL: {describe(url)}") from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            _check_sqlite_file(path)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        kwargs["pool_size"] = 1 if writer else pool_size
        kwargs["max_overflow"] = 0 if writer else 8
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 2 if writer else pool_size
        kwargs["max_overflow"] = 4
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreUnavailable(f"unsupported database URL {describe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, writer=writer)
    return engine


def _configure_sqlite(engine: Engine, *, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours (and explicit).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        del mode

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def check_connection(engine: Engine) -> None:
    """Raise StoreUnavailable with a clear message if the database cannot be used."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(engine.url.render_as_string(hide_password=True), exc) from None


def unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "file is not a database" in reason:
        return StoreUnavailable(f"{url}: not a SQLite database ({reason})")
    return StoreUnavailable(f"cannot use the database {url}: {reason}")
