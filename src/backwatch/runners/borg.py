"""borg: ``create --json``, ``prune`` + ``compact`` (retention) and ``check`` (verify).

Exit codes: 0 success, 1 warning (and 100–127 with borg 1.4's codes), else an error.
"""

from __future__ import annotations

import shlex

from backwatch.domain.lifecycle import RunStatus
from backwatch.ingest.tools import borg as borg_output
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
from backwatch.runners.restic import retention_args as restic_style
from backwatch.settings import BorgOptions, JobSettings

_PASSPHRASE_HINT = "check [jobs.borg] passphrase_file / passphrase_command"


def explain(code: int, output: str) -> Outcome:
    """borg's exit code (and its words) → a clear outcome, for the steps whose output is no
    report (``prune``, ``compact``, and the backup when its output cannot be read)."""
    if code == 0:
        return Outcome(RunStatus.SUCCESS)
    last = last_line(output)
    if borg_output.status_for_exit(code) is RunStatus.WARNING:
        return Outcome(RunStatus.WARNING, f"borg finished with warnings (rc {code}): {last}")
    lower = output.lower()
    if code == 52 or ("passphrase" in lower and ("incorrect" in lower or "wrong" in lower)):
        return Outcome(RunStatus.FAILED, f"borg: wrong passphrase (rc {code}); {_PASSPHRASE_HINT}")
    if code == 13 or ("does not exist" in lower and "repository" in lower):
        return Outcome(
            RunStatus.FAILED,
            f"borg: the repository does not exist (rc {code}); check [jobs.borg] repository, "
            "or `borg init` it",
        )
    if code == 73 or "failed to create/acquire the lock" in lower or "lock.exclusive" in lower:
        return Outcome(RunStatus.FAILED, f"borg: the repository is locked (rc {code}): {last}")
    return Outcome(RunStatus.FAILED, f"borg failed (rc {code}): {last or 'no output'}")


def check(code: int, output: str) -> Outcome:
    """``borg check``: errors found fail the verification whatever the exit code (borg 1.x
    exits 1, its "warning", when it finds corruption; docs/tool-output.md)."""
    verdict = borg_output.check_verdict(code, output)
    return Outcome(verdict.status, verdict.message)


def _env(opts: BorgOptions) -> dict[str, str]:
    env = {"BORG_RELOCATED_REPO_ACCESS_IS_OK": "no"}
    if opts.passphrase_file:
        env["BORG_PASSCOMMAND"] = f"cat {shlex.quote(opts.passphrase_file)}"
    if opts.passphrase_command:
        env["BORG_PASSCOMMAND"] = opts.passphrase_command
    return env


def retention_args(job: JobSettings) -> list[str]:
    # the same flags: --keep-last … --keep-within (borg 1.2 knows --keep-last too)
    return restic_style(job)


class BorgRunner:
    name = "borg"
    actions: tuple[str, ...] = (BACKUP, PRUNE, CHECK)

    def steps(self, ctx: RunContext, actions: list[str]) -> list[Step]:
        job = ctx.job
        opts = job.borg
        assert opts is not None
        env = _env(opts)
        base = [opts.binary, *opts.extra_args]
        out: list[Step] = []
        if BACKUP in actions:
            argv = [*base, "create", "--json", "--progress", "--log-json", "--list", "--filter=AME"]
            if opts.compression:
                argv += ["--compression", opts.compression]
            for pattern in opts.exclude:
                argv += ["--exclude", pattern]
            argv += [*opts.create_args, f"{opts.repository}::{opts.archive_name}"]
            argv += [*opts.paths, *ctx.dump_paths()]
            out.append(
                Step("backup", BACKUP, argv, explain, env=env, parse_as="borg", progress="borg")
            )
        if PRUNE in actions and job.retention is not None:
            argv = [*base, "prune", "--list", *retention_args(job), opts.repository]
            out.append(Step("prune", PRUNE, argv, explain, env=env))
            if opts.compact:
                out.append(
                    Step("compact", PRUNE, [*base, "compact", opts.repository], explain, env=env)
                )
        if CHECK in actions and job.verify is not None:
            argv = [*base, "check"]
            if job.verify.read_data_subset:
                argv.append("--verify-data")
            argv += [*job.verify.extra_args, opts.repository]
            out.append(Step("check", CHECK, argv, check, env=env, verifies=True))
        return out

    def repository(self, job: JobSettings) -> str | None:
        return f"borg:{job.borg.repository}" if job.borg else None

    def disk_paths(self, job: JobSettings) -> list[str]:
        path = local_path(job.borg.repository) if job.borg else None
        return [path] if path else []


register_runner(BorgRunner())
