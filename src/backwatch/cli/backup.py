"""``backwatch backup``: take a snapshot with the built-in engine (docs/engine.md).

Cron, timers and ``backwatch run`` (a builtin job's backup step) start it for every
backup. ``cli.engine`` registers it with the other engine commands (restore, verify, …).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from backwatch.cli.common import echo, fail, print_json
from backwatch.cli.engine_run import recorded_backup
from backwatch.cli.params import targeted
from backwatch.cli.run import _configured
from backwatch.cli.target import DEFAULT_TARGET, Where
from backwatch.engine.repository import Repository
from backwatch.engine.scan import sources_for
from backwatch.engine.snapshot import Dump, Request, take_snapshot
from backwatch.errors import ConfigError, InvalidInput
from backwatch.job_settings import PHASE_RE, builtin_problem
from backwatch.runners.base import RunContext
from backwatch.timeutil import human_bytes, human_duration


def builtin_job(job: str, where: Where) -> tuple[Any, Any]:
    """(settings, the job's settings); refuses a job that is not a builtin one."""
    settings = where.settings()
    job_settings = _configured(settings, job)
    problem = builtin_problem(job_settings)
    if problem:
        raise ConfigError(problem)
    return settings, job_settings


def repositories(dest: list[str] | None, job: str | None, where: Where) -> list[Any]:
    if dest:
        return [Repository(d) for d in dest]
    if job:
        return [Repository(d) for d in builtin_job(job, where)[1].destinations]
    raise InvalidInput("say where the snapshots are: --dest DIR or --job JOB")


@targeted()
def backup(
    job: Annotated[str | None, typer.Argument(help="A tool = 'builtin' job of the config.")] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Directory to back up (repeat).")
    ] = None,
    dest: Annotated[
        list[str] | None,
        typer.Option("--dest", "-d", help="Destination directory (repeat for several)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-e", help="Name or path pattern (repeat)."),
    ] = None,
    dump: Annotated[
        list[str] | None,
        typer.Option("--dump", help="NAME=COMMAND: its stdout becomes _dumps/NAME (repeat)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Write every file, not only changes.")
    ] = False,
    checksum: Annotated[
        bool, typer.Option("--checksum", help="Compare content, not size + mtime + inode.")
    ] = False,
    level: Annotated[
        int | None, typer.Option("--level", help="zstd level (1–22, default 3).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Job id the run is recorded under (no JOB).")
    ] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not record a run (backwatch run does).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    where: Where = DEFAULT_TARGET,
) -> int:
    """Take a snapshot of directories into one or more destinations (in parallel).

    Incremental when the destination has a snapshot (only new and changed files are
    written), full with --full. Nothing changed: the run is recorded as skipped. Exit
    status: 0 success or skipped, 3 warning, 1 failed.
    """
    if job:
        settings, job_settings = builtin_job(job, where)
        opts = job_settings.builtin
        request = Request(
            sources=sources_for([*opts.paths, *(source or [])]),
            destinations=repositories(dest or job_settings.destinations, None, where),
            exclude=[*opts.exclude, *(exclude or [])],
            checksum=checksum or opts.checksum,
            level=level or opts.compression_level,
            job=job,
        )
        request.extra_files = _dump_files(settings, job_settings, quiet=as_json or dry_run)
    else:
        # an unrecorded ad hoc backup needs no settings
        settings = None if no_record else where.settings()
        if not dest:
            raise fail("give --dest DIR (or a configured JOB)", 2)
        request = Request(
            sources=sources_for(source or []),
            destinations=repositories(dest, None, where),
            exclude=exclude or [],
            checksum=checksum,
            level=level or 3,
            job=name or _job_id(source or []),
        )
    request.dumps = _dumps(dump or [])
    request.full, request.dry_run = full, dry_run
    if dry_run:
        return _backup_dry_run(request, as_json)
    return recorded_backup(request, settings, record=not no_record, as_json=as_json, where=where)


def _job_id(sources: list[str]) -> str:
    """A job id for an ad-hoc backup: the first source's name as a slug."""
    base = Path(sources[0]).expanduser().absolute().name if sources else "backup"
    slug = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")[:56] or "backup"
    return f"builtin-{slug}"


def _dumps(specs: list[str]) -> list[Any]:
    out = []
    for spec in specs:
        name, _, command = spec.partition("=")
        if not PHASE_RE.match(name) or not command.strip():
            raise InvalidInput(
                f"--dump must be NAME=COMMAND (NAME of letters, digits, ._-): {spec!r}"
            )
        out.append(Dump(name, ["/bin/sh", "-c", command]))
    return out


def _dump_files(settings: Any, job_settings: Any, *, quiet: bool) -> list[Path]:
    """The job's dump files (written by `backwatch run`'s dump phases) that exist.

    ``backup JOB`` takes the snapshot alone and does not run the dumps: unless ``quiet``,
    it says so, with the age of each dump file it includes and the ones it lacks.
    """
    paths = [Path(p) for p in RunContext(settings, job_settings).dump_paths()]
    present = [p for p in paths if p.is_file()]
    if paths and not quiet:
        now = time.time()
        held = [f"{p.name} (dumped {human_duration(now - p.stat().st_mtime)} ago)" for p in present]
        lacking = [p.name for p in paths if p not in present]
        what = "; ".join(
            part
            for part in (
                f"it holds {', '.join(held)}" if held else "",
                f"no file yet for {', '.join(lacking)}" if lacking else "",
            )
            if part
        )
        sys.stderr.write(
            f"note: `backup` does not run the job's dumps (`backwatch run {job_settings.id}` "
            f"does); {what}\n"
        )
    return present


def _backup_dry_run(request: Any, as_json: bool) -> int:
    outcomes = take_snapshot(request)
    if as_json:
        print_json({"dry_run": True, "destinations": [o.as_dict() for o in outcomes]})
        return 0
    for o in outcomes:
        s = o.stats
        echo(
            f"{o.destination}: would write a {o.kind} snapshot: {s['files_new']} new, "
            f"{s['files_changed']} changed, {s['files_unchanged']} unchanged, "
            f"{s['files_lost']} gone ({human_bytes(s['would_write_bytes'])} to read)"
            if o.status != "skipped"
            else f"{o.destination}: nothing changed since {o.parent} (would skip)"
        )
    return 0
