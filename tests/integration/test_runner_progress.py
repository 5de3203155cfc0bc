"""A builtin job under ``backwatch run`` shows progress like restic's: its backup (a child
``backwatch backup --json``) prints restic-shaped status lines that the runner reads."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from backwatch.runners.base import Step
from backwatch.runners.job_runner import Watcher
from backwatch.runners.progress import READERS, Progress
from tests.integration.runner_support import make_tree, tree_size, write_config


class _Seen(Watcher):
    def __init__(self) -> None:
        self.progress_seen: list[Progress] = []
        self.output_lines: list[str] = []

    def progress(self, step: Step, progress: Progress) -> None:
        self.progress_seen.append(progress)

    def output(self, step: Step, line: str) -> None:
        self.output_lines.append(line)


def test_a_builtin_backup_reports_its_progress_to_the_runner(tmp_path: Path) -> None:
    from backwatch.runners.base import RunContext
    from backwatch.runners.job_runner import JobRunner
    from backwatch.runners.record import NullRecorder
    from backwatch.services.locks import Locks
    from backwatch.settings import load_settings

    tree = make_tree(tmp_path / "tree")
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f'[[jobs]]\nid = "docs"\ntool = "builtin"\ndestinations = ["{tmp_path / "dest"}"]\n'
        f'[jobs.builtin]\npaths = ["{tree}"]\n',
    )
    settings = load_settings(str(config))
    watcher = _Seen()
    runner = JobRunner(
        RunContext(settings, settings.jobs[0]), NullRecorder(), Locks(settings.data_dir),
        watcher=watcher,
    )  # fmt: skip
    result = runner.run()
    assert result.status.value == "success", result.message
    assert watcher.progress_seen, "no progress line reached the watcher"
    last = watcher.progress_seen[-1]
    assert last.total_bytes == tree_size(tree) and last.done_bytes == last.total_bytes
    assert last.fraction == 1.0
    assert not any("message_type" in line for line in watcher.output_lines)  # not logged
    assert result.fields["files"] == 300  # the summary still gives the run its figures


def test_status_lines_are_restic_shaped_and_at_most_twice_a_second(
    monkeypatch: Any,
) -> None:
    from backwatch.cli import engine_run

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setitem(os.environ, "BACKWATCH_PROGRESS", "json")
    lines = engine_run._progress(quiet=True)
    assert isinstance(lines, engine_run.StatusLines)
    with lines:
        task = lines.add_task("archive", total=1000)
        for _ in range(100):
            lines.advance(task, 10)  # far quicker than INTERVAL_S: no line for these
    printed = [json.loads(line) for line in err.getvalue().splitlines()]
    assert len(printed) == 2  # the start and the end
    assert printed[-1] == {
        "message_type": "status", "percent_done": 1.0, "total_bytes": 1000, "bytes_done": 1000,
    }  # fmt: skip
    got = READERS["builtin"](err.getvalue().splitlines()[-1])
    assert got is not None and (got.fraction, got.done_bytes, got.total_bytes) == (1.0, 1000, 1000)
