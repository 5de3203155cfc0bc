"""Issue 13, "health says so": the same answer in the API, the CLI, the pages and /metrics,
on a real SQLite file and the real PostgreSQL (``db_url``), with the in-process app.

- 11: a job with an open (or acknowledged) critical alert is never shown or counted as ok;
- 12: a declared, scheduled job that never reports goes missed after its first due time;
- 13: "last run" and "last success" are both end times: one run, one time.

The app runs on a hand-moved clock set close to the real time, so the CLI (which reads the
same database with the real clock) sees the same picture.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backwatch.cli import app as cli_app
from backwatch.services.hub import Hub
from backwatch.timeutil import iso, parse_time
from backwatch.web.app import create_app
from tests.conftest import Clock, make_settings

H = 3600.0
DAY = 86400.0


class World:
    """The app on a clock, a reporter, the rule tick, and the CLI on the same database."""

    def __init__(self, client: TestClient, clock: Clock, db_url: str, tasks: Any) -> None:
        self.client, self.clock, self.db_url, self.tasks = client, clock, db_url, tasks
        self.headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]

    def report(self, job: str, **fields: Any) -> dict[str, Any]:
        body = {"job": job, "status": "success", "started_at": self.clock.t, "duration_s": 60,
                "size_bytes": 10_000_000_000, "files": 1000, **fields}  # fmt: skip
        response = self.client.post("/api/v1/runs", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def settle(self) -> None:
        """One tick of the time rules and an evaluation of what changed."""
        self.client.portal.call(self.tasks.tick)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/jobs/{job_id}").json()

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["id"]: j for j in self.client.get("/api/v1/jobs").json()["items"]}

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    def metrics(self) -> str:
        return self.client.get("/metrics", headers=self.headers).text

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(cli_app, [*args, "--db", self.db_url])
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout


@pytest.fixture
def world(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "cli-data"))
    config = tmp_path / "backwatch.toml"
    config.write_text(
        """
[alerts]
disk_warning_percent = 99.9
disk_critical_percent = 100

[[jobs]]
id = "offsite"
schedule = "0 3 * * *"
grace = "1h"

[[jobs]]
id = "photos"
schedule = "7d"
grace = "1h"
"""
    )
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    clock = Clock(time.time() - 22 * DAY)
    hub = Hub(settings, grouped=True, clock=clock)
    app = create_app(settings, hub=hub)
    with TestClient(app) as client:
        client.token = settings.token_file.read_text().strip()  # type: ignore[attr-defined]
        yield World(client, clock, db_url, app.state.alert_tasks)
    hub.close()


def _card(html: str, job: str) -> str:
    match = re.search(
        rf'<li class="job" data-health="[a-z]+" data-job="{job}">.*?</li>', html, re.S
    )
    assert match, f"no card for {job}"
    return match.group(0)


def _health_gauge(metrics: str, job: str) -> str:
    [health] = re.findall(rf'backwatch_job_health\{{[^}}]*health="(\w+)"[^}}]*job="{job}"', metrics)
    return health


def _shrink(world: World) -> None:
    """20 normal nightly backups of photos, then one of 2 %: an open critical `empty`."""
    for _ in range(20):
        world.report("photos")
        world.clock.advance(DAY)
    world.report("photos", size_bytes=200_000_000)
    world.settle()
    alerts = world.client.get("/api/v1/alerts", params={"state": "open"}).json()["items"]
    critical = [a["rule"] for a in alerts if a["job"] == "photos" and a["severity"] == "critical"]
    assert critical == ["empty"]


def test_a_job_with_an_open_critical_alert_is_not_ok_anywhere(world: World) -> None:
    _shrink(world)
    job = world.job("photos")
    assert job["health"] == "failing"
    assert "open critical alert empty" in job["health_reason"] and "2.0%" in job["health_reason"]
    assert world.jobs()["photos"]["health"] == "failing"

    overview = world.page("/")
    card = _card(overview, "photos")
    assert 'data-health="failing"' in card and 'class="badge h-failing"' in card
    assert 'href="/?health=ok"' not in overview  # no job counted as ok
    assert re.search(r'href="/\?health=failing" class="chip h-failing">1 failing', overview)
    page = world.page("/jobs/photos")
    assert 'class="badge h-failing"' in page and "open critical alert empty" in page
    assert _health_gauge(world.metrics(), "photos") == "failing"

    status = json.loads(world.cli("status", "--json"))
    assert {j["id"]: j["health"] for j in status["jobs"]}["photos"] == "failing"
    assert status["summary"]["health"] == {"failing": 1, "missed": 1}  # offsite never ran
    assert "jobs now: 1 failing, 1 missed" in world.cli("status")
    summary = world.client.get("/api/v1/summary").json()
    assert summary["health"] == {"failing": 1, "missed": 1}
    one = world.client.get("/api/v1/summary", params={"job": "photos"}).json()
    assert one["health"] == {"failing": 1}
    listed = json.loads(world.cli("list", "--json"))
    assert {j["id"]: j["health"] for j in listed}["photos"] == "failing"
    assert "open critical alert empty" in world.cli("status", "photos")


def test_an_acknowledged_critical_alert_still_is_not_ok(world: World) -> None:
    _shrink(world)
    alerts = world.client.get("/api/v1/alerts", params={"job": "photos"}).json()["items"]
    [alert] = [a for a in alerts if a["rule"] == "empty"]
    response = world.client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=world.headers)
    assert response.status_code == 200, response.text
    job = world.job("photos")
    assert job["health"] == "failing"
    assert job["health_reason"].startswith("acknowledged critical alert empty")
    assert "acknowledged critical alert empty" in world.page("/jobs/photos")
    # the next normal backup clears the rule, the alert resolves, and the job is ok again
    world.clock.advance(DAY)
    world.report("photos")
    world.settle()
    assert world.job("photos")["health"] == "ok"


def test_a_declared_job_that_never_reports_goes_missed(world: World) -> None:
    declared = world.job("offsite")
    assert declared["last_run"] is None
    first_due = parse_time(declared["next_due"])
    created = parse_time(declared["created_at"])
    assert created < first_due <= created + DAY  # the first 03:00 after it was declared
    assert declared["health"] == "new"
    assert "no schedule" not in _card(world.page("/"), "offsite")

    world.clock.t = first_due + 30 * 60
    assert world.job("offsite")["health"] == "late"
    world.clock.t = first_due + H + 60
    world.settle()
    job = world.job("offsite")
    assert job["health"] == "missed" and "declared" in job["health_reason"]
    alerts = world.client.get("/api/v1/alerts", params={"job": "offsite"}).json()["items"]
    assert [(a["rule"], a["state"]) for a in alerts] == [("missed", "open")]
    assert 'data-health="missed"' in _card(world.page("/"), "offsite")
    assert _health_gauge(world.metrics(), "offsite") == "missed"
    # the CLI reads the same database on the real clock, days later: missed as well
    status = json.loads(world.cli("status", "--json"))
    assert {j["id"]: j["health"] for j in status["jobs"]}["offsite"] == "missed"

    # a backup clears it
    world.report("offsite")
    world.settle()
    assert world.job("offsite")["health"] == "ok"
    assert world.client.get("/api/v1/alerts", params={"state": "open"}).json()["items"] == []


def test_last_run_and_last_success_are_the_same_end_time(world: World) -> None:
    start = world.clock.t
    world.report("photos", started_at=start, finished_at=start + 4 * H, duration_s=4 * H)
    world.clock.t = start + 36 * H  # started 36 h ago, ended 32 h ago
    job = world.job("photos")
    ended = iso(start + 4 * H)
    assert job["last_run_at"] == job["last_success_at"] == ended
    assert job["last_run"]["started_at"] == iso(start)

    facts = dict(
        re.findall(r"<dt>(Last run|Last success)</dt><dd>(.*?)</dd>", world.page("/jobs/photos"))
    )
    assert (
        f'datetime="{ended}"' in facts["Last run"]
        and f'datetime="{ended}"' in facts["Last success"]
    )
    assert "32 h ago" in facts["Last run"] and "32 h ago" in facts["Last success"]
    card = _card(world.page("/"), "photos")
    assert f'datetime="{ended}"' in card and "32 h ago" in card

    metrics = world.metrics()
    values = {
        name: float(value)
        for name, value in re.findall(
            r"backwatch_job_(last_run|last_success)_timestamp_seconds"
            r'\{[^}]*job="photos"[^}]*\} (\S+)',
            metrics,
        )
    }
    assert values == {"last_run": start + 4 * H, "last_success": start + 4 * H}
    detail = json.loads(world.cli("status", "photos", "--json"))["job"]
    assert detail["last_run_at"] == detail["last_success_at"] == ended
    text = world.cli("status", "photos")
    assert re.search(r"last run: .*\d", text) and re.search(r"last success: .*\d", text)
    report = world.cli("report", "--period", "7d", "--format", "text")
    assert f"last run {ended} success, last success {ended}" in report


def test_an_unknown_latest_backup_is_not_ok(world: World) -> None:
    world.report("photos")
    world.clock.advance(DAY)
    world.report("photos", status="unknown", message="restic printed no summary")
    world.settle()
    job = world.job("photos")
    assert job["health"] == "unknown"
    assert job["health_reason"] == (
        "the latest backup's outcome is unknown: restic printed no summary"
    )
    [alert] = world.client.get("/api/v1/alerts", params={"job": "photos"}).json()["items"]
    assert (alert["rule"], alert["severity"]) == ("failed", "warning")
    assert "restic printed no summary" in alert["message"]
    assert 'class="badge h-unknown"' in _card(world.page("/"), "photos")
    assert _health_gauge(world.metrics(), "photos") == "unknown"
    summary = world.client.get("/api/v1/summary", params={"days": 7}).json()
    assert (summary["total"], summary["success"], summary["success_rate"]) == (2, 1, 0.5)


def test_a_failed_check_is_a_failed_verification_not_a_failed_backup(world: World) -> None:
    world.report("photos")
    world.clock.advance(H)
    world.report("photos", kind="check", status="failed", message="pack 3f2a is damaged")
    world.settle()
    rules = {
        a["rule"]: a["severity"]
        for a in world.client.get("/api/v1/alerts", params={"job": "photos"}).json()["items"]
    }
    assert rules == {"verify_failed": "critical"}
    job = world.job("photos")
    assert job["last_run"]["status"] == "success"  # the check is not the latest backup
    assert job["health"] == "failing" and "verify_failed" in job["health_reason"]


def test_a_stale_missed_alert_does_not_outvote_fresher_health(world: World) -> None:
    first_due = parse_time(world.job("offsite")["next_due"])
    world.clock.t = first_due + 2 * H
    world.settle()
    assert world.job("offsite")["health"] == "missed"
    # the grace is raised: health is late at once, though the alert clears only next tick
    response = world.client.put("/api/v1/jobs/offsite", json={"grace": "6h"}, headers=world.headers)
    assert response.status_code == 200, response.text
    open_rules = [a["rule"] for a in world.client.get("/api/v1/alerts?state=open").json()["items"]]
    assert "missed" in open_rules
    job = world.job("offsite")
    assert job["health"] == "late", job["health_reason"]
    world.settle()
    assert world.client.get("/api/v1/alerts?state=open").json()["items"] == []
