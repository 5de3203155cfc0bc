"""``backwatch drill JOB``: restore a sample of the job's latest backup and prove that it
comes back (docs/drills.md)."""

from __future__ import annotations

import signal
import sys
from typing import Annotated, Any

import typer

from backwatch.cli.common import print_json
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.run import _configured
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.domain.report import native_body
from backwatch.job_settings import parse_size
from backwatch.runners.drill import drill_job

#: exit status per outcome: 0 passed, 1 failed, 4 unknown (nothing to restore)
EXIT = {"success": 0, "failed": 1, "unknown": 4}


def register(app: typer.Typer) -> None:
    app.command("drill")(drill)


@targeted()
def drill(
    job: Annotated[str, typer.Argument(help="The id of a job declared in the config file.")],
    files: Annotated[
        int | None, typer.Option("--files", min=1, help="Files to restore (default 20).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option("--bytes", help="Restore at most this much, e.g. 200MB (default: no cap)."),
    ] = None,
    as_json: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Prove that JOB's latest backup restores: restore a sample and compare it.

    The sample goes into a private temporary directory (removed afterwards); every file is
    compared with the backup, and with its source when unchanged since. The drill is
    recorded as a run of kind `drill` with the restore rate and a full-restore estimate.

    Works for restic, borg, rsync and built-in jobs, and for command jobs with a
    [jobs.drill] command. A failed drill opens the verify_failed alert. Exit status: 0 the
    files came back, 1 they did not (or the drill could not be done), 4 nothing to restore.

      backwatch drill photos --files 50 --bytes 500MB
    """

    try:
        max_bytes = None if size is None else parse_size(size, field="--bytes")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bytes") from None
    settings = where.settings()
    job_settings = _configured(settings, job)
    # SIGTERM ends the drill through its cleanup: the temporary directory is removed
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = drill_job(settings, job_settings, files=files, max_bytes=max_bytes)
    finally:
        signal.signal(signal.SIGTERM, previous)
    body = {**native_body(report), "trigger": "manual"}
    tgt: Any = open_target(where)
    try:
        tgt.report(body)
    finally:
        tgt.close()
    if as_json:
        print_json({**body, "recorded": True})
    else:
        _summary(report)
    raise typer.Exit(EXIT.get(report.status.value, 1))


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _summary(report: Any) -> None:
    drill = (report.stats or {}).get("drill", {})
    sys.stdout.write(f"{report.job}: {report.status.value}: {report.message}\n")
    rate = drill.get("rate_bytes_per_s")
    if rate:
        sys.stdout.write(f"  restored {drill.get('bytes_restored')} bytes at {rate / 1e6:.1f} MB/s")
        estimate = drill.get("estimate_full_restore_s")
        if estimate is not None:
            sys.stdout.write(
                f"; full restore of {drill.get('snapshot_bytes')} bytes ≈ {estimate:.0f} s"
            )
        sys.stdout.write("\n")
    for path in drill.get("differ") or []:
        sys.stdout.write(f"  differs: {path}\n")
    for path in drill.get("changed_since") or []:
        sys.stdout.write(f"  changed at the source since the snapshot: {path}\n")
