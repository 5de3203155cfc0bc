"""Any command: ``command`` (one ``backup`` phase) or ``phases`` (named commands in order).

Exit code 0 is success, anything else failed.
"""

from __future__ import annotations

from backwatch.runners import register_runner
from backwatch.runners.base import BACKUP, RunContext, Step, by_exit_code, shell_argv
from backwatch.settings import JobSettings


class CommandRunner:
    name = "command"
    actions: tuple[str, ...] = (BACKUP,)

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        job = ctx.job
        if BACKUP not in actions:
            return []
        interpret = by_exit_code("the command")
        if job.command is not None:
            return [Step("backup", BACKUP, shell_argv(job.command), interpret)]
        return [Step(p.name, BACKUP, shell_argv(p.command), interpret) for p in job.phases]

    def repository(self, job: JobSettings) -> str | None:
        return None

    def disk_paths(self, job: JobSettings) -> list[str]:
        return []


register_runner(CommandRunner())
