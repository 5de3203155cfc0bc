"""``backwatch wrap JOB -- CMD…``: the real command wrapping real processes.

The wrapped command's exit code is the one that matters to cron and systemd, so every test
checks it first; then what was recorded, over HTTP (a real server) or in the database.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, free_port, run_cli


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("BACKWATCH_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = Server(tmp_path_factory.mktemp("wrap") / "data").start()
    yield srv
    srv.stop()


def wrap(server: Server, job: str, *command: str, opts: tuple[str, ...] = ()) -> Any:
    result = run_cli(
        "wrap", "--url", server.url, "--token", server.token, *opts, job, "--", *command
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def runs_of(server: Server, job: str) -> list[dict[str, Any]]:
    result = run_cli("history", job, "--json", "--url", server.url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def full_run(server: Server, run_id: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/api/v1/runs/{run_id}", timeout=30) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_exit_3_is_a_failed_run_with_exit_code_3(shared: Server) -> None:
    result = wrap(shared, "nightly", "sh", "-c", "exit 3")
    assert result.returncode == 3
    [run] = runs_of(shared, "nightly")
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert run["finished_at"] is not None and run["duration_s"] >= 0


def test_exit_3_with_the_database(tmp_path: Path) -> None:
    db = str(tmp_path / "wrap.db")
    result = run_cli("wrap", "--db", db, "nightly", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stderr == ""
    history = run_cli("history", "nightly", "--json", "--db", db)
    [run] = json.loads(history.stdout)
    assert run["status"] == "failed" and run["exit_code"] == 3 and run["source"] == "cli"


def test_success_and_options_after_the_job(shared: Server) -> None:
    result = run_cli(
        "wrap", "okjob", "--url", shared.url, "--token", shared.token, "--timeout", "1m",
        "--", "sh", "-c", 'echo "args: $*"', "sh", "--url", "x",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "args: --url x\n"  # after --, everything is the command's
    [run] = runs_of(shared, "okjob")
    assert run["status"] == "success" and run["exit_code"] == 0


def test_stdout_and_stderr_stay_apart(shared: Server) -> None:
    result = wrap(shared, "streams", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 1")
    assert result.returncode == 1
    assert result.stdout == "to-stdout\n"
    assert "to-stderr" in result.stderr and "to-stdout" not in result.stderr
    [run] = runs_of(shared, "streams")
    log = full_run(shared, run["id"])["log"]
    assert "to-stdout" in log and "to-stderr" in log


def test_the_log_is_the_last_100_kb(shared: Server) -> None:
    script = "for i in range(6000): print(f'line {i:05d} ' + 'y' * 60)"  # ~420 KB
    result = wrap(shared, "chatty", sys.executable, "-c", script)
    assert result.returncode == 0
    assert result.stdout.count("\n") == 6000  # the terminal still gets all of it
    [run] = runs_of(shared, "chatty")
    log = full_run(shared, run["id"])["log"]
    assert 95 * 1024 <= len(log.encode()) <= 100 * 1024
    assert log.rstrip().endswith("line 05999 " + "y" * 60)
    assert "line 00000 " not in log


def test_the_exit_code_survives_an_unreachable_server(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        "wrap", "--url", dead, "nightly", "--", "sh", "-c", "echo still-ran; exit 5",
        env={"BACKWATCH_SPOOL": "0"},
    )  # fmt: skip
    assert result.returncode == 5
    assert result.stdout == "still-ran\n"
    assert "cannot reach the server" in result.stderr and "Traceback" not in result.stderr

    spooled = run_cli("wrap", "--url", dead, "nightly", "--", "sh", "-c", "exit 6")
    assert spooled.returncode == 6
    assert "Traceback" not in spooled.stderr
    assert list((tmp_path / "spool").glob("*.json"))  # kept for later delivery


def test_a_missing_command_is_127(shared: Server) -> None:
    result = wrap(shared, "missing", "/no/such/backup-command", "--now")
    assert result.returncode == 127
    assert "/no/such/backup-command" in result.stderr
    [run] = runs_of(shared, "missing")
    assert run["status"] == "failed" and run["exit_code"] == 127
    assert "/no/such/backup-command" in run["message"]


def _gone(pid: int) -> bool:
    """The process no longer runs (it may linger as a zombie until init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_timeout_kills_the_whole_process_group(shared: Server, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    result = wrap(shared, "slow", "sh", "-c", script, opts=("--timeout", "1s"))
    assert result.returncode == 124
    assert "timeout" in result.stderr
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _gone(child):
        os.kill(child, 9)  # do not leave it behind
        pytest.fail("the child sleep outlived the timeout")
    [run] = runs_of(shared, "slow")
    assert run["status"] == "timed_out" and run["exit_code"] == 124
