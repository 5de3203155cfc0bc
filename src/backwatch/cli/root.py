"""The Typer root of the ``backwatch`` command line. One module per group of commands.

Only the module of the command being run is loaded (``COMMAND_MODULES``): building every
command's parameters, and importing what every command needs, would cost more than a
``backwatch push`` itself. Command modules import the store (services, SQLAlchemy) and the
server inside the commands that use them: ``--help`` loads every command module, and a
command given ``--url`` never needs the database.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from backwatch.cli.common import aborted, exit_code


class _Root(TyperGroup):
    """The root command: every failure leaves as one ``error: …`` line on stderr.

    A ``BackwatchError`` exits 1, a usage error (unknown option, bad value) exits 2; neither
    prints a traceback (``common.exit_code``). ``cli.main`` and ``CliRunner`` both come
    through here.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def parse_and_run() -> Any:
            try:
                return super(_Root, self).main(
                    args, prog_name, complete_var, False, windows_expand_args, **extra
                )
            except typer.TyperException as exc:  # click's ClickException and UsageError
                return _usage_error(exc)
            except typer.Abort:
                return aborted()

        code = exit_code(parse_and_run)
        if not standalone_mode:
            return code
        sys.exit(code)


def _usage_error(exc: typer.TyperException) -> int:
    code = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return code  # the help has been printed already
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    sys.stderr.write(f"error: {exc.format_message()}{hint}\n")
    return code


_app = typer.Typer(
    cls=_Root,
    name="backwatch",
    help="backwatch knows whether your backups work: report runs, watch health, get alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from backwatch import __version__  # importlib.metadata: only when asked

        typer.echo(f"backwatch {__version__}")
        raise typer.Exit()


@_app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """backwatch knows whether your backups work."""


#: command (or group) → the module that defines it. ``run`` loads only the module of the
#: command being run: building every command's parameters costs more than ``push`` itself.
COMMAND_MODULES = {
    "serve": "serve", "push": "report", "start": "report", "phase": "report",
    "finish": "report", "wrap": "report", "import": "report", "status": "views",
    "history": "views", "list": "listing", "token": "admin", "db": "admin",
    "shell-lib": "shell", "spool": "shell", "alerts": "alerts", "notify": "alerts",
    "run": "run", "schedule": "schedule", "backup": "engine", "restore": "engine",
    "verify": "engine", "snapshots": "engine", "scan": "engine", "forget": "engine",
    "health": "insight", "performance": "insight", "report": "insight", "audit": "insight",
    "dashboard": "insight", "runs": "runs", "drill": "drill", "metrics": "metrics",
}  # fmt: skip
_registered: set[str] = set()


def _register(only: str | None = None) -> None:
    """Register every command module's commands, or just those of module ``only``."""

    names = [only] if only else list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in names:
        if name not in _registered:
            importlib.import_module(f"backwatch.cli.{name}").register(_app)
            _registered.add(name)
    _tidy_help(_app)


def _module_for(argv: Sequence[str]) -> str | None:
    """The module of the command named in ``argv`` (None: help, or unknown → all)."""
    for arg in argv:
        if not arg.startswith("-"):
            return COMMAND_MODULES.get(arg)
        if arg in ("-h", "--help", "--version"):
            return None
    return None


def _unwrap(doc: str) -> str:
    """A docstring as help text: lines joined into paragraphs so the terminal wraps them.

    Typer keeps every line break of a help text, which leaves ragged lines on any terminal
    but the one the docstring was written for. A line break is kept where it was meant:
    after a short line or a colon, and before an indented line (examples, commands).
    """

    paragraphs = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        out: list[str] = []
        previous = ""
        for line in paragraph.splitlines():
            wrapped_prose = len(previous) >= 60 and not previous.endswith(":")
            if out and wrapped_prose and not line[:1].isspace():
                out[-1] += " " + line.strip()
            else:
                out.append(line)
            previous = line
        paragraphs.append("\n".join(out))
    return "\n\n".join(paragraphs)


def _tidy_help(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if isinstance(doc, str):
            info.help = _unwrap(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _tidy_help(group.typer_instance)


def run(argv: Sequence[str], prog_name: str | None = None) -> None:
    """Run the command line ``argv`` with Typer (errors are handled by ``_Root.main``)."""
    _register(_module_for(argv))
    _app(args=list(argv), prog_name=prog_name)


def full_app() -> typer.Typer:
    """The Typer app with every command (tests, the docs check)."""
    _register()
    return _app
