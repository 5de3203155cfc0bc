"""Which ``serve`` instance evaluates alerts and runs the scheduler.

On SQLite there is one server: it always leads. On PostgreSQL every instance tries a
session advisory lock on a connection it keeps open; the one that holds it leads, and
if it dies its session ends, the lock is released and another instance takes over.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("backwatch.leader")
LOCK_NAME = "backwatch-leader"


class Leader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self.leading = engine.dialect.name != "postgresql"

    def check(self) -> bool:
        """True if this process leads now (tries to become leader if it does not)."""
        if self.engine.dialect.name != "postgresql":
            return True
        try:
            if self._conn is None:
                self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.leading:
                self._conn.execute(text("SELECT 1"))
                return True
            # One lock per database *and schema*: instances of one backwatch share it, and
            # two backwatch installations in one PostgreSQL database do not.
            got = self._conn.execute(
                text(
                    "SELECT pg_try_advisory_lock(hashtextextended("
                    ":name || current_database() || '.' || current_schema(), 0))"
                ),
                {"name": LOCK_NAME},
            ).scalar()
            if got:
                log.info("this instance is now the leader (alerts, scheduler)")
            self.leading = bool(got)
        except Exception as exc:
            log.warning("leadership check failed: %s", exc)
            self.release()
        return self.leading

    def release(self) -> None:
        self.leading = self.engine.dialect.name != "postgresql"
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
