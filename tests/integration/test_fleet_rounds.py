"""Background work over a fleet reads jobs a page at a time and only the jobs that can have
changed (issue 18): the periodic check of the time rules looks at the overdue, the long
running and those with an open alert of a time rule, and finds what a check of every job
finds; the round of the clock looks only at jobs whose 7-day error rate moved as time
passed, and finds what a round over every job finds; a round over every job goes through
them in pages, on taking the lead, after unheard changes and once a day; status files are
brought up to date in pages on start and a restart rewrites none. On real SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import RunReport
from backwatch.domain.rules import ERROR_RATE_WINDOW_S, RULES
from backwatch.errors import StoreUnavailable
from backwatch.services import alerts
from backwatch.services.alerts import evaluation
from backwatch.services.hub import Hub
from backwatch.services.jobs import put_job
from backwatch.services.runs import record_report, start_run
from backwatch.services.status_files import SUFFIX, StatusFileWriter, status_document
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.web import tasks
from backwatch.web.app import create_app
from tests.conftest import Clock, make_settings, wait_for

H = 3600.0
DAY = 24 * H


def _report(job: str, started_at: float, status: str = "success") -> RunReport:
    return RunReport(
        job=job, status=RunStatus(status), started_at=started_at, duration_s=60, size_bytes=1000
    )


def _pause(job: str, now: float) -> Any:
    def op(conn: Any, unit: WriteUnit) -> None:
        from backwatch.services.jobs import set_paused

        set_paused(conn, unit, job, True, now, "test")

    return op


def _fleet(hub: Hub, now: float) -> None:
    """Jobs in every situation the time rules care about, as of ``now``."""
    daily = {"schedule": "24h", "grace": "1h"}
    for job, last in (("ontime", 2 * H), ("overdue", 26 * H), ("late", 24.5 * H)):
        hub.write(put_job(job, daily, now - 40 * H, actor="test"))
        hub.write(record_report(_report(job, now - last), now - last))
    hub.write(put_job("never", daily, now - 30 * H, actor="test"))  # declared, never ran
    hub.write(put_job("paused_overdue", daily, now - 40 * H, actor="test"))
    hub.write(record_report(_report("paused_overdue", now - 30 * H), now - 30 * H))
    hub.write(_pause("paused_overdue", now - 29 * H))
    hub.write(put_job("long_run", {"timeout": "1h"}, now - 40 * H, actor="test"))
    hub.write(start_run(_report("long_run", now - 2 * H, "running"), now - 2 * H))
    hub.write(start_run(_report("short_run", now - 60, "running"), now - 60))
    for i in range(5):  # unscheduled: every 6 h, the last 8 h ago (learned, past grace)
        started = now - 8 * H - (4 - i) * 6 * H
        hub.write(record_report(_report("adhoc", started), started))
    hub.write(record_report(_report("quiet", now - H), now - H))
    # "fixed": missed once (its alert opened), then it reported
    hub.write(put_job("fixed", daily, now - 40 * H, actor="test"))
    hub.write(record_report(_report("fixed", now - 30 * H), now - 30 * H))
    hub.write(alerts.evaluate_jobs(hub.settings, now - H, None, None))  # learns, opens
    hub.write(record_report(_report("fixed", now - 10 * 60), now - 10 * 60))


def _changes(found: alerts.AlertChanges) -> set[tuple[str, str, str | None]]:
    return {(job, rule, f.message if f else None) for job, rule, f in found.changes}


def test_the_time_check_reads_only_jobs_that_can_have_changed(tmp_path: Path, db_url: str):
    settings = make_settings(tmp_path / "data", db_url)
    now = 1_780_000_000.0
    with Hub(settings, clock=lambda: now) as hub:
        _fleet(hub, now)
        with hub.read_engine.connect() as conn:
            suspects = alerts.time_rule_jobs(conn, settings, now)
            assert suspects == ["adhoc", "fixed", "long_run", "never", "overdue"]
            due = alerts.find_due_changes(conn, settings, now)
            every = alerts.find_changes(conn, settings, now, None, "time")
        assert due.jobs == 5 and every.jobs == 10
        assert _changes(due) == _changes(every)  # the same verdicts as checking every job
        hub.write(alerts.apply_changes(settings, now, due))
        with hub.read_engine.connect() as conn:
            open_ = {(a["job"], a["rule"]) for a in alerts.list_alerts(conn, state="open")}
    assert open_ == {
        ("overdue", "missed"),
        ("never", "missed"),
        ("adhoc", "missed"),
        ("long_run", "stuck"),
    }  # and fixed's missed alert was resolved by the check


def test_the_time_check_agrees_with_a_round_over_every_job(tmp_path: Path, db_url: str):
    """The time check reads a job's snapshot, a round over every job its runs: they must
    say the same, or an alert's text would flip between them every few minutes (it said
    "no good run on record" of a job with good runs) and be rewritten on every tick."""
    settings = make_settings(tmp_path / "data", db_url)
    now = 1_780_000_000.0
    with Hub(settings, clock=lambda: now) as hub:
        daily = {"schedule": "24h", "grace": "1h"}
        hub.write(put_job("nightly", daily, now - 10 * DAY, actor="test"))
        _daily(hub, "nightly", now - 5 * DAY, "sssf")  # failed 2 days ago, then nothing
        for k in range(6):  # good runs of about 10 minutes, then one running for 2 hours
            started = now - (7 - k) * DAY
            report = RunReport(job="slow", status=RunStatus.SUCCESS, started_at=started,
                               duration_s=600 + 10 * k)  # fmt: skip
            hub.write(record_report(report, started))
        hub.write(start_run(_report("slow", now - 2 * H, "running"), now - 2 * H))
        hub.write(alerts.evaluate_jobs(settings, now, None, None))
        later = now + 120  # the clock moved on: nothing else did
        with hub.read_engine.connect() as conn:
            stored = {(a["job"], a["rule"]): a for a in alerts.list_alerts(conn, state="open")}
            assert set(stored) >= {("nightly", "missed"), ("slow", "stuck")}
            assert "no good run on record" not in stored["nightly", "missed"]["message"]
            assert _changes(alerts.find_due_changes(conn, settings, later)) == set()
            assert _changes(alerts.find_changes(conn, settings, later, None, None)) == set()


def _daily(hub: Hub, job: str, first: float, statuses: str) -> None:
    """Runs a day apart from ``first``: ``s`` a success, ``f`` a failure."""
    for k, code in enumerate(statuses):
        at = first + k * DAY
        hub.write(record_report(_report(job, at, "failed" if code == "f" else "success"), at))


def _run_rule_changes(found: alerts.AlertChanges) -> set[tuple[str, str, str | None]]:
    return {c for c in _changes(found) if RULES[c[1]].kind == "run"}


def test_the_clock_round_reads_only_jobs_whose_error_rate_moved(tmp_path: Path, db_url: str):
    settings = make_settings(tmp_path / "data", db_url)
    now = 1_780_000_000.0
    since = now - 600  # the previous round of the clock
    leaves = now - ERROR_RATE_WINDOW_S - 300  # a run started then left the window meanwhile
    with Hub(settings, clock=lambda: now) as hub:
        _daily(hub, "bad_leaves", leaves, "fsssssss")  # its one failure leaves: clears
        _daily(hub, "good_leaves", leaves, "sssfssss")  # 1 of 8 failed, now 1 of 7
        _daily(hub, "bad_stays", leaves + 5 * H, "sssfssss")  # nothing left the window
        _daily(hub, "clean", leaves, "ssssssss")  # a run left, none failed
        _daily(hub, "old_failure", leaves - 3 * DAY, "fsssssssssss")  # out of the window
        hub.write(alerts.evaluate_jobs(settings, since, None, None))  # judged as of then
        with hub.read_engine.connect() as conn:
            before = {(a["job"], a["rule"]) for a in alerts.list_alerts(conn, state="open")}
            assert alerts.clock_rule_jobs(conn, since, now) == ["bad_leaves", "good_leaves"]
            clock = alerts.find_clock_changes(conn, settings, since, now)
            every = alerts.find_changes(conn, settings, now, None, None)
        assert before == {
            ("bad_leaves", "error_rate"),
            ("good_leaves", "error_rate"),
            ("bad_stays", "error_rate"),
        }
        assert clock.jobs == 2 and every.jobs == 5
        # the same verdicts on the run rules as a round over every job
        assert _run_rule_changes(clock) == _run_rule_changes(every)
        assert {(job, rule) for job, rule, _ in _run_rule_changes(clock)} == {
            ("bad_leaves", "error_rate"),  # cleared
            ("good_leaves", "error_rate"),  # now "1 of 7 runs failed"
        }
        hub.write(alerts.apply_changes(settings, now, clock))
        with hub.read_engine.connect() as conn:
            after = {(a["job"], a["rule"]) for a in alerts.list_alerts(conn, state="open")}
    assert after == before - {("bad_leaves", "error_rate")}


def test_the_tick_judges_every_job_on_taking_the_lead_after_unheard_changes_and_daily(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(tmp_path / "data", db_url)
    clock = Clock()
    hub = Hub(settings, grouped=True, clock=clock)
    hub.write(record_report(_report("db", clock.t - 60, "failed"), clock.t))
    rounds: list[tuple[str, float]] = []
    every_page, clock_round = evaluation.find_changes_page, evaluation.find_clock_changes

    def recording_page(conn: Any, settings: Any, now: float, *args: Any) -> Any:
        if args[1] == "":  # a round's first page
            rounds.append(("every job", now))
        return every_page(conn, settings, now, *args)

    def recording_clock(conn: Any, settings: Any, since: float, now: float) -> Any:
        rounds.append(("clock since", since))
        return clock_round(conn, settings, since, now)

    monkeypatch.setattr(alerts, "find_changes_page", recording_page)
    monkeypatch.setattr(alerts, "find_clock_changes", recording_clock)
    app = create_app(settings, hub=hub)
    start = clock.t
    with TestClient(app) as client:
        work = app.state.alert_tasks

        def tick(advance: float = 0.0) -> list[tuple[str, float]]:
            clock.advance(advance)
            rounds.clear()
            client.portal.call(work.tick)
            return list(rounds)

        tick()  # the server's first round, if it has not had it yet: the clock stands still
        assert rounds == [] or rounds == [("every job", start)]
        assert tick(30) == []  # the time rules alone
        assert tick(tasks.CLOCK_EVERY_S) == [("clock since", start)]
        assert tick(30) == []
        work.changes_unheard()  # the change feed heard other instances again after a gap
        assert tick() == [("every job", clock.t)]
        full_at = clock.t
        assert tick(tasks.CLOCK_EVERY_S) == [("clock since", full_at)]
        assert tick(tasks.FULL_EVERY_S) == [("every job", clock.t)]
        opened = client.get("/api/v1/alerts", params={"state": "open"}).json()["items"]
    hub.close()
    assert [(a["job"], a["rule"]) for a in opened] == [("db", "failed")]


def test_a_report_whose_evaluation_could_not_be_written_is_judged_on_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(tmp_path / "data")
    clock = Clock()  # stands still: no round of the clock, no round over every job
    hub = Hub(settings, grouped=True, clock=clock)
    app = create_app(settings, hub=hub)
    real, failures = evaluation.find_changes, []

    def failing_once(*args: Any) -> Any:
        if not failures:
            failures.append(args[3])
            raise StoreUnavailable("database or disk is full")
        return real(*args)

    with TestClient(app) as client:
        client.portal.call(app.state.alert_tasks.tick)  # the first round, over every job
        monkeypatch.setattr(alerts, "find_changes", failing_once)
        hub.write(record_report(_report("db", clock.t - 60, "failed"), clock.t))

        def opened() -> list[str]:
            client.portal.call(app.state.alert_tasks.tick)
            found = client.get("/api/v1/alerts", params={"state": "open"}).json()["items"]
            return [a["rule"] for a in found if a["job"] == "db"]

        assert wait_for("the failure's alert", opened) == ["failed"]
    hub.close()
    assert failures == [["db"]]  # its first evaluation failed


def test_a_round_over_every_job_goes_page_by_page(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    settings = make_settings(tmp_path / "data", db_url)
    clock = Clock()
    hub = Hub(settings, grouped=True, clock=clock)
    for i in range(10):
        hub.write(record_report(_report(f"job-{i:02d}", clock.t - 60, "failed"), clock.t))
    pages: list[tuple[str, int]] = []
    real = evaluation.find_changes_page

    def recording(conn: Any, settings: Any, now: float, kind: Any, after: str, limit: int) -> Any:
        found, next_after = real(conn, settings, now, kind, after, limit)
        pages.append((after, found.jobs))
        return found, next_after

    monkeypatch.setattr(alerts, "find_changes_page", recording)
    monkeypatch.setattr(alerts, "PAGE", 3)
    app = create_app(settings, hub=hub)
    with TestClient(app) as client:
        # the server's first round is over every job (its own, or this one if it has not
        # started yet: rounds take turns, and the clock stands still, so there is one)
        client.portal.call(app.state.alert_tasks.tick)
        opened = client.get("/api/v1/alerts", params={"state": "open"}).json()["items"]
    hub.close()
    assert pages == [("", 3), ("job-02", 3), ("job-05", 3), ("job-08", 1)]
    assert sorted(a["job"] for a in opened if a["rule"] == "failed") == [
        f"job-{i:02d}" for i in range(10)
    ]


def test_status_files_of_many_jobs_are_written_in_pages_and_a_restart_writes_none(
    tmp_path: Path,
):
    settings = make_settings(tmp_path / "data")
    now = 1_780_000_000.0
    with Hub(settings, clock=lambda: now) as hub:
        for i in range(23):
            status = "failed" if i % 4 == 0 else "success"
            hub.write(record_report(_report(f"svc-{i:02d}", now - i * 60, status), now))
        hub.write(put_job("declared", {"schedule": "24h"}, now, actor="test"))  # no run: no file

        def sweep() -> StatusFileWriter:
            writer = StatusFileWriter(hub, settle_s=0.0)
            writer.page_size = 5
            writer.start()
            assert writer.swept.wait(30)
            writer.stop()
            return writer

        assert sweep().files_written == 23
        directory = settings.data_dir / "status"
        assert sorted(p.name for p in directory.iterdir()) == [
            f"svc-{i:02d}{SUFFIX}" for i in range(23)
        ]
        with hub.read_engine.connect() as conn:
            for job in conn.execute(select(t.jobs).where(t.jobs.c.id != "declared")).mappings():
                run = conn.execute(select(t.runs).where(t.runs.c.id == job["last_run_id"]))
                expected = status_document(dict(job), dict(run.mappings().one()))
                assert json.loads((directory / f"{job['id']}{SUFFIX}").read_text()) == expected

        assert sweep().files_written == 0  # a restart: every file is already right
        (directory / f"svc-07{SUFFIX}").write_text("{}")  # changed behind its back
        (directory / f"svc-11{SUFFIX}").unlink()
        assert sweep().files_written == 2
        assert json.loads((directory / f"svc-07{SUFFIX}").read_text())["service"] == "svc-07"
        assert (directory / f"svc-11{SUFFIX}").exists()


def test_due_times_written_around_the_services_are_refreshed_page_by_page(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    from sqlalchemy import update

    from backwatch.services import due

    settings = make_settings(tmp_path / "data", db_url)
    now = 1_780_000_000.0
    with Hub(settings, clock=lambda: now) as hub:
        for i in range(7):
            hub.write(put_job(f"sched-{i}", {"schedule": "24h"}, now - i * H, actor="test"))
        with hub.write_engine.begin() as conn:  # an upgrade, or a write around the services
            conn.execute(update(t.jobs).values(due_at=None, due_from=None, due_key=None))
        monkeypatch.setattr(due, "_IN_CHUNK", 3)
        assert hub.write(due.refresh_stale_due) == 7
        assert hub.write(due.refresh_stale_due) == 0  # nothing stale is left
        with hub.read_engine.connect() as conn:
            rows = conn.execute(select(t.jobs.c.id, t.jobs.c.due_at)).all()
    assert {job: at for job, at in rows} == {f"sched-{i}": now - i * H + 24 * H for i in range(7)}
