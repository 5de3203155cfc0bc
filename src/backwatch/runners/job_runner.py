"""Running one job: take its locks, run its steps as phases, record one run.

    queued (waiting for a lock or a run slot) → running → success | warning | failed |
    timed_out | cancelled

Each step is a phase, recorded live (start, then end with its status). The backup step's
output becomes the run's figures through the ingest parser of its tool; a failed check
marks ``stats["verify"] = "failed"`` so the ``verify_failed`` alert fires. The first failed
step stops the run; failure hooks still run. ``timeout`` covers the whole run: when it is up
the running command's process group is killed and the run ends ``timed_out``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backwatch.domain.lifecycle import RunStatus, exit_code
from backwatch.errors import BackwatchError
from backwatch.ids import new_run_id
from backwatch.ingest.tools import parse_tool_output
from backwatch.masking import job_secrets
from backwatch.runners.base import BACKUP, CHECK, Outcome, RunContext, Step
from backwatch.runners.process import Finished, Masker, Tail, run_process
from backwatch.runners.progress import READERS, Progress
from backwatch.runners.record import Recorder
from backwatch.runners.steps import actions_of, build_steps, lock_names
from backwatch.services.locks import Busy, Locks
from backwatch.services.orphans import RUN_ENV
from backwatch.timeutil import parse_duration

if TYPE_CHECKING:
    from backwatch.domain.report import RunReport

_RANK = {RunStatus.SUCCESS: 0, RunStatus.WARNING: 1, RunStatus.UNKNOWN: 2, RunStatus.FAILED: 3}
#: a step with this outcome ends the run: nothing is pruned after a backup not known to exist
_STOPS = (RunStatus.FAILED, RunStatus.UNKNOWN)
EXIT_BUSY = 75


class Watcher:
    """What a runner tells whoever watches it (the CLI's progress bar, a log). No-ops here."""

    def waiting(self, reason: str) -> None:
        pass

    def step_started(self, step: Step, shown: str) -> None:
        pass

    def progress(self, step: Step, progress: Progress) -> None:
        pass

    def output(self, step: Step, line: str) -> None:
        pass

    def step_finished(self, step: Step, outcome: Outcome, duration_s: float) -> None:
        pass

    def prepare(self) -> None:
        """Called while a command runs: load what showing its end will need."""


@dataclass
class RunResult:
    run_id: str
    status: RunStatus
    message: str
    exit_code: int | None
    fields: dict[str, Any] = field(default_factory=dict)
    #: the run as stored (with phases and events), when the recorder read it back
    record: dict[str, Any] | None = None
    #: from the run's start (queued or running) to its end
    duration_s: float | None = None

    @property
    def process_exit(self) -> int:
        return exit_code(self.status)


class JobRunner:
    def __init__(
        self,
        ctx: RunContext,
        recorder: Recorder,
        locks: Locks,
        *,
        watcher: Watcher | None = None,
        trigger: str = "manual",
        run_id: str | None = None,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.job = ctx.job
        self.recorder = recorder
        self.locks = locks
        self.watcher = watcher or Watcher()
        self.trigger = trigger
        self.clock = clock
        #: when the run was recorded as started (queued or running)
        self._started_at: float | None = None
        self.run_id = run_id or new_run_id(clock())
        self.cancel = cancel or threading.Event()
        self.steps, self.after_steps, self.failure_steps = build_steps(ctx)
        self.env = {**os.environ, **self.job.env}
        self.mask = Masker.for_env(self.env, [*self._file_secrets()])
        self.timeout_s = parse_duration(self.job.timeout) if self.job.timeout else None
        #: why a tool's output could not be read (its exit code decided the step then)
        self._parse_problem: str | None = None
        #: a run that only checks the repository is a check, not the job's latest backup
        actions = actions_of(self.job)
        self.kind = "check" if CHECK in actions and BACKUP not in actions else "backup"

    def _file_secrets(self) -> list[str]:
        """Secrets given in the job's settings (its env, its password or passphrase
        command) never reach a log or the --dry-run listing."""
        return job_secrets(self.job)

    def shown(self, step: Step) -> str:
        """The command line as it may be printed or logged: secrets masked."""
        return self.mask(step.shell_line())

    def describe(self) -> list[str]:
        """--dry-run: every command this run would start, in order, secrets masked."""
        out = []
        for step in self.steps:
            line = f"[{step.phase}] {self.shown(step)}"
            if step.stdout_path is not None:
                line += f" > {step.stdout_path}"
            out.append(line)
        for step in self.after_steps:
            out.append(f"[{step.phase}, after a good run] {self.shown(step)}")
        for step in self.failure_steps:
            out.append(f"[{step.phase}, after a failed run] {self.shown(step)}")
        env = {k: self.mask(v) if k in self.job.env else None for k, v in self.job.env.items()}
        for key, value in env.items():
            out.append(f"[env] {key}={value}")
        return out

    # --- the run -----------------------------------------------------------------------

    def run(self) -> RunResult:
        names = lock_names(self.ctx)
        refuse = {f"job:{self.job.id}"} if self.job.on_busy == "refuse" else set()
        # timeout_s: a runner that takes over from a dead one knows when it may stop the
        # dead run's command (services/locks.py)
        note = {"job": self.job.id, "run_id": self.run_id, "timeout_s": self.timeout_s}
        self.locks.on_stale = self.recorder.stale_lock
        started = False

        def on_wait(reason: str) -> None:
            nonlocal started
            self.watcher.waiting(reason)
            self._started_at = self.clock()
            self.recorder.start(
                self.run_id,
                self.job.id,
                self.job.tool,
                RunStatus.QUEUED,
                self.trigger,
                f"waiting: {reason}",
                at=self._started_at,
                kind=self.kind,
            )
            started = True

        held = self.locks.acquire(
            names, note=note, refuse=refuse, on_wait=on_wait, cancel=self.cancel
        )
        if held is None:
            return self._finish(
                RunStatus.CANCELLED,
                "cancelled while waiting for a lock",
                None,
                {},
                Tail(),
                started=True,
            )
        with held:
            if started:
                self.recorder.status(self.run_id, RunStatus.RUNNING, "running", at=self.clock())
            else:
                self._started_at = self.clock()
                self.recorder.start(
                    self.run_id,
                    self.job.id,
                    self.job.tool,
                    RunStatus.RUNNING,
                    self.trigger,
                    None,
                    at=self._started_at,
                    kind=self.kind,
                )
            return self._run_steps()

    def _run_steps(self) -> RunResult:
        log = Tail()
        deadline = time.monotonic() + self.timeout_s if self.timeout_s else None
        status = RunStatus.SUCCESS
        message = ""
        exit_code: int | None = None
        fields: dict[str, Any] = {}
        stats: dict[str, Any] = {}
        final: RunStatus | None = None
        skipped = False
        for step in self.steps:
            finished, outcome, report = self._run_step(step, log, deadline)
            if step.kind == BACKUP or exit_code is None or outcome.status is not RunStatus.SUCCESS:
                exit_code = finished.code
            if report is not None:
                self._figures(step, report, fields)
                # the tool found nothing to back up (the built-in engine, unchanged trees)
                skipped = skipped or (report.status is RunStatus.SKIPPED and step.kind == BACKUP)
            if step.verifies and outcome.status is not RunStatus.UNKNOWN:
                stats["verify"] = "ok" if outcome.status is not RunStatus.FAILED else "failed"
            if finished.timed_out:
                final = RunStatus.TIMED_OUT
                message = f"{step.phase}: killed after the {self.job.timeout} timeout"
                break
            if finished.cancelled or outcome.status is RunStatus.CANCELLED:
                final = RunStatus.CANCELLED
                message = f"{step.phase}: {outcome.message or 'cancelled'}"
                break
            if _RANK[outcome.status] > _RANK[status]:
                status = outcome.status
                message = f"{step.phase}: {outcome.message}" if outcome.message else message
            elif not message and step.kind in (BACKUP, CHECK) and outcome.message:
                message = outcome.message
            if outcome.status in _STOPS:
                break
        result = final or status
        if result is RunStatus.SUCCESS and skipped:
            result = RunStatus.SKIPPED
        if result in (RunStatus.SUCCESS, RunStatus.WARNING, RunStatus.SKIPPED):
            for step in self.after_steps:
                finished, outcome, _ = self._run_step(step, log, deadline)
                if outcome.status is not RunStatus.SUCCESS:
                    good = result in (RunStatus.SUCCESS, RunStatus.SKIPPED)
                    result = RunStatus.WARNING if good else result
                    message = message or f"{step.phase}: {outcome.message}"
        else:
            for step in self.failure_steps:
                self._run_step(step, log, None)
        if not message:
            names = ", ".join(step.phase for step in self.steps)
            message = f"done: {names}" if result is RunStatus.SUCCESS else result.value
        if self._parse_problem:
            stats["parse_problem"] = self._parse_problem
        if stats:
            fields["stats"] = {**fields.get("stats", {}), **stats}
        return self._finish(result, message, exit_code, fields, log)

    def _run_step(
        self, step: Step, log: Tail, deadline: float | None
    ) -> tuple[Finished, Outcome, RunReport | None]:
        """Run one step; answers how it ended, what that means and, for a step whose
        output is a tool's report (``parse_as``), the run that output describes: the
        tool's outcome contract (ingest/tools) decides the step's status then."""
        shown = self.shown(step)
        log.add(f"$ {shown}" + (f" > {step.stdout_path}" if step.stdout_path else ""))
        self.watcher.step_started(step, shown)
        self.recorder.phase(self.run_id, step.phase, "start", self.clock())
        remaining = None
        if deadline is not None:
            remaining = max(0.01, deadline - time.monotonic())
        finished = self._execute(step, remaining)
        if finished.output:
            log.add(finished.output)
        report: RunReport | None = None
        if finished.timed_out:
            outcome = Outcome(RunStatus.FAILED, "timed out")
            phase_status = RunStatus.TIMED_OUT.value
        elif finished.cancelled:
            outcome = Outcome(RunStatus.FAILED, "cancelled")
            phase_status = RunStatus.CANCELLED.value
        else:
            report = self._parse(step, finished)
            if report is not None:
                outcome = step.interpret(finished.code, finished.output)
                if report.status is not RunStatus.SKIPPED:
                    outcome = Outcome(report.status, report.message or outcome.message)
            else:
                outcome = step.interpret(finished.code, finished.output)
            outcome = self._check_dump(step, outcome)
            phase_status = outcome.status.value
        self.recorder.phase(self.run_id, step.phase, "end", self.clock(), phase_status)
        self.watcher.step_finished(step, outcome, finished.duration_s)
        return finished, outcome, report

    def _while_running(self, step: Step) -> None:
        """Work that should delay neither the command's start nor its end."""
        self.recorder.begin()
        self.watcher.prepare()

    def _execute(self, step: Step, timeout_s: float | None) -> Finished:
        reader = READERS.get(step.progress or "")
        counts = self._file_counts = {"A": 0, "M": 0, "E": 0}

        def on_line(stream: str, line: str) -> bool:
            if step.progress == "borg" and '"type": "file_status"' in line:
                status = line.split('"status": "', 1)[-1][:1]
                counts[status] = counts.get(status, 0) + 1
                return status != "E"  # errors stay in the log
            if reader is not None:
                progress = reader(line)
                if progress is not None:
                    self.watcher.progress(step, progress)
                    return True
            self.watcher.output(step, self.mask(line))
            return False

        # the run id marks every process of the run: should this runner die, the next one
        # finds the commands it left running (services/orphans.py)
        env = {**self.env, **step.env, RUN_ENV: self.run_id}
        if step.stdout_path is None:
            return run_process(
                step.argv,
                env=env,
                timeout_s=timeout_s,
                on_line=on_line,
                mask=self.mask,
                cancel=self.cancel,
                while_running=lambda: self._while_running(step),
            )
        path = step.stdout_path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as out:
            finished = run_process(
                step.argv,
                env=env,
                timeout_s=timeout_s,
                on_line=on_line,
                mask=self.mask,
                stdout_to=out,
                cancel=self.cancel,
                while_running=lambda: self._while_running(step),
            )
            out.flush()
            os.fsync(out.fileno())
        if finished.code == 0 and not (finished.timed_out or finished.cancelled):
            os.replace(partial, path)
        else:
            partial.unlink(missing_ok=True)
        return finished

    def _check_dump(self, step: Step, outcome: Outcome) -> Outcome:
        """A dump that exits 0 but wrote nothing is not a dump."""
        path = step.stdout_path or step.writes_path
        if path is None or outcome.status is RunStatus.FAILED:
            return outcome
        try:
            size = path.stat().st_size
        except OSError:
            return Outcome(RunStatus.FAILED, f"the dump file {path} was not written")
        if size == 0:
            return Outcome(RunStatus.FAILED, f"the dump file {path} is empty")
        return outcome

    def _parse(self, step: Step, finished: Finished) -> RunReport | None:
        """The run the step's output describes, by its tool's parser (None when the step
        has none, or its output could not be read: the exit code decides then)."""
        if not step.parse_as:
            return None
        try:
            return parse_tool_output(
                step.parse_as, finished.output, job=self.job.id, exit_code=finished.code
            )
        except BackwatchError as exc:
            self._parse_problem = exc.message[:300]
            return None

    def _figures(self, step: Step, report: RunReport, fields: dict[str, Any]) -> None:
        """The tool's own figures (files, sizes, new/changed) from its output."""
        for name in ("size_bytes", "files", "files_new", "files_changed", "bytes_added"):
            value = getattr(report, name)
            if value is not None:
                fields[name] = value
        saved = report.files is not None or report.size_bytes is not None
        counted = report.stats is not None and "files_stats" in report.stats  # borg 2.0
        if step.progress == "borg" and saved and not counted:
            # --log-json file_status lines were counted as they came (not kept in the log)
            fields["files_new"] = self._file_counts.get("A", 0)
            fields["files_changed"] = self._file_counts.get("M", 0)
        if report.stats:
            fields["stats"] = dict(report.stats)

    def _finish(
        self,
        status: RunStatus,
        message: str,
        exit_code: int | None,
        fields: dict[str, Any],
        log: Tail,
        *,
        started: bool = True,
    ) -> RunResult:
        fields = {**fields, "message": message[:4096]}
        if exit_code is not None:
            fields["exit_code"] = max(-255, min(255, exit_code))
        at = self.clock()
        record = self.recorder.finish(
            self.run_id, status, fields, log.text() or None, self.trigger, at=at
        )
        took = None if self._started_at is None else max(0.0, at - self._started_at)
        return RunResult(self.run_id, status, message, exit_code, fields, record, took)


__all__ = ["EXIT_BUSY", "Busy", "JobRunner", "RunResult", "Watcher"]
