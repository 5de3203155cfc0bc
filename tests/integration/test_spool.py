"""Nothing lost, nothing doubled (issue 3): reports sent while the server is down wait in
the spool and reach it exactly once, in order, with the times they were made — through the
shell library and through ``backwatch push``, delivered by a later call or by
``backwatch spool flush``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import need_tool, run_cli
from tests.integration.test_shell_lib import (
    ServerApi,
    epoch,
    lib_env,
    run_bash,
    spooled,
    status_file,
)

REPORTS = 100


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_tool("bash")
    need_tool("curl")


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"metrics": tmp_path / "metrics", "spool": tmp_path / "spool"}


def flush(server, spool: Path, *extra: str):
    return run_cli(
        "spool", "flush", "--dir", str(spool), "--url", server.url, "--token", server.token,
        *extra,
    )  # fmt: skip


# Each backup prints "<index> <time before start> <time after complete>".
OFFLINE_BACKUPS = r"""
for ((i = 0; i < $1; i++)); do
  before=$EPOCHREALTIME
  metrics_backup_start "offline" "backup $i" "/srv/offline"
  metrics_file_backup_complete "/srv/offline/part-$i.tar" "$((1000 + i))" success
  metrics_backup_complete success "backup $i done"
  echo "$i $before $EPOCHREALTIME"
done
"""


def windows(stdout: bytes) -> list[tuple[float, float]]:
    rows = [line.split() for line in stdout.decode().splitlines()]
    return [(float(before), float(after)) for _, before, after in rows]


def check_runs(runs: list[dict], made: list[tuple[float, float]], message: str) -> None:
    """Exactly one run per report, in the order they were made, with their own times."""
    assert len(runs) == len(made)
    for i, (run, (before, after)) in enumerate(zip(runs, made, strict=True)):
        assert run["message"] == message.format(i=i), (i, run)
        assert run["status"] == "success"
        started, finished = epoch(run["started_at"]), epoch(run["finished_at"])
        assert before - 0.002 <= started <= finished <= after + 0.002, (i, run, before, after)


def test_hundred_shell_reports_while_the_server_is_down_arrive_once_in_order(server, dirs):
    api = ServerApi(server.url, server.token)
    server.stop()
    proc = run_bash(OFFLINE_BACKUPS, lib_env(dirs, server), str(REPORTS))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(b"cannot reach") == 1  # said once, not 300 times
    made = windows(proc.stdout)
    assert len(spooled(dirs)) == 3 * REPORTS
    replay = dirs["spool"].parent / "replay"
    shutil.copytree(dirs["spool"], replay)

    server.start()
    done = flush(server, dirs["spool"])
    assert done.returncode == 0, done.stderr
    assert f"delivered {3 * REPORTS}, rejected 0, remaining 0" in done.stdout
    assert spooled(dirs) == []
    runs = api.runs("offline")
    check_runs(runs, made, "backup {i} done")
    assert [r["size_bytes"] for r in runs] == [1000 + i for i in range(REPORTS)]
    assert {r["files"] for r in runs} == {1}

    # Delivering the same entries again (a flush that died before deleting them) stores
    # nothing twice: starts are idempotent on their ids, finished runs refuse more.
    for entry in replay.glob("*.json"):
        shutil.copy(entry, dirs["spool"] / entry.name)
    again = flush(server, dirs["spool"], "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["delivered"] == 3 * REPORTS
    assert api.runs("offline") == runs


def test_a_later_library_call_delivers_the_spool_first(server, dirs):
    api = ServerApi(server.url, server.token)
    server.stop()
    down = run_bash(OFFLINE_BACKUPS, lib_env(dirs, server), "3")
    assert down.returncode == 0, down.stderr
    assert len(spooled(dirs)) == 9
    server.start()
    # The next backup's first call delivers what waits, then its own reports follow.
    up = run_bash(OFFLINE_BACKUPS, lib_env(dirs, server), "1")
    assert up.returncode == 0, up.stderr
    assert up.stderr == b""
    assert spooled(dirs) == []
    made = windows(down.stdout) + windows(up.stdout)
    runs = api.runs("offline")
    assert [r["message"] for r in runs] == [f"backup {i} done" for i in (0, 1, 2, 0)]
    for run, (before, after) in zip(runs, made, strict=True):
        assert before - 0.002 <= epoch(run["started_at"]) <= after + 0.002
    assert status_file(dirs, "offline")["status"] == "success"


def test_push_to_a_dead_server_spools_exits_0_and_flush_delivers_once(server, tmp_path):
    """``backwatch push`` with the server down: says it spooled, exits 0; ``spool flush``
    delivers each report exactly once (100 pushes, in-process; one as a real process)."""
    import time

    from typer.testing import CliRunner

    from backwatch.cli import app

    spool = tmp_path / "spool"
    env = {
        "BACKWATCH_URL": server.url,
        "BACKWATCH_TOKEN": server.token,
        "BACKWATCH_SPOOL_DIR": str(spool),
    }
    api = ServerApi(server.url, server.token)
    server.stop()

    real = run_cli("push", "--job", "pushed", "--duration", "1", "-m", "push 0", env=env)
    assert real.returncode == 0, real.stderr
    assert "spooled (server unreachable) run" in real.stdout
    assert "backwatch spool flush" in real.stderr
    made = [(time.time() - 1.5, time.time())]

    runner = CliRunner()
    for i in range(1, REPORTS):
        before = time.time()
        result = runner.invoke(
            app, ["push", "--job", "pushed", "--duration", "0.5", "-m", f"push {i}"], env=env
        )
        assert result.exit_code == 0, result.output
        made.append((before - 0.5, time.time()))
    entries = sorted(spool.glob("*.json"))
    assert len(entries) == REPORTS
    assert all(json.loads(e.read_text())["body"]["id"] for e in entries)  # client-made ids

    listing = run_cli("spool", "list", "--dir", str(spool), "--json")
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)["pending"]) == REPORTS

    server.start()
    done = flush(server, spool)
    assert done.returncode == 0, done.stderr
    assert f"delivered {REPORTS}, rejected 0, remaining 0" in done.stdout
    check_runs(api.runs("pushed"), made, "push {i}")
    assert flush(server, spool).stdout.startswith("delivered 0,")
    assert len(api.runs("pushed")) == REPORTS


def test_flush_reports_what_remains_while_the_server_is_still_down(server, dirs):
    server.stop()
    run_bash(OFFLINE_BACKUPS, lib_env(dirs, server), "2")
    result = flush(server, dirs["spool"])
    assert result.returncode == 1
    assert "delivered 0, rejected 0, remaining 6" in result.stdout
    assert "cannot reach" in result.stderr
    assert len(spooled(dirs)) == 6
    missing_url = run_cli("spool", "flush", "--dir", str(dirs["spool"]), env={"BACKWATCH_URL": ""})
    assert missing_url.returncode == 2
    assert "give --url" in missing_url.stderr
