"""Options and output helpers shared by every command. Keep imports light: this module is
loaded on every start, and ``backwatch push`` must start fast."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="BACKWATCH_URL", help="Server URL; without it, use the database."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="BACKWATCH_TOKEN", help="API token (default: <data>/token if readable)."
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Work on this database directly: a SQLite file or database URL."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", envvar="BACKWATCH_CONFIG", help="Path to backwatch.toml."),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option(
        "--data-dir", envvar="BACKWATCH_DATA_DIR", help="Data directory (default ./data)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def target(url: str | None, token: str | None, db: str | None, config: str | None,
           data_dir: str | None = None, *, read_only: bool = False) -> Any:  # fmt: skip
    """The server (``--url``) or the database a command works on; see ``cli.target``.

    ``read_only`` commands refuse a SQLite file that does not exist yet instead of
    creating an empty one (a typo in ``--db`` should not look like "no jobs yet").
    """
    from backwatch.cli.target import resolve

    return resolve(
        url=url, token=token, db=db, config=config, data_dir=data_dir, read_only=read_only
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console()


def err(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    err(message)
    return typer.Exit(code)
