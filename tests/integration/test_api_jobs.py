"""Jobs over HTTP: list, get, put, pause, resume; health and next due; the secret ping URL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from backwatch.services import tokens
from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)


def report(api: Any, job: str, status: str = "success", ago: float = 60) -> dict:
    body = {"job": job, "status": status, "started_at": time.time() - ago, "duration_s": 5}
    response = api.post("/api/v1/runs", json=body, headers=api.auth_headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_jobs_appear_on_first_report_with_health(api):
    ok = report(api, "photos")
    report(api, "db", status="failed")
    items = api.get("/api/v1/jobs").json()["items"]
    assert [j["id"] for j in items] == ["db", "photos"]
    db, photos = items
    assert (db["health"], photos["health"]) == ("failing", "ok")
    assert photos["origin"] == "auto"
    assert photos["runs_total"] == 1
    assert photos["last_run"]["id"] == ok["id"]
    assert photos["last_run"]["status"] == "success"
    assert photos["last_success_at"] is not None
    assert db["last_success_at"] is None
    assert api.get("/api/v1/jobs/photos").json()["id"] == "photos"


def test_put_sets_schedule_and_grace(api):
    # the last run started just after the latest 02:00 in Berlin, so the job is not due
    # yet whatever the time of day the test runs at
    from croniter import croniter

    berlin_now = datetime.now(ZoneInfo("Europe/Berlin"))
    last_fire = croniter("0 2 * * *", berlin_now).get_prev(datetime).timestamp()
    report(api, "photos", ago=time.time() - (last_fire + 60))
    body = {
        "description": "Photo library to the NAS",
        "schedule": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "grace": "2h",
        "timeout": "6h",
        "tags": ["nas", "photos"],
    }
    response = api.put("/api/v1/jobs/photos", json=body, headers=api.auth_headers)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["grace_s"] == 7200
    assert job["timeout_s"] == 6 * 3600
    assert job["schedule"] == "0 2 * * *"
    assert job["timezone"] == "Europe/Berlin"
    assert job["tags"] == ["nas", "photos"]
    due = datetime.fromisoformat(job["next_due"].replace("Z", "+00:00"))
    local = due.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (2, 0)
    assert due > datetime.fromtimestamp(time.time() - 3600, UTC)
    assert job["health"] == "ok"
    assert api.get("/api/v1/jobs/photos", headers=api.auth_headers).json() == job
    events = api.get("/api/v1/events?kind=config&job=photos").json()["items"]
    assert events[0]["to_state"] == "updated"
    assert set(events[0]["detail"]["changed"]) >= {"grace_s", "schedule", "timezone"}


def test_put_creates_a_job(api):
    response = api.put("/api/v1/jobs/offsite", json={"schedule": "24h"}, headers=api.auth_headers)
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["id"], job["health"], job["last_run"]) == ("offsite", "new", None)
    # never ran: the first run is due one period after the job was declared (issue 13)
    created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(job["next_due"].replace("Z", "+00:00"))
    assert (due - created).total_seconds() == 24 * 3600
    assert [j["id"] for j in api.get("/api/v1/jobs").json()["items"]] == ["offsite"]
    assert job["origin"] == "api"


def test_a_late_job_goes_missed(api):
    report(api, "hourly", ago=3 * 3600)
    api.put("/api/v1/jobs/hourly", json={"schedule": "1h", "grace": "30m"},
            headers=api.auth_headers)  # fmt: skip
    assert api.get("/api/v1/jobs/hourly").json()["health"] == "missed"
    api.put("/api/v1/jobs/hourly", json={"grace": "3h"}, headers=api.auth_headers)
    assert api.get("/api/v1/jobs/hourly").json()["health"] == "late"


def test_pause_and_resume(api):
    report(api, "db", status="failed")
    paused = api.post("/api/v1/jobs/db/pause", headers=api.auth_headers)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["health"]) == (True, "paused")
    assert api.get("/api/v1/jobs/db").json()["health"] == "paused"
    again = api.post("/api/v1/jobs/db/pause", headers=api.auth_headers)
    assert again.json()["health"] == "paused"  # pausing twice is harmless
    resumed = api.post("/api/v1/jobs/db/resume", headers=api.auth_headers).json()
    assert (resumed["paused"], resumed["health"]) == (False, "failing")
    changes = [
        (e["from_state"], e["to_state"])
        for e in api.get("/api/v1/events?kind=state_change&job=db").json()["items"]
        if e["entity"] == "job"
    ]
    assert changes == [("paused", "active"), ("active", "paused")]


def test_the_ping_url_is_a_secret(api):
    report(api, "photos")
    anonymous = api.get("/api/v1/jobs").json()["items"][0]
    assert "ping_url" not in anonymous
    assert "ping_url" not in api.get("/api/v1/jobs/photos").json()
    wrong = api.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"}).json()
    assert "ping_url" not in wrong["items"][0]
    hub = api.app.state.hub
    reader, _ = hub.write(tokens.create_token("reader", "read", hub.now()))
    as_reader = api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {reader}"}).json()
    assert "ping_url" not in as_reader["items"][0]
    owner = api.get("/api/v1/jobs/photos", headers=api.auth_headers).json()
    assert "/ping/" in owner["ping_url"]
    key = owner["ping_url"].rsplit("/", 1)[1]
    # nowhere else in the anonymous API either
    for url in ("/api/v1/jobs", "/api/v1/jobs/photos", "/api/v1/events", "/api/v1/runs"):
        assert key not in api.get(url).text


def test_put_refuses_fields_that_live_in_the_config_file(api):
    r = api.put("/api/v1/jobs/x", json={"restic": {"repository": "/r"}}, headers=api.auth_headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [
        {"field": "restic", "problem": "is set in backwatch.toml, not over the API"}
    ]
    r = api.put("/api/v1/jobs/x", json={"schedul": "24h"}, headers=api.auth_headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "schedul"
    assert api.get("/api/v1/jobs/x").status_code == 404
