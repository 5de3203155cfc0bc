"""The command line on the database directly (``--db``): a real SQLite file and the real
PostgreSQL (the ``db_url`` fixture runs each test on both), in-process with CliRunner."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app

SEED_LINE = (
    '{"timestamp":"2026-01-07T02:00:00-08:00","backup_id":"2026-01-07_020000","success":true,'
    '"duration_total":1265,"duration_snapshot":5,"duration_archive":318,"duration_volumes":485,'
    '"duration_upload":457,"size_bytes":2912345678}'
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))


class Cli:
    """``backwatch … --db <url>``, asserting success unless told otherwise."""

    def __init__(self, db: str) -> None:
        self.db = db

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> Any:
        result = CliRunner().invoke(app, [*args, "--db", self.db], input=input)
        assert "Traceback" not in result.stderr
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


def test_push_status_history_list(cli: Cli) -> None:
    cli("push", "--job", "photos", "--duration", "42", "--size", "1000", "--phase", "dump=40")
    cli("push", "--job", "mail", "--status", "failed", "--exit-code", "2", "-m", "disk full")

    overview = cli.json("status")
    assert overview["summary"]["total"] == 2 and overview["summary"]["failed"] == 1
    assert {j["id"]: j["health"] for j in overview["jobs"]} == {"photos": "ok", "mail": "failing"}
    table = cli("status").stdout
    assert "last 30 days: 2 runs" in table and "photos" in table and "failing" in table

    detail = cli.json("status", "photos")
    assert detail["job"]["runs_total"] == 1 and detail["runs"][0]["duration_s"] == 42
    assert "job photos" in cli("status", "photos").stdout

    [run] = cli.json("history", "mail")
    assert run["exit_code"] == 2 and run["message"] == "disk full" and run["source"] == "cli"
    assert "disk full" in cli("history", "mail").stdout

    assert sorted(j["id"] for j in cli.json("list")) == ["mail", "photos"]
    assert "mail" in cli("list").stdout


@pytest.mark.parametrize("first", ["push", "import"])
def test_seed_001_line_with_push_and_import_is_one_run(
    cli: Cli, tmp_path: Path, first: str
) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(SEED_LINE + "\n\n")
    steps = [("push", "--json", "-"), ("import", str(metrics))]
    if first == "import":
        steps.reverse()
    outputs = [cli(*step, input=SEED_LINE).stdout for step in steps]
    if first == "push":
        assert outputs[0].startswith("recorded run") and "already present 1" in outputs[1]
    else:
        assert "imported 1" in outputs[0] and outputs[1].startswith("already recorded")
    [job] = cli.json("list")
    assert job["id"] == "backup" and job["runs_total"] == 1
    [run] = cli.json("history", "backup")
    assert run["backup_id"] == "2026-01-07_020000" and run["size_bytes"] == 2912345678


def test_push_json_with_a_job_for_a_seed_line(cli: Cli) -> None:
    cli("push", "--json", "-", "--job", "nas", input=SEED_LINE)
    [run] = cli.json("history", "nas")
    assert run["backup_id"] == "2026-01-07_020000"


def test_import_reports_bad_lines_and_keeps_the_good(cli: Cli, tmp_path: Path) -> None:
    lines = [SEED_LINE, "{not json", '{"timestamp": "soon", "backup_id": "b", "success": true}']
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["import", str(tmp_path / "m.jsonl"), "--db", cli.db])
    assert result.exit_code == 1
    assert "imported 1" in result.stdout and "rejected 2" in result.stdout
    assert "m.jsonl:2:" in result.stderr and "m.jsonl:3:" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(cli.json("history", "backup")) == 1


def test_start_phase_finish(cli: Cli, tmp_path: Path) -> None:
    run_id = cli("start", "nightly", "--id", "night-1").stdout.strip()
    assert run_id == "night-1"
    assert cli.json("status", "nightly")["job"]["health"] == "running"
    cli("phase", run_id, "dump", "--start")
    cli("phase", run_id, "dump", "--end")
    cli("phase", run_id, "upload", "--duration", "3")
    log = tmp_path / "out.log"
    log.write_bytes(b"z" * 300_000 + b"\nthe end\n")
    done = cli("finish", run_id, "--status", "warning", "--size", "77", "--log-file", str(log))
    assert "finished: warning" in done.stdout
    [run] = cli.json("history", "nightly")
    assert run["status"] == "warning" and run["size_bytes"] == 77
    cli("finish", run_id, code=1)  # a second finish is refused


def test_db_migrate_prune_vacuum(cli: Cli) -> None:
    assert "schema revision" in cli("db", "migrate").stdout
    assert "schema revision" in cli("db", "migrate").stdout  # again: nothing to do
    old = time.time() - 200 * 86400
    cli("push", "--job", "old", "--started-at", str(old), "--duration", "5")
    cli("push", "--job", "old", "--duration", "5")
    _age_runs(cli.db, "old")  # as if reported back then: a fresh import is kept a full period
    assert "removed 0 runs older than 365 days" in cli("db", "prune", "--days", "365").stdout
    assert "removed 1 runs older than 90 days" in cli("db", "prune").stdout
    assert len(cli.json("history", "old")) == 1
    assert "vacuumed" in cli("db", "vacuum").stdout
    assert len(cli.json("history", "old")) == 1


def _age_runs(db_url: str, job: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE runs SET updated_at = started_at WHERE job = :j"), {"j": job})
    engine.dispose()


def test_tokens(cli: Cli) -> None:
    secret = cli("token", "create", "--name", "host1", "--scope", "admin").stdout.strip()
    assert secret.startswith("bw_")
    listed = cli("token", "list").stdout
    assert "host1" in listed and "admin" in listed and secret not in listed
    [item] = cli.json("token", "list")
    assert item["name"] == "host1" and item["revoked_at"] is None
    assert secret not in json.dumps(item)
    assert "revoked" in cli("token", "revoke", "host1").stdout
    [item] = cli.json("token", "list")
    assert item["revoked_at"] is not None
    cli("token", "revoke", "host1", code=1)


def test_empty_database(cli: Cli) -> None:
    cli("db", "migrate")
    assert "no jobs yet" in cli("status").stdout
    assert cli.json("list") == []


def test_the_summary_has_one_shape_from_the_server_and_from_the_database(
    tmp_path: Path,
) -> None:
    """A command shows the same summary (including where its period starts) whether it
    asks a server or reads the database itself."""
    from backwatch.cli.target import resolve
    from tests.conftest import Server

    data = tmp_path / "served"
    server = Server(data).start()
    try:
        remote = resolve(url=server.url, token=server.token, db=None, config=None, data_dir=None)
        report = {"job": "nightly", "status": "success", "started_at": time.time() - 60}
        remote.request("POST", "/api/v1/runs", {**report, "duration_s": 30})
        local = resolve(
            url=None, token=None, db=str(data / "backwatch.db"), config=None, data_dir=None
        )
        try:
            from_server, from_db = remote.summary(7), local.summary(7)
        finally:
            local.close()
    finally:
        server.stop()
    assert from_server == from_db and from_db["total"] == 1
    assert from_db["since"].endswith("T00:00:00Z") and from_db["days"] == 7


def test_status_shows_a_page_of_jobs_problems_first_and_says_how_many_more(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backwatch.cli import views

    monkeypatch.setattr(views, "STATUS_SHOWN", 3)  # 100 in use: a fleet prints one page
    for job in ("a-ok", "b-ok", "c-ok", "d-ok"):
        cli("push", "--job", job, "--duration", "5")
    cli("push", "--job", "z-broken", "--status", "failed", "-m", "disk full")
    table = cli("status").stdout
    shown = [job for job in ("z-broken", "a-ok", "b-ok", "c-ok", "d-ok") if job in table]
    assert shown == ["z-broken", "a-ok", "b-ok"]
    assert table.index("z-broken") < table.index("a-ok")  # the failing one first
    assert "… 2 more" in table and "backwatch list" in table
    assert len(cli.json("status")["jobs"]) == 5  # --json: every job, as before
