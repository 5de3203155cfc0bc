"""What ``backwatch run`` shows while a job runs: a rich progress bar per step with
percentage, rate and ETA, one line per finished step, and with ``--verbose`` every command
and the tools' own output. Everything goes to stderr; stdout stays for ``--json``."""

from __future__ import annotations

import os
import sys
from typing import Any

from backwatch.domain.lifecycle import RunStatus
from backwatch.runners.base import Outcome, Step
from backwatch.runners.job_runner import RunResult, Watcher
from backwatch.runners.progress import Progress
from backwatch.timeutil import human_bytes, human_duration

_MARK = {
    RunStatus.SUCCESS: ("✓", "green"),
    RunStatus.WARNING: ("!", "yellow"),
    RunStatus.FAILED: ("✗", "red"),
}
#: a piece of a line: plain text, or (text, rich style)
Part = str | tuple[str, str]


class ProgressWatcher(Watcher):
    """``console``: a rich Console; None for one on stderr when stderr is a terminal (or
    FORCE_COLOR is set), and plain lines otherwise.

    Cron, systemd and pipes get no bar, only the step lines and the summary, which need no
    colours: rich is not loaded at all (its 0.1–0.2 s of CPU would be taken from the tool,
    which runs meanwhile). On a terminal the bar is there from the first step.
    """

    def __init__(self, console: Any = None, *, verbose: bool = False, quiet: bool = False) -> None:
        self._console = console
        self.verbose = verbose
        self.quiet = quiet
        #: rich draws the lines (and the bar); otherwise they are written as plain text
        self.rich = console is not None or _interactive()
        self._bar: Any = None
        self._started = False  # inside ``with``: a bar made later starts at once
        self.task: Any = None
        if not quiet and self.rich:
            self.prepare()

    def prepare(self) -> None:
        """Load rich and build the console and the bar (once), when lines go through rich."""
        if self._bar is not None or not self.rich:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as Bar,
        )

        console = self.console
        self._bar = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=self.quiet or not console.is_terminal,
        )
        if self._started:
            self._bar.start()

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            # one line per message: logs (cron, journald) are not cut at 80 columns; a
            # tool's ":name:" stays as written (and no emoji table loads)
            self._console = Console(stderr=True, soft_wrap=True, emoji=False)
        return self._console

    @property
    def bar(self) -> Any:
        self.prepare()
        return self._bar

    def __enter__(self) -> ProgressWatcher:
        self._started = True
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._started = False
        if self._bar is not None:
            self._bar.stop()

    def _say(self, *parts: Part) -> None:
        """One line on stderr: styled by rich, or the plain text of its parts."""
        if self.quiet:
            return
        if self.rich:
            from rich.text import Text

            self.console.print(Text.assemble(*parts), highlight=False)
            return
        sys.stderr.write("".join(p if isinstance(p, str) else p[0] for p in parts) + "\n")
        sys.stderr.flush()

    def waiting(self, reason: str) -> None:
        self._say(("queued", "yellow"), f": waiting because {reason}")

    def step_started(self, step: Step, shown: str) -> None:
        if self.verbose:
            self._say((f"$ {shown}", "dim"))
        if self._bar is not None:  # a bar made later has no task and shows nothing
            self.task = self._bar.add_task(step.phase, total=None)

    def progress(self, step: Step, progress: Progress) -> None:
        if self.task is None:
            return
        total = progress.total_bytes
        if total is None and progress.fraction is not None and progress.done_bytes:
            total = int(progress.done_bytes / max(progress.fraction, 1e-9))
        if progress.done_bytes is None and progress.fraction is not None:
            self.bar.update(self.task, total=100, completed=progress.fraction * 100)
            return
        self.bar.update(self.task, total=total, completed=progress.done_bytes or 0)

    def output(self, step: Step, line: str) -> None:
        if self.verbose:
            self._say(line)

    def step_finished(self, step: Step, outcome: Outcome, duration_s: float) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        mark = _MARK.get(outcome.status, ("•", ""))
        note = f" — {outcome.message}" if outcome.message else ""
        self._say("  ", mark, f" {step.phase} {human_duration(duration_s)}{note}")

    def summary(self, job: str, result: RunResult, record: dict[str, Any] | None) -> None:
        colour = {"success": "green", "warning": "yellow"}.get(result.status.value, "red")
        rec = record or {**result.fields, "duration_s": result.duration_s}
        figures = []
        if rec.get("files") is not None:
            figures.append(f"{rec['files']} files")
        if rec.get("size_bytes") is not None:
            figures.append(human_bytes(rec["size_bytes"]))
        if rec.get("bytes_added") is not None:
            figures.append(f"{human_bytes(rec['bytes_added'])} added")
        took = f" in {human_duration(rec['duration_s'])}" if rec.get("duration_s") else ""
        extra = f" ({', '.join(figures)})" if figures else ""
        self._say(
            (job, "bold"),
            ": ",
            (result.status.value, colour),
            f"{took}{extra} — {result.message}  ",
            (f"run {result.run_id}", "dim"),
        )


def _interactive() -> bool:
    """Whether rich may draw a bar on stderr: a terminal, or a forced one."""

    forced = os.environ.get("FORCE_COLOR") or os.environ.get("TTY_INTERACTIVE")
    return bool(forced) or sys.stderr.isatty()
