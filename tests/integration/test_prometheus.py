"""/metrics scraped by a real Prometheus server on 127.0.0.1, and read back over its API."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.conftest import Server, free_port, need_tool


def _post_run(server: Server, body: dict) -> None:
    req = urllib.request.Request(
        server.url + "/api/v1/runs",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


def _query(prom_url: str, expr: str) -> list:
    url = f"{prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def test_prometheus_scrapes_backwatch_series(server: Server, tmp_path: Path) -> None:
    prometheus = need_tool("prometheus")
    _post_run(
        server,
        {"job": "photos", "host": "nas", "status": "success", "started_at": time.time() - 60,
         "duration_s": 42, "size_bytes": 123456789, "phases": {"dump": 2, "upload": 40}},
    )  # fmt: skip
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: backwatch\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    prom_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        result: list = []
        while time.monotonic() < deadline and not result:
            time.sleep(1)
            try:
                result = _query(prom_url, 'backwatch_job_last_size_bytes{job="photos"}')
            except OSError:
                continue
        assert result, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert result[0]["metric"]["host"] == "nas"
        assert float(result[0]["value"][1]) == 123456789
        phases = _query(prom_url, 'backwatch_job_phase_duration_seconds{job="photos"}')
        assert {p["metric"]["phase"]: float(p["value"][1]) for p in phases} == {
            "dump": 2.0,
            "upload": 40.0,
        }
        runs = _query(prom_url, 'backwatch_job_runs_total{job="photos",status="success"}')
        assert float(runs[0]["value"][1]) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
