"""The ``backwatch`` command line (Typer + rich). One module per group of commands.

Heavy libraries (SQLAlchemy, FastAPI, pydantic) are imported inside the commands that need
them, so that reporting a run (`backwatch push` to a server) starts in well under 150 ms.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from backwatch import __version__
from backwatch.errors import BackwatchError


class _Root(TyperGroup):
    """The root command: every failure leaves as one ``error: …`` line on stderr.

    A ``BackwatchError`` exits 1, a usage error (unknown option, bad value) exits 2; neither
    prints a traceback. ``backwatch.cli.main`` and ``CliRunner`` both come through here.
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
        _light_coercion()
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except BackwatchError as exc:
            _print_error(exc)
            code = 1
        except typer.TyperException as exc:  # click's ClickException and UsageError
            code = _usage_error(exc)
        except typer.Abort:
            sys.stderr.write("error: aborted\n")
            code = 1
        except BrokenPipeError:  # `backwatch history x | head`
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more can be written
            code = 1
        except Exception as exc:  # a bug: say so in one line, the traceback on request
            if os.environ.get("BACKWATCH_DEBUG"):
                raise
            sys.stderr.write(
                f"error: internal error: {type(exc).__name__}: {exc} "
                "(this is a bug; run with BACKWATCH_DEBUG=1 to see where)\n"
            )
            code = 70
        else:
            code = rv if isinstance(rv, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _print_error(exc: BackwatchError) -> None:
    sys.stderr.write(f"error: {exc.message}\n")
    for detail in exc.details[1:]:
        sys.stderr.write(f"  - {detail.get('field')}: {detail.get('problem')}\n")


def _usage_error(exc: typer.TyperException) -> int:
    code = getattr(exc, "exit_code", 2)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return code  # the help has been printed already
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    sys.stderr.write(f"error: {exc.format_message()}{hint}\n")
    return code


def _light_coercion() -> None:
    """Convert plain bool/str/int/float parameters without Typer's pydantic adapters.

    Typer ≥ 0.2x builds a pydantic ``TypeAdapter`` for every parameter it converts, which
    imports pydantic (~75 ms) on every start: too slow for ``backwatch push``. Our
    parameters are plain types, so they get a small converter here; anything else (and any
    Typer without this hook) keeps Typer's own conversion.
    """
    from typer import core

    parameter = getattr(core, "_TyperParameter", None)
    original = getattr(parameter, "get_runtime_param", None)
    if original is None or getattr(original, "_backwatch", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is None:
            descriptor = self.type_descriptor
            annotation = descriptor.annotation
            if annotation == list[str]:
                annotation = str
            plain = _PLAIN.get(annotation)
            if plain is not None and not (descriptor.is_file or descriptor.is_path):
                self._runtime_param = _PlainParam(*plain)
        return original(self)

    get_runtime_param._backwatch = True  # type: ignore[attr-defined]
    parameter.get_runtime_param = get_runtime_param  # type: ignore[union-attr]


class _PlainParam:
    """Typer's runtime-parameter contract (``coerce``) for one plain type."""

    def __init__(self, convert: Any, label: str) -> None:
        self.convert = convert
        self.label = label

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        if isinstance(value, (list, tuple)):
            return [self._one(v, param, ctx) for v in value]
        return self._one(value, param, ctx)

    def _one(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return self.convert(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(
                f"{value!r} is not a valid {self.label}.", ctx=ctx, param=param
            ) from None


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


_PLAIN: dict[Any, tuple[Any, str]] = {
    bool: (_as_bool, "boolean"),
    str: (_as_str, "text"),
    int: (_as_int, "integer"),
    float: (_as_float, "number"),
}


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


#: command (or group) → the module that defines it. ``main`` loads only the module of the
#: command being run: building every command's parameters costs more than ``push`` itself.
COMMAND_MODULES = {
    "serve": "serve", "push": "report", "start": "report", "phase": "report",
    "finish": "report", "wrap": "report", "import": "report", "status": "views",
    "history": "views", "list": "views", "token": "admin", "db": "admin",
    "shell-lib": "shell", "spool": "shell", "alerts": "alerts", "notify": "alerts",
    "run": "run", "schedule": "run",
}  # fmt: skip
_registered: set[str] = set()


def _register(only: str | None = None) -> None:
    """Register every command module's commands, or just those of module ``only``."""
    import importlib

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
    import inspect

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


def main(prog_name: str | None = None) -> None:
    """The ``backwatch`` console script (errors are handled by ``_Root.main``)."""
    _register(_module_for(sys.argv[1:]))
    _app(prog_name=prog_name)


def __getattr__(name: str) -> Any:
    """``backwatch.cli.app``: the Typer app with every command (tests, the docs check)."""
    if name == "app":
        _register()
        return _app
    raise AttributeError(f"module 'backwatch.cli' has no attribute {name!r}")
