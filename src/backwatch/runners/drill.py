"""Restore drills: restore a sample of a job's latest backup and prove that it comes back
(docs/drills.md). Each tool's part is in ``runners.drill_tools``; here: the sample, the
private directory, the comparison, the lock, and the run a drill is recorded as.

A drill never writes outside its private temporary directory (removed afterwards, also
on failure and SIGTERM; one left by a killed drill is removed by the next), runs its tools
at low CPU and I/O priority, holds the job's repository lock, and never modifies a
repository: restic runs with ``--no-lock``, borg with ``--bypass-lock`` (the repository
lock backwatch holds keeps its own prune and backup away meanwhile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backwatch.domain.drill import (
    CHANGED_SINCE,
    DIFFERS,
    MISSING,
    OK,
    UNVERIFIED,
    Candidate,
    DrillResult,
    choose_sample,
)
from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.errors import BackwatchError
from backwatch.ids import new_run_id
from backwatch.runners import runner_for
from backwatch.runners.base import shell_argv
from backwatch.runners.drill_tools import (
    DrillProblem,
    ToolDrill,
    deadline,
    drill_for,
    hash_file,
    lower_priority,
)
from backwatch.services.locks import Locks, alive
from backwatch.settings import JobSettings, Settings
from backwatch.timeutil import parse_duration

DRILLS_DIR = "drills"
CHUNK = 1 << 20
#: how close a source file's mtime must be to the snapshot's to count as unchanged
MTIME_SLACK_S = 1e-3


def _unchanged(source: Path | None, size: int, mtime: float | None) -> bool | None:
    """Whether the live source still is what was backed up (None: no source to compare)."""
    if source is None or mtime is None:
        return None
    try:
        st = source.stat()
    except FileNotFoundError:
        return False  # deleted since
    except OSError:
        return None
    return st.st_size == size and abs(st.st_mtime - mtime) <= MTIME_SLACK_S


def run_drill(
    settings: Settings,
    job: JobSettings,
    *,
    files: int | None = None,
    max_bytes: int | None = None,
    seed: int | None = None,
) -> DrillResult:
    """Restore a sample of ``job``'s latest backup into a private directory and compare it."""
    opts = job.drill
    count = files if files is not None else (opts.files if opts else 20)
    limit = max_bytes if max_bytes is not None else (opts.max_bytes_value() if opts else None)
    always = list(opts.paths) if opts else []
    env = {**os.environ, **job.env}
    timeout = parse_duration(opts.timeout) if opts and opts.timeout else None
    deadline.at = time.monotonic() + timeout if timeout else None
    # a built-in job writes every snapshot to each destination: each is drilled, and each
    # gets an estimate of its own (its disk may be slower)
    several = job.tool == "builtin" and len(job.destinations) > 1
    dests = range(len(job.destinations)) if several else range(1)
    results = []
    for dest in dests:
        tool = drill_for(job, env, dest)
        results.append(_drill_one(settings, job, tool, count, limit, always, seed))
    result = results[0]
    if several:
        result.destinations = [
            {"destination": job.destinations[i], **r.summary()} for i, r in enumerate(results)
        ]
        failed = [i for i, r in enumerate(results) if r.status is RunStatus.FAILED]
        if failed and result.status is not RunStatus.FAILED:
            other = results[failed[0]]
            result.problem = f"destination {job.destinations[failed[0]]}: {other.message()}"
    return result


def _drill_one(
    settings: Settings,
    job: JobSettings,
    tool: ToolDrill,
    count: int,
    limit: int | None,
    always: list[str],
    seed: int | None,
) -> DrillResult:
    result = DrillResult(tool=job.tool or "?", self_checked=tool.self_checked)
    with private_dir(settings, job.id) as target:
        try:
            snapshot, size = tool.snapshot()
            result.snapshot, result.snapshot_bytes = snapshot, size
            listed = tool.files(snapshot)
            mtimes = {c.path: m for c, m in listed}
            sample = choose_sample(
                [c for c, _ in listed], count=count, max_bytes=limit, always=always, seed=seed
            )
            if not sample:
                return result
            chosen = {c.path for c in sample}
            extras = [c for c, _ in listed if c.path not in chosen]
            cap = calibration_cap(size, limit)
            sample = _restore_timed(tool, snapshot, sample, extras, cap, target, result)
            paths = [c.path for c in sample]
            restored = {c.path: tool.restored(target, c.path) for c in sample}
            for path in paths:
                if restored[path].is_file():
                    result.bytes_restored += restored[path].stat().st_size
            expected = tool.expected(snapshot, paths)
            for item in sample:
                _compare(tool, item, restored[item.path], expected, mtimes, result)
        except DrillProblem as exc:
            result.problem = str(exc)
        except BackwatchError as exc:  # the built-in engine's own words (a damaged manifest)
            result.problem = exc.message
    return result


#: the rate is measured on at least this much work beyond the fixed cost (seconds) …
CALIBRATE_MIN_S = 1.0
#: … restoring at most this share of the snapshot, and at most this much, to get it
CALIBRATE_SHARE = 0.25
CALIBRATE_MAX_BYTES = 1 << 30


def calibration_cap(snapshot_bytes: int | None, max_bytes: int | None) -> int:
    """How much a drill may restore in all to measure a meaningful rate."""
    cap = CALIBRATE_MAX_BYTES
    if snapshot_bytes:
        cap = min(cap, int(snapshot_bytes * CALIBRATE_SHARE))
    if max_bytes is not None:
        cap = min(cap, max_bytes)
    return cap


def _restore_timed(
    tool: ToolDrill,
    snapshot: str,
    sample: list[Candidate],
    extras: list[Candidate],
    cap: int,
    target: Path,
    result: DrillResult,
) -> list[Candidate]:
    """Restore ``sample`` and time it; answers every file restored.

    The smallest file goes alone first: its time is the fixed cost of any restore (the
    tool's start, the repository's keys and index). The rest is the bulk, whose time less
    that fixed cost gives the rate. A small backup restores so fast that the fixed cost
    would drown the rate, so while the bulk's work is under CALIBRATE_MIN_S (and twice the
    fixed cost), more of the snapshot's files are restored in doubling batches — largest
    first, within ``cap`` bytes in all — and compared like the sample.
    """
    first, *rest = sorted(sample, key=lambda c: (c.size, c.path))
    began = time.monotonic()
    tool.restore(snapshot, [first.path], target)
    fixed = result.fixed_seconds = time.monotonic() - began
    result.calls.append((first.size, fixed))
    restored = [first]
    budget = cap - sum(c.size for c in sample)
    pool = sorted(extras, key=lambda c: (-c.size, c.path))
    batch = rest
    while batch:
        batch_began = time.monotonic()
        tool.restore(snapshot, [c.path for c in batch], target)
        took = time.monotonic() - batch_began
        result.bulk_seconds = (result.bulk_seconds or 0.0) + took
        result.bulk_calls += 1
        result.bulk_bytes += sum(c.size for c in batch)
        result.calls.append((sum(c.size for c in batch), took))
        restored += batch
        working = result.bulk_seconds - fixed * result.bulk_calls
        if working >= max(CALIBRATE_MIN_S, 2 * fixed):
            break
        batch, keep, wanted = [], [], result.bulk_bytes  # twice what the bulk holds now
        for item in pool:
            if wanted > 0 and item.size <= budget:
                batch.append(item)
                wanted -= item.size
                budget -= item.size
            else:
                keep.append(item)
        pool = keep
    result.restore_seconds = time.monotonic() - began
    return restored


def _compare(
    tool: ToolDrill,
    item: Candidate,
    restored: Path,
    expected: dict[str, str],
    mtimes: dict[str, float | None],
    result: DrillResult,
) -> None:
    if not restored.is_file():
        result.files[item.path] = MISSING
        result.details[item.path] = "not restored"
        return
    got = hash_file(restored, tool.hash_name)
    size = restored.stat().st_size
    want = expected.get(item.path)
    if size != item.size or (want is not None and got != want):
        result.files[item.path] = DIFFERS
        result.details[item.path] = (
            f"{size} bytes, the snapshot says {item.size}"
            if size != item.size
            else f"{tool.hash_name} {got[:12]}…, the snapshot says {want[:12] if want else '?'}…"
        )
        return
    source = tool.source(item.path)
    unchanged = _unchanged(source, item.size, mtimes.get(item.path))
    if unchanged is False:
        result.files[item.path] = CHANGED_SINCE
        return
    if unchanged is None and not tool.self_checked:
        result.files[item.path] = UNVERIFIED  # nothing to compare the copy with
        return
    if unchanged and source is not None and hash_file(source, tool.hash_name) != got:
        result.files[item.path] = DIFFERS
        result.details[item.path] = "differs from the unchanged source file"
        return
    result.files[item.path] = OK


@contextlib.contextmanager
def private_dir(settings: Settings, job_id: str) -> Iterator[Path]:
    """``<data>/drills/<job>-<pid>-…`` (0700), removed afterwards; those of drills that
    were killed (their process is gone) are removed first."""
    parent = settings.data_dir / DRILLS_DIR
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_orphans(parent)
    path = Path(tempfile.mkdtemp(prefix=f"{job_id}-{os.getpid()}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_orphans(parent: Path) -> None:
    for child in parent.iterdir():
        parts = child.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and not alive(int(parts[1])):
            shutil.rmtree(child, ignore_errors=True)


def drill_job(
    settings: Settings,
    job: JobSettings,
    *,
    files: int | None = None,
    max_bytes: int | None = None,
    trigger: str = "manual",
    locks: Any = None,
) -> RunReport:
    """Drill ``job`` holding its repository lock (waiting for a backup or prune that holds
    it) and answer the run to record: kind ``drill``, its figures in ``stats.drill``."""

    started = time.time()
    run_id = new_run_id(started)
    names = []
    if job.tool:
        repo = runner_for(job.tool, job.id).repository(job)
        names = [f"repo:{repo}"] if repo else []
    held = (locks or Locks(settings.data_dir)).acquire(
        names, note={"job": job.id, "run_id": run_id, "drill": True}
    )
    try:
        if job.drill is not None and job.drill.command is not None:
            code, output = run_drill_command(job)
            status = RunStatus.SUCCESS if code == 0 else RunStatus.FAILED
            message = f"drill command exited with {code}"
            stats: dict[str, Any] = {"verify": "ok" if code == 0 else "failed"}
            log: str | None = output or None
            figures: dict[str, Any] = {"exit_code": max(-255, min(255, code))}
        else:
            result = run_drill(settings, job, files=files, max_bytes=max_bytes)
            status, message, stats, log = result.status, result.message(), result.stats(), None
            figures = {"files": len(result.files), "size_bytes": result.bytes_restored}
    finally:
        if held is not None:
            held.release()
    finished = time.time()
    return RunReport(
        job=job.id,
        status=status,
        started_at=started,
        finished_at=finished,
        duration_s=finished - started,
        id=run_id,
        message=message,
        log=log,
        tool=job.tool,
        stats=stats,
        source="runner",
        trigger=trigger,
        kind="drill",
        **figures,
    )


def run_drill_command(job: JobSettings) -> tuple[int, str]:
    """A user-given drill command (``[jobs.drill] command``): (exit code, output tail)."""
    assert job.drill is not None and job.drill.command is not None
    env = {**os.environ, **job.env}
    proc = subprocess.run(
        shell_argv(job.drill.command), env=env, capture_output=True, text=True,
        preexec_fn=lower_priority,
    )  # fmt: skip
    return proc.returncode, (proc.stdout + proc.stderr)[-4000:]


__all__ = [
    "DIFFERS", "OK", "DrillProblem", "drill_for", "drill_job", "run_drill", "run_drill_command",
]  # fmt: skip
