"""``backwatch list`` on the database directly (``--db``): pages, filters, ``--all`` and bad
values, on a real SQLite file and the real PostgreSQL, in-process with CliRunner. The same
against a server: tests/e2e/test_cli_server.py; at 100,000 jobs: tests/e2e/test_fleet_browser.py.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app
from backwatch.cli.local import LocalTarget
from backwatch.services import jobs as job_service
from tests.conftest import make_settings
from tests.integration.test_cli_local import _isolated  # noqa: F401  (autouse fixture)

#: web-00 … web-11 on host web, db-0 … db-3 on host db (failing, tagged "db")
WEB = [f"web-{i:02d}" for i in range(12)]
DB = [f"db-{i}" for i in range(4)]


def run(db: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["list", *args, "--db", db])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


@pytest.fixture
def fleet(db_url: str, tmp_path: Path) -> str:
    tgt = LocalTarget(make_settings(tmp_path / "data", db_url))
    try:
        now = time.time()
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
        reports = [{"job": j, "status": "success", "host": "web"} for j in WEB]
        reports += [{"job": j, "status": "failed", "host": "db"} for j in DB]
        tgt.report([{**r, "started_at": start, "duration_s": 5} for r in reports])
        for job in DB:
            tgt.hub.write(job_service.put_job(job, {"tags": ["db"]}, now, actor="test"))
    finally:
        tgt.close()
    return db_url


def _ids(result: Any) -> list[str]:
    return [job["id"] for job in json.loads(result.stdout)]


def _next(text: str) -> list[str] | None:
    """The arguments of the next page's command a page printed (without ``backwatch``)."""
    found = re.search(r"next page: (backwatch list .*)", text)
    return shlex.split(found.group(1))[1:] if found else None


def test_a_small_limit_walks_every_job_once(fleet: str) -> None:
    seen: list[str] = []
    args: list[str] | None = ["list", "--limit", "5", "--json"]
    while args is not None:
        result = run(fleet, *args[1:])
        page = _ids(result)
        assert 0 < len(page) <= 5
        seen += page
        args = _next(result.stderr)
    assert seen == sorted(DB + WEB)

    # the table: the count of what is left and a command that gives the next page
    table = run(fleet, "--limit", "10").stdout
    assert "6 more match (16 in all)" in table
    second = _next(table)
    assert second is not None and second[0] == "list" and "--limit" in second
    rest = run(fleet, *second[1:]).stdout
    assert "web-10" in rest and "web-11" in rest and "web-00" not in rest
    assert "next page" not in rest


def test_filters_and_sorts(fleet: str) -> None:
    assert _ids(run(fleet, "--health", "failing", "--json")) == DB
    assert _ids(run(fleet, "--health", "failing,ok", "--limit", "1000", "--json")) == sorted(
        DB + WEB
    )
    assert _ids(run(fleet, "--tag", "db", "--json")) == DB
    assert _ids(run(fleet, "--host", "web", "--json")) == WEB
    assert _ids(run(fleet, "--prefix", "web-1", "--json")) == ["web-10", "web-11"]
    assert _ids(run(fleet, "-q", "db-", "--host", "web", "--json")) == []
    assert _ids(run(fleet, "--sort", "health", "--limit", "4", "--json")) == DB
    assert "no jobs match" in run(fleet, "--tag", "nothing").stdout
    # the old form: every job of a small fleet, the same columns
    table = run(fleet).stdout
    assert all(job in table for job in DB + WEB) and "next page" not in table
    assert "last run" in table and "next due" in table


def test_all_streams_every_page_as_one_array(fleet: str) -> None:
    every = run(fleet, "--all", "--limit", "3", "--json")
    assert _ids(every) == sorted(DB + WEB)
    assert "next page" not in every.stderr
    assert _ids(run(fleet, "--all", "--health", "failing", "--json")) == DB
    table = run(fleet, "--all", "--limit", "5").stdout
    assert all(job in table for job in DB + WEB)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit: must be between 1 and 1000"),
        (["--limit", "1001"], "--limit: must be between 1 and 1000"),
        (["--health", "fine"], "--health: 'fine' is not one of: failing"),
        (["--cursor", "not-a-cursor"], "--cursor: 'not-a-cursor' is not a next-page cursor"),
        (["--sort", "size"], "--sort: must be one of: id, last_run, health"),
    ],
)
def test_bad_values_are_refused_by_name(fleet: str, args: list[str], message: str) -> None:
    result = run(fleet, *args, code=2)
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stdout == ""


def test_a_cursor_of_another_sort_is_refused(fleet: str) -> None:
    by_health = run(fleet, "--sort", "health", "--limit", "2", "--json")
    args = _next(by_health.stderr)
    assert args is not None
    cursor = args[args.index("--cursor") + 1]
    refused = run(fleet, "--cursor", cursor, code=2)
    assert "with the same --sort" in refused.stderr


def test_status_json_writes_every_job_page_by_page(
    fleet: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backwatch.cli import views

    pages: list[str | None] = []
    real = LocalTarget.job_page

    def recording(self: LocalTarget, **query: Any) -> Any:
        pages.append(query.get("cursor"))
        return real(self, **query)

    monkeypatch.setattr(views, "ALL_PAGE", 5)  # 16 jobs: 4 pages, never all at once
    monkeypatch.setattr(LocalTarget, "job_page", recording)
    result = CliRunner().invoke(app, ["status", "--json", "--db", fleet])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert [job["id"] for job in status["jobs"]] == sorted(DB + WEB)
    assert {job["id"]: job["health"] for job in status["jobs"] if job["health"] != "ok"} == {
        job: "failing" for job in DB
    }
    assert status["summary"]["health"] == {"failing": 4, "ok": 12}
    assert len(pages) == 4 and pages[0] is None and None not in pages[1:]
