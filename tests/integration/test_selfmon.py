"""backwatch watching itself (issue 14, "silent when its own disk is full"), on the real app
and a real SQLite file: the health checks, ``/health``, ``/livez``, ``/readyz`` and the
``_system`` alerts through the outbox to a real webhook receiver on 127.0.0.1.

The database refuses writes here the way a full disk makes it: SQLite's own limit on the
file's size (``PRAGMA max_page_count``) gives the same ``SQLITE_FULL``, "database or disk is
full". The real full disk (a tmpfs) is tests/e2e/test_disk_full.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backwatch.services.hub import Hub
from backwatch.web.app import create_app
from tests.conftest import Clock, make_settings
from tests.integration.test_alerts import Receiver

MB = 1024 * 1024


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


class World:
    """The app with a hand-moved clock, its background tasks called by hand."""

    def __init__(self, client: TestClient, hub: Hub, clock: Clock, receiver: Receiver) -> None:
        self.client, self.hub, self.clock, self.receiver = client, hub, clock, receiver
        self.tasks = client.app.state.alert_tasks  # type: ignore[attr-defined]
        self.headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
        self.sent = 0

    def report(self) -> tuple[int, dict[str, Any]]:
        self.sent += 1
        body = {"id": f"run-{self.sent}", "job": "nightly", "status": "success",
                "started_at": self.clock.t, "duration_s": 60, "size_bytes": 1000,
                "message": "x" * 2000}  # fmt: skip
        response = self.client.post("/api/v1/runs", json=body, headers=self.headers)
        return response.status_code, response.json()

    def refuse_writes(self, refuse: bool = True) -> None:
        """SQLite's cap on the file's pages, set on the writer's own connection between its
        transactions: at the current size, nothing more fits."""
        limit = 1 if refuse else 1_073_741_823
        with self.hub.write_engine.connect() as conn:
            conn.connection.dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

    def fill(self) -> list[str]:
        """Report until three in a row are refused; the ids answered 201."""
        stored: list[str] = []
        refused = 0
        for _ in range(500):
            status, body = self.report()
            if status == 201:
                stored.append(body["id"])
                refused = 0
                continue
            assert status == 503, body
            assert body["error"]["code"] == "store_unavailable", body
            assert "database or disk is full" in body["error"]["message"]
            refused += 1
            if refused == 3:
                return stored
        raise AssertionError("the database never refused a write")

    def read_only(self, on: bool) -> None:
        """Every write refused, even an empty transaction ("attempt to write a readonly
        database"), set on the writer's own connection between its transactions."""
        with self.hub.write_engine.connect() as conn:
            conn.connection.dbapi_connection.execute(f"PRAGMA query_only = {int(on)}")

    def settle(self) -> None:
        self.client.portal.call(self.tasks.tick)
        self.client.portal.call(self.tasks.deliver)

    def check(self, name: str) -> dict[str, Any]:
        [found] = self.client.get(f"/api/v1/health/checks?checks={name}").json()["checks"]
        return found  # type: ignore[no-any-return]


@pytest.fixture
def world(tmp_path: Path, receiver: Receiver) -> Iterator[World]:
    config = tmp_path / "backwatch.toml"
    config.write_text(f'[[notify]]\nurls = ["{receiver.url}"]\n')
    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'data' / 'backwatch.db'}",
        BACKWATCH_CONFIG=str(config),
    )
    clock = Clock(time.time())
    hub = Hub(settings, grouped=True, clock=clock)
    with TestClient(create_app(settings, hub=hub)) as client:
        client.token = settings.token_file.read_text().strip()  # type: ignore[attr-defined]
        yield World(client, hub, clock, receiver)
    hub.close()


def test_livez_readyz_and_health_when_all_is_well(api):
    live = api.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = api.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    health = api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")
    assert [c["name"] for c in body["checks"]] == ["database", "migrations", "data_disk", "writer"]


def test_refused_writes_make_the_writer_critical_and_backwatch_not_ready(world):
    world.report()
    assert world.check("writer")["status"] == "ok"
    world.refuse_writes()
    world.fill()
    writer = world.check("writer")
    assert writer["status"] == "critical", writer
    assert "refused" in writer["detail"] and "database or disk is full" in writer["detail"]
    health = world.client.get("/health")
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "error"
    assert [f["name"] for f in body["failing"]] == ["writer"]
    assert "database or disk is full" in body["detail"]
    assert body["error"]["code"] == "store_unavailable"
    ready = world.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "not_ready"
    assert "writer: " in ready.json()["error"]["message"]
    assert world.client.get("/livez").status_code == 200  # alive: do not restart it


def test_the_alert_is_delivered_once_writing_works_again_and_nothing_acknowledged_is_lost(world):
    world.refuse_writes()
    stored = world.fill()
    assert world.client.get("/readyz").status_code == 503
    world.settle()  # (small writes may still fit: the alert may open now, or be held)
    world.refuse_writes(False)  # space is back
    world.settle()  # the tick's disk sample is a real write: does writing work again?
    world.clock.advance(61)  # yes: none refused for a minute
    world.settle()
    assert world.client.get("/readyz").status_code == 200
    titles = world.receiver.titles()
    assert "[CRITICAL] _system: writes refused" in titles, titles
    message = next(m for m in world.receiver.messages if "writes refused" in m["title"])
    assert "database or disk is full" in message["message"]
    world.clock.advance(60)
    world.settle()
    assert world.receiver.titles()[-1] == "[RESOLVED] _system: writes refused"
    status, _body = world.report()
    assert status == 201
    for run_id in stored:
        assert world.client.get(f"/api/v1/runs/{run_id}").status_code == 200, run_id


def test_the_data_disk_is_measured_when_checked_not_taken_from_a_stored_sample(world):
    from backwatch.services import disks

    path = str(world.hub.settings.data_dir.resolve())
    # a sample from a minute ago that said "empty": the disk is what it is now
    world.hub.write(disks.record_samples([(path, 0, 10**12)], world.clock.t - 60, force=True))
    world.hub.settings.alerts.disk_warning_percent = 0.001  # any real disk is fuller
    world.hub.settings.alerts.disk_critical_percent = 0.002
    data_disk = world.check("data_disk")
    assert data_disk["status"] == "critical", data_disk
    assert "% full" in data_disk["detail"]


def test_a_data_disk_over_its_warning_share_degrades_health_but_not_readiness(world):
    world.hub.settings.alerts.disk_warning_percent = 0.001
    health = world.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["detail"].startswith("data_disk: ")
    assert world.client.get("/readyz").status_code == 200


def test_a_data_disk_below_the_free_space_floor_is_not_ready(world):
    world.hub.settings.alerts.data_min_free_mb = 10.0**12  # more than any disk has
    assert world.check("data_disk")["status"] == "critical"
    ready = world.client.get("/readyz")
    assert ready.status_code == 503
    [failing] = ready.json()["failing"]
    assert failing["name"] == "data_disk" and "data_min_free_mb" in failing["detail"]
    health = world.client.get("/health")
    assert (health.status_code, health.json()["status"]) == (503, "error")
    world.settle()
    alerts = world.client.get("/api/v1/alerts", params={"state": "open"}).json()["items"]
    assert [(a["rule"], a["job"], a["severity"]) for a in alerts] == [
        ("disk_space", "_system", "critical")
    ]
    assert "[CRITICAL] _system: disk filling up" in world.receiver.titles()


def test_an_alert_that_cannot_be_written_is_held_and_written_once_it_can(world):
    # (the server's own rounds go on beside the test's: nothing may be written between
    # the disk filling up and the writes being refused, so writes go first)
    world.read_only(True)  # nothing can be written
    world.hub.settings.alerts.data_min_free_mb = 10.0**12  # and the data disk is "full"
    world.settle()
    assert "disk_space" in world.tasks.system.held  # (and the refused writes, when 3 or more)
    world.hub.settings.alerts.data_min_free_mb = 0  # space is back before it was written
    world.read_only(False)
    world.settle()
    assert world.tasks.system.held == {}
    assert "[CRITICAL] _system: disk filling up" in world.receiver.titles()
    message = next(m for m in world.receiver.messages if "disk filling up" in m["title"])
    assert message["message"].startswith("backwatch: ") and "% full" in message["message"]
    world.clock.advance(60)
    world.settle()
    assert "[RESOLVED] _system: disk filling up" in world.receiver.titles()
