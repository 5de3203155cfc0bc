"""A fleet's background work and memory (issue 18): ``serve`` on 100,000 jobs from its start
until it is quiet, idle, under ingest and restarted, and the CPU of the periodic check of
the time rules.

What it measures, on a copy of a gen_fleet.py database:
- the first start (no status files yet, no alerts yet): seconds until quiet (CPU below 20 %
  for 5 s in a row), the CPU seconds the server used until then, RSS at most and when quiet;
- RSS idle, then during and after ``--reports`` reports (``POST /api/v1/runs``, one to each
  of that many jobs, from 4 client threads; a quarter of them failed);
- a restart on the same data (status files and alerts in place): seconds until quiet, RSS;
- in this process, on the same database after the server stopped: the CPU (thread time) of
  the periodic check as the server does it (``find_due_changes``: the jobs its time rules
  can say something about) and of the same check over every job (what it did before), and
  of one round of every rule over every job.

    .venv/bin/python bench/bench_fleet_memory.py [--jobs 100000] [--db EXISTING.db]
                                                 [--reports 400]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, result, rss_mb, scratch_dir
from gen_fleet import build


class Sampler:
    """The server's RSS every 0.2 s in a thread: the most it reached while running."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except Exception:  # the process ended
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak, 1)


def _quiet(pid: int, limit_s: float = 900.0) -> tuple[float, float]:
    """Seconds until the server's CPU stays below 20 % for 5 s, and its CPU seconds then."""
    import psutil

    proc, t0, quiet = psutil.Process(pid), time.monotonic(), 0
    while time.monotonic() - t0 < limit_s and quiet < 5:
        quiet = quiet + 1 if proc.cpu_percent(interval=1.0) < 20 else 0
    cpu = proc.cpu_times()
    return round(time.monotonic() - t0, 1), round(cpu.user + cpu.system, 1)


def _post(server: Server, token: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        server.url + "/api/v1/runs", data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as resp:
        resp.read()


def _job_ids(server: Server, count: int) -> list[str]:
    ids: list[str] = []
    path = "/api/v1/jobs?limit=1000"
    while len(ids) < count:
        page = server.get(path)
        ids += [job["id"] for job in page["items"]]
        if not page.get("next_cursor"):
            break
        path = f"/api/v1/jobs?limit=1000&cursor={page['next_cursor']}"
    return ids[:count]


def _ingest(server: Server, reports: int) -> dict[str, Any]:
    token, jobs = server.token, _job_ids(server, reports)
    sampler = Sampler(server.pid)
    t0 = time.perf_counter()
    now = time.time()

    def one(i: int) -> None:
        status = "failed" if i % 4 == 0 else "success"
        _post(server, token, {"job": jobs[i], "status": status, "started_at": now - 60,
                              "duration_s": 55, "size_bytes": 1000 + i})  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(jobs))))
    took = time.perf_counter() - t0
    time.sleep(15)  # the alerts and status files those reports cause
    return {
        "reports": len(jobs),
        "per_s": round(len(jobs) / took, 1),
        "rss_mb_peak": sampler.stop(),
        "rss_mb_after": round(rss_mb(server.pid), 1),
    }


def _start(data: Path) -> tuple[Server, dict[str, Any]]:
    t0 = time.monotonic()
    server = Server(data).__enter__()
    sampler = Sampler(server.pid)
    up = time.monotonic() - t0
    quiet_s, cpu_s = _quiet(server.pid)
    figures = {
        "up_s": round(up, 1),
        "quiet_s": round(up + quiet_s, 1),
        "cpu_s": cpu_s,
        "rss_mb_peak": sampler.stop(),
        "rss_mb_quiet": round(rss_mb(server.pid), 1),
        "status_files": len(list((data / "status").glob("*_status.json"))),
    }
    return server, figures


def _cpu(fn: Any) -> tuple[float, Any]:
    t0 = time.thread_time()
    out = fn()
    return time.thread_time() - t0, out


def _rule_cpu(data: Path, repeat: int) -> dict[str, Any]:
    """The periodic check's CPU in this process, on the server's database."""
    from backwatch.services import alerts
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    settings = load_settings(env={"BACKWATCH_DATA_DIR": str(data)})
    figures: dict[str, Any] = {}
    with Hub(settings) as hub, hub.read_engine.connect() as conn:
        now = time.time()
        if hasattr(alerts, "find_due_changes"):  # (a checkout from before it: no such check)
            due = [
                _cpu(lambda: alerts.find_due_changes(conn, settings, now)) for _ in range(repeat)
            ]
            figures["tick_cpu_s"] = round(statistics.median(s for s, _ in due), 3)
            figures["tick_jobs"] = due[0][1].jobs
        every = _cpu(lambda: alerts.find_changes(conn, settings, now, None, "time"))
        figures["tick_every_job_cpu_s"] = round(every[0], 3)
        figures["tick_every_job_jobs"] = every[1].jobs
        full = _cpu(lambda: alerts.find_changes(conn, settings, now, None, None))
        figures["full_round_cpu_s"] = round(full[0], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="a database gen_fleet.py made (copied)")
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5, help="periodic checks timed")
    args = parser.parse_args()
    with scratch_dir("bw-fleet-memory-") as tmp:
        data = tmp / "data"
        data.mkdir()
        db = data / "backwatch.db"
        if args.db:
            shutil.copy(args.db, db)
            made: dict[str, Any] = {"jobs": args.jobs, "copied_from": str(args.db)}
        else:
            made = build(f"sqlite:///{db}", jobs=args.jobs, runs_per_job=1)
        figures: dict[str, Any] = {"jobs": made["jobs"]}
        server, figures["first_start"] = _start(data)
        print("first start", figures["first_start"], flush=True)
        try:
            time.sleep(5)
            figures["rss_mb_idle"] = round(rss_mb(server.pid), 1)
            figures["ingest"] = _ingest(server, args.reports)
            print("ingest", figures["ingest"], flush=True)
        finally:
            server.__exit__(None, None, None)
        server, figures["restart"] = _start(data)
        print("restart", figures["restart"], flush=True)
        server.__exit__(None, None, None)
        figures.update(_rule_cpu(data, args.repeat))
    result("fleet_memory", **figures)


if __name__ == "__main__":
    main()
