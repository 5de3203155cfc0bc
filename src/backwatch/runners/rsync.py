"""rsync: one ``rsync -a --stats --info=progress2`` to the destination.

Exit codes: 0 success, 24 (source files vanished during the transfer) warning, else failed.
"""

from __future__ import annotations

from backwatch.runners import register_runner
from backwatch.runners.base import BACKUP, RunContext, Step, by_exit_code, local_path
from backwatch.settings import JobSettings

VANISHED = 24


class RsyncRunner:
    name = "rsync"
    actions: tuple[str, ...] = (BACKUP,)

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        opts = ctx.job.rsync
        assert opts is not None
        if BACKUP not in actions:
            return []
        argv = [opts.binary, "-a", "--stats", "--info=progress2", "--no-inc-recursive"]
        if opts.delete:
            argv.append("--delete")
        for pattern in opts.exclude:
            argv += ["--exclude", pattern]
        argv += [*opts.extra_args, *opts.paths, *ctx.dump_paths(), opts.destination]
        interpret = by_exit_code("rsync", warning_codes=(VANISHED,))
        return [Step("backup", BACKUP, argv, interpret, parse_as="rsync", progress="rsync")]

    def repository(self, job: JobSettings) -> str | None:
        return f"rsync:{job.rsync.destination}" if job.rsync else None

    def disk_paths(self, job: JobSettings) -> list[str]:
        path = local_path(job.rsync.destination) if job.rsync else None
        return [path] if path else []


register_runner(RsyncRunner())
