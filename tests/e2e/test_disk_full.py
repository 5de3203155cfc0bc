"""Issue 14's fault test, "silent when its own disk is full": a real ``backwatch serve``
whose data directory is a small tmpfs that fills up.

Writes are answered 503, ``/readyz`` and ``backwatch health`` say why, and once space is
back the alert reaches a real webhook receiver on 127.0.0.1 and every report that was
answered 201 is there. Needs root (to mount the tmpfs): skipped otherwise, unless
BACKWATCH_REQUIRE_ALL=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, need, run_cli
from tests.integration.test_alerts import Receiver

TMPFS_SIZE = "3m"
#: room left for reports once the filler is written (the rest of the tmpfs is the filler)
ROOM = 768 * 1024
MAX_REPORTS = 400


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    need(os.geteuid() == 0, "mounting a tmpfs needs root")
    mnt = tmp_path / "data"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(mnt)]
    result = subprocess.run(mount, capture_output=True, text=True, timeout=30)
    need(result.returncode == 0, f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def http(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {server.token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_a_full_data_disk_is_reported_and_alerted_once_space_is_back(
    tmpfs: Path, tmp_path: Path, receiver: Receiver
) -> None:
    config = tmp_path / "backwatch.toml"
    config.write_text(
        "[alerts]\ntick_seconds = 1\n"  # the background tick, where backwatch's alerts are
        "data_min_free_mb = 0.25\n"  # the default floor (64 MB) is more than this disk
        f'[[notify]]\nurls = ["{receiver.url}"]\n'
    )
    env = {"BACKWATCH_CONFIG": str(config), "BACKWATCH_SPOOL_DIR": str(tmp_path / "spool")}
    server = Server(tmpfs, env=env)
    for name in [n for n in server.env if n.startswith("BACKWATCH_")]:  # not the user's own
        if name not in (*env, "BACKWATCH_DATA_DIR"):
            del server.env[name]
    server.start()
    try:
        filler = tmpfs / "filler"  # what the user deletes to free space
        with filler.open("wb") as fh:
            fh.write(b"\xff" * max(0, shutil.disk_usage(tmpfs).free - ROOM))
        acknowledged: list[str] = []
        refused = 0
        for i in range(MAX_REPORTS):
            report = {"id": f"fill-{i}", "job": f"job{i % 4}", "status": "success",
                      "started_at": time.time(), "duration_s": 5, "size_bytes": 1000,
                      "message": "x" * 2000}  # fmt: skip
            status, body = http(server, "POST", "/api/v1/runs", report)
            if status == 201:
                acknowledged.append(body["id"])
                continue
            assert status == 503, (status, body)
            assert body["error"]["code"] == "store_unavailable", body
            refused += 1
            if refused >= 5:
                break
        assert acknowledged and refused >= 5, (len(acknowledged), refused)

        status, ready = http(server, "GET", "/readyz")
        assert status == 503, ready
        assert {f["name"] for f in ready["failing"]} == {"data_disk", "writer"}, ready
        assert "database or disk is full" in ready["error"]["message"]
        status, health = http(server, "GET", "/health")
        assert (status, health["status"]) == (503, "error"), health
        result = run_cli(
            "health", "--url", server.url,
            env={**server.env, "BACKWATCH_TOKEN": server.token}, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 1, result
        assert "check(s) critical" in result.stderr and "writer: " in result.stderr
        assert "database or disk is full" in result.stderr, result.stderr

        filler.unlink()  # space is back
        later: list[str] = []

        def stored_again() -> bool:
            report = {"id": f"after-{len(later)}", "job": "job0", "status": "success",
                      "started_at": time.time(), "duration_s": 5}  # fmt: skip
            status, body = http(server, "POST", "/api/v1/runs", report)
            if status == 201:
                later.append(body["id"])
            return len(later) >= 3

        wait_for("reports answered 201 again", stored_again, timeout=30)
        wait_for("/readyz 200", lambda: http(server, "GET", "/readyz")[0] == 200, timeout=30)

        def alerted() -> bool:
            return any(
                m["title"] == "[CRITICAL] _system: writes refused" for m in receiver.messages
            )

        wait_for("the alert at the webhook", alerted, timeout=60)
        alert = next(m for m in receiver.messages if "writes refused" in m["title"])
        assert "database or disk is full" in alert["message"], alert

        for run_id in acknowledged + later:  # nothing acknowledged is lost
            assert http(server, "GET", f"/api/v1/runs/{run_id}")[0] == 200, run_id
        status, health = http(server, "GET", "/health")
        assert status == 200 and health["runs_recorded"] == len(acknowledged) + len(later)
    finally:
        server.stop()
