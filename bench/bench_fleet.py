"""A fleet on one server: the overview, a page of ``GET /api/v1/jobs``, ``/metrics`` and the
server's memory at 100,000 jobs (issue 18; budgets in bench/README.md).

The database comes from gen_fleet.py (100,000 jobs × 1 run by default: 10 M runs take too
long to generate on a 2-core machine; the reads measured here touch the jobs table and one
page of runs, not the whole runs table). Before each timed request one report is posted,
so every answer is rebuilt (the server reuses an answer for up to 2 s while nothing is
written); the timed figure is the request alone.

    .venv/bin/python bench/bench_fleet.py [--jobs 100000] [--runs-per-job 1] [--rounds 20]
                                          [--db EXISTING.db]   # a copy is used
                                          [--only-overview | --only-metrics]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, percentile, result, rss_mb, scratch_dir
from gen_fleet import build


def _get(server: Server, path: str, token: bool = True) -> tuple[float, int, bytes]:
    req = urllib.request.Request(server.url + path)
    if token:
        req.add_header("Authorization", f"Bearer {server.token}")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as resp:
        body = resp.read()
    return time.perf_counter() - t0, len(body), body


def _touch(server: Server, i: int) -> None:
    """One report: the next read is rebuilt, not served from the 2 s answer cache."""
    report = {"job": "bench-touch", "status": "success", "started_at": time.time()}
    body = json.dumps({**report, "duration_s": 1, "backup_id": f"touch-{i}-{time.time()}"})
    req = urllib.request.Request(server.url + "/api/v1/runs", data=body.encode(), method="POST")
    req.add_header("Authorization", f"Bearer {server.token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=300) as resp:
        resp.read()


def _measure(server: Server, path: str, rounds: int, *, fresh: bool = True) -> dict[str, Any]:
    times, size = [], 0
    for i in range(rounds):
        if fresh:
            _touch(server, i)
        took, size, _ = _get(server, path)
        times.append(took)
    return {
        "p50_ms": round(percentile(times, 50) * 1000, 1),
        "p95_ms": round(percentile(times, 95) * 1000, 1),
        "kb": round(size / 1024, 1),
    }


def _settle(pid: int, limit_s: float = 300.0) -> float:
    """Seconds until the new server's start-up work (a status file per job, the first rule
    round over every job) is done: its CPU below 20 % for 5 s in a row, or ``limit_s``."""
    import psutil

    proc, t0, quiet = psutil.Process(pid), time.monotonic(), 0
    while time.monotonic() - t0 < limit_s and quiet < 5:
        quiet = quiet + 1 if proc.cpu_percent(interval=1.0) < 20 else 0
    return round(time.monotonic() - t0, 1)


def _metrics(server: Server, figures: dict[str, Any], rounds: int) -> None:
    """``/metrics`` as served (above [metrics] per_job_limit: the problems' per-job series
    and the aggregates), and with every job's series (``?jobs=all``)."""
    took, size, _ = _get(server, "/metrics")
    figures["metrics_first_s"] = round(took, 2)
    figures["metrics_mb"] = round(size / 2**20, 1)
    figures["metrics_rebuilt"] = _measure(server, "/metrics", max(3, rounds // 4))
    figures["metrics_cached"] = _measure(server, "/metrics", 5, fresh=False)
    figures["metrics_problems_only"] = _measure(
        server, "/metrics?health=failing,missed,stuck", max(3, rounds // 4)
    )
    figures["metrics_every_job"] = _measure(server, "/metrics?jobs=all", 3)
    print("metrics", figures["metrics_rebuilt"], figures["metrics_cached"], flush=True)
    print("metrics, problems only", figures["metrics_problems_only"], flush=True)
    print("metrics, every job", figures["metrics_every_job"], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs-per-job", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db", type=Path, help="a database gen_fleet.py made (copied)")
    parser.add_argument("--only-overview", action="store_true", help="time the overview alone")
    parser.add_argument("--only-metrics", action="store_true", help="time /metrics alone")
    args = parser.parse_args()
    with scratch_dir("bw-fleet-") as tmp:
        data = tmp / "data"
        data.mkdir()
        db = data / "backwatch.db"
        t0 = time.perf_counter()
        if args.db:
            shutil.copy(args.db, db)
            made: dict[str, Any] = {"jobs": args.jobs, "copied_from": str(args.db)}
        else:
            made = build(f"sqlite:///{db}", jobs=args.jobs, runs_per_job=args.runs_per_job)
        print(f"database ready in {time.perf_counter() - t0:.1f}s: {made}", flush=True)
        with Server(data) as server:
            figures: dict[str, Any] = {"jobs": made["jobs"], "runs": made.get("runs")}
            figures["settle_s"] = _settle(server.pid)
            print(f"server settled after {figures['settle_s']} s", flush=True)
            if args.only_metrics:
                _metrics(server, figures, args.rounds)
                figures["rss_mb_after_metrics"] = round(rss_mb(server.pid), 1)
                result("fleet", **figures)
                return
            took, _size, _ = _get(server, "/", token=False)
            figures["overview_cold_ms"] = round(took * 1000, 1)
            figures["overview"] = _measure(server, "/", args.rounds)
            print("overview", figures["overview"], flush=True)
            if args.only_overview:
                figures["rss_mb_after_reads"] = round(rss_mb(server.pid), 1)
                result("fleet", **figures)
                return
            page = json.loads(_get(server, "/api/v1/jobs?limit=1")[2])
            host = page["items"][0]["host"]
            queries = {
                "default": "/api/v1/jobs",
                "health_failing": "/api/v1/jobs?health=failing",
                "health_missed_late": "/api/v1/jobs?health=missed,late",
                "tag": "/api/v1/jobs?tag=db",
                "host": f"/api/v1/jobs?host={host}",
                "q": "/api/v1/jobs?q=fra-00",
                "sort_last_run": "/api/v1/jobs?sort=last_run",
                "sort_health": "/api/v1/jobs?sort=health",
                "counts": "/api/v1/jobs?limit=1&counts=true",
                "limit_1000": "/api/v1/jobs?limit=1000",
            }
            figures["api"] = {}
            for name, path in queries.items():
                figures["api"][name] = _measure(server, path, args.rounds)
                print("api", name, figures["api"][name], flush=True)
            figures["rss_mb_after_reads"] = round(rss_mb(server.pid), 1)
            _metrics(server, figures, args.rounds)
            summary = _measure(server, "/api/v1/summary", max(3, args.rounds // 4))
            figures["summary"] = summary
            time.sleep(2)
            figures["rss_mb_idle"] = round(rss_mb(server.pid), 1)
        result("fleet", **figures)


if __name__ == "__main__":
    main()
