"""Reporting to a server starts fast: no SQLAlchemy, FastAPI or pydantic on that path, and
no Typer for a plain ``backwatch push``.

Cold start is budgeted (≤ 150 ms, measured in bench/, never timed here); what this test
holds is the cause of a slow start: a heavy library imported where it is not needed. The
fast ``push`` must still behave like the Typer one: same report, same help, same errors
(the parsing itself is compared line by line in tests/unit/test_push_fastpath.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKWATCH

HEAVY = ("sqlalchemy", "fastapi", "starlette", "pydantic", "pydantic_core", "uvicorn", "alembic")
HEAVY += ("httpx", "requests")

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
    # a plain push skips Typer; the other commands (and the probe's own check) use it
    assert ("typer" in outcome["modules"]) == (args[0] != "push")


# --- the fast `push` is the Typer `push` ------------------------------------------------------

SAME_REPORT = [
    "push", "--job", "nightly", "--id", "r-same", "--started-at", "2026-01-07T02:00:00Z",
    "--duration", "12.5", "--size=5", "-p", "dump=3", "--phase", "upload=1", "-m", "ok",
    "--host", "h1", "--exit-code", "0", "--tool", "restic", "-s", "warning",
]  # fmt: skip


def _through_typer(args: list[str], env: dict[str, str], input: str | None = None) -> Any:
    from typer.testing import CliRunner

    from backwatch.cli import app

    unset: dict[str, str | None] = {name: None for name in os.environ if "BACKWATCH" in name}
    return CliRunner().invoke(app, args, env={**unset, **env}, input=input)


def _through_the_command(
    args: list[str], env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BACKWATCH, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_fast_and_typer_push_send_the_same_report(
    receiver: ThreadingHTTPServer, tmp_path: Path
) -> None:
    env = {
        "BACKWATCH_URL": f"http://127.0.0.1:{receiver.server_address[1]}",
        "BACKWATCH_TOKEN": "t",
        "BACKWATCH_SPOOL_DIR": str(tmp_path / "spool"),
    }
    fast = _through_the_command(SAME_REPORT, env)
    assert fast.returncode == 0, fast.stderr
    fast_body = receiver.bodies[-1]  # type: ignore[attr-defined]
    typer_result = _through_typer(SAME_REPORT, env)
    assert typer_result.exit_code == 0, typer_result.output
    assert receiver.bodies[-1] == fast_body  # type: ignore[attr-defined]
    assert fast_body[1]["phases"] == {"dump": 3.0, "upload": 1.0}
    assert fast.stdout == typer_result.stdout == "recorded run r-same of job nightly (warning)\n"


@pytest.mark.parametrize(
    "args",
    [
        ["push", "--help"],
        ["push", "-h"],
        ["push", "--job", "x", "--size", "abc"],
        ["push", "--job", "x", "--nope"],
        ["push", "--job", "x", "extra"],
        ["push", "--quiet=1", "--job", "x"],
        ["push", "--job"],
        ["push"],
        ["push", "--job", "x", "--phase", "bad"],
        ["push", "--json", "/nonexistent/report.json"],
        ["push", "--json", "-"],
        ["push", "--job", "x", "--url", "ftp://127.0.0.1/"],
    ],
    ids=" ".join,
)
def test_fast_push_answers_help_and_mistakes_like_typer(args: list[str], tmp_path: Path) -> None:
    """Same output, same messages, same exit code through the command and through Typer."""
    env = {"BACKWATCH_SPOOL_DIR": str(tmp_path / "spool"), "COLUMNS": "100"}
    real = _through_the_command(args, env, input="{oops")
    typer_result = _through_typer(args, env, input="{oops")
    assert "Traceback" not in real.stderr
    assert (real.returncode, real.stdout, real.stderr) == (
        typer_result.exit_code,
        typer_result.stdout,
        typer_result.stderr,
    )
    if args[1:2] in (["--help"], ["-h"]):
        assert real.returncode == 0 and "Usage: backwatch push [OPTIONS]" in real.stdout
    else:
        assert real.returncode != 0 and real.stderr.startswith("error: ")


# --- `backwatch run JOB`: the tool starts before the heavy libraries load ---------------------

RUN_PROBE = """
import json, subprocess, sys
from backwatch.runners.record import BackgroundRecorder
BackgroundRecorder.HOLD_S = 600  # the store must open once the tool has started, not on a timer
loaded = []
real_init = subprocess.Popen.__init__
def spy(self, *args, **kwargs):
    loaded.append(sorted({m.split(".")[0] for m in sys.modules} | set(sys.modules)))
    real_init(self, *args, **kwargs)
subprocess.Popen.__init__ = spy
from backwatch.cli import fast_path
code = fast_path(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "when_the_tool_started": loaded[0]}))
"""

#: what the run does beside its tool (the database, the progress display) or never needs
LATER = ("sqlalchemy", "alembic", "typer", "rich", "http.client", "croniter", "fastapi")


def _probe(probe: str, args: list[str]) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``probe`` on a command line; (the process, what the probe printed last)."""
    result = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0, result.stderr
    return result, outcome


def _command_job(tmp_path: Path, command: str) -> Path:
    config = tmp_path / "bw.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[[jobs]]\nid = "nightly"\ntool = "command"\n'
        f"command = {json.dumps(command)}\n"
    )
    return config


def test_run_starts_its_tool_with_only_the_settings_loaded(tmp_path: Path) -> None:
    """Cron and timers start `backwatch run` for every backup: before the tool starts it
    loads the settings (pydantic) and the runner, nothing more; the database layer and
    rich load while the tool runs, Typer and http.client not at all."""
    config = _command_job(tmp_path, "true")
    result, outcome = _probe(RUN_PROBE, ["run", "nightly", "-c", str(config)])
    early = sorted(set(LATER) & set(outcome["when_the_tool_started"]))
    assert not early, f"loaded before the tool started: {early}"
    assert "pydantic" in outcome["when_the_tool_started"]  # the probe saw the real start
    assert "nightly: success" in result.stderr  # recorded and summarised all the same


@pytest.mark.parametrize("how", ["fast path", "typer"])
def test_the_console_script_leaves_with_the_runs_exit_code_and_all_its_output(
    tmp_path: Path, how: str
) -> None:
    """The console script skips the interpreter's teardown after a fast-path command: the
    run's output must still be complete and the run stored."""
    from tests.integration.runner_support import stored_runs

    config = _command_job(tmp_path, "echo from-the-tool; exit 3")
    args = ["run", "nightly", "--json", "--config", str(config)]
    if how == "typer":  # only Typer reads `--` (the job follows it)
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


def test_a_plain_backup_loads_no_typer_and_still_writes_its_snapshot(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    args = ["backup", "--source", str(tmp_path / "src"), "--dest", str(tmp_path / "d")]
    _result, outcome = _probe(PROBE, [*args, "--no-record", "--json"])
    assert "typer" not in outcome["modules"] and "sqlalchemy" not in outcome["modules"]
    assert len(list((tmp_path / "d" / "snapshots").iterdir())) == 1
