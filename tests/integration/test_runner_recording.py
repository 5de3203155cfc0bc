"""Recording beside the run: the tool starts before the database is open, the stored times
are when things happened, and a database that cannot be opened does not stop a backup."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from backwatch.cli.target import resolve
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
    from backwatch.runners.record import BackgroundRecorder, HubRecorder
    from backwatch.services.hub import Hub
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

    result = _run(settings, BackgroundRecorder(open_once_the_tool_has_run))
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


def test_the_store_opens_once_the_tool_has_started_not_before(tmp_path: Path) -> None:
    """Opening the store (imports, connection) waits for the tool's start (``begin``): it
    never holds the backup up."""
    from backwatch.runners.record import BackgroundRecorder, HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    settings = load_settings(str(_job(tmp_path)))
    opened: list[float] = []

    def open_store() -> HubRecorder:
        opened.append(time.time())
        return HubRecorder(Hub(settings), actor="test", owns_hub=True)

    recorder = BackgroundRecorder(open_store)
    recorder.HOLD_S = 600  # only the tool's start may open it
    result = _run(settings, recorder)
    assert result.record is not None and result.record["status"] == "success"
    (phase,) = result.record["phases"]
    assert opened[0] >= _epoch(phase["started_at"])
    (run,) = stored_runs(tmp_path / "data", "nightly")
    assert run["status"] == "success" and run["phases"][0]["status"] == "success"


def test_a_run_that_waits_is_recorded_while_it_waits(tmp_path: Path) -> None:
    """No command starts while a run is queued behind a lock: the store opens after
    ``HOLD_S`` all the same, so the queued run shows."""
    from backwatch.domain.lifecycle import RunStatus
    from backwatch.runners.record import BackgroundRecorder, HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    settings = load_settings(str(_job(tmp_path)))
    recorder = BackgroundRecorder(lambda: HubRecorder(Hub(settings), actor="test", owns_hub=True))
    recorder.HOLD_S = 0.2
    try:
        recorder.start(
            "r-queued", "nightly", "command", RunStatus.QUEUED, "manual", "waiting", at=time.time()
        )
        deadline = time.monotonic() + 30
        rows: list[tuple[str, str]] = []
        while not rows and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = _rows(tmp_path / "data" / "backwatch.db")
        assert rows == [("r-queued", "queued")]
    finally:
        recorder.close()


def _run(settings: Any, recorder: Any) -> Any:
    """Run the settings' first job with ``recorder``, closing it afterwards."""
    from backwatch.runners.base import RunContext
    from backwatch.runners.job_runner import JobRunner
    from backwatch.services.locks import Locks

    try:
        runner = JobRunner(
            RunContext(settings, settings.jobs[0]), recorder, Locks(settings.data_dir)
        )
        return runner.run()
    finally:
        recorder.close()


def _rows(db: Path) -> list[tuple[str, str]]:
    """The runs in ``db`` (none while it is being created)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT id, status FROM runs").fetchall()
    except sqlite3.Error:
        return []


def _epoch(iso: str) -> float:
    from backwatch.timeutil import parse_time

    return parse_time(iso)


def test_a_run_from_the_command_line_records_its_jobs_configured_schedule(
    tmp_path: Path,
) -> None:
    """A job that only cron runs (no `serve` to read the config) still shows its schedule,
    grace and description in `backwatch status`."""
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        """
[[jobs]]
id = "nightly"
tool = "command"
command = "true"
schedule = "0 2 * * *"
grace = "2h"
description = "the nightly one"
""",
    )
    proc, _record = run_job(config, "nightly")
    assert proc.returncode == 0, proc.stderr
    tgt = resolve(
        url=None, token=None, db=str(tmp_path / "data" / "backwatch.db"), config=None,
        data_dir=None,
    )  # fmt: skip
    try:
        job = tgt.get_job("nightly")
    finally:
        tgt.close()
    assert (job["schedule"], job["grace_s"], job["description"]) == (
        "0 2 * * *", 7200, "the nightly one",
    )  # fmt: skip
    assert job["next_due"] is not None


def test_a_dump_first_opens_the_store_while_it_runs(tmp_path: Path) -> None:
    from backwatch.runners.record import BackgroundRecorder, HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        """
[[jobs]]
id = "app"
tool = "command"
command = "true"
[[jobs.dumps]]
name = "db"
type = "command"
command = "sleep 1.5; echo rows"
""",
    )
    settings = load_settings(str(config))
    opened: list[float] = []

    def open_store() -> HubRecorder:
        opened.append(time.time())
        return HubRecorder(Hub(settings), actor="test", owns_hub=True)

    recorder = BackgroundRecorder(open_store)
    recorder.HOLD_S = 600
    result = _run(settings, recorder)
    assert result.record is not None
    dump, backup = result.record["phases"]
    assert dump["name"] == "dump-db"
    assert _epoch(dump["started_at"]) <= opened[0] < _epoch(backup["started_at"])
