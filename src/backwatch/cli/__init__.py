"""The ``backwatch`` command line: Typer + rich, one module per group of commands.

``cli.root`` holds the Typer root; only the module of the command being run is loaded.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from backwatch.cli.root import full_app, run
from backwatch.errors import ConfigError
from backwatch.settings_env import file_values


def main(prog_name: str | None = None) -> None:
    """Run the command line in ``sys.argv`` and exit (``python -m backwatch``, tests)."""
    try:  # BACKWATCH_TOKEN_FILE and friends: every command, and Typer's envvar=, sees NAME
        values = file_values(os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(1)
    for name, value in values.items():  # read once: NAME replaces NAME_FILE from here on
        os.environ[name] = value
        del os.environ[name + "_FILE"]
    run(sys.argv[1:], prog_name)


#: the ``backwatch`` console script (pyproject.toml)
script = main


def __getattr__(name: str) -> Any:
    """``backwatch.cli.app``: the Typer app with every command (tests, the docs check)."""
    if name == "app":
        return full_app()
    raise AttributeError(f"module 'backwatch.cli' has no attribute {name!r}")
