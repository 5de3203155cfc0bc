"""Where a run is recorded: the database through a Hub (CLI without a server, the server's
scheduler), or a server over HTTP (``BACKWATCH_URL``), with the same five calls.

Recording never stops a backup: a failure to record is logged and the run goes on.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from typing import Any, Protocol

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport, tail_text
from backwatch.errors import BackwatchError
from backwatch.services.locks import Holder

log = logging.getLogger("backwatch.runner")


class Recorder(Protocol):
    def start(
        self,
        run_id: str,
        job: str,
        tool: str | None,
        status: RunStatus,
        trigger: str,
        message: str | None,
    ) -> None: ...

    def status(self, run_id: str, status: RunStatus | None, message: str | None) -> None: ...

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None: ...

    def finish(
        self, run_id: str, status: RunStatus, fields: dict[str, Any], log: str | None, trigger: str
    ) -> dict[str, Any] | None: ...

    def stale_lock(self, holder: Holder) -> None: ...


class HubRecorder:
    """Records through ``hub.write`` (one transaction per call; the server batches them)."""

    def __init__(self, hub: Any, *, actor: str = "runner") -> None:
        self.hub = hub
        self.actor = actor

    def _write(self, op: Any) -> Any:
        try:
            return self.hub.write(op)
        except BackwatchError as exc:
            log.warning("could not record: %s", exc.message)
        except Exception:
            log.exception("could not record")
        return None

    def start(
        self,
        run_id: str,
        job: str,
        tool: str | None,
        status: RunStatus,
        trigger: str,
        message: str | None,
    ) -> None:
        from backwatch.services import runs

        now = self.hub.now()
        report = RunReport(
            job=job,
            status=status,
            started_at=now,
            id=run_id,
            host=socket.gethostname(),
            tool=tool,
            message=message,
            source="runner",
            trigger=trigger,
        )
        self._write(runs.start_run(report, now, actor=self.actor))

    def status(self, run_id: str, status: RunStatus | None, message: str | None) -> None:
        from backwatch.services import runs

        op = runs.update_status(
            run_id, self.hub.now(), message=message, status=status, actor=self.actor
        )
        self._write(op)

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None:
        from backwatch.services import runs

        self._write(runs.record_phase(run_id, name, event, self.hub.now(), at=at, status=status))

    def finish(
        self, run_id: str, status: RunStatus, fields: dict[str, Any], log: str | None, trigger: str
    ) -> dict[str, Any] | None:
        from backwatch.services import runs
        from backwatch.services.views import run_out

        op = runs.finish_run(
            run_id,
            status,
            self.hub.now(),
            fields=fields,
            log=log,
            trigger=trigger,
            actor=self.actor,
        )
        row = self._write(op)
        return run_out(row) if row is not None else None

    def stale_lock(self, holder: Holder) -> None:
        """An event for the audit trail, and the dead runner's run closed as failed."""
        from backwatch.services import runs

        now = self.hub.now()

        def op(conn: Any, unit: Any) -> None:
            unit.event(
                at=now,
                kind="auto_resolve",
                entity="lock",
                entity_id=holder.name[:128],
                job=holder.job,
                actor=self.actor,
                detail={
                    "problem": "stale lock",
                    "pid": holder.pid,
                    "host": holder.host,
                    "run_id": holder.run_id,
                    "message": f"cleared {holder.describe()}: that process is gone",
                },
            )

        self._write(op)
        if holder.run_id:
            self._close_dead_run(holder, runs)

    def _close_dead_run(self, holder: Holder, runs: Any) -> None:
        from backwatch.domain.lifecycle import ACTIVE
        from backwatch.store import queries

        assert holder.run_id is not None

        try:
            with self.hub.read_engine.connect() as conn:
                run = queries.get_run(conn, holder.run_id)
        except BackwatchError:
            return
        if RunStatus(run["status"]) not in ACTIVE:
            return
        message = f"the runner process (pid {holder.pid}) died during the run"
        self._write(
            runs.finish_run(
                holder.run_id,
                RunStatus.FAILED,
                self.hub.now(),
                fields={"message": message},
                trigger="event",
                actor=self.actor,
            )
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class HttpRecorder:
    """Records on a server through the API (``cli.target.HttpTarget``; spools when down)."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except BackwatchError as exc:
            log.warning("could not report to the server: %s", exc.message)
            return None

    def start(
        self,
        run_id: str,
        job: str,
        tool: str | None,
        status: RunStatus,
        trigger: str,
        message: str | None,
    ) -> None:
        body = {
            "id": run_id,
            "job": job,
            "host": socket.gethostname(),
            "tool": tool,
            "status": status.value,
            "trigger": trigger,
            "message": message,
        }
        self._call(self.target.start, {k: v for k, v in body.items() if v is not None})

    def status(self, run_id: str, status: RunStatus | None, message: str | None) -> None:
        body = {"status": status.value if status else None, "message": message}
        body = {k: v for k, v in body.items() if v is not None}
        self._call(self.target.run_call, run_id, "status", body)

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None:
        body: dict[str, Any] = {"name": name, "event": event, "at": _iso(at)}
        if status:
            body["status"] = status
        self._call(self.target.run_call, run_id, "phases", body)

    def finish(
        self, run_id: str, status: RunStatus, fields: dict[str, Any], log: str | None, trigger: str
    ) -> dict[str, Any] | None:
        body = {k: v for k, v in fields.items() if v is not None}
        body["status"] = status.value
        if log:
            body["log"] = tail_text(log)
        self._call(self.target.run_call, run_id, "finish", body)
        return self._call(self.target.get_run, run_id)

    def stale_lock(self, holder: Holder) -> None:
        if holder.run_id:
            message = f"the runner process (pid {holder.pid}) died during the run"
            self._call(
                self.target.run_call,
                holder.run_id,
                "finish",
                {"status": "failed", "message": message},
            )


class NullRecorder:
    """--dry-run: records nothing."""

    def start(self, *args: Any) -> None:
        pass

    def status(self, *args: Any) -> None:
        pass

    def phase(self, *args: Any, **kwargs: Any) -> None:
        pass

    def finish(self, *args: Any) -> dict[str, Any] | None:
        return None

    def stale_lock(self, holder: Holder) -> None:
        pass
