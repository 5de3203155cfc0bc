"""A fleet with its history on one server (issue 18): 100,000 jobs and 10 M runs.

The database comes from gen_fleet.py: 100,000 jobs × 100 daily runs, plus ``ping-history``,
a job with a year of 5-minute pings (100,000 runs): 10 M runs. On SQLite (``--db FILE``,
copied unless ``--in-place``) or PostgreSQL (``--url``, used as it is). After the server's
start-up work is done (bench_fleet.py's ``_settle``), it times what a user of such a fleet
reads, each request after one report so that no answer is served from a cache: the
overview, a page of ``GET /api/v1/jobs`` (default, ``health=failing``, ``tag=db``), a
job's page and its API answer (an ordinary job and ``ping-history``), the job's runs, the
summary; then Healthchecks-style pings (start + success) to ``ping-history`` against a new
job, interleaved in rounds as bench_ping.py does; and the server's RSS.

    .venv/bin/python bench/gen_fleet.py /tmp/fleet10m.db --runs-per-job 100 --long-job 100000
    .venv/bin/python bench/bench_fleet_history.py --db /tmp/fleet10m.db [--rounds 20]
    .venv/bin/python bench/bench_fleet_history.py --url postgresql+psycopg://…/fleet
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fleet import _get, _measure, _settle
from bench_ping import pairs_per_s, ping_path
from common import BACKWATCH, Server, median, percentile, result, rss_mb, scratch_dir

PING_ROUNDS = 5


def _pings(server: Server, pairs: int) -> dict[str, Any]:
    old, new = ping_path(server, "ping-history"), ping_path(server, "fresh-ping")
    with urllib.request.urlopen(server.url + new + "?create=1", timeout=60):
        pass
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    rates: dict[str, list[float]] = {"history": [], "new": []}
    latencies: dict[str, list[float]] = {"history": [], "new": []}
    pairs_per_s(conn, new, 10)  # warm up
    for _ in range(PING_ROUNDS):
        for name, path in (("history", old), ("new", new)):
            rate, lat = pairs_per_s(conn, path, pairs // PING_ROUNDS)
            rates[name].append(rate)
            latencies[name].extend(lat)
    conn.close()
    history, fresh = median(rates["history"]), median(rates["new"])
    return {
        "history_per_s": round(history, 1),
        "new_job_per_s": round(fresh, 1),
        "ratio": round(history / fresh, 3),
        "history_p95_ms": round(percentile(latencies["history"], 95), 2),
        "new_p95_ms": round(percentile(latencies["new"], 95), 2),
    }


def measure(server: Server, rounds: int, pairs: int, settle_s: float) -> dict[str, Any]:
    figures: dict[str, Any] = {"settle_s": _settle(server.pid, limit_s=settle_s)}
    print(f"server settled after {figures['settle_s']} s", flush=True)
    figures["rss_mb_settled"] = round(rss_mb(server.pid), 1)
    counts = json.loads(_get(server, "/api/v1/jobs?limit=1&counts=true")[2])
    figures["health_counts"] = counts.get("counts")
    job = json.loads(_get(server, "/api/v1/jobs?limit=1&health=ok&tag=db")[2])["items"][0]["id"]
    took, _, _ = _get(server, "/", token=False)
    figures["overview_cold_ms"] = round(took * 1000, 1)
    reads = {
        "overview": ("/", False),
        "jobs_page": ("/api/v1/jobs", True),
        "jobs_failing": ("/api/v1/jobs?health=failing", True),
        "jobs_tag_db": ("/api/v1/jobs?tag=db", True),
        "job_page": (f"/jobs/{job}", False),
        "job_page_ping_history": ("/jobs/ping-history", False),
        "job_api": (f"/api/v1/jobs/{job}", True),
        "job_api_ping_history": ("/api/v1/jobs/ping-history", True),
        "runs_ping_history": ("/api/v1/runs?job=ping-history&limit=50", True),
        "summary": ("/api/v1/summary", True),
    }
    figures["reads"] = {}
    for name, (path, _token) in reads.items():
        figures["reads"][name] = _measure(server, path, rounds)
        print(f"{name:<24} {figures['reads'][name]}", flush=True)
    figures["pings"] = _pings(server, pairs)
    print("pings", figures["pings"], flush=True)
    figures["rss_mb_after"] = round(rss_mb(server.pid), 1)
    return figures


def _admin_token(data: Path, extra: list[str]) -> None:
    """An admin token in ``data/token``: a database that already holds tokens (a second
    run on the same PostgreSQL database, ``--in-place``) gets none from the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKWATCH_")}
    cmd = [BACKWATCH, "token", "create", "--name", f"bench-{os.getpid()}", "--scope", "admin"]
    cmd += ["--data-dir", str(data), *extra]
    if not extra:  # SQLite: the file in the data directory
        cmd += ["--db", str(data / "backwatch.db")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    token = next(word for word in out.split() if word.startswith("bw_"))
    (data / "token").write_text(token + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a SQLite file gen_fleet.py made")
    parser.add_argument("--in-place", action="store_true", help="serve --db itself, no copy")
    parser.add_argument("--url", help="a PostgreSQL database gen_fleet.py filled")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=300, help="ping pairs per side")
    parser.add_argument("--settle", type=float, default=600, help="longest wait for start-up")
    args = parser.parse_args()
    if (args.db is None) == (args.url is None):
        parser.error("give --db or --url")
    load = [os.getloadavg()[0]]
    with scratch_dir("fleet-history") as tmp:
        data = tmp / "data"
        data.mkdir()
        extra: list[str] = []
        if args.url:
            config = tmp / "backwatch.toml"
            config.write_text(f'database_url = "{args.url}"\n')
            extra = ["--config", str(config)]
            source = args.url.rsplit("@", 1)[-1]
        elif args.in_place:
            (data / "backwatch.db").symlink_to(args.db.resolve())
            source = str(args.db)
        else:
            t0 = time.perf_counter()
            shutil.copy(args.db, data / "backwatch.db")
            print(f"copied {args.db} in {time.perf_counter() - t0:.0f} s", flush=True)
            source = str(args.db)
        _admin_token(data, extra)
        with Server(data, extra=extra) as server:
            figures = measure(server, args.rounds, args.pairs, args.settle)
    load.append(os.getloadavg()[0])
    result("fleet_history", database=source, load=[round(x, 2) for x in load], **figures)


if __name__ == "__main__":
    main()
