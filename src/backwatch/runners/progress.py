"""Progress lines of the tools → ``Progress``: restic ``--json`` status lines (which the
built-in engine prints too), borg ``--progress --log-json`` objects and rsync
``--info=progress2`` lines.

Each reader takes one output line and answers ``None`` when the line is not progress
(it then goes to the log) or a ``Progress`` (the line is consumed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Progress:
    fraction: float | None = None  # 0..1 when the tool knows the total
    done_bytes: int | None = None
    total_bytes: int | None = None
    files: int | None = None
    total_files: int | None = None
    eta_s: float | None = None
    rate: float | None = None  # bytes per second, when the tool says
    current: str | None = None  # the file being read


def restic(line: str) -> Progress | None:
    if not line.startswith('{"message_type":"status"') and not line.startswith(
        '{"message_type":"verbose_status"'
    ):
        return None
    try:
        obj: dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    if obj.get("message_type") == "verbose_status":
        return Progress()
    current = obj.get("current_files")
    return Progress(
        fraction=_num(obj.get("percent_done")),
        done_bytes=_int(obj.get("bytes_done")),
        total_bytes=_int(obj.get("total_bytes")),
        files=_int(obj.get("files_done")),
        total_files=_int(obj.get("total_files")),
        eta_s=_num(obj.get("seconds_remaining")),
        current=current[0] if isinstance(current, list) and current else None,
    )


#: borg --log-json types that are progress (never logged); file_status is counted apart
_BORG_PROGRESS = (
    '"type": "archive_progress"',
    '"type": "progress_percent"',
    '"type": "progress_message"',
)


def borg(line: str) -> Progress | None:
    if not line.startswith("{") or not any(kind in line for kind in _BORG_PROGRESS):
        return None
    try:
        obj: dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    kind = obj.get("type")
    if kind == "archive_progress":
        return Progress(
            done_bytes=_int(obj.get("original_size")),
            files=_int(obj.get("nfiles")),
            current=obj.get("path") or None,
        )
    if kind == "progress_percent":
        current, total = _num(obj.get("current")), _num(obj.get("total"))
        fraction = current / total if current is not None and total else None
        return Progress(fraction=fraction, current=obj.get("message") or None)
    return Progress(current=obj.get("message") or None)


_RSYNC_RE = re.compile(
    r"^\s*([\d,.]+)\s+(\d{1,3})%\s+([\d.,]+)([kKMGT]?B)/s\s+(\d+):(\d\d):(\d\d)(?:\s+\((.*)\))?\s*$"
)
_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def rsync(line: str) -> Progress | None:
    match = _RSYNC_RE.match(line)
    if match is None:
        return None
    done = int(match.group(1).replace(",", "").replace(".", ""))
    fraction = int(match.group(2)) / 100
    rate = float(match.group(3).replace(",", "")) * _UNITS.get(match.group(4), 1)
    h, m, s = (int(match.group(i)) for i in (5, 6, 7))
    total = int(done / fraction) if fraction > 0 else None
    # progress2's time is the ETA while running and the elapsed time on the last line
    return Progress(
        fraction=fraction,
        done_bytes=done,
        total_bytes=total,
        rate=rate,
        eta_s=float(h * 3600 + m * 60 + s) if fraction < 1 else 0.0,
    )


READERS: dict[str, Callable[[str], Progress | None]] = {
    "restic": restic,
    "borg": borg,
    "rsync": rsync,
    "builtin": restic,  # the engine prints restic's status lines (cli.engine_run.StatusLines)
}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _num(value)
    return int(number) if number is not None else None
