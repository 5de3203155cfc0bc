"""Backup tools' own output → ``RunReport``: one module per tool, one registry line each.

Every parser has the same signature::

    parse(text, *, job, exit_code=None, started_at=None, finished_at=None, now=None,
          kind=None)

``text`` is what the tool printed (stdout, or stdout and stderr together), ``exit_code`` is
the tool's exit code when the caller knows it, ``started_at``/``finished_at`` are epoch
seconds measured by the caller (they win over the tool's own times), and ``now`` is the
time assumed for the finish when nothing else says (default: the clock), and ``kind``
says what the output is (``backup`` or ``check``) when the output cannot show it itself
(a passing ``borg check`` prints nothing). Each tool's parser implements its outcome
contract (docs/tool-output.md): the exit code first, then the tool's own words, and no
evidence of success is never a success (``unknown``). A parser raises
``InvalidInput`` naming the problem, and the line where there is one, when the text is not
that tool's output. ``backwatch import --format TOOL`` and the runner both use these.
"""

from __future__ import annotations

from typing import Protocol

from backwatch.domain.report import RunReport
from backwatch.errors import InvalidInput


class ToolParser(Protocol):
    def __call__(
        self,
        text: str,
        *,
        job: str,
        exit_code: int | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        now: float | None = None,
        kind: str | None = None,
    ) -> RunReport: ...


_PARSERS: dict[str, ToolParser] = {}


def register_tool(name: str, parse: ToolParser) -> None:
    """Make ``parse`` the parser of tool ``name``; a name can be registered only once."""
    if name in _PARSERS:
        raise ValueError(f"tool output format {name!r} registered twice")
    _PARSERS[name] = parse


def _load() -> None:
    from backwatch.ingest.tools import borg, builtin, restic, rsync  # noqa: F401  (they register)


def tool_names() -> list[str]:
    """The tools whose output can be imported, in registration order."""
    _load()
    return list(_PARSERS)


def parser_for(name: str) -> ToolParser:
    """The parser of tool ``name`` (InvalidInput naming the known tools if there is none)."""

    _load()
    try:
        return _PARSERS[name]
    except KeyError:
        known = ", ".join(_PARSERS)
        raise InvalidInput.field("format", f"unknown tool {name!r} (known: {known})") from None


def parse_tool_output(
    name: str,
    text: str,
    *,
    job: str,
    exit_code: int | None = None,
    started_at: float | None = None,
    finished_at: float | None = None,
    now: float | None = None,
    kind: str | None = None,
) -> RunReport:
    """Parse ``text`` printed by tool ``name`` into a run of ``job``."""
    return parser_for(name)(
        text,
        job=job,
        exit_code=exit_code,
        started_at=started_at,
        finished_at=finished_at,
        now=now,
        kind=kind,
    )
