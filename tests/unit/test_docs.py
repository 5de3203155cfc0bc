"""Keep the documentation honest: every setting and every command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from backwatch.cli import app
from backwatch.settings import FileSettings

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text()
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()


def _setting_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            names.extend(_setting_names(nested[0], prefix + name + "."))
        else:
            names.append(prefix + name)
    return names


@pytest.mark.parametrize("path", _setting_names(FileSettings))
def test_every_setting_is_documented(path: str) -> None:
    leaf = path.rsplit(".", 1)[-1]
    assert f"`{leaf}`" in CONFIG_DOC, f"{path} is not in docs/configuration.md"


def _undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        inner = getattr(field.annotation, "__args__", (field.annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            out.extend(_undescribed(nested[0], prefix + name + "."))
        elif not field.description:
            out.append(prefix + name)
    return out


def test_every_setting_says_what_it_is_for() -> None:
    assert _undescribed(FileSettings) == []


def _commands() -> list[str]:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    names += [g.name for g in app.registered_groups if g.name]
    return sorted(names)


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}" in CLI_DOC, f"`backwatch {command}` is not in docs/cli.md"


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
