"""Who may run now: one lock per job, one per repository (and concurrency group), and at
most ``[runner] max_concurrent`` runs at once on a host.

Locks are ``flock`` lock files in ``<data>/locks/``, so a cron-started ``backwatch run``
and the server's scheduler on one host see each other. The kernel drops a lock when its
process dies; the holder's note in the file (pid, host, job, run) stays behind, which is
how a lock left by a dead process is noticed and reported (``on_stale``). On PostgreSQL the
named locks are also session advisory locks with a note in the database
(services/advisory_locks.py), so runners on other hosts, or ``serve`` instances with other
data directories, that share the database see them and their dead holders too.

A holder that died may have left its command running (a ``serve`` killed with ``kill -9``
does not take its children with it). On this host such a command is found by its run id
(services/orphans.py) and the lock stays taken until it ends: the next run waits for it,
and stops it only once the dead run's timeout is up. On another host it cannot be seen:
the lock is taken over at once, and the dead run's message says so.

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
from backwatch.services.orphans import Orphans, started_after

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from backwatch.services.advisory_locks import AdvisoryLocks

POLL_S = 0.2
log = logging.getLogger("backwatch.locks")


def hostname() -> str:
    """This host's name, as ``socket.gethostname()`` gives it."""
    return os.uname().nodename


class Busy(Conflict):
    """A lock the run needs is held and the job says ``on_busy = "refuse"``."""


class Holder:
    """The note a holder leaves in a lock file."""

    __slots__ = ("deadline", "host", "job", "left_running", "name", "pid", "run_id", "since")

    def __init__(
        self,
        name: str,
        pid: int | None = None,
        host: str | None = None,
        job: str | None = None,
        run_id: str | None = None,
        since: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self.name = name
        self.pid = pid
        self.host = host
        self.job = job
        self.run_id = run_id
        self.since = since
        #: when the holder's runner would have stopped the run (its timeout), if it has one
        self.deadline = deadline
        #: pids of this host still running a dead holder's command (found by its run id)
        self.left_running: list[int] = []

    def __repr__(self) -> str:
        return f"Holder({self.name!r}, pid={self.pid}, host={self.host!r}, job={self.job!r})"

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another process"
        if self.host and self.host != hostname():
            who += f" on {self.host}"
        what = f"job {self.job!r}" if self.job else "a run"
        if self.left_running:
            pids = ", ".join(str(pid) for pid in self.left_running)
            return (
                f"{self.name} is held by the command of run {self.run_id} (pid {pids}), "
                f"left running when its runner ({who}) died"
            )
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

    def release(self, keep_note: bool = False) -> None:
        if self.fd is None:
            return
        try:
            if not keep_note:
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None


def _name_in(path: str) -> str | None:
    """The lock name a lock file's note gives (None: free, or unreadable)."""
    try:
        with open(path, "rb") as file:
            obj = json.loads(file.read() or b"{}")
    except (OSError, ValueError):
        return None
    name = obj.get("name") if isinstance(obj, dict) else None
    return name if isinstance(name, str) else None


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
        deadline=obj.get("deadline"),
    )


class Held:
    """The locks of one run; ``release()`` (or leaving the ``with``) gives them back."""

    def __init__(self) -> None:
        self.files: list[_FileLock] = []
        self.advisory: AdvisoryLocks | None = None
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
        self.orphans = Orphans()
        self._reported: set[tuple[Any, ...]] = set()  # dead holders reported already

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
        note = {"pid": os.getpid(), "host": self.host, "since": time.time(), **note}
        timeout_s = note.pop("timeout_s", None)
        if timeout_s:
            note["deadline"] = note["since"] + timeout_s
        return note

    def _try_all(self, names: list[str], note: dict[str, Any]) -> tuple[Held | None, Holder | None]:
        stale: list[Holder] = []
        try:
            return self._take_all(names, note, stale)
        finally:
            # a lock left by a dead process is taken over, and its note overwritten, whether
            # or not the others are free: reported now, or never
            self._report(stale)

    def _report(self, stale: list[Holder]) -> None:
        for holder in stale:
            if holder.left_running:
                log.warning("%s: the lock stays taken until it ends", holder.describe())
            else:
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
            previous = lock.previous_holder()
            if previous is not None and self._dead(previous):
                blocker = self._runner_died(previous, stale)
                if blocker is not None:  # its command still runs: the note stays
                    lock.release(keep_note=True)
                    held.release()
                    return None, blocker
            held.files.append(lock)
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
            from backwatch.services.advisory_locks import AdvisoryLocks

            advisory = AdvisoryLocks(self.engine)
            held.advisory = advisory
            if not advisory.try_acquire(names):
                held.release()
                return None, Holder(names[0], host="another host sharing the database")
            blocker = self._noted_holders(advisory, stale)
            if blocker is not None:
                held.release()
                return None, blocker
            advisory.write_note(note)
        return held, None

    def _noted_holders(self, advisory: AdvisoryLocks, stale: list[Holder]) -> Holder | None:
        """The notes left on advisory locks just taken: each names a holder whose session
        ended without giving the lock back. Answers who the run must still wait for: a
        runner of this host that lost its session but lives, or its dead run's command."""
        from backwatch.services.advisory_locks import HELD_HERE

        for row in advisory.notes():
            fields = ("pid", "host", "job", "run_id", "since", "deadline")
            holder = Holder(row["name"], **{k: row[k] for k in fields})
            if holder.host == self.host and holder.pid == os.getpid():
                if holder.run_id in HELD_HERE:  # one of this process's runs, going on
                    return holder
                continue  # a note this process failed to remove: its run is over
            if holder.host == self.host and not self._dead(holder):
                return holder  # its runner lives: it lost its session, not its run
            blocker = self._runner_died(holder, stale)
            if blocker is not None:
                return blocker
        return None

    def _runner_died(self, holder: Holder, stale: list[Holder]) -> Holder | None:
        """``holder``'s runner is gone: reported (once), and answered again as long as a
        command of its run still runs on this host (stopped once its timeout is up)."""
        if holder.run_id and holder.host == self.host:
            holder.left_running = self.orphans.left_running(holder.run_id)
        if (holder.run_id or holder.name, holder.pid, holder.since) not in self._reported:
            self._reported.add((holder.run_id or holder.name, holder.pid, holder.since))
            stale.append(holder)
        if not holder.left_running:
            return None
        assert holder.run_id is not None
        if self.orphans.stop_if_overdue(holder.run_id, holder.left_running, holder.deadline):
            log.warning("%s: its timeout is up, stopping it", holder.describe())
        return holder

    def sweep(self) -> int:
        """Look at every lock noted in this data directory and in the database once (never
        waiting): a holder that died is reported (``on_stale``: its run closed) and its note
        removed, unless its command still runs on this host. The leader does this when it
        takes the lead (a server's start) and now and then, so a dead runner's run is closed
        even if its job is not due for a day. Answers how many dead holders were found."""
        found = self._sweep_files()
        if self.engine is None:
            return found
        from backwatch.services.advisory_locks import AdvisoryLocks, noted_names

        for name in noted_names(self.engine):
            stale: list[Holder] = []
            advisory = AdvisoryLocks(self.engine)
            try:
                if not advisory.try_acquire([name]):
                    continue  # held by a live session: not stale
                hosts = {note["host"] for note in advisory.notes()}
                # another host's note stays: a runner there still finds its dead run's
                # command, which cannot be seen from here (the next holder replaces it)
                if self._noted_holders(advisory, stale) is None and hosts <= {self.host}:
                    advisory.forget(name)
            finally:
                advisory.release()
                self._report(stale)
                found += len(stale)
        return found

    def _sweep_files(self) -> int:
        stale: list[Holder] = []
        try:
            entries = sorted(e.path for e in os.scandir(self.directory) if e.name.endswith(".lock"))
        except OSError:
            return 0  # no lock taken here yet
        for path in entries:
            name = _name_in(path)
            if name is None or name.startswith("slot:"):
                continue  # free, or a run slot (its run's own lock says the same)
            lock = _FileLock(self.directory, name)
            if lock.path != path or not lock.try_acquire():
                continue  # held: its holder lives
            keep = True
            try:
                previous = lock.previous_holder()
                if previous is not None and self._dead(previous):
                    keep = self._runner_died(previous, stale) is not None
            finally:
                lock.release(keep_note=keep)
        self._report(stale)
        return len(stale)

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
        if holder.pid == os.getpid():
            return False
        # a pid started after the note was written is another process that reused it
        if not alive(holder.pid):
            return True
        return holder.since is not None and started_after(holder.pid, holder.since)

    def holders(self, names: list[str]) -> list[Holder]:
        """Who holds these locks now (for messages and tests)."""
        out = []
        for name in names:
            note = _FileLock(self.directory, name).read_note()
            if note is not None:
                out.append(note)
        return out
