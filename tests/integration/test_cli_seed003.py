"""Seed 003's command lines work as the user wrote them, and what a newcomer runs into
after the README tour: ``dashboard`` in a pipe, ``performance`` trends, ``health``'s
reasons and its CPU and memory checks. In-process on a real SQLite file (``--db``) and, for
the pipe, the real command in a subprocess."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from backwatch.services.system_checks import judge_cpu, judge_memory
from tests.conftest import ROOT, make_settings, run_cli
from tests.integration.test_cli_local import Cli, _isolated  # noqa: F401  (autouse fixture)

SEED_003 = next((ROOT / "tests" / "fixtures" / "seeds").glob("003_*.md")).read_text()
#: seed 003's commands that are about what backwatch does (not its workflows or daemon)
SEED_LINES = [
    line.removeprefix("python backup_monitor_cli.py ")
    for line in sorted(set(re.findall(r"^python backup_monitor_cli\.py .+$", SEED_003, re.M)))
    if re.match(
        r"python backup_monitor_cli\.py (health|performance|report|audit|alerts|dash)", line
    )
    and "ALERT_TIMESTAMP" not in line  # a placeholder: test_alerts_action_acknowledge
    and "--mode web" not in line  # opens a browser: test_dashboard_web_prints_the_url
]


def tour_runs(job: str = "photos") -> list[dict[str, Any]]:
    """What the README's tour leaves: a 5-minute backup, then runs of a few seconds."""
    now = time.time()
    durations = [312, 2.1, 2.3, 0.5]
    return [
        {"job": job, "status": "success", "started_at": now - 600 + 120 * i,
         "duration_s": d, "size_bytes": 1_000_000}
        for i, d in enumerate(durations)
    ]  # fmt: skip


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)  # `report --save weekly_report.json` writes here
    c = Cli(f"sqlite:///{tmp_path / 'backwatch.db'}")
    c("import", "-", input="\n".join(json.dumps(r) for r in tour_runs()) + "\n")
    return c


def test_the_seed_lines_are_found() -> None:
    assert "health --checks disk_space memory_usage" in SEED_LINES
    assert "alerts --action list" in SEED_LINES
    assert "performance --operation-type backup --period 7d" in SEED_LINES
    assert len(SEED_LINES) >= 12


@pytest.mark.parametrize("line", SEED_LINES)
def test_seed_003_command_lines_run(cli: Cli, line: str) -> None:
    args = shlex.split(line.split(" > ")[0])
    result = cli(*args)
    if "--output json" in line:
        json.loads(result.stdout)
    elif "--save" not in line:
        assert result.stdout.strip()


def test_health_checks_by_seed_003s_names(cli: Cli) -> None:
    body = json.loads(
        cli("health", "--checks", "disk_space", "memory_usage", "--output", "json").stdout
    )
    assert [c["name"] for c in body["checks"]] == ["data_disk", "memory_usage"]
    body = json.loads(cli("health", "--checks", "process_health,disk_space", "--json").stdout)
    assert [c["name"] for c in body["checks"]] == ["cpu_usage", "memory_usage", "data_disk"]


def test_cpu_and_memory_checks_measure_this_host(cli: Cli) -> None:
    body = json.loads(cli("health", "--checks", "cpu_usage,memory_usage", "--json").stdout)
    cpu, memory = body["checks"]
    assert cpu["name"] == "cpu_usage" and re.match(
        r"CPU \d+% busy over 0\.2 s on \d+ core", cpu["detail"]
    )
    assert memory["name"] == "memory_usage"
    assert re.match(r"memory \d+% used, .+ available; backwatch uses ", memory["detail"])
    assert cpu["status"] in ("ok", "warning") and memory["status"] in ("ok", "warning", "critical")
    everything = json.loads(cli("health", "--json").stdout)
    assert {"cpu_usage", "memory_usage"} <= {c["name"] for c in everything["checks"]}


@pytest.mark.parametrize(
    ("percent", "status"), [(12.0, "ok"), (79.9, "ok"), (80.0, "warning"), (100.0, "warning")]
)
def test_cpu_thresholds_are_seed_003s(percent: float, status: str) -> None:
    found = judge_cpu(percent, (1.5, 1.0, 0.5), 4)
    assert found.status == status and f"CPU {percent:.0f}% busy" in found.detail
    assert "load average 1.50, 1.00, 0.50" in found.detail
    assert (found.fix is None) == (status == "ok")


@pytest.mark.parametrize(
    ("available_percent", "status"),
    [(60, "ok"), (21, "ok"), (20, "warning"), (6, "warning"), (5, "critical"), (0, "critical")],
)
def test_memory_thresholds_are_seed_003s(available_percent: int, status: str) -> None:
    total = 8 * 2**30
    found = judge_memory(total, total * available_percent // 100, 80 * 2**20)
    assert found.status == status, found
    assert f"memory {100 - available_percent}% used" in found.detail
    assert found.detail.endswith("backwatch uses 80.0 MB")


def test_output_and_operation_type_that_mean_nothing_here_name_the_spelling(cli: Cli) -> None:
    result = cli("health", "--output", "yaml", code=1)
    assert (
        result.stderr.strip()
        == "error: --output 'yaml': use --json for JSON (a table is the default)"
    )
    result = cli("performance", "--operation-type", "restore", code=1)
    assert "performance analyses backup runs only" in result.stderr
    assert (
        "unknown check 'coffee'" in cli("health", "--checks", "data_disk", "coffee", code=1).stderr
    )


def failed_run_with_an_alert(cli: Cli, data_dir: Path) -> None:
    """A failed run of ``mail``, and the alert rules evaluated (as the server would)."""
    from backwatch.services import alerts
    from backwatch.services.hub import Hub

    cli("push", "--job", "mail", "--status", "failed", "-m", "disk full")
    hub = Hub(make_settings(data_dir, cli.db))
    try:
        hub.write(alerts.evaluate_jobs(hub.settings, time.time(), None, None))
    finally:
        hub.close()


def test_alerts_action_list_is_alerts_list(cli: Cli, tmp_path: Path) -> None:
    failed_run_with_an_alert(cli, tmp_path / "data")
    assert cli("alerts", "--action", "list").stdout == cli("alerts", "list").stdout
    assert "mail" in cli("alerts", "--action", "list").stdout


def test_alerts_action_acknowledge(cli: Cli, tmp_path: Path) -> None:
    failed_run_with_an_alert(cli, tmp_path / "data")
    (alert,) = cli.json("alerts", "list", "--state", "open")
    done = cli("alerts", "--action", "acknowledge", "--alert-id", str(alert["id"]))
    assert done.stdout.strip().endswith("is now acknowledged")
    assert cli.json("alerts", "list", "--state", "open") == []
    missing = cli("alerts", "--action", "acknowledge", code=1)
    assert "needs --alert-id ID: `backwatch alerts ack ID`" in missing.stderr
    wrong = cli("alerts", "--action", "escalate", code=1)
    assert "use `backwatch alerts list`" in wrong.stderr


def test_the_tours_trend_is_never_below_minus_100_percent(cli: Cli) -> None:
    (analysis,) = json.loads(cli("performance", "--period", "24h", "--json").stdout)
    trend = analysis["duration_trend"]
    assert trend["direction"] == "decreasing" and -100 <= trend["change_percent"] < -10
    table = cli("performance", "--period", "24h").stdout
    falls = [int(n) for n in re.findall(r"-(\d+)%", table)]
    assert "decreasing" in table and falls and max(falls) <= 100


def test_health_says_why_it_exits_1(cli: Cli) -> None:
    cli("push", "--job", "mail", "--status", "failed", "-m", "disk full")
    result = cli("health", "--json", code=1)
    json.loads(result.stdout)  # the JSON stays clean; the reason goes to stderr
    assert "jobs_failing: failing" in result.stderr and "mail" in result.stderr


@pytest.mark.timeout(60)  # before the fix it refreshed forever
def test_dashboard_prints_one_snapshot_when_not_a_terminal(cli: Cli) -> None:
    frame = cli("dashboard").stdout  # CliRunner's output is not a terminal
    assert "photos" in frame and "1 ok" in frame


def test_dashboard_in_a_pipe_prints_once_and_exits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'backwatch.db'}"
    pushed = run_cli("push", "--job", "photos", "--status", "success", "--db", db)
    assert pushed.returncode == 0, pushed.stderr
    result = run_cli("dashboard", "--db", db, timeout=60)  # stdout is a pipe
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("backwatch — ") == 1 and "photos" in result.stdout
