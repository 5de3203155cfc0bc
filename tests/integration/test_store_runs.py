"""Recording runs through the services, on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import PhaseReport, RunReport
from backwatch.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from backwatch.ingest import parse_record
from backwatch.services import runs as run_service
from backwatch.services.hub import Hub
from backwatch.store import queries
from backwatch.store import tables as t
from tests.conftest import Clock

# seed 001's sample line; its timestamp (the run's start) is 2026-01-07T10:00:00Z
SEED_LINE = (
    '{"timestamp": "2026-01-07T02:00:00-08:00", "backup_id": "2026-01-07_020000", '
    '"success": true, "duration_total": 1265, "duration_snapshot": 5, '
    '"duration_archive": 318, "duration_volumes": 485, "duration_upload": 457, '
    '"size_bytes": 2912345678}'
)
SEED_START = 1767780000.0
DAY = 86400.0
NOW = Clock().t  # a fixed "now" well away from midnight rollover issues
TODAY = NOW - NOW % DAY + 12 * 3600  # noon UTC of the test's day


def report(job: str = "nightly", **kw) -> RunReport:
    values = {"job": job, "status": RunStatus.SUCCESS, "started_at": TODAY}
    values.update(kw)
    return RunReport(**values)


def record(hub: Hub, rep: RunReport, now: float = NOW) -> run_service.Recorded:
    return hub.write(run_service.record_report(rep, now))


def read(hub: Hub, fn, *args, **kw):
    with hub.read_engine.connect() as conn:
        return fn(conn, *args, **kw)


def count(hub: Hub, table=t.runs) -> int:
    from sqlalchemy import func, select

    with hub.read_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def job(hub: Hub, job_id: str = "nightly") -> dict:
    return read(hub, queries.get_job, job_id)


class TestRecordReport:
    def test_a_report_creates_its_job_with_an_event(self, hub):
        rec = record(hub, report(host="nas", tool="restic", duration_s=60, finished_at=TODAY + 60))
        assert rec.created
        row = job(hub)
        assert (row["origin"], row["host"], row["tool"]) == ("auto", "nas", "restic")
        assert row["runs_total"] == 1
        assert row["last_run_id"] == rec.run["id"]
        assert row["last_status"] == "success"
        assert row["last_success_at"] == TODAY + 60
        record(hub, report(started_at=TODAY + 60))  # the job exists now: no second event
        events = read(hub, queries.list_events, kind="config")
        assert [(e["entity"], e["entity_id"], e["to_state"]) for e in events] == [
            ("job", "nightly", "created")
        ]

    def test_the_same_id_twice_stores_one_run(self, hub):
        first = record(hub, report(id="r-1", size_bytes=10))
        again = record(hub, report(id="r-1", size_bytes=99), now=NOW + 5)
        assert first.created and not again.created
        assert again.run["id"] == "r-1"
        assert again.run["size_bytes"] == 10  # the stored run, unchanged
        assert count(hub) == 1
        assert job(hub)["runs_total"] == 1

    def test_the_same_job_and_backup_id_twice_stores_one_run(self, hub):
        first = record(hub, report(backup_id="2026-01-07_020000"))
        again = record(hub, report(backup_id="2026-01-07_020000"))
        assert not again.created
        assert again.run["id"] == first.run["id"]
        assert count(hub) == 1
        # the same backup_id in another job is another run
        assert record(hub, report("other", backup_id="2026-01-07_020000")).created
        assert count(hub) == 2

    def test_resending_does_not_count_twice_in_the_summary(self, hub):
        for _ in range(3):
            record(hub, report(id="r-1", duration_s=10))
        assert read(hub, queries.summary, days=1, now=NOW)["total"] == 1

    def test_an_id_of_another_job_is_refused(self, hub):
        record(hub, report(id="r-1"))
        with pytest.raises(Conflict, match="already belongs to job 'nightly'"):
            record(hub, report("weekly", id="r-1"))
        assert count(hub) == 1
        with pytest.raises(NotFound):
            job(hub, "weekly")  # not auto-created by the refused report

    def test_phases_are_laid_out_from_the_start(self, hub):
        rep = report(
            duration_s=30,
            phases=[PhaseReport("snapshot", 5), PhaseReport("upload", 25, status="warning")],
        )
        run = read(hub, queries.get_run, record(hub, rep).run["id"])
        assert [
            (p["name"], p["started_at"], p["finished_at"], p["status"]) for p in run["phases"]
        ] == [
            ("snapshot", TODAY, TODAY + 5, "success"),
            ("upload", TODAY + 5, TODAY + 30, "warning"),
        ]

    def test_the_seed001_sample_line(self, hub):
        rep = parse_record(json.loads(SEED_LINE))
        rec = record(hub, rep)
        assert not record(hub, parse_record(json.loads(SEED_LINE))).created
        run = read(hub, queries.get_run, rec.run["id"])
        assert run["started_at"] == SEED_START
        assert run["duration_s"] == 1265
        assert run["backup_id"] == "2026-01-07_020000"
        assert [p["name"] for p in run["phases"]] == ["snapshot", "archive", "volumes", "upload"]
        assert count(hub) == 1


class TestLifecycle:
    def start(self, hub, **kw) -> str:
        rep = report(status=RunStatus.RUNNING, started_at=NOW, host="nas", **kw)
        return hub.write(run_service.start_run(rep, NOW)).run["id"]

    def test_start_phases_files_finish(self, hub):
        run_id = self.start(hub)
        assert job(hub)["last_status"] == "running"
        hub.write(run_service.record_phase(run_id, "dump", "start", NOW + 1))
        hub.write(run_service.record_phase(run_id, "dump", "end", NOW + 11))
        hub.write(run_service.record_phase(run_id, "upload", "record", NOW + 20, duration_s=5))
        hub.write(run_service.update_status(run_id, NOW + 21, message="uploading"))
        hub.write(
            run_service.record_files(
                run_id, [{"path": "/a", "size": 10}, {"path": "/b", "size": 5}], NOW + 22
            )
        )
        done = hub.write(
            run_service.finish_run(
                run_id, RunStatus.SUCCESS, NOW + 30, fields={"exit_code": 0}, log="all good"
            )
        )
        assert done["status"] == "success"
        run = read(hub, queries.get_run, run_id)
        assert run["status"] == "success"
        assert run["finished_at"] == NOW + 30
        assert run["duration_s"] == 30
        assert run["message"] == "uploading"
        assert (run["files"], run["size_bytes"]) == (2, 15)
        assert [f["path"] for f in run["file_records"]] == ["/a", "/b"]
        assert [(p["name"], p["duration_s"]) for p in run["phases"]] == [
            ("dump", 10),
            ("upload", 5),
        ]
        assert [(e["from_state"], e["to_state"]) for e in run["events"]] == [
            (None, "running"),
            ("running", "success"),
        ]
        assert run["log"] == "all good"
        row = job(hub)
        assert (row["last_status"], row["last_finished_at"]) == ("success", NOW + 30)
        assert read(hub, queries.summary, days=1, now=NOW)["total"] == 1

    def test_finishing_twice_is_refused_and_changes_nothing(self, hub):
        run_id = self.start(hub)
        hub.write(run_service.finish_run(run_id, RunStatus.SUCCESS, NOW + 10, fields={}))
        before = read(hub, queries.get_run, run_id)
        with pytest.raises(IllegalTransition, match="already finished as success"):
            hub.write(
                run_service.finish_run(
                    run_id, RunStatus.FAILED, NOW + 20, fields={"message": "late"}, log="x"
                )
            )
        assert read(hub, queries.get_run, run_id) == before
        assert read(hub, queries.summary, days=1, now=NOW)["total"] == 1

    def test_finish_before_start_is_refused(self, hub):
        run_id = self.start(hub)
        with pytest.raises(InvalidInput, match="finished_at"):
            hub.write(
                run_service.finish_run(
                    run_id, RunStatus.SUCCESS, NOW + 5, fields={"finished_at": NOW - 5}
                )
            )
        assert read(hub, queries.get_run, run_id)["status"] == "running"

    @pytest.mark.parametrize(
        "op",
        [
            lambda: run_service.record_phase("nope", "dump", "start", NOW),
            lambda: run_service.record_files("nope", [{"path": "/a"}], NOW),
            lambda: run_service.finish_run("nope", RunStatus.SUCCESS, NOW, fields={}),
            lambda: run_service.update_status("nope", NOW, message="hi"),
        ],
        ids=["phase", "files", "finish", "status"],
    )
    def test_unknown_run(self, hub, op):
        with pytest.raises(NotFound, match="run 'nope' not found"):
            hub.write(op())
        assert count(hub) == 0

    def test_no_phases_or_files_after_the_finish(self, hub):
        run_id = self.start(hub)
        hub.write(run_service.finish_run(run_id, RunStatus.FAILED, NOW + 1, fields={}))
        with pytest.raises(Conflict, match="already finished"):
            hub.write(run_service.record_phase(run_id, "late", "start", NOW + 2))
        with pytest.raises(Conflict, match="already finished"):
            hub.write(run_service.record_files(run_id, [{"path": "/x"}], NOW + 2))
        assert read(hub, queries.get_run, run_id)["phases"] == []

    def test_ending_a_phase_that_never_started(self, hub):
        run_id = self.start(hub)
        with pytest.raises(Conflict, match="was not started"):
            hub.write(run_service.record_phase(run_id, "dump", "end", NOW + 2))

    def test_queued_then_running_then_cancelled(self, hub):
        rep = report(status=RunStatus.QUEUED, started_at=NOW)
        run_id = hub.write(run_service.start_run(rep, NOW)).run["id"]
        hub.write(run_service.update_status(run_id, NOW + 1, status=RunStatus.RUNNING))
        with pytest.raises(IllegalTransition):
            hub.write(run_service.update_status(run_id, NOW + 2, status=RunStatus.QUEUED))
        hub.write(run_service.update_status(run_id, NOW + 3, status=RunStatus.CANCELLED))
        run = read(hub, queries.get_run, run_id)
        assert [e["to_state"] for e in run["events"]] == ["queued", "running", "cancelled"]

    def test_open_phases_are_closed_by_the_finish(self, hub):
        run_id = self.start(hub)
        hub.write(run_service.record_phase(run_id, "upload", "start", NOW + 1))
        hub.write(run_service.finish_run(run_id, RunStatus.FAILED, NOW + 9, fields={}))
        (phase,) = read(hub, queries.get_run, run_id)["phases"]
        assert (phase["finished_at"], phase["status"]) == (NOW + 9, "failed")
        assert phase["duration_s"] == 8

    def test_file_records_are_capped_but_counted(self, hub):
        run_id = self.start(hub)
        files = [{"path": f"/f{i}", "size": 1} for i in range(run_service.FILE_RECORDS_PER_RUN + 5)]
        hub.write(run_service.record_files(run_id, files, NOW + 1))
        run = read(hub, queries.get_run, run_id)
        assert run["files"] == len(files)
        assert run["size_bytes"] == len(files)
        assert count(hub, t.run_files) == run_service.FILE_RECORDS_PER_RUN


class TestJobSnapshot:
    def test_out_of_order_reports(self, hub):
        newest = record(hub, report(status=RunStatus.FAILED, started_at=TODAY, duration_s=5))
        record(hub, report(started_at=TODAY - DAY, duration_s=7))
        record(hub, report(started_at=TODAY - 2 * DAY, duration_s=9))
        row = job(hub)
        assert row["runs_total"] == 3
        assert row["last_run_id"] == newest.run["id"]
        assert row["last_status"] == "failed"
        assert row["last_success_at"] == TODAY - DAY + 7

    def test_one_transaction_with_an_old_success_and_a_new_failure(self, hub):
        older = report(started_at=TODAY - DAY, duration_s=7)
        newer = report(status=RunStatus.FAILED, started_at=TODAY, duration_s=5)

        def both(conn, unit):
            run_service.record_report(older, NOW)(conn, unit)
            run_service.record_report(newer, NOW)(conn, unit)

        hub.write(both)
        row = job(hub)
        assert row["last_status"] == "failed"
        assert row["runs_total"] == 2
        assert row["last_success_at"] == TODAY - DAY + 7

    def test_median_duration_of_successes(self, hub):
        # kept by the alert evaluation (off the ingest path), which serve runs after reports
        from backwatch.services import alerts

        for i, d in enumerate([10, 30, 20, 1000]):
            status = RunStatus.FAILED if d == 1000 else RunStatus.SUCCESS
            record(hub, report(started_at=TODAY - i * 3600, duration_s=d, status=status))
        hub.write(alerts.evaluate_jobs(hub.settings, TODAY, None, "run"))
        assert job(hub)["median_duration_s"] == 20


class TestSummary:
    def test_rollups_and_summary(self, hub):
        yesterday = TODAY - DAY
        record(hub, report(duration_s=10, size_bytes=100))
        record(hub, report(duration_s=20, size_bytes=300))
        record(hub, report(status=RunStatus.FAILED, duration_s=30, size_bytes=5))
        record(hub, report("weekly", status=RunStatus.WARNING, started_at=yesterday, duration_s=40))
        month = read(hub, queries.summary, days=30, now=NOW)
        assert month["total"] == 4
        assert (month["success"], month["warning"], month["failed"]) == (2, 1, 1)
        assert month["success_rate"] == 0.75
        assert month["avg_duration_s"] == 25
        assert month["avg_size_bytes"] == 200  # failed runs' sizes do not count
        assert month["jobs"]["nightly"]["total"] == 3
        assert month["jobs"]["nightly"]["success_rate"] == round(2 / 3, 4)
        assert month["jobs"]["weekly"]["avg_duration_s"] == 40
        today = read(hub, queries.summary, days=1, now=NOW)
        assert today["total"] == 3
        assert set(today["jobs"]) == {"nightly"}
        only = read(hub, queries.summary, days=30, now=NOW, job="weekly")
        assert (only["total"], set(only["jobs"])) == (1, {"weekly"})

    def test_an_empty_summary(self, hub):
        data = read(hub, queries.summary, days=30, now=NOW)
        assert data["total"] == 0
        assert data["success_rate"] is None
        assert data["avg_duration_s"] is None
        assert data["jobs"] == {}

    def test_running_runs_count_when_they_finish(self, hub):
        rep = report(status=RunStatus.RUNNING, started_at=TODAY)
        run_id = hub.write(run_service.start_run(rep, NOW)).run["id"]
        assert read(hub, queries.summary, days=1, now=NOW)["total"] == 0
        hub.write(run_service.finish_run(run_id, RunStatus.SUCCESS, TODAY + 50, fields={}))
        data = read(hub, queries.summary, days=1, now=NOW)
        assert (data["total"], data["avg_duration_s"]) == (1, 50)


class TestListRuns:
    @pytest.fixture
    def runs(self, hub) -> list[str]:
        """25 runs over two jobs; several share a start time (ties must not be lost)."""
        reports = [
            report(
                "nightly" if i % 3 else "weekly",
                id=f"run-{i:02d}",
                started_at=TODAY - (i // 4) * 3600,
                status=RunStatus.FAILED if i % 5 == 0 else RunStatus.SUCCESS,
            )
            for i in range(25)
        ]

        def all_at_once(conn, unit):  # one transaction: one fsync, a fast fixture
            return [run_service.record_report(r, NOW)(conn, unit).run["id"] for r in reports]

        return hub.write(all_at_once)

    def pages(self, hub, limit: int, **filters) -> list[list[str]]:
        out, cursor = [], None
        while True:
            rows, cursor = read(hub, queries.list_runs, limit=limit, cursor=cursor, **filters)
            out.append([r["id"] for r in rows])
            if cursor is None:
                return out

    def test_pages_have_no_duplicates_and_no_gaps(self, hub, runs):
        pages = self.pages(hub, 7)
        assert [len(p) for p in pages] == [7, 7, 7, 4]
        flat = [i for p in pages for i in p]
        assert sorted(flat) == sorted(runs)
        starts = {r: TODAY - (int(r[4:]) // 4) * 3600 for r in runs}
        assert flat == sorted(flat, key=lambda r: (starts[r], r), reverse=True)

    @pytest.mark.parametrize("limit", [1, 4, 25, 100])
    def test_any_page_size(self, hub, runs, limit):
        flat = [i for p in self.pages(hub, limit) for i in p]
        assert len(flat) == len(set(flat)) == 25

    def test_filters(self, hub, runs):
        weekly = [i for p in self.pages(hub, 3, job="weekly") for i in p]
        assert sorted(weekly) == [f"run-{i:02d}" for i in range(0, 25, 3)]
        failed = [i for p in self.pages(hub, 2, status="failed") for i in p]
        assert sorted(failed) == [f"run-{i:02d}" for i in range(0, 25, 5)]
        recent = [i for p in self.pages(hub, 5, since=TODAY - 3600) for i in p]
        assert sorted(recent) == [f"run-{i:02d}" for i in range(8)]
        older = [i for p in self.pages(hub, 5, until=TODAY - 3600) for i in p]
        assert sorted(older) == [f"run-{i:02d}" for i in range(8, 25)]

    def test_a_bad_cursor(self, hub, runs):
        with pytest.raises(InvalidInput, match="cursor"):
            read(hub, queries.list_runs, cursor="not-a-cursor!")


class TestEvents:
    def test_the_audit_trail(self, hub):
        rep = report(status=RunStatus.RUNNING, started_at=NOW)
        run_id = hub.write(run_service.start_run(rep, NOW, actor="host1")).run["id"]
        hub.write(
            run_service.finish_run(run_id, RunStatus.FAILED, NOW + 5, fields={}, actor="host1")
        )
        changes = read(hub, queries.list_events, kind="state_change")
        assert [(e["entity_id"], e["from_state"], e["to_state"], e["actor"]) for e in changes] == [
            (run_id, "running", "failed", "host1"),
            (run_id, None, "running", "host1"),
        ]
        assert all(e["job"] == "nightly" for e in changes)
        assert read(hub, queries.list_events, since=NOW + 1)[0]["to_state"] == "failed"
        assert read(hub, queries.list_events, job="other") == []


class TestGroupCommit:
    def test_concurrent_writes_land_once_each(self, settings):
        async def main(h: Hub):
            reps = [report(id=f"r{i}", started_at=TODAY - i) for i in range(20)]
            reps.append(report("weekly", id="r1"))  # refused: r1 belongs to nightly
            results = await asyncio.gather(
                *(h.submit(run_service.record_report(r, NOW)) for r in reps),
                return_exceptions=True,
            )
            return results

        with Hub(settings, grouped=True) as h:
            results = asyncio.run(main(h))
            assert isinstance(results[-1], Conflict)
            assert all(r.created for r in results[:-1])
            assert count(h) == 20
            assert job(h)["runs_total"] == 20
            assert read(h, queries.summary, days=1, now=NOW)["total"] == 20
