"""The quick start (runners.quickstart): a run whose settings are unchanged since the job's
last run starts its tool before reading them, and nothing else about the run changes.

The tool is real restic behind a wrapper script that notes its starts (and its pid);
wrapping ``local_settings`` notes whether the tool was running when the settings were read.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from backwatch.errors import ConfigError
from backwatch.runners.quickstart import Plan
from backwatch.services.locks import Locks
from tests.conftest import BACKWATCH, need_tool
from tests.integration.runner_support import (
    FILES,
    make_tree,
    run_job,
    stored_runs,
    write_config,
)

PASSWORD = "quick-start-password"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A restic job whose binary is a wrapper noting its starts in ``starts``."""
    need_tool("restic")
    tree = make_tree(tmp_path / "tree")
    pw = tmp_path / "pass"
    pw.write_text(PASSWORD + "\n")
    cache = tmp_path / "restic-cache"
    subprocess.run(
        ["restic", "init", "--repo", str(tmp_path / "repo"), "--password-file", str(pw)],
        env={**os.environ, "RESTIC_CACHE_DIR": str(cache)},
        check=True,
        capture_output=True,
    )
    starts = tmp_path / "starts"
    wrapper = tmp_path / "restic-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$(date +%s.%N) $$" >> "{starts}"\nexec restic "$@"\n')
    wrapper.chmod(0o755)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "photos"
tool = "restic"
env = {{RESTIC_CACHE_DIR = "{cache}"}}
[jobs.restic]
repository = "{tmp_path / "repo"}"
password_file = "{pw}"
paths = ["{tree}"]
binary = "{wrapper}"
""",
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return {"config": config, "starts": starts, "data": tmp_path / "data", "root": tmp_path}


@pytest.fixture
def tool_ran_first(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each run: whether its tool (the wrapper, or restic it became: a child of this
    process, its only one) was running when the run read its settings."""
    import backwatch.cli.target as target

    seen: list[bool] = []
    original = target.local_settings

    def noted(**kwargs: object) -> object:
        seen.append(bool(psutil.Process().children()))
        return original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(target, "local_settings", noted)
    return seen


def tool_starts(job: dict[str, Path]) -> list[tuple[float, int]]:
    lines = job["starts"].read_text().split("\n") if job["starts"].exists() else []
    return [(float(t), int(pid)) for t, pid in (line.split() for line in lines if line)]


def entry_dir(job: dict[str, Path]) -> Path:
    """Where the quick start keeps its entries (the fixture's XDG_CACHE_HOME)."""
    return job["root"] / "xdg-cache" / "backwatch" / "quickstart"


def entries(job: dict[str, Path]) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(entry_dir(job).glob("*.json"))]


def replace_command(job: dict[str, Path], script: str) -> tuple[Path, dict[str, object]]:
    """After a run: its entry's command replaced by ``sh -c script`` (as if the key had
    missed a change); the entry's file and what it now holds."""
    assert run_job(job["config"], "photos")[0].returncode == 0
    path = next(entry_dir(job).glob("*.json"))
    entry = json.loads(path.read_text())
    entry["argv"] = ["/bin/sh", "-c", script]
    path.write_text(json.dumps(entry))
    return path, entry


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_unchanged_job_starts_restic_before_reading_its_settings(job, tool_ran_first) -> None:
    proc, first = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert first is not None and first["status"] == "success"
    assert len(tool_starts(job)) == 1
    assert tool_ran_first == [False], "the first run reads its settings before restic starts"
    (entry,) = entries(job)
    assert entry["argv"][0] == str(job["root"] / "restic-wrapper")
    assert entry["locks"] == ["job:photos", f"repo:restic:{job['root'] / 'repo'}"]
    assert oct(next(entry_dir(job).glob("*.json")).stat().st_mode & 0o777) == "0o600"

    proc, second = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert second is not None and second["status"] == "success", second
    assert len(tool_starts(job)) == 2
    assert tool_ran_first == [False, True], "the second run started restic first"
    # the run is what it always is: restic's figures, one backup phase from restic's start
    assert second["files"] == FILES and second["files_new"] == 0
    assert second["stats"]["snapshot_id"]
    (phase,) = second["phases"]
    assert phase["name"] == "backup" and phase["status"] == "success"
    stored = stored_runs(job["data"], "photos")
    assert [r["id"] for r in stored] == [second["id"], first["id"]]


def test_a_changed_config_is_read_before_restic_starts(job, tool_ran_first) -> None:
    assert run_job(job["config"], "photos")[0].returncode == 0
    with open(job["config"], "a") as fh:
        fh.write("# edited\n")
    proc, _ = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert tool_ran_first == [False, False]
    # nor does another environment for backwatch (a data dir given differently)
    proc, _ = run_job(job["config"], "photos", env={"BACKWATCH_DATA_DIR": str(job["data"])})
    assert proc.returncode == 0, proc.stderr
    assert tool_ran_first == [False, False, False]
    assert len(tool_starts(job)) == 3


def test_an_entry_that_is_not_the_runs_first_step_is_stopped_first(job) -> None:
    """The key can miss a change (here the entry is edited by hand): the command started
    early is stopped, whole process group, before the run's own first step starts."""
    pidfile = job["root"] / "impostor.pid"
    path, _ = replace_command(job, f'echo $$ > "{pidfile}"; sleep 60 & wait')

    proc, run = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success"
    impostor = int(pidfile.read_text())
    assert not alive(impostor)
    # its child (sleep) went with it: the group was stopped
    group = subprocess.run(["pgrep", "-g", str(impostor)], capture_output=True, text=True)
    assert group.stdout.strip() == ""
    assert len(tool_starts(job)) == 2  # the real restic ran after it, once
    # the entry is the run's own again
    assert json.loads(path.read_text())["argv"][0] == str(job["root"] / "restic-wrapper")


def test_settings_that_fail_stop_the_command_and_give_back_the_locks(
    job, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = job["root"] / "early.pid"
    path, entry = replace_command(job, f'echo $$ > "{pidfile}"; exec sleep 60')
    import backwatch.cli.target as target

    def broken(**kwargs: object) -> object:
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the early command is running
        raise ConfigError("bw.toml: at 'jobs[0].timeout': not a duration: 'soon'")

    monkeypatch.setattr(target, "local_settings", broken)
    proc, _ = run_job(job["config"], "photos")
    assert proc.returncode != 0
    assert "not a duration" in proc.stderr
    assert not alive(int(pidfile.read_text()))
    locks = Locks(job["data"])
    held = locks.try_once(entry["locks"], note={"job": "test"})
    assert held is not None, "the run's locks were given back"
    held.release()
    assert not path.exists(), "settings that failed are not started early again"


def test_a_busy_job_starts_nothing_early(job) -> None:
    """Its locks are taken before anything starts; one that is held leaves the run to wait
    or refuse, as it always does."""
    text = job["config"].read_text()
    job["config"].write_text(text.replace('tool = "restic"', 'tool = "restic"\non_busy = "refuse"'))
    assert run_job(job["config"], "photos")[0].returncode == 0
    assert len(entries(job)) == 1
    locks = Locks(job["data"])
    held = locks.try_once(["job:photos"], note={"job": "photos", "run_id": "other"})
    assert held is not None
    try:
        proc, _ = run_job(job["config"], "photos")
    finally:
        held.release()
    assert proc.returncode == 75, proc.stderr
    assert "already running" in proc.stderr
    assert len(tool_starts(job)) == 1, "restic was not started"


def test_the_command_line_runs_and_cancels_a_quick_start(job) -> None:
    """The console script's own path: a second run started early, then SIGTERM (systemd
    stopping the unit) while restic runs: recorded as cancelled, restic stopped."""
    env = {**os.environ, "XDG_CACHE_HOME": str(job["root"] / "xdg-cache")}
    argv = [*BACKWATCH, "run", "photos", "--config", str(job["config"])]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    # the plain summary (no terminal: no rich), from the run's figures
    assert "  ✓ backup " in first.stderr
    assert re.search(rf"photos: success in [\d.]+m?s \({FILES} files, [\d.]+ [KM]B, ", first.stderr)
    slow = job["root"] / "restic-wrapper"
    slow.write_text(slow.read_text().replace("exec restic", "sleep 30; exec restic"))
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while len(tool_starts(job)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    (_, wrapper_pid) = tool_starts(job)[1]
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not alive(wrapper_pid)
    (latest, *_) = stored_runs(job["data"], "photos")
    assert latest["status"] == "cancelled"


def test_the_key_follows_what_decides_the_command(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "bw.toml"
    config.write_text('[[jobs]]\nid = "a"\ncommand = "true"\n')
    options = {"data_dir": None, "db": None, "url": None, "token": None}
    key = Plan("a", str(config), options).key
    assert key is not None
    monkeypatch.setenv("INVOCATION_ID", "a-new-one-every-start")  # systemd's
    assert Plan("a", str(config), options).key == key
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Plan("a", str(config), options).key != key
    monkeypatch.delenv("BACKWATCH_DATA_DIR")
    assert Plan("a", str(config), {**options, "db": "other.db"}).key != key
    assert Plan("b", str(config), options).key != key
    assert Plan("a", str(tmp_path / "missing.toml"), options).key is None


def test_only_a_backup_that_comes_first_is_kept(job, tool_ran_first) -> None:
    text = (
        job["config"]
        .read_text()
        .replace('tool = "restic"', 'tool = "restic"\nhooks.before = ["true"]')
    )
    job["config"].write_text(text)
    for _ in range(2):
        proc, _ = run_job(job["config"], "photos")
        assert proc.returncode == 0, proc.stderr
    assert entries(job) == []
    assert tool_ran_first == [False, False]
    assert len(tool_starts(job)) == 2


def test_it_can_be_turned_off(job, tool_ran_first, monkeypatch) -> None:
    monkeypatch.setenv("BACKWATCH_QUICK_START", "0")
    for _ in range(2):
        assert run_job(job["config"], "photos")[0].returncode == 0
    assert entries(job) == []
    assert tool_ran_first == [False, False]
    assert len(tool_starts(job)) == 2


def test_a_run_that_waits_after_a_stopped_quick_start_gets_its_whole_timeout(job) -> None:
    """The entry's locks are not the run's (as after a change the key missed): the early
    command is stopped, the run waits for its repository's lock, and its timeout counts
    from when it got it, not from the quick start."""
    text = job["config"].read_text()
    job["config"].write_text(text.replace('tool = "restic"', 'tool = "restic"\ntimeout = "10s"'))
    path, entry = replace_command(job, "exec sleep 60")
    entry["locks"] = ["job:photos"]  # the repository's lock left out
    path.write_text(json.dumps(entry))
    repo_lock = f"repo:restic:{job['root'] / 'repo'}"
    held = Locks(job["data"]).try_once([repo_lock], note={"job": "other", "run_id": "x"})
    assert held is not None
    threading.Timer(11, held.release).start()  # longer than the run's timeout
    proc, run = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success", run


def _leave_dead_note(data: Path, name: str, run_id: str) -> int:
    """What a `backwatch run` killed with -9 leaves in a lock file: its note, no lock."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    locks = Locks(data)
    held = locks.try_once([name], note={})
    assert held is not None
    lock = held.files[0]
    lock.write_note({"pid": dead.pid, "host": locks.host, "job": "photos", "run_id": run_id})
    os.close(lock.fd)  # type: ignore[arg-type]
    lock.fd = None  # closed without truncating: the note stays
    held.release()
    return dead.pid


def test_a_stale_lock_taken_over_by_a_quick_start_is_reported(job, tool_ran_first) -> None:
    proc, first = run_job(job["config"], "photos")
    assert proc.returncode == 0 and first is not None
    # a run that died with -9: still "running" in the database, its note in the job's lock
    dead_run = first["id"][:-4] + "dead"
    from backwatch.domain.lifecycle import RunStatus
    from backwatch.runners.record import HubRecorder
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    with Hub(load_settings(job["config"])) as hub:
        HubRecorder(hub).start(
            dead_run, "photos", "restic", RunStatus.RUNNING, "manual", None, at=hub.now()
        )
    pid = _leave_dead_note(job["data"], "job:photos", dead_run)
    proc, _ = run_job(job["config"], "photos")
    assert proc.returncode == 0, proc.stderr
    assert tool_ran_first == [False, True]
    runs = {r["id"]: r for r in stored_runs(job["data"], "photos")}
    assert runs[dead_run]["status"] == "failed"
    assert f"pid {pid}" in runs[dead_run]["message"]


def test_a_stale_note_is_reported_even_when_another_lock_is_busy(tmp_path: Path) -> None:
    """Taking over a dead process's lock overwrites its note: it is reported at once, not
    only when every other lock of the run was free too."""
    pid = _leave_dead_note(tmp_path, "job:photos", "deadrun")
    busy = Locks(tmp_path).try_once(["repo:x"], note={"job": "other"})
    assert busy is not None
    reported: list[object] = []
    try:
        got = Locks(tmp_path, on_stale=reported.append).try_once(
            ["job:photos", "repo:x"], note={"job": "photos"}
        )
    finally:
        busy.release()
    assert got is None
    assert [(h.pid, h.run_id) for h in reported] == [(pid, "deadrun")]  # type: ignore[attr-defined]
