"""Parse the plain forms of a command line without Typer, from the same declarations.

Importing Typer (and its Click) costs more than the rest of ``backwatch push`` together, and
a backup script reports every night with the same handful of flags (``backwatch run JOB``
likewise, from cron or a systemd timer). ``parse`` reads those flags from the ``Option``
declarations Typer builds the command from, and answers None for anything else (help, an
unknown option, a missing or unusual value, an extra or missing argument): Typer then
parses the line itself, so help and errors look exactly as they always do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backwatch.cli.options import CONVERTERS, Option


def parse(
    args: Sequence[str], options: Sequence[Option], environ: Mapping[str, str]
) -> dict[str, object] | None:
    """The parameter values of ``args`` (the words after the command name), or None.

    Accepted: ``--name VALUE``, ``--name=VALUE``, ``-n VALUE`` and flags standing alone; a
    repeated option keeps its last value, a ``multiple`` one every value. A value read from
    the next word may not start with ``-`` (except ``-`` itself, standard input). A word
    that is not an option fills the next declared argument. Options not given take their
    environment variable (when set and not empty), else their default.
    """
    by_flag = {flag: option for option in options for flag in option.flags}
    positional = [option for option in options if option.argument]
    given: dict[str, object] = {}
    words = iter(args)
    for word in words:
        if positional and not word.startswith("-"):
            argument = positional.pop(0)
            value = _convert(argument, word)
            if value is None:
                return None
            given[argument.name] = value
            continue
        name, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        option = by_flag.get(name)
        if option is None:
            return None
        if option.kind is bool:
            if equals:
                return None
            given[option.name] = True
            continue
        raw = inline if equals else next(words, None)
        if raw is None or (not equals and raw.startswith("-") and raw != "-"):
            return None
        value = _convert(option, raw)
        if value is None:
            return None
        if option.multiple:
            given.setdefault(option.name, []).append(value)  # type: ignore[attr-defined]
        else:
            given[option.name] = value
    return _complete(given, options, environ)


def _complete(
    given: dict[str, object], options: Sequence[Option], environ: Mapping[str, str]
) -> dict[str, object] | None:
    """Every option's value: given, else from its environment variable, else its default.
    None when a required argument is missing."""
    values: dict[str, object] = {}
    for option in options:
        if option.name in given:
            values[option.name] = given[option.name]
        elif option.required:
            return None
        elif option.envvar and environ.get(option.envvar):
            value = _convert(option, environ[option.envvar])
            if value is None:
                return None
            values[option.name] = value
        else:
            values[option.name] = option.default
    return values


def _convert(option: Option, raw: str) -> object | None:
    """``raw`` as the option's type; None when it is not one (Typer will say why)."""
    convert, _label = CONVERTERS[option.kind]
    try:
        return convert(raw)
    except (TypeError, ValueError):
        return None
