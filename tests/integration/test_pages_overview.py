"""The overview's job cards are rendered once and reused (web/pages/overview_cards.py):
a card must still show every change of its job, and health that moved with the clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock, make_settings


def card(page: str, job: str) -> dict[str, str]:
    """What the card of ``job`` shows: its health, last status, sparkline, next due, tags."""
    found = re.search(
        rf'<li class="job" data-health="([\w-]+)" data-job="{re.escape(job)}">(.*?)</li>',
        page,
        re.S,
    )
    assert found, f"no card for {job}"
    body = found.group(2)

    def first(pattern: str) -> str:
        match = re.search(pattern, body, re.S)
        return match.group(1) if match else ""

    return {
        "health": found.group(1),
        "last": first(r'class="badge s-([\w-]+)"'),
        "spark": first(r'data-spark="([^"]*)"'),
        # the relative time; the absolute one follows in <span class="abs">
        "next_due": first(r"<dt>Next due</dt><dd>(?:<time[^>]*>)?([^<]*?) ?<"),
        "desc": first(r'<p class="job-desc"[^>]*>([^<]*)</p>'),
        "tags": " ".join(re.findall(r'class="tag">([^<]*)<', body)),
    }


@pytest.fixture
def clocked(tmp_path: Path, db_url: str) -> Iterator[Any]:
    """The real app on a hub whose clock the test moves."""
    from backwatch.services.hub import Hub
    from backwatch.web.app import create_app

    settings = make_settings(tmp_path / "data", db_url)
    clock = Clock()
    hub = Hub(settings, grouped=True, clock=clock)
    with TestClient(create_app(settings, hub=hub)) as client:
        token = settings.token_file.read_text().strip()
        client.auth_headers = {"Authorization": f"Bearer {token}"}  # type: ignore[attr-defined]
        client.clock = clock  # type: ignore[attr-defined]
        yield client
    hub.close()


def report(client: TestClient, job: str, started_at: float, **fields: Any) -> None:
    body = {"job": job, "status": "success", "started_at": started_at, **fields}
    resp = client.post("/api/v1/runs", json=body, headers=client.auth_headers)  # type: ignore[attr-defined]
    assert resp.status_code in (200, 201), resp.text


def test_a_card_shows_each_new_run_and_each_edit_of_its_job(clocked: TestClient) -> None:
    now = clocked.clock.t  # type: ignore[attr-defined]
    report(clocked, "photos", now - 600, duration_s=60)
    report(clocked, "db", now - 600, duration_s=5)
    first = card(clocked.get("/").text, "photos")
    assert (first["health"], first["last"], first["spark"]) == ("ok", "success", "60")

    report(clocked, "photos", now - 60, status="failed", duration_s=90)
    again = card(clocked.get("/").text, "photos")
    assert (again["health"], again["last"], again["spark"]) == ("failing", "failed", "60 90")

    edit = {"description": "Family <photos>", "tags": ["media"]}
    resp = clocked.put("/api/v1/jobs/photos", json=edit, headers=clocked.auth_headers)  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    page = clocked.get("/").text
    edited = card(page, "photos")
    assert (edited["desc"], edited["tags"]) == ("Family &lt;photos&gt;", "media")
    assert card(page, "db")["spark"] == "5"  # the other card is untouched
    shown = re.findall(r'data-job="([^"]+)"', clocked.get("/?tag=media").text)
    assert shown == ["photos"]


def test_a_card_follows_the_clock_when_its_job_did_not_change(clocked: TestClient) -> None:
    clock: Clock = clocked.clock  # type: ignore[attr-defined]
    report(clocked, "hourly", clock.t - 60, duration_s=30)
    resp = clocked.put(
        "/api/v1/jobs/hourly",
        json={"schedule": "1h", "grace": "30m"},
        headers=clocked.auth_headers,  # type: ignore[attr-defined]
    )
    assert resp.status_code == 200, resp.text
    before = card(clocked.get("/").text, "hourly")
    assert (before["health"], before["next_due"]) == ("ok", "in 59 min")

    clock.advance(2 * 3600)
    report(clocked, "other", clock.t - 10)  # any write: the grid is worked out again
    page = clocked.get("/").text
    after = card(page, "hourly")
    assert (after["health"], after["next_due"]) == ("missed", "1 h ago")
    assert after["spark"] == "30"
    assert re.findall(r'data-job="([^"]+)"', clocked.get("/?health=missed").text) == ["hourly"]
