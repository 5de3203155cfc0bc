"""/metrics scraped by a real Prometheus server on 127.0.0.1, and read back over its API."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import Server
from tests.integration.prometheus_support import Prometheus


def test_prometheus_scrapes_backwatch_series(server: Server, tmp_path: Path) -> None:
    server.report(
        {"job": "photos", "host": "nas", "status": "success", "started_at": time.time() - 60,
         "duration_s": 42, "size_bytes": 123456789, "phases": {"dump": 2, "upload": 40}},
    )  # fmt: skip
    with Prometheus(tmp_path, server.port) as prom:
        result = prom.wait_for('backwatch_job_last_size_bytes{job="photos"}')
        assert result[0]["metric"]["host"] == "nas"
        assert float(result[0]["value"][1]) == 123456789
        phases = prom.query('backwatch_job_phase_duration_seconds{job="photos"}')
        assert {p["metric"]["phase"]: float(p["value"][1]) for p in phases} == {
            "dump": 2.0,
            "upload": 40.0,
        }
        runs = prom.query('backwatch_job_runs_total{job="photos",status="success"}')
        assert float(runs[0]["value"][1]) == 1
