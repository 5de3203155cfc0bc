"""Restore drills with real restic, borg and built-in repositories (issue 16): a clean
repository's drill passes; damaged data files make it fail and open verify_failed; a
source file changed after the snapshot is reported, not failed; the temporary directory
is gone after a pass, a failure and a SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app
from backwatch.services import alerts
from backwatch.services.hub import Hub
from tests.conftest import BACKWATCH, make_settings, need_tool
from tests.integration.runner_support import make_tree, write_config

PASSWORD = "drill-secret"


def drill(config: Path, job: str, *args: str) -> tuple[int, dict[str, Any]]:
    done = CliRunner().invoke(app, ["drill", job, "--json", "--config", str(config), *args])
    assert done.exit_code in (0, 1, 4), done.output
    return done.exit_code, json.loads(done.stdout)


def open_rules(data: Path, job: str) -> set[str]:
    settings = make_settings(data)
    with Hub(settings) as hub:
        hub.write(alerts.evaluate_jobs(settings, time.time(), None, None))
        with hub.read_engine.connect() as conn:
            return {a["rule"] for a in alerts.list_alerts(conn, state="open", job=job)}


def damage(repo_data: Path) -> None:
    """Overwrite bytes in the middle of every data file of a repository."""
    for path in sorted(p for p in repo_data.rglob("*") if p.is_file()):
        size = path.stat().st_size
        if size > 64:
            with open(path, "r+b") as fh:
                fh.seek(size // 2)
                fh.write(b"\0" * min(32, size // 4))


def assert_no_drill_dirs(data: Path) -> None:
    drills = data / "drills"
    assert not drills.exists() or list(drills.iterdir()) == []


@pytest.fixture
def restic_job(tmp_path: Path) -> tuple[Path, Path, Path]:
    need_tool("restic")
    tree = make_tree(tmp_path / "photos", files=60)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    repo = tmp_path / "repo"
    env = {**os.environ, "RESTIC_CACHE_DIR": str(tmp_path / "cache")}
    base = ["restic", "--repo", str(repo), "--password-file", str(pw)]
    subprocess.run([*base, "init"], env=env, check=True, capture_output=True)
    subprocess.run([*base, "backup", str(tree)], env=env, check=True, capture_output=True)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "photos"
tool = "restic"
env = {{RESTIC_CACHE_DIR = "{tmp_path / "cache"}"}}
[jobs.restic]
repository = "{repo}"
password_file = "{pw}"
paths = ["{tree}"]
""",
    )
    return config, tree, repo


def test_a_restic_drill_passes_reports_changed_files_and_fails_on_damage(restic_job) -> None:
    config, tree, repo = restic_job
    data = config.parent / "data"
    code, run = drill(config, "photos", "--files", "100")
    assert code == 0, run["message"]
    assert run["kind"] == "drill" and run["status"] == "success"
    figures = run["stats"]["drill"]
    assert figures["files_checked"] == 60 and figures["bytes_restored"] > 600_000
    assert figures["rate_bytes_per_s"] > 0 and figures["estimate_full_restore_s"] > 0
    assert figures["snapshot_bytes"] == sum(p.stat().st_size for p in tree.rglob("*.bin"))
    assert run["stats"]["verify"] == "ok"
    assert_no_drill_dirs(data)

    changed = tree / "d3" / "f003.bin"
    with open(changed, "ab") as fh:
        fh.write(b"edited after the snapshot")
    code, run = drill(config, "photos", "--files", "100")
    assert code == 0 and run["status"] == "success"
    assert run["stats"]["drill"]["changed_since"] == [str(changed)]
    assert "changed at the source" in run["message"]

    damage(repo / "data")
    code, run = drill(config, "photos", "--files", "100")
    assert code == 1 and run["status"] == "failed" and run["stats"]["verify"] == "failed"
    assert "restic" in run["message"]
    assert_no_drill_dirs(data)
    assert "verify_failed" in open_rules(data, "photos")


def test_a_sample_respects_its_size_cap_and_always_paths(restic_job) -> None:
    config, _tree, _repo = restic_job
    code, run = drill(config, "photos", "--files", "5", "--bytes", "30KB")
    assert code == 0
    assert run["stats"]["drill"]["files_checked"] <= 5
    assert run["stats"]["drill"]["bytes_restored"] <= 30_000


def test_a_borg_drill_passes_and_fails_on_damage(tmp_path: Path) -> None:
    need_tool("borg")
    tree = make_tree(tmp_path / "home", files=40)
    repo = tmp_path / "borg"
    env = {**os.environ, "BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(tmp_path / "base")}
    subprocess.run(["borg", "init", "-e", "repokey", str(repo)], env=env, check=True)
    subprocess.run(["borg", "create", f"{repo}::a1", str(tree)], env=env, check=True)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "home"
tool = "borg"
env = {{BORG_PASSPHRASE = "{PASSWORD}", BORG_BASE_DIR = "{tmp_path / "base"}"}}
[jobs.borg]
repository = "{repo}"
paths = ["{tree}"]
""",
    )
    code, run = drill(config, "home", "--files", "10")
    assert code == 0, run["message"]
    assert run["stats"]["drill"]["files_checked"] == 10
    assert run["stats"]["drill"]["snapshot"] == "a1"
    damage(repo / "data")
    code, run = drill(config, "home", "--files", "40")
    assert code == 1 and run["stats"]["verify"] == "failed", run["message"]
    assert_no_drill_dirs(tmp_path / "data")
    assert "verify_failed" in open_rules(tmp_path / "data", "home")


def test_a_builtin_drill_checks_the_manifest_hashes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "docs", files=30)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "docs"
tool = "builtin"
destinations = ["{tmp_path / "d1"}"]
[jobs.builtin]
paths = ["{tree}"]
[jobs.drill]
files = 30
""",
    )
    backup = CliRunner().invoke(app, ["backup", "docs", "--config", str(config)])
    assert backup.exit_code == 0, backup.output
    code, run = drill(config, "docs")
    assert code == 0 and run["stats"]["drill"]["files_checked"] == 30, run["message"]
    snapshots = tmp_path / "d1" / "snapshots"
    (manifest,) = snapshots.glob("*/manifest.json")
    saved = manifest.read_bytes()
    manifest.write_bytes(b"{broken")
    code, run = drill(config, "docs")
    assert code == 1 and "manifest" in run["message"], run["message"]
    manifest.write_bytes(saved)
    (archive,) = snapshots.glob("*/data.tar.zst")
    size = archive.stat().st_size
    with open(archive, "r+b") as fh:  # the compressed file contents, not the manifest
        fh.seek(size // 2)
        fh.write(b"\0" * 64)
    code, run = drill(config, "docs")
    assert code == 1 and run["status"] == "failed", run["message"]
    assert_no_drill_dirs(tmp_path / "data")


def test_a_drill_killed_by_sigterm_leaves_no_directory(restic_job) -> None:
    config, _tree, _repo = restic_job
    data = config.parent / "data"
    # a restic whose restores take their time, so that the signal finds the drill mid-way
    slow = config.parent / "slow-restic"
    slow.write_text('#!/bin/sh\ncase "$*" in *restore*) sleep 20;; esac\nexec restic "$@"\n')
    slow.chmod(0o755)
    config.write_text(config.read_text() + f'binary = "{slow}"\n')  # into [jobs.restic]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKWATCH_")}
    proc = subprocess.Popen(
        [*BACKWATCH, "drill", "photos", "--files", "60", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (data / "drills").is_dir() and list((data / "drills").iterdir()):
            break
        time.sleep(0.02)
    else:
        pytest.fail("the drill never made its directory")
    time.sleep(1.0)  # into the slow restore
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - began < 15  # it stopped; it did not wait for the restore
    assert_no_drill_dirs(data)


def test_drill_errors_are_clear(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "bw.toml", tmp_path / "data", '[[jobs]]\nid = "script"\ncommand = "true"\n'
    )
    done = CliRunner().invoke(app, ["drill", "script", "--config", str(config)])
    assert done.exit_code != 0 and "nothing a drill can restore" in done.output
    unknown = CliRunner().invoke(app, ["drill", "nope", "--config", str(config)])
    assert unknown.exit_code != 0 and "no job 'nope'" in unknown.output
    bad = CliRunner().invoke(app, ["drill", "script", "--bytes", "lots", "--config", str(config)])
    assert bad.exit_code == 2 and "--bytes" in bad.output


def test_a_command_job_drills_with_its_drill_command(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        '[[jobs]]\nid = "db"\ntool = "command"\ncommand = "true"\n'
        '[jobs.drill]\ncommand = "echo restoring; exit 3"\n',
    )
    code, run = drill(config, "db")
    assert code == 1 and run["status"] == "failed" and run["exit_code"] == 3
    assert "restoring" in run["log"]


def test_a_passed_drill_makes_the_job_restorable_as_of_its_end(restic_job) -> None:
    config, _tree, _repo = restic_job
    data = config.parent / "data"

    def job_now() -> dict[str, Any]:
        shown = CliRunner().invoke(app, ["status", "photos", "--json", "--config", str(config)])
        return json.loads(shown.stdout)["job"]  # type: ignore[no-any-return]

    code, _run = drill(config, "photos", "--files", "3", "--bytes", "1")  # restores nothing
    assert code == 4 and job_now()["last_verified_at"] is None
    code, _run = drill(config, "photos", "--files", "3")
    assert code == 0
    job = job_now()
    assert job["last_verified_at"] is not None
    assert job["last_run"] is None  # a drill is not the job's latest backup
    assert job["last_drill"]["status"] == "success"
    assert job["last_drill"]["estimate_full_restore_s"] > 0
    shown = CliRunner().invoke(
        app, ["status", "photos", "--config", str(config)], env={"COLUMNS": "200"}
    )
    assert "a full restore would take about" in " ".join(shown.stdout.split())
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app

    settings = make_settings(data)
    with TestClient(create_app(settings)) as client:
        metrics = client.get("/metrics").text
        assert "backwatch_job_last_verified_timestamp_seconds{host=" in metrics or (
            "backwatch_job_last_verified_timestamp_seconds{job=" in metrics
        )
        page = client.get("/jobs/photos").text
        assert "Restorable as of" in page and "never proven" not in page
        assert "full restore ≈" in page


def test_the_server_drills_a_job_it_runs_once_a_week(restic_job) -> None:
    from backwatch.domain.lifecycle import RunStatus
    from backwatch.domain.report import RunReport
    from backwatch.runners.scheduler import Scheduler
    from backwatch.services import runs

    config, _tree, _repo = restic_job
    config.write_text(
        config.read_text().replace(
            'tool = "restic"', 'tool = "restic"\nrun_by = "server"\nschedule = "0 3 * * *"'
        )
    )
    settings = make_settings(config.parent / "data", BACKWATCH_CONFIG=str(config))
    with Hub(settings) as hub:
        scheduler = Scheduler(hub)
        now = time.time()
        assert scheduler._drills_due(now) == []  # no good backup yet: nothing to drill
        backup = RunReport(job="photos", status=RunStatus.SUCCESS, started_at=now - 60,
                           finished_at=now - 30, kind="backup")  # fmt: skip
        hub.write(runs.record_report(backup, now))
        assert scheduler._drills_due(now) == ["photos"]
        scheduler.trigger_drill("photos", "schedule")
        scheduler.join(120)
        with hub.read_engine.connect() as conn:
            from backwatch.store import queries

            drills = [r for r in queries.list_runs(conn, job="photos")[0] if r["kind"] == "drill"]
        assert len(drills) == 1 and drills[0]["status"] == "success"
        assert drills[0]["trigger"] == "schedule"
        assert scheduler._drills_due(time.time()) == []  # proven just now
        assert scheduler._drills_due(time.time() + 8 * 86400) == ["photos"]  # a week later


def test_each_destination_of_a_builtin_job_is_drilled_and_estimated(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "docs", files=20)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "docs"
tool = "builtin"
destinations = ["{tmp_path / "d1"}", "{tmp_path / "d2"}"]
[jobs.builtin]
paths = ["{tree}"]
""",
    )
    backup = CliRunner().invoke(app, ["backup", "docs", "--config", str(config)])
    assert backup.exit_code == 0, backup.output
    code, run = drill(config, "docs", "--files", "5")
    assert code == 0, run["message"]
    each = run["stats"]["drill"]["destinations"]
    assert [d["destination"] for d in each] == [str(tmp_path / "d1"), str(tmp_path / "d2")]
    assert all(d["status"] == "success" and d["estimate_full_restore_s"] for d in each)
    (archive,) = (tmp_path / "d2" / "snapshots").glob("*/data.tar.zst")
    archive.write_bytes(b"\0" * archive.stat().st_size)  # the second disk's copy is lost
    code, run = drill(config, "docs", "--files", "5")
    assert code == 1 and str(tmp_path / "d2") in run["message"], run["message"]
    assert run["stats"]["drill"]["destinations"][0]["status"] == "success"


def test_an_rsync_copy_is_proven_only_by_its_unchanged_sources(tmp_path: Path) -> None:
    need_tool("rsync")
    tree = make_tree(tmp_path / "src", files=12)
    dest = tmp_path / "mirror"
    subprocess.run(["rsync", "-a", f"{tree}/", f"{dest}/"], check=True)
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "mirror"
tool = "rsync"
[jobs.rsync]
paths = ["{tree}/"]
destination = "{dest}"
""",
    )
    code, run = drill(config, "mirror", "--files", "12")
    assert code == 0 and run["stats"]["drill"]["files_checked"] == 12, run["message"]
    # a source edited after the copy was made is news, not damage
    edited = tree / "d1" / "f001.bin"
    with open(edited, "ab") as fh:
        fh.write(b"edited after the sync")
    code, run = drill(config, "mirror", "--files", "12")
    assert code == 0 and run["stats"]["drill"]["changed_since"] == ["d1/f001.bin"]
    # the copy's bytes rot under an unchanged size and mtime: the source says so
    rotten = dest / "d2" / "f002.bin"
    st = rotten.stat()
    rotten.write_bytes(b"\0" * st.st_size)
    os.utime(rotten, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, run = drill(config, "mirror", "--files", "12")
    assert code == 1 and run["stats"]["drill"]["differ"] == ["d2/f002.bin"], run["message"]
    # with every source gone nothing vouches for the copy: not a success
    for path in tree.rglob("*.bin"):
        path.unlink()
    rotten.unlink()
    code, run = drill(config, "mirror", "--files", "12")
    assert code == 4 and run["status"] == "unknown", run["message"]
    assert "nothing proves the copy" in run["message"]


def test_the_drill_endpoint_refuses_what_it_cannot_do(restic_job) -> None:
    from fastapi.testclient import TestClient

    from backwatch.services import tokens
    from backwatch.web.app import create_app

    config, _tree, _repo = restic_job
    settings = make_settings(config.parent / "data", BACKWATCH_CONFIG=str(config))
    with TestClient(create_app(settings)) as client:
        admin = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        hub = client.app.state.hub  # type: ignore[attr-defined]
        secret, _ = hub.write(tokens.create_token("host1", "ingest", hub.now()))
        ingest = {"Authorization": f"Bearer {secret}"}
        assert client.post("/api/v1/jobs/photos/drill", headers=ingest).status_code == 403
        unknown = client.post("/api/v1/jobs/nope/drill", headers=admin)
        assert unknown.status_code == 404 and "not declared" in unknown.text
        for params in ({"max_bytes": "lots"}, {"files": 0}, {"files": 10**9}):
            bad = client.post("/api/v1/jobs/photos/drill", params=params, headers=admin)
            assert bad.status_code == 422, (params, bad.text)
        assert client.get("/api/v1/runs", params={"job": "photos"}).json()["items"] == []
        done = client.post("/api/v1/jobs/photos/drill", params={"files": 3}, headers=admin)
        assert done.status_code == 201 and done.json()["kind"] == "drill"
        assert done.json()["status"] == "success", done.json()["message"]
