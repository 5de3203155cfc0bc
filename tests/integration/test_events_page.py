"""The events page names runs by their whole id (issue 19: it cut them to 12 characters,
which matched nothing a user could search for or paste into ``backwatch``)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient


def test_a_run_event_shows_and_links_the_whole_run_id(api: TestClient) -> None:
    body = {"job": "db", "status": "failed", "started_at": time.time() - 60, "duration_s": 5}
    resp = api.post("/api/v1/runs", json=body, headers=api.auth_headers)  # type: ignore[attr-defined]
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    assert len(run_id) > 12
    page = api.get("/events").text
    assert f'<a href="/runs/{run_id}"><code>{run_id}</code></a>' in page
