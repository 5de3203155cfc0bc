"""The run lifecycle as a state machine.

    (queued →) running → success | warning | failed | cancelled | timed_out | unknown
    skipped: nothing changed (may be reported directly)
    unknown: the run ended, but the tool's evidence does not show that it worked (no
    summary, output cut short, an exit code nobody gave): never counted as a success

A complete report enters a terminal state directly from "no run yet" (``None``). Every
accepted transition becomes a ``state_change`` event; anything else is refused.
"""

from __future__ import annotations

from enum import StrEnum

from backwatch.errors import IllegalTransition


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    WARNING = "warning"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


TERMINAL = frozenset(
    {
        RunStatus.SUCCESS,
        RunStatus.WARNING,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.TIMED_OUT,
        RunStatus.SKIPPED,
        RunStatus.UNKNOWN,
    }
)
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
#: Statuses that count as a good backup for health, rollups and "last success".
GOOD = frozenset({RunStatus.SUCCESS, RunStatus.WARNING, RunStatus.SKIPPED})
#: Statuses that count as a failure.
BAD = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})
#: What a run does (``runs.kind``): a backup, a repository check, a restore drill. Only
#: backups move a job's "last run" and "last success"; checks and drills prove them.
RUN_KINDS = ("backup", "check", "drill")

ALLOWED: dict[RunStatus | None, frozenset[RunStatus]] = {
    None: frozenset(RunStatus),
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED} | TERMINAL),
    RunStatus.RUNNING: TERMINAL,
}

STATUS_NAMES = ", ".join(s.value for s in RunStatus)


def parse_status(value: object) -> RunStatus:
    """Text → RunStatus, or ValueError listing the valid names."""
    try:
        return RunStatus(str(value).strip().lower())
    except ValueError:
        raise ValueError(f"unknown status {value!r}; expected one of: {STATUS_NAMES}") from None


def check_transition(run_id: str, current: RunStatus | None, target: RunStatus) -> None:
    """Raise IllegalTransition unless ``current → target`` is allowed."""
    if target in ALLOWED.get(current, frozenset()):
        return
    if current is not None and current in TERMINAL:
        raise IllegalTransition(
            f"run {run_id} already finished as {current.value}; it cannot become {target.value}"
        )
    raise IllegalTransition(
        f"run {run_id} is {current.value if current else 'new'}; it cannot become {target.value}"
    )


def is_terminal(status: RunStatus | str) -> bool:
    return RunStatus(status) in TERMINAL


#: exit status of a command that ran a backup (``backwatch run``, ``backwatch backup``) per
#: outcome (documented in docs/runner.md); anything else exits 1
EXIT_CODES = {
    RunStatus.SUCCESS: 0,
    RunStatus.SKIPPED: 0,
    RunStatus.WARNING: 3,
    RunStatus.UNKNOWN: 4,
    RunStatus.FAILED: 1,
    RunStatus.TIMED_OUT: 124,
    RunStatus.CANCELLED: 130,
}


def exit_code(status: RunStatus) -> int:
    return EXIT_CODES.get(status, 1)
