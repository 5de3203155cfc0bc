"""Runs over HTTP (the real app on SQLite and PostgreSQL): seed 001 lines, native reports,
batches, the lifecycle calls, listing with a cursor, the summary and the audit trail."""

from __future__ import annotations

import time
from typing import Any

import pytest

from backwatch.cli.local import LocalTarget
from backwatch.errors import Conflict
from tests.conftest import make_settings
from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)
from tests.integration.test_store_runs import SEED_LINE


def iso(ts: float) -> str:
    from backwatch.timeutil import iso as to_iso

    return str(to_iso(ts))


def post(api: Any, body: Any, status: int | None = None) -> Any:
    response = api.post("/api/v1/runs", json=body, headers=api.auth_headers)
    if status is not None:
        assert response.status_code == status, response.text
    return response.json()


def test_the_seed001_line_shows_once_in_api_metrics(api):
    headers = {**api.auth_headers, "content-type": "application/json"}
    first = api.post("/api/v1/runs", content=SEED_LINE, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    assert first.json()["job"] == "backup"
    again = api.post("/api/v1/runs", content=SEED_LINE, headers=headers)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}

    metrics = api.get("/api/metrics").json()
    assert len(metrics) == 1
    (line,) = metrics
    assert line["timestamp"] == "2026-01-07T10:00:00Z"
    assert line["backup_id"] == "2026-01-07_020000"
    assert line["success"] is True
    assert line["size_bytes"] == 2912345678
    durations = {k: v for k, v in line.items() if k.startswith("duration_")}
    assert durations == {
        "duration_total": 1265,
        "duration_snapshot": 5,
        "duration_archive": 318,
        "duration_volumes": 485,
        "duration_upload": 457,
    }
    assert [k for k in line if k.startswith("duration_")][1:] == [  # phases in order
        "duration_snapshot",
        "duration_archive",
        "duration_volumes",
        "duration_upload",
    ]


def test_a_native_report_round_trips(api):
    now = time.time()
    report = {
        "id": "nas-1",
        "job": "nas",
        "host": "nas01",
        "status": "warning",
        "started_at": iso(now - 120),
        "finished_at": iso(now - 20),
        "size_bytes": 4096,
        "files": 12,
        "files_new": 3,
        "exit_code": 1,
        "message": "1 file vanished",
        "log": "line 1\nline 2\n",
        "tool": "restic",
        "stats": {"dedup": 1.5},
        "phases": {"scan": 40, "upload": 60},
        "restic_version": "0.17",
    }
    assert post(api, report, 201) == {"id": "nas-1", "job": "nas", "status": "warning",
                                      "created": True}  # fmt: skip
    run = api.get("/api/v1/runs/nas-1").json()
    assert run["duration_s"] == 100
    assert (run["size_bytes"], run["files"], run["files_new"], run["exit_code"]) == (4096, 12, 3, 1)
    assert run["log"] == "line 1\nline 2\n"
    assert run["stats"] == {"dedup": 1.5, "extra": {"restic_version": "0.17"}}
    assert [(p["name"], p["duration_s"]) for p in run["phases"]] == [("scan", 40), ("upload", 60)]
    assert run["phases"][1]["started_at"] == iso(now - 80)
    assert [(e["from_state"], e["to_state"]) for e in run["events"]] == [(None, "warning")]
    assert post(api, report, 200)["created"] is False


def test_a_batch(api):
    now = time.time()
    batch = [
        {"job": "a", "status": "success", "started_at": now - 100, "id": "b1"},
        {"timestamp": iso(now - 50), "backup_id": "x-1", "success": False, "job": "b"},
    ]
    body = post(api, batch, 201)
    assert [(i["id"], i["job"], i["status"], i["created"]) for i in body["items"]] == [
        ("b1", "a", "success", True),
        (body["items"][1]["id"], "b", "failed", True),
    ]
    again = post(api, batch, 200)
    assert [i["created"] for i in again["items"]] == [False, False]
    assert len(api.get("/api/v1/runs").json()["items"]) == 2


def test_a_batch_is_taken_alike_by_the_server_and_the_database_target(api, tmp_path):
    """``--db`` (cli/local.py) stores a batch as POST /api/v1/runs does: the same answer,
    all of it or none, and a bad item named by its place."""
    now = time.time()
    batch = [
        {"job": "a", "status": "success", "started_at": now - 100, "id": "c1"},
        {"job": "b", "status": "failed", "started_at": now - 50, "id": "c2"},
    ]
    # the second item's id belongs to job a: refused at write time, so c3 is not kept either
    bad = [
        {"job": "c", "status": "success", "started_at": now - 10, "id": "c3"},
        {"job": "d", "status": "success", "started_at": now - 10, "id": "c1"},
    ]
    local = LocalTarget(make_settings(tmp_path / "local"))
    try:
        assert local.report(batch) == post(api, batch, 201)
        assert local.report(batch) == post(api, batch, 200)
        with pytest.raises(Conflict) as refused:
            local.report(bad)
        answer = post(api, bad, 409)["error"]
        assert refused.value.message == answer["message"] and answer["message"].startswith("[1]")
        assert [r["id"] for r in local.list_runs()["items"]] == ["c2", "c1"]  # c3 not stored
    finally:
        local.close()


def test_the_lifecycle_over_http(api):
    auth = api.auth_headers
    start = api.post("/api/v1/runs/start", json={"job": "db", "host": "pg1"}, headers=auth)
    assert start.status_code == 201, start.text
    run_id = start.json()["id"]
    base = f"/api/v1/runs/{run_id}"
    for body in (
        {"name": "dump", "event": "start"},
        {"name": "dump", "event": "end"},
        {"name": "upload", "duration_s": 2.5},
    ):
        assert api.post(f"{base}/phases", json=body, headers=auth).status_code == 200
    files = {"files": [{"path": "/var/dump.sql", "size": 2048}, {"path": "/x", "size": 1}]}
    assert api.post(f"{base}/files", json=files, headers=auth).json()["files"] == 2
    assert (
        api.post(f"{base}/status", json={"message": "uploading"}, headers=auth).status_code == 200
    )
    assert api.get("/api/v1/jobs/db").json()["health"] == "running"
    finish = api.post(
        f"{base}/finish", json={"status": "success", "exit_code": 0, "log": "ok"}, headers=auth
    )
    assert finish.status_code == 200, finish.text
    run = api.get(base).json()
    assert run["status"] == "success"
    assert run["size_bytes"] == 2049
    assert run["message"] == "uploading"
    assert run["log"] == "ok"
    assert [f["path"] for f in run["file_records"]] == ["/var/dump.sql", "/x"]
    assert [p["name"] for p in run["phases"]] == ["dump", "upload"]
    assert [(e["from_state"], e["to_state"]) for e in run["events"]] == [
        (None, "running"),
        ("running", "success"),
    ]
    job = api.get("/api/v1/jobs/db").json()
    assert job["health"] == "ok"
    assert job["last_run"]["id"] == run_id


def test_listing_runs_with_filters_and_a_cursor(api):
    now = time.time()
    batch = [
        {
            "id": f"r{i}",
            "job": "even" if i % 2 == 0 else "odd",
            "status": "failed" if i % 3 == 0 else "success",
            "started_at": now - 3600 * i,
        }
        for i in range(9)
    ]
    post(api, batch, 201)
    seen, cursor = [], None
    while True:
        url = "/api/v1/runs?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"r{i}" for i in range(9)]  # newest first, no gaps, no repeats

    def ids(query: str) -> list[str]:
        return [r["id"] for r in api.get(f"/api/v1/runs?{query}").json()["items"]]

    assert ids("job=odd") == ["r1", "r3", "r5", "r7"]
    assert ids("status=FAILED") == ["r0", "r3", "r6"]
    assert ids("since=2h30m") == ["r0", "r1", "r2"]
    assert ids(f"until={iso(now - 3600 * 6.5)}") == ["r7", "r8"]
    assert ids("job=even&status=failed") == ["r0", "r6"]
    assert ids("job=nobody") == []


def test_the_summary_equals_what_was_sent(api):
    now = time.time()
    sent = [
        ("a", "success", 10, 100),
        ("a", "success", 30, 300),
        ("a", "failed", 50, None),
        ("b", "warning", 70, 700),
    ]
    post(api, [
        {"job": j, "status": s, "started_at": now - 600 + i, "duration_s": d, "size_bytes": z}
        for i, (j, s, d, z) in enumerate(sent)
    ], 201)  # fmt: skip
    summary = api.get("/api/v1/summary?days=30").json()
    assert summary["days"] == 30
    assert summary["total"] == 4
    assert (summary["success"], summary["warning"], summary["failed"]) == (2, 1, 1)
    assert summary["success_rate"] == 0.75
    assert summary["avg_duration_s"] == 40
    assert summary["avg_size_bytes"] == round((100 + 300 + 700) / 3)
    assert summary["jobs"]["a"]["total"] == 3
    assert summary["jobs"]["b"]["success_rate"] == 1.0
    only_b = api.get("/api/v1/summary?job=b").json()
    assert (only_b["total"], list(only_b["jobs"])) == (1, ["b"])


def test_the_events_audit_trail(api):
    now = time.time()
    post(api, {"id": "e1", "job": "audit", "status": "running", "started_at": now - 5}, 201)
    api.post("/api/v1/runs/e1/finish", json={"status": "failed"}, headers=api.auth_headers)
    changes = api.get("/api/v1/events?kind=state_change").json()["items"]
    assert [(e["entity_id"], e["from_state"], e["to_state"]) for e in changes] == [
        ("e1", "running", "failed"),
        ("e1", None, "running"),
    ]
    assert all(e["kind"] == "state_change" and e["job"] == "audit" for e in changes)
    config = api.get("/api/v1/events?kind=config&job=audit").json()["items"]
    assert [(e["entity"], e["to_state"]) for e in config] == [("job", "created")]
    assert api.get("/api/v1/events?since=1h").json()["items"]
    assert api.get(f"/api/v1/events?since={iso(now + 3600)}").json()["items"] == []


def test_api_metrics_keeps_the_30_newest(api):
    now = time.time()
    post(api, [
        {"timestamp": now - 60 * i, "backup_id": f"b{i:02d}", "success": True} for i in range(35)
    ], 201)  # fmt: skip
    metrics = api.get("/api/metrics").json()
    assert [m["backup_id"] for m in metrics] == [f"b{i:02d}" for i in range(30)]
