"""Bounds on every time, duration, size and count a report brings: the one place they live.

Every write of a run goes through ``services/runs.py``, which checks what it is about to
store here, so every ingest path (the native report, the lifecycle calls, seed 001 lines and
the tailed metrics.jsonl, status files, pings, ``push``/``import``, the tools' parsers and
the runner) refuses the same figures with the same words: a 422 naming the field. The
parsers check times and durations as they read them too (``timeutil.parse_time``,
``Seconds`` in ``ingest/native.py``), so their errors name the field as the client sent it.

The limits: times between 1970 and 9799-12-31 (``timeutil.TIME_RANGE``: room is left for
times computed from them), durations at most 100 years, sizes and counts at most 2^63 − 1
(a BIGINT), exit codes within a 32-bit INTEGER, and a run's end inside the same range.
"""

from __future__ import annotations

import math
from typing import Any

from backwatch.domain.report import RunReport, lay_out_phases
from backwatch.errors import InvalidInput
from backwatch.timeutil import EARLIEST_TIME, LATEST_TIME, MAX_DURATION, TIME_RANGE

#: the largest value of a BIGINT column (sizes, file counts)
MAX_COUNT = 2**63 - 1
#: an INTEGER column (exit codes; alert ids)
MAX_INT32 = 2**31 - 1
DURATION_PROBLEM = "must be between 0 and 100 years (3155760000 seconds)"
COUNT_PROBLEM = f"must be a whole number between 0 and {MAX_COUNT}"
TIME_PROBLEM = f"must be {TIME_RANGE}"
END_PROBLEM = f"the run's end (started_at + duration_s) must be {TIME_RANGE}"
COUNT_FIELDS = ("size_bytes", "files", "files_new", "files_changed", "bytes_added")


def time_ok(value: Any) -> bool:
    return _number(value) and EARLIEST_TIME <= value <= LATEST_TIME


def duration_ok(value: Any) -> bool:
    return _number(value) and 0 <= value <= MAX_DURATION


def count_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_time(value: Any, field: str) -> None:
    if value is not None and not time_ok(value):
        raise InvalidInput.field(field, TIME_PROBLEM)


def check_duration(value: Any, field: str) -> None:
    if value is not None and not duration_ok(value):
        raise InvalidInput.field(field, DURATION_PROBLEM)


def check_count(value: Any, field: str) -> None:
    if value is not None and not count_ok(value):
        raise InvalidInput.field(field, COUNT_PROBLEM)


def check_exit_code(value: Any, field: str = "exit_code") -> None:
    if value is not None and not (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT32
    ):
        raise InvalidInput.field(field, f"must be a whole number of at most {MAX_INT32}")


def check_figures(fields: dict[str, Any], started_at: float | None = None) -> None:
    """The measured figures of a run (a report's, or a finish call's ``fields``); with
    ``started_at``, its end (given, or the start plus the duration) is checked too."""
    check_time(fields.get("finished_at"), "finished_at")
    check_duration(fields.get("duration_s"), "duration_s")
    check_exit_code(fields.get("exit_code"))
    for name in COUNT_FIELDS:
        check_count(fields.get(name), name)
    if started_at is not None and fields.get("finished_at") is None:
        duration = fields.get("duration_s")
        if duration is not None and started_at + duration > LATEST_TIME:
            raise InvalidInput.field("finished_at", END_PROBLEM)


def check_report(report: RunReport) -> None:
    """InvalidInput naming the first figure of ``report`` out of bounds (see the module)."""
    if _plainly_in_bounds(report):  # every report passes here: the common case, cheaply
        return
    check_time(report.started_at, "started_at")
    check_figures(
        {name: getattr(report, name) for name in ("finished_at", "duration_s", "exit_code")}
        | {name: getattr(report, name) for name in COUNT_FIELDS},
        report.started_at,
    )
    if not report.phases:
        return
    for i, phase in enumerate(report.phases):
        check_time(phase.started_at, f"phases[{i}].started_at")
        check_time(phase.finished_at, f"phases[{i}].finished_at")
        check_duration(phase.duration_s, f"phases[{i}].duration_s")
    # phases without times are laid end to end from the run's start: each must end in range
    for i, phase in enumerate(lay_out_phases(report.phases, report.started_at)):
        if phase.finished_at is not None and phase.finished_at > LATEST_TIME:
            raise InvalidInput.field(f"phases[{i}]", f"the phase's end must be {TIME_RANGE}")


_NUMBER = (int, float)


def _plainly_in_bounds(report: RunReport) -> bool:
    """True when ``report`` has no phases and every figure is well inside its bounds; False
    sends it through the checks that name the field (a report out of bounds, or phases)."""
    if report.phases:
        return False
    start, end, took = report.started_at, report.finished_at, report.duration_s
    if not (type(start) in _NUMBER and EARLIEST_TIME <= start <= LATEST_TIME):
        return False
    if end is not None and not (type(end) in _NUMBER and EARLIEST_TIME <= end <= LATEST_TIME):
        return False
    if took is not None:
        if not (type(took) in _NUMBER and 0 <= took <= MAX_DURATION):
            return False
        if end is None and start + took > LATEST_TIME:
            return False
    code = report.exit_code
    if code is not None and not (type(code) is int and -MAX_INT32 <= code <= MAX_INT32):
        return False
    for count in (
        report.size_bytes, report.files, report.files_new, report.files_changed,
        report.bytes_added,
    ):  # fmt: skip
        if count is not None and not (type(count) is int and 0 <= count <= MAX_COUNT):
            return False
    return True


def check_phase_event(at: float | None, duration_s: float | None, now: float) -> None:
    """A lifecycle phase call's time and duration, and the phase's end."""
    check_time(at, "at")
    check_duration(duration_s, "duration_s")
    if duration_s is not None and (at if at is not None else now) + duration_s > LATEST_TIME:
        raise InvalidInput.field("duration_s", f"the phase's end must be {TIME_RANGE}")
