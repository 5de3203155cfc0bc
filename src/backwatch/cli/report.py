"""Reporting runs: ``push``, ``start``/``phase``/``finish``, ``wrap`` and ``import``."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from backwatch.cli import push
from backwatch.cli.common import fail, print_json, warn
from backwatch.cli.params import targeted
from backwatch.cli.push import drop_none, iso_now, read_log
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target
from backwatch.ingest.tools import tool_names
from backwatch.timeutil import parse_time


def register(app: typer.Typer) -> None:
    app.command()(push.push)
    app.command()(start)
    app.command()(phase)
    app.command()(finish)
    app.command(cls=_WrapCommand)(wrap)
    app.command("import")(import_)


class _WrapCommand(TyperCommand):
    """``wrap [OPTIONS] JOB [OPTIONS] -- CMD…``.

    With ``--`` after JOB, wrap's options may stand on either side of JOB and everything
    after ``--`` is the command, untouched. Without it, everything after JOB is the command
    (``backwatch wrap nightly rsync --timeout 30 …`` leaves ``--timeout`` to rsync).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        at = _separator(args, self._valued_options())
        if at is None:
            ctx.allow_interspersed_args = False
            return super().parse_args(ctx, args)
        ctx.allow_interspersed_args = True
        return super().parse_args(ctx, [*args[:at], "--", *args[at + 1 :]])

    def _valued_options(self) -> set[str]:
        names: set[str] = set()
        for param in self.params:
            if param.param_type_name == "option" and not getattr(param, "is_flag", False):
                names.update(param.opts)
                names.update(param.secondary_opts)
        return names


def _separator(args: list[str], valued: set[str]) -> int | None:
    """Index of the ``--`` that ends wrap's own arguments (JOB and options), if any."""
    positionals = 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return i if positionals <= 1 else None
        if arg.startswith("-") and arg != "-":
            if arg in valued:
                i += 1  # its value
        else:
            positionals += 1
            if positionals > 1:
                return None  # the command started without a `--`
        i += 1
    return None


@targeted()
def start(
    job: Annotated[str, typer.Argument(help="Job id (slug).")],
    run_id: Annotated[str | None, typer.Option("--id", help="Run id to use.")] = None,
    host: Annotated[str | None, typer.Option(help="Host name (default: this host).")] = None,
    tool: Annotated[str | None, typer.Option(help="Tool name.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Short message.")] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Open a running run and print its id.

    For scripts: RUN=$(backwatch start nightly), then `backwatch phase` and
    `backwatch finish "$RUN"`.
    """

    body = drop_none(
        {
            "job": job,
            "id": run_id,
            "host": host or socket.gethostname(),
            "tool": tool,
            "message": message,
            "started_at": iso_now(),
        }
    )
    tgt = open_target(where)
    try:
        ack = tgt.start(body)
    finally:
        tgt.close()
    typer.echo(ack["id"])


@targeted()
def phase(
    run_id: Annotated[str, typer.Argument(help="Run id from `backwatch start`.")],
    name: Annotated[str, typer.Argument(help="Phase name: dump, archive, upload, …")],
    begin: Annotated[bool, typer.Option("--start", help="The phase begins now.")] = False,
    end: Annotated[bool, typer.Option("--end", help="The phase ends now.")] = False,
    duration: Annotated[
        float | None, typer.Option(help="Record a finished phase of this many seconds.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Phase status (default success).")] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Mark a phase of a running run: --start, --end, or --duration SECONDS."""
    chosen = [flag for flag, on in (("start", begin), ("end", end)) if on]
    if duration is not None:
        chosen.append("record")
    if len(chosen) != 1:
        raise fail("give exactly one of --start, --end or --duration SECONDS", 2)
    body = drop_none({"name": name, "event": chosen[0], "duration_s": duration, "status": status})
    tgt = open_target(where)
    try:
        tgt.run_call(run_id, "phases", body)
    finally:
        tgt.close()


@targeted()
def finish(
    run_id: Annotated[str, typer.Argument(help="Run id from `backwatch start`.")],
    status: Annotated[str, typer.Option("--status", "-s", help="Final status.")] = "success",
    exit_code: Annotated[int | None, typer.Option(help="Exit code of the backup.")] = None,
    size: Annotated[int | None, typer.Option(help="Backup size in bytes.")] = None,
    files: Annotated[int | None, typer.Option(help="Files processed.")] = None,
    files_new: Annotated[int | None, typer.Option(help="New files.")] = None,
    files_changed: Annotated[int | None, typer.Option(help="Changed files.")] = None,
    bytes_added: Annotated[int | None, typer.Option(help="Bytes added.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Short message.")] = None,
    log_file: Annotated[
        str | None, typer.Option(help="File whose last 100 KB become the log.")
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Finish a run opened with `backwatch start`."""
    body = drop_none(
        {
            "status": status,
            "exit_code": exit_code,
            "size_bytes": size,
            "files": files,
            "files_new": files_new,
            "files_changed": files_changed,
            "bytes_added": bytes_added,
            "message": message,
            "log": read_log(log_file),
        }
    )
    tgt = open_target(where)
    try:
        run = tgt.run_call(run_id, "finish", body)
    finally:
        tgt.close()
    if run.get("spooled"):
        typer.echo(f"finish of run {run['id']} spooled (server unreachable): {run['status']}")
        return
    typer.echo(f"run {run['id']} of job {run['job']} finished: {run['status']}")


@targeted()
def wrap(
    job: Annotated[str, typer.Argument(help="Job id (slug).")],
    command: Annotated[
        list[str] | None, typer.Argument(help="The command to run, after --.")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Kill the command after this long, e.g. 6h.")
    ] = None,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Run a command as a tracked run.

    Records the start, the duration, the exit code and the last 100 KB of output, which
    still reaches the terminal (stdout and stderr kept apart). Exits with the command's own
    exit code, even when backwatch cannot be reached; 127 if the command does not exist,
    124 after --timeout.

      backwatch wrap nightly -- restic backup /srv
    """
    from backwatch.cli.wrap import run_wrapped  # runners and settings: not for push

    code = run_wrapped(
        job,
        command or [],
        timeout=timeout,
        target_factory=lambda: open_target(where),
    )
    raise typer.Exit(code)


@targeted()
def import_(
    file: Annotated[
        str, typer.Argument(help="JSONL file (one report per line), a tool's output, or '-'.")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="auto, seed001 or native (JSONL records); restic, borg or rsync (tool output).",
        ),
    ] = "auto",
    job: Annotated[
        str | None,
        typer.Option(
            "--job", "-j", help="Job for records that name none; required for tool output."
        ),
    ] = None,
    exit_code: Annotated[
        int | None,
        typer.Option(help="Tool output: the tool's exit code (restic 3, borg 1 → warning)."),
    ] = None,
    started_at: Annotated[
        str | None, typer.Option(help="Tool output: when the run started (ISO 8601 or epoch).")
    ] = None,
    finished_at: Annotated[
        str | None, typer.Option(help="Tool output: when the run finished (ISO 8601 or epoch).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Tool output: host name (default: this host).")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Tool output: backup or check (default: what the output shows; a passing "
            "`borg check` prints nothing, so give --kind check --exit-code 0)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Import runs: JSONL records, or the output of restic, borg or rsync.

    JSONL holds one seed 001 line or native report per line. Tool output is one backup's
    output of restic (`backup --json`), borg (`create --json`) or rsync (`--stats`).

    A line that is not valid is reported with its line number and skipped; records already
    stored (same id, or same job + backup_id) are not stored twice. Raw runs older than
    RETENTION_DAYS are pruned afterwards.

      restic backup --json /srv >r.json; backwatch import -f restic -j srv --exit-code $? r.json
    """
    from backwatch.cli.importer import import_jsonl  # not for push

    tools = tool_names()
    tool_opts = (exit_code, started_at, finished_at, host, kind)
    if kind is not None and kind not in ("backup", "check"):
        raise fail(f"--kind must be backup or check, not {kind!r}", 2)
    if fmt in tools:
        _import_tool(file, fmt, job, exit_code, started_at, finished_at, host, kind, json_out,
                     lambda: open_target(where))  # fmt: skip
        return
    if any(opt is not None for opt in tool_opts):
        raise fail(
            "--exit-code, --started-at, --finished-at, --host and --kind go with "
            f"--format {', '.join(tools)}",
            2,
        )
    outcome = import_jsonl(
        file,
        fmt=fmt,
        job=job,
        target_factory=lambda: open_target(where),
    )
    if json_out:
        print_json(outcome)
    else:
        typer.echo(
            f"imported {outcome['imported']}, already present {outcome['duplicates']}, "
            f"rejected {outcome['rejected']}"
            + (f", spooled {outcome['spooled']}" if outcome.get("spooled") else "")
            + (f", pruned {outcome['pruned']} old runs" if outcome.get("pruned") else "")
        )
    if outcome["rejected"]:
        warn(f"{outcome['rejected']} line(s) rejected; see the messages above")
        raise typer.Exit(1)


def _import_tool(
    file: str,
    tool: str,
    job: str | None,
    exit_code: int | None,
    started_at: str | None,
    finished_at: str | None,
    host: str | None,
    kind: str | None,
    json_out: bool,
    target_factory: Any,
) -> None:
    from backwatch.cli.importer import import_tool_output  # not for push

    if not job:
        raise fail(f"--job is required with --format {tool}: its output names no job", 2)
    times: dict[str, float | None] = {}
    for flag, value in (("--started-at", started_at), ("--finished-at", finished_at)):
        try:
            times[flag] = None if value is None else parse_time(value, field=flag)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
    outcome = import_tool_output(
        file,
        tool=tool,
        job=job,
        exit_code=exit_code,
        started_at=times["--started-at"],
        finished_at=times["--finished-at"],
        host=host,
        kind=kind,
        target_factory=target_factory,
    )
    if json_out:
        print_json(outcome)
        return
    verb = "recorded" if outcome.get("created") else "already recorded"
    verb = "spooled (server unreachable)" if outcome.get("spooled") else verb
    run = outcome["run"]
    typer.echo(
        f"{verb} run {outcome['id']} of job {outcome['job']} ({outcome['status']}): "
        f"{run.get('message', '')}"
    )
