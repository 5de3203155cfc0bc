"""Recording beside the run: the tool starts before the database is open, the stored times
are when things happened, and a database that cannot be opened does not stop a backup."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.runner_support import run_job, stored_runs, write_config


def _job(tmp_path: Path) -> Path:
    """A job whose command leaves the time it ran in ``ran`` (complete when it appears)."""
    return write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "nightly"
tool = "command"
command = "date +%s.%N > {tmp_path / "ran.part"} && mv {tmp_path / "ran.part"} {tmp_path / "ran"}"
""",
    )


def test_the_tool_runs_before_the_database_is_open_and_the_times_are_kept(
    tmp_path: Path,
) -> None:
    from backwatch.runners.base import RunContext
    from backwatch.runners.engine import JobRunner
    from backwatch.runners.record import BackgroundRecorder, HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.services.locks import Locks
    from backwatch.settings import load_settings

    settings = load_settings(str(_job(tmp_path)))
    ran = tmp_path / "ran"
    opened: list[float] = []

    def open_once_the_tool_has_run() -> HubRecorder:
        deadline = time.monotonic() + 30
        while not ran.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        opened.append(time.time())
        return HubRecorder(Hub(settings), actor="test", owns_hub=True)

    recorder = BackgroundRecorder(open_once_the_tool_has_run)
    try:
        runner = JobRunner(
            RunContext(settings, settings.jobs[0]), recorder, Locks(settings.data_dir)
        )
        result = runner.run()
    finally:
        recorder.close()
    assert result.status.value == "success"
    assert result.record is not None and result.record["status"] == "success"
    tool_ran_at = float(ran.read_text())
    assert opened and opened[0] >= tool_ran_at  # the tool did not wait for the database
    (run,) = stored_runs(tmp_path / "data", "nightly")
    (phase,) = run["phases"]
    started, finished = _epoch(run["started_at"]), _epoch(phase["finished_at"])
    assert started <= _epoch(phase["started_at"]) <= tool_ran_at <= finished
    assert started < opened[0]  # stored as when it happened, not when it was written


def test_a_database_that_cannot_be_opened_does_not_stop_the_backup(tmp_path: Path) -> None:
    not_a_file = tmp_path / "db-is-a-directory"
    not_a_file.mkdir()
    proc, record = run_job(_job(tmp_path), "nightly", "--db", str(not_a_file))
    assert (tmp_path / "ran").exists()
    assert proc.returncode == 0, proc.stderr
    assert "this run is not recorded" in proc.stderr and "is a directory" in proc.stderr
    assert record is not None and record["status"] == "success"


def test_a_run_is_recorded_with_its_phase_on_either_database(tmp_path: Path, db_url: str) -> None:
    proc, record = run_job(_job(tmp_path), "nightly", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert record is not None and record["status"] == "success"
    assert [(p["name"], p["status"]) for p in record["phases"]] == [("backup", "success")]


def _epoch(iso: str) -> float:
    from backwatch.timeutil import parse_time

    return parse_time(iso)
