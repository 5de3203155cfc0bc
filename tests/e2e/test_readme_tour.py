"""The README's five-minute tour runs as written, top to bottom.

The ```bash blocks between ``<!-- tour:start -->`` and ``<!-- tour:end -->`` run in order,
in one bash (``set -euo pipefail``: a command that fails stops the tour), in a scratch
directory that stands for the checkout. The test plays the reader's first terminal: it
starts the server the way ``make run`` does (the Makefile's own recipe) before the first
block, and restarts it where the README says ``<!-- tour:restart -->``.

What the test changes, and nothing else:
- ``.venv/bin/`` is this venv's bin directory, and port 5001 a free port;
- ``ntfy://ntfy.sh/`` (the one URL a reader replaces with their own) is a JSON receiver
  on 127.0.0.1, which must get the tour's test message.
"""

from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, need, need_tool

TOUR = re.compile(r"<!-- tour:start -->\n(.*?)<!-- tour:end -->", re.S)
PIECES = re.compile(r"```bash\n(.*?)```|(<!-- tour:restart -->)", re.S)


def tour_blocks(readme: str) -> list[str]:
    """The tour's bash blocks in order, ``restart_server`` where the server restarts."""
    (section,) = TOUR.findall(readme)
    return [block or "restart_server\n" for block, restart in PIECES.findall(section)]


def make_run_command(makefile: str, bin_dir: Path, port: int) -> str:
    """The command of ``make run`` (its recipe in the Makefile), on ``port``."""
    recipe = re.search(r"^run:.*\n\t(.+)$", makefile, re.M)
    assert recipe, "the Makefile has no `run` recipe"
    command = recipe.group(1).replace("$(BIN)/", f"{bin_dir}/")
    assert "--port 5001" in command, command
    return command.replace("--port 5001", f"--port {port}")


PREAMBLE = """\
set -euo pipefail
make_run() {{  # the first terminal: `make run`
  {serve} >> {log} 2>&1 &
  SERVER=$!
  for _ in $(seq 1200); do
    curl -fsS -o /dev/null http://127.0.0.1:{port}/health 2>/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || {{ echo "the server exited"; cat {log}; return 1; }}
    sleep 0.1
  done
  echo "the server did not start"; return 1
}}
stop_server() {{ kill "$SERVER" 2>/dev/null && wait "$SERVER" || true; }}
restart_server() {{ stop_server; make_run; }}
trap stop_server EXIT
make_run
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    """Apprise's json:// target: keeps every body posted to it."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Handler", (Receiver,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/", bodies
    server.shutdown()
    server.server_close()


def test_the_tour_finds_its_blocks() -> None:
    blocks = tour_blocks((ROOT / "README.md").read_text())
    assert blocks[0].startswith("TOKEN=$(cat data/token)")
    assert blocks.count("restart_server\n") == 1 and len(blocks) >= 10
    assert "backwatch scan" in blocks[-1]  # up to step 8


def test_the_readme_tour_runs_as_written(tmp_path: Path, receiver: tuple[str, list[bytes]]) -> None:
    need_tool("restic")
    need_tool("curl")
    bin_dir = Path(sys.executable).parent
    need(
        (bin_dir / "backwatch").exists(),
        f"no backwatch script in {bin_dir} (make test installs it)",
    )
    checkout = tmp_path / "checkout"
    scratch = tmp_path / "tmp"  # mktemp -d makes the tour's directory here
    checkout.mkdir()
    scratch.mkdir()
    port = free_port()
    url, messages = receiver
    log = tmp_path / "serve.log"
    serve = make_run_command((ROOT / "Makefile").read_text(), bin_dir, port)
    tour = (
        "\n".join(tour_blocks((ROOT / "README.md").read_text()))
        .replace(".venv/bin/", f"{bin_dir}/")
        .replace("127.0.0.1:5001", f"127.0.0.1:{port}")
        .replace("ntfy://ntfy.sh/", url)
    )
    (tmp_path / "tour.sh").write_text(PREAMBLE.format(serve=serve, log=log, port=port) + tour)
    env = {**os.environ, "TMPDIR": str(scratch), "COLUMNS": "120"}
    proc = subprocess.Popen(
        ["bash", str(tmp_path / "tour.sh")],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server it starts goes with it on a timeout
    )
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the tour did not finish in 240 s:\n{out[-6000:]}")
    (tmp_path / "tour.out").write_text(out)  # all of it, for a look after a failure
    assert proc.returncode == 0, f"the tour stopped (exit {proc.returncode}):\n{out[-8000:]}"

    # what each step says it does
    assert "exit code 3" in out  # wrap passes the command's exit code on
    assert re.search(r"recorded run \S+ of job photos \(success\)", out), out  # restic import
    assert "exit code 1" in out and "jobs_failing" in out  # health says why
    assert out.count("backwatch — ") == 1  # the dashboard's one snapshot
    assert "photos" in out and "decreasing -" not in out.replace("decreasing -100%", "")
    assert "pictures: success" in out  # backwatch ran restic itself
    assert any(b"backwatch test message" in body for body in messages), messages
    (restored,) = scratch.glob("tmp.*/restore/photos/cat.jpg")
    assert restored.read_text() == "a cat\n"
    # nothing in the "checkout" but the data directory and the config the tour wrote
    assert sorted(p.name for p in checkout.iterdir()) == ["backwatch.toml", "data"]
