"""The Hub: settings, the read engine and the writer, built once per process.

Everything that changes state goes through ``hub.write(op)`` (CLI, blocking) or
``await hub.submit(op)`` (server, group-committed).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from backwatch.masking import job_secrets
from backwatch.private_files import secure_data_dir
from backwatch.services.unit import Listener, WriteUnit
from backwatch.settings import Settings
from backwatch.store.connect import check_connection, make_engine, sqlite_path
from backwatch.store.migrate import migrate as run_migrations
from backwatch.store.migrate import migrate_isolated
from backwatch.store.redact import know_secrets
from backwatch.store.writer import GroupWriter, Op, SyncWriter

T = TypeVar("T")


class Hub:
    def __init__(
        self,
        settings: Settings,
        *,
        grouped: bool = False,
        clock: Callable[[], float] = time.time,
        migrate: bool | str = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.listeners: list[Listener] = [self._bump]
        #: this process among the instances sharing a PostgreSQL database (services/changefeed)
        self.instance = secrets.token_hex(6)
        #: increases with every commit that changed something: read caches compare it
        self.generation = 0
        self._read_cache: dict[Any, tuple[int, float, Any]] = {}
        url = settings.db_url
        # the database holds every ping key in clear: the data dir is the owner's alone
        secure_data_dir(settings.data_dir, sqlite_path(url) if url.startswith("sqlite") else None)
        self.read_engine: Engine = make_engine(url)
        self.write_engine: Engine = make_engine(url, writer=True)
        check_connection(self.read_engine)
        # the configured jobs' secrets are masked in what any client reports (store/redact.py)
        know_secrets(
            [self.read_engine, self.write_engine],
            [secret for job in settings.jobs for secret in job_secrets(job)],
        )
        self.db_file: Path | None = sqlite_path(url) if url.startswith("sqlite") else None
        self._db_file_id = _file_id(self.db_file)
        if migrate == "isolated":  # serve: Alembic in a child process, not in the server
            migrate_isolated(self.write_engine)
        elif migrate:
            run_migrations(self.write_engine)
        self.writer: GroupWriter | SyncWriter
        if grouped:
            self.writer = GroupWriter(self.write_engine, self._unit, clock=clock)
        else:
            self.writer = SyncWriter(self.write_engine, self._unit, clock=clock)

    def _bump(self, _changes: list[dict[str, Any]]) -> None:
        self.generation += 1

    def cached(self, key: Any, compute: Callable[[], T], *, max_age_s: float = 10.0) -> T:
        """``compute()``, reused while nothing was written since (and for at most
        ``max_age_s``, since some answers also depend on the clock). For dashboard
        aggregates that hundreds of viewers would otherwise recompute identically."""
        hit = self._read_cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] == self.generation and now - hit[1] < max_age_s:
            return hit[2]
        value = compute()
        if len(self._read_cache) > 256:
            self._read_cache.clear()
        self._read_cache[key] = (self.generation, now, value)
        return value

    def _unit(self) -> WriteUnit:
        return WriteUnit(listeners=self.listeners, origin=self.instance)

    def now(self) -> float:
        return self.clock()

    def write(self, op: Op[T], *, timeout: float | None = None) -> T:
        """Run ``op`` in a transaction and answer its result. ``timeout``: how long to wait
        for the server's writer thread (StoreUnavailable after it); in the CLI, which
        writes in the calling thread, it does not apply."""
        if isinstance(self.writer, GroupWriter):
            return self.writer.run(op, timeout=timeout)
        return self.writer.run(op)

    async def submit(self, op: Op[T]) -> T:
        if isinstance(self.writer, GroupWriter):
            return await self.writer.submit(op)
        return self.writer.run(op)

    def store_problem(self) -> str | None:
        """Why the database can no longer be trusted, or None. Open SQLite connections keep
        working on a file that was deleted or replaced, so every write would be lost:
        notice it (for ``/health``) instead of answering "ok"."""
        if self.db_file is None:
            return None
        current = _file_id(self.db_file)
        if current is None:
            return f"the database file {self.db_file} is gone (deleted or unmounted)"
        if current != self._db_file_id:
            return f"the database file {self.db_file} was replaced while backwatch was running"
        return None

    @property
    def dialect(self) -> str:
        return self.read_engine.dialect.name

    def close(self) -> None:
        self.writer.close()
        self.read_engine.dispose()
        self.write_engine.dispose()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _file_id(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
