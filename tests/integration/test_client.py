"""The Python client ``backwatch.client`` against a real server: ``track``, seed 003's
monitor API, and spooling while the server is down (nothing lost, nothing doubled)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backwatch import client as bw
from backwatch.timeutil import parse_time
from tests.conftest import Server


def get(server: Server, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=5) as resp:
        return json.loads(resp.read())


def all_runs(server: Server, job: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"/api/v1/runs?job={job}&limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = get(server, query)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return sorted(items, key=lambda r: parse_time(r["started_at"]))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that leave it running (each uses its own jobs)."""
    srv = Server(tmp_path_factory.mktemp("client") / "data").start()
    yield srv
    srv.stop()


def test_track_records_phases_files_and_messages(shared: Server, spool_dir: Path) -> None:
    before = time.time()
    with bw.track("plex", url=shared.url, token=shared.token, spool_dir=spool_dir) as run:
        with run.phase("archive"):
            time.sleep(0.05)
            run.file("/srv/plex/library.db", 1000)
            run.file(Path('/srv/plex/it\'s "quoted"\n.db'), 24)
        run.update("uploading")
        with run.phase("upload"):
            time.sleep(0.02)
        run.set(files_new=1, bytes_added=512)
    after = time.time()
    stored = get(shared, f"/api/v1/runs/{run.id}")
    assert stored["status"] == "success"
    assert stored["job"] == "plex"
    assert stored["files"] == 2 and stored["size_bytes"] == 1024
    assert stored["files_new"] == 1 and stored["bytes_added"] == 512
    assert stored["message"] == "uploading"
    assert [f["path"] for f in stored["file_records"]] == [
        "/srv/plex/library.db",
        '/srv/plex/it\'s "quoted"\n.db',
    ]
    phases = {p["name"]: p for p in stored["phases"]}
    assert list(phases) == ["archive", "upload"]
    assert phases["archive"]["duration_s"] >= 0.05
    assert phases["upload"]["status"] == "success"
    assert before - 0.01 <= parse_time(stored["started_at"]) <= parse_time(stored["finished_at"])
    assert parse_time(stored["finished_at"]) <= after + 0.01
    assert not bw.spool.pending(spool_dir)


def test_exception_records_failed_run_and_propagates(shared: Server, spool_dir: Path) -> None:
    tracked = bw.track("photos", url=shared.url, token=shared.token, spool_dir=spool_dir)
    with pytest.raises(OSError, match="disk full"), tracked as run, run.phase("archive"):
        raise OSError("disk full")
    stored = get(shared, f"/api/v1/runs/{run.id}")
    assert stored["status"] == "failed"
    assert stored["message"] == "OSError: disk full"
    assert [(p["name"], p["status"]) for p in stored["phases"]] == [("archive", "failed")]


def test_warning_status_and_bad_job_name(shared: Server, spool_dir: Path) -> None:
    with bw.track("db", url=shared.url, token=shared.token, spool_dir=spool_dir) as run:
        run.set(status="warning", message="2 files vanished")
    stored = get(shared, f"/api/v1/runs/{run.id}")
    assert (stored["status"], stored["message"]) == ("warning", "2 files vanished")
    with pytest.raises(ValueError, match="must be a slug"):
        bw.track("Not A Slug", url=shared.url, spool_dir=spool_dir).__enter__()
    with pytest.raises(TypeError, match="unknown figure 'colour'"):
        run.set(colour="red")


def test_seed003_monitor_api(shared: Server, spool_dir: Path) -> None:
    monitor = bw.get_monitor(url=shared.url, token=shared.token, spool_dir=spool_dir)
    assert bw.get_monitor() is monitor
    monitor.start_monitoring()
    operation_id = "my_operation_123"
    monitor.start_operation_tracking(operation_id, "backup")
    result = monitor.end_operation_tracking(
        operation_id, success=True, files_processed=150, bytes_processed=1024 * 1024 * 100
    )
    assert result["duration_seconds"] >= 0
    monitor.start_operation_tracking(operation_id, "backup")  # the same id, the next night
    failed = monitor.end_operation_tracking(operation_id, success=False, error="rsync exit 23")
    found = all_runs(shared, "backup")
    assert [(r["id"], r["status"]) for r in found] == [
        (result["run_id"], "success"),
        (failed["run_id"], "failed"),
    ]
    assert found[0]["files"] == 150 and found[0]["size_bytes"] == 104857600
    assert found[1]["message"] == "rsync exit 23"
    monitor.stop_monitoring()


def test_refused_token_never_breaks_the_caller(
    shared: Server, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with bw.track("lockedout", url=shared.url, token="wrong-token", spool_dir=spool_dir):
        pass  # the server answers 401: an error in the log, not reports spooled for ever
    assert "the server refused the token: the token is not valid" in caplog.text
    assert all_runs(shared, "lockedout") == []
    assert bw.spool.pending(spool_dir) == []


def test_invalid_request_is_logged_not_raised(
    shared: Server, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with bw.track("refused", url=shared.url, token=shared.token, spool_dir=spool_dir) as run:
        run.file("/x", 1, status="success")
        run.set(exit_code=999)  # out of range: the server refuses the finish (422)
    assert "backwatch refused POST" in caplog.text and "exit_code" in caplog.text
    assert not bw.spool.pending(spool_dir)


def test_server_down_100_runs_spooled_then_delivered_once(server: Server, spool_dir: Path) -> None:
    """Issue 3, "Nothing lost, nothing doubled", for the Python client."""
    server.stop()
    sent = []
    for i in range(100):
        with bw.track("nightly", url=server.url, token=server.token, spool_dir=spool_dir) as run:
            with run.phase("dump"):
                pass
            if i % 10 == 9:
                run.set(status="warning")
        sent.append((run.id, run.started_at, run.finished_at, run.status))
    assert len(bw.spool.pending(spool_dir)) == 100 * 2  # start, finish (with its phases)
    server.start()
    result = bw.flush(url=server.url, token=server.token, spool_dir=spool_dir)
    assert (result.delivered, result.remaining, result.rejected) == (200, 0, 0)
    again = bw.flush(url=server.url, token=server.token, spool_dir=spool_dir)
    assert again.delivered == 0
    found = all_runs(server, "nightly")
    assert len(found) == 100
    assert [r["id"] for r in found] == [run_id for run_id, *_ in sent]
    for stored, (_, started, finished, status) in zip(found, sent, strict=True):
        assert abs(parse_time(stored["started_at"]) - started) < 0.002  # client's time
        assert stored["status"] == status
        assert abs(parse_time(stored["finished_at"]) - finished) < 0.002
    # once the server is back, the next run goes straight through
    with bw.track("nightly", url=server.url, token=server.token, spool_dir=spool_dir):
        pass
    assert len(all_runs(server, "nightly")) == 101
    assert not bw.spool.pending(spool_dir)


def test_replaying_a_delivered_spool_changes_nothing(shared: Server, spool_dir: Path) -> None:
    """A spool entry delivered but not removed (crash after send) is harmless."""
    client = bw.Client(shared.url, shared.token, spool_dir=spool_dir)
    run = bw.Run(client, "replay")
    start = {"job": "replay", "id": run.id, "host": run.host, "started_at": "2026-01-01T00:00:00Z"}
    run.finish("success")
    bw.spool.write_entry(spool_dir, "POST", "/api/v1/runs/start", start)
    bw.spool.write_entry(spool_dir, "POST", f"/api/v1/runs/{run.id}/finish", {"status": "failed"})
    result = client.flush()
    assert (result.delivered, result.rejected) == (2, 0)
    (stored,) = all_runs(shared, "replay")
    assert stored["status"] == "success"


def test_importing_the_client_is_cheap() -> None:
    code = (
        "import sys, backwatch.client; "
        "heavy = [m for m in ('sqlalchemy', 'pydantic', 'fastapi', 'urllib.request') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
