"""The built-in engine's ``backwatch backup --json`` summary (docs/engine.md) → a run.

``backwatch run`` reads the figures of a ``tool = "builtin"`` job from it. The engine
itself is imported only when a summary is parsed.
"""

from __future__ import annotations

from typing import Any

from backwatch.domain.report import RunReport
from backwatch.ingest.tools import register_tool


def parse(text: str, *, kind: str | None = None, **times: Any) -> RunReport:
    """``kind``: the engine's summary always says what it is (a backup)."""
    # the snapshot engine (zstd, BLAKE3, tarfile): every `backwatch run` loads this parser
    from backwatch.engine.summary import parse_output

    return parse_output(text, **times)


register_tool("builtin", parse)
