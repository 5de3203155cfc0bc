"""deploy/grafana/backwatch-dashboard.json: every panel's query returns series from a real
Prometheus (Debian's) scraping a real server on 127.0.0.1 that has runs, alerts and disks."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.conftest import ROOT, Server, make_settings, need_tool
from tests.integration.prometheus_support import Prometheus

DASHBOARD = ROOT / "deploy" / "grafana" / "backwatch-dashboard.json"
GB = 10**9
#: what Grafana puts in for its variables; the job variable's "All" is the regex .*
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$job": ".*",
}


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.extend(panel.get("panels", []))
        if panel["type"] != "row":
            out.append(panel)
    return out


def _expressions(dashboard: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p["targets"]]


def _substitute(expr: str) -> str:
    for name, value in SUBSTITUTIONS.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def _post_run(server: Server, **body: object) -> None:
    server.report(body)


def _post_runs(server: Server, round_: int) -> None:
    now = time.time()
    _post_run(server, job="photos", host="nas", status="success", started_at=now - 600,
              duration_s=300 + round_, size_bytes=2 * GB + round_,
              phases={"dump": 20, "upload": 280})  # fmt: skip
    _post_run(server, job="db-dump", host="db", status="success", started_at=now - 400,
              duration_s=40, size_bytes=50 * 10**6)  # fmt: skip
    _post_run(server, job="db-dump", host="db", status="failed", started_at=now - 100,
              duration_s=5, message="pg_dump: connection refused")  # fmt: skip
    _post_run(server, job="nas-sync", host="nas", status="warning", started_at=now - 300,
              duration_s=120, size_bytes=7 * GB)  # fmt: skip


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["job"]["includeAll"] and variables["job"]["allValue"] == ".*"
    assert variables["datasource"]["query"] == "prometheus"
    titles = [p["title"] for p in _panels(dashboard)]
    assert len(titles) == len(set(titles)), titles
    seed_002 = ["Success rate", "Backup frequency", "Backup size", "Duration trend",
              "Last success per job", "Open alerts", "Disk usage", "Days until full"]  # fmt: skip
    for wanted in seed_002:
        assert wanted in titles, wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for title, expr in _expressions(dashboard):
        # every per-job series follows the job variable
        for selector in re.findall(r"backwatch_job_\w+(\{[^}]*\})?", expr):
            assert 'job=~"$job"' in selector, (title, expr)
    for panel in _panels(dashboard):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_panel_query_returns_series(tmp_path: Path) -> None:
    need_tool("prometheus")  # (before the data is made)
    dashboard = json.loads(DASHBOARD.read_text())
    data_dir = tmp_path / "data"
    # a destination filling up by 10 GB a day over the last 5 days: a forecast to show
    from backwatch.services import disks
    from backwatch.services.hub import Hub

    hub = Hub(make_settings(data_dir))
    try:
        for day in range(6):
            at = time.time() - (5 - day) * 86400
            hub.write(disks.record_samples([("/srv/backups", (100 + 10 * day) * GB, 1000 * GB)],
                                           at, force=True))  # fmt: skip
    finally:
        hub.close()
    server = Server(data_dir).start()
    try:
        _post_runs(server, 0)
        with Prometheus(tmp_path, server.port) as prom:
            prom.wait_for('backwatch_job_runs_total{job="db-dump"}')
            time.sleep(2)  # a few scrapes of the first counts, then more runs: rates to show
            _post_runs(server, 1)
            prom.wait_for('backwatch_job_runs_total{job="db-dump",status="failed"} == 2')
            time.sleep(2)

            queries = [(title, _substitute(expr)) for title, expr in _expressions(dashboard)]
            empty = [(title, expr) for title, expr in queries if not prom.query(expr)]
            assert not empty, f"panel queries without series: {empty}"

            # the values mean what the panels say
            rate = prom.query(_substitute(dict(_expressions(dashboard))["Success rate"]))
            assert 0 < float(rate[0]["value"][1]) < 1, rate  # 3 good of 4 in the second round
            by_severity = prom.query("sum by (severity) (backwatch_alerts_open)")
            alerts = {a["metric"]["severity"]: float(a["value"][1]) for a in by_severity}
            assert sum(alerts.values()) >= 1, alerts  # db-dump's failure opened one
            left = prom.query('backwatch_disk_days_until_full{path="/srv/backups"}')
            assert 80 < float(left[0]["value"][1]) < 90, left

            # the job variable's query: label_values(<metric>, job)
            variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "job")
            match = re.fullmatch(r"label_values\((\w+), job\)", variable["definition"])
            assert match, variable["definition"]
            values = prom.api(f"/api/v1/label/job/values?match[]={match.group(1)}")
            assert {"photos", "db-dump", "nas-sync"} <= set(values), values
    finally:
        server.stop()
