"""Running configured jobs: one module per tool (command, restic, borg, rsync) + a registry.

A tool module turns a job's settings into *steps* (``base.Step``: a phase name and the
command line) and says what each step's exit code means. ``engine.JobRunner`` runs the
steps in order, records each as a phase of one run and turns the tool's output into the
run's figures. Tools register here, once each; asking for an unknown tool names the known.
"""

from __future__ import annotations

from backwatch.errors import ConfigError
from backwatch.job_settings import TOOLS
from backwatch.runners.base import ToolRunner

_RUNNERS: dict[str, ToolRunner] = {}


def register_runner(runner: ToolRunner) -> None:
    """Make ``runner`` the runner of ``runner.name``: a tool the settings know
    (``job_settings.TOOLS``), registered only once."""
    if runner.name not in TOOLS:
        raise ValueError(f"runner {runner.name!r} is not a tool of job_settings.TOOLS")
    if runner.name in _RUNNERS:
        raise ValueError(f"runner {runner.name!r} registered twice")
    _RUNNERS[runner.name] = runner


def _load() -> None:
    from backwatch.runners import borg, builtin, command, restic, rsync  # noqa: F401  (they register)


def runner_names() -> list[str]:
    _load()
    return list(_RUNNERS)


def runner_for(tool: str | None, job: str) -> ToolRunner:
    """The runner of ``tool`` (ConfigError naming the known tools if there is none)."""
    _load()
    runner = _RUNNERS.get(tool or "")
    if runner is None:
        known = ", ".join(_RUNNERS)
        what = f"tool {tool!r}" if tool else "no tool"
        raise ConfigError(
            f"job {job!r} has {what}; backwatch can run: {known} (set tool = … in its [[jobs]])"
        )
    return runner
