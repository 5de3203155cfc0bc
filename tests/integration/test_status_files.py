"""Seed 000 status files: ``serve`` keeps <data>/status/<job>_status.json current (atomic
writes), and turns status files written by scripts in [ingest] status_dirs into runs."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from backwatch.services.hub import Hub
from backwatch.services.runs import record_report, start_run, update_status
from backwatch.services.status_files import StatusFileWriter
from tests.conftest import ROOT, Server, make_settings, need_tool
from tests.integration.test_jsonl_tail import runs, settle, wait_for_runs

SHELL_LIB = ROOT / "src" / "backwatch" / "shell" / "backwatch.sh"
SEED000_FIELDS = [
    "service", "description", "backup_path", "status", "start_time", "end_time",
    "duration_seconds", "files_processed", "total_size_bytes", "message", "hostname",
]  # fmt: skip


def post(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def wait_for_file(path: Path, **expected: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            doc = json.loads(path.read_text())
            if all(doc.get(k) == v for k, v in expected.items()):
                return doc
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never showed {expected}; last: {doc}")


def test_serve_keeps_a_status_file_per_job(server: Server) -> None:
    path = server.data_dir / "status" / "plex_status.json"
    started = post(
        server,
        "/api/v1/runs/start",
        {"job": "plex", "host": "media-server", "started_at": "2025-06-18T06:00:00Z"},
    )
    doc = wait_for_file(path, status="running")
    assert list(doc)[: len(SEED000_FIELDS)] == SEED000_FIELDS
    assert doc["end_time"] is None
    post(server, f"/api/v1/runs/{started['id']}/files", {"path": "/srv/a.db", "size": 1000})
    post(
        server,
        f"/api/v1/runs/{started['id']}/finish",
        {
            "status": "success",
            "finished_at": "2025-06-18T06:05:30Z",
            "message": "Backup completed successfully",
        },
    )
    doc = wait_for_file(path, status="success")
    assert doc["service"] == "plex"
    assert doc["duration_seconds"] == 330
    assert doc["files_processed"] == 1
    assert doc["total_size_bytes"] == 1000
    assert doc["message"] == "Backup completed successfully"
    assert doc["hostname"] == "media-server"
    assert doc["run_id"] == started["id"]
    start = doc["start_time"]
    assert start.endswith(("+00:00", "Z")) or start[-6] in "+-"  # local time with offset
    assert doc["end_time"] is not None
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp files left behind


def test_status_file_is_never_seen_half_written(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with Hub(settings) as hub:
        writer = StatusFileWriter(hub, settle_s=0.0, cpu_share=1.0)  # rewrite at once
        writer.start()
        path = writer.directory / "big_status.json"
        from backwatch.domain.lifecycle import RunStatus
        from backwatch.domain.report import RunReport

        now = time.time()
        report = RunReport(job="big", status=RunStatus.RUNNING, started_at=now, id="r1")
        hub.write(start_run(report, now))
        wait_for_file(path, status="running")
        problems: list[str] = []
        reads = 0
        stop = threading.Event()

        def reader() -> None:
            nonlocal reads
            while not stop.is_set():
                try:
                    text = path.read_text()
                    json.loads(text)
                    reads += 1
                except (ValueError, FileNotFoundError) as exc:
                    problems.append(repr(exc))

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for i in range(200):  # messages of changing length: the file shrinks and grows
                hub.write(update_status("r1", now, message="x" * (i * 37 % 3000)))
        finally:
            stop.set()
            thread.join()
            writer.stop()
        assert problems == []
        assert reads > 50
        assert writer.files_written > 20  # the reader really raced many rewrites
        assert json.loads(path.read_text())["message"] == "x" * (199 * 37 % 3000)


def test_bursts_are_coalesced(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with Hub(settings) as hub:
        writer = StatusFileWriter(hub, settle_s=0.5)
        writer.start()
        from backwatch.domain.lifecycle import RunStatus
        from backwatch.domain.report import RunReport

        now = time.time()
        for i in range(150):
            report = RunReport(
                job="busy", status=RunStatus.SUCCESS, started_at=now + i, finished_at=now + i
            )
            hub.write(record_report(report, now))
        writer.stop()
        doc = json.loads((writer.directory / "busy_status.json").read_text())
        assert doc["status"] == "success"
        assert doc["start_time"] is not None
        assert writer.files_written < 50  # 150 changes, far fewer writes


def iso(ts: float, offset_hours: int = 0) -> str:
    """Like seed 000: local time with its offset."""
    from datetime import datetime, timedelta, timezone

    zone = timezone(timedelta(hours=offset_hours))
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def utc(ts: float) -> str:
    return iso(ts).replace("+00:00", "Z")


DAY_1 = int(time.time() // 86400 - 2) * 86400 + 6 * 3600  # two days ago, 06:00 UTC
DAY_2 = DAY_1 + 86400


def write_status(directory: Path, service: str, **fields: Any) -> None:
    """What a seed 000 script does: replace <service>_status.json."""
    doc = {
        "service": service,
        "description": f"{service} backup",
        "backup_path": f"/mnt/backups/{service}",
        "status": "running",
        "start_time": iso(DAY_1, -4),
        "end_time": None,
        "duration_seconds": 0,
        "files_processed": 0,
        "total_size_bytes": 0,
        "message": "Backup started",
        "hostname": "media-server",
    }
    doc.update(fields)
    tmp = directory / f".{service}.tmp"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, directory / f"{service}_status.json")


def test_status_dir_running_then_success_is_one_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    config = tmp_path / "backwatch.toml"
    # <data>/status is listed too: serve's own files must not come back as runs
    config.write_text(f'[ingest]\nstatus_dirs = ["{metrics}", "{data / "status"}"]\n')
    srv = Server(data, env={"BACKWATCH_CONFIG": str(config)}).start()
    try:
        write_status(metrics, "immich")
        (run,) = wait_for_runs(srv, "immich", 1)
        assert run["status"] == "running"
        assert run["source"] == "status-file"
        write_status(metrics, "immich", status="running", message="Copying photos")
        write_status(
            metrics,
            "immich",
            status="success",
            end_time=iso(DAY_1 + 330, -4),
            duration_seconds=330,
            files_processed=3,
            total_size_bytes="1073741824",  # shell scripts write numbers as text too
            message="Backup completed successfully",
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and runs(srv, "immich")[0]["status"] == "running":
            time.sleep(0.1)
        (run,) = settle(srv, "immich", 1)
        assert run["status"] == "success"
        assert run["started_at"] == utc(DAY_1)
        assert run["finished_at"] == utc(DAY_1 + 330)
        assert run["duration_s"] == 330
        assert run["files"] == 3
        assert run["size_bytes"] == 1073741824
        assert run["message"] == "Backup completed successfully"
        assert run["host"] == "media-server"
        with urllib.request.urlopen(f"{srv.url}/api/v1/jobs/immich", timeout=5) as resp:
            job = json.loads(resp.read())
        assert job["description"] == "immich backup"
        assert job["backup_path"] == "/mnt/backups/immich"

        srv.stop()
        srv.start()  # reading the same files again changes nothing
        (again,) = settle(srv, "immich", 1)
        assert again["id"] == run["id"] and again["status"] == "success"

        # the next night is a new run; a finished file seen for the first time is one too
        write_status(metrics, "immich", start_time=iso(DAY_2, -4))
        write_status(
            metrics,
            "docker",
            status="failed",
            start_time=utc(DAY_2 + 3600),
            end_time=utc(DAY_2 + 3660),
            message="disk full",
        )
        assert [r["status"] for r in wait_for_runs(srv, "immich", 2)] == ["success", "running"]
        (failed,) = wait_for_runs(srv, "docker", 1)
        assert failed["status"] == "failed" and failed["message"] == "disk full"

        (metrics / "broken_status.json").write_text('{"service": "broken", "status": ')
        (metrics / "odd_status.json").write_text(json.dumps({"service": "odd", "status": "meh"}))
        write_status(metrics, "ancient", start_time="2020-01-01T00:00:00Z", status="success")
        time.sleep(2.5)
        log = srv.log.read_text()
        assert f"{metrics / 'broken_status.json'}: skipped: not valid JSON" in log
        assert f"{metrics / 'odd_status.json'}: skipped: status: unknown status 'meh'" in log
        assert "is where serve writes its own status files" in log
        assert "Traceback" not in log
        assert runs(srv, "ancient") == []  # older than retention: it would be pruned anyway
        # serve's own status files (listed in status_dirs above) did not become runs
        for job in ("immich", "docker"):
            assert all(r["source"] == "status-file" for r in runs(srv, job))
        assert len(runs(srv, "immich")) == 2

        # the shell library reports over HTTP *and* writes a status file in a watched
        # folder: still one run
        script = (
            f'source "{SHELL_LIB}"; metrics_backup_start shellsvc "Shell job" /srv; sleep 1.5; '
            "metrics_file_backup_complete /srv/a 1024 success; "
            'metrics_backup_complete success "done"'
        )
        env = {**os.environ, "METRICS_DIR": str(metrics), "BACKWATCH_URL": srv.url}
        env.update(BACKWATCH_TOKEN=srv.token, BACKWATCH_SPOOL_DIR=str(tmp_path / "spool"))
        subprocess.run([need_tool("bash"), "-c", script], env=env, check=True, timeout=30)
        (shell_run,) = settle(srv, "shellsvc", 1)
        assert (shell_run["status"], shell_run["files"]) == ("success", 1)
    finally:
        srv.stop()
