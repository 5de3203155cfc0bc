"""Parsing and formatting of times and durations shared by every edge.

Inside backwatch a point in time is a float of seconds since the epoch (UTC): cheap to store,
compare and index on both SQLite and PostgreSQL. Edges parse ISO 8601 and print ISO 8601.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: 9999-12-31T23:59:59Z, the last second ISO 8601 (and Python's datetime) can print
MAX_EPOCH = 253_402_300_799.0
#: a hundred years: longer durations are typos, and would overflow dates computed from them
MAX_DURATION = 100 * 365.25 * 86400
#: the range of times a report may carry (domain/bounds.py): 1970-01-01T00:00:00Z …
#: 9799-12-31T23:59:59Z. The 200 years short of 9999 leave room for what is computed from a
#: stored time (a run's end is at most 100 years of duration later, its next due time at most
#: a 100-year period and grace later), so every one of them can still be printed.
EARLIEST_TIME = 0.0
LATEST_TIME = 247_090_953_599.0
TIME_RANGE = "between 1970-01-01T00:00:00Z and 9799-12-31T23:59:59Z"


def now() -> float:
    return time.time()


def parse_time(value: object, *, field: str = "time", report: bool = False) -> float:
    """ISO 8601 text (naive means UTC) or epoch seconds → epoch seconds.

    ``report``: a time a run report brings, held to ``TIME_RANGE`` (else any time up to
    the end of 9999). Raises ValueError with a message naming the problem.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an ISO 8601 time or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        return _epoch(float(value), field, report)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an ISO 8601 time or epoch seconds")
    text = value.strip()
    if not text:
        raise ValueError(f"{field} must not be empty")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{field} is not an ISO 8601 time: {value!r}") from None
        return _epoch(number, field, report)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _epoch(parsed.timestamp(), field, report)


def _epoch(value: float, field: str, report: bool = False) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{field} must be a finite time, not {value!r}")
    if report and not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError(f"{field} is out of range: must be {TIME_RANGE}")
    if value < 0:
        raise ValueError(f"{field} must not be negative")
    if value > MAX_EPOCH:
        raise ValueError(f"{field} is out of range (after the year 9999): {value!r}")
    return value


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO 8601 in UTC with a 'Z', to the millisecond when not whole.

    Total, so a row stored before times were bounded cannot take a view down: a time
    outside 1970 … 9999-12-31T23:59:59Z is clipped to that range (1e308 prints as the
    last second of 9999, and reads back with ``parse_time``); NaN is None, unknown."""
    if ts is None or ts != ts:
        return None
    dt = datetime.fromtimestamp(min(max(ts, 0.0), MAX_EPOCH), UTC)
    if dt.microsecond:
        text = dt.isoformat(timespec="milliseconds")
    else:
        text = dt.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def parse_duration(value: object, *, field: str = "duration") -> float:
    """'90s', '15m', '1h30m', '2d', or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a duration such as '15m' or a number of seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{field} must be a finite duration, not {value!r}")
        if value < 0:
            raise ValueError(f"{field} must not be negative")
        if value > MAX_DURATION:
            raise ValueError(f"{field} is too long (more than 100 years): {value!r}")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a duration such as '15m' or a number of seconds")
    text = value.strip().lower().replace(" ", "")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return parse_duration(number, field=field)
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{field} is not a duration: {value!r} (use e.g. '90s', '15m', '1h30m')")
    return parse_duration(total, field=field)


def human_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = float(seconds)
    if abs(seconds) > MAX_DURATION:  # a stored figure from before durations were bounded
        return "> 100 years"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def human_bytes(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PB"


def human_ago(ts: float | None, now_ts: float) -> str:
    if ts is None:
        return "never"
    if not math.isfinite(ts):
        return "unknown"
    delta = now_ts - ts
    if delta < 0:
        return "in " + human_duration(-delta)
    return human_duration(delta) + " ago"
