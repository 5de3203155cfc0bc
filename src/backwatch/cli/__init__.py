"""The ``backwatch`` command line: Typer + rich, one module per group of commands.

A plain ``backwatch push``, ``backwatch run JOB`` or ``backwatch backup`` (what backup
scripts, cron and timers call, no help asked) runs without loading Typer at all
(``fast_path``): their options are declared once (``OPTIONS`` in ``cli.push``, ``cli.run``
and ``cli.backup``) and ``cli.fastpath`` reads them. Everything else, including any line
the fast parser does not accept, goes through the Typer root (``cli.root``), so help and
errors are Typer's.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: `backwatch run` starts its tool before typing loads
if TYPE_CHECKING:
    from typing import Any

#: command → (module, function) of the commands with a fast path
FAST = {"push": ("push", "push"), "run": ("run", "run"), "backup": ("backup", "backup")}


def main(prog_name: str | None = None) -> None:
    """Run the command line in ``sys.argv`` and exit (``python -m backwatch``, tests)."""
    argv = sys.argv[1:]
    code = fast_path(argv)
    if code is not None:
        sys.exit(code)
    from backwatch.cli.root import run

    run(argv, prog_name)


def script(prog_name: str | None = None) -> None:
    """The ``backwatch`` console script: ``main``, except that a command answered by the
    fast path leaves without the interpreter's teardown. It has closed what it opened
    (database, files, connections) and flushed its output; unloading the modules
    SQLAlchemy, pydantic and rich brought would add 15–25 ms to every backup run."""
    argv = sys.argv[1:]
    code = fast_path(argv)
    if code is None:
        from backwatch.cli.root import run

        run(argv, prog_name)  # exits through Typer
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to say
            pass
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    os._exit(code)


def fast_path(argv: list[str]) -> int | None:
    """The exit code of a plain ``push``, ``run`` or ``backup`` line run without Typer, or
    None when the line is not one (Typer must parse it)."""
    if not argv or argv[0] not in FAST:
        return None
    import importlib

    from backwatch.cli.common import exit_code
    from backwatch.cli.fastpath import parse

    module_name, function = FAST[argv[0]]
    module = importlib.import_module(f"backwatch.cli.{module_name}")
    values = parse(argv[1:], module.OPTIONS, os.environ)
    if values is None:
        return None
    command = getattr(module, function)
    return exit_code(lambda: command(**values))


def __getattr__(name: str) -> Any:
    """``backwatch.cli.app``: the Typer app with every command (tests, the docs check)."""
    if name == "app":
        from backwatch.cli.root import full_app

        return full_app()
    raise AttributeError(f"module 'backwatch.cli' has no attribute {name!r}")
