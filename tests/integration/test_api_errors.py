"""Every "Bad input" case of issue 2 over HTTP: a 4xx JSON error envelope that names the field
and the problem, and nothing stored. Plus the envelope shape itself (datasette's
test_error_shape) and /health when the database goes away.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from backwatch.services import tokens
from backwatch.store import tables as t
from tests.conftest import PG_URL, make_settings, need

START = "2026-05-01T02:00:00Z"
GOOD = {"id": "r-ok", "job": "nightly", "status": "success", "started_at": START}


def check_envelope(response: httpx.Response) -> None:
    """Every error answer is {"error": {"code", "message", "details"?}} and nothing else."""
    if response.status_code < 400:
        return
    response.read()
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert "Traceback" not in error["message"]
    for detail in error.get("details", []):
        assert set(detail) == {"field", "problem"}, detail
        assert detail["field"] and detail["problem"]


def install_envelope_check(client: Any) -> None:
    client.event_hooks["response"].append(check_envelope)


@pytest.fixture(autouse=True)
def _envelopes(request: pytest.FixtureRequest) -> None:
    if "api" in request.fixturenames:
        install_envelope_check(request.getfixturevalue("api"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def eapi(request: pytest.FixtureRequest, tmp_path_factory, pg_available) -> Iterator[Any]:
    """One app per database for the whole module: bad input must leave it untouched anyway."""
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine, text

    from backwatch.web.app import create_app

    tmp = tmp_path_factory.mktemp("errors")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'backwatch.db'}"
    else:
        need(pg_available, f"PostgreSQL is not reachable at {PG_URL}")
        schema = "bwtest_" + secrets.token_hex(6)
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    settings = make_settings(tmp / "data", url)
    with TestClient(create_app(settings)) as client:
        client.auth_headers = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
        install_envelope_check(client)
        assert (
            client.post("/api/v1/runs", json=GOOD, headers=client.auth_headers).status_code == 201
        )
        yield client
    if schema is not None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def stored(client: Any) -> tuple[int, ...]:
    """Row counts of everything a write could touch."""
    hub = client.app.state.hub
    with hub.read_engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (t.runs, t.jobs, t.phases, t.run_files, t.run_logs, t.events)
        )


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def problem_for(error: dict[str, Any], field: str) -> str:
    for detail in error.get("details", []):
        if detail["field"] == field:
            return detail["problem"]
    raise AssertionError(f"no detail names {field!r}: {error}")


BAD_REPORTS = [
    # (change to a good report, field named, words in the problem)
    ({"status": "done"}, "status", "unknown status"),
    ({"status": 1}, "status", "string"),
    ({"size_bytes": "1000"}, "size_bytes", "whole number"),
    ({"size_bytes": True}, "size_bytes", "whole number"),
    ({"size_bytes": -1}, "size_bytes", "negative"),
    ({"size_bytes": 2**64}, "size_bytes", "at most"),
    ({"files": -3}, "files", "negative"),
    ({"duration_s": -1.5}, "duration_s", "negative"),
    ({"duration_s": "1h"}, "duration_s", "number"),
    ({"finished_at": "2026-05-01T01:59:59Z"}, "finished_at", "before"),
    ({"started_at": "last night"}, "started_at", "ISO 8601"),
    ({"started_at": None}, "started_at", "ISO 8601"),
    ({"job": "My Backup"}, "job", "slug"),
    ({"job": "../etc"}, "job", "slug"),
    ({"job": ["nightly"]}, "job", "string"),
    ({"exit_code": 999}, "exit_code", "255"),
    ({"phases": [{"name": "upload", "duration_s": -5}]}, "phases[0].duration_s", "negative"),
    ({"phases": {"upload": "fast"}}, "phases.upload", "number"),
    ({"trigger": "x" * 40}, "trigger", "schedule"),
    ({"host": "h" * 300}, "host", "too long"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_REPORTS)
def test_bad_reports(eapi, change, field, words):
    before = stored(eapi)
    error = error_of(
        eapi.post("/api/v1/runs", json={**GOOD, "id": "new", **change}, headers=eapi.auth_headers),
        422,
    )
    assert error["code"] == "invalid"
    assert words in problem_for(error, field)
    assert field in error["message"]
    assert stored(eapi) == before


SEED = {"timestamp": START, "backup_id": "b-1", "success": True, "duration_total": 10}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"success": "yes"}, "success"),
        ({"duration_total": -10}, "duration_total"),
        ({"duration_upload": -1}, "duration_upload"),
        ({"size_bytes": -1}, "size_bytes"),
        ({"timestamp": "whenever"}, "timestamp"),
        ({"job": "UPPER"}, "job"),
    ],
)
def test_bad_seed001_records(eapi, change, field):
    before = stored(eapi)
    error = error_of(
        eapi.post("/api/v1/runs", json={**SEED, **change}, headers=eapi.auth_headers), 422
    )
    problem_for(error, field)
    assert stored(eapi) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"job": "nightly", ', "malformed JSON at line 1"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"job": "a", "status": "success", "started_at": 0, "duration_s": NaN}', "NaN"),
        (b'{"job": "a", "status": "success", "started_at": Infinity}', "Infinity"),
        (b"[" * 50_000 + b"]" * 50_000, "malformed JSON"),
    ],
    ids=["truncated", "empty", "blank", "utf-16", "nan", "infinity", "deep"],
)
def test_malformed_bodies(eapi, body, words):
    before = stored(eapi)
    response = eapi.post(
        "/api/v1/runs",
        content=body,
        headers={**eapi.auth_headers, "content-type": "application/json"},
    )
    error = error_of(response, 400)
    assert error["code"] == "malformed"
    assert words in error["message"]
    assert stored(eapi) == before


@pytest.mark.parametrize("body", [b"[]", b'"a report"', b"42", b"null", b"[1, 2]"])
def test_not_an_object(eapi, body):
    before = stored(eapi)
    response = eapi.post("/api/v1/runs", content=body, headers=eapi.auth_headers)
    assert response.status_code == 422, response.text
    assert stored(eapi) == before


def test_a_batch_is_stored_whole_or_not_at_all(eapi):
    before = stored(eapi)
    good = {**GOOD, "id": "batch-0"}
    bad = {**GOOD, "id": "batch-1", "size_bytes": -1}
    error = error_of(eapi.post("/api/v1/runs", json=[good, bad], headers=eapi.auth_headers), 422)
    assert problem_for(error, "[1].size_bytes") == "must not be negative"
    assert error["message"].startswith("[1] ")
    # a conflict found while storing (an id of another job) undoes the whole batch too
    clash = {**GOOD, "job": "weekly"}  # GOOD's id belongs to "nightly"
    error = error_of(eapi.post("/api/v1/runs", json=[good, clash], headers=eapi.auth_headers), 409)
    assert "[1]" in error["message"] and "already belongs to job 'nightly'" in error["message"]
    assert stored(eapi) == before


def test_an_oversized_batch(eapi):
    before = stored(eapi)
    error = error_of(eapi.post("/api/v1/runs", json=[GOOD] * 1001, headers=eapi.auth_headers), 422)
    assert "1–1000" in error["message"]
    assert stored(eapi) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/runs/nope/status", {"message": "hi"}),
        ("/api/v1/runs/nope/phases", {"name": "dump", "event": "start"}),
        ("/api/v1/runs/nope/files", {"path": "/etc/hosts", "size": 3}),
        ("/api/v1/runs/nope/finish", {"status": "success"}),
    ],
)
def test_an_unknown_run_id(eapi, path, body):
    before = stored(eapi)
    error = error_of(eapi.post(path, json=body, headers=eapi.auth_headers), 404)
    assert error["code"] == "not_found"
    assert "run 'nope' not found" in error["message"]
    assert stored(eapi) == before
    assert error_of(eapi.get("/api/v1/runs/nope"), 404)["code"] == "not_found"


def started(client: Any) -> str:
    response = client.post(
        "/api/v1/runs/start", json={"job": "nightly"}, headers=client.auth_headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_finishing_twice(eapi):
    run_id = started(eapi)
    finish = f"/api/v1/runs/{run_id}/finish"
    assert (
        eapi.post(finish, json={"status": "success"}, headers=eapi.auth_headers).status_code == 200
    )
    before = stored(eapi)
    first = eapi.get(f"/api/v1/runs/{run_id}").json()
    again = {"status": "failed", "message": "late", "log": "x", "size_bytes": 5}
    error = error_of(eapi.post(finish, json=again, headers=eapi.auth_headers), 409)
    assert error["code"] == "illegal_transition"
    assert f"run {run_id} already finished as success" in error["message"]
    assert stored(eapi) == before
    assert eapi.get(f"/api/v1/runs/{run_id}").json() == first
    # nor may phases or files arrive after the finish
    late = eapi.post(f"/api/v1/runs/{run_id}/phases", json={"name": "x"}, headers=eapi.auth_headers)
    assert error_of(late, 409)["code"] == "conflict"


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        ("finish", {"status": "success", "finished_at": "2000-01-01T00:00:00Z"}, "finished_at"),
        ("finish", {"status": "running"}, "status"),
        ("finish", {"status": "success", "size_bytes": -1}, "size_bytes"),
        ("finish", {"status": "success", "duration_s": -1}, "duration_s"),
        ("finish", {"status": "success", "colour": "red"}, "colour"),
        ("phases", {"name": "dump", "event": "pause"}, "event"),
        ("phases", {"name": ""}, "name"),
        ("files", {"path": "/a", "size": -1}, "files[0].size"),
        ("status", {"status": "sleeping"}, "status"),
    ],
)
def test_bad_lifecycle_bodies(eapi, endpoint, body, field):
    run_id = started(eapi)
    before = stored(eapi)
    response = eapi.post(f"/api/v1/runs/{run_id}/{endpoint}", json=body, headers=eapi.auth_headers)
    error = error_of(response, 422)
    problem_for(error, field)
    assert stored(eapi) == before
    assert eapi.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"


@pytest.mark.parametrize(
    "body", [{"job": "Bad Slug"}, {"job": "a", "status": "success"}, {"job": "a", "x": 1}, {}]
)
def test_bad_starts(eapi, body):
    before = stored(eapi)
    assert eapi.post("/api/v1/runs/start", json=body, headers=eapi.auth_headers).status_code == 422
    assert stored(eapi) == before


def test_an_oversized_body(eapi):
    before = stored(eapi)
    limit = eapi.app.state.settings.server.max_body_bytes
    big = {**GOOD, "id": "big", "log": "x" * (limit + 10)}
    error = error_of(eapi.post("/api/v1/runs", json=big, headers=eapi.auth_headers), 413)
    assert error["code"] == "payload_too_large"
    assert str(limit) in error["message"]
    assert stored(eapi) == before


def test_an_oversized_body_without_a_length(eapi):
    """Chunked uploads carry no Content-Length; the limit holds while reading."""
    before = stored(eapi)
    limit = eapi.app.state.settings.server.max_body_bytes
    payload = json.dumps({**GOOD, "id": "big", "log": "x" * (limit + 10)}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    response = eapi.post(
        "/api/v1/runs",
        content=chunks(),
        headers={**eapi.auth_headers, "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert error_of(response, 413)["code"] == "payload_too_large"
    assert stored(eapi) == before


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "needs a token"),
        ({"Authorization": "Bearer "}, "needs a token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "needs a token"),
        ({"Authorization": "Bearer bw_not-a-real-token"}, "not valid"),
    ],
)
def test_missing_or_wrong_token(eapi, headers, words):
    before = stored(eapi)
    response = eapi.post("/api/v1/runs", json={**GOOD, "id": "anon"}, headers=headers)
    error = error_of(response, 401)
    assert error["code"] == "unauthorized"
    assert words in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert stored(eapi) == before


def test_read_and_revoked_tokens(eapi):
    hub = eapi.app.state.hub
    reader, _ = hub.write(tokens.create_token("reader-" + secrets.token_hex(3), "read", hub.now()))
    before = stored(eapi)
    response = eapi.post(
        "/api/v1/runs", json={**GOOD, "id": "ro"}, headers={"Authorization": f"Bearer {reader}"}
    )
    error = error_of(response, 403)
    assert error["code"] == "forbidden"
    assert "scope 'read'" in error["message"] and "'ingest'" in error["message"]
    # an ingest token may not change jobs (admin)
    name = "ingest-" + secrets.token_hex(3)
    ingest, _ = hub.write(tokens.create_token(name, "ingest", hub.now()))
    put = eapi.put("/api/v1/jobs/nightly", json={"grace": "2h"},
                   headers={"Authorization": f"Bearer {ingest}"})  # fmt: skip
    assert error_of(put, 403)["code"] == "forbidden"
    # a revoked token stops working (the server's token cache is short-lived)
    hub.write(tokens.revoke_token(name, hub.now()))
    eapi.app.state.token_cache.clear()
    response = eapi.post("/api/v1/runs", json=GOOD, headers={"Authorization": f"Bearer {ingest}"})
    assert "not valid" in error_of(response, 401)["message"]
    assert stored(eapi)[:5] == before[:5]  # token events aside, nothing changed


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/runs?limit=0", "limit"),
        ("/api/v1/runs?limit=abc", "limit"),
        ("/api/v1/runs?status=bogus", "status"),
        ("/api/v1/runs?since=the-other-day", "since"),
        ("/api/v1/runs?until=nan", "until"),
        ("/api/v1/runs?cursor=!!!", "cursor"),
        ("/api/v1/summary?days=0", "days"),
        ("/api/v1/summary?days=many", "days"),
        ("/api/v1/events?kind=gossip", "kind"),
    ],
)
def test_bad_query_parameters(eapi, url, field):
    error = error_of(eapi.get(url), 422)
    problem_for(error, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace": "soon"}, "grace"),
        ({"grace": -5}, "grace"),
        ({"schedule": "0 25 * * *"}, "schedule"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"paused": "maybe"}, "paused"),
        ({"colour": "red"}, "colour"),
        ({"tags": "a,b"}, "tags"),
    ],
)
def test_bad_job_changes(eapi, body, field):
    before = stored(eapi)
    error = error_of(eapi.put("/api/v1/jobs/nightly", json=body, headers=eapi.auth_headers), 422)
    problem_for(error, field)
    assert stored(eapi) == before


def test_a_bad_job_slug_in_the_url(eapi):
    before = stored(eapi)
    error = error_of(
        eapi.put("/api/v1/jobs/Not%20A%20Slug", json={}, headers=eapi.auth_headers), 422
    )
    assert "slug" in problem_for(error, "id")
    assert stored(eapi) == before
    assert error_of(eapi.post("/api/v1/jobs/ghost/pause", headers=eapi.auth_headers), 404)


def test_unknown_urls_and_methods(eapi):
    assert error_of(eapi.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(eapi.delete("/api/v1/runs"), 405)["code"] == "method_not_allowed"
    assert error_of(eapi.get("/api/v1/jobs/ghost"), 404)["code"] == "not_found"


# -- /health --------------------------------------------------------------------------


def test_health(eapi):
    response = eapi.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] in ("sqlite", "postgresql")


def _health_app(settings) -> Any:
    from fastapi.testclient import TestClient

    from backwatch.services.hub import Hub
    from backwatch.web.app import create_app

    hub = Hub(settings, grouped=True)
    return hub, TestClient(create_app(settings, hub=hub))


def _assert_unhealthy(client: Any, words: str) -> None:
    response = client.get("/health")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "error"
    assert words in body["detail"]
    assert words in body["error"]["message"]
    check_envelope(response)


def test_health_when_the_sqlite_file_is_deleted(tmp_path: Path):
    db = tmp_path / "data" / "backwatch.db"
    hub, client = _health_app(make_settings(tmp_path / "data", f"sqlite:///{db}"))
    with hub, client:
        assert client.get("/health").status_code == 200
        for leftover in db.parent.glob("backwatch.db*"):
            leftover.unlink()  # e.g. the data directory was cleaned up or unmounted
        _assert_unhealthy(client, "is gone")


def test_health_when_the_sqlite_file_is_replaced(tmp_path: Path):
    db = tmp_path / "data" / "backwatch.db"
    hub, client = _health_app(make_settings(tmp_path / "data", f"sqlite:///{db}"))
    with hub, client:
        assert client.get("/health").status_code == 200
        replacement = db.with_name("restored.db")
        replacement.write_bytes(b"not a database at all")
        replacement.replace(db)
        _assert_unhealthy(client, "was replaced")


def test_health_when_the_postgresql_database_is_dropped(tmp_path: Path, pg_available):
    need(pg_available, f"PostgreSQL is not reachable at {PG_URL}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "bwgone_" + secrets.token_hex(5)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        hub, client = _health_app(make_settings(tmp_path / "data", url))
        with hub, client:
            assert client.get("/health").status_code == 200
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            _assert_unhealthy(client, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
