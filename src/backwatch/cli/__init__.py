"""The ``backwatch`` command line: Typer + rich, one module per group of commands.

``main`` runs a plain ``backwatch push`` (the flags a backup script uses, no help asked)
without loading Typer at all: its options are declared once (``cli.push.OPTIONS``) and
``cli.fastpath`` reads them. Everything else, including any ``push`` line the fast parser
does not accept, goes through the Typer root (``cli.root``), so help and errors are Typer's.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def main(prog_name: str | None = None) -> None:
    """The ``backwatch`` console script."""
    argv = sys.argv[1:]
    if argv[:1] == ["push"]:
        from backwatch.cli import push
        from backwatch.cli.common import exit_code
        from backwatch.cli.fastpath import parse

        values = parse(argv[1:], push.OPTIONS, os.environ)
        if values is not None:
            sys.exit(exit_code(lambda: push.push(**values)))
    from backwatch.cli.root import run

    run(argv, prog_name)


def __getattr__(name: str) -> Any:
    """``backwatch.cli.app``: the Typer app with every command (tests, the docs check)."""
    if name == "app":
        from backwatch.cli.root import full_app

        return full_app()
    raise AttributeError(f"module 'backwatch.cli' has no attribute {name!r}")
