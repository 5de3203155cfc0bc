"""/metrics at fleet size (issue 18): above ``[metrics] per_job_limit`` jobs only the jobs with
a problem keep their per-job series, the aggregates (jobs per health and per tag, runs per
status) still count every job, and a gauge says the series are limited. On SQLite and
PostgreSQL, with a limit of 5 set by BACKWATCH_METRICS__PER_JOB_LIMIT in place of 10,000 jobs."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.conftest import Server, make_settings, need_tool, run_cli
from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)
from tests.integration.test_job_list import EXPECTED, _fleet, _report

OM = "application/openmetrics-text;version=1.0.0"
#: the jobs of ``_fleet`` that keep their series above the limit
PROBLEM_JOBS = {"failing-1", "stuck-1", "unknown-1", "missed-1", "late-1"}


@pytest.fixture
def api_with_limit(tmp_path: Path, db_url: str) -> Iterator[Callable[[int], Any]]:
    """Open an in-process client of the real app whose per-job limit is ``limit`` jobs
    (one app per test: the limit is read from the environment at start)."""
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app

    @contextmanager
    def opened(limit: int) -> Iterator[Any]:
        settings = make_settings(
            tmp_path / "data", db_url, BACKWATCH_METRICS__PER_JOB_LIMIT=str(limit)
        )
        assert settings.metrics.per_job_limit == limit
        with TestClient(create_app(settings)) as client:
            client.token = settings.token_file.read_text().strip()  # type: ignore[attr-defined]
            client.auth_headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
            yield client

    yield opened


def _scrape(api: Any, query: str = "", accept: str | None = None) -> dict[str, Any]:
    resp = api.get("/metrics" + query, headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200, resp.text
    parse = parse_om if accept else parse_text  # the OpenMetrics parser is the strict one
    return {f.name: f for f in parse(resp.text)}


def _jobs_with_series(families: dict[str, Any]) -> set[str]:
    return {s.labels["job"] for f in families.values() for s in f.samples if "job" in s.labels}


def _value(families: dict[str, Any], name: str) -> float:
    (sample,) = families[name].samples
    return float(sample.value)


def _per_health(families: dict[str, Any]) -> dict[str, float]:
    return {s.labels["health"]: s.value for s in families["backwatch_jobs"].samples}


def test_at_the_limit_every_job_keeps_its_series(api_with_limit):
    with api_with_limit(len(EXPECTED)) as api:
        _fleet(api)
        for accept in (None, OM):
            families = _scrape(api, accept=accept)
            assert _jobs_with_series(families) == set(EXPECTED)
            assert _value(families, "backwatch_metrics_per_job_limited") == 0
            assert _value(families, "backwatch_metrics_jobs_left_out") == 0


def test_above_the_limit_only_problems_keep_their_series(api_with_limit):
    with api_with_limit(5) as api:
        _fleet(api)
        for accept in (None, OM):
            families = _scrape(api, accept=accept)
            assert _jobs_with_series(families) == PROBLEM_JOBS
            health = {
                s.labels["job"]: s.labels["health"]
                for s in families["backwatch_job_health"].samples
            }
            assert health == {job: EXPECTED[job] for job in PROBLEM_JOBS}
            failed = [
                s.value
                for s in families["backwatch_job_runs"].samples
                if s.labels == {"job": "failing-1", "host": "web2", "status": "failed"}
            ]
            assert failed == [1]
            assert _value(families, "backwatch_metrics_per_job_limited") == 1
            assert _value(families, "backwatch_metrics_jobs_left_out") == len(EXPECTED) - 5
            # the aggregate counts every job, those without series included
            assert _per_health(families) == {
                state: float(list(EXPECTED.values()).count(state))
                for state in _per_health(families)
            }
            assert sum(_per_health(families).values()) == len(EXPECTED)


def test_a_scrape_names_its_jobs_above_the_limit(api_with_limit):
    with api_with_limit(5) as api:
        _fleet(api)
        every = _scrape(api, "?jobs=all")
        assert _jobs_with_series(every) == set(EXPECTED)
        assert _value(every, "backwatch_metrics_per_job_limited") == 0
        assert _value(every, "backwatch_metrics_jobs_left_out") == 0
        chosen = _scrape(api, "?health=ok")
        assert _jobs_with_series(chosen) == {"ok-1", "ok-2"}
        assert _value(chosen, "backwatch_metrics_per_job_limited") == 0  # the scrape chose
        assert _value(chosen, "backwatch_metrics_jobs_left_out") == len(EXPECTED) - 2
        refused = api.get("/metrics?jobs=some")
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "jobs"


def test_a_job_gains_and_loses_its_series_with_its_health(api_with_limit):
    with api_with_limit(5) as api:
        _fleet(api)
        assert "ok-1" not in _jobs_with_series(_scrape(api))
        _report(api, "ok-1", "failed", host="web1", ago=10)
        _report(api, "failing-1", host="web2", ago=10)
        families = _scrape(api)  # the next scrape after a write is rebuilt
        assert _jobs_with_series(families) == PROBLEM_JOBS - {"failing-1"} | {"ok-1"}
        assert _per_health(families)["failing"] == 1


def test_aggregates_by_tag_and_runs_equal_the_api(api_with_limit):
    with api_with_limit(5) as api:
        _fleet(api)
        families = _scrape(api)
        by_tag: dict[str, dict[str, float]] = {}
        for s in families["backwatch_jobs_by_tag"].samples:
            by_tag.setdefault(s.labels["tag"], {})[s.labels["health"]] = s.value
        assert set(by_tag) == {"db", "nas"}
        for tag, found in by_tag.items():
            counts = api.get(f"/api/v1/jobs?tag={tag}&counts=true").json()["counts"]
            assert found == {state: float(n) for state, n in counts.items()}, tag
        assert {k: v for k, v in by_tag["db"].items() if v} == {"missed": 1, "late": 1}
        assert {k: v for k, v in by_tag["nas"].items() if v} == {"late": 1, "new": 1}
        # the fleet's run counter is the sum of every job's, those without series included
        every = _scrape(api, "?jobs=all")
        per_job: dict[str, float] = {}
        for s in every["backwatch_job_runs"].samples:
            per_job[s.labels["status"]] = per_job.get(s.labels["status"], 0) + s.value
        fleet = {
            s.labels["status"]: s.value
            for s in families["backwatch_runs"].samples
            if s.name == "backwatch_runs_total"
        }
        assert fleet == per_job
        assert fleet["failed"] == 2 and fleet["success"] == 4


def test_promtool_accepts_the_limited_metrics(api_with_limit, tmp_path: Path):
    promtool = need_tool("promtool")
    with api_with_limit(5) as api:
        _fleet(api)
        body = api.get("/metrics").content
    check = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _push(db: Path, job: str, status: str) -> None:
    body = {"job": job, "status": status, "started_at": time.time() - 60, "duration_s": 5}
    pushed = run_cli("push", "--db", str(db), "--json", "-", input=json.dumps(body))
    assert pushed.returncode == 0, pushed.stderr


def test_cli_and_a_server_follow_the_limit(tmp_path: Path):
    db = tmp_path / "data" / "backwatch.db"
    db.parent.mkdir()
    _push(db, "good", "success")
    _push(db, "bad", "failed")
    limit = {"BACKWATCH_METRICS__PER_JOB_LIMIT": "1"}

    def jobs(text: str) -> set[str]:
        return _jobs_with_series({f.name: f for f in parse_text(text)})

    limited = run_cli("metrics", "--db", str(db), env=limit)
    assert limited.returncode == 0, limited.stderr
    assert jobs(limited.stdout) == {"bad"}
    every = run_cli("metrics", "--db", str(db), "--all-jobs", env=limit)
    assert jobs(every.stdout) == {"good", "bad"}
    bad = run_cli("metrics", "--db", str(db), env={"BACKWATCH_METRICS__PER_JOB_LIMIT": "lots"})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "BACKWATCH_METRICS__PER_JOB_LIMIT" in bad.stderr

    server = Server(db.parent, env=limit).start()
    try:
        for flags, expected in (((), {"bad"}), (("--all-jobs",), {"good", "bad"})):
            got = run_cli("metrics", "--url", server.url, "--token", server.token, *flags)
            assert got.returncode == 0, got.stderr
            assert jobs(got.stdout) == expected, flags
    finally:
        server.stop()
