"""The job page says in sentences what GET /api/v1/jobs/{id}/analysis finds (issue 19: the
analysis was only in the API)."""

from __future__ import annotations

import html
import re
import time

from fastapi.testclient import TestClient


def _report(api: TestClient, status: str, ago_s: float) -> None:
    body = {"job": "db", "status": status, "started_at": time.time() - ago_s, "duration_s": 30}
    resp = api.post("/api/v1/runs", json=body, headers=api.auth_headers)  # type: ignore[attr-defined]
    assert resp.status_code == 201, resp.text


def _findings(page: str) -> list[str]:
    section = page[page.index('data-live-id="findings"') :]
    section = section[: section.index("</section>")]
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    return [html.unescape(re.sub(r"</?code>", "`", item)).strip() for item in items]


def test_the_job_page_shows_the_analysis_sentences(api: TestClient) -> None:
    for i, status in enumerate(["success", "failed", "success", "failed", "success"]):
        _report(api, status, (5 - i) * 3600)
    expected = api.get("/api/v1/jobs/db/analysis").json()["recommendations"]
    assert any("2 of 5 runs failed" in s for s in expected)
    shown = _findings(api.get("/jobs/db").text)
    assert shown == [s[:1].upper() + s[1:] for s in expected]
    assert "<code>backwatch history db --status failed</code>" in api.get("/jobs/db").text


def test_a_quiet_job_says_nothing_stands_out(api: TestClient) -> None:
    for i in range(3):
        _report(api, "success", (3 - i) * 3600)
    assert api.get("/api/v1/jobs/db/analysis").json()["recommendations"] == []
    page = api.get("/jobs/db").text
    assert _findings(page) == []
    assert "Nothing stands out" in page
