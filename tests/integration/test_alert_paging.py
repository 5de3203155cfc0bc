"""Alerts at fleet size (issue 18): the API, the alerts page, the overview's strip and
``backwatch alerts list`` read a page at a time and count in SQL, so thousands of open
alerts are neither loaded at once nor miscounted (the page used to say "200+" and the
overview "200 · 200 acknowledged"). On real SQLite and PostgreSQL, through the real app."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app as cli_app
from backwatch.web.pages import alerts as alerts_page
from tests.conftest import wait_for

FAILED = [f"db-{i}" for i in range(5)]  # critical: the latest run failed
UNKNOWN = [f"files-{i}" for i in range(4)]  # warning: its outcome is unknown


@pytest.fixture
def alerting(api: Any) -> Any:
    started = time.time() - 600
    reports = [{"job": j, "status": "failed", "started_at": started} for j in FAILED]
    reports += [{"job": j, "status": "unknown", "started_at": started} for j in UNKNOWN]
    for report in reports:
        assert api.post("/api/v1/runs", json=report, headers=api.auth_headers).status_code == 201

    def all_open() -> list[dict[str, Any]]:
        got = api.get("/api/v1/alerts", params={"state": "open"}, headers=api.auth_headers)
        items: list[dict[str, Any]] = got.json()["items"]
        return items if len(items) == len(reports) else []

    opened = wait_for("an alert for each report", all_open)
    ack = next(a for a in opened if a["job"] == "db-0")
    assert api.post(f"/api/v1/alerts/{ack['id']}/ack", headers=api.auth_headers).is_success
    return api


def test_the_api_pages_alerts_newest_first_with_a_cursor(alerting: Any) -> None:
    api, seen, query = alerting, [], {"limit": 4}
    pages = 0
    while True:
        page = api.get("/api/v1/alerts", params=query, headers=api.auth_headers).json()
        seen += page["items"]
        pages += 1
        if page["next_cursor"] is None:
            break
        query["cursor"] = page["next_cursor"]
    ids = [a["id"] for a in seen]
    assert pages == 3 and len(ids) == 9 and ids == sorted(ids, reverse=True)
    assert {a["job"] for a in seen} == set(FAILED + UNKNOWN)
    counted = api.get(
        "/api/v1/alerts", params={"counts": "true", "limit": 1}, headers=api.auth_headers
    )
    assert counted.json()["counts"] == {"open": 8, "acknowledged": 1, "resolved": 0}
    one = {"counts": "true", "job": "db-0"}
    counted = api.get("/api/v1/alerts", params=one, headers=api.auth_headers).json()
    assert counted["counts"] == {"open": 0, "acknowledged": 1, "resolved": 0}
    assert "counts" not in api.get("/api/v1/alerts", headers=api.auth_headers).json()
    for bad in ("x", "-1", "99999999999", "1.5"):
        got = api.get("/api/v1/alerts", params={"cursor": bad}, headers=api.auth_headers)
        assert got.status_code == 422 and "cursor" in got.text, (bad, got.text)


def _tab_counts(html: str) -> dict[str, str]:
    return dict(re.findall(r">(Open|Acknowledged|Resolved) \(([\d,]+)\)</a>", html))


def _jobs_listed(html: str) -> list[str]:
    section = html.split('data-live-id="alerts"', 1)[1]
    return re.findall(r"(db-\d|files-\d)", section.split('aria-label="More alerts"')[0])


def test_the_alerts_page_counts_every_alert_and_pages_the_most_urgent_first(
    alerting: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_page, "PAGE_LIMIT", 3)
    api = alerting
    first = api.get("/alerts").text
    assert _tab_counts(first) == {"Open": "8", "Acknowledged": "1", "Resolved": "0"}
    listed, html = [], first
    while True:
        listed.append(sorted(set(_jobs_listed(html))))
        found = re.search(r'href="(/alerts\?state=open&amp;after=[\d.]+)" rel="next"', html)
        if not found:
            break
        html = api.get(found.group(1).replace("&amp;", "&")).text
        assert "First page" in html
    # four critical (db-1 … db-4) before four warnings, three a page
    assert [len(page) for page in listed] == [3, 3, 2]
    flat = [job for page in listed for job in page]
    assert sorted(flat) == sorted(FAILED[1:] + UNKNOWN)
    assert set(listed[0]) <= set(FAILED) and set(listed[2]) <= set(UNKNOWN)
    got = api.get("/alerts", params={"after": "garbage"})
    assert got.status_code == 422 and "after" in got.text


def test_the_overview_counts_every_active_alert_beside_the_few_it_shows(
    alerting: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_page, "STRIP_LIMIT", 2)
    html = alerting.get("/").text
    strip = html.split('data-live-id="alerts"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"Open alerts <span[^>]*>8 · 1 acknowledged</span>", strip), strip
    assert len(set(re.findall(r"(db-\d|files-\d)", strip))) == 2
    assert "7 more…" in strip


def test_alerts_list_prints_a_page_and_the_next_pages_command(alerting: Any, settings: Any) -> None:
    env = {"BACKWATCH_DATA_DIR": str(settings.data_dir),
           "BACKWATCH_DATABASE_URL": settings.database_url}  # fmt: skip
    args, seen = ["alerts", "list", "--limit", "5"], []
    while args:
        result = CliRunner().invoke(cli_app, [*args, "--json"], env=env)
        assert result.exit_code == 0, result.output
        seen += [a["id"] for a in json.loads(result.stdout)]
        found = re.search(r"the next page: backwatch (.*)", result.stderr)
        args = found.group(1).replace(" --json", "").split() if found else []
    assert len(seen) == 9 and seen == sorted(seen, reverse=True)
    bad = CliRunner().invoke(cli_app, ["alerts", "list", "--cursor", "nope"], env=env)
    assert bad.exit_code != 0 and "cursor" in bad.output and "Traceback" not in bad.output
