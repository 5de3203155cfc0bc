"""A job's settings → the ordered steps of one run: hooks, dumps, the tool's actions."""

from __future__ import annotations

from backwatch.runners import runner_for
from backwatch.runners.base import DUMP, HOOK, RunContext, Step, by_exit_code, shell_argv
from backwatch.runners.dumps import dump_step
from backwatch.settings import Command, JobSettings


def actions_of(job: JobSettings) -> list[str]:
    """What a run of ``job`` does: its ``actions``, or all that are configured."""
    if job.actions is not None:
        return list(job.actions)
    out = [DUMP] if job.dumps else []
    out.append("backup")
    if job.retention is not None:
        out.append("prune")
    if job.verify is not None:
        out.append("check")
    return out


def _hooks(commands: list[Command], phase: str, *, on_failure: bool = False) -> list[Step]:
    """One phase per hook command: ``before``, or ``before-1``, ``before-2`` … for several."""
    return [
        Step(
            phase if len(commands) == 1 else f"{phase}-{i + 1}",
            HOOK,
            shell_argv(c),
            by_exit_code(f"the {phase} hook"),
            on_failure=on_failure,
        )
        for i, c in enumerate(commands)
    ]


def build_steps(ctx: RunContext) -> tuple[list[Step], list[Step], list[Step]]:
    """(main steps, steps after a good run, steps after a failed one)."""
    job = ctx.job
    runner = runner_for(job.tool, job.id)
    actions = actions_of(job)
    steps = _hooks(job.hooks.before, "before")
    if DUMP in actions:
        steps += [dump_step(ctx, d) for d in job.dumps]
    steps += runner.steps(ctx, actions)
    after = _hooks(job.hooks.after, "after")
    failure = _hooks(job.hooks.failure, "failure", on_failure=True)
    return steps, after, failure


def lock_names(ctx: RunContext) -> list[str]:
    """The locks a run of this job holds: its own, its repository's, its group's."""
    job = ctx.job
    names = [f"job:{job.id}"]
    repo = runner_for(job.tool, job.id).repository(job)
    if repo:
        names.append(f"repo:{repo}")
    if job.concurrency_group:
        names.append(f"group:{job.concurrency_group}")
    return names
