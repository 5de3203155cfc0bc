"""The outcome contract of restic, borg and rsync output (docs/tool-output.md), checked
against real output of every class of run (tests/fixtures/tools/, made by the installed
tools with make_fixtures.py) in the three ways it reaches backwatch:

- ``runner``: ``backwatch run`` of a job whose tool binary replays the recorded output and
  exit code (the runner reads it exactly as it reads the live tool's);
- ``exit-code``: ``backwatch import --format TOOL --exit-code N FILE``;
- ``piped``: ``TOOL … 2>&1 | backwatch import --format TOOL -`` (no exit code).

Each ends with the expected status, kind, verification, figures, message and alert; none
records a failure or warning as a success, and none is refused or dropped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from backwatch.cli import app
from backwatch.cli.target import resolve
from backwatch.services import alerts
from backwatch.services.hub import Hub
from tests.conftest import make_settings
from tests.integration.runner_support import write_config

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tools"
CASES = sorted(FIXTURES.glob("*/*/*.json"))
FIGURES = ("files", "files_new", "files_changed", "size_bytes", "bytes_added")
JOB = "conf"


@cache
def fixture(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def case_id(path: Path) -> str:
    return f"{path.parent.parent.name}-{path.parent.name}-{path.stem}"


def cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def stored_run(db: str, data_dir: Path) -> dict[str, Any] | None:
    tgt = resolve(url=None, token=None, db=db, config=None, data_dir=str(data_dir))
    try:
        items = tgt.list_runs(job=JOB, limit=5)["items"]
    finally:
        tgt.close()
    assert len(items) <= 1, items
    return items[0] if items else None


def open_alerts(db_url: str, data_dir: Path) -> set[str]:
    settings = make_settings(data_dir, db_url)
    with Hub(settings) as hub:
        hub.write(alerts.evaluate_jobs(settings, time.time(), None, None))
        with hub.read_engine.connect() as conn:
            rows = alerts.list_alerts(conn, state="open", job=JOB)
    return {row["rule"] for row in rows}


def check_run(run: dict[str, Any] | None, case: dict[str, Any], status: str) -> None:
    """The stored run against what the fixture says a correct monitor records."""
    expect = case["expect"]
    assert run is not None, "the run was dropped"
    assert run["status"] == status, run["message"]
    assert run["kind"] == expect["kind"]
    assert (run["stats"] or {}).get("verify") == expect["verify"]
    if expect["message_contains"]:
        assert expect["message_contains"].lower() in (run["message"] or "").lower()
    for name in FIGURES:
        assert run[name] == expect["figures"][name], name
    if case["expect"]["status"] != "success":
        assert run["status"] != "success"


def import_case(path: Path, db: str, data_dir: Path, *, with_code: bool) -> Any:
    case = fixture(path)
    tool = case["tool"]
    kind = ["--kind", "check"] if case["expect"]["kind"] == "check" else []
    if with_code:
        src = data_dir.parent / "output.txt"
        src.write_text(case["output"])
        return cli(
            "import", "--format", tool, "--job", JOB, "--exit-code", str(case["exit_code"]),
            *kind, str(src), "--db", db,
        )  # fmt: skip
    return cli(
        "import", "--format", tool, "--job", JOB, *kind, "-", "--db", db, input=case["output"]
    )  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_import_with_the_exit_code(path: Path, tmp_path: Path) -> None:
    case = fixture(path)
    db = str(tmp_path / "data" / "bw.sqlite")
    (tmp_path / "data").mkdir()
    done = import_case(path, db, tmp_path / "data", with_code=True)
    assert done.exit_code == 0, done.output
    run = stored_run(db, tmp_path / "data")
    check_run(run, case, case["expect"]["status"])
    assert run is not None and run["exit_code"] == case["exit_code"]
    stated = run["stats"] and ("total_duration" in run["stats"] or "archive" in run["stats"])
    if not stated:
        assert run["duration_s"] is None, "a duration nobody measured is unknown, not 0"
    rules = open_alerts(f"sqlite:///{db}", tmp_path / "data")
    if case["expect"]["alert"]:
        assert case["expect"]["alert"] in rules
    if case["expect"]["status"] in ("success", "cancelled") and not case["expect"]["alert"]:
        assert not rules & {"failed", "verify_failed", "empty"}, rules


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_import_piped_without_an_exit_code(path: Path, tmp_path: Path) -> None:
    case = fixture(path)
    db = str(tmp_path / "data" / "bw.sqlite")
    (tmp_path / "data").mkdir()
    done = import_case(path, db, tmp_path / "data", with_code=False)
    assert done.exit_code == 0, done.output
    if not case["output"].strip():
        # nothing printed (a passing `borg check`): only the exit code could tell
        run = stored_run(db, tmp_path / "data")
        assert run is not None and run["status"] == "unknown" and run["kind"] == "check"
        assert "no exit code" in run["message"]
        return
    # the output alone says as much as the exit code for every fixture with output
    check_run(stored_run(db, tmp_path / "data"), case, case["expect"]["status"])


def replay_binary(tmp_path: Path) -> Path:
    """A stand-in for the tool: prints the fixture's stdout and stderr, exits with its code."""
    script = tmp_path / "replay"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "case = json.load(open(os.environ['BW_FIXTURE']))\n"
        "sys.stdout.write(case['stdout']); sys.stdout.flush()\n"
        "sys.stderr.write(case['stderr']); sys.stderr.flush()\n"
        "sys.exit(case['exit_code'])\n"
    )
    script.chmod(0o755)
    return script


def job_config(path: Path, tmp_path: Path) -> str:
    case = fixture(path)
    tool, check = case["tool"], case["expect"]["kind"] == "check"
    binary = replay_binary(tmp_path)
    (tmp_path / "pw").write_text("pw\n")
    (tmp_path / "src").mkdir()
    head = f"""
[[jobs]]
id = "{JOB}"
tool = "{tool}"
env = {{BW_FIXTURE = "{path}"}}
actions = ["{"check" if check else "backup"}"]
"""
    if check:
        head += "[jobs.verify]\n"
    if tool == "restic":
        return (
            head
            + f"""
[jobs.restic]
repository = "{tmp_path / "repo"}"
password_file = "{tmp_path / "pw"}"
paths = ["{tmp_path / "src"}"]
binary = "{binary}"
"""
        )
    if tool == "borg":
        return (
            head
            + f"""
[jobs.borg]
repository = "{tmp_path / "repo"}"
paths = ["{tmp_path / "src"}"]
binary = "{binary}"
"""
        )
    return (
        head
        + f"""
[jobs.rsync]
paths = ["{tmp_path / "src"}/"]
destination = "{tmp_path / "dst"}"
binary = "{binary}"
"""
    )


RUNNER_CASES = [p for p in CASES if not p.stem.endswith("_plain") and "_text_" not in p.stem]


@pytest.mark.parametrize("path", RUNNER_CASES, ids=case_id)
def test_the_runner(path: Path, tmp_path: Path) -> None:
    case = fixture(path)
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "bw.toml", data_dir, job_config(path, tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKWATCH_")}
    done = CliRunner().invoke(app, ["run", JOB, "--json", "--config", str(config)], env=env)
    assert done.exit_code != 2, done.output
    db = str(data_dir / "backwatch.db")
    run = stored_run(db, data_dir)
    check_run(run, case, case["expect"]["status"])
    rules = open_alerts(f"sqlite:///{db}", data_dir)
    if case["expect"]["alert"]:
        assert case["expect"]["alert"] in rules


@pytest.mark.parametrize(
    "name",
    [
        "borg/1.2.4/check_corrupt",
        "borg/1.2.4/create_missing_source",
        "restic/0.14.0/wrong_password",
    ],
)
def test_the_same_on_postgresql(name: str, tmp_path: Path, pg_url: str) -> None:
    path = FIXTURES / f"{name}.json"
    case = fixture(path)
    done = import_case(path, pg_url, tmp_path, with_code=True)
    assert done.exit_code == 0, done.output
    check_run(stored_run(pg_url, tmp_path), case, case["expect"]["status"])
    assert case["expect"]["alert"] in open_alerts(pg_url, tmp_path)


DOC = Path(__file__).parents[2] / "docs" / "tool-output.md"
START, END = "<!-- conformance:start -->", "<!-- conformance:end -->"


def conformance_table() -> str:
    """The fixtures and what each must become, as the Markdown table docs/tool-output.md
    shows (the suite above checks every row in three ways)."""
    rows = [
        "| Tool | Version | Case | Exit | Status | Kind | Verify | Alert | Message has |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in CASES:
        case, e = fixture(path), fixture(path)["expect"]
        cells = [
            case["tool"], path.parent.name, path.stem, str(case["exit_code"]), e["status"],
            e["kind"], e["verify"] or "—", e["alert"] or "—", e["message_contains"] or "—",
        ]  # fmt: skip
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def docs_with_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{conformance_table()}\n{END}{tail}"


def test_the_docs_table_is_the_fixtures() -> None:
    text = DOC.read_text()
    assert text == docs_with_table(text), (
        "docs/tool-output.md is out of date: python -m tests.integration.test_tool_conformance"
    )


if __name__ == "__main__":
    DOC.write_text(docs_with_table(DOC.read_text()))
