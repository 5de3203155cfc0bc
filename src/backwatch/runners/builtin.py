"""The built-in snapshot engine (``tool = "builtin"``, docs/engine.md).

Each action runs the engine's own command as a child process, so ``backwatch run`` treats
it like any tool (timeout, cancel, log): ``backup`` (figures from its ``--json``
summary), ``prune`` (``forget`` with ``[jobs.retention]``) and ``check`` (``verify``,
sampled by ``[jobs.verify] read_data_subset``). The job's dump phases run first and their
files land in the snapshot under ``_dumps/``.
"""

from __future__ import annotations

import sys

import backwatch.ingest.tools.builtin  # noqa: F401  (the parser of the backup's summary)
from backwatch.domain.lifecycle import RunStatus
from backwatch.errors import ConfigError
from backwatch.runners import register_runner
from backwatch.runners.base import (
    BACKUP,
    CHECK,
    PRUNE,
    Outcome,
    RunContext,
    Step,
    by_exit_code,
    local_path,
)
from backwatch.settings import JobSettings

#: ``backwatch backup`` exits 3 for a warning (a destination failed, a file changed)
WARNING = 3


def _interpret_backup(code: int, output: str) -> Outcome:
    if code == WARNING:
        return Outcome(RunStatus.WARNING, "some destinations or files had problems")
    return by_exit_code("backwatch backup")(code, output)


class BuiltinRunner:
    name = "builtin"
    actions: tuple[str, ...] = (BACKUP, PRUNE, CHECK)

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        job = ctx.job
        if job.builtin is None or not job.destinations:
            raise ConfigError(
                f"job {job.id!r}: tool = 'builtin' needs a [jobs.builtin] table with its "
                "paths and the job's destinations = [...]"
            )
        steps = []
        if BACKUP in actions:
            argv = [*self._command(ctx, "backup"), job.id, "--no-record", "--json"]
            # restic-shaped status lines on stderr (cli.engine_run.StatusLines)
            steps.append(
                Step(
                    "backup",
                    BACKUP,
                    argv,
                    _interpret_backup,
                    env={"BACKWATCH_PROGRESS": "json"},
                    parse_as="builtin",
                    progress="builtin",
                )
            )
        if PRUNE in actions and job.retention is not None:
            argv = [*self._command(ctx, "forget"), "--job", job.id]
            steps.append(Step("prune", PRUNE, argv, by_exit_code("backwatch forget")))
        if CHECK in actions:
            argv = [*self._command(ctx, "verify"), "--job", job.id]
            if job.verify is not None and job.verify.read_data_subset:
                argv += ["--sample", job.verify.read_data_subset]
            check = Step("check", CHECK, argv, by_exit_code("backwatch verify"), verifies=True)
            steps.append(check)
        return steps

    def _command(self, ctx: RunContext, verb: str) -> list[str]:
        """This backwatch, with the same config file and data directory."""
        argv = [sys.executable, "-m", "backwatch", verb]
        if ctx.settings.config_path is not None:
            argv += ["--config", str(ctx.settings.config_path)]
        return [*argv, "--data-dir", str(ctx.settings.data_dir)]

    def repository(self, job: JobSettings) -> str | None:
        return "builtin:" + ",".join(job.destinations) if job.destinations else None

    def disk_paths(self, job: JobSettings) -> list[str]:
        return [p for p in (local_path(d) for d in job.destinations) if p]


register_runner(BuiltinRunner())
