"""Helpers shared by every command: output, and how a command ends.

The options every command shares are declared in ``cli.params``; where the work goes
(``open_target``) is ``cli.target``'s.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from backwatch.errors import BackwatchError


def echo(line: str) -> None:
    """Print one line now, as ``typer.echo`` does (a closed pipe fails here, not at exit)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def print_json(data: object) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate stored before text was cleaned
        text = text.encode("utf-8", "replace").decode("utf-8")
    sys.stdout.write(text)


def console() -> Any:
    from rich.console import Console  # rich loads when a table is printed, not for push

    return Console()


def err(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


class CommandFailed(Exception):
    """A command gave up after printing why; the process exits with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str, code: int = 1) -> CommandFailed:
    """Print ``error: message`` and return the exception to raise (exit ``code``)."""
    err(message)
    return CommandFailed(code)


def exit_code(command: Callable[[], object]) -> int:
    """Run ``command``; every failure leaves as one ``error: …`` line and an exit code.

    A ``BackwatchError`` exits 1, ``fail`` exits with its code, a bug 70 (its traceback
    with ``BACKWATCH_DEBUG=1``); none prints a traceback. The Typer root ends here.
    """
    try:
        rv = command()
    except CommandFailed as exc:
        return exc.code
    except BackwatchError as exc:
        err(exc.message)
        for detail in exc.details[1:]:
            sys.stderr.write(f"  - {detail.get('field')}: {detail.get('problem')}\n")
        return 1
    except (KeyboardInterrupt, EOFError):  # Typer turns these into its Abort first
        sys.stderr.write("\n")
        return aborted()
    except BrokenPipeError:  # `backwatch history x | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more can be written
        return 1
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        if os.environ.get("BACKWATCH_DEBUG"):
            raise
        err(
            f"internal error: {type(exc).__name__}: {exc} "
            "(this is a bug; run with BACKWATCH_DEBUG=1 to see where)"
        )
        return 70
    return rv if isinstance(rv, int) else 0


def aborted() -> int:
    """Ctrl-C: one line, exit 1."""
    err("aborted")
    return 1
