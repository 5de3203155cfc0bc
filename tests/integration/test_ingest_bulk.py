"""The ingest hot path gives the same answers as the plain path.

- The group-commit writer stores a batch of reports through ``record_report``'s bulk form
  (one SELECT, one INSERT …): the results and the stored rows are those of storing the same
  reports one by one, on SQLite and PostgreSQL, including duplicates and a refused report.
- The job snapshot's median (kept by the alert evaluator) is that of the last 20 successes.
- ``web/fastpath.py`` answers ``POST /api/v1/runs`` byte for byte as the FastAPI route does.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import PhaseReport, RunReport
from backwatch.errors import BackwatchError
from backwatch.services import alerts, tokens
from backwatch.services import runs as run_service
from backwatch.services.hub import Hub
from backwatch.store import tables as t
from backwatch.store.writer import GroupWriter
from tests.conftest import make_settings
from tests.integration.test_store_runs import SEED_LINE

NOW = 1_780_000_000.0
DAY = 86400.0


def report(run_id: str | None, job: str, **fields: Any) -> RunReport:
    values: dict[str, Any] = {
        "status": RunStatus.SUCCESS,
        "started_at": NOW - DAY,
        "duration_s": 60.0,
        "phases": [PhaseReport("scan", 20.0), PhaseReport("upload", 40.0)],
    }
    values.update(fields)
    return RunReport(id=run_id, job=job, **values)


#: stored before the batch: a run by id, a run by job + backup_id
SEED = [
    report("old-1", "alpha"),
    report("old-2", "beta", backup_id="snap-1", started_at=NOW - 2 * DAY),
]
#: the batch: new runs, duplicates of stored runs (by id, by job + backup_id), duplicates
#: of runs earlier in the same batch (by id, by job + backup_id), a run id that belongs to
#: another job (refused), new jobs, a log, a failure and a running run
BATCH = [
    report("new-1", "alpha", size_bytes=1000, files=3),
    report("old-1", "alpha", duration_s=5.0),
    report("other-id", "beta", backup_id="snap-1"),
    report("new-2", "gamma", backup_id="snap-9", host="h2", tool="restic", log="line\n"),
    report("new-2", "gamma", status=RunStatus.FAILED),
    report("new-3", "gamma", backup_id="snap-9"),
    report("old-1", "delta"),
    report("new-4", "delta", status=RunStatus.FAILED, started_at=NOW - 3 * DAY, exit_code=2),
    report("new-5", "alpha", status=RunStatus.RUNNING, duration_s=None, phases=[]),
    report("new-6", "beta", backup_id="snap-2", stats={"dedup": 1.5}, message="ok"),
]


def outcome(result: Any) -> tuple[Any, ...]:
    if isinstance(result, BaseException):
        return ("error", type(result).__name__, str(result))
    return ("ok", result.run, result.created)


def state(hub: Hub) -> dict[str, Any]:
    """Everything a batch of reports writes, in a comparable form."""
    with hub.read_engine.connect() as conn:

        def rows(query: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(query).mappings()]

        jobs = rows(select(t.jobs).order_by(t.jobs.c.id))
        for job in jobs:
            job.pop("ping_key")  # random
            job.pop("check_uuid")  # random
        events = rows(select(t.events).order_by(t.events.c.id))
        for event in events:
            event.pop("id")
        phases = rows(select(t.phases).order_by(t.phases.c.run_id, t.phases.c.seq))
        for phase in phases:
            phase.pop("id")
        return {
            "runs": rows(select(t.runs).order_by(t.runs.c.id)),
            "jobs": jobs,
            "events": [e for e in events if e["kind"] != "auth"],
            "phases": phases,
            "logs": rows(select(t.run_logs).order_by(t.run_logs.c.run_id)),
            "rollups": rows(select(t.daily_rollups).order_by("job", "day")),
        }


def wipe(hub: Hub) -> None:
    with hub.write_engine.begin() as conn:
        for table in (t.phases, t.run_logs, t.events, t.daily_rollups, t.runs, t.jobs):
            conn.execute(delete(table))


def one_by_one(hub: Hub, reports: list[RunReport]) -> list[tuple[Any, ...]]:
    out = []
    for r in reports:
        try:
            out.append(outcome(hub.write(run_service.record_report(r, NOW))))
        except BackwatchError as exc:
            out.append(outcome(exc))
    return out


def in_one_batch(writer: GroupWriter, reports: list[RunReport]) -> list[tuple[Any, ...]]:
    """Submit ``reports`` while the writer is held, so that they form one batch, in order."""
    gate, holding = threading.Event(), threading.Event()

    def hold(conn: Any, unit: Any) -> None:
        holding.set()
        gate.wait(30)

    async def main() -> list[Any]:
        held = asyncio.ensure_future(writer.submit(hold))
        await asyncio.to_thread(holding.wait, 30)
        tasks = [
            asyncio.ensure_future(writer.submit(run_service.record_report(r, NOW))) for r in reports
        ]
        await asyncio.sleep(0.05)  # every task has queued its operation, in order
        gate.set()
        await held
        return await asyncio.gather(*tasks, return_exceptions=True)

    return [outcome(r) for r in asyncio.run(main())]


def test_a_batch_stores_what_one_by_one_stores(settings):
    with Hub(settings) as hub:
        one_by_one(hub, SEED)
        expected = one_by_one(hub, BATCH)
        expected_state = state(hub)
        wipe(hub)
    with Hub(settings, grouped=True) as hub:
        assert isinstance(hub.writer, GroupWriter)
        for r in SEED:
            hub.write(run_service.record_report(r, NOW))
        batches = hub.writer.batches
        got = in_one_batch(hub.writer, BATCH)
        # the holding op, then the whole batch: the refused report did not split it
        assert hub.writer.batches == batches + 2
        assert got == expected
        assert state(hub) == expected_state
    created = [r[2] for r in got if r[0] == "ok"]
    assert created == [True, False, False, True, False, False, True, True, True]
    assert got[6] == ("error", "Conflict", "run id 'old-1' already belongs to job 'alpha'")


def test_a_job_deleted_behind_the_writers_back_comes_back(settings):
    """Known jobs are cached per process; a failed write forgets them and tries again."""
    with Hub(settings, grouped=True) as hub:
        hub.write(run_service.record_report(report("r-1", "alpha"), NOW))
        with hub.write_engine.begin() as conn:
            conn.execute(delete(t.runs))
            conn.execute(delete(t.jobs))
        recorded = hub.write(run_service.record_report(report("r-2", "alpha"), NOW))
        assert recorded.created
        with hub.read_engine.connect() as conn:
            assert conn.execute(select(t.jobs.c.id)).scalars().all() == ["alpha"]
            assert conn.execute(select(t.runs.c.id)).scalars().all() == ["r-2"]


def test_the_snapshot_median_is_of_the_last_twenty_successes(settings):
    rng = random.Random(7)
    reports: list[RunReport] = []
    expected: dict[str, float | None] = {}
    for j, count in enumerate([0, 1, 2, 3, 4, 19, 20, 21, 40]):
        job = f"job-{j}"
        history = []
        for i in range(count):
            status = RunStatus.FAILED if rng.random() < 0.2 else RunStatus.SUCCESS
            duration = None if rng.random() < 0.15 else float(rng.choice([5, 7, 7, 9, 30]))
            started = NOW - (count - i) * 3600
            history.append((started, status, duration))
            reports.append(
                report(f"{job}-{i}", job, status=status, duration_s=duration, started_at=started)
            )
        reports.append(report(f"{job}-last", job, status=RunStatus.FAILED, started_at=NOW))
        last = [d for s, st, d in sorted(history, reverse=True) if st is RunStatus.SUCCESS][:20]
        durations = sorted(d for d in last if d is not None)
        expected[job] = durations[len(durations) // 2] if durations else None
    rng.shuffle(reports)
    with Hub(settings, grouped=True) as hub:
        assert isinstance(hub.writer, GroupWriter)
        for start in range(0, len(reports), 40):  # several batches of many jobs
            in_one_batch(hub.writer, reports[start : start + 40])
        hub.write(alerts.evaluate_jobs(settings, NOW, None, None))  # keeps the medians
        with hub.read_engine.connect() as conn:
            got = dict(conn.execute(select(t.jobs.c.id, t.jobs.c.median_duration_s)).all())
    assert got == expected


# --- the fast path ---------------------------------------------------------------------

GOOD = {"id": "fp-1", "job": "nightly", "status": "success", "started_at": "2026-05-01T02:00:00Z"}


def _requests(limit: int) -> list[tuple[str, str, Any, dict[str, str]]]:
    """(name, path, body, extra headers); body: dict/list → JSON, str/bytes → as is."""
    big = json.dumps({**GOOD, "id": "big", "log": "x" * (limit + 10)}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    return [
        ("created", "/api/v1/runs", GOOD, {}),
        ("existing", "/api/v1/runs", GOOD, {}),
        ("query string", "/api/v1/runs?x=1", {**GOOD, "id": "fp-q"}, {}),
        ("other job", "/api/v1/runs", {**GOOD, "job": "weekly"}, {}),
        (
            "full report",
            "/api/v1/runs",
            {
                "id": "fp-2",
                "job": "nas",
                "host": "nas01",
                "status": "warning",
                "started_at": 1_777_600_000,
                "finished_at": 1_777_600_100,
                "size_bytes": 4096,
                "files": 12,
                "exit_code": 1,
                "message": "ünïcode ✓",
                "log": "a\nb\n",
                "tool": "restic",
                "stats": {"dedup": 1.5},
                "phases": {"scan": 40, "upload": 60},
                "backup_id": "snap-1",
                "trigger": "schedule",
                "restic_version": "0.17",
            },
            {},
        ),
        (
            "same backup_id",
            "/api/v1/runs",
            {**GOOD, "id": "fp-3", "job": "nas", "backup_id": "snap-1"},
            {},
        ),
        ("seed 001", "/api/v1/runs", SEED_LINE, {"content-type": "application/json"}),
        ("batch", "/api/v1/runs", [{**GOOD, "id": "fp-4"}, {**GOOD, "id": "fp-5"}], {}),
        ("batch again", "/api/v1/runs", [{**GOOD, "id": "fp-4"}, {**GOOD, "id": "fp-5"}], {}),
        ("empty batch", "/api/v1/runs", [], {}),
        ("batch, bad item", "/api/v1/runs", [GOOD, {**GOOD, "size_bytes": -1}], {}),
        ("batch, conflict", "/api/v1/runs", [{**GOOD, "id": "fp-6"}, {**GOOD, "job": "x"}], {}),
        ("malformed", "/api/v1/runs", '{"id": ', {}),
        ("empty body", "/api/v1/runs", b"", {}),
        ("not UTF-8", "/api/v1/runs", b'{"job": "\xff"}', {}),
        ("NaN", "/api/v1/runs", '{"job": "a", "status": "success", "duration_s": NaN}', {}),
        ("not an object", "/api/v1/runs", "[1, 2]", {}),
        ("a string", "/api/v1/runs", '"hello"', {}),
        ("missing fields", "/api/v1/runs", {"status": "success"}, {}),
        ("wrong types", "/api/v1/runs", {**GOOD, "size_bytes": "1", "files": 1.5}, {}),
        ("unknown status", "/api/v1/runs", {**GOOD, "status": "great"}, {}),
        ("bad job", "/api/v1/runs", {**GOOD, "job": "Bad Job!"}, {}),
        ("finish before start", "/api/v1/runs", {**GOOD, "finished_at": 1}, {}),
        ("no token", "/api/v1/runs", GOOD, {"authorization": ""}),
        ("basic auth", "/api/v1/runs", GOOD, {"authorization": "Basic abc"}),
        ("bad token", "/api/v1/runs", GOOD, {"authorization": "Bearer nope"}),
        ("read token", "/api/v1/runs", GOOD, {"authorization": "Bearer READ"}),
        ("too large", "/api/v1/runs", big, {}),
        ("too large, chunked", "/api/v1/runs", chunks, {}),
        ("trailing slash", "/api/v1/runs/", GOOD, {}),
    ]


@pytest.fixture
def twin_apps(tmp_path: Path) -> Iterator[list[Any]]:
    """Two apps on two databases: the real one, and one without the fast path."""
    from fastapi.testclient import TestClient

    from backwatch.web.app import create_app

    clients = []
    for name in ("fast", "plain"):
        settings = make_settings(tmp_path / name)
        settings.server.max_body_bytes = 4096
        app = create_app(settings)
        app.fast_ingest = name == "fast"  # type: ignore[attr-defined]
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False).__enter__()
        hub = app.state.hub
        read_secret, _ = hub.write(tokens.create_token("reader", "read", hub.now()))
        client.secrets = {  # type: ignore[attr-defined]
            "default": settings.token_file.read_text().strip(),
            "READ": read_secret,
        }
        clients.append(client)
    yield clients
    for client in clients:
        client.__exit__(None, None, None)


def test_the_fast_path_answers_as_the_route_does(twin_apps, monkeypatch):
    from backwatch.web import fastpath

    handled = []

    async def counting(*args: Any) -> Any:
        handled.append(args)
        return await fastpath_ingest(*args)

    fastpath_ingest = fastpath.ingest
    monkeypatch.setattr(fastpath, "ingest", counting)
    fast, plain = twin_apps
    cases = _requests(4096)
    statuses = {}
    for name, path, body, headers in cases:
        answers = []
        for client in (fast, plain):
            auth = headers.get("authorization", f"Bearer {client.secrets['default']}")
            auth = auth.replace("READ", client.secrets["READ"])
            sent = {**headers, "authorization": auth} if auth else {}
            if isinstance(body, dict | list):
                response = client.post(path, json=body, headers=sent)
            else:
                content = body() if callable(body) else body
                response = client.post(path, content=content, headers=sent)
            # a report without an id gets a new, random one (new_run_id)
            content = re.sub(rb'"id":"[0-9a-f]{22}"', b'"id":"<new>"', response.content)
            answers.append((response.status_code, response.headers.raw, content))
        assert answers[0] == answers[1], name
        statuses[name] = answers[0][0]
    assert statuses["created"] == 201 and statuses["batch"] == 201
    assert statuses["existing"] == 200 and statuses["batch again"] == 200
    assert statuses["same backup_id"] == 200 and statuses["seed 001"] == 201
    assert statuses["other job"] == 409 and statuses["batch, conflict"] == 409
    assert statuses["malformed"] == 400 and statuses["missing fields"] == 422
    assert (statuses["no token"], statuses["bad token"], statuses["read token"]) == (401, 401, 403)
    assert statuses["too large"] == 413 and statuses["too large, chunked"] == 413
    assert statuses["trailing slash"] == 307
    # every POST /api/v1/runs went through the fast path, but the one refused from its
    # Content-Length before anything was read
    posts = [name for name, path, *_ in cases if path.split("?")[0] == "/api/v1/runs"]
    assert len(handled) == len(posts) - 1


def test_the_fast_path_keeps_the_openapi_description(twin_apps):
    fast, plain = twin_apps
    assert fast.get("/openapi.json").json() == plain.get("/openapi.json").json()
    assert "post" in fast.get("/openapi.json").json()["paths"]["/api/v1/runs"]


def test_a_stuck_writer_is_reported_not_waited_for(settings, monkeypatch):
    """``hub.write(op, timeout=…)`` (the health check's writer probe) gives up with
    StoreUnavailable when the writer thread does not answer; the queued write still runs."""
    from backwatch.errors import StoreUnavailable
    from backwatch.services import diagnostics

    release = threading.Event()
    ran = threading.Event()
    with Hub(settings, grouped=True) as hub:
        assert isinstance(hub.writer, GroupWriter)
        holder = threading.Thread(target=hub.write, args=(lambda conn, unit: release.wait(30),))
        holder.start()
        try:
            with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.2 s"):
                hub.write(lambda conn, unit: ran.set(), timeout=0.2)
            monkeypatch.setattr(diagnostics, "WRITER_WAIT_S", 0.2)
            check = diagnostics.writer(hub, NOW)
            assert check.status == "critical" and "did not answer" in check.detail
        finally:
            release.set()
            holder.join()
        assert ran.wait(10)  # the write that timed out was still done
        assert diagnostics.writer(hub, NOW).status == "ok"
