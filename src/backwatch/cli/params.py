"""Typer parameters built from the ``cli.options`` declarations.

``UrlOpt`` and the other aliases go in a command's signature; ``command_from`` turns a
function and its declared options into a Typer command (``push``, ``run`` and ``backup``,
whose options must also load without Typer).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from backwatch.cli.options import CONFIG, DATA_DIR, DB, TOKEN, URL, Option


def annotation(option: Option) -> Any:
    """``Annotated[type, typer.Option(...)]`` for one declared option (``typer.Argument``
    for an argument)."""
    if option.argument:
        kind = option.kind if option.required else option.kind | None
        return Annotated[kind, typer.Argument(help=option.help)]
    kind: Any = list[option.kind] if option.multiple else option.kind
    if option.default is None:
        kind = kind | None
    info = typer.Option(*option.flags, envvar=option.envvar, help=option.help)
    return Annotated[kind, info]


def command_from(run: Callable[..., Any], options: Sequence[Option]) -> Callable[..., Any]:
    """A function Typer reads as a command with ``options``; it calls ``run(**values)``.

    Name and help come from ``run``, so the command looks as if ``run`` had been declared
    with Typer's annotations.
    """

    def command(**values: Any) -> Any:
        return run(**values)

    command.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if option.required else option.default,
                annotation=annotation(option),
            )
            for option in options
        ]
    )
    command.__name__ = run.__name__
    command.__doc__ = run.__doc__
    return command


UrlOpt = annotation(URL)
TokenOpt = annotation(TOKEN)
DbOpt = annotation(DB)
ConfigOpt = annotation(CONFIG)
DataDirOpt = annotation(DATA_DIR)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
