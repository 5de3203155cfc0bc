"""`backwatch push --pushgateway URL` against the real prometheus-pushgateway (Debian)."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port, need_tool, run_cli


def test_push_sends_the_run_metrics_to_a_real_pushgateway(tmp_path: Path) -> None:
    binary = need_tool("prometheus-pushgateway")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(gateway + "/-/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        result = run_cli(
            "push", "--db", str(tmp_path / "bw.db"), "--job", "photos", "--host", "nas",
            "--status", "success", "--duration", "42", "--size", "123456",
            "--phase", "dump=2", "--phase", "upload=40", "--pushgateway", gateway,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"pushed the metrics of photos to {gateway}" in result.stdout
        with urllib.request.urlopen(gateway + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        series = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("backwatch_")
        }
        assert (
            series['backwatch_job_last_size_bytes{host="nas",instance="",job="photos"}'] == 123456
        )
        assert series['backwatch_job_last_run_success{host="nas",instance="",job="photos"}'] == 1
        labels = 'host="nas",instance="",job="photos",phase="upload"'
        assert series["backwatch_job_phase_duration_seconds{" + labels + "}"] == 40

        dead = run_cli(
            "push", "--db", str(tmp_path / "bw.db"), "--job", "photos",
            "--pushgateway", "http://127.0.0.1:1",
        )  # fmt: skip
        assert dead.returncode == 1
        assert dead.stderr.startswith("error: cannot push to the Pushgateway at http://127.0.0.1:1")
        assert "Traceback" not in dead.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
