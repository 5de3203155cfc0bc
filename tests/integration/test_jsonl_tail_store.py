"""The file watchers on both stores (SQLite and PostgreSQL), driven in-process: the JSONL
read position survives a restart, a status file's running → success is one run."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import select

from backwatch.services.jsonl_tail import JsonlTail
from backwatch.services.status_dirs import StatusDirWatch
from backwatch.store import queries
from backwatch.store import tables as t


def stored_messages(hub, job: str) -> list[str]:
    with hub.read_engine.connect() as conn:
        rows, _ = queries.list_runs(conn, job=job, limit=500)
    return [r["message"] for r in sorted(rows, key=lambda r: r["started_at"])]


def line(n: int) -> str:
    return json.dumps({"job": "tail", "status": "success", "started_at": n, "message": f"{n}"})


def test_offset_is_stored_with_the_runs(hub, tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(line(1_780_000_000 + n) + "\n" for n in range(3)))
    tail = JsonlTail(hub, path)
    tail.poll()
    tail.close()
    with hub.read_engine.connect() as conn:
        state = json.loads(conn.execute(select(t.meta_kv.c.value)).scalar_one())
    assert state["offset"] == path.stat().st_size and state["line"] == 3
    with open(path, "a") as fh:
        fh.write(line(1_780_000_003) + "\n" + line(1_780_000_004)[:10])
    restarted = JsonlTail(hub, path)  # a new process: the position comes from the database
    restarted.poll()
    assert stored_messages(hub, "tail") == [str(1_780_000_000 + n) for n in range(4)]
    with open(path, "a") as fh:
        fh.write(line(1_780_000_004)[10:] + "\n")
    restarted.poll()
    restarted.close()
    assert stored_messages(hub, "tail") == [str(1_780_000_000 + n) for n in range(5)]


def test_many_lines_in_batches_with_bad_ones(hub, tmp_path: Path, caplog) -> None:
    path = tmp_path / "big.jsonl"
    lines = [line(1_780_000_000 + n) for n in range(1200)]
    lines[700] = '{"job": "tail", "status": "success", "started_at": -5}'
    path.write_text("\n".join(lines) + "\n")
    tail = JsonlTail(hub, path)
    while tail.poll():
        pass
    tail.close()
    with hub.read_engine.connect() as conn:
        assert queries.count_runs(conn) == 1199
    assert f"{path}:701: skipped: started_at" in caplog.text


def test_status_file_running_then_success(hub, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    watch = StatusDirWatch(hub, folder, tmp_path / "data" / "status")
    start = time.time() - 600
    doc = {"service": "plex", "status": "running", "start_time": start, "hostname": "nas"}
    (folder / "plex_status.json").write_text(json.dumps(doc))
    watch.poll()
    doc.update(status="success", end_time=start + 330, files_processed="3")
    (folder / "plex_status.json").write_text(json.dumps(doc) + " ")  # another size
    watch.poll()
    StatusDirWatch(hub, folder, tmp_path / "data" / "status").poll()  # after a restart
    with hub.read_engine.connect() as conn:
        rows, _ = queries.list_runs(conn, job="plex")
    assert [(r["status"], r["duration_s"], r["files"], r["host"]) for r in rows] == [
        ("success", 330, 3, "nas")
    ]


def test_status_file_with_run_id_joins_the_reported_run(hub, tmp_path: Path) -> None:
    """The shell library reports over HTTP and writes its status file: one run, not two."""
    from backwatch.domain.lifecycle import RunStatus
    from backwatch.domain.report import RunReport
    from backwatch.services.runs import start_run

    start = time.time() - 600
    report = RunReport(job="plex", status=RunStatus.RUNNING, started_at=start, id="shell-run-1")
    hub.write(start_run(report, start))
    folder = tmp_path / "metrics"
    folder.mkdir()
    doc = {
        "service": "plex",
        "status": "success",
        "start_time": start,
        "end_time": start + 60,
        "run_id": "shell-run-1",
    }
    (folder / "plex_status.json").write_text(json.dumps(doc))
    StatusDirWatch(hub, folder, tmp_path / "data" / "status").poll()
    with hub.read_engine.connect() as conn:
        rows, _ = queries.list_runs(conn, job="plex")
    assert [(r["id"], r["status"], r["duration_s"]) for r in rows] == [
        ("shell-run-1", "success", 60)
    ]
