"""Typer options shared by many commands: where a command sends its work (see
``cli.target``) and ``--json``. They go in a command's signature (``url: UrlOpt = None``)."""

from __future__ import annotations

from typing import Annotated

import typer

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="BACKWATCH_URL", help="Server URL; without it, use the database."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="BACKWATCH_TOKEN",
        help="API token (default: <data>/token if readable).",
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
