"""Commands left running by a runner that died: found on this host by the run id every
command of a run carries in its environment (``BACKWATCH_RUN_ID``), so a reused pid or
another run's command is never taken for one; stopped only once the run's timeout is up,
as their runner would have stopped them.

A process on another host cannot be seen from here; services/locks.py says so instead.
"""

from __future__ import annotations

import os
import signal
import time

#: set in the environment of every command a runner starts (runners/job_runner.py)
RUN_ENV = "BACKWATCH_RUN_ID"
#: after SIGTERM, how long an overdue orphan gets before SIGKILL
KILL_GRACE_S = 10.0
#: how often the process table is read again while waiting for the same run's commands
RESCAN_S = 2.0


class Orphans:
    """The processes of this host still running for runs whose runner is gone."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, list[tuple[int, float]]]] = {}
        self._termed: dict[str, float] = {}

    def left_running(self, run_id: str) -> list[int]:
        """Pids of the processes of this host that carry ``run_id`` (empty when none)."""
        now = time.monotonic()
        scanned, found = self._seen.get(run_id, (float("-inf"), []))
        if now - scanned < RESCAN_S:  # between reads of /proc: are those still there?
            found = [(pid, born) for pid, born in found if _same_process(pid, born)]
        else:
            found = _scan(run_id)
        self._seen[run_id] = (scanned if now - scanned < RESCAN_S else now, found)
        return [pid for pid, _ in found]

    def stop_if_overdue(self, run_id: str, pids: list[int], deadline: float | None) -> bool:
        """SIGTERM the run's processes once ``deadline`` (epoch seconds) has passed, SIGKILL
        those left ``KILL_GRACE_S`` later. True when they were told to stop."""
        if deadline is None or time.time() < deadline or not pids:
            return False
        termed = self._termed.setdefault(run_id, time.monotonic())
        sig = signal.SIGKILL if time.monotonic() - termed >= KILL_GRACE_S else signal.SIGTERM
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        self._seen.pop(run_id, None)  # look again: they may be gone now
        return True


def _scan(run_id: str) -> list[tuple[int, float]]:
    import psutil  # loaded only when a dead runner's lock is found

    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(RUN_ENV) == run_id:
                found.append((proc.pid, proc.create_time()))
        except (psutil.Error, OSError):  # gone meanwhile, another user's, a kernel thread
            continue
    return found


def _same_process(pid: int, born: float) -> bool:
    import psutil

    try:
        return psutil.Process(pid).create_time() == born
    except psutil.Error:
        return False


def started_after(pid: int, since: float) -> bool:
    """Whether process ``pid`` (alive) was started after ``since``: a pid reused by another
    process since a lock's note was written (unknown: False)."""
    try:
        import psutil

        return psutil.Process(pid).create_time() > since + 1.0
    except Exception:
        return False
