"""``serve --log-format json``: every line a real server writes to stderr is a JSON object.

A real ``backwatch serve`` on 127.0.0.1 is made to log requests, an ingest, bad requests, a
ping and an alert; then it is stopped and every line of its stderr is parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import BACKWATCH, free_port, run_cli

REQUIRED = ("time", "level", "logger", "message")


def _request(url: str, body: bytes | None = None, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, _body(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:  # /ping answers text
        return raw.decode()


def _wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "the server wrote nothing to stderr"
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"stderr line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"line {number} is not an object: {line!r}"
        missing = [key for key in REQUIRED if key not in record]
        assert not missing, f"line {number} lacks {missing}: {line!r}"
        assert record["time"].endswith("Z"), record["time"]  # ISO 8601, UTC
        datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        parsed.append(record)
    return parsed


def test_every_stderr_line_of_a_real_serve_is_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "stderr.log"
    env = {**os.environ, "BACKWATCH_DATA_DIR": str(data)}
    env.pop("BACKWATCH_URL", None)
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [*BACKWATCH, "serve", "--port", str(port), "--log-format", "json", "--access-log"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_for(lambda: proc.poll() is None and _request(url + "/livez")[0] == 200, "serve")
        token = _wait_for(lambda: (data / "token").read_text().strip(), "the first token")
        assert _request(url + "/readyz")[0] == 200
        assert _request(url + "/health")[0] == 200
        report = {
            "job": "photos",
            "status": "failed",
            "started_at": "2026-12-07T02:00:00Z",
            "duration_s": 12,
            "message": "repository locked",
        }
        status, run = _request(url + "/api/v1/runs", json.dumps(report).encode(), token)
        assert status == 201, run
        assert _request(url + "/api/v1/runs", b"{not json", token)[0] == 400
        assert _request(url + "/api/v1/runs/no-such-run", token=token)[0] == 404
        wrong = "bw_wrong_token_000000000000"
        assert _request(url + "/api/v1/runs", json.dumps(report).encode(), wrong)[0] == 401
        ping_key = "abcdefghijklmnopqrstuv"  # a key's shape: hidden in the access line
        _request(url + f"/ping/{ping_key}")
        _wait_for(
            lambda: _request(url + "/api/v1/alerts?job=photos", token=token)[1],
            "the failed run's alert",
        )
        time.sleep(0.5)  # the alert's log line is written after its commit
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    text = stderr_path.read_text()
    records = _json_lines(text)
    loggers = {r["logger"] for r in records}
    assert "uvicorn.error" in loggers  # uvicorn's own start and stop lines
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {r["status_code"] for r in access} >= {200, 201, 400, 401, 404}
    assert ping_key not in text
    assert any(r["path"] == "/ping/<ping-key>" for r in access)
    stored = [r for r in records if r.get("run") == run["id"]]
    assert stored and stored[0]["job"] == "photos" and stored[0]["status"] == "failed"
    alerts = [r for r in records if r["logger"] == "backwatch.alerts"]
    assert alerts and alerts[0]["job"] == "photos" and alerts[0]["level"] == "warning"
    assert token not in text


def test_a_bad_config_is_a_json_line_too(tmp_path: Path) -> None:
    bad = tmp_path / "backwatch.toml"
    bad.write_text("[server]\nprot = 1\n")
    result = run_cli(
        "serve", "--config", str(bad), env={"BACKWATCH_LOG_FORMAT": "json"}, cwd=tmp_path
    )
    assert result.returncode == 1
    (record,) = _json_lines(result.stderr)
    assert record["level"] == "critical"
    assert "server.prot" in record["message"]


def test_text_stays_the_default(tmp_path: Path) -> None:
    bad = tmp_path / "backwatch.toml"
    bad.write_text("[server]\nprot = 1\n")
    result = run_cli("serve", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
