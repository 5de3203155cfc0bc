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

from backwatch.cli.backup import backup, builtin_job, repositories
from backwatch.cli.common import echo, fail, print_json
from backwatch.cli.params import LOCAL, JsonOpt, grouped, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where
from backwatch.engine.forget import Policy, forget
from backwatch.engine.restore import restore
from backwatch.engine.scan import since_latest
from backwatch.engine.verify import parse_sample, verify
from backwatch.errors import NotFound
from backwatch.job_settings import RetentionSettings
from backwatch.timeutil import human_bytes, parse_time

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
    app.command("backup")(backup)
    app.command("restore")(restore_command)
    app.command("verify")(verify_command)
    app.command("snapshots")(snapshots_command)
    app.command("scan")(scan_command)
    app.command("forget")(forget_command)


# --- where: a job or --dest (backup's helpers, cli/backup.py) ---------------------------


def _repository(dest: list[str] | None, job: str | None, where: Where) -> Any:
    """The one destination a read command works on (the first of a job's)."""

    repo = repositories(dest, job, where)[0]
    if not repo.exists():
        raise NotFound(f"{repo.path} holds no snapshots (not a backwatch destination)")
    return repo


# --- restore, verify ------------------------------------------------------------------


@targeted(*LOCAL)
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
    where: Where = DEFAULT_TARGET,
) -> int:
    """Restore a snapshot (all of it or --path …), or the state as of a time, into --target.

    Never writes outside the target. Exit status 1 when any file could not be restored.
    """

    if not target:
        raise fail("give --target DIR to restore into", 2)
    repo = _repository(dest, job, where)
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


@targeted(*LOCAL)
def verify_command(
    snapshot: SnapshotArg = "latest",
    sample: Annotated[
        str | None, typer.Option("--sample", help="Check a random share, e.g. 10%.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Verify every snapshot.")] = False,
    dest: DestOpt = None,
    job: JobOpt = None,
    as_json: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> int:
    """Re-read a snapshot's files (all, or --sample N%) and check each one's BLAKE3 hash.

    Exit status 1 when a file is damaged or missing (each one is named).
    """

    share = parse_sample(sample)
    repo = _repository(dest, job, where)
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


@targeted(*LOCAL)
def snapshots_command(
    dest: DestOpt = None,
    job: JobOpt = None,
    as_json: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> int:
    """List the snapshots of a destination, oldest first."""

    repo = _repository(dest, job, where)
    # the API's created_at is "time" here, as this command has always printed it
    rows = [
        {"time" if k == "created_at" else k: v for k, v in m.summary().items()}
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


@targeted(*LOCAL)
def scan_command(
    dest: DestOpt = None,
    job: JobOpt = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Directories (default: the snapshot's sources)."),
    ] = None,
    checksum: Annotated[bool, typer.Option("--checksum", help="Compare content.")] = False,
    as_json: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> int:
    """List files lost, changed or never backed up since the latest snapshot."""

    repo = _repository(dest, job, where)
    exclude = None
    if job and not dest:  # what the job's backups leave out is not "never backed up"
        options = builtin_job(job, where)[1].builtin
        exclude = options.exclude if options is not None else None
    out = since_latest(repo.latest(), source, exclude=exclude, checksum=checksum)
    if as_json:
        print_json(out)
        return 0
    echo(f"since {out['snapshot'] or 'no snapshot'}: {len(out['lost'])} lost, "
         f"{len(out['changed'])} changed, {len(out['new'])} never backed up")  # fmt: skip
    for kind in ("lost", "changed", "new"):
        for p in out[kind]:
            echo(f"  {kind:<8} {p}")
    for problem in out["problems"]:  # unreadable paths, a source folder that is gone
        sys.stderr.write(f"warning: {problem}\n")
    return 0


def _keep_option(name: str, field: Any) -> Any:
    """forget's ``--keep-…`` option for a field of ``[jobs.retention]``."""
    bounds = [m.ge for m in field.metadata if getattr(m, "ge", None) is not None]
    flag = "--" + name.replace("_", "-")
    if bounds:
        return Annotated[
            field.annotation, typer.Option(flag, help=field.description, min=bounds[0])
        ]
    return Annotated[field.annotation, typer.Option(flag, help=field.description)]


#: --keep-last … --keep-within: the fields of [jobs.retention], so both say the same
KEEP_OPTIONS = {name: _keep_option(name, f) for name, f in RetentionSettings.model_fields.items()}
#: forget given no --keep-… option
NO_POLICY = Policy()


@targeted(*LOCAL)
@grouped(KEEP_OPTIONS, "policy", Policy.from_keep)
def forget_command(
    dest: DestOpt = None,
    job: JobOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    policy: Policy = NO_POLICY,
    where: Where = DEFAULT_TARGET,
) -> int:
    """Remove the snapshots a retention policy does not keep; a kept one's bases stay.

    Without --keep-… options, a --job's \\[jobs.retention] applies.
    """
    if policy.empty() and job and not dest:
        retention = builtin_job(job, where)[1].retention
        if retention is not None:
            policy = Policy.from_keep(**retention.model_dump())
    results: list[dict[str, Any]] = []
    for repo in repositories(dest, job, where):
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
