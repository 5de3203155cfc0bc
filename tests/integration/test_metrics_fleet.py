"""/metrics written in one pass (issue 18): each job's health series and the jobs per health
equal what the API shows, both formats parse, and a write is seen by the next scrape."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)
from tests.integration.test_job_list import EXPECTED, _fleet, _report

OM = "application/openmetrics-text;version=1.0.0"


def _families(api, accept: str | None = None) -> dict:
    resp = api.get("/metrics", headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200
    parse = parse_om if accept else parse_text
    return {f.name: f for f in parse(resp.text)}


def test_health_series_and_counts_equal_the_api(api):
    _fleet(api)
    shown = {j["id"]: j["health"] for j in api.get("/api/v1/jobs?limit=1000").json()["items"]}
    assert shown == EXPECTED
    for accept in (None, OM):
        families = _families(api, accept)
        health = {
            s.labels["job"]: s.labels["health"] for s in families["backwatch_job_health"].samples
        }
        assert health == shown
        overdue = {
            s.labels["job"] for s in families["backwatch_job_overdue"].samples if s.value == 1
        }
        assert overdue == {"missed-1", "late-1"}
        per_health = {s.labels["health"]: s.value for s in families["backwatch_jobs"].samples}
        assert per_health["ok"] == 2 and per_health["failing"] == 1 and per_health["new"] == 1
        assert sum(per_health.values()) == len(shown)
        hosts = {
            s.labels["job"]: s.labels["host"] for s in families["backwatch_job_health"].samples
        }
        assert hosts["ok-1"] == "web1" and hosts["new-1"] == ""


def test_a_write_is_seen_by_the_next_scrape(api):
    _report(api, "db")
    first = _families(api)["backwatch_job_health"].samples
    assert [(s.labels["job"], s.labels["health"]) for s in first] == [("db", "ok")]
    _report(api, "db", "failed", ago=10)
    again = _families(api)["backwatch_job_health"].samples
    assert [(s.labels["job"], s.labels["health"]) for s in again] == [("db", "failing")]
    runs = {
        s.labels["status"]: s.value
        for s in _families(api)["backwatch_job_runs"].samples
        if s.name == "backwatch_job_runs_total"
    }
    assert runs["success"] == 1 and runs["failed"] == 1


def test_a_scrape_can_keep_the_per_job_series_of_some_jobs(api):
    _fleet(api)
    resp = api.get("/metrics?health=failing,missed&host=web2")
    assert resp.status_code == 200
    families = {f.name: f for f in parse_text(resp.text)}
    jobs = {s.labels["job"] for f in families.values() for s in f.samples if "job" in s.labels}
    assert jobs == {"failing-1"}
    per_health = {s.labels["health"]: s.value for s in families["backwatch_jobs"].samples}
    assert sum(per_health.values()) == len(EXPECTED)  # the aggregate counts every job
    refused = api.get("/metrics?health=sideways")
    assert refused.status_code in (400, 422) and "health" in refused.text
