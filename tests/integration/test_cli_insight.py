"""``health``, ``performance``, ``report``, ``audit`` and ``dashboard`` on the database
(``--db``: a real SQLite file and the real PostgreSQL, in-process) and against a real server
(``--url``, the real command in a subprocess)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app, insight, insight_fetch
from backwatch.cli.target import HttpTarget
from tests.conftest import Server, run_cli
from tests.integration.test_api_analysis import leave_stale_lock
from tests.integration.test_cli_local import Cli, _isolated  # noqa: F401  (autouse fixture)

DAY = 86400.0


def week_of_runs(job: str = "nightly", days: int = 8) -> list[dict[str, Any]]:
    """One run a day with a growing upload phase (for ``import -``)."""
    now = time.time()
    return [
        {
            "job": job, "status": "success", "started_at": now - DAY * (days - i),
            "duration_s": 100 + 10 * i, "size_bytes": 1_000_000,
            "phases": [{"name": "dump", "duration_s": 20},
                       {"name": "upload", "duration_s": 80 + 10 * i}],
        }
        for i in range(days)
    ]  # fmt: skip


def jsonl(records: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


@pytest.fixture
def cli(db_url: str) -> Cli:
    c = Cli(db_url)
    c("import", "-", input=jsonl(week_of_runs()))
    return c


def test_performance(cli: Cli) -> None:
    (analysis,) = json.loads(cli("performance", "--period", "30d", "--json").stdout)
    assert analysis["job"] == "nightly" and analysis["runs"] == 8
    assert analysis["bottleneck"]["phase"] == "upload"
    assert analysis["duration_trend"]["direction"] == "increasing"
    table = cli("performance", "--period", "30d", "--job", "nightly").stdout
    assert "upload" in table and "increasing" in table
    assert "phase upload takes" in table


def test_performance_of_an_unknown_job(cli: Cli) -> None:
    result = cli("performance", "--job", "nope", code=1)
    assert result.stderr.strip() == "error: job 'nope' not found"


@pytest.mark.parametrize("period", ["2x", "10m", "900d"])
def test_bad_period(cli: Cli, period: str) -> None:
    for command in ("performance", "report"):
        result = cli(command, "--period", period, code=1)
        assert result.stderr.startswith(f"error: --period {period!r}: must be")


def test_health(cli: Cli) -> None:
    body = json.loads(cli("health", "--json").stdout)
    assert body["status"] in ("ok", "warning")
    assert {c["name"] for c in body["checks"]} >= {"database", "writer", "stale_locks"}
    table = cli("health", "--checks", "database,migrations").stdout
    assert "database" in table and "migrations" in table and "overall: ok" in table


def test_health_exits_1_when_a_check_is_critical(cli: Cli) -> None:
    cli("push", "--job", "mail", "--status", "failed", "-m", "disk full")
    result = cli("health", "--checks", "jobs_failing", code=1)
    assert "mail" in result.stdout
    # the reason too, not only the check's name
    assert result.stderr.startswith("error: 1 check(s) critical: jobs_failing: failing ")
    assert "mail" in result.stderr


def test_health_unknown_check(cli: Cli) -> None:
    result = cli("health", "--checks", "coffee_level", code=1)
    assert "unknown check 'coffee_level'" in result.stderr


def test_health_fix_clears_a_stale_lock(cli: Cli, tmp_path: Path) -> None:
    started = cli("start", "nightly").stdout.strip()
    leave_stale_lock(tmp_path / "data", "nightly", started)
    body = json.loads(cli("health", "--checks", "stale_locks", "--json").stdout)
    assert body["checks"][0]["status"] == "warning"
    fixed = json.loads(cli("health", "--fix", "--checks", "stale_locks", "--json").stdout)
    assert len(fixed["fixed"]) == 1 and fixed["checks"][0]["status"] == "ok"
    run = json.loads(cli("history", "nightly", "--limit", "1", "--json").stdout)[0]
    assert run["id"] == started and run["status"] == "failed"
    assert "nothing to fix" in cli("health", "--fix", "--checks", "stale_locks").stdout


def test_health_names_a_stuck_run_whose_process_is_gone(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKWATCH_ALERTS__STUCK_MINUTES", "0.001")  # stuck after 0.06 s
    for job in ("mail", "photos"):
        started = cli("start", job).stdout.strip()
    leave_stale_lock(tmp_path / "data", "photos", started)  # mail left no lock behind
    time.sleep(0.2)
    (check,) = json.loads(cli("health", "--checks", "stuck_runs", "--json").stdout)["checks"]
    assert check["status"] == "warning" and check["detail"] == "running too long: mail, photos"
    assert check["fix"].startswith("the process of photos is gone: `backwatch health --fix`")
    assert check["fixable"] is True


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_report_formats(cli: Cli, fmt: str, tmp_path: Path) -> None:
    out = cli("report", "--period", "7d", "--format", fmt).stdout
    assert "nightly" in out
    saved = tmp_path / f"report.{fmt}"
    assert cli("report", "--format", fmt, "--save", str(saved)).stdout.strip() == (
        f"report saved to {saved}"
    )
    text = saved.read_text()
    if fmt == "json":
        data = json.loads(text)
        assert data["period"] == "7d" and data["performance"][0]["job"] == "nightly"
        assert data["summary"]["total"] == 6  # whole UTC days: today and the 6 before
    elif fmt == "html":
        assert text.startswith("<!doctype html>") and "<h2>Recommendations</h2>" in text
    elif fmt == "markdown":
        assert "## Performance" in text
    else:
        assert "Health checks" in text and "phase upload takes" in text


def test_report_bad_format_and_unwritable_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("report", "--format", "pdf", code=1)
    assert result.stderr.strip() == ("error: --format 'pdf': use one of text, markdown, json, html")
    target = tmp_path / "missing-dir" / "r.txt"
    result = cli("report", "--save", str(target), code=1)
    assert result.stderr.startswith(f"error: cannot write the report to {target}: ")


def test_audit(cli: Cli) -> None:
    events = json.loads(cli("audit", "--since", "6h", "--json").stdout)
    assert events and {e["kind"] for e in events} >= {"state_change"}
    only = json.loads(cli("audit", "--filter", "config", "--json").stdout)
    assert only and {e["kind"] for e in only} == {"config"}
    assert "state_change" in cli("audit").stdout
    assert cli("audit", "--since", "2000-01-01T00:00:00Z", "--filter", "auth").stdout.startswith(
        "no events since"
    )


def test_audit_bad_input(cli: Cli) -> None:
    assert "--filter must be one of" in cli("audit", "--filter", "bogus", code=1).stderr
    assert "--since" in cli("audit", "--since", "yesterday-ish", code=1).stderr


def test_dashboard(cli: Cli) -> None:
    frame = cli("dashboard", "--once").stdout
    assert "nightly" in frame and "1 ok" in frame and "0 open alert(s)" in frame
    result = cli("dashboard", "--mode", "tv", code=1)
    assert result.stderr.strip() == "error: --mode 'tv': use terminal or web"


def test_dashboard_web_prints_the_url() -> None:
    result = CliRunner().invoke(
        app, ["dashboard", "--mode", "web", "--no-browser", "--url", "http://127.0.0.1:9/"]
    )
    assert result.exit_code == 0 and result.stdout.strip() == "dashboard: http://127.0.0.1:9/"


def test_commands_against_a_server(tmp_path: Path) -> None:
    srv = Server(tmp_path / "srv").start()
    try:
        env = {"BACKWATCH_URL": srv.url, "BACKWATCH_TOKEN": srv.token}
        assert run_cli("import", "-", input=jsonl(week_of_runs()), env=env).returncode == 0

        perf = run_cli("performance", "--period", "30d", "--json", env=env)
        assert perf.returncode == 0, perf.stderr
        assert json.loads(perf.stdout)[0]["bottleneck"]["phase"] == "upload"

        health = run_cli("health", "--json", "--fix", env=env)
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["fixed"] == []

        saved = tmp_path / "weekly.json"
        report = run_cli("report", "--format", "json", "--save", str(saved), env=env)
        assert report.returncode == 0, report.stderr
        assert json.loads(saved.read_text())["jobs"][0]["id"] == "nightly"

        audit = run_cli("audit", "--since", "1h", "--filter", "state_change", "--json", env=env)
        assert audit.returncode == 0 and json.loads(audit.stdout)

        frame = run_cli("dashboard", "--once", env=env)
        assert frame.returncode == 0 and "nightly" in frame.stdout

        # over HTTP too: the open alerts past a page counted, a fleet's first jobs by health
        _open_alerts(f"sqlite:///{tmp_path / 'srv' / 'backwatch.db'}", ["nightly"] * 3)
        run_cli("push", "--job", "zulu", "--status", "failed", env=env)
        http = HttpTarget(srv.url, srv.token)
        alerts = insight_fetch.fetch_open_alerts(http, limit=2)
        every = http.request("GET", "/api/v1/alerts", query={"state": "open", "limit": 1000})
        assert len(alerts["items"]) == 2 and alerts["total"] == len(every["items"]) >= 3
        jobs, total = insight_fetch.first_jobs(http, 1)
        assert [j["id"] for j in jobs] == ["zulu"] and total == 2

        unknown = run_cli("performance", "--job", "nope", env=env)
        assert (unknown.returncode, unknown.stderr) == (1, "error: job 'nope' not found\n")
        bad_filter = run_cli("audit", "--filter", "bogus", env=env)
        assert bad_filter.returncode == 1 and "kind: must be one of" in bad_filter.stderr
        unknown_check = run_cli("health", "--checks", "cpu", env=env)
        assert unknown_check.returncode == 1 and "unknown check 'cpu'" in unknown_check.stderr
    finally:
        srv.stop()


# --- a fleet: one page of jobs (issue 18) -------------------------------------------------

#: the fleet below: three failing jobs whose ids sort last, five ok ones
FAILING = ["zulu-1", "zulu-2", "zulu-3"]
OK = ["alpha-1", "alpha-2", "alpha-3", "alpha-4", "alpha-5"]


def flat(text: str) -> str:
    """Output with its line wrapping undone (rich wraps long lines to the terminal)."""
    return " ".join(text.split())


@pytest.fixture
def fleet(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Eight jobs and a page of three: the first page by health (the failing jobs) is not
    the first by id, so a page taken in the wrong order shows."""
    monkeypatch.setattr(insight, "JOBS_SHOWN", 3)
    c = Cli(db_url)
    c("import", "-", input=jsonl([r for job in OK for r in week_of_runs(job, days=2)]))
    for job in FAILING:
        c("push", "--job", job, "--status", "failed", "-m", "disk full")
    return c


def test_performance_analyses_the_first_page_by_health(fleet: Cli) -> None:
    text = fleet("performance").stdout
    assert all(job in text for job in FAILING) and not any(job in text for job in OK)
    assert "… 5 more job(s) (the first 3 by health are above): " in flat(text)
    assert "`backwatch performance --all` every job" in flat(text)

    result = fleet("performance", "--period", "30d", "--json")
    assert [a["job"] for a in json.loads(result.stdout)] == FAILING
    assert "5 more job(s)" in result.stderr and "performance --period 30d --all" in result.stderr

    (one,) = json.loads(fleet("performance", "--job", "alpha-4", "--json").stdout)
    assert one["job"] == "alpha-4" and one["runs"] == 2


def test_performance_all_goes_through_every_page_in_health_order(fleet: Cli) -> None:
    analyses = json.loads(fleet("performance", "--all", "--json").stdout)
    assert [a["job"] for a in analyses] == FAILING + OK
    text = fleet("performance", "--all").stdout
    assert all(job in text for job in FAILING + OK) and "more job(s)" not in text
    assert text.index("zulu-3") < text.index("alpha-1")  # problems first, page after page
    result = fleet("performance", "--all", "--job", "alpha-1", code=1)
    assert result.stderr.strip() == "error: --all and --job: give one or the other"


def test_performance_all_with_no_jobs(db_url: str) -> None:
    cli = Cli(db_url)
    cli("db", "migrate")  # a database without jobs
    assert json.loads(cli("performance", "--all", "--json").stdout) == []
    assert cli("performance", "--all").stdout.startswith("no jobs yet")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_report_covers_a_page_of_jobs_and_says_how_many_in_all(fleet: Cli, fmt: str) -> None:
    out = fleet("report", "--format", fmt).stdout
    cap = "the first 3 of 8 jobs by health (problems first) are above; the other 5"
    if fmt == "json":
        data = json.loads(out)
        assert [j["id"] for j in data["jobs"]] == FAILING
        assert [a["job"] for a in data["performance"]] == FAILING
        assert data["jobs_total"] == 8 and cap in data["jobs_more"]
        assert "backwatch performance --all" in data["jobs_more"]
        assert data["summary"]["health"]["ok"] == 5  # the summary stays whole
        return
    assert flat(out).count(cap) == 2  # the job list and the performance
    assert "backwatch list --sort health" in out.replace("\\", "")  # Markdown escapes `
    assert all(job in out for job in FAILING) and not any(job in out for job in OK)


def test_report_of_a_page_or_less_is_as_before(fleet: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(insight, "JOBS_SHOWN", 8)
    data = json.loads(fleet("report", "--format", "json").stdout)
    assert [j["id"] for j in data["jobs"]] == sorted(OK + FAILING)  # every job, by id
    assert "jobs_total" not in data and "jobs_more" not in data
    assert "open_alerts_total" not in data
    assert "of 8 jobs" not in fleet("report").stdout
    analyses = json.loads(fleet("performance", "--json").stdout)
    assert [a["job"] for a in analyses] == sorted(OK + FAILING)


def test_report_counts_the_open_alerts_it_does_not_list(
    fleet: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _open_alerts(db_url, OK)
    monkeypatch.setattr(insight_fetch, "ALERTS_SHOWN", 2)
    data = json.loads(fleet("report", "--format", "json").stdout)
    assert len(data["open_alerts"]) == 2 and data["open_alerts_total"] == 5
    assert "… 3 more open alert(s): `backwatch alerts list --state open`" in fleet("report").stdout
    assert "5 open alert(s)" in flat(fleet("dashboard", "--once").stdout)  # counted, not listed


def _open_alerts(db_url: str, jobs: list[str]) -> None:
    """An open warning alert for each of ``jobs`` (a warning: their health stays as it is)."""
    from sqlalchemy import create_engine

    from backwatch.store import tables as t

    engine = create_engine(db_url)
    with engine.begin() as conn:
        for i, job in enumerate(jobs):
            at = time.time() - 60 * i
            conn.execute(t.alerts.insert().values(
                fingerprint=f"size_drop:{job}:{i}", rule="size_drop", job=job, severity="warning",
                state="open", message=f"size dropped on {job}", opened_at=at, updated_at=at,
            ))  # fmt: skip
    engine.dispose()
