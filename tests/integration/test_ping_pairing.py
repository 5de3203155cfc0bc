"""Ping pairing with a clock the test moves: durations and times are exact."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from backwatch.services.hub import Hub
from backwatch.timeutil import parse_time
from backwatch.web.app import create_app


@pytest.fixture
def clocked(settings, clock):
    """The real app on the real database, with the hub's clock in the test's hands."""
    hub = Hub(settings, grouped=True, clock=clock)
    with TestClient(create_app(settings, hub=hub)) as client:
        client.auth_headers = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        client.clock = clock
        yield client
    hub.close()


def ping_path(client, job: str) -> str:
    resp = client.put(f"/api/v1/jobs/{job}", json={}, headers=client.auth_headers)
    assert resp.status_code == 200, resp.text
    return urlsplit(resp.json()["ping_url"]).path


def runs(client, job: str) -> list[dict]:
    items = client.get("/api/v1/runs", params={"job": job}).json()["items"]
    return sorted(items, key=lambda r: parse_time(r["started_at"]))


def test_borgmatic_style_start_and_finish_without_rid(clocked):
    path = ping_path(clocked, "borg")
    clocked.post(path + "/start", content=b"")
    clocked.clock.advance(42.5)
    clocked.post(path, content=b"borgmatic log\n")
    [run] = runs(clocked, "borg")
    assert run["status"] == "success"
    assert run["duration_s"] == 42.5
    detail = clocked.get(f"/api/v1/runs/{run['id']}").json()
    assert detail["log"] == "borgmatic log\n"
    assert [e["to_state"] for e in detail["events"]] == ["running", "success"]
    assert {e["actor"] for e in detail["events"]} == {"ping"}


def test_finish_pairs_with_the_newest_start_and_cancels_the_older(clocked):
    path = ping_path(clocked, "borg")
    clocked.get(path + "/start")
    clocked.clock.advance(10)
    clocked.get(path + "/start")
    clocked.clock.advance(5)
    clocked.get(path + "/1")
    first, second = runs(clocked, "borg")
    assert (first["status"], first["duration_s"]) == ("cancelled", 10)
    assert (second["status"], second["duration_s"], second["exit_code"]) == ("failed", 5, 1)


def test_interleaved_rid_runs_get_their_own_durations(clocked):
    path = ping_path(clocked, "borg")
    a, b = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    clocked.get(f"{path}/start?rid={a}")
    clocked.clock.advance(3)
    clocked.get(f"{path}/start?rid={b}")
    clocked.clock.advance(4)
    clocked.get(f"{path}/0?rid={a}")
    clocked.clock.advance(6)
    clocked.get(f"{path}/fail?rid={b}")
    ra, rb = runs(clocked, "borg")
    assert (ra["backup_id"], ra["status"], ra["duration_s"]) == (a, "success", 7)
    assert (rb["backup_id"], rb["status"], rb["duration_s"]) == (b, "failed", 10)


def test_finish_with_no_open_start_is_a_zero_length_run(clocked):
    path = ping_path(clocked, "borg")
    clocked.get(path + "/start")
    clocked.clock.advance(8)
    clocked.get(path)
    clocked.clock.advance(100)
    clocked.get(path + "/fail")
    first, second = runs(clocked, "borg")
    assert (first["status"], first["duration_s"]) == ("success", 8)
    assert (second["status"], second["duration_s"]) == ("failed", 0)
    assert second["started_at"] == second["finished_at"]


def test_job_health_follows_pings(clocked):
    path = ping_path(clocked, "borg")
    clocked.get(path + "/start")
    assert clocked.get("/api/v1/jobs/borg").json()["health"] == "running"
    clocked.clock.advance(60)
    clocked.get(path + "/fail")
    job = clocked.get("/api/v1/jobs/borg").json()
    assert job["health"] == "failing"
    assert job["last_run"]["duration_s"] == 60
