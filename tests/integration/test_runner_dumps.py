"""Dumps as their own phase: pg_dump of the test database, restorable with psql."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import PG_URL, need_tool
from tests.integration.runner_support import run_job, write_config


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_a_pg_dump_phase_writes_a_restorable_dump(tmp_path: Path, pg_url: str) -> None:
    need_tool("pg_dump")
    need_tool("psql")
    schema = pg_url.rsplit("search_path%3D", 1)[1]
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE photos (id int PRIMARY KEY, name text)"))
        conn.execute(
            text("INSERT INTO photos SELECT g, 'photo ' || g FROM generate_series(1, 500) g")
        )
    engine.dispose()
    dump = tmp_path / "dumps" / "app.sql"
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "app"
tool = "command"
command = "test -s {dump}"
[[jobs.dumps]]
name = "app"
type = "postgresql"
database = "{PG_URL}"
path = "{dump}"
extra_args = ["--schema", "{schema}"]
""",
    )
    proc, run = run_job(config, "app")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success", run
    assert [p["name"] for p in run["phases"]] == ["dump-app", "backup"]
    assert dump.stat().st_size > 0
    assert not dump.with_name("app.sql.partial").exists()

    # restore into a fresh database
    fresh = "bwrestore_" + secrets.token_hex(4)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {fresh}"))
    try:
        target = _libpq(PG_URL).rsplit("/", 1)[0] + f"/{fresh}"
        restored = subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", target, "-f", str(dump)],
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        assert restored.returncode == 0, restored.stderr
        count = subprocess.run(
            ["psql", "-tA", "-d", target, "-c", f"SELECT count(*), max(name) FROM {schema}.photos"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert count == "500|photo 99"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {fresh}"))
        admin.dispose()


def test_a_failed_dump_stops_the_run_and_keeps_the_last_good_dump(tmp_path: Path) -> None:
    dump = tmp_path / "last.dump"
    dump.write_text("yesterday's dump")
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "app"
tool = "command"
command = "echo backup ran > {tmp_path / "backup-ran"}"
[[jobs.dumps]]
name = "broken"
type = "command"
command = "echo partial; exit 4"
path = "{dump}"
""",
    )
    proc, run = run_job(config, "app")
    assert proc.returncode == 1
    assert run is not None and run["status"] == "failed"
    assert run["message"].startswith("dump-broken:") and "code 4" in run["message"]
    assert [p["name"] for p in run["phases"]] == ["dump-broken"]
    assert dump.read_text() == "yesterday's dump"
    assert not (tmp_path / "backup-ran").exists()


def test_backup_of_a_job_takes_the_last_dump_files_and_says_it_ran_no_dump(
    tmp_path: Path,
) -> None:
    """`backup JOB` is the snapshot alone: it does not run [[jobs.dumps]] (`run JOB` does),
    includes the files the last run wrote, and says so."""
    from typer.testing import CliRunner

    from backwatch.cli import app

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    counter = tmp_path / "dumped"
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "docs"
tool = "builtin"
destinations = ["{tmp_path / "dest"}"]
[jobs.builtin]
paths = ["{tmp_path / "src"}"]
[[jobs.dumps]]
name = "notes"
type = "command"
command = "echo run >> {counter}; echo the-dump"
""",
    )
    args = ["backup", "docs", "--config", str(config)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "does not run the job's dumps (`backwatch run docs` does)" in first.stderr
    assert "no file yet for notes.dump" in first.stderr
    assert not counter.exists()  # the dump did not run

    proc, _record = run_job(config, "docs")
    assert proc.returncode == 0, proc.stderr
    assert counter.read_text() == "run\n"
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "it holds notes.dump (dumped " in second.stderr
    assert counter.read_text() == "run\n"  # still only the run's dump

    quiet = CliRunner().invoke(app, [*args, "--json"])
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr
