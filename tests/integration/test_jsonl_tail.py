"""``serve`` tails <data>/metrics.jsonl (seed 001) and [ingest] jsonl_files: lines become
runs within seconds, restarts neither re-import nor skip, rotation and truncation are
followed, bad lines are reported with file:line and skipped."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from backwatch.timeutil import parse_time
from tests.conftest import Server

DEADLINE_S = 5.0


def runs(server: Server, job: str) -> list[dict[str, Any]]:
    url = f"{server.url}/api/v1/runs?job={job}&limit=500"
    with urllib.request.urlopen(url, timeout=5) as resp:
        items: list[dict[str, Any]] = json.loads(resp.read())["items"]
    return sorted(items, key=lambda r: parse_time(r["started_at"]))


def wait_for_runs(server: Server, job: str, count: int) -> list[dict[str, Any]]:
    """Poll the API until ``job`` has ``count`` runs (fails after DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = runs(server, job)
        if len(found) >= count:
            break
        time.sleep(0.1)
    assert len(found) == count, f"expected {count} runs of {job}, found {len(found)}"
    return found


def settle(server: Server, job: str, count: int) -> list[dict[str, Any]]:
    """Wait for ``count`` runs, then give the tail a few more polls to (wrongly) add any."""
    wait_for_runs(server, job, count)
    time.sleep(1.0)  # two more polls of the tail
    return wait_for_runs(server, job, count)


def native(job: str, n: int, **extra: Any) -> str:
    """A native report without id: importing it twice would store it twice."""
    body = {"message": f"line {n}", "job": job, "status": "success"}
    body["started_at"] = 1_780_000_000 + n * 60
    body.update(extra)
    return json.dumps(body) + "\n"


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def messages(found: list[dict[str, Any]]) -> list[str]:
    return [r["message"] for r in found]


def test_seed001_line_is_ingested_while_serving(server: Server) -> None:
    path = server.data_dir / "metrics.jsonl"
    assert not path.exists()  # created lazily by the backup script, not by serve
    time.sleep(0.6)
    line = {
        "timestamp": "2026-01-07T02:00:00-08:00",
        "backup_id": "2026-01-07_020000",
        "success": True,
        "duration_total": 1265,
        "duration_snapshot": 5,
        "duration_archive": 318,
        "duration_volumes": 485,
        "duration_upload": 457,
        "size_bytes": 2912345678,
    }
    append(path, json.dumps(line) + "\n")
    (run,) = wait_for_runs(server, "backup", 1)
    assert run["source"] == "jsonl"
    assert run["status"] == "success"
    assert run["backup_id"] == "2026-01-07_020000"
    assert run["started_at"] == "2026-01-07T10:00:00Z"
    assert run["duration_s"] == 1265
    assert run["size_bytes"] == 2912345678
    with urllib.request.urlopen(f"{server.url}/api/v1/runs/{run['id']}", timeout=5) as resp:
        detail = json.loads(resp.read())
    assert [(p["name"], p["duration_s"]) for p in detail["phases"]] == [
        ("snapshot", 5),
        ("archive", 318),
        ("volumes", 485),
        ("upload", 457),
    ]


def test_restart_neither_reimports_nor_skips(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    path = srv.data_dir / "metrics.jsonl"
    try:
        append(path, "".join(native("nightly", n) for n in range(3)))
        settle(srv, "nightly", 3)
        srv.stop()
        # written while the server is down, plus a line whose writer is not done yet
        append(path, native("nightly", 3) + native("nightly", 4))
        partial = native("nightly", 5)
        append(path, partial[:20])
        srv.start()
        found = settle(srv, "nightly", 5)
        assert messages(found) == [f"line {n}" for n in range(5)]
        append(path, partial[20:])  # the line is complete now
        found = settle(srv, "nightly", 6)
        assert messages(found) == [f"line {n}" for n in range(6)]
        srv.stop()
        srv.start()  # nothing new: a second restart adds nothing
        assert messages(settle(srv, "nightly", 6)) == [f"line {n}" for n in range(6)]
    finally:
        srv.stop()


def test_rotation_reads_old_rest_then_new_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    extra = tmp_path / "logs" / "backups.jsonl"
    extra.parent.mkdir()
    config = tmp_path / "backwatch.toml"
    config.write_text('[ingest]\njsonl_files = ["logs/backups.jsonl"]\n')  # relative to config
    srv = Server(data, env={"BACKWATCH_CONFIG": str(config)}).start()
    try:
        append(extra, native("rot", 0) + native("rot", 1))
        settle(srv, "rot", 2)
        os.rename(extra, extra.with_name("backups.jsonl.1"))
        # the writer still had the old file open: this line lands in the rotated file
        append(extra.with_name("backups.jsonl.1"), native("rot", 2))
        append(extra, native("rot", 3))
        found = settle(srv, "rot", 4)
        assert messages(found) == [f"line {n}" for n in range(4)]
        append(extra, native("rot", 4))
        assert messages(settle(srv, "rot", 5)) == [f"line {n}" for n in range(5)]
    finally:
        srv.stop()


@pytest.mark.parametrize("longer", [False, True], ids=["shorter", "rewritten-longer"])
def test_truncation_reads_from_the_start(server: Server, longer: bool) -> None:
    path = server.data_dir / "metrics.jsonl"
    append(path, native("trunc", 0) + native("trunc", 1))
    settle(server, "trunc", 2)
    # copytruncate: same inode, emptied, then written again (here past the old offset)
    count = 4 if longer else 1
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write("".join(native("trunc", 10 + n) for n in range(count)).encode())
    found = settle(server, "trunc", 2 + count)
    assert messages(found) == ["line 0", "line 1"] + [f"line {10 + n}" for n in range(count)]


def test_bad_lines_are_reported_and_skipped(server: Server) -> None:
    path = server.data_dir / "metrics.jsonl"
    append(path, native("bad", 0))
    append(path, "this is not json\n")
    append(path, '{"timestamp": "yesterday", "backup_id": "x", "success": true}\n')
    append(path, b"\xff\xfe not utf-8\n")
    append(path, "\n")
    append(path, native("bad", 5))
    found = settle(server, "bad", 2)
    assert messages(found) == ["line 0", "line 5"]
    log = server.log.read_text()
    assert f"{path}:2: skipped: not valid JSON" in log
    assert f"{path}:3: skipped: " in log and "timestamp" in log.split(f"{path}:3:")[1]
    assert f"{path}:4: skipped: not UTF-8 text" in log
    assert f"{path}:5:" not in log  # an empty line is not an error
    assert "Traceback" not in log
