"""The shell library and the client spool: ``shell-lib`` and ``spool flush|list``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from backwatch import spool
from backwatch.cli.common import console, fail, print_json, warn
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, Where, open_target

spool_app = typer.Typer(
    help="Reports waiting on disk because the server could not be reached.",
    no_args_is_help=True,
)

SpoolDirOpt = Annotated[
    str | None,
    typer.Option(
        "--dir",
        envvar="BACKWATCH_SPOOL_DIR",
        help="Spool directory (default $XDG_CACHE_HOME/backwatch/spool, ~/.cache/…).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("shell-lib")(shell_lib)
    app.add_typer(spool_app, name="spool")


def library_path() -> Path:
    """Where the installed ``backwatch.sh`` is (it ships as package data)."""
    return Path(__file__).resolve().parent.parent / "shell" / "backwatch.sh"


def shell_lib(
    path: Annotated[
        bool, typer.Option("--path", help="Print where the library is instead of its text.")
    ] = False,
) -> None:
    """Print the bash library (seed 000 functions), or with --path its location.

    source "$(backwatch shell-lib --path)"
    backwatch shell-lib > /usr/local/lib/backwatch.sh
    """
    lib = library_path()
    if path:
        typer.echo(str(lib))
        return
    try:
        text = lib.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read the shell library {lib}: {exc.strerror or exc}") from None
    typer.echo(text, nl=False)


def _spool_dir(value: str | None) -> Path:
    return Path(value) if value else spool.default_dir()


@spool_app.command("flush")
@targeted("url", "token")
def spool_flush(
    spool_dir: SpoolDirOpt = None,
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Deliver spooled reports to the server, oldest first.

    Safe to run any time (cron, after an outage): a report the server already has is not
    stored twice. Exits 0 when the spool is empty afterwards, 1 when reports remain (the
    server is still unreachable) or some were refused (kept in <dir>/rejected).
    """

    if not where.url:
        raise fail("give --url URL (or set BACKWATCH_URL): the server to deliver to", 2)
    directory = _spool_dir(spool_dir)
    target = open_target(where)
    result = spool.flush(directory, target.request)
    outcome = {
        "spool": str(directory),
        "delivered": result.delivered,
        "rejected": result.rejected,
        "remaining": result.remaining,
        "errors": result.errors,
    }
    if json_out:
        print_json(outcome)
    else:
        typer.echo(
            f"delivered {result.delivered}, rejected {result.rejected}, "
            f"remaining {result.remaining} ({directory})"
        )
        for message in result.errors:
            warn(message)
        if result.rejected:
            warn(f"refused reports are kept in {directory / 'rejected'} with the reason")
    if result.remaining or result.rejected:
        raise typer.Exit(1)


@spool_app.command("list")
def spool_list(spool_dir: SpoolDirOpt = None, json_out: JsonOpt = False) -> None:
    """Show the reports waiting in the spool, oldest first."""

    directory = _spool_dir(spool_dir)
    items = [_describe(entry) for entry in spool.pending(directory)]
    refused = len(spool.rejected(directory))
    if json_out:
        print_json({"spool": str(directory), "pending": items, "rejected": refused})
        return
    if not items:
        typer.echo(f"nothing waiting in {directory}")
    else:
        table = Table("written (UTC)", "call", "job", "run", title=f"{len(items)} waiting")
        for item in items:
            table.add_row(item["written_at"], item["call"], item["job"] or "", item["run"] or "")
        console().print(table)
    if refused:
        warn(f"{refused} refused report(s) in {directory / 'rejected'} (see the .reason files)")


def _describe(entry: Path) -> dict[str, Any]:
    try:
        ns = int(entry.name.split("-", 1)[0])
        written = datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        written = "?"
    item: dict[str, Any] = {"file": entry.name, "written_at": written}
    try:
        method, path, body = spool.read_entry(entry)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        unreadable = f"(unreadable: {exc})"
        return {**item, "method": "?", "path": unreadable, "call": "?", "job": None, "run": None}
    body = body if isinstance(body, dict) else {}
    parts = path.strip("/").split("/")
    run = body.get("id") or (parts[3] if len(parts) > 4 else None)
    call = "report" if parts[-1] == "runs" else parts[-1]
    return {
        **item,
        "method": method,
        "path": path,
        "call": call,
        "job": body.get("job"),
        "run": run,
    }
