"""The ``backwatch`` command against a real ``backwatch serve``, as a user runs both.

Every command here is the real console script in a subprocess (``run_cli``), talking to a
real server on 127.0.0.1 over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, run_cli

#: the sample line of seed 001's README ("Adding Sample Data")
SEED_LINE = (
    '{"timestamp":"2026-01-07T02:00:00-08:00","backup_id":"2026-01-07_020000","success":true,'
    '"duration_total":1265,"duration_snapshot":5,"duration_archive":318,"duration_volumes":485,'
    '"duration_upload":457,"size_bytes":2912345678}'
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No server, token, config or spool from the environment of whoever runs the tests."""
    for name in ("BACKWATCH_URL", "BACKWATCH_TOKEN", "BACKWATCH_CONFIG", "BACKWATCH_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKWATCH_SPOOL_DIR", str(tmp_path / "spool"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the tests that each use their own job names (starting one is slow)."""
    srv = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield srv
    srv.stop()


def jobs_on(server: Server) -> set[str]:
    status, answer = http(server, "GET", "/api/v1/jobs")
    assert status == 200
    return {j["id"] for j in answer["items"]}


def cli(server: Server, *args: str, input: str | None = None, **env: str) -> Any:
    """``backwatch ARGS --url <server>`` with the server's token; asserts no traceback."""
    result = run_cli(
        *args,
        "--url",
        server.url,
        env={"BACKWATCH_TOKEN": server.token, "BACKWATCH_DATA_DIR": str(server.data_dir), **env},
        input=input,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return result


def http(server: Server, method: str, path: str, body: Any = None, token: str | None = None):
    """(status, JSON answer) of one request, the way curl would send it."""
    data = body if body is None or isinstance(body, str) else json.dumps(body)  # str: as-is
    req = urllib.request.Request(
        server.url + path,
        data=None if data is None else data.encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_the_sample_line_is_seed_001s() -> None:
    (seed,) = (ROOT / "tests" / "fixtures" / "seeds").glob("001_*.md")
    assert SEED_LINE in seed.read_text()


# --- Done when: the seed 001 line, three ways, exactly one run -----------------------------


def _send_with_http(server: Server, tmp_path: Path) -> None:
    status, answer = http(server, "POST", "/api/v1/runs", SEED_LINE, token=server.token)
    assert status in (200, 201), answer


def _send_with_push(server: Server, tmp_path: Path) -> None:
    result = ok(cli(server, "push", "--json", "-", input=SEED_LINE + "\n"))
    assert "of job backup" in result.stdout


def _send_with_import(server: Server, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(SEED_LINE + "\n")
    result = ok(cli(server, "import", str(metrics)))
    assert "rejected 0" in result.stdout


SENDERS = {"http": _send_with_http, "push": _send_with_push, "import": _send_with_import}


def test_seed_001_line_three_ways_is_one_run(server: Server, tmp_path: Path) -> None:
    # curl first, as the seed's users do today; push and import first: test_cli_local.py
    for name in SENDERS:
        SENDERS[name](server, tmp_path)

        status, metrics = http(server, "GET", "/api/metrics")
        assert status == 200
        assert [m["backup_id"] for m in metrics] == ["2026-01-07_020000"], name
        assert metrics[0]["success"] is True
        assert metrics[0]["size_bytes"] == 2912345678
        assert metrics[0]["duration_archive"] == 318

        listing = json.loads(ok(cli(server, "status", "--json")).stdout)
        assert [(j["id"], j["runs_total"]) for j in listing["jobs"]] == [("backup", 1)], name
        runs = json.loads(ok(cli(server, "history", "backup", "--json")).stdout)
        assert len(runs) == 1 and runs[0]["backup_id"] == "2026-01-07_020000"
        assert runs[0]["status"] == "success" and runs[0]["duration_s"] == 1265

    second = ok(cli(server, "push", "--json", "-", input=SEED_LINE))
    assert "already recorded" in second.stdout
    again = ok(cli(server, "import", str(tmp_path / "metrics.jsonl")))
    assert "imported 0, already present 1" in again.stdout


# --- push with flags, the start/phase/finish lifecycle ----------------------------------------


def test_push_with_flags_phases_and_log_tail(shared: Server, tmp_path: Path) -> None:
    log = tmp_path / "backup.log"
    lines = [f"line {i:06d} " + "x" * 50 for i in range(4000)]  # ~250 KB
    log.write_text("\n".join(lines) + "\n")
    result = ok(
        cli(
            shared,
            "push",
            "--job", "photos",
            "--status", "warning",
            "--duration", "312.5",
            "--size", "1073741824",
            "--files", "1200",
            "--exit-code", "3",
            "--phase", "snapshot=5",
            "--phase", "upload=7.5",
            "--log-file", str(log),
            "--message", "partial backup",
            "--tool", "restic",
            "--id", "photos-run-1",
        )
    )  # fmt: skip
    assert "recorded run photos-run-1 of job photos (warning)" in result.stdout

    status, run = http(shared, "GET", "/api/v1/runs/photos-run-1")
    assert status == 200
    assert run["status"] == "warning" and run["exit_code"] == 3
    assert run["duration_s"] == 312.5 and run["size_bytes"] == 1073741824
    assert run["files"] == 1200 and run["tool"] == "restic"
    assert run["message"] == "partial backup"
    assert {p["name"]: p["duration_s"] for p in run["phases"]} == {"snapshot": 5, "upload": 7.5}
    assert 90 * 1024 < len(run["log"].encode()) <= 100 * 1024
    assert run["log"].rstrip().endswith(lines[-1])
    assert lines[0] not in run["log"]

    again = ok(cli(shared, "push", "--job", "photos", "--id", "photos-run-1", "--duration", "1"))
    assert "already recorded" in again.stdout
    assert len(json.loads(ok(cli(shared, "history", "photos", "--json")).stdout)) == 1


def test_start_phase_finish(shared: Server, tmp_path: Path) -> None:
    run_id = ok(cli(shared, "start", "nightly", "-m", "dumping")).stdout.strip()
    assert run_id and "\n" not in run_id
    _, run = http(shared, "GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "running"

    ok(cli(shared, "phase", run_id, "dump", "--start"))
    ok(cli(shared, "phase", run_id, "dump", "--end"))
    ok(cli(shared, "phase", run_id, "upload", "--duration", "4.5"))
    log = tmp_path / "run.log"
    log.write_text("all good\n")
    done = ok(
        cli(shared, "finish", run_id, "--size", "4096", "--files", "3", "--log-file", str(log))
    )
    assert f"run {run_id} of job nightly finished: success" in done.stdout

    _, run = http(shared, "GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "success" and run["size_bytes"] == 4096 and run["files"] == 3
    assert [p["name"] for p in run["phases"]] == ["dump", "upload"]
    assert "all good" in run["log"]
    assert [e["to_state"] for e in run["events"]] == ["running", "success"]

    again = cli(shared, "finish", run_id, "--status", "failed", BACKWATCH_SPOOL="0")
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "already finished" in again.stderr
    _, run = http(shared, "GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "success"  # unchanged


# --- listings -------------------------------------------------------------------------------


def test_listings_with_and_without_json(shared: Server) -> None:
    ok(cli(shared, "push", "--job", "docs", "--duration", "60", "--size", "2048"))
    ok(cli(shared, "push", "--job", "mail", "--status", "failed", "--exit-code", "2"))

    table = ok(cli(shared, "list")).stdout
    assert "docs" in table and "mail" in table and "failing" in table
    jobs = {j["id"]: j for j in json.loads(ok(cli(shared, "list", "--json")).stdout)}
    assert jobs["docs"]["health"] == "ok" and jobs["mail"]["health"] == "failing"
    assert jobs["docs"]["last_run"]["size_bytes"] == 2048

    overview = ok(cli(shared, "status")).stdout
    assert "last 30 days:" in overview and "docs" in overview and "mail" in overview
    summary = json.loads(ok(cli(shared, "status", "--json")).stdout)
    assert summary["summary"]["jobs"]["mail"]["failed"] == 1
    assert {"docs", "mail"} <= {j["id"] for j in summary["jobs"]}

    one = ok(cli(shared, "status", "docs")).stdout
    assert "job docs" in one and "ping URL" in one and "recent runs" in one
    detail = json.loads(ok(cli(shared, "status", "docs", "--json")).stdout)
    assert detail["job"]["id"] == "docs" and len(detail["runs"]) == 1

    history = ok(cli(shared, "history", "mail")).stdout
    assert "history of mail" in history and "failed" in history
    runs = json.loads(ok(cli(shared, "history", "mail", "--json")).stdout)
    assert [r["exit_code"] for r in runs] == [2]
    only_ok = ok(cli(shared, "history", "mail", "--status", "success", "--json"))
    assert json.loads(only_ok.stdout) == []
    recent = ok(cli(shared, "history", "mail", "--since", "1h", "--json"))
    assert len(json.loads(recent.stdout)) == 1


# --- tokens against a running server -------------------------------------------------------


def test_token_create_list_revoke(shared: Server) -> None:
    data = ["--data-dir", str(shared.data_dir)]
    created = ok(run_cli("token", "create", "--name", "host1", *data))
    secret = created.stdout.strip()
    assert secret and "\n" not in secret
    assert "shown only this once" in created.stderr

    pushed = run_cli("push", "--job", "tokens", "--url", shared.url, "--token", secret)
    assert pushed.returncode == 0, pushed.stderr

    listing = ok(run_cli("token", "list", *data)).stdout
    assert "host1" in listing and secret not in listing
    items = json.loads(ok(run_cli("token", "list", "--json", *data)).stdout)
    assert secret not in json.dumps(items)
    host1 = next(i for i in items if i["name"] == "host1")
    assert host1["scope"] == "ingest" and host1["revoked_at"] is None

    ok(run_cli("token", "revoke", "host1", *data))
    items = json.loads(ok(run_cli("token", "list", "--json", *data)).stdout)
    assert next(i for i in items if i["name"] == "host1")["revoked_at"] is not None

    # A running server stops taking it within a few seconds (its token cache expires).
    deadline = time.monotonic() + 15
    while True:
        refused = run_cli(
            "push", "--job", "tokens", "--url", shared.url, "--token", secret,
            env={"BACKWATCH_SPOOL": "0"},
        )  # fmt: skip
        if refused.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert refused.returncode == 1, "the revoked token is still accepted"
    assert refused.stderr.startswith("error: ") and "token" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_wrong_token(shared: Server, tmp_path: Path) -> None:
    # with spooling on (the default): a refused token is an error at the terminal, and
    # nothing is kept for later either
    spool_dir = tmp_path / "spool"
    result = cli(
        shared, "push", "--job", "wrongtok", "--token", "bw_wrong",
        BACKWATCH_SPOOL_DIR=str(spool_dir),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "token" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "wrongtok" not in jobs_on(shared)  # nothing stored
    assert not list(spool_dir.glob("*.json"))


def test_bad_input_over_http_stores_nothing(shared: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"job": "badjob", "status": "success", "duration_s": -4, "started_at": 1}')
    for args in (
        ["push", "--json", str(bad)],
        ["push", "--job", "Not A Slug"],
        ["push", "--job", "badjob", "--status", "exploded"],
        ["finish", "no-such-run"],
        ["status", "no-such-job"],
        ["history", "no-such-job"],
    ):
        result = cli(shared, *args, BACKWATCH_SPOOL="0")
        assert result.returncode == 1, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
    assert "badjob" not in jobs_on(shared)

    wrong_path = run_cli("list", "--url", shared.url + "/nope")
    assert wrong_path.returncode == 1
    assert "error: " in wrong_path.stderr and "base URL" in wrong_path.stderr
