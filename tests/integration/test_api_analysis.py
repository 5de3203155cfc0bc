"""``GET /api/v1/jobs/{id}/analysis``, ``GET /api/v1/health/checks`` and
``POST /api/v1/health/checks/fix`` on the real app and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from backwatch.services import tokens
from backwatch.services.diagnostics import CHECKS

DAY = 86400.0


def report_runs(api: Any, job: str = "nightly", days: int = 12) -> None:
    """One run a day: durations growing, the upload phase taking most of the time."""
    now = time.time()
    for i in range(days):
        phases = [{"name": "dump", "duration_s": 20}, {"name": "upload", "duration_s": 80 + 10 * i}]
        run = {
            "job": job,
            "status": "success",
            "started_at": now - DAY * (days - i),
            "duration_s": 100 + 10 * i,
            "size_bytes": 1_000_000 + 1000 * i,
            "phases": phases,
        }
        resp = api.post("/api/v1/runs", json=run, headers=api.auth_headers)
        assert resp.status_code in (200, 201), resp.text


def test_analysis_of_a_job(api: Any) -> None:
    report_runs(api)
    body = api.get("/api/v1/jobs/nightly/analysis?period=30d").json()
    assert body["job"] == "nightly" and body["period"] == "30d" and body["runs"] == 12
    assert body["duration_trend"]["direction"] == "increasing"
    assert body["duration_trend"]["slope_per_day"] == pytest.approx(10, rel=0.01)
    assert body["size_trend"]["direction"] == "stable"  # +1000 B a day on 1 MB
    assert body["bottleneck"]["phase"] == "upload" and body["bottleneck"]["share_percent"] > 80
    assert [r["rule"] for r in body["regressions"]] == ["duration_regression"]
    assert body["forecast"]["duration_s"] > 200 and body["forecast"]["next_run_at"]
    assert any(line.startswith("phase upload takes") for line in body["recommendations"])


def test_analysis_period_limits_the_runs(api: Any) -> None:
    report_runs(api)
    body = api.get("/api/v1/jobs/nightly/analysis?period=84h").json()  # 3.5 days: 3 runs
    assert body["runs"] == 3 and body["bottleneck"]["runs"] == 3


def test_analysis_counts_backups_not_checks(api: Any) -> None:
    report_runs(api)
    now = time.time()
    for i in range(3):  # a long repository check every night: not a backup (issue 13)
        check = {"job": "nightly", "status": "failed", "kind": "check",
                 "started_at": now - DAY * i - 3600, "duration_s": 5000,
                 "phases": [{"name": "check", "duration_s": 5000}]}  # fmt: skip
        assert api.post("/api/v1/runs", json=check, headers=api.auth_headers).status_code == 201
    body = api.get("/api/v1/jobs/nightly/analysis?period=30d").json()
    assert body["runs"] == 12 and body["failed"] == 0
    assert body["bottleneck"]["phase"] == "upload"
    assert body["duration_trend"]["slope_per_day"] == pytest.approx(10, rel=0.01)


def test_analysis_of_an_unknown_job_is_404(api: Any) -> None:
    resp = api.get("/api/v1/jobs/nope/analysis")
    assert resp.status_code == 404
    assert resp.json()["error"] == {"code": "not_found", "message": "job 'nope' not found"}


@pytest.mark.parametrize("period", ["soon", "0d", "800d"])
def test_analysis_with_a_bad_period_is_422(api: Any, period: str) -> None:
    report_runs(api, days=1)
    resp = api.get(f"/api/v1/jobs/nightly/analysis?period={period}")
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "period"


def test_reads_need_a_token_when_reads_are_protected(api: Any, settings: Any) -> None:
    report_runs(api, days=1)
    settings.auth.read = "token"
    for path in ("/api/v1/jobs/nightly/analysis", "/api/v1/health/checks"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers=api.auth_headers).status_code == 200


def test_health_checks(api: Any) -> None:
    body = api.get("/api/v1/health/checks").json()
    assert [c["name"] for c in body["checks"]] == list(CHECKS)
    by_name = {c["name"]: c for c in body["checks"]}
    assert by_name["database"]["status"] == "ok"
    assert by_name["migrations"]["status"] == "ok"
    assert by_name["writer"]["status"] == "ok"
    assert set(body) == {"status", "checks"} and body["status"] in ("ok", "warning")
    for check in body["checks"]:
        assert set(check) == {"name", "status", "detail", "fix", "fixable"}


def test_health_checks_find_failing_jobs(api: Any) -> None:
    run = {"job": "mail", "status": "failed", "started_at": time.time(), "message": "full"}
    resp = api.post("/api/v1/runs", json=run, headers=api.auth_headers)
    assert resp.status_code in (200, 201), resp.text
    body = api.get("/api/v1/health/checks?checks=jobs_failing,database").json()
    assert [c["name"] for c in body["checks"]] == ["jobs_failing", "database"]
    failing = body["checks"][0]
    assert failing["status"] == "critical" and "mail" in failing["detail"] and failing["fix"]
    assert body["status"] == "critical"


def test_health_checks_name_jobs_whose_latest_backup_is_in_doubt(api: Any) -> None:
    run = {"job": "mail", "status": "unknown", "started_at": time.time(), "message": "no log"}
    resp = api.post("/api/v1/runs", json=run, headers=api.auth_headers)
    assert resp.status_code in (200, 201), resp.text
    [check] = api.get("/api/v1/health/checks?checks=jobs_failing").json()["checks"]
    assert check["status"] == "warning" and "outcome unknown: mail" in check["detail"]


def test_unknown_check_is_422(api: Any) -> None:
    resp = api.get("/api/v1/health/checks?checks=coffee_level")
    assert resp.status_code == 422
    assert "unknown check 'coffee_level'" in resp.json()["error"]["message"]


def test_fix_needs_an_admin_token(api: Any, settings: Any) -> None:
    assert api.post("/api/v1/health/checks/fix").status_code == 401
    hub = api.app.state.hub
    secret, _row = hub.write(tokens.create_token("reader", "read", time.time()))
    resp = api.post("/api/v1/health/checks/fix", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 403


def leave_stale_lock(data_dir: Path, job: str, run_id: str) -> None:
    """A real runner lock taken by a process that then dies without letting go."""
    code = (
        "import os, sys; from pathlib import Path; from backwatch.services.locks import Locks; "
        "Locks(Path(sys.argv[1])).acquire([f'job:{sys.argv[2]}'], "
        "note={'job': sys.argv[2], 'run_id': sys.argv[3]}); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(data_dir), job, run_id], check=True)


def test_fix_clears_a_stale_lock_and_closes_its_run(api: Any, settings: Any) -> None:
    started = api.post("/api/v1/runs/start", json={"job": "nightly"}, headers=api.auth_headers)
    run_id = started.json()["id"]
    leave_stale_lock(settings.data_dir, "nightly", run_id)

    before = api.get("/api/v1/health/checks?checks=stale_locks").json()["checks"][0]
    assert before["status"] == "warning" and before["fixable"] and run_id in before["detail"]

    resp = api.post("/api/v1/health/checks/fix", headers=api.auth_headers)
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["fixed"]) == 1 and "job:nightly" in body["fixed"][0]
    assert {c["name"]: c["status"] for c in body["checks"]}["stale_locks"] == "ok"

    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "failed" and "died" in run["message"]
    events = api.get("/api/v1/events?kind=auto_resolve").json()["items"]
    assert events and events[0]["detail"]["problem"] == "stale lock"
    # nothing left to do: a second fix changes nothing
    assert api.post("/api/v1/health/checks/fix", headers=api.auth_headers).json()["fixed"] == []
