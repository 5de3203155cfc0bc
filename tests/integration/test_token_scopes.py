"""Token scopes (issue 14): read, ingest (optionally limited to job and host patterns),
operate and admin, over HTTP through the real app on real SQLite and PostgreSQL, the CLI
in-process, and a token stored before patterns existed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from backwatch.services import tokens
from tests.integration.test_api_errors import _envelopes  # noqa: F401  (checks every error)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tools"


def make_token(api: TestClient, name: str, scope: str, **patterns: list[str]) -> dict[str, str]:
    hub = api.app.state.hub  # type: ignore[attr-defined]
    secret, _ = hub.write(tokens.create_token(name, scope, hub.now(), **patterns))
    return {"Authorization": f"Bearer {secret}"}


def run_body(job: str, **fields: Any) -> dict[str, Any]:
    return {"job": job, "status": "success", "started_at": time.time() - 600, **fields}


def stored_runs(api: TestClient) -> list[tuple[str, str | None]]:
    items = api.get("/api/v1/runs?limit=500").json()["items"]
    return sorted((r["job"], r["host"]) for r in items)


def job_ids(api: TestClient) -> list[str]:
    return [j["id"] for j in api.get("/api/v1/jobs").json()["items"]]


def refused(response: Any, *words: str) -> str:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    for word in words:
        assert word in error["message"], error["message"]
    return str(error["message"])


# --- each scope against each class of operation -----------------------------------------

#: (what, the scope it needs, the call). Allowed calls answer anything but 401/403: a
#: real 200, or the 404/422 of an alert or channel that does not exist.
OPERATIONS: list[tuple[str, str, Any]] = [
    ("report", "ingest", lambda c, h: c.post("/api/v1/runs", json=run_body("web-1"), headers=h)),
    (
        "start",
        "ingest",
        lambda c, h: c.post("/api/v1/runs/start", json={"job": "web-1"}, headers=h),
    ),
    ("run", "operate", lambda c, h: c.post("/api/v1/jobs/web-1/run", headers=h)),
    ("pause", "operate", lambda c, h: c.post("/api/v1/jobs/web-1/pause", headers=h)),
    ("resume", "operate", lambda c, h: c.post("/api/v1/jobs/web-1/resume", headers=h)),
    ("ack", "operate", lambda c, h: c.post("/api/v1/alerts/999999/ack", headers=h)),
    ("resolve", "operate", lambda c, h: c.post("/api/v1/alerts/999999/resolve", headers=h)),
    (
        "snooze",
        "operate",
        lambda c, h: c.post("/api/v1/jobs/web-1/snooze", json={"for": "1h"}, headers=h),
    ),
    ("notify test", "operate", lambda c, h: c.post("/api/v1/notify/test", headers=h)),
    (
        "job change",
        "admin",
        lambda c, h: c.put("/api/v1/jobs/web-1", json={"grace": "2h"}, headers=h),
    ),
    ("health fix", "admin", lambda c, h: c.post("/api/v1/health/checks/fix", headers=h)),
    ("run delete", "admin", lambda c, h: c.delete("/api/v1/runs/no-such-run", headers=h)),
]

#: what each scope may do
ALLOWED = {
    "read": set(),
    "ingest": {"ingest"},
    "operate": {"operate"},
    "admin": {"ingest", "operate", "admin"},
}


@pytest.mark.parametrize("scope", ["read", "ingest", "operate", "admin"])
def test_each_scope_against_each_class_of_operation(api: TestClient, scope: str) -> None:
    api.post("/api/v1/runs", json=run_body("web-1"), headers=api.auth_headers)  # type: ignore[attr-defined]
    headers = make_token(api, f"t-{scope}", scope)
    for what, needed, call in OPERATIONS:
        response = call(api, headers)
        if needed in ALLOWED[scope]:
            assert response.status_code not in (401, 403), (what, response.text)
        else:
            refused(
                response,
                f"token 't-{scope}' has scope '{scope}'; this call needs '{needed}'",
                f"(create one with `backwatch token create --scope {needed}`)",
            )
    # every scope reads (reads protected or not)
    assert api.get("/api/v1/jobs/web-1", headers=headers).status_code == 200


def test_operate_acts_on_jobs_and_alerts_but_reports_nothing(api: TestClient) -> None:
    admin = api.auth_headers  # type: ignore[attr-defined]
    failed = run_body("db", status="failed", id="db-1")
    assert api.post("/api/v1/runs", json=failed, headers=admin).status_code == 201
    operator = make_token(api, "oncall", "operate")

    paused = api.post("/api/v1/jobs/db/pause", headers=operator)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert "ping_url" not in paused.json()  # a ping URL reports runs: not for operate
    assert api.post("/api/v1/jobs/db/resume", headers=operator).json()["paused"] is False
    snoozed = api.post("/api/v1/jobs/db/snooze", json={"for": "2h"}, headers=operator)
    assert snoozed.status_code == 200 and snoozed.json()["snoozed_until"]
    deadline = time.monotonic() + 20
    alerts: list[dict[str, Any]] = []
    while not alerts and time.monotonic() < deadline:
        alerts = api.get("/api/v1/alerts?state=open&job=db").json()["items"]
        time.sleep(0.1)
    assert alerts, "the failed run opens an alert"
    acked = api.post(f"/api/v1/alerts/{alerts[0]['id']}/ack", headers=operator)
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    events = api.get("/api/v1/events?kind=ack").json()["items"]
    assert any(e["actor"] == "oncall" for e in events), events

    # no report, not even the success that would clear the alert it acknowledged
    before = stored_runs(api)
    fix = run_body("db", id="db-2")
    refused(api.post("/api/v1/runs", json=fix, headers=operator), "needs 'ingest'")
    refused(api.post("/api/v1/runs/db-1/finish", json={"status": "success"}, headers=operator))
    refused(api.get("/api/v1/ping-key", headers=operator), "needs 'ingest'")
    assert stored_runs(api) == before


def test_a_token_from_before_scopes_still_reports_for_any_job_but_no_longer_operates(
    api: TestClient,
) -> None:
    """An ``ingest`` token as every release before this one made it: no patterns."""
    old = make_token(api, "old-host", "ingest")
    for job in ("web-1", "mail", "db-dump"):
        response = api.post("/api/v1/runs", json=run_body(job, host="anywhere"), headers=old)
        assert response.status_code == 201, response.text
    started = api.post("/api/v1/runs/start", json={"job": "mail"}, headers=old)
    assert started.status_code == 201
    finish = {"status": "success"}
    done = api.post(f"/api/v1/runs/{started.json()['id']}/finish", json=finish, headers=old)
    assert done.status_code == 200
    assert "ping_url" in api.get("/api/v1/jobs/mail", headers=old).json()
    assert api.get("/api/v1/ping-key", headers=old).status_code == 200
    for call in (
        lambda: api.post("/api/v1/jobs/mail/pause", headers=old),
        lambda: api.post("/api/v1/jobs/mail/snooze", json={"for": "100y"}, headers=old),
        lambda: api.post("/api/v1/jobs/mail/run", headers=old),
        lambda: api.post("/api/v1/alerts/1/ack", headers=old),
        lambda: api.post("/api/v1/notify/test", headers=old),
    ):
        refused(
            call(),
            "token 'old-host' has scope 'ingest'; this call needs 'operate' "
            "(create one with `backwatch token create --scope operate`)",
        )
    assert api.get("/api/v1/jobs/mail").json()["paused"] is False


# --- job and host patterns ------------------------------------------------------------


@pytest.mark.parametrize("path", ["fast", "framework"])
def test_a_job_pattern_limits_reports(api: TestClient, path: str) -> None:
    api.app.fast_ingest = path == "fast"  # type: ignore[attr-defined]
    host1 = make_token(api, "host1", "ingest", jobs=["web-*", "db-dump"])
    for job in ("web-1", "web-static", "db-dump"):
        response = api.post("/api/v1/runs", json=run_body(job), headers=host1)
        assert response.status_code == 201, response.text
    message = refused(
        api.post("/api/v1/runs", json=run_body("mail"), headers=host1),
        "token 'host1' may report only for jobs matching 'web-*', 'db-dump'",
        "not for job 'mail'",
    )
    assert "[" not in message.split(":")[0]  # a single report: no batch index
    refused(api.post("/api/v1/runs", json=run_body("db-dump-2"), headers=host1), "'db-dump-2'")
    # a seed 001 line names its job the same way
    seed = {"timestamp": "2026-05-01T02:00:00Z", "backup_id": "b1", "success": True,
            "duration_total": 5, "job": "mail"}  # fmt: skip
    refused(api.post("/api/v1/runs", json=seed, headers=host1), "'mail'")
    assert job_ids(api) == ["db-dump", "web-1", "web-static"]


@pytest.mark.parametrize("path", ["fast", "framework"])
def test_a_batch_with_one_forbidden_report_is_refused_whole(api: TestClient, path: str) -> None:
    api.app.fast_ingest = path == "fast"  # type: ignore[attr-defined]
    host1 = make_token(api, "host1", "ingest", jobs=["web-*"])
    batch = [run_body("web-1", id="a"), run_body("mail", id="b"), run_body("web-2", id="c")]
    refused(
        api.post("/api/v1/runs", json=batch, headers=host1),
        "[1] token 'host1' may report only for jobs matching 'web-*', not for job 'mail'",
    )
    assert stored_runs(api) == [] and job_ids(api) == []
    allowed = [run_body("web-1", id="a"), run_body("web-2", id="c")]
    response = api.post("/api/v1/runs", json=allowed, headers=host1)
    assert response.status_code == 201, response.text
    assert [item["job"] for item in response.json()["items"]] == ["web-1", "web-2"]


def test_a_host_pattern_limits_reports(api: TestClient) -> None:
    web = make_token(api, "webs", "ingest", hosts=["web*"])
    for host in ("web1", "WEB2.lan"):  # host names compare without case, as DNS does
        response = api.post("/api/v1/runs", json=run_body("site", host=host), headers=web)
        assert response.status_code == 201, response.text
    refused(
        api.post("/api/v1/runs", json=run_body("site", host="db1"), headers=web),
        "token 'webs' may report only from hosts matching 'web*', not from host 'db1'",
    )
    refused(
        api.post("/api/v1/runs", json=run_body("site"), headers=web),
        "this report names no host",
    )
    refused(
        api.post("/api/v1/runs/start", json={"job": "site", "host": "db1"}, headers=web),
        "'db1'",
    )
    assert stored_runs(api) == [("site", "WEB2.lan"), ("site", "web1")]


def test_jobs_and_hosts_both_hold(api: TestClient) -> None:
    both = make_token(api, "both", "ingest", jobs=["web-*"], hosts=["web*"])
    ok = api.post("/api/v1/runs", json=run_body("web-1", host="web1"), headers=both)
    assert ok.status_code == 201
    refused(api.post("/api/v1/runs", json=run_body("web-1", host="db1"), headers=both), "'db1'")
    refused(api.post("/api/v1/runs", json=run_body("mail", host="web1"), headers=both), "'mail'")


def test_lifecycle_calls_are_held_to_the_runs_job(api: TestClient) -> None:
    admin = api.auth_headers  # type: ignore[attr-defined]
    host1 = make_token(api, "host1", "ingest", jobs=["web-*"])
    refused(api.post("/api/v1/runs/start", json={"job": "mail"}, headers=host1), "'mail'")
    own = api.post("/api/v1/runs/start", json={"job": "web-1"}, headers=host1).json()["id"]
    other = api.post("/api/v1/runs/start", json={"job": "mail"}, headers=admin).json()["id"]
    calls = [
        ("status", {"message": "half way"}),
        ("phases", {"name": "upload", "event": "start"}),
        ("files", {"files": [{"path": "/srv/a", "size": 1, "status": "ok"}]}),
        ("finish", {"status": "success"}),
    ]
    for call, body in calls:
        refused(api.post(f"/api/v1/runs/{other}/{call}", json=body, headers=host1), "'mail'")
    mail = api.get(f"/api/v1/runs/{other}").json()
    assert mail["status"] == "running" and mail["message"] is None
    for call, body in calls:
        response = api.post(f"/api/v1/runs/{own}/{call}", json=body, headers=host1)
        assert response.status_code == 200, (call, response.text)
    assert api.get(f"/api/v1/runs/{own}").json()["status"] == "success"
    # an unknown run is the call's own 404, not a refusal
    missing = api.post("/api/v1/runs/nope/finish", json={"status": "success"}, headers=host1)
    assert missing.status_code == 404


def test_tool_output_is_held_to_the_job_and_host(api: TestClient) -> None:
    output = json.loads((FIXTURES / "restic/0.14.0/wrong_password.json").read_text())["output"]
    host1 = make_token(api, "host1", "ingest", jobs=["srv"], hosts=["nas"])
    url = "/api/v1/tool-output/restic"
    refused(
        api.post(url, params={"job": "mail", "host": "nas"}, content=output, headers=host1),
        "'mail'",
    )
    refused(api.post(url, params={"job": "srv"}, content=output, headers=host1), "no host")
    ok = api.post(url, params={"job": "srv", "host": "nas"}, content=output, headers=host1)
    assert ok.status_code == 201, ok.text
    assert stored_runs(api) == [("srv", "nas")]


def test_a_limited_token_gets_no_key_that_reports_for_other_jobs(api: TestClient) -> None:
    admin = api.auth_headers  # type: ignore[attr-defined]
    api.post("/api/v1/runs", json=run_body("web-1"), headers=admin)
    host1 = make_token(api, "host1", "ingest", jobs=["web-*"])
    refused(api.get("/api/v1/ping-key", headers=host1), "project ping key")
    assert "ping_url" not in api.get("/api/v1/jobs/web-1", headers=host1).json()
    assert all("ping_url" not in j for j in api.get("/api/v1/jobs", headers=host1).json()["items"])
    assert "ping_url" in api.get("/api/v1/jobs/web-1", headers=admin).json()


def test_patterns_are_checked_when_the_token_is_made(hub) -> None:
    from backwatch.errors import InvalidInput

    with pytest.raises(InvalidInput, match="scope 'operate' takes none"):
        tokens.create_token("x", "operate", 0, jobs=["web-*"])
    with pytest.raises(InvalidInput, match="can never match a job id"):
        tokens.create_token("x", "ingest", 0, jobs=["Web-*"])
    with pytest.raises(InvalidInput, match="space"):
        tokens.create_token("x", "ingest", 0, hosts=["web 1"])
    secret, _ = hub.write(
        tokens.create_token("x", "ingest", 0, jobs=["web-*", "web-*", "db"], hosts=["nas*"])
    )
    grant = tokens.lookup(hub.read_engine, secret)
    assert grant == tokens.Grant("x", "ingest", ("web-*", "db"), ("nas*",))


# --- the dashboard's actions ------------------------------------------------------------


def test_dashboard_actions_need_operate(api: TestClient) -> None:
    from tests.integration.test_pages import ORIGIN, csrf_of, sign_in

    api.event_hooks["response"].clear()  # pages answer errors as HTML, not the API envelope
    api.post("/api/v1/runs", json=run_body("photos"), headers=api.auth_headers)  # type: ignore[attr-defined]
    ingest_secret = make_token(api, "host1", "ingest")["Authorization"].split()[1]
    sign_in(api, ingest_secret)
    page = api.get("/jobs/photos").text
    assert "/jobs/photos/pause" not in page
    pause = api.post("/jobs/photos/pause", data={"csrf": csrf_of(page)}, headers={"Origin": ORIGIN})
    assert pause.status_code == 403 and "operate" in pause.text
    operator = make_token(api, "oncall", "operate")["Authorization"].split()[1]
    sign_in(api, operator)
    page = api.get("/jobs/photos").text
    assert "/jobs/photos/pause" in page
    pause = api.post("/jobs/photos/pause", data={"csrf": csrf_of(page)}, headers={"Origin": ORIGIN})
    assert pause.status_code == 200
    assert api.get("/api/v1/jobs/photos").json()["paused"] is True


# --- upgrade: tokens stored before patterns --------------------------------------------


def test_tokens_stored_before_the_upgrade_keep_working(db_url: str, tmp_path: Path) -> None:
    from alembic import command

    from backwatch.services.hub import Hub
    from backwatch.store.migrate import _config
    from tests.conftest import make_settings

    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0004")  # type: ignore[arg-type]
        conn.execute(
            text(
                "INSERT INTO tokens (name, hash, prefix, scope, created_at) "
                "VALUES ('old-host', :hash, 'bw_old', 'ingest', 1)"
            ),
            {"hash": tokens.hash_token("bw_old-secret")},
        )
    engine.dispose()
    with Hub(make_settings(tmp_path / "data", db_url)) as hub:
        assert tokens.lookup(hub.read_engine, "bw_old-secret") == tokens.Grant("old-host", "ingest")
        [listed] = tokens.list_tokens(hub.read_engine)
        assert (listed["jobs"], listed["hosts"]) == ([], [])


# --- the CLI ----------------------------------------------------------------------------


def test_token_create_with_patterns_and_token_list(db_url: str, monkeypatch, tmp_path) -> None:
    from backwatch.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "160")  # room for every column of the table
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, [*args, "--db", db_url])
        assert "Traceback" not in result.output
        assert result.exit_code == code, result.output
        return result

    made = cli("token", "create", "--name", "host1", "--scope", "ingest",
               "--jobs", "web-*", "--jobs", "db-dump", "--hosts", "web*")  # fmt: skip
    secret = made.stdout.strip().splitlines()[0]
    assert secret.startswith("bw_")
    assert "jobs web-*, db-dump; hosts web*" in made.stderr
    cli("token", "create", "--name", "oncall", "--scope", "operate")
    listed = cli("token", "list").stdout
    assert "web-*, db-dump" in listed and "web*" in listed and "operate" in listed
    assert secret not in listed
    items = {i["name"]: i for i in json.loads(cli("token", "list", "--json").stdout)}
    assert (items["host1"]["jobs"], items["host1"]["hosts"]) == (["web-*", "db-dump"], ["web*"])
    assert (items["oncall"]["scope"], items["oncall"]["jobs"]) == ("operate", [])

    bad = cli("token", "create", "--name", "x", "--scope", "admin", "--jobs", "web-*", code=1)
    assert "patterns limit an ingest token" in bad.output
    bad = cli("token", "create", "--name", "x", "--jobs", "Web-*", code=1)
    assert "can never match a job id" in bad.output
