"""Coordination: job and repository locks across processes, queued runs, stale locks,
timeouts that kill the whole process group."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from backwatch.timeutil import parse_time
from tests.conftest import make_settings, need_tool
from tests.integration.runner_support import (
    make_tree,
    run_job,
    start_job,
    stored_runs,
    write_config,
)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the first run ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def _slow_job(tmp_path: Path, on_busy: str) -> Path:
    """A job whose first run holds on until the test creates the file ``go``."""
    marker, go = tmp_path / "started", tmp_path / "go"
    return write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "slow"
tool = "command"
on_busy = "{on_busy}"
command = "touch {marker}; while [ ! -e {go} ]; do sleep 0.05; done"
""",
    )


def test_a_second_run_of_a_busy_job_waits_queued_then_runs(tmp_path: Path) -> None:
    config = _slow_job(tmp_path, "wait")
    first = start_job(config, "slow")
    second = None
    try:
        _wait_for(tmp_path / "started", first)
        second = start_job(config, "slow")
        deadline = time.monotonic() + 30
        while not any(r["status"] == "queued" for r in stored_runs(tmp_path / "data", "slow")):
            assert second.poll() is None, second.communicate()
            assert time.monotonic() < deadline, "the second run never showed as queued"
            time.sleep(0.1)
    finally:
        (tmp_path / "go").touch()
        first.communicate(timeout=60)
        out, err = second.communicate(timeout=60) if second else ("", "")
    assert first.returncode == 0 and second.returncode == 0, err
    later = json.loads(out)
    assert later["status"] == "success"
    states = [(e["from_state"], e["to_state"]) for e in later["events"]]
    assert states == [(None, "queued"), ("queued", "running"), ("running", "success")]
    earlier = stored_runs(tmp_path / "data", "slow")[1]
    assert earlier["status"] == "success"
    # the second run's work started only after the first one had finished
    assert parse_time(later["phases"][0]["started_at"]) >= parse_time(earlier["finished_at"])


def test_a_second_run_of_a_busy_job_is_refused_when_configured(tmp_path: Path) -> None:
    config = _slow_job(tmp_path, "refuse")
    first = start_job(config, "slow")
    try:
        _wait_for(tmp_path / "started", first)
        proc, record = run_job(config, "slow")
    finally:
        (tmp_path / "go").touch()
        first.communicate(timeout=60)
    assert proc.returncode == 75
    assert record is None
    assert "already running" in proc.stderr and "job 'slow'" in proc.stderr
    runs = stored_runs(tmp_path / "data", "slow")
    assert [r["status"] for r in runs] == ["success"]  # the refused one recorded nothing


def test_a_backup_and_a_prune_of_one_repository_never_overlap(tmp_path: Path) -> None:
    need_tool("restic")
    tree = make_tree(tmp_path / "src", files=60)
    pw = tmp_path / "pass"
    pw.write_text("pw-for-locks\n")
    env = {**os.environ, "RESTIC_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run(
        ["restic", "init", "-r", str(tmp_path / "repo"), "--password-file", str(pw)],
        env=env,
        check=True,
        capture_output=True,
    )
    common = f"""tool = "restic"
env = {{RESTIC_CACHE_DIR = "{tmp_path / "cache"}"}}
[jobs.restic]
repository = "{tmp_path / "repo"}"
password_file = "{pw}"
paths = ["{tree}"]
[jobs.retention]
keep_last = 1
"""
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "backup"
actions = ["backup"]
{common}
[[jobs]]
id = "prune"
actions = ["prune"]
{common}""",
    )
    procs = [start_job(config, job) for job in ("backup", "prune", "backup", "prune")]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    runs = stored_runs(tmp_path / "data", "backup") + stored_runs(tmp_path / "data", "prune")
    assert sorted(p["name"] for r in runs for p in r["phases"]) == ["backup"] * 2 + ["prune"] * 2
    spans = sorted(
        (parse_time(p["started_at"]), parse_time(p["finished_at"]))
        for r in runs
        for p in r["phases"]
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"phases overlap: {spans}"


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "hangs"
tool = "command"
timeout = "1s"
env = {{API_TOKEN = "s3cr3t-token-value"}}
command = "echo token=$API_TOKEN; sleep 300 & echo $! > {child}; wait"
[jobs.hooks]
failure = ["echo failure hook ran > {tmp_path / "hook"}"]
""",
    )
    proc, run = run_job(config, "hangs")
    assert proc.returncode == 124
    assert run is not None and run["status"] == "timed_out"
    assert "timeout" in run["message"]
    assert run["phases"][0]["status"] == "timed_out"
    pid = int(child.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the background `sleep` went with its group
    assert (tmp_path / "hook").read_text().strip() == "failure hook ran"
    log = stored_log(tmp_path / "data", run["id"])
    assert "token=***" in log and "s3cr3t-token-value" not in log


def stored_log(data_dir: Path, run_id: str) -> str:
    from backwatch.cli.target import resolve

    tgt = resolve(url=None, token=None, db=str(data_dir / "backwatch.db"), config=None)
    try:
        from backwatch.store import tables as t

        with tgt.hub.read_engine.connect() as conn:
            return str(
                conn.execute(t.run_logs.select().where(t.run_logs.c.run_id == run_id))
                .mappings()
                .one()["log"]
            )
    finally:
        tgt.close()


def test_a_lock_left_by_a_dead_process_is_cleared_and_its_run_closed(tmp_path: Path) -> None:
    from backwatch.domain.lifecycle import RunStatus
    from backwatch.runners.record import HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.services.locks import Locks

    settings = make_settings(tmp_path / "data")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Hub(settings) as hub:
        recorder = HubRecorder(hub)
        recorder.start(
            "deadrun0000000000000001",
            "nightly",
            "command",
            RunStatus.RUNNING,
            "manual",
            None,
            at=hub.now(),
        )
        locks = Locks(settings.data_dir, on_stale=recorder.stale_lock)
        held = locks.acquire(["job:nightly"], note={"job": "nightly"})
        assert held is not None
        # what a `backwatch run` killed with -9 leaves: its note, but no lock
        held.files[0].write_note(
            {
                "pid": dead.pid,
                "host": locks.host,
                "job": "nightly",
                "run_id": "deadrun0000000000000001",
            }
        )
        os.close(held.files[0].fd)  # type: ignore[arg-type]
        held.files[0].fd = None
        held.release()
        again = locks.acquire(["job:nightly"], note={"job": "nightly"})
        assert again is not None
        again.release()
        with hub.read_engine.connect() as conn:
            from backwatch.store import queries

            run = queries.get_run(conn, "deadrun0000000000000001")
            events = conn.execute(
                __import__("sqlalchemy").text("SELECT kind, detail FROM events WHERE entity='lock'")
            ).all()
    assert run["status"] == "failed" and f"pid {dead.pid}" in run["message"]
    assert len(events) == 1 and events[0][0] == "auto_resolve"
    detail = events[0][1] if isinstance(events[0][1], dict) else json.loads(events[0][1])
    assert detail["pid"] == dead.pid and "stale lock" in detail["problem"]


def test_runs_beyond_max_concurrent_wait(tmp_path: Path) -> None:
    from backwatch.services.locks import Locks

    locks = Locks(tmp_path, max_concurrent=1)
    first = locks.acquire(["job:a"], note={"job": "a"})
    assert first is not None
    waited: list[str] = []
    import threading

    cancel = threading.Event()
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(
            locks.acquire(["job:b"], note={"job": "b"}, on_wait=waited.append, cancel=cancel)
        )
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not waited and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waited and "max_concurrent = 1" in waited[0]
    first.release()
    thread.join(10)
    assert result and result[0] is not None
    result[0].release()  # type: ignore[attr-defined]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_cancels_the_run_and_stops_its_command(tmp_path: Path, sig) -> None:
    """The command runs in a session of its own, which the terminal's Ctrl-C does not reach:
    backwatch stops its group, records the run as cancelled and exits 130."""
    child = tmp_path / "child.pid"
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "long"
tool = "command"
command = "sleep 300 & echo $! > {child}; wait"
""",
    )
    proc = start_job(config, "long")
    _wait_for(child, proc)
    time.sleep(0.3)  # the phase has started
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelling the run" in err
    with pytest.raises(ProcessLookupError):
        os.kill(int(child.read_text()), 0)  # the command's group went with it
    (run,) = stored_runs(tmp_path / "data", "long")
    assert run["status"] == "cancelled" and json.loads(out)["status"] == "cancelled"
    assert run["phases"][0]["status"] == "cancelled"
