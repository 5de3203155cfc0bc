"""/metrics speaks OpenMetrics to a scraper that asks for it and the Prometheus text format
otherwise: read with prometheus_client's parsers, and scraped both ways by a real Prometheus.

Debian's Prometheus (2.42) has no ``scrape_protocols`` setting: it always asks for
OpenMetrics first. To make it scrape the text format too, it scrapes through a small proxy on
127.0.0.1 that can replace its ``Accept`` header, and that records what each side said.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.conftest import Server
from tests.integration.prometheus_support import Prometheus

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
RUN = {"job": "photos", "host": "nas", "status": "success", "duration_s": 42,
       "size_bytes": 123456789, "phases": {"dump": 2, "upload": 40}}  # fmt: skip


def _samples(families) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("status", "")): s.value
        for f in families
        for s in f.samples
        if s.labels.get("job") == "photos"
    }


def test_metrics_negotiates_openmetrics_by_accept_header(api) -> None:
    resp = api.post(
        "/api/v1/runs", json={**RUN, "started_at": time.time() - 60}, headers=api.auth_headers
    )
    assert resp.status_code == 201, resp.text

    om = api.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert om.status_code == 200
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n")
    assert om.headers["vary"] == "Accept"
    families = list(parse_om(om.text))  # the strict parser: raises on any format error
    values = _samples(families)
    assert values[("backwatch_job_last_size_bytes", "")] == 123456789
    assert values[("backwatch_job_runs_total", "success")] == 1
    assert {f.name: f.type for f in families}["backwatch_job_runs"] == "counter"

    for accept in (None, "text/plain;version=0.0.4", "text/html,*/*"):
        headers = {"Accept": accept} if accept else {}
        text = api.get("/metrics", headers=headers)
        assert text.status_code == 200
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4"), accept
        assert "# EOF" not in text.text
        assert _samples(parse_text(text.text)) == values


class _Proxy(http.server.ThreadingHTTPServer):
    """Forwards GET /metrics to backwatch; with ``accept`` set, in place of the scraper's."""

    def __init__(self, upstream: str, accept: str | None) -> None:
        self.upstream, self.accept = upstream, accept
        self.seen: list[tuple[str, str]] = []  # (Accept sent by Prometheus, Content-Type back)
        super().__init__(("127.0.0.1", 0), _Forward)


class _Forward(http.server.BaseHTTPRequestHandler):
    server: _Proxy

    def do_GET(self) -> None:
        asked = self.headers.get("Accept", "")
        req = urllib.request.Request(
            self.server.upstream + self.path, headers={"Accept": self.server.accept or asked}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body, content_type = resp.read(), resp.headers["Content-Type"]
        self.server.seen.append((asked, content_type))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("accept", "expected_type"),
    [(None, "application/openmetrics-text"), ("text/plain;version=0.0.4", "text/plain")],
    ids=["openmetrics", "text"],
)
def test_prometheus_scrapes_both_formats(
    server: Server, tmp_path: Path, accept: str | None, expected_type: str
) -> None:
    req = urllib.request.Request(
        server.url + "/api/v1/runs",
        data=json.dumps({**RUN, "started_at": time.time() - 60}).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    proxy = _Proxy(server.url, accept)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with Prometheus(tmp_path, proxy.server_address[1]) as prom:
            result = prom.wait_for('backwatch_job_runs_total{job="photos"}')
            assert {r["metric"]["status"]: float(r["value"][1]) for r in result}["success"] == 1
            size = prom.query('backwatch_job_last_size_bytes{job="photos"}')
            assert float(size[0]["value"][1]) == 123456789
            phases = prom.query('backwatch_job_phase_duration_seconds{job="photos"}')
            assert {p["metric"]["phase"]: float(p["value"][1]) for p in phases} == {
                "dump": 2.0,
                "upload": 40.0,
            }
            # Prometheus asked for OpenMetrics first; what it got is the format under test
            asked, content_type = proxy.seen[-1]
            assert asked.startswith("application/openmetrics-text"), asked
            assert content_type.startswith(expected_type), content_type
            health = prom.query("up")
            assert float(health[0]["value"][1]) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
