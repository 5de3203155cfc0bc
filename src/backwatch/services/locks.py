"""Who may run now: one lock per job, one per repository (and concurrency group), and at
most ``[runner] max_concurrent`` runs at once on a host.

Locks are ``flock`` lock files in ``<data>/locks/``, so a cron-started ``backwatch run``
and the server's scheduler on one host see each other. The kernel drops a lock when its
process dies; the holder's note in the file (pid, host, job, run) stays behind, which is
how a lock left by a dead process is noticed and reported (``on_stale``). On PostgreSQL the
named locks are also session advisory locks, so runners on other hosts that share the
database see them too.

All locks of a run are taken together or not at all (try all, release on any miss, retry),
so two runs that need the same two locks can never deadlock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backwatch.errors import Conflict

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

POLL_S = 0.2
log = logging.getLogger("backwatch.locks")


def hostname() -> str:
    """This host's name, as ``socket.gethostname()`` gives it."""
    return os.uname().nodename


class Busy(Conflict):
    """A lock the run needs is held and the job says ``on_busy = "refuse"``."""


class Holder:
    """The note a holder leaves in a lock file."""

    __slots__ = ("host", "job", "name", "pid", "run_id", "since")

    def __init__(
        self,
        name: str,
        pid: int | None = None,
        host: str | None = None,
        job: str | None = None,
        run_id: str | None = None,
        since: float | None = None,
    ) -> None:
        self.name = name
        self.pid = pid
        self.host = host
        self.job = job
        self.run_id = run_id
        self.since = since

    def __repr__(self) -> str:
        return f"Holder({self.name!r}, pid={self.pid}, host={self.host!r}, job={self.job!r})"

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another process"
        if self.host and self.host != hostname():
            who += f" on {self.host}"
        what = f"job {self.job!r}" if self.job else "a run"
        return f"{self.name} is held by {what} ({who})"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FileLock:
    def __init__(self, directory: str, name: str) -> None:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        kind = name.split(":", 1)[0]
        self.name = name
        self.path = os.path.join(directory, f"{kind}-{digest}.lock")
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def previous_holder(self) -> Holder | None:
        """The note left in the file (read while holding it: a holder that did not clean up)."""
        assert self.fd is not None
        raw = os.pread(self.fd, 4096, 0)
        return _parse_note(self.name, raw)

    def write_note(self, note: dict[str, Any]) -> None:
        assert self.fd is not None
        data = json.dumps({"name": self.name, **note}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def read_note(self) -> Holder | None:
        """Who holds it now (read without the lock; the note may be a moment old)."""
        try:
            with open(self.path, "rb") as file:
                return _parse_note(self.name, file.read())
        except OSError:
            return None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None


def _parse_note(name: str, raw: bytes) -> Holder | None:
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    return Holder(
        name=name,
        pid=obj.get("pid"),
        host=obj.get("host"),
        job=obj.get("job"),
        run_id=obj.get("run_id"),
        since=obj.get("since"),
    )


class _AdvisoryLocks:
    """PostgreSQL session advisory locks on one connection kept for the run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.held: list[str] = []

    def _key(self, conn: Connection, name: str, fn: str) -> bool:
        # PostgreSQL only: `backwatch run` takes its locks before SQLAlchemy is loaded
        from sqlalchemy import text

        sql = (
            f"SELECT {fn}(hashtextextended('backwatch-run:' || :name || current_database() "
            "|| '.' || current_schema(), 0))"
        )
        return bool(conn.execute(text(sql), {"name": name}).scalar())

    def try_acquire(self, names: list[str]) -> bool:
        if self.conn is None:
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        for name in names:
            if not self._key(self.conn, name, "pg_try_advisory_lock"):
                self.release()
                return False
            self.held.append(name)
        return True

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            for name in self.held:
                self._key(self.conn, name, "pg_advisory_unlock")
        except Exception as exc:  # the session ends below, which releases them anyway
            log.warning("releasing advisory locks: %s", exc)
        finally:
            self.held = []
            self.conn.close()
            self.conn = None


class Held:
    """The locks of one run; ``release()`` (or leaving the ``with``) gives them back."""

    def __init__(self) -> None:
        self.files: list[_FileLock] = []
        self.advisory: _AdvisoryLocks | None = None
        self.waited_s = 0.0

    def release(self) -> None:
        if self.advisory is not None:
            self.advisory.release()
            self.advisory = None
        for lock in reversed(self.files):
            lock.release()
        self.files = []

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


#: called with the note of a lock left by a dead process, once it has been taken over
StaleHandler = Callable[[Holder], None]
#: called once when a run starts waiting, with what it waits for
WaitHandler = Callable[[str], None]


class Locks:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        max_concurrent: int = 3,
        engine: Engine | None = None,
        on_stale: StaleHandler | None = None,
    ) -> None:
        #: the lock files' directory
        self.directory = os.path.join(data_dir, "locks")
        self.max_concurrent = max_concurrent
        self.engine = engine if engine is not None and engine.dialect.name == "postgresql" else None
        self.on_stale = on_stale
        self.host = hostname()

    def acquire(
        self,
        names: list[str],
        *,
        note: dict[str, Any],
        refuse: set[str] | frozenset[str] = frozenset(),
        on_wait: WaitHandler | None = None,
        cancel: threading.Event | None = None,
        poll_s: float = POLL_S,
    ) -> Held | None:
        """Take every lock in ``names`` plus a run slot, waiting as long as needed.

        A busy lock named in ``refuse`` raises ``Busy`` instead of waiting. Returns None
        when ``cancel`` was set while waiting.
        """
        note = self._prepare(note)
        started = time.monotonic()
        told = False
        while True:
            held, blocker = self._try_all(sorted(set(names)), note)
            if held is not None:
                held.waited_s = time.monotonic() - started
                return held
            assert blocker is not None
            if blocker.name in refuse:
                raise Busy(blocker.describe())
            if not told and on_wait is not None:
                on_wait(blocker.describe())
                told = True
            if cancel is not None and cancel.wait(poll_s):
                return None
            if cancel is None:
                time.sleep(poll_s)

    def _prepare(self, note: dict[str, Any]) -> dict[str, Any]:
        """The lock directory made, and the holder's note completed."""
        os.makedirs(self.directory, exist_ok=True)
        return {"pid": os.getpid(), "host": self.host, "since": time.time(), **note}

    def _try_all(self, names: list[str], note: dict[str, Any]) -> tuple[Held | None, Holder | None]:
        stale: list[Holder] = []
        try:
            return self._take_all(names, note, stale)
        finally:
            # a lock left by a dead process is taken over, and its note overwritten, whether
            # or not the others are free: reported now, or never
            for holder in stale:
                log.warning("cleared a stale lock: %s", holder.describe())
                if self.on_stale is not None:
                    try:
                        self.on_stale(holder)
                    except Exception:  # reporting it must not stop the run
                        log.exception("recording a stale lock failed")

    def _take_all(
        self, names: list[str], note: dict[str, Any], stale: list[Holder]
    ) -> tuple[Held | None, Holder | None]:
        held = Held()
        for name in names:
            lock = _FileLock(self.directory, name)
            if not lock.try_acquire():
                held.release()
                return None, lock.read_note() or Holder(name)
            held.files.append(lock)
            previous = lock.previous_holder()
            if previous is not None and self._dead(previous):
                stale.append(previous)
            lock.write_note(note)
        slot = self._take_slot(note)
        if slot is None:
            held.release()
            return None, Holder(
                f"the run limit ([runner] max_concurrent = {self.max_concurrent})",
                job="other jobs",
            )
        held.files.append(slot)
        if self.engine is not None:
            advisory = _AdvisoryLocks(self.engine)
            if not advisory.try_acquire(names):
                held.release()
                return None, Holder(names[0], host="another host sharing the database")
            held.advisory = advisory
        return held, None

    def _take_slot(self, note: dict[str, Any]) -> _FileLock | None:
        for i in range(self.max_concurrent):
            slot = _FileLock(self.directory, f"slot:{i}")
            if slot.try_acquire():
                slot.write_note(note)
                return slot
        return None

    def _dead(self, holder: Holder) -> bool:
        """A note left by a process of this host that no longer exists."""
        if holder.host != self.host or not isinstance(holder.pid, int):
            return False
        return holder.pid != os.getpid() and not alive(holder.pid)

    def holders(self, names: list[str]) -> list[Holder]:
        """Who holds these locks now (for messages and tests)."""
        out = []
        for name in names:
            note = _FileLock(self.directory, name).read_note()
            if note is not None:
                out.append(note)
        return out
