"""A run lock left by a process that is gone, once taken over (``services.locks`` notices
it): an ``auto_resolve`` event for the audit trail, and the dead process's run closed as
failed if it was still going, with a message saying what is known of its command. The
runner's recorder (the next run of that job), the leader's sweep (runners/scheduler.py) and
``backwatch health --fix`` (services/diagnostics.py) all record it through here.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from backwatch.domain.lifecycle import ACTIVE, RunStatus
from backwatch.services import runs
from backwatch.services.locks import Holder, hostname
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.writer import Op


def clear_stale_lock(holder: Holder, now: float, *, actor: str) -> Op[None]:
    """One transaction: the event, then the holder's run (when it is still active) closed
    as failed, saying its runner died."""
    close = None
    if holder.run_id:
        message = died_message(holder)
        close = runs.finish_run(
            holder.run_id,
            RunStatus.FAILED,
            now,
            fields={"message": message},
            trigger="event",
            actor=actor,
        )

    def op(conn: Connection, unit: WriteUnit) -> None:
        if holder.run_id and _status(conn, holder.run_id) not in (None, *ACTIVE):
            return  # its run is closed: recorded already (found again by another runner)
        unit.event(
            at=now,
            kind="auto_resolve",
            entity="lock",
            entity_id=holder.name[:128],
            job=holder.job,
            actor=actor,
            detail={
                "problem": "stale lock",
                "pid": holder.pid,
                "host": holder.host,
                "run_id": holder.run_id,
                "message": f"cleared {holder.describe()}: that process is gone"
                if not holder.left_running
                else f"{holder.describe()}: the next run waits for it",
            },
        )
        if close is not None and _active(conn, holder.run_id):
            close(conn, unit)

    return op


def died_message(holder: Holder) -> str:
    """Why the run of a dead holder was closed, and what became of its command."""
    if holder.host and holder.host != hostname():
        return (
            f"its runner (pid {holder.pid} on {holder.host}) lost its database session "
            f"during the run: it died or was cut off; a command it started on {holder.host} "
            "may still be running there (backwatch cannot see it from this host)"
        )
    message = f"the runner process (pid {holder.pid}) died during the run"
    if holder.left_running:
        pids = ", ".join(str(pid) for pid in holder.left_running)
        message += (
            f"; its command (pid {pids}) was left running, unrecorded: the next run of the "
            "job waits for it to end (and stops it once the job's timeout is up)"
        )
    return message


def _status(conn: Connection, run_id: str | None) -> RunStatus | None:
    status = conn.execute(select(t.runs.c.status).where(t.runs.c.id == run_id)).scalar()
    return None if status is None else RunStatus(status)


def _active(conn: Connection, run_id: str | None) -> bool:
    return _status(conn, run_id) in ACTIVE
