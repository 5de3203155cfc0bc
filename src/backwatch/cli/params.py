"""Typer options shared by many commands: where a command sends its work (see
``cli.target``) and ``--json``.

The five target options (``--url --token --db --config --data-dir``) are declared here
once; a command takes the ones it needs with ``@targeted(...)`` and gets them as one
``where: Where`` (``cli.target.open_target(where)`` opens the server or the database)::

    @app.command()
    @targeted()
    def status(job: ..., where: Where = DEFAULT_TARGET) -> None:
        tgt = open_target(where, read_only=True)
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args

import typer

from backwatch.cli.target import Where

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

#: the target options, by the name of their ``Where`` field
TARGET_OPTIONS: dict[str, Any] = {
    "url": UrlOpt,
    "token": TokenOpt,
    "db": DbOpt,
    "config": ConfigOpt,
    "data_dir": DataDirOpt,
}
#: a command that works on the local config and data directory only (no server, no --db)
LOCAL = ("config", "data_dir")
#: a command that works on the database only (no server)
DATABASE = ("db", "config", "data_dir")

F = TypeVar("F", bound=Callable[..., Any])


def _hidden(option: Any) -> Any:
    """The same option, left out of ``--help``."""
    kind, info = get_args(option)
    info = copy.copy(info)
    info.hidden = True
    return Annotated[kind, info]


def grouped(options: dict[str, Any], into: str, make: Callable[..., Any]) -> Callable[[F], F]:
    """Add ``options`` (name → ``Annotated`` type, default None) to a command's signature,
    after its own, and pass what was given as one value, ``make(**given)``, in its
    parameter ``into``. Called directly (not from the command line), the command takes
    ``into`` itself."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != into]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
            for name, kind in options.items()
        ]

        @functools.wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> Any:
            if into not in kwargs:
                kwargs[into] = make(**{name: kwargs.pop(name, None) for name in options})
            return command(*args, **kwargs)

        params = [*own, *added]
        with_options.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in params}
        return with_options  # type: ignore[return-value]

    return decorate


def targeted(*names: str, hidden: bool = False) -> Callable[[F], F]:
    """Give a command the target options ``names`` (default: all five) and pass what was
    given as its ``where`` parameter (a ``Where``); ``hidden`` leaves them out of --help."""
    wanted = names or tuple(TARGET_OPTIONS)
    options = {n: _hidden(TARGET_OPTIONS[n]) if hidden else TARGET_OPTIONS[n] for n in wanted}
    return grouped(options, "where", Where)
