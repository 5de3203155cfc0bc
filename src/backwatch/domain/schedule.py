"""Schedules: a cron expression in a time zone, or a fixed period such as ``24h``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from backwatch.timeutil import parse_duration

if TYPE_CHECKING:
    from croniter import croniter


def _croniter() -> type[croniter]:
    """croniter, loaded when a cron expression is first read: importing it runs ``file`` on
    the interpreter (its 32-bit check) and loads dateutil, which ``backwatch run`` of a
    job without a cron schedule never needs."""
    from croniter import croniter

    return croniter


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str
    period_s: float | None  # set for period schedules, None for cron

    @property
    def kind(self) -> str:
        return "period" if self.period_s is not None else "cron"

    @property
    def wildcard_time(self) -> bool:
        """True when the minute or hour field starts with '*' (e.g. hourly jobs): cron runs
        those in both passes of a repeated hour, and fixed-time jobs only once."""
        if self.expression.startswith("@"):
            return self.expression in ("@hourly",)
        minute, hour = self.expression.split()[:2]
        return minute.startswith("*") or hour.startswith("*")

    def next_after(self, ts: float) -> float:
        """The first due time strictly after ``ts`` (epoch seconds); ``math.inf`` ("never")
        when the calendar has none: ``ts`` near the year 9999, a time stored before times
        were bounded, must not fail every view that shows the job."""
        if self.period_s is not None:
            return ts + self.period_s
        # Listing 500 jobs asks this for every job on every read; a job's last start
        # changes rarely, so the cron walk (the costly part) is remembered.
        try:
            return _cron_next(self, ts)
        except (OverflowError, ValueError, OSError):
            return math.inf

    def _cron_next(self, ts: float) -> float:
        zone = ZoneInfo(self.timezone)
        if self.wildcard_time:
            aware = _croniter()(self.expression, datetime.fromtimestamp(ts, zone))
            return float(aware.get_next(datetime).timestamp())
        # Walk a fixed-time expression in local wall-clock time, as cron does, so that a time
        # repeated when the clocks go back is due once, not twice an hour apart.
        wall = datetime.fromtimestamp(ts, zone).replace(tzinfo=None)
        it = _croniter()(self.expression, wall)
        for _ in range(8):
            candidate = it.get_next(datetime)
            # fold=0 is the first of a repeated wall time; a time skipped when the clocks
            # go forward maps to just after the jump.
            for fold in (0, 1):
                due = candidate.replace(tzinfo=zone, fold=fold).timestamp()
                if due > ts:
                    return float(due)
        raise ValueError(f"no due time after {ts} for {self.expression!r}")  # pragma: no cover

    def previous_at_or_before(self, ts: float) -> float | None:
        """The latest cron fire time ≤ ``ts``; None for period schedules."""
        if self.period_s is not None:
            return None
        zone = ZoneInfo(self.timezone)
        if self.wildcard_time:
            aware = _croniter()(self.expression, datetime.fromtimestamp(ts + 0.001, zone))
            return float(aware.get_prev(datetime).timestamp())
        wall = datetime.fromtimestamp(ts, zone).replace(tzinfo=None)
        it = _croniter()(self.expression, wall + timedelta(microseconds=1000))
        for _ in range(8):
            # the same instant next_after gives: the first pass of a repeated time
            due = it.get_prev(datetime).replace(tzinfo=zone, fold=0).timestamp()
            if due <= ts:
                return float(due)
        return None  # pragma: no cover


@lru_cache(maxsize=8192)
def _cron_next(schedule: Schedule, ts: float) -> float:
    return schedule._cron_next(ts)


@lru_cache(maxsize=2048)
def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """'0 2 * * *' (cron, 5 or 6 fields, or @daily …) or '24h' (period). ValueError if neither."""
    text = expression.strip()
    if not text:
        raise ValueError("schedule must not be empty")
    if text.startswith("@") or len(text.split()) >= 5:
        if not _croniter().is_valid(text):
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
