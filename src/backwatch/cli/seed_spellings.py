"""Seed 003's spellings of the monitoring commands, accepted as hidden aliases.

Seed 003 wrote ``health --checks disk_space memory_usage``, ``health --output json``,
``performance --operation-type backup --period 7d``, ``alerts --action list`` and
``alerts --action acknowledge --alert-id ID``. backwatch spells them ``--checks a,b``,
``--json``, ``performance`` (it analyses backups) and ``alerts list`` / ``alerts ack ID``;
the old spellings still work, without showing up in ``--help``. A value that has no
meaning here gets an error naming the right spelling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from backwatch.cli.params import TARGET_OPTIONS
from backwatch.cli.target import Where
from backwatch.errors import InvalidInput

OutputOpt = Annotated[
    str | None, typer.Option("--output", hidden=True, help="Seed 003's --output json: --json.")
]
MoreChecksArg = Annotated[
    list[str] | None,
    typer.Argument(hidden=True, metavar="CHECKS", help="Seed 003's --checks a b: more names."),
]
OperationTypeOpt = Annotated[
    str | None,
    typer.Option("--operation-type", hidden=True, help="Seed 003's; only 'backup' is analysed."),
]
ActionOpt = Annotated[
    str | None, typer.Option("--action", hidden=True, help="Seed 003's alerts --action list.")
]
AlertIdOpt = Annotated[
    int | None, typer.Option("--alert-id", hidden=True, help="Seed 003's --alert-id ID.")
]

#: seed 003's alert actions → the subcommand that does it
ALERT_ACTIONS = {"list": "list", "acknowledge": "ack", "ack": "ack", "resolve": "resolve"}


def json_wanted(json_out: bool, output: str | None) -> bool:
    """``--json``, or seed 003's ``--output json``."""
    if output is None or output in ("text", "table"):
        return json_out
    if output == "json":
        return True
    raise InvalidInput(f"--output {output!r}: use --json for JSON (a table is the default)")


def check_names(checks: str | None, more: list[str] | None) -> list[str] | None:
    """``--checks a,b`` and seed 003's ``--checks a b`` as one list (None: all checks)."""
    given = [checks or "", *(more or [])]
    return [n.strip() for part in given for n in part.split(",") if n.strip()] or None


def operation_type(value: str | None) -> None:
    """Seed 003's ``--operation-type``: its operations are backups, which is what
    ``performance`` analyses; anything else has no meaning here."""
    if value is None or value == "backup":
        return
    raise InvalidInput(
        f"--operation-type {value!r}: performance analyses backup runs only "
        "(leave the option out, or give --job JOB for one job)"
    )


def alerts_action(ctx: typer.Context, action: str | None, alert_id: int | None,
                  where: Where, *, list_alerts: Callable[..., None],
                  act: Callable[..., None]) -> None:  # fmt: skip
    """``alerts --action list|acknowledge|resolve [--alert-id ID]`` as ``alerts list``,
    ``alerts ack ID``, ``alerts resolve ID``; ``where`` holds --url, --db … (given to
    ``alerts`` itself, hidden: they belong after the subcommand).
    ``list_alerts`` and ``act`` are cli/alerts.py's commands (passed in: that module
    imports this one).
    """
    if ctx.invoked_subcommand is not None:
        given = [
            name
            for name in ("action", "alert_id", *TARGET_OPTIONS)
            # by name: Typer brings its own copy of click and its ParameterSource
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        ]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise InvalidInput(
                f"{flag} goes after the subcommand: backwatch alerts {ctx.invoked_subcommand} …"
            )
        return
    if action is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    command = ALERT_ACTIONS.get(action)
    if command is None:
        raise InvalidInput(
            f"--action {action!r}: use `backwatch alerts list`, `alerts ack ID` or "
            "`alerts resolve ID`"
        )
    if command == "list":
        list_alerts(where=where)
        return
    if alert_id is None:
        raise InvalidInput(
            f"--action {action} needs --alert-id ID: `backwatch alerts {command} ID`"
        )
    act(command, alert_id, where)
