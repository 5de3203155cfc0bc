"""Where a run is recorded: the database through a Hub (CLI without a server, the server's
scheduler), or a server over HTTP (``BACKWATCH_URL``), with the same calls.

Recording never stops a backup, nor holds it up: a failure to record is logged and the run
goes on, and ``BackgroundRecorder`` does the recording on a thread of its own while the
tool runs. Every call says when its event happened (``at``), so a write that comes later
still stores the right times.

``HubRecorder`` writes with the operations of ``services.runs`` and ``services.stale_locks``,
which it imports inside its methods: they load SQLAlchemy and the store, which ``backwatch
run`` must not load before its tool starts; the recorder's thread loads them while the
tool runs.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
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
        *,
        at: float,
        kind: str = "backup",
    ) -> None: ...

    def status(
        self, run_id: str, status: RunStatus | None, message: str | None, *, at: float
    ) -> None: ...

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None: ...

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        fields: dict[str, Any],
        log: str | None,
        trigger: str,
        *,
        at: float,
    ) -> dict[str, Any] | None:
        """Close the run; answers it as stored, with its phases (None if unknown)."""
        ...

    def stale_lock(self, holder: Holder) -> None: ...

    def begin(self) -> None:
        """The run's first command has started: work held back until now may start."""
        ...

    def close(self) -> None:
        """Release what the recorder opened (a database, a connection)."""
        ...


class HubRecorder:
    """Records through ``hub.write`` (one transaction per call; the server batches them).

    ``owns_hub``: ``close()`` closes the hub too (the CLI's, opened for this one run), and
    a phase's end is written with the call after it (the next phase's start, the run's end),
    in its transaction: one durable commit fewer between the tool's end and the exit.
    ``read_back``: ``finish`` answers the run as stored (else None: nobody prints it).
    ``sync_config``: a run's job, when the config file declares it, is written with its
    configured schedule, grace and the rest first (as ``serve`` does for every job at
    start), so ``backwatch status`` knows them for jobs that only cron runs.
    """

    def __init__(
        self,
        hub: Any,
        *,
        actor: str = "runner",
        owns_hub: bool = False,
        sync_config: bool = False,
        read_back: bool = True,
    ) -> None:
        # what the calls need, loaded now (on the recorder's thread, while the tool runs)
        # rather than when the tool has ended and the run waits for its last writes
        import backwatch.services.runs
        import backwatch.services.views
        import backwatch.store.queries  # noqa: F401

        self.hub = hub
        self.actor = actor
        self.owns_hub = owns_hub
        self.sync_config = sync_config
        self.read_back = read_back
        self._pending: Any = None  # a phase's end, written with the next call

    def _write(self, op: Any) -> Any:
        pending, self._pending = self._pending, None
        if pending is not None:
            op = _in_one_transaction(pending, op)
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
        *,
        at: float,
        kind: str = "backup",
    ) -> None:
        from backwatch.services import runs

        if self.sync_config:
            from backwatch.services.bootstrap import sync_configured_jobs

            try:
                sync_configured_jobs(self.hub, only=job)
            except BackwatchError as exc:
                why = exc.message
                log.warning("could not record the job's settings: %s", why, extra={"job": job})
        report = RunReport(
            job=job,
            status=status,
            started_at=at,
            id=run_id,
            host=socket.gethostname(),
            tool=tool,
            message=message,
            source="runner",
            trigger=trigger,
            kind=kind,
        )
        self._write(runs.start_run(report, at, actor=self.actor))
        if self.owns_hub and self.read_back:
            # the CLI reads the run back once it has ended, and SQLAlchemy compiles a
            # statement the first time it runs: read it now, while the tool works
            self._stored(run_id)

    def status(
        self, run_id: str, status: RunStatus | None, message: str | None, *, at: float
    ) -> None:
        from backwatch.services import runs

        self._write(
            runs.update_status(run_id, at, message=message, status=status, actor=self.actor)
        )

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None:
        from backwatch.services import runs

        op = runs.record_phase(run_id, name, event, self.hub.now(), at=at, status=status)
        if event == "end" and self.owns_hub:
            self._pending = op
            return
        self._write(op)

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        fields: dict[str, Any],
        log: str | None,
        trigger: str,
        *,
        at: float,
    ) -> dict[str, Any] | None:
        from backwatch.services import runs
        from backwatch.services.views import run_out

        op = runs.finish_run(
            run_id, status, at, fields=fields, log=log, trigger=trigger, actor=self.actor
        )
        if self._write(op) is None or not self.read_back:
            return None
        run = self._stored(run_id)
        return run_out(run) if run is not None else None

    def _stored(self, run_id: str) -> dict[str, Any] | None:
        """The run as stored, with its phases and events; None when it cannot be read."""
        from backwatch.store import queries

        try:
            with self.hub.read_engine.connect() as conn:
                return queries.get_run(conn, run_id)
        except BackwatchError:
            return None

    def stale_lock(self, holder: Holder) -> None:
        """An event for the audit trail, and the dead runner's run closed as failed."""
        from backwatch.services.stale_locks import clear_stale_lock

        self._write(clear_stale_lock(holder, self.hub.now(), actor=self.actor))

    def begin(self) -> None:
        pass

    def close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._write(pending)
        if self.owns_hub:
            self.hub.close()


def _in_one_transaction(first: Any, then: Any) -> Any:
    """``first`` then ``then``, one transaction. A ``first`` that is refused (a phase's end
    checks the run before it writes anything) is logged and does not stop ``then``."""

    def op(conn: Any, unit: Any) -> Any:
        try:
            first(conn, unit)
        except BackwatchError as exc:
            log.warning("could not record: %s", exc.message)
        return then(conn, unit)

    return op


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class HttpRecorder:
    """Records on a server through the API (``cli.target.HttpTarget``; spools when down)."""

    def __init__(self, target: Any, *, read_back: bool = True) -> None:
        """``read_back``: ``finish`` fetches the run as stored (else None: nobody prints it)."""
        self.target = target
        self.read_back = read_back

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
        *,
        at: float,
        kind: str = "backup",
    ) -> None:
        body = {
            "id": run_id,
            "job": job,
            "host": socket.gethostname(),
            "tool": tool,
            "status": status.value,
            "trigger": trigger,
            "message": message,
            "started_at": _iso(at),
            "kind": kind if kind != "backup" else None,
        }
        self._call(self.target.start, {k: v for k, v in body.items() if v is not None})

    def status(
        self, run_id: str, status: RunStatus | None, message: str | None, *, at: float
    ) -> None:
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
        self,
        run_id: str,
        status: RunStatus,
        fields: dict[str, Any],
        log: str | None,
        trigger: str,
        *,
        at: float,
    ) -> dict[str, Any] | None:
        body = {k: v for k, v in fields.items() if v is not None}
        body["status"] = status.value
        body["finished_at"] = _iso(at)
        if log:
            body["log"] = tail_text(log)
        self._call(self.target.run_call, run_id, "finish", body)
        return self._call(self.target.get_run, run_id) if self.read_back else None

    def stale_lock(self, holder: Holder) -> None:
        if holder.run_id:
            message = f"the runner process (pid {holder.pid}) died during the run"
            self._call(
                self.target.run_call,
                holder.run_id,
                "finish",
                {"status": "failed", "message": message},
            )

    def begin(self) -> None:
        pass

    def close(self) -> None:
        self.target.close()


class NullRecorder:
    """--dry-run, or a store that could not be opened: records nothing."""

    def start(self, *args: Any, **kwargs: Any) -> None:
        pass

    def status(self, *args: Any, **kwargs: Any) -> None:
        pass

    def phase(self, *args: Any, **kwargs: Any) -> None:
        pass

    def finish(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return None

    def stale_lock(self, holder: Holder) -> None:
        pass

    def begin(self) -> None:
        pass

    def close(self) -> None:
        pass


class BackgroundRecorder:
    """Records on a thread of its own, in call order, so the tool never waits for a write.

    ``open_recorder`` runs on that thread too, once the run's first command has started
    (``begin``) or ``HOLD_S`` after the first call (a run queued behind a lock): ``backwatch
    run`` starts the backup while the database layer is still being imported and opened,
    instead of sharing the interpreter with that import until the command starts, and a
    running server's scheduler writes a run's start and phases while its tool already
    works. ``finish`` waits for every call before it, then writes on the caller's thread
    and answers the stored run. A store that cannot be opened does not stop the run: it
    goes on unrecorded, and ``problem`` says why.
    """

    HOLD_S = 0.5

    def __init__(self, open_recorder: Callable[[], Recorder]) -> None:
        #: why the store could not be opened (the run was not recorded), else None
        self.problem: str | None = None
        self._recorder: Recorder = NullRecorder()
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._go = threading.Event()
        self._thread = threading.Thread(
            target=self._work, args=(open_recorder,), name="recorder", daemon=True
        )
        self._thread.start()

    def begin(self) -> None:
        self._go.set()

    def _work(self, open_recorder: Callable[[], Recorder]) -> None:
        call = self._calls.get()
        if call is None:  # closed before anything was recorded (a refused run)
            return
        self._go.wait(self.HOLD_S)
        try:
            self._recorder = open_recorder()
        except BackwatchError as exc:
            self.problem = exc.message
        except Exception as exc:
            log.exception("opening the store failed")
            self.problem = f"opening the store failed: {exc}"
        while call is not None:
            try:
                call()
            except Exception:  # a recorder's bug must not stop the calls that follow
                log.exception("could not record")
            call = self._calls.get()

    def start(
        self,
        run_id: str,
        job: str,
        tool: str | None,
        status: RunStatus,
        trigger: str,
        message: str | None,
        *,
        at: float,
        kind: str = "backup",
    ) -> None:
        self._calls.put(
            lambda: self._recorder.start(
                run_id, job, tool, status, trigger, message, at=at, kind=kind
            )
        )

    def status(
        self, run_id: str, status: RunStatus | None, message: str | None, *, at: float
    ) -> None:
        self._calls.put(lambda: self._recorder.status(run_id, status, message, at=at))

    def phase(
        self, run_id: str, name: str, event: str, at: float, status: str | None = None
    ) -> None:
        self._calls.put(lambda: self._recorder.phase(run_id, name, event, at, status))

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        fields: dict[str, Any],
        log: str | None,
        trigger: str,
        *,
        at: float,
    ) -> dict[str, Any] | None:
        # every call before this one made first (the store opened, the start written),
        # then the last write on the caller's thread, which answers the stored run
        drained = threading.Event()
        self._calls.put(drained.set)
        self._go.set()
        drained.wait()
        try:
            return self._recorder.finish(run_id, status, fields, log, trigger, at=at)
        except Exception:  # a recorder's bug must not lose the run's outcome
            logging.getLogger("backwatch.runner").exception("could not record")
            return None

    def stale_lock(self, holder: Holder) -> None:
        self._calls.put(lambda: self._recorder.stale_lock(holder))

    def close(self) -> None:
        """Write what is left, stop the thread, close the recorder it opened."""
        self._go.set()
        self._calls.put(None)
        self._thread.join()
        self._recorder.close()
