"""Reporting to a server starts fast: no SQLAlchemy, FastAPI or HTTP library on that path.

Cold start is budgeted (≤ 300 ms, measured in bench/, never timed here); what this test
holds is the cause of a slow start: a heavy library imported where it is not needed (only
the module of the command being run is loaded, ``cli.root.COMMAND_MODULES``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

#: pydantic is not among them: Typer converts every parameter with it
HEAVY = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "alembic", "httpx", "requests")

PROBE = """
import json, sys
sys.argv = ["backwatch", *json.loads(sys.argv[1])]
from backwatch.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


class _Receiver(BaseHTTPRequestHandler):
    """Answers every POST like the server does for a new run."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        answer = {"id": body.get("id") or "r1", "job": body.get("job") or "nightly"}
        answer |= {"status": body.get("status") or "running", "created": True}
        data = json.dumps(answer).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "args",
    [
        ["push", "--job", "nightly", "--duration", "12", "--size", "5", "--phase", "dump=3"],
        ["push", "--json", "-"],
        ["start", "nightly"],
        ["phase", "r1", "dump", "--start"],
        ["finish", "r1", "--status", "failed", "--exit-code", "2"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_reporting_to_a_server_imports_nothing_heavy(
    receiver: ThreadingHTTPServer, tmp_path: Path, args: list[str]
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    seed = '{"timestamp": "2026-01-07T02:00:00Z", "backup_id": "b1", "success": true}'
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*args, "--url", url, "--token", "t"])],
        input=seed,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "BACKWATCH_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0, result.stderr
    loaded = sorted(set(HEAVY) & set(outcome["modules"]))
    assert not loaded, f"`backwatch {' '.join(args)}` imported {loaded}"


def _command_job(tmp_path: Path, command: str) -> Path:
    config = tmp_path / "bw.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[[jobs]]\nid = "nightly"\ntool = "command"\n'
        f"command = {json.dumps(command)}\n"
    )
    return config


@pytest.mark.parametrize("job_last", [False, True], ids=["job first", "after --"])
def test_the_console_script_leaves_with_the_runs_exit_code_and_all_its_output(
    tmp_path: Path, job_last: bool
) -> None:
    """The console script (pyproject.toml's ``backwatch.cli:script``) exits with the run's
    exit status, its output complete and the run stored."""
    from tests.integration.runner_support import stored_runs

    config = _command_job(tmp_path, "echo from-the-tool; exit 3")
    args = ["run", "nightly", "--json", "--config", str(config)]
    if job_last:
        args = ["run", "--json", "--config", str(config), "--", "nightly"]
    result = subprocess.run(
        [sys.executable, "-c", "from backwatch.cli import script; script()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stderr  # failed
    record = json.loads(result.stdout)
    assert (record["status"], record["exit_code"]) == ("failed", 3)
    assert "from-the-tool" in record["log"]
    (run,) = stored_runs(tmp_path / "data", "nightly")
    assert run["id"] == record["id"] and run["status"] == "failed"
