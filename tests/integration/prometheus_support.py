"""Debian's ``prometheus`` on a free 127.0.0.1 port, scraping one target every second, and
its query API: shared by the tests that check what Prometheus makes of ``/metrics``."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import free_port, need_tool


class Prometheus:
    def __init__(self, tmp_path: Path, target_port: int) -> None:
        prometheus = need_tool("prometheus")
        self.log = tmp_path / "prometheus.log"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: backwatch\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
        )  # fmt: skip

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api(
            "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        )["result"]
        return found

    def wait_for(self, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The series of ``expr`` once there are some (Prometheus starting, scrapes to come)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                found = self.query(expr)
            except OSError:
                found = []
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no series for {expr}: " + self.log.read_text()[-2000:])
