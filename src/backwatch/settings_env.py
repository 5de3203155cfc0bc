"""Settings from environment variables: every ``backwatch.toml`` key has one.

The rule (docs/configuration.md, "Environment variables"): ``BACKWATCH_`` and the key's
path in upper case, a table and its key joined by a double underscore::

    data_dir                  BACKWATCH_DATA_DIR
    [server] port             BACKWATCH_SERVER__PORT
    [server] allowed_hosts    BACKWATCH_SERVER__ALLOWED_HOSTS=nas.lan,*.example.com
    [[notify]]                BACKWATCH_NOTIFY='[{urls = ["ntfy://ntfy.example/b"]}]'
    [[jobs]]                  BACKWATCH_JOBS='[{id = "photos", schedule = "0 2 * * *"}]'

plus SPEC's short names (``RETENTION_DAYS``, ``BACKWATCH_LOG_FORMAT``). A variable beats
the file's key; a list or table replaces the file's whole value. Every one of these
variables, and any other ``BACKWATCH_…`` variable, may instead be given as ``<NAME>_FILE``:
the path of a file holding the value (Docker and Kubernetes secrets), trailing newline
stripped. ``TZ`` is the time zone of configured jobs that name none.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from backwatch.errors import ConfigError

PREFIX = "BACKWATCH_"
FILE_SUFFIX = "_FILE"
#: names SPEC §7 and §12 give some settings besides the rule's
ALIASES = {
    "RETENTION_DAYS": ("retention_days",),
    "BACKWATCH_LOG_FORMAT": ("server", "log_format"),
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings table an annotation is (``ServerSettings``, ``X | None``), or None."""

    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_structured(annotation: Any) -> bool:
    """A list or table value (written as TOML in the variable), not a scalar."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_structured(a) for a in typing.get_args(annotation) if a is not type(None))
    return origin in (list, dict, tuple, set) or annotation in (list, dict)


def _is_text_list(annotation: Any) -> bool:
    """``list[str]`` or a list of literals: also accepted comma-separated."""
    if typing.get_origin(annotation) is not list:
        return False
    (item,) = typing.get_args(annotation) or (Any,)
    return item is str or typing.get_origin(item) is typing.Literal


def variables(model: type[BaseModel], path: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every setting's variable → its key path, by the rule, for ``model``'s keys."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        key = (*path, name)
        table = _model_of(field.annotation)
        if table is not None and not _is_structured(field.annotation):
            out.update(variables(table, key))
        else:
            out[PREFIX + "__".join(k.upper() for k in key)] = key
    return out


def _annotation_at(model: type[BaseModel], path: tuple[str, ...]) -> Any:
    annotation: Any = model
    for key in path:
        table = _model_of(annotation)
        assert table is not None
        annotation = table.model_fields[key].annotation
    return annotation


def file_values(env: Mapping[str, str], names: Any = None) -> dict[str, str]:
    """``NAME`` → the content of the file ``NAME_FILE`` names, for every ``NAME_FILE`` set
    (only those of ``names`` if given; else every ``BACKWATCH_…`` and alias name).

    Raises ConfigError naming the variable when the file cannot be read or ``NAME`` is set
    too (which one would win is a guess)."""
    out: dict[str, str] = {}
    for variable, path in env.items():
        if not variable.endswith(FILE_SUFFIX) or not path:
            continue
        name = variable.removesuffix(FILE_SUFFIX)
        wanted = names is None and (name.startswith(PREFIX) or name in ALIASES)
        if not (wanted or (names is not None and name in names)):
            continue
        if env.get(name):
            raise ConfigError(f"environment variables {name} and {variable} are both set; set one")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"environment variable {variable}: no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            message = f"environment variable {variable}: cannot read {path}: {reason}"
            raise ConfigError(message) from None
        out[name] = text.removesuffix("\n").removesuffix("\r")
    return out


def _value(variable: str, text: str, annotation: Any) -> Any:
    """The setting's value from the variable's text: TOML for a list or table, else text
    (pydantic reads numbers and booleans from text)."""
    if not _is_structured(annotation):
        return text

    stripped = text.strip()
    if _is_text_list(annotation) and not stripped.startswith("["):
        return [part.strip() for part in stripped.split(",") if part.strip()]
    try:
        return tomllib.loads(f"value = {stripped}")["value"]
    except tomllib.TOMLDecodeError as exc:
        example = '["a", "b"]' if typing.get_origin(annotation) is list else '{key = "value"}'
        raise ConfigError(
            f"environment variable {variable}: not a TOML value such as {example}: {exc}"
        ) from None


def apply_environment(
    raw: dict[str, Any], model: type[BaseModel], env: Mapping[str, str]
) -> dict[str, str]:
    """Put the settings given by environment variables into ``raw`` (the parsed file) and
    return key path (``server.port``) → variable, so an error can name the variable.

    A variable under a known table but naming no key of it is an error (a typo must not
    be ignored); other ``BACKWATCH_…`` variables belong to the clients and are left alone."""
    env = {**env, **file_values(env)}
    known = variables(model)
    mapping = {**known, **ALIASES}
    tables: dict[str, tuple[str, ...]] = {}  # "BACKWATCH_SERVER__" → ("server",)
    for name, field in model.model_fields.items():
        if _model_of(field.annotation) is not None and not _is_structured(field.annotation):
            tables[f"{PREFIX}{name.upper()}__"] = (name,)
    from_env: dict[str, str] = {}
    for variable in sorted(env):
        text = env[variable]
        if not text:
            continue
        path = mapping.get(variable)
        if path is None:
            for prefix, table in tables.items():
                if variable.startswith(prefix) and not variable.endswith(FILE_SUFFIX):
                    raise ConfigError(
                        f"environment variable {variable}: [{'.'.join(table)}] has no key "
                        f"{variable.removeprefix(prefix).lower()!r} (see docs/configuration.md)"
                    )
            continue
        target = raw
        for key in path[:-1]:
            section = target.setdefault(key, {})
            if not isinstance(section, dict):
                break
            target = section
        else:
            target[path[-1]] = _value(variable, text, _annotation_at(model, path))
            from_env[".".join(path)] = variable
    return from_env


def environment_time_zone(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    """``TZ`` (an IANA name such as ``Europe/Berlin``) becomes the ``timezone`` of every
    configured job that names none; without ``TZ`` they keep UTC."""
    tz = (env.get("TZ") or "").strip().removeprefix(":")
    if not tz or tz.startswith("/"):  # a file (":/etc/localtime"): the system's own zone
        return

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"environment variable TZ: unknown time zone {tz!r} (an IANA name such as "
            "'Europe/Berlin'; is the tzdata package installed?)"
        ) from None
    jobs = raw.get("jobs")
    if isinstance(jobs, list):
        for job in jobs:
            if isinstance(job, dict) and "timezone" not in job:
                job["timezone"] = tz
