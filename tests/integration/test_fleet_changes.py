"""Two ``serve`` instances on one PostgreSQL database, as behind a load balancer (issue 18):
a report that reaches the follower is judged by the leader within seconds, also one made
while the leader was not listening, and the live stream of one instance carries what was
written through the other. Real processes."""

from __future__ import annotations

import http.client
import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from backwatch.services.changefeed import CHANNEL_SQL
from tests.conftest import Server, wait_for

LEASE_S = 5
TICK_S = 2


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[Server, Server]]:
    config = tmp_path / "backwatch.toml"
    config.write_text(
        f"[server]\nleader_lease_seconds = {LEASE_S}\n[alerts]\ntick_seconds = {TICK_S}\n"
    )
    env = {"BACKWATCH_DATABASE_URL": pg_url, "BACKWATCH_CONFIG": str(config)}
    leader = Server(tmp_path / "a", env).start()  # first up: it takes the leader's lock
    follower = Server(tmp_path / "b", env).start()
    try:
        yield leader, follower
    finally:
        follower.stop()
        leader.stop()


def call(server: Server, method: str, path: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def report_failure_and_wait_for_its_alert(to: Server, token: str, wait_s: float) -> float:
    """Seconds from the report to the open alert (fails after ``wait_s``)."""
    failed = {"job": "db", "status": "failed", "started_at": time.time() - 60,
              "message": "pg_dump: connection refused"}  # fmt: skip
    start = time.monotonic()
    call(to, "POST", "/api/v1/runs", token, failed)
    alerts: list[dict[str, Any]] = []
    while not alerts and time.monotonic() < start + wait_s:
        alerts = call(to, "GET", "/api/v1/alerts?state=open&job=db", token)["items"]
        time.sleep(0.2)
    assert [(a["rule"], a["severity"]) for a in alerts] == [("failed", "critical")]
    return time.monotonic() - start


def test_a_failure_reported_to_the_follower_alerts_within_seconds(pair):
    leader, follower = pair
    # (the leader's round over every job, which alone saw it before, comes once a day)
    report_failure_and_wait_for_its_alert(follower, leader.token, wait_s=15)


def test_a_report_made_while_the_leader_was_not_listening_is_judged_when_it_hears_again(
    pair, pg_url: str
):
    leader, follower = pair
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        listen = f'LISTEN "{conn.execute(text(f"SELECT {CHANNEL_SQL}")).scalar_one()}"'

    def listening() -> list[int]:
        with engine.connect() as conn:  # (a new snapshot of the activity each time)
            query = text("SELECT pid FROM pg_stat_activity WHERE query = :q")
            return list(conn.execute(query, {"q": listen}).scalars())

    pids = wait_for("both instances listening", lambda: len(listening()) >= 2 and listening())
    with engine.connect() as conn:  # their listening connections drop: a network blip
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(:p) AS pid"), {"p": pids})
    # reported while nobody listens: the leader never hears of it, and judges it on
    # hearing again (its round over every job), not at the next daily one
    report_failure_and_wait_for_its_alert(follower, leader.token, wait_s=20)
    assert "not hearing other instances' changes" in leader.log.read_text()
    engine.dispose()


def test_a_killed_leader_is_replaced(pair):
    leader, follower = pair
    token = leader.token  # one database: one set of tokens
    leader.stop(kill=True)  # kill -9: its session ends, its lock with it
    report_failure_and_wait_for_its_alert(follower, token, wait_s=30)


def test_a_frozen_leader_is_replaced_once_its_lease_runs_out(pair):
    leader, follower = pair
    token = leader.token
    assert leader.proc is not None
    leader.proc.send_signal(signal.SIGSTOP)  # alive, connected, holding its lock: hung
    try:
        took = report_failure_and_wait_for_its_alert(follower, token, wait_s=LEASE_S + 25)
        assert took > LEASE_S / 2  # (not judged before the lease ran out: nobody led)
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    # woken, the old leader finds it lost the lead and keeps answering as a follower
    time.sleep(LEASE_S / 2)
    with urllib.request.urlopen(leader.url + "/readyz", timeout=10) as resp:
        assert resp.status == 200
    assert len(call(leader, "GET", "/api/v1/alerts?state=open&job=db", token)["items"]) == 1


def test_the_live_stream_of_one_instance_carries_writes_made_through_the_other(pair):
    leader, follower = pair
    token = leader.token
    stream = http.client.HTTPConnection("127.0.0.1", follower.port, timeout=15)
    stream.request("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {token}"})
    response = stream.getresponse()
    assert response.status == 200
    try:
        assert b"event: hello" in b"".join(response.readline() for _ in range(3))
        body = {"job": "photos", "status": "success", "started_at": time.time() - 60}
        run = call(leader, "POST", "/api/v1/runs", token, body)
        deadline = time.monotonic() + 10
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not any(c.get("id") == run["id"] for c in seen):
            line = response.readline()
            if line.startswith(b"data: ") and b'"type"' in line:
                seen.extend(json.loads(line[6:]))
        assert any(c.get("id") == run["id"] and c.get("job") == "photos" for c in seen), seen
    finally:
        stream.close()
