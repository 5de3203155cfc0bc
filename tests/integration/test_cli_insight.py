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

from backwatch.cli import app
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

        unknown = run_cli("performance", "--job", "nope", env=env)
        assert (unknown.returncode, unknown.stderr) == (1, "error: job 'nope' not found\n")
        bad_filter = run_cli("audit", "--filter", "bogus", env=env)
        assert bad_filter.returncode == 1 and "kind: must be one of" in bad_filter.stderr
        unknown_check = run_cli("health", "--checks", "cpu", env=env)
        assert unknown_check.returncode == 1 and "unknown check 'cpu'" in unknown_check.stderr
    finally:
        srv.stop()
