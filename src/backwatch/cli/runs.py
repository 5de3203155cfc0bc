"""``backwatch runs delete ID``: remove a run that should never have been stored."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

import typer

from backwatch.cli.common import print_json
from backwatch.cli.params import JsonOpt, targeted
from backwatch.cli.target import DEFAULT_TARGET, HttpTarget, Where, open_target

runs_app = typer.Typer(help="Runs: delete one by id.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.command("delete")
@targeted()
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="Run id (see `history JOB` or --json output).")],
    json_out: JsonOpt = False,
    where: Where = DEFAULT_TARGET,
) -> None:
    """Delete a run with its phases, files and log (an admin token on a server).

    The job's last run and health then follow the runs that remain; the deletion is kept
    in the audit trail (`audit --filter delete`). For a report with an impossible date,
    say: retention (`db prune`) removes runs by age, never one from the future.
    """

    from backwatch.services.deletion import delete_run  # the store: see cli/root.py

    tgt: Any = open_target(where, read_only=True)
    try:
        if isinstance(tgt, HttpTarget):
            path = "/api/v1/runs/" + urllib.parse.quote(run_id, safe="")
            result = tgt.request("DELETE", path)
        else:
            result = tgt.hub.write(delete_run(run_id, tgt.hub.now(), actor="cli"))
    finally:
        tgt.close()
    if json_out:
        print_json(result)
        return
    typer.echo(f"deleted run {result['id']} of job {result['job']}")
