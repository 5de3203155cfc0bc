"""A job's display name (issue 19): any script beside the slug id, from the API and from
backwatch.toml, shown on the pages; bad names refused with the field named, nothing
changed (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backwatch.web.app import create_app
from tests.conftest import make_settings

NAME = "Fotos von Oma 📷 — Ελληνικά"


def test_a_name_in_any_script_is_kept_and_shown_beside_the_id(api: TestClient) -> None:
    auth = api.auth_headers  # type: ignore[attr-defined]
    resp = api.put("/api/v1/jobs/photos", json={"name": NAME, "schedule": "24h"}, headers=auth)
    assert resp.status_code in (200, 201), resp.text
    job = api.get("/api/v1/jobs/photos", headers=auth).json()
    assert (job["id"], job["name"]) == ("photos", NAME)
    listed = api.get("/api/v1/jobs", headers=auth).json()
    assert [j["name"] for j in listed["items"] if j["id"] == "photos"] == [NAME]
    page = html.unescape(api.get("/jobs/photos").text)
    assert f'<h1>{NAME} <code class="job-id">photos</code></h1>' in page
    assert f"<title>{NAME} (photos)" in page
    api.post(
        "/api/v1/runs",
        json={"job": "photos", "status": "success", "started_at": "2026-12-07T03:00:00Z"},
        headers=auth,
    )
    overview = html.unescape(api.get("/").text)
    assert f'<a class="job-name" href="/jobs/photos">{NAME}</a>' in overview
    # a name with runs of spaces is kept on one line
    api.put("/api/v1/jobs/photos", json={"name": "  two\tspaces  here "}, headers=auth)
    assert api.get("/api/v1/jobs/photos", headers=auth).json()["name"] == "two spaces here"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("x" * 121, "at most 120 characters"),
        ("bell\x07", "printable"),
        (5, "string"),
    ],
)
def test_a_bad_name_is_refused_and_changes_nothing(api: TestClient, name, problem) -> None:
    auth = api.auth_headers  # type: ignore[attr-defined]
    api.put("/api/v1/jobs/db", json={"name": "Datenbank"}, headers=auth)
    resp = api.put("/api/v1/jobs/db", json={"name": name}, headers=auth)
    assert resp.status_code == 422, resp.text
    body = resp.text
    assert "name" in body and problem in body
    assert api.get("/api/v1/jobs/db", headers=auth).json()["name"] == "Datenbank"


def test_a_name_from_the_config_file(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text(
        '[[jobs]]\nid = "nas"\nname = "Ναός NAS"\nschedule = "0 3 * * *"\n', encoding="utf-8"
    )
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        assert client.get("/api/v1/jobs/nas", headers=auth).json()["name"] == "Ναός NAS"
