"""Command-line options declared once, as plain data that loads without Typer.

Typer builds its parameters from these declarations (``cli.params``), and ``cli.fastpath``
parses the plain forms of ``backwatch push`` with them before Typer is even imported, so
that reporting a run starts fast. The converters are the ones Typer uses for every plain
parameter (``cli.root`` installs them), so a value means the same on both paths.
"""

from __future__ import annotations

from collections.abc import Callable


class Option:
    """One option of a command: the parameter it fills, its flags, type, default and help.

    ``flags`` defaults to ``--name-with-dashes`` (what Typer would call it). An environment
    variable stands in for a single-valued text or number option that is not given.
    ``argument``: a positional argument instead (``backwatch run JOB``), no flags; one that
    is not ``required`` takes ``default`` when it is left out (``backwatch backup [JOB]``).
    """

    __slots__ = (
        "argument", "default", "envvar", "flags", "help", "kind", "multiple", "name", "required",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        kind: type,
        help: str,
        *flags: str,
        default: object = None,
        envvar: str | None = None,
        multiple: bool = False,
        argument: bool = False,
        required: bool = True,
    ) -> None:
        if envvar and (multiple or kind is bool):
            raise ValueError(
                f"{name}: an environment variable needs a single-valued text or number option"
            )
        if argument and (flags or envvar or multiple or kind is bool):
            raise ValueError(f"{name}: an argument is one required value, without flags")
        self.name = name
        self.kind = kind
        self.help = help
        self.argument = argument
        self.required = argument and required
        self.flags = () if argument else flags or ("--" + name.replace("_", "-"),)
        self.default = default
        self.envvar = envvar
        self.multiple = multiple


def as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def as_int(value: object) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def as_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


#: plain type → (converter, the word an error message uses for it)
CONVERTERS: dict[type, tuple[Callable[[object], object], str]] = {
    bool: (as_bool, "boolean"),
    str: (as_text, "text"),
    int: (as_int, "integer"),
    float: (as_float, "number"),
}


# Where a command sends its work (see cli.target); shared by most commands.
URL = Option(
    "url", str, "Server URL; without it, use the database.", "--url", envvar="BACKWATCH_URL"
)
TOKEN = Option(
    "token",
    str,
    "API token (default: <data>/token if readable).",
    "--token",
    envvar="BACKWATCH_TOKEN",
)
DB = Option("db", str, "Work on this database directly: a SQLite file or database URL.", "--db")
CONFIG = Option(
    "config", str, "Path to backwatch.toml.", "--config", "-c", envvar="BACKWATCH_CONFIG"
)
DATA_DIR = Option(
    "data_dir", str, "Data directory (default ./data).", "--data-dir", envvar="BACKWATCH_DATA_DIR"
)
TARGET = (URL, TOKEN, DB, CONFIG, DATA_DIR)
