"""Run locks held in PostgreSQL, for runners on several hosts (or several ``serve``
instances) sharing one database: session advisory locks, and a note per lock in
``lock_holders`` saying who holds it.

The lock ends with its holder's session: a runner that dies (``kill -9``, a crash, the
machine gone) frees it at once. Its note stays, so whoever takes the lock next learns that
the run it names lost its runner, whichever host that was on. services/locks.py decides
what to do then.

SQLAlchemy is loaded only here, when a runner uses a database: ``backwatch run`` without
one takes its file locks before loading it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

log = logging.getLogger("backwatch.locks")

#: the run ids whose locks this process holds now: a note naming one of them is not stale,
#: even when its session was lost (it is this process's, and this process is alive)
HELD_HERE: set[str] = set()


def note_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class AdvisoryLocks:
    """The advisory locks of one run, on one connection kept for the run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.held: list[str] = []
        self.note: dict[str, Any] | None = None

    def _key(self, conn: Connection, name: str, fn: str) -> bool:
        from sqlalchemy import text

        sql = (
            f"SELECT {fn}(hashtextextended('backwatch-run:' || :name || current_database() "
            "|| '.' || current_schema(), 0))"
        )
        return bool(conn.execute(text(sql), {"name": name}).scalar())

    def try_acquire(self, names: list[str]) -> bool:
        """All of ``names`` or none (False: one is held by a live session)."""
        if self.conn is None:
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        for name in names:
            if not self._key(self.conn, name, "pg_try_advisory_lock"):
                self.release()
                return False
            self.held.append(name)
        return True

    def notes(self) -> list[dict[str, Any]]:
        """The notes left on the locks held now: each one names a holder whose session
        ended without giving the lock back (call right after ``try_acquire``)."""
        from sqlalchemy import select

        from backwatch.store import tables as t

        assert self.conn is not None
        h = t.lock_holders
        keys = [note_key(name) for name in self.held]
        rows = self.conn.execute(select(h).where(h.c.key.in_(keys))).mappings().all()
        return [dict(row) for row in rows]

    def write_note(self, note: dict[str, Any]) -> None:
        """Our note on every lock held (replacing a dead holder's)."""
        from sqlalchemy.dialects.postgresql import insert

        from backwatch.store import tables as t

        assert self.conn is not None
        fields = {k: note.get(k) for k in ("job", "run_id", "host", "pid", "since", "deadline")}
        rows = [{"key": note_key(name), "name": name, **fields} for name in self.held]
        stmt = insert(t.lock_holders).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={k: stmt.excluded[k] for k in ("name", *fields)}
        )
        self.conn.execute(stmt)
        self.note = note
        if note.get("run_id"):
            HELD_HERE.add(note["run_id"])

    def forget(self, name: str) -> None:
        """Delete the note on ``name`` (held now): its dead holder has been dealt with."""
        from sqlalchemy import delete

        from backwatch.store import tables as t

        assert self.conn is not None
        h = t.lock_holders
        self.conn.execute(delete(h).where(h.c.key == note_key(name)))

    def release(self) -> None:
        """Our notes removed, the locks given back (ending the session would free them
        anyway: a failure here only leaves a note the next holder finds and clears)."""
        if self.conn is None:
            return
        try:
            if self.note is not None and self.held:
                from sqlalchemy import delete

                from backwatch.store import tables as t

                h = t.lock_holders
                self.conn.execute(
                    delete(h).where(
                        h.c.key.in_([note_key(name) for name in self.held]),
                        h.c.pid == self.note.get("pid"),
                        h.c.since == self.note.get("since"),
                    )
                )
            for name in self.held:
                self._key(self.conn, name, "pg_advisory_unlock")
        except Exception as exc:
            log.warning("releasing advisory locks: %s", exc)
        finally:
            if self.note is not None:
                HELD_HERE.discard(self.note.get("run_id") or "")
            self.held = []
            self.note = None
            self.conn.close()
            self.conn = None


def noted_names(engine: Engine) -> list[str]:
    """The names of every lock with a note: held now, or left by a holder that died."""
    from sqlalchemy import select

    from backwatch.store import tables as t

    with engine.connect() as conn:
        return list(conn.execute(select(t.lock_holders.c.name)).scalars())
