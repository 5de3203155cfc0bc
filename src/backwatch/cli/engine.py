"""The built-in snapshot engine's commands: ``backup``, ``restore``, ``verify``,
``snapshots``, ``scan``, ``forget`` (docs/engine.md).

Each works on destination directories given with ``--dest`` or taken from a configured
``tool = "builtin"`` job (``backup JOB`` / ``--job JOB``). ``backup`` records its run like
``backwatch run`` does (phases dump, scan, archive, manifest, commit).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from backwatch.cli.common import echo, fail, print_json
from backwatch.cli.params import ConfigOpt, DataDirOpt, DbOpt, JsonOpt, TokenOpt, UrlOpt

DestOpt = Annotated[
    list[str] | None,
    typer.Option("--dest", "-d", help="Destination directory (repeat for several)."),
]
JobOpt = Annotated[
    str | None, typer.Option("--job", "-j", help="A tool = 'builtin' job: its destinations.")
]
SnapshotArg = Annotated[
    str, typer.Argument(help="Snapshot id, a unique prefix of one, or 'latest'.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("verify")(verify_command)
    app.command("snapshots")(snapshots_command)
    app.command("scan")(scan_command)
    app.command("forget")(forget_command)


# --- where: a job or --dest -----------------------------------------------------------


def _job(job: str, config: str | None, data_dir: str | None) -> tuple[Any, Any]:
    """(settings, the job's settings); refuses a job that is not a builtin one."""
    from backwatch.cli.run import _configured
    from backwatch.cli.target import local_settings
    from backwatch.errors import ConfigError

    settings = local_settings(config=config, db=None, data_dir=data_dir)
    job_settings = _configured(settings, job)
    if job_settings.tool != "builtin" or job_settings.builtin is None:
        raise ConfigError(
            f"job {job!r} is not a built-in engine job (set tool = 'builtin' and add a "
            "[jobs.builtin] table with its paths)"
        )
    if not job_settings.destinations:
        raise ConfigError(f"job {job!r} has no destinations (destinations = ['/mnt/backup'])")
    return settings, job_settings


def _repositories(
    dest: list[str] | None, job: str | None, config: str | None, data_dir: str | None
) -> list[Any]:
    from backwatch.engine.repository import Repository
    from backwatch.errors import InvalidInput

    if dest:
        return [Repository(d) for d in dest]
    if job:
        return [Repository(d) for d in _job(job, config, data_dir)[1].destinations]
    raise InvalidInput("say where the snapshots are: --dest DIR or --job JOB")


def _repository(
    dest: list[str] | None, job: str | None, config: str | None, data_dir: str | None
) -> Any:
    """The one destination a read command works on (the first of a job's)."""
    from backwatch.errors import NotFound

    repo = _repositories(dest, job, config, data_dir)[0]
    if not repo.exists():
        raise NotFound(f"{repo.path} holds no snapshots (not a backwatch destination)")
    return repo


# --- backup ---------------------------------------------------------------------------


def backup_command(
    job: Annotated[str | None, typer.Argument(help="A tool = 'builtin' job of the config.")] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Directory to back up (repeat).")
    ] = None,
    dest: DestOpt = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-e", help="Name or path pattern (repeat).")
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
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> int:
    """Take a snapshot of directories into one or more destinations (in parallel).

    Incremental when the destination has a snapshot (only new and changed files are
    written), full with --full. Nothing changed: the run is recorded as skipped. Exit
    status: 0 success or skipped, 3 warning, 1 failed.
    """
    from backwatch.engine.scan import sources_for
    from backwatch.engine.snapshot import Request

    if job:
        settings, job_settings = _job(job, config, data_dir)
        opts = job_settings.builtin
        request = Request(
            sources=sources_for([*opts.paths, *(source or [])]),
            destinations=_repositories(dest, job, config, data_dir),
            exclude=[*opts.exclude, *(exclude or [])],
            checksum=checksum or opts.checksum,
            level=level or opts.compression_level,
            job=job,
        )
        request.extra_files = _dump_files(settings, job_settings, quiet=as_json or dry_run)
    else:
        # an unrecorded ad hoc backup needs no settings (loading them imports pydantic)
        settings = None if no_record else _settings(config, db, data_dir)
        if not dest:
            raise fail("give --dest DIR (or a configured JOB)", 2)
        request = Request(
            sources=sources_for(source or []),
            destinations=_repositories(dest, None, config, data_dir),
            exclude=exclude or [],
            checksum=checksum,
            level=level or 3,
            job=name or _job_id(source or []),
        )
    request.dumps = _dumps(dump or [])
    request.full, request.dry_run = full, dry_run
    if dry_run:
        return _backup_dry_run(request, as_json)
    from backwatch.cli.engine_run import recorded_backup

    return recorded_backup(
        request, settings, record=not no_record, as_json=as_json, url=url, token=token, db=db
    )


def _settings(config: str | None, db: str | None, data_dir: str | None) -> Any:
    from backwatch.cli.target import local_settings

    return local_settings(config=config, db=db, data_dir=data_dir)


def _job_id(sources: list[str]) -> str:
    """A job id for an ad-hoc backup: the first source's name as a slug."""
    import re

    base = Path(sources[0]).expanduser().absolute().name if sources else "backup"
    slug = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")[:56] or "backup"
    return f"builtin-{slug}"


def _dumps(specs: list[str]) -> list[Any]:
    if not specs:  # the check below loads the job settings (pydantic): only when needed
        return []
    from backwatch.engine.snapshot import Dump
    from backwatch.errors import InvalidInput
    from backwatch.job_settings import PHASE_RE

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
    import time

    from backwatch.runners.base import RunContext
    from backwatch.timeutil import human_duration

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
    from backwatch.engine.snapshot import take_snapshot
    from backwatch.timeutil import human_bytes

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


# --- restore, verify ------------------------------------------------------------------


def restore_command(
    snapshot: SnapshotArg = "latest",
    target: Annotated[
        str, typer.Option("--target", "-t", help="Restore into this directory.")
    ] = "",
    path: Annotated[
        list[str] | None, typer.Option("--path", "-p", help="Only this path (repeat).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The state at this time (ISO 8601 or epoch).")
    ] = None,
    conflict: Annotated[
        str, typer.Option("--conflict", help="When a file exists: skip|overwrite|rename|newer.")
    ] = "skip",
    dest: DestOpt = None,
    job: JobOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> int:
    """Restore a snapshot (all of it or --path …), or the state as of a time, into --target.

    Never writes outside the target. Exit status 1 when any file could not be restored.
    """
    from backwatch.engine.restore import restore
    from backwatch.timeutil import parse_time

    if not target:
        raise fail("give --target DIR to restore into", 2)
    repo = _repository(dest, job, config, data_dir)
    if as_of is not None:
        try:
            manifest = repo.as_of(parse_time(as_of, field="--as-of"))
        except ValueError as exc:
            raise fail(str(exc), 2) from None
    else:
        manifest = repo.resolve(snapshot)
    result = restore(repo, manifest, Path(target), paths=path, conflict=conflict, dry_run=dry_run)
    if as_json:
        print_json(result.as_dict())
    else:
        verb = "would restore" if dry_run else "restored"
        echo(
            f"{verb} {len(result.restored)} path(s) of {manifest.id} into {target}; "
            f"{len(result.skipped)} skipped, {len(result.renamed)} renamed"
        )
        for item in result.renamed:
            echo(f"  renamed: {item['path']} → {item['to']}")
        for item in result.problems:
            sys.stderr.write(f"error: {item['path']}: {item['problem']}\n")
    return 1 if result.problems else 0


def verify_command(
    snapshot: SnapshotArg = "latest",
    sample: Annotated[
        str | None, typer.Option("--sample", help="Check a random share, e.g. 10%.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Verify every snapshot.")] = False,
    dest: DestOpt = None,
    job: JobOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> int:
    """Re-read a snapshot's files (all, or --sample N%) and check each one's BLAKE3 hash.

    Exit status 1 when a file is damaged or missing (each one is named).
    """
    from backwatch.engine.verify import parse_sample, verify

    share = parse_sample(sample)
    repo = _repository(dest, job, config, data_dir)
    manifests = repo.manifests() if every else [repo.resolve(snapshot)]
    reports = [verify(repo, m, sample=share) for m in manifests]
    if as_json:
        print_json([r.as_dict() for r in reports] if every else reports[0].as_dict())
    else:
        for r in reports:
            state = "ok" if r.ok else f"{len(r.problems)} problem(s)"
            echo(f"{r.snapshot}: {r.checked} file(s) checked: {state}")
            for p in r.problems:
                sys.stderr.write(f"error: {p['path']}: {p['problem']}\n")
    return 0 if all(r.ok for r in reports) else 1


# --- snapshots, scan, forget ----------------------------------------------------------


def snapshots_command(
    dest: DestOpt = None,
    job: JobOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> int:
    """List the snapshots of a destination, oldest first."""
    from backwatch.timeutil import human_bytes, iso

    repo = _repository(dest, job, config, data_dir)
    rows = [
        {
            "id": m.id,
            "time": iso(m.created_at),
            "kind": m.kind,
            "parent": m.parent,
            "bases": m.bases,
            "job": m.job,
            "host": m.host,
            "files": m.stats.get("files"),
            "size_bytes": m.stats.get("size_bytes"),
            "bytes_added": m.stats.get("bytes_added"),
            "sources": m.sources,
        }
        for m in repo.manifests()
    ]
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        echo(f"no snapshots in {repo.path}")
    for r in rows:
        echo(
            f"{r['id']}  {r['time']}  {r['kind']:<11}  {r['files']} files  "
            f"{human_bytes(r['size_bytes'])}  +{human_bytes(r['bytes_added'])}"
        )
    return 0


def scan_command(
    dest: DestOpt = None,
    job: JobOpt = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Directories (default: the snapshot's sources)."),
    ] = None,
    checksum: Annotated[bool, typer.Option("--checksum", help="Compare content.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> int:
    """List files lost, changed or never backed up since the latest snapshot."""
    from backwatch.engine.scan import compare, sources_for, walk

    repo = _repository(dest, job, config, data_dir)
    latest = repo.latest()
    paths = source or ([s["path"] for s in latest.sources] if latest else [])
    current = walk(sources_for(paths))
    changes, _ = compare(current, latest, checksum=checksum)
    files = {e.path for e, _ in current.entries if e.type == "file"}
    before = latest.by_path() if latest else {}
    out: dict[str, Any] = {
        "snapshot": latest.id if latest else None,
        "lost": [p for p in changes.lost if before[p].type == "file"],
        "changed": [p for p in changes.changed if p in files],
        "new": [p for p in changes.new if p in files],
        "problems": current.problems,
    }
    if as_json:
        print_json(out)
        return 0
    echo(f"since {out['snapshot'] or 'no snapshot'}: {len(out['lost'])} lost, "
         f"{len(out['changed'])} changed, {len(out['new'])} never backed up")  # fmt: skip
    for kind in ("lost", "changed", "new"):
        for p in out[kind]:
            echo(f"  {kind:<8} {p}")
    return 0


def forget_command(
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=0, help="Keep the N newest snapshots.")
    ] = None,
    keep_hourly: Annotated[
        int | None,
        typer.Option("--keep-hourly", min=0, help="Keep the newest of each of the last N hours."),
    ] = None,
    keep_daily: Annotated[
        int | None,
        typer.Option("--keep-daily", min=0, help="Keep the newest of each of the last N days."),
    ] = None,
    keep_weekly: Annotated[
        int | None,
        typer.Option("--keep-weekly", min=0, help="Keep the newest of each of the last N weeks."),
    ] = None,
    keep_monthly: Annotated[
        int | None,
        typer.Option("--keep-monthly", min=0, help="Keep the newest of each of the last N months."),
    ] = None,
    keep_yearly: Annotated[
        int | None,
        typer.Option("--keep-yearly", min=0, help="Keep the newest of each of the last N years."),
    ] = None,
    keep_within: Annotated[
        str | None, typer.Option("--keep-within", help="Keep all within this, e.g. 7d.")
    ] = None,
    dest: DestOpt = None,
    job: JobOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> int:
    """Remove the snapshots a retention policy does not keep; a kept one's bases stay.

    Without --keep-… options, a --job's [jobs.retention] applies.
    """
    from backwatch.engine.forget import Policy, forget

    policy = Policy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
                    keep_yearly, keep_within)  # fmt: skip
    if policy.empty() and job and not dest:
        retention = _job(job, config, data_dir)[1].retention
        if retention is not None:
            policy = Policy(
                **{k.removeprefix("keep_"): v for k, v in retention.model_dump().items()}
            )
    results: list[dict[str, Any]] = []
    for repo in _repositories(dest, job, config, data_dir):
        decision = forget(repo, policy, dry_run=dry_run)
        results.append({"destination": str(repo.path), "dry_run": dry_run, **decision.as_dict()})
    if as_json:
        print_json(results if len(results) > 1 else results[0])
        return 0
    verb = "would remove" if dry_run else "removed"
    for r in results:
        echo(f"{r['destination']}: kept {len(r['keep'])}, {verb} {len(r['remove'])}")
        for snapshot_id in r["remove"]:
            echo(f"  {verb}: {snapshot_id}")
    return 0
