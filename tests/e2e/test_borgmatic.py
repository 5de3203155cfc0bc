"""A real borgmatic, with its Healthchecks hook pointed at a real backwatch server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backwatch.timeutil import parse_time
from tests.conftest import need, need_tool

pytestmark = pytest.mark.slow
JOB = "borg-home"


def borgmatic_bin() -> str:
    path = Path(sys.executable).parent / "borgmatic"
    need(path.exists(), "borgmatic is not installed (pip install -e '.[dev]')")
    return str(path)


def write_config(tmp: Path, *, repo: Path, ping_url: str) -> Path:
    """A borgmatic configuration (JSON is YAML) backing up ``tmp/src`` to ``repo``."""
    config = {
        "source_directories": [str(tmp / "src")],
        "repositories": [{"path": str(repo), "label": "local"}],
        "encryption_passphrase": "not-a-secret",
        "user_runtime_directory": str(tmp / "run"),
        "user_state_directory": str(tmp / "state"),
        "healthchecks": {"ping_url": ping_url, "send_logs": True},
    }
    path = tmp / f"borgmatic-{repo.name}.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def borgmatic(tmp: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOME": str(tmp / "home"),
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    }
    return subprocess.run(
        [borgmatic_bin(), "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def runs(http: httpx.Client) -> list[dict]:
    items = http.get("/api/v1/runs", params={"job": JOB}).json()["items"]
    return [http.get(f"/api/v1/runs/{r['id']}").json() for r in items]


def test_borgmatic_reports_success_and_failure(server, tmp_path):
    need_tool("borg")
    borgmatic_bin()
    for i in range(20):
        sub = tmp_path / "src" / f"d{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    (tmp_path / "home").mkdir()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = {"Authorization": f"Bearer {server.token}"}
        resp = http.put(f"/api/v1/jobs/{JOB}", json={"tool": "borg"}, headers=token)
        assert resp.status_code == 200, resp.text
        ping_url = resp.json()["ping_url"]
        key = ping_url.rsplit("/", 1)[1]
        assert ping_url == f"{server.url}/ping/{key}"

        config = write_config(tmp_path, repo=tmp_path / "repo", ping_url=ping_url)
        init = borgmatic(tmp_path, config, "repo-create", "--encryption", "repokey")
        assert init.returncode == 0, init.stderr
        assert runs(http) == []  # repo-create is no backup: borgmatic sends no ping

        done = borgmatic(tmp_path, config, "create", "--verbosity", "1")
        assert done.returncode == 0, done.stderr
        assert "Healthchecks error" not in done.stderr + done.stdout
        [run] = runs(http)
        assert run["status"] == "success"
        assert run["source"] == "ping"
        assert run["duration_s"] > 0
        assert parse_time(run["finished_at"]) > parse_time(run["started_at"])
        assert f'Creating archive at "{tmp_path / "repo"}::' in run["log"]
        assert run["log"].count("Creating archive at") == 1  # the /log and finish bodies, once
        assert "Pinging Healthchecks finish" in run["log"]
        assert key not in run["log"]

        broken = write_config(tmp_path, repo=tmp_path / "missing-repo", ping_url=ping_url)
        failed = borgmatic(tmp_path, broken, "create", "--verbosity", "1")
        assert failed.returncode != 0
        newest, oldest = runs(http)
        assert oldest["id"] == run["id"]
        assert newest["status"] == "failed"
        assert newest["duration_s"] is not None
        assert "missing-repo" in newest["log"]
        job = http.get(f"/api/v1/jobs/{JOB}").json()
        assert job["health"] == "failing"
        assert job["runs_total"] == 2
