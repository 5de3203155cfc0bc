"""Which ``serve`` instance evaluates alerts and runs the scheduler.

On SQLite there is one server: it always leads. On PostgreSQL every instance tries a
session advisory lock on a connection it keeps open; the one that holds it leads, and
if it dies its session ends, the lock is released and another instance takes over.

A leader that hangs (frozen, swapped out, stopped with SIGSTOP) keeps its session and its
lock. So the leader also renews a lease, a row stamped with the database's clock, while it
checks; an instance that finds the lease older than ``lease_s`` ends the hung leader's
session (``pg_terminate_backend``), which frees the lock, and takes over. If the old leader
wakes up, its connection is gone: it finds it has lost the lead on its next check.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("backwatch.leader")
LOCK_NAME = "backwatch-leader"
LEASE_KEY = "leader_lease"  # meta_kv: "<backend pid> <database epoch seconds>"
LEASE_S = 60.0


class Leader:
    def __init__(self, engine: Engine, lease_s: float = LEASE_S) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self._conn: Any = None
        self.leading = engine.dialect.name != "postgresql"
        self._renewed = float("-inf")
        #: how many times this instance became the leader: a new term must first catch up
        #: on what reached the followers while nobody, or another, led
        self.terms = 1 if self.leading else 0

    def check(self) -> bool:
        """True if this process leads now (tries to become leader if it does not)."""
        if self.engine.dialect.name != "postgresql":
            return True
        try:
            if self._conn is None:
                self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.leading:
                self._renew()
                return True
            # One lock per database *and schema*: instances of one backwatch share it, and
            # two backwatch installations in one PostgreSQL database do not.
            got = self._try_lock()
            if not got and self._end_hung_leader():
                got = self._try_lock()
            if got:
                log.info("this instance is now the leader (alerts, scheduler)")
                self.terms += 1
                self._renewed = float("-inf")
                self._renew()
            self.leading = bool(got)
        except Exception as exc:
            log.warning("leadership check failed: %s", exc)
            self.release()
        return self.leading

    def _try_lock(self) -> bool:
        return bool(
            self._conn.execute(
                text(
                    "SELECT pg_try_advisory_lock(hashtextextended("
                    ":name || current_database() || '.' || current_schema(), 0))"
                ),
                {"name": LOCK_NAME},
            ).scalar()
        )

    def _renew(self) -> None:
        """Stamp the lease (at most a few times per lease; a plain round trip otherwise)."""
        if time.monotonic() - self._renewed < self.lease_s / 6:
            self._conn.execute(text("SELECT 1"))  # still connected?
            return
        self._conn.execute(
            text(
                "INSERT INTO meta_kv (key, value) VALUES (:key, pg_backend_pid()::text || ' ' "
                "|| extract(epoch FROM clock_timestamp())::text) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            {"key": LEASE_KEY},
        )
        self._renewed = time.monotonic()

    def _end_hung_leader(self) -> bool:
        """The lock is held: if its holder's lease ran out, end its session. True if one
        was ended: its lock goes with its session a moment later, so this check or the next
        one (never a wait on the event loop) takes it."""
        row = self._conn.execute(
            text(
                "SELECT split_part(value, ' ', 1)::int AS pid, extract(epoch FROM "
                "clock_timestamp()) - split_part(value, ' ', 2)::float8 AS age "
                "FROM meta_kv WHERE key = :key"
            ),
            {"key": LEASE_KEY},
        ).first()
        if row is None or row.age <= self.lease_s:
            return False
        ended = self._conn.execute(
            text(  # only a session that still holds an advisory lock: never a reused pid
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE pid = :pid AND locktype = 'advisory' AND granted LIMIT 1"
            ),
            {"pid": row.pid},
        ).scalar()
        if not ended:
            return False
        log.warning(
            "the leader (session %s) has not renewed its lease for %.0f s: ended its session "
            "and taking over",
            row.pid,
            row.age,
        )
        return True

    def release(self) -> None:
        self.leading = self.engine.dialect.name != "postgresql"
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
