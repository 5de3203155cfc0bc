"""restic: ``backup --json``, ``forget --prune`` (retention) and ``check`` (verify).

restic 0.17+ exits 10 (no repository), 11 (locked) and 12 (wrong password); older
versions exit 1 with the same reason on stderr, so both are read.
"""

from __future__ import annotations

from backwatch.domain.lifecycle import RunStatus
from backwatch.ingest.tools import restic as restic_output
from backwatch.runners import register_runner
from backwatch.runners.base import (
    BACKUP,
    CHECK,
    PRUNE,
    Outcome,
    RunContext,
    Step,
    last_line,
    local_path,
)
from backwatch.settings import JobSettings, ResticOptions

#: what every restic the runner starts gets: ``--json`` prints 60 status lines a second by
#: default, and two are plenty for a progress bar (the benchmark gives plain restic the same)
STATUS_ENV = {"RESTIC_PROGRESS_FPS": "2"}
#: exit code → the hint that fixes it, in the job's own settings
HINTS = {
    10: "check [jobs.restic] repository, or `restic init` it",
    11: "wait, or `restic unlock` if stale",
    12: "check [jobs.restic] password_file / password_command",
}


def explain(code: int, output: str) -> Outcome:
    """restic's exit code (and, for versions before 0.17, its ``Fatal:`` text) → a clear
    outcome, for the steps whose output is no report (``forget``, and the backup when its
    output cannot be read)."""
    if code == 0:
        return Outcome(RunStatus.SUCCESS)
    if code == restic_output.PARTIAL:
        return Outcome(RunStatus.WARNING, "snapshot saved, but some files could not be read")
    known = code if code in HINTS else restic_output.code_from_text(output)
    if known in HINTS:
        what = restic_output.meaning(known)
        return Outcome(RunStatus.FAILED, f"restic: {what} (exit code {code}); {HINTS[known]}")
    last = last_line(output)
    return Outcome(RunStatus.FAILED, f"restic exited with code {code}: {last or 'no output'}")


def check(code: int, output: str) -> Outcome:
    """``restic check``: any error it reports fails the verification (docs/tool-output.md)."""
    verdict = restic_output.check_verdict(code, output)
    return Outcome(verdict.status, verdict.message)


def _base(opts: ResticOptions) -> list[str]:
    argv = [opts.binary, "--repo", opts.repository]
    if opts.password_file:
        argv += ["--password-file", opts.password_file]
    if opts.password_command:
        argv += ["--password-command", opts.password_command]
    return argv + list(opts.extra_args)


def retention_args(job: JobSettings) -> list[str]:
    """``[jobs.retention]`` as flags: each ``keep_x`` is restic's (and borg's) ``--keep-x``."""
    assert job.retention is not None
    args: list[str] = []
    for key, value in job.retention.model_dump(exclude_none=True).items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args


class ResticRunner:
    name = "restic"
    actions: tuple[str, ...] = (BACKUP, PRUNE, CHECK)

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        job = ctx.job
        opts = job.restic
        assert opts is not None
        base = _base(opts)
        env = dict(STATUS_ENV)
        out: list[Step] = []
        if BACKUP in actions:
            argv = [*base, "backup", "--json", "--host", ctx.hostname]
            for pattern in opts.exclude:
                argv += ["--exclude", pattern]
            argv += [*opts.backup_args, "--", *opts.paths, *ctx.dump_paths()]
            out.append(
                Step("backup", BACKUP, argv, explain, env=env, parse_as="restic", progress="restic")
            )
        if PRUNE in actions and job.retention is not None:
            argv = [*base, "forget", "--prune", "--host", ctx.hostname, *retention_args(job)]
            out.append(Step("prune", PRUNE, argv, explain, env=env))
        if CHECK in actions and job.verify is not None:
            argv = [*base, "check"]
            if job.verify.read_data_subset:
                argv += ["--read-data-subset", job.verify.read_data_subset]
            argv += job.verify.extra_args
            out.append(Step("check", CHECK, argv, check, env=env, verifies=True))
        return out

    def repository(self, job: JobSettings) -> str | None:
        return f"restic:{job.restic.repository}" if job.restic else None

    def disk_paths(self, job: JobSettings) -> list[str]:
        path = local_path(job.restic.repository) if job.restic else None
        return [path] if path else []


register_runner(ResticRunner())
