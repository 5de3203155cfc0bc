"""``backwatch runs delete ID --url …`` against a real ``backwatch serve`` (issue 14)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import Server, run_cli


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))


def test_runs_delete_over_http_needs_an_admin_token(server: Server, tmp_path: Path) -> None:
    env = {"BACKWATCH_TOKEN": server.token, "BACKWATCH_DATA_DIR": str(tmp_path / "cli")}
    url = ["--url", server.url]
    for run_id, start in (("r-ok", "2026-05-01T02:00:00Z"), ("r-9799", "9799-01-01T00:00:00Z")):
        report = {"id": run_id, "job": "nightly", "status": "failed", "started_at": start}
        if run_id == "r-ok":
            report["status"] = "success"
        pushed = run_cli("push", "--json", "-", *url, env=env, input=json.dumps(report))
        assert pushed.returncode == 0, pushed.stderr
    ingest = run_cli("token", "create", "--name", "box", "--scope", "ingest", "--data-dir",
                     str(server.data_dir))  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    ingest_token = ingest.stdout.split()[-1]
    refused = run_cli(
        "runs", "delete", "r-9799", *url, env={**env, "BACKWATCH_TOKEN": ingest_token}
    )
    assert refused.returncode == 1 and "admin" in refused.stderr, refused.stderr

    deleted = run_cli("runs", "delete", "r-9799", "--json", *url, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"id": "r-9799", "job": "nightly", "deleted": True}
    again = run_cli("runs", "delete", "r-9799", *url, env=env)
    assert again.returncode == 1 and "not found" in again.stderr
    deadline = time.monotonic() + 30
    while True:  # the failed run's alert resolves on the evaluator's next pass
        status = run_cli("status", "nightly", "--json", *url, env=env)
        assert status.returncode == 0, status.stderr
        job = json.loads(status.stdout)["job"]
        assert job["last_run"]["id"] == "r-ok"
        if job["health"] == "ok" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert job["health"] == "ok", job
    audit = run_cli("audit", "--since", "1h", "--filter", "delete", "--json", *url, env=env)
    assert audit.returncode == 0, audit.stderr
    assert [e["entity_id"] for e in json.loads(audit.stdout)] == ["r-9799"]
