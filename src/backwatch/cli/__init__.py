"""The ``backwatch`` command line (Typer + rich). One module per group of commands.

Heavy libraries (SQLAlchemy, FastAPI, pydantic) are imported inside the commands that need
them, so that reporting a run (`backwatch push` to a server) starts in well under 150 ms.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from backwatch import __version__
from backwatch.errors import BackwatchError

app = typer.Typer(
    name="backwatch",
    help="backwatch knows whether your backups work: report runs, watch health, get alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """backwatch knows whether your backups work."""


def _register() -> None:
    from backwatch.cli import admin, report, serve, views

    for module in (serve, report, views, admin):
        module.register(app)


_register()


def main() -> None:
    try:
        app()
    except BackwatchError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        for detail in exc.details[1:] if len(exc.details) > 1 else []:
            sys.stderr.write(f"  - {detail.get('field')}: {detail.get('problem')}\n")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
