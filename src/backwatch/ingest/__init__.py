"""Input formats. Each module turns one format into the same ``RunReport``.

``parse_any`` picks the format of a JSON object by its keys, so one endpoint
(``POST /api/v1/runs``) and one command (``backwatch import``) take all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backwatch.domain.report import RunReport, storable_json
from backwatch.errors import InvalidInput

#: format name → (detector, parser). Parsers raise InvalidInput naming the field.
_RECORD_FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[..., RunReport]]] = {}


def register_record_format(
    name: str, detect: Callable[[dict[str, Any]], bool], parse: Callable[..., RunReport]
) -> None:
    if name in _RECORD_FORMATS:
        raise ValueError(f"record format {name!r} registered twice")
    _RECORD_FORMATS[name] = (detect, parse)


def _load() -> None:
    global _loaded
    if not _loaded:  # the first report: import every format (they register)
        from backwatch.ingest import jsonl_record, native  # noqa: F401

        _loaded = True


_loaded = False


def parse_record(obj: Any, *, default_job: str = "backup", fmt: str | None = None) -> RunReport:
    """One JSON object in any known record format → RunReport (InvalidInput if wrong)."""
    _load()
    if not isinstance(obj, dict):
        raise InvalidInput(
            "a run report must be a JSON object",
            details=[{"field": "body", "problem": "must be a JSON object"}],
        )
    # NUL and lone surrogates (JSON escapes no database stores) become replacement
    # characters before the formats read names and values, in field names too
    obj = storable_json(obj)
    if fmt is not None:
        if fmt not in _RECORD_FORMATS:
            raise InvalidInput.field("format", f"unknown format {fmt!r}")
        return _RECORD_FORMATS[fmt][1](obj, default_job=default_job)
    for name, (detect, parse) in _RECORD_FORMATS.items():
        if name != "native" and detect(obj):
            return parse(obj, default_job=default_job)
    return _RECORD_FORMATS["native"][1](obj, default_job=default_job)
