"""Alerts end to end: rules → alerts → outbox → Apprise → a real HTTP receiver on 127.0.0.1.

The scenario of issue 4's "Done when": a job that stops reporting, a failed run, a backup
that shrinks to 2 %, and a data disk over its threshold each produce one notification, and
one resolve notification when fixed.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backwatch.services.hub import Hub
from backwatch.web.app import create_app
from tests.conftest import Clock, make_settings

H = 3600.0


class Receiver:
    """A webhook receiver: what Apprise's json:// sends lands in ``messages``."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.fail_next = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.send_response(500)
                else:
                    outer.messages.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self) -> list[str]:
        return [m["title"] for m in self.messages]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def world(tmp_path: Path, db_url: str, receiver: Receiver):
    config = tmp_path / "backwatch.toml"
    config.write_text(
        f"""
[server]
base_url = "http://backup-host:5001"

[alerts]
disk_warning_percent = 99.9
disk_critical_percent = 100

[[notify]]
urls = ["{receiver.url}"]

[[jobs]]
id = "nightly"
schedule = "24h"
grace = "1h"
"""
    )
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    clock = Clock()
    hub = Hub(settings, grouped=True, clock=clock)
    app = create_app(settings, hub=hub)
    with TestClient(app) as client:
        client.auth_headers = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        tasks = app.state.alert_tasks

        class World:
            pass

        w = World()
        w.client, w.clock, w.settings, w.receiver = client, clock, settings, receiver

        def settle() -> None:
            """One tick of time rules + evaluation of what changed + delivery."""
            client.portal.call(tasks.tick)
            client.portal.call(tasks.deliver)

        def report(job: str, status: str = "success", size: int = 1_000_000, **extra) -> dict:
            body = {"job": job, "status": status, "started_at": clock.t, "duration_s": 60,
                    "size_bytes": size, "files": 10, **extra}  # fmt: skip
            r = client.post("/api/v1/runs", json=body, headers=client.auth_headers)
            assert r.status_code == 201, r.text
            return r.json()

        w.settle, w.report = settle, report
        w.alerts = lambda state=None: client.get(
            "/api/v1/alerts", params={"state": state} if state else {}
        ).json()["items"]
        yield w
    hub.close()


def test_a_job_that_stops_reporting(world):
    world.report("nightly")
    world.clock.advance(24 * H + 30 * 60)  # due, inside the grace: late, not missed
    world.settle()
    assert world.receiver.messages == []
    world.clock.advance(H)
    world.settle()
    world.settle()  # a second tick must not notify again
    assert len(world.receiver.messages) == 1
    message = world.receiver.messages[0]
    assert "nightly" in message["title"] and "missed" in message["title"]
    assert (
        "due" in message["message"] and "http://backup-host:5001/jobs/nightly" in message["message"]
    )
    [alert] = world.alerts("open")
    assert alert["rule"] == "missed" and alert["severity"] == "critical"
    world.report("nightly")
    world.settle()
    assert world.alerts("open") == []
    assert len(world.receiver.messages) == 2
    assert world.receiver.messages[1]["title"].startswith("[RESOLVED] nightly")


def test_a_failed_run_and_its_fix(world):
    run = world.report("db", status="failed", message="pg_dump: connection refused")
    world.settle()
    [msg] = world.receiver.messages
    assert msg["title"] == "[CRITICAL] db: backup failed"
    assert "connection refused" in msg["message"] and run["id"] in msg["message"]
    world.clock.advance(H)
    world.report("db")
    world.settle()
    assert world.receiver.titles()[-1] == "[RESOLVED] db: backup failed"
    events = world.client.get("/api/v1/events", params={"kind": "auto_resolve"}).json()["items"]
    assert len(events) == 1


def test_an_unknown_outcome_warns_and_a_failure_after_it_escalates(world):
    world.report("db", message="pg_dump exited 0")
    world.clock.advance(H)
    run = world.report("db", status="unknown", message="no dump file was written")
    world.settle()
    [msg] = world.receiver.messages
    assert msg["title"] == "[WARNING] db: backup outcome unknown"
    assert "no dump file was written" in msg["message"] and run["id"] in msg["message"]
    world.clock.advance(H)
    world.report("db", status="failed", message="pg_dump: connection refused")
    world.settle()
    assert world.receiver.titles()[-1] == "[CRITICAL] db: backup failed"
    [alert] = world.alerts("open")
    assert (alert["rule"], alert["severity"]) == ("failed", "critical")
    assert alert["detail"] == {"streak": 1}


def test_a_backup_that_shrinks_to_two_percent(world):
    for _ in range(20):
        world.report("photos", size=10_000_000_000)
        world.clock.advance(24 * H)
    world.settle()
    # (the declared "nightly" job never reports: it goes missed meanwhile, issue 13)
    assert [m for m in world.receiver.messages if "photos" in m["title"]] == []
    world.report("photos", size=200_000_000)
    world.settle()
    titles = world.receiver.titles()
    assert any("photos: backup empty or shrunk" in t for t in titles), titles
    shrunk = next(m for m in world.receiver.messages if "shrunk" in m["title"])
    assert "2.0%" in shrunk["message"]
    world.clock.advance(24 * H)
    world.report("photos", size=10_000_000_000)
    world.settle()
    assert "[RESOLVED] photos: backup empty or shrunk" in world.receiver.titles()


def test_a_data_disk_over_threshold(world):
    world.settings.alerts.disk_warning_percent = 0.001  # any real disk is fuller than this
    world.settle()
    [msg] = world.receiver.messages
    assert "disk filling up" in msg["title"] and "% full" in msg["message"]
    world.settings.alerts.disk_warning_percent = 99.9
    world.clock.advance(600)
    world.settle()
    assert world.receiver.titles()[-1].startswith("[RESOLVED]")


def test_flapping_gives_one_notification_per_open_and_resolve(world):
    for i in range(20):
        world.report("flappy", status="failed" if i % 2 == 0 else "success")
        world.settle()
        world.clock.advance(60)
    titles = world.receiver.titles()
    assert titles.count("[CRITICAL] flappy: backup failed") == 10
    assert titles.count("[RESOLVED] flappy: backup failed") == 10


def test_acknowledged_alerts_are_not_renotified_and_open_ones_are(world):
    world.report("a", status="failed")
    world.report("b", status="failed")
    world.settle()
    assert len(world.receiver.messages) == 2
    alert_a = next(a for a in world.alerts("open") if a["job"] == "a")
    r = world.client.post(f"/api/v1/alerts/{alert_a['id']}/ack", headers=world.client.auth_headers)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    world.clock.advance(25 * H)
    world.settle()
    reminders = [t for t in world.receiver.titles() if t.startswith("[REMINDER]")]
    assert reminders == ["[REMINDER] [CRITICAL] b: backup failed"]


def test_a_failing_channel_is_retried_then_delivered(world):
    world.receiver.fail_next = 1
    world.report("x", status="failed")
    world.settle()
    assert world.receiver.messages == []
    channels = world.client.get("/api/v1/notify/channels", headers=world.client.auth_headers).json()
    [ch] = channels["items"]
    assert ch["last_error"] and "127.0.0.1" in ch["url"]
    world.clock.advance(60)  # past the first backoff
    world.settle()
    assert len(world.receiver.messages) == 1


def test_snooze_holds_back_notifications(world):
    r = world.client.post(
        "/api/v1/jobs/nightly/snooze", json={"for": "2h"}, headers=world.client.auth_headers
    )
    assert r.status_code == 200 and r.json()["snoozed_until"]
    world.report("nightly", status="failed")
    world.settle()
    assert world.receiver.messages == []
    assert world.alerts("open")[0]["suppressed_by"].startswith("snoozed")


def test_alert_api_errors_use_the_envelope(world):
    r = world.client.post("/api/v1/alerts/999/ack", headers=world.client.auth_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = world.client.get("/api/v1/alerts", params={"state": "bogus"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "state"
    r = world.client.post("/api/v1/alerts/1/ack")
    assert r.status_code == 401


class SMTPSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        from tests.conftest import free_port

        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=lambda *args: AuthResult(success=True),
            auth_require_tls=False,
        )
        self.controller.start()


def test_mail_arrives_through_a_real_smtp_server(tmp_path: Path, receiver: Receiver):
    import email

    sink = SMTPSink()
    try:
        mail_url = (
            f"mailto://backwatch:s3cret-pw@127.0.0.1:{sink.port}"
            "?from=backwatch@example.com&to=admin@example.com"
        )
        config = tmp_path / "backwatch.toml"
        config.write_text(f'[[notify]]\nurls = ["{mail_url}"]\nseverities = ["critical"]\n')
        settings = make_settings(tmp_path / "data", None, BACKWATCH_CONFIG=str(config))
        hub = Hub(settings, grouped=True)
        app = create_app(settings, hub=hub)
        with TestClient(app) as client:
            auth = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
            body = {
                "job": "db",
                "status": "failed",
                "started_at": hub.now(),
                "message": "disk full",
            }
            assert client.post("/api/v1/runs", json=body, headers=auth).status_code == 201
            client.portal.call(app.state.alert_tasks.tick)
            client.portal.call(app.state.alert_tasks.deliver)
            channels = client.get("/api/v1/notify/channels", headers=auth).text
        hub.close()
        [envelope] = sink.messages
        mail = email.message_from_bytes(envelope.content)
        assert mail["Subject"] == "[CRITICAL] db: backup failed"
        assert envelope.rcpt_tos == ["admin@example.com"]
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        assert "disk full" in text.get_payload(decode=True).decode()
        assert "s3cret-pw" not in channels and "****" in channels
    finally:
        sink.controller.stop()


def test_children_of_a_failing_parent_are_held_back(tmp_path: Path, receiver: Receiver):
    config = tmp_path / "backwatch.toml"
    config.write_text(
        f"""
[[notify]]
urls = ["{receiver.url}"]

[[jobs]]
id = "nas-mount"

[[jobs]]
id = "photos"
depends_on = ["nas-mount"]

[[jobs]]
id = "quiet"
[[jobs.maintenance]]
start = "* * * * *"
duration = "2m"
"""
    )
    settings = make_settings(tmp_path / "data", None, BACKWATCH_CONFIG=str(config))
    hub = Hub(settings, grouped=True)
    app = create_app(settings, hub=hub)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        for job in ("nas-mount", "photos", "quiet"):
            body = {"job": job, "status": "failed", "started_at": hub.now()}
            assert client.post("/api/v1/runs", json=body, headers=auth).status_code == 201
            client.portal.call(app.state.alert_tasks.tick)
        client.portal.call(app.state.alert_tasks.deliver)
        alerts = {a["job"]: a for a in client.get("/api/v1/alerts").json()["items"]}
    hub.close()
    assert alerts["photos"]["suppressed_by"] == "parent:nas-mount"
    assert alerts["quiet"]["suppressed_by"] == "maintenance window"
    [message] = receiver.messages  # only the parent's, naming the child it holds back
    assert message["title"] == "[CRITICAL] nas-mount: backup failed"
    assert "photos" in message["message"]


def test_an_unscheduled_job_learns_its_interval_and_goes_missed(world):
    for _ in range(5):
        world.report("adhoc")
        world.clock.advance(6 * H)
    world.settle()
    job = world.client.get("/api/v1/jobs/adhoc").json()
    assert job["schedule"] is None and job["learned_interval_s"] == 6 * H
    assert job["next_due"] is not None
    world.clock.advance(2 * H)  # 8 h after the last start: past due + 1 h grace
    world.settle()
    job = world.client.get("/api/v1/jobs/adhoc").json()
    assert job["health"] == "missed"
    assert any(a["rule"] == "missed" and a["job"] == "adhoc" for a in world.alerts("open"))


def test_pausing_clears_a_failing_job_and_resuming_raises_it_again(world):
    world.report("db", status="failed", message="pg_dump: connection refused")
    world.settle()
    assert [a["rule"] for a in world.alerts("open")] == ["failed"]
    headers = world.client.auth_headers
    assert world.client.post("/api/v1/jobs/db/pause", headers=headers).status_code == 200
    world.settle()
    assert world.alerts("open") == []  # paused: nobody is woken for it
    assert world.client.post("/api/v1/jobs/db/resume", headers=headers).status_code == 200
    world.settle()  # its last backup still failed: resuming says so at once
    assert [a["rule"] for a in world.alerts("open")] == ["failed"]


def test_two_rounds_never_run_at_once(world):
    tasks = world.client.app.state.alert_tasks
    running, most = 0, 0

    async def round_() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    async def two_at_once() -> None:
        await asyncio.gather(tasks.tick(), tasks.tick())

    tasks._tick = round_
    world.client.portal.call(two_at_once)
    assert most == 1


def test_the_alerts_page_lists_critical_alerts_first_then_the_newest(world):
    world.report("early", status="unknown", message="no dump file")  # warning, oldest
    world.clock.advance(H)
    world.report("broken", status="failed", message="exit 2")  # critical
    world.clock.advance(H)
    world.report("late", status="unknown", message="no dump file")  # warning, newest
    world.settle()
    by_id = {a["id"]: (a["job"], a["severity"]) for a in world.alerts("open")}
    assert sorted(by_id.values()) == [
        ("broken", "critical"),
        ("early", "warning"),
        ("late", "warning"),
    ]
    page = world.client.get("/alerts").text
    shown = [by_id[int(i)][0] for i in re.findall(r'data-alert="(\d+)"', page)]
    assert shown == ["broken", "late", "early"]
