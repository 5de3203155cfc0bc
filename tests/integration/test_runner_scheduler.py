"""The server's scheduler: due jobs, overdue at start-up, ``after`` chains, full disks, the
run endpoint; and ``backwatch schedule export``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backwatch.timeutil import parse_time
from tests.conftest import allow_test_client, run_cli
from tests.integration.runner_support import stored_runs, write_config


def _config(tmp_path: Path, db_url: str | None = None) -> Path:
    db = f'database_url = "{db_url}"\n' if db_url else ""
    return write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        db
        + f"""
[[jobs]]
id = "nightly"
tool = "command"
schedule = "1h"
run_by = "server"
command = "echo nightly >> {tmp_path / "ran"}"

[[jobs]]
id = "offsite"
tool = "command"
run_by = "server"
after = ["nightly"]
command = "echo offsite >> {tmp_path / "ran"}"

[[jobs]]
id = "cleanup"
tool = "command"
when_disk_above = 0.9
destinations = ["{tmp_path}"]
command = "echo cleanup >> {tmp_path / "ran"}"
""",
    )


def _scheduler(tmp_path: Path, **kwargs):
    from backwatch.runners.scheduler import Scheduler
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    hub = Hub(load_settings(tmp_path / "bw.toml"))
    return hub, Scheduler(hub, **kwargs)


def _ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "ran"
    return path.read_text().split() if path.exists() else []


def test_due_jobs_run_and_their_after_jobs_follow(tmp_path: Path) -> None:
    _config(tmp_path)
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.5)
    try:
        now = time.time()
        assert sched.tick(now) == []  # never ran: first due in an hour
        assert sched.tick(now + 1800) == []
        assert sched.tick(now + 3601) == ["nightly"]
        sched.join()
        assert sched.tick(now + 3602) == ["offsite"]  # nightly succeeded
        sched.join()
        assert sched.tick(now + 3603) == []
    finally:
        hub.close()
    assert _ran(tmp_path) == ["nightly", "offsite"]
    (nightly,) = stored_runs(tmp_path / "data", "nightly")
    (offsite,) = stored_runs(tmp_path / "data", "offsite")
    assert nightly["trigger"] == "schedule" and nightly["status"] == "success"
    assert offsite["trigger"] == "event" and offsite["source"] == "runner"


def test_the_schedulers_log_lines_carry_the_job_and_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What the JSON log format (logs.py) turns into ``job`` and ``run`` fields."""
    _config(tmp_path)
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.5)
    caplog.set_level("INFO", logger="backwatch.scheduler")
    try:
        run_id = sched.trigger("nightly", "manual")
        sched.join()
    finally:
        hub.close()
    lines = [r for r in caplog.records if r.name == "backwatch.scheduler"]
    started, finished = lines[0], lines[-1]
    assert (started.job, started.run, started.trigger) == ("nightly", run_id, "manual")
    assert (finished.job, finished.run, finished.status) == ("nightly", run_id, "success")


def test_an_overdue_job_runs_once_at_start_up_and_a_full_disk_runs_cleanup(tmp_path: Path) -> None:
    _config(tmp_path)
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.5)
    try:
        sched.trigger("nightly", "manual")
        sched.join()
    finally:
        hub.close()
    # a new server two hours later: the hourly job missed its time and runs once, now
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.95)
    try:
        later = time.time() + 7200
        started = sched.tick(later)
        assert sorted(started) == ["cleanup", "nightly"]
        sched.join()
        assert sched.tick(later + 1) == ["offsite"]
        sched.join()
        assert sched.tick(later + 120) == []  # not again: next due in an hour, disk cooldown
    finally:
        hub.close()
    # the first server never ticked after its manual run, so offsite followed only once
    assert sorted(_ran(tmp_path)) == ["cleanup", "nightly", "nightly", "offsite"]


def test_the_run_endpoint_runs_a_job_on_the_server(tmp_path: Path, db_url: str) -> None:
    from fastapi.testclient import TestClient

    from backwatch.settings import load_settings
    from backwatch.web.app import create_app

    _config(tmp_path, db_url)
    app = create_app(allow_test_client(load_settings(tmp_path / "bw.toml")))
    with TestClient(app) as client:
        token = (tmp_path / "data" / "token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/jobs/nightly/run").status_code == 401
        missing = client.post("/api/v1/jobs/nope/run", headers=auth)
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        answer = client.post("/api/v1/jobs/nightly/run", headers=auth)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while True:
            run = client.get(f"/api/v1/runs/{run_id}").json()
            if run.get("status") == "success":
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
        assert run["trigger"] == "api" and run["phases"][0]["name"] == "backup"
        deadline = time.monotonic() + 30
        while "offsite" not in _ran(tmp_path):  # `after` follows on the server too
            assert time.monotonic() < deadline, _ran(tmp_path)
            time.sleep(0.1)


def test_schedule_export_for_systemd_and_cron(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        """
[[jobs]]
id = "photos"
description = "Photos to the NAS"
tool = "command"
command = "true"
schedule = "30 2 * * 1-5"
timezone = "Europe/Berlin"

[[jobs]]
id = "often"
tool = "command"
command = "true"
schedule = "15m"
""",
    )
    out = tmp_path / "units"
    done = run_cli(
        "schedule", "export", "photos", "--systemd", "--config", str(config), "--output", str(out)
    )
    assert done.returncode == 0, done.stderr
    timer = (out / "backwatch-photos.timer").read_text()
    service = (out / "backwatch-photos.service").read_text()
    assert "OnCalendar=Mon..Fri *-*-* 02:30:00 Europe/Berlin" in timer
    assert "Persistent=true" in timer
    assert " run photos --config " in service and "Type=oneshot" in service
    if shutil.which("systemd-analyze"):
        check = subprocess.run(
            ["systemd-analyze", "calendar", "Mon..Fri *-*-* 02:30:00 Europe/Berlin"],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
    cron = run_cli("schedule", "export", "often", "--cron", "--config", str(config))
    assert cron.returncode == 0, cron.stderr
    assert "\n*/15 * * * * " in cron.stdout and " run often --config " in cron.stdout
    # the venv's console script (it starts faster than `python -m backwatch`)
    script = Path(sys.executable).with_name("backwatch").resolve()
    if script.is_file():
        assert f" {script} run often " in cron.stdout
    both = run_cli("schedule", "export", "often", "--config", str(config))
    assert both.returncode == 1 and "--systemd or --cron" in both.stderr


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('tool = "restic"\n', "at 'jobs[0].restic': required for tool = 'restic'"),
        ('tool = "restic"\n[jobs.restic]\npaths = ["/x"]\n', "at 'jobs[0].restic.repository'"),
        ('tool = "command"\ncommand = "true"\nafter = ["ghost"]\n', "at 'jobs[0].after'"),
        ('tool = "command"\ncommand = "true"\non_busy = "later"\n', "at 'jobs[0].on_busy'"),
        (
            'tool = "command"\ncommand = "true"\n[jobs.retention]\nkeep_last = 3\n',
            "at 'jobs[0].retention'",
        ),
    ],
)
def test_bad_job_settings_name_the_key(tmp_path: Path, body: str, problem: str) -> None:
    config = write_config(tmp_path / "bw.toml", tmp_path / "data", f'[[jobs]]\nid = "j"\n{body}')
    done = run_cli("run", "j", "--config", str(config))
    assert done.returncode == 1
    assert problem in done.stderr and "Traceback" not in done.stderr


def test_run_reports_to_the_server_when_backwatch_url_is_set(tmp_path: Path, server) -> None:
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "local",
        """
[[jobs]]
id = "remote"
tool = "command"
phases = [{name = "archive", command = "echo archiving"}, {name = "upload", command = "true"}]
""",
    )
    env = {"BACKWATCH_URL": server.url, "BACKWATCH_TOKEN": server.token}
    done = run_cli("run", "remote", "--json", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    import json

    run = json.loads(done.stdout)
    assert run["status"] == "success" and run["source"] == "api"
    assert [p["name"] for p in run["phases"]] == ["archive", "upload"]
    assert not (tmp_path / "local" / "backwatch.db").exists()  # nothing went to a local db
    # without --json the run is not fetched back: the summary is the run's own
    plain = run_cli("run", "remote", "--config", str(config), env=env)
    assert plain.returncode == 0, plain.stderr
    assert "remote: success in " in plain.stderr


def test_a_new_leader_keeps_the_period_counted_from_the_last_start(tmp_path: Path) -> None:
    """Issue 18: after a failover or a restart, an hourly job that ran 50 minutes ago is
    due in 10 minutes, not an hour after the new scheduler started."""
    _config(tmp_path)
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.5)
    try:
        sched.trigger("nightly", "manual")
        sched.join()
    finally:
        hub.close()
    [run] = stored_runs(tmp_path / "data", "nightly")
    hub, sched = _scheduler(tmp_path, disk_usage=lambda path: 0.5)  # the new leader
    try:
        started = parse_time(run["started_at"])
        assert sched.tick(started + 50 * 60) == []
        assert sched.tick(started + 59 * 60) == []
        assert sched.tick(started + 3600 + 1) == ["nightly"]
        sched.join()
    finally:
        hub.close()
