"""``backwatch run JOB``: run a configured job and record it as a run.

Cron and systemd timers start this for every backup. The settings are read and the locks
taken before the tool starts; the database is opened, and rich loaded, while it runs
(``runners.record.BackgroundRecorder``, ``cli.run_progress``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any

import typer

from backwatch.cli.common import print_json
from backwatch.cli.params import targeted
from backwatch.cli.run_progress import ProgressWatcher
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.errors import ConfigError
from backwatch.ids import new_run_id
from backwatch.runners.base import RunContext
from backwatch.runners.job_runner import EXIT_BUSY, JobRunner
from backwatch.runners.record import BackgroundRecorder, HttpRecorder, HubRecorder, NullRecorder
from backwatch.services.locks import Busy, Locks


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def _configured(settings: Any, job_id: str) -> Any:
    for job in settings.jobs:
        if job.id == job_id:
            return job
    source = settings.config_path or "no config file (use --config or BACKWATCH_CONFIG)"
    known = ", ".join(j.id for j in settings.jobs) or "none"
    raise ConfigError(f"no job {job_id!r} in {source}; declared jobs: {known}")


@targeted()
def run(
    job: Annotated[str, typer.Argument(help="The id of a job declared in the config file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the commands (secrets masked); run nothing.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each command and the tools' output.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
    where: Where = DEFAULT_TARGET,
) -> int:
    """Run a configured job (restic, borg, rsync or a command) and record it as a run.

    Each step is a phase (dump, backup, prune, check); a progress bar shows percentage, rate
    and ETA. Exit status: 0 success, 3 warning, 1 failed, 124 timed out, 130 cancelled,
    75 refused (already running, on_busy = "refuse").
    """
    if dry_run:
        return _dry_run(job, where, as_json=as_json)
    run_id = new_run_id(time.time())
    cancel = threading.Event()
    # from here on Ctrl-C and SIGTERM cancel the run
    with _cancel_on_signals(cancel):
        return _run(job, where, run_id, cancel, verbose=verbose, as_json=as_json)


def _dry_run(job: str, where: Where, *, as_json: bool) -> int:
    settings = where.settings()
    ctx = RunContext(settings, _configured(settings, job))
    runner = JobRunner(ctx, NullRecorder(), Locks(settings.data_dir))
    lines = runner.describe()
    if as_json:
        print_json({"job": job, "dry_run": True, "commands": lines})
    else:
        sys.stdout.write(f"{job}: would run ({len(runner.steps)} steps):\n")
        for line in lines:
            sys.stdout.write(f"  {line}\n")
    return 0


def _run(
    job: str, where: Where, run_id: str, cancel: threading.Event, *, verbose: bool, as_json: bool
) -> int:
    settings = where.settings()
    ctx = RunContext(settings, _configured(settings, job))
    # the run as stored is read back only to be printed (--json)
    recorder, engine = _recorder(settings, where, read_back=as_json)
    locks = Locks(settings.data_dir, max_concurrent=settings.runner.max_concurrent, engine=engine)
    watcher = ProgressWatcher(verbose=verbose, quiet=as_json)
    runner = JobRunner(
        ctx, recorder, locks, watcher=watcher, trigger="manual", run_id=run_id, cancel=cancel
    )
    try:
        with watcher:
            result = runner.run()
    except Busy as exc:
        sys.stderr.write(f"error: {job} is already running: {exc.message} (on_busy = 'refuse')\n")
        return EXIT_BUSY
    finally:
        recorder.close()
    if recorder.problem:
        sys.stderr.write(f"warning: this run is not recorded: {recorder.problem}\n")
    if as_json:
        print_json(
            result.record
            or {"id": result.run_id, "job": job, "status": result.status.value, **result.fields}
        )
    else:
        watcher.summary(job, result, result.record)
    return result.process_exit


@contextlib.contextmanager
def _cancel_on_signals(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM (systemd stopping the unit) cancels the run as the server's cancel
    does: the running command's process group is stopped (it runs in a session of its own,
    so the terminal's Ctrl-C does not reach it), the run is recorded as cancelled and the
    exit status is 130. A second Ctrl-C quits at once."""

    def handler(signum: int, _frame: Any) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.set()
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: cancelling the run, stopping its command "
            "(Ctrl-C again to quit at once)\n"
        )

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (an embedding program's worker)
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _recorder(settings: Any, where: Where, *, read_back: bool) -> Any:
    """(recorder, the engine PostgreSQL's advisory locks need or None).

    The server when BACKWATCH_URL is set, else the database. A SQLite database is opened on
    the recorder's thread while the job already runs (its imports and checks would hold the
    backup up by a second); PostgreSQL is opened first, as the run's locks are taken in it.
    """
    if (where.url or os.environ.get("BACKWATCH_URL")) and not where.db:
        target = open_target(replace(where, data_dir=str(settings.data_dir)))
        return BackgroundRecorder(lambda: HttpRecorder(target, read_back=read_back)), None
    if settings.db_url.startswith("sqlite"):
        return BackgroundRecorder(lambda: _hub_recorder(settings, read_back)), None
    recorder = _hub_recorder(settings, read_back)
    return BackgroundRecorder(lambda: recorder), recorder.hub.read_engine


def _hub_recorder(settings: Any, read_back: bool) -> Any:
    """Records in the database of ``settings``, closing it when the run is done. Called on
    the recorder's thread for SQLite: the store layer (SQLAlchemy) loads while the tool runs."""
    from backwatch.services.hub import Hub

    return HubRecorder(
        Hub(settings), actor="cli", owns_hub=True, sync_config=True, read_back=read_back
    )
