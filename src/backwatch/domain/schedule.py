"""Schedules: a cron expression in a time zone, or a fixed period such as ``24h``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from backwatch.timeutil import parse_duration


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str
    period_s: float | None  # set for period schedules, None for cron

    @property
    def kind(self) -> str:
        return "period" if self.period_s is not None else "cron"

    def next_after(self, ts: float) -> float:
        """The first due time strictly after ``ts`` (epoch seconds)."""
        if self.period_s is not None:
            return ts + self.period_s
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(ts, zone)
        nxt = croniter(self.expression, start).get_next(datetime)
        return float(nxt.timestamp())

    def previous_at_or_before(self, ts: float) -> float | None:
        """The latest cron fire time ≤ ``ts``; None for period schedules."""
        if self.period_s is not None:
            return None
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(ts + 0.001, zone)
        prev = croniter(self.expression, start).get_prev(datetime)
        return float(prev.timestamp())


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """'0 2 * * *' (cron, 5 or 6 fields, or @daily …) or '24h' (period). ValueError if neither."""
    text = expression.strip()
    if not text:
        raise ValueError("schedule must not be empty")
    if text.startswith("@") or len(text.split()) >= 5:
        if not croniter.is_valid(text):
            raise ValueError(f"not a valid cron expression: {expression!r}")
        return Schedule(text, timezone, None)
    try:
        period = parse_duration(text, field="schedule")
    except ValueError:
        raise ValueError(
            f"schedule {expression!r} is neither a cron expression ('0 2 * * *') "
            "nor a period ('24h')"
        ) from None
    if period <= 0:
        raise ValueError("schedule period must be positive")
    return Schedule(text, timezone, period)
