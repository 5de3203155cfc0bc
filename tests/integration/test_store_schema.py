"""The store itself: migrations, unusable databases, tokens, retention (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
from sqlalchemy import func, select, text

from backwatch.domain.lifecycle import RunStatus
from backwatch.domain.report import PhaseReport, RunReport
from backwatch.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from backwatch.services import retention, tokens
from backwatch.services import runs as run_service
from backwatch.services.hub import Hub
from backwatch.services.jobs import new_job_row
from backwatch.store import queries
from backwatch.store import tables as t
from backwatch.store.connect import make_engine
from backwatch.store.migrate import current_revision, head_revision, migrate
from tests.conftest import Clock, make_settings

DAY = 86400.0
NOW = Clock().t


def rows(hub: Hub, table, *where) -> list[dict]:
    with hub.read_engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


class TestMigrations:
    def test_migrating_twice_changes_nothing(self, hub):
        head = head_revision()
        assert current_revision(hub.write_engine) == head
        assert migrate(hub.write_engine) == head
        assert migrate(hub.write_engine) == head
        assert current_revision(hub.write_engine) == head

    def test_a_schema_from_a_newer_backwatch_is_refused_by_name(self, hub):
        head = head_revision()
        with hub.write_engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(StoreUnavailable) as caught:
            migrate(hub.write_engine)
        assert "schema is at revision 9999, newer than this backwatch knows" in str(
            caught.value.message
        )
        assert current_revision(hub.write_engine) == "9999"  # nothing was touched
        with hub.write_engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})

    def test_the_migrations_build_exactly_the_declared_schema(self, hub):
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        with hub.write_engine.connect() as conn, warnings.catch_warnings():
            # SQLite's expression indexes cannot be reflected: checked by hand below
            warnings.filterwarnings("ignore", "(Skipped|autogenerate skipping).*expression-based")
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, t.metadata) == []
            if conn.dialect.name == "sqlite":
                found = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'ix_jobs_learned_due'")
                ).scalar()
                assert found and "last_started_at + learned_interval_s" in found

    def test_data_survives_a_restart(self, settings):
        with Hub(settings) as first:
            report = RunReport(job="a", status=RunStatus.SUCCESS, started_at=NOW, id="r1")
            first.write(run_service.record_report(report, NOW))
        with Hub(settings) as second, second.read_engine.connect() as conn:
            assert queries.get_run(conn, "r1")["job"] == "a"

    def test_a_foreign_database_is_not_taken_over(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'other.db'}"
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE runs (x INTEGER)"))
        engine.dispose()
        with pytest.raises(StoreUnavailable, match="no backwatch schema version"):
            Hub(make_settings(tmp_path / "data", url))


class TestUnusableDatabase:
    def test_a_file_that_is_not_sqlite(self, tmp_path):
        path = tmp_path / "backwatch.db"
        path.write_text("these are my holiday photos, not a database\n" * 10)
        with pytest.raises(StoreUnavailable) as err:
            Hub(make_settings(tmp_path / "data", f"sqlite:///{path}"))
        assert str(path) in err.value.message
        assert "not a SQLite database" in err.value.message
        assert err.value.status == 503
        assert path.read_text().startswith("these are my holiday photos")  # left alone

    def test_a_directory_where_the_file_should_be(self, tmp_path):
        path = tmp_path / "backwatch.db"
        path.mkdir()
        with pytest.raises(StoreUnavailable, match="is a directory"):
            Hub(make_settings(tmp_path / "data", f"sqlite:///{path}"))

    def test_a_data_directory_that_cannot_be_created(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(StoreUnavailable, match="cannot create database directory"):
            Hub(make_settings(tmp_path / "data", f"sqlite:///{blocker / 'sub' / 'bw.db'}"))

    def test_an_unreachable_postgresql(self, tmp_path):
        url = "postgresql+psycopg://backwatch:secret-pw@127.0.0.1:1/backwatch"
        with pytest.raises(StoreUnavailable) as err:
            Hub(make_settings(tmp_path / "data", url))
        message = err.value.message
        assert "127.0.0.1:1" in message
        assert "secret-pw" not in message  # the password is never shown
        assert err.value.status == 503

    def test_not_a_database_url(self, tmp_path):
        with pytest.raises(StoreUnavailable, match="not a database URL"):
            Hub(make_settings(tmp_path / "data", "backups please"))

    def test_an_unsupported_database(self, tmp_path):
        with pytest.raises(StoreUnavailable, match="unsupported database URL"):
            Hub(make_settings(tmp_path / "data", "nosuchdb://x/y"))


class TestTokens:
    def test_tokens_are_stored_hashed(self, hub):
        secret, _row = hub.write(tokens.create_token("host1", "ingest", NOW))
        assert secret.startswith("bw_")
        (stored,) = rows(hub, t.tokens)
        assert secret not in stored.values()
        assert stored["hash"] == tokens.hash_token(secret)
        assert stored["prefix"] == secret[:7]
        assert tokens.lookup(hub.read_engine, secret) == tokens.Grant("host1", "ingest")
        assert tokens.lookup(hub.read_engine, secret + "x") is None
        listed = tokens.list_tokens(hub.read_engine)
        assert [(x["name"], x["scope"]) for x in listed] == [("host1", "ingest")]
        assert "hash" not in listed[0]

    def test_revoke(self, hub):
        secret, _ = hub.write(tokens.create_token("host1", "admin", NOW))
        hub.write(tokens.revoke_token("host1", NOW + 1))
        assert tokens.lookup(hub.read_engine, secret) is None
        assert tokens.active_token_count(hub.read_engine) == 0
        with pytest.raises(NotFound, match="no active token named 'host1'"):
            hub.write(tokens.revoke_token("host1", NOW + 2))
        # the name is free again, with a new secret
        again, _ = hub.write(tokens.create_token("host1", "read", NOW + 3))
        assert again != secret
        assert tokens.lookup(hub.read_engine, again) == tokens.Grant("host1", "read")
        kinds = [e["to_state"] for e in rows(hub, t.events, t.events.c.kind == "auth")]
        assert kinds == ["created", "revoked", "created"]

    def test_names_and_scopes(self, hub):
        hub.write(tokens.create_token("host1", "ingest", NOW))
        with pytest.raises(Conflict, match="already exists"):
            hub.write(tokens.create_token("host1", "read", NOW))
        with pytest.raises(InvalidInput, match="scope"):
            tokens.create_token("host2", "root", NOW)
        with pytest.raises(InvalidInput, match="name"):
            tokens.create_token("", "read", NOW)
        assert tokens.active_token_count(hub.read_engine) == 1

    @pytest.mark.parametrize(
        ("scope", "allowed"),
        [
            ("read", {"read"}),
            ("ingest", {"read", "ingest"}),
            ("operate", {"read", "operate"}),  # operating is not reporting runs
            ("admin", {"read", "ingest", "operate", "admin"}),
        ],
    )
    def test_scopes(self, scope, allowed):
        assert {need for need in tokens.SCOPES if tokens.allows(scope, need)} == allowed


class TestRetention:
    def seed(self, hub: Hub) -> None:
        def old_run(run_id: str, started: float, written: float) -> None:
            rep = RunReport(
                id=run_id,
                job="nightly",
                status=RunStatus.RUNNING,
                started_at=started,
            )
            hub.write(run_service.start_run(rep, written))
            hub.write(run_service.record_files(run_id, [{"path": "/etc/x", "size": 3}], written))
            hub.write(
                run_service.finish_run(
                    run_id,
                    RunStatus.SUCCESS,
                    written,
                    fields={"duration_s": 60.0, "size_bytes": 100},
                    phases=[PhaseReport("dump", 60)],
                    log="old log",
                )
            )

        old = NOW - 100 * DAY
        old_run("nightly", old, old)  # same id as its job: the job's own events must stay
        old_run("imported-today", old - 3600, NOW - 3600)  # old, but written just now
        old_run("recent", NOW - DAY, NOW - DAY)
        old_run("ancient", NOW - 800 * DAY, NOW - 800 * DAY)

    def test_old_runs_go_with_their_details(self, hub):
        self.seed(hub)
        removed = retention.prune(hub.write, NOW, 90)
        assert removed == 2
        with hub.read_engine.connect() as conn:
            for gone in ("nightly", "ancient"):
                with pytest.raises(NotFound):
                    queries.get_run(conn, gone)
            for kept in ("imported-today", "recent"):
                assert queries.get_run(conn, kept)["phases"]
        for table, column in (
            (t.phases, t.phases.c.run_id),
            (t.run_files, t.run_files.c.run_id),
            (t.run_logs, t.run_logs.c.run_id),
        ):
            assert {r["run_id"] for r in rows(hub, table)} == {"imported-today", "recent"}
            assert not rows(hub, table, column == "nightly")
        run_events = rows(hub, t.events, t.events.c.entity == "run")
        assert {e["entity_id"] for e in run_events} == {"imported-today", "recent"}
        job_events = rows(hub, t.events, t.events.c.entity == "job")
        assert [e["to_state"] for e in job_events] == ["created"]
        (note,) = rows(hub, t.events, t.events.c.entity == "system")
        assert note["detail"] == {"runs_removed": 2, "retention_days": 90}

    def test_rollups_outlive_the_runs(self, hub):
        self.seed(hub)
        before = rows(hub, t.daily_rollups)
        retention.prune(hub.write, NOW, 90)
        after = rows(hub, t.daily_rollups)
        ancient_day = int((NOW - 800 * DAY) // DAY)
        assert [r for r in before if r["day"] != ancient_day] == after
        # the fleet's totals (a row a day) go with them
        assert sorted(r["day"] for r in rows(hub, t.daily_totals)) == sorted(
            r["day"] for r in after
        )
        with hub.read_engine.connect() as conn:
            year = queries.summary(conn, days=365, now=NOW)
            ever = queries.summary(conn, days=1000, now=NOW)
        assert year["total"] == 3  # the pruned 100-day-old run still counts
        assert ever["total"] == 3  # and the 800-day-old one is gone from every sum

    @staticmethod
    def seed_old_fleet(hub: Hub, runs: int) -> None:
        """``runs`` runs of job "fleet", started and written 400 days ago."""
        old = NOW - 400 * DAY
        with hub.write_engine.begin() as conn:
            conn.execute(t.jobs.insert().values(**new_job_row("fleet", old, "api")))
            conn.execute(
                t.runs.insert(),
                [
                    {"id": f"old-{i}", "job": "fleet", "status": "success", "source": "api",
                     "trigger": "api", "started_at": old + i, "updated_at": old + i}
                    for i in range(runs)
                ],
            )  # fmt: skip

    def test_a_large_prune_lets_reports_in_between_its_chunks(self, hub):
        """Issue 18: millions of old runs must not hold the one writer for the whole prune.
        Each chunk is its own transaction, and a report made meanwhile is stored then."""
        self.seed_old_fleet(hub, 2_500)
        transactions: list[int] = []
        stored_between: list[int] = []

        def write(op):
            result = hub.write(op)
            transactions.append(result)
            if len(transactions) == 2:  # a report arrives while the prune is under way
                rep = RunReport(id="new", job="fleet", status=RunStatus.SUCCESS, started_at=NOW)
                hub.write(run_service.record_report(rep, NOW))
                stored_between.append(len(transactions))
            return result

        assert retention.prune(write, NOW, 90, chunk=1000) == 2_500
        assert transactions == [1000, 1000, 500, 2_500]  # the chunks, then the note
        assert stored_between == [2]
        with hub.read_engine.connect() as conn:
            assert queries.get_run(conn, "new")["status"] == "success"

    class Pauses(threading.Event):
        """The prune's stop event, recording its pauses instead of waiting them out; set
        during the pause numbered ``stop_at``, if given."""

        def __init__(self, log: list, stop_at: int = 0) -> None:
            super().__init__()
            self.log, self.stop_at = log, stop_at

        def wait(self, timeout: float | None = None) -> bool:
            self.log.append(("pause", timeout))
            if sum(kind == "pause" for kind, _ in self.log) == self.stop_at:
                self.set()
            return self.is_set()

    def test_a_prune_sizes_its_chunks_by_time_and_leaves_the_writer_free_after_each(self, hub):
        """Issue 18: a chunk that held the writer 0.3 s made every report wait that long.
        Chunks grow while fast, up to a bound, shrink at once when slow, and each is
        followed by a pause at least as long as it took (the clock is the test's)."""
        self.seed_old_fleet(hub, 7_000)
        clock, log = Clock(0.0), []

        def write(op):
            n = hub.write(op)
            done = [n for kind, (n, _) in ((k, v) for k, v in log if k == "chunk")]
            slow = retention.MAX_CHUNK in done  # the database turns slow after a big chunk
            took = n * (1e-3 if slow else 1e-5)
            clock.advance(took)
            log.append(("chunk", (n, took)))
            return n

        assert retention.prune(write, NOW, 90, stop=self.Pauses(log), clock=clock) == 7_000
        *chunks, note = [n for kind, (n, _) in ((k, v) for k, v in log if k == "chunk")]
        assert note == 7_000  # the note's write answers the runs removed
        assert all(retention.MIN_CHUNK <= n <= retention.MAX_CHUNK for n in chunks[:-1])
        big = chunks.index(retention.MAX_CHUNK)  # grown step by step while fast, up to the bound
        assert chunks[: big + 1] == sorted(chunks[: big + 1]) and big > 1
        assert chunks[big + 2] == retention.MIN_CHUNK  # back to the least after a slow one
        # never two chunks back to back: each full one is followed by its pause
        kinds = [kind for kind, _ in log]
        assert kinds == ["chunk", "pause"] * (len(chunks) - 1) + ["chunk", "chunk"]
        for (_, (_, took)), (_, pause) in zip(log[:-2:2], log[1:-2:2], strict=True):
            assert pause >= took - 1e-9  # (the clock is a float: rounding)

    def test_a_prune_stops_between_chunks_when_the_server_stops(self, hub):
        self.seed_old_fleet(hub, 300)
        stopping = threading.Event()

        def write(op):
            stopping.set()  # the server stops while the first chunk is written
            return hub.write(op)

        assert retention.prune(write, NOW, 90, chunk=100, stop=stopping) == 100

    def test_a_prune_stops_during_its_pause_when_the_server_stops(self, hub):
        self.seed_old_fleet(hub, 300)
        log: list = []
        stopping = self.Pauses(log, stop_at=2)  # the server stops in the second pause
        assert retention.prune(hub.write, NOW, 90, chunk=100, stop=stopping) == 200
        assert [kind for kind, _ in log] == ["pause", "pause"]
        (note,) = rows(hub, t.events, t.events.c.entity == "system")
        assert note["detail"] == {"runs_removed": 200, "retention_days": 90}

    def test_pruning_twice_removes_nothing_more(self, hub):
        self.seed(hub)
        assert retention.prune(hub.write, NOW, 90) == 2
        assert retention.prune(hub.write, NOW, 90) == 0
        with hub.read_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.runs)).scalar_one() == 2


def test_the_known_head_revision_is_alembics_head() -> None:
    """migrate() skips Alembic when the database is at HEAD_REVISION; it must be the real
    head, or a new migration would never be applied."""
    from backwatch.store.migrate import HEAD_REVISION, head_revision

    assert head_revision() == HEAD_REVISION


def test_a_thread_waiting_for_a_closed_writer_is_told_so(settings) -> None:
    """A server that stops closes its writer; a thread still waiting for it (a prune, a
    file tailer) must be answered, or the server's shutdown waits for that thread forever."""
    hub = Hub(settings, grouped=True)
    hub.writer.close()
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="writer has stopped"):
        hub.write(lambda conn, unit: None)
    assert time.monotonic() - began < 5
    hub.close()


class TestInsertRows:
    """``insert_rows`` (the write path's executemany straight to the driver) stores exactly
    what ``conn.execute(table.insert(), rows)`` stores, JSON columns included."""

    EVENT = {"at": NOW, "kind": "note", "entity": "system", "entity_id": None, "job": None}
    EVENT |= {"from_state": None, "to_state": None, "trigger": None, "actor": "t"}

    def _stored(self, hub: Hub, kind: str) -> list[tuple]:
        with hub.read_engine.connect() as conn:
            got = conn.execute(
                select(t.events.c.at, t.events.c.entity, t.events.c.actor, t.events.c.detail)
                .where(t.events.c.kind == kind)
                .order_by(t.events.c.id)
            )
            return [tuple(r) for r in got]

    def test_the_same_rows_as_sqlalchemy(self, hub):
        from backwatch.store.dialect import insert_rows

        details = [None, {"ü": [1, 2.5, None]}, [], "text", 7]
        with hub.write_engine.begin() as conn:
            conn.execute(t.events.insert(), [{**self.EVENT, "detail": d} for d in details])
            insert_rows(
                conn, t.events, [{**self.EVENT, "kind": "fast", "detail": d} for d in details]
            )
        assert self._stored(hub, "fast") == self._stored(hub, "note")
        assert [row[3] for row in self._stored(hub, "fast")][1:] == details[1:]

    def test_columns_left_out_are_stored_as_sqlalchemy_stores_them(self, hub):
        from backwatch.store.dialect import insert_rows

        short = {k: v for k, v in self.EVENT.items() if v is not None}
        with hub.write_engine.begin() as conn:
            conn.execute(t.events.insert(), [{**short, "kind": "short"}])
            insert_rows(conn, t.events, [{**short, "kind": "short-fast"}])
            raw = conn.execute(
                text("SELECT kind, detail IS NULL FROM events WHERE kind LIKE 'short%' ORDER BY id")
            ).all()
        assert [tuple(r) for r in raw] == [("short", True), ("short-fast", True)]
        assert self._stored(hub, "short-fast") == self._stored(hub, "short")

    def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(self, hub):
        """A refused row (a phase of no run: foreign key) is the same IntegrityError the
        writer's retry logic knows, not the driver's own exception."""
        from sqlalchemy.exc import IntegrityError

        from backwatch.store.dialect import insert_rows

        phase = {"run_id": "no-such-run", "name": "x", "seq": 0, "status": "success"}
        phase |= {"started_at": None, "finished_at": None, "duration_s": 1.0}
        with pytest.raises(IntegrityError), hub.write_engine.begin() as conn:
            insert_rows(conn, t.phases, [phase])

    def test_present_names_the_stored_values_in_chunks(self, hub):
        from backwatch.store.dialect import present

        ids = [f"present-{i}" for i in range(1203)]  # more than one chunk of the IN list
        for run_id in ids[::400]:
            report = RunReport(job="nightly", status=RunStatus.SUCCESS, started_at=NOW, id=run_id)
            hub.write(run_service.record_report(report, NOW))
        with hub.write_engine.begin() as conn:
            assert present(conn, t.runs, "id", ids) == set(ids[::400])
            assert present(conn, t.runs, "id", ["nope"]) == set()
            assert present(conn, t.runs, "id", []) == set()
