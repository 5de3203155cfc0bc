"""Ping pairing with a clock the test moves: durations and times are exact."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from backwatch.domain.lifecycle import ACTIVE
from backwatch.services.hub import Hub
from backwatch.store import tables as t
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


def test_a_ping_finds_its_open_run_through_the_open_runs_index(clocked, settings):
    """Issue 18: a ping must cost the same at 20,000 runs of its job as at 10. The query
    that pairs a finish with its start is the one the server really sends, caught on the
    wire, and SQLite (or PostgreSQL) plans it on the open-runs index, not a scan of the job."""
    path = ping_path(clocked, "every5min")
    hub = clocked.app.state.hub
    now = clocked.clock.t
    closed = [
        {"id": f"old-{i}", "job": "every5min", "status": "success", "source": "ping",
         "trigger": "schedule", "started_at": now - 300 * (i + 1), "updated_at": now}
        for i in range(20_000)
    ]  # fmt: skip
    with hub.write_engine.begin() as conn:
        conn.execute(t.runs.insert(), closed)
    seen: list[tuple[str, Any]] = []

    def catch(conn, cursor, statement, params, context, many) -> None:
        if "FROM runs" in statement and "queued" in statement:
            seen.append((statement, params))

    event.listen(hub.write_engine, "before_cursor_execute", catch)
    try:
        clocked.get(path + "/start")
        clocked.clock.advance(60)
        clocked.get(path)
    finally:
        event.remove(hub.write_engine, "before_cursor_execute", catch)
    assert seen, "the pairing query was not sent"
    statement, params = seen[-1]
    with hub.read_engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            assert "ix_runs_open" in " ".join(str(row) for row in plan), plan
        else:  # the planner knows the table now
            conn.exec_driver_sql("ANALYZE runs")
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", params).scalars().all()
            assert "ix_runs_open" in " ".join(plan), plan
    done = [r for r in runs(clocked, "every5min") if r["id"].startswith("old-") is False]
    assert [(r["status"], r["duration_s"]) for r in done] == [("success", 60)]


def test_the_open_runs_index_says_what_the_domain_calls_open():
    quoted = re.findall(r"'(\w+)'", t.OPEN_RUN)
    assert set(quoted) == {s.value for s in ACTIVE}
