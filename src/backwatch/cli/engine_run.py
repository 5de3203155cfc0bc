"""``backwatch backup`` as a recorded run: phases, a progress bar with ETA, the summary.

The run is recorded where ``backwatch run`` records (the database, or the server with
``BACKWATCH_URL``), with the engine's phases (dump, scan, archive, manifest, commit) and
its figures (files, new, changed, bytes added, size).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from backwatch.cli.common import echo, print_json
from backwatch.cli.run import _recorder
from backwatch.cli.target import Where
from backwatch.domain.lifecycle import RunStatus, exit_code
from backwatch.engine.snapshot import Hooks, Request, take_snapshot
from backwatch.engine.summary import summarize
from backwatch.errors import BackwatchError
from backwatch.ids import new_run_id


class _RunHooks(Hooks):
    """Phases go to the recorder, archived bytes to the progress bar."""

    def __init__(self, recorder: Any, run_id: str, progress: Any) -> None:
        self.recorder, self.run_id, self.progress = recorder, run_id, progress
        self.task: Any = None

    def phase(self, name: str, event: str, status: str | None = None) -> None:
        if self.recorder is not None:
            self.recorder.phase(self.run_id, name, event, time.time(), status)

    def total(self, nbytes: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task("archive", total=nbytes)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)


class StatusLines:
    """Progress as restic-shaped JSON status lines on stderr, at most twice a second: what
    ``backwatch run`` reads (``runners.progress``) to draw a builtin job's progress bar.
    Asked for with ``BACKWATCH_PROGRESS=json``; the same calls as rich's Progress."""

    INTERVAL_S = 0.5

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self._last = 0.0
        self._lock = threading.Lock()  # destinations are written from threads of their own

    def __enter__(self) -> StatusLines:
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._emit()  # where it ended

    def add_task(self, _description: str, total: int) -> int:
        with self._lock:
            self.total = total
            self._emit()
        return 0

    def advance(self, _task: int, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            if time.monotonic() - self._last >= self.INTERVAL_S:
                self._emit()

    def _emit(self) -> None:
        self._last = time.monotonic()
        fraction = min(1.0, self.done / self.total) if self.total else 0.0
        line = {"message_type": "status", "percent_done": round(fraction, 4)}
        line |= {"total_bytes": self.total, "bytes_done": self.done}
        sys.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")
        sys.stderr.flush()


def _progress(quiet: bool) -> Any:
    """A rich progress bar (bytes, rate, ETA) on a terminal, status lines for ``backwatch
    run`` (``BACKWATCH_PROGRESS=json``); None elsewhere."""
    if os.environ.get("BACKWATCH_PROGRESS") == "json":
        return StatusLines()
    if quiet or not sys.stderr.isatty():
        return None

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def recorded_backup(
    request: Request,
    settings: Any,
    *,
    record: bool,
    as_json: bool,
    where: Where,
) -> int:
    """Take the snapshot as run ``run_id`` of ``request.job``; the process exit status."""
    recorder = None
    if record:  # the run as stored is not printed: not read back
        recorder = _recorder(settings, where, read_back=False)[0]
    run_id = new_run_id(time.time())
    job = request.job or "builtin"
    if recorder is not None:
        recorder.start(run_id, job, "builtin", RunStatus.RUNNING, "manual", None, at=time.time())
        recorder.begin()  # the snapshot starts now: open the store beside it
    progress = _progress(as_json)
    hooks = _RunHooks(recorder, run_id, progress)
    try:
        if progress is not None:
            with progress:
                outcomes = take_snapshot(request, hooks)
        else:
            outcomes = take_snapshot(request, hooks)
    except BackwatchError as exc:
        _close(recorder, run_id, RunStatus.FAILED, {"message": exc.message[:4096]})
        raise
    summary = summarize(outcomes)
    status = RunStatus(summary["status"])
    fields = {k: v for k, v in summary.items() if k != "status"}
    _close(recorder, run_id, status, {**fields, "message": summary["message"][:4096]})
    if as_json:
        print_json({"run_id": run_id if record else None, "job": job, **summary})
    else:
        echo(f"{job}: {status.value}: {summary['message']}")
    return exit_code(status)


def _close(recorder: Any, run_id: str, status: Any, fields: dict[str, Any]) -> None:
    if recorder is None:
        return
    try:
        recorder.finish(run_id, status, fields, None, "manual", at=time.time())
    finally:
        recorder.close()
    if recorder.problem:
        sys.stderr.write(f"warning: this run is not recorded: {recorder.problem}\n")
