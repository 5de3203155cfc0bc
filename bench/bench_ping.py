"""Healthchecks-style pings to a job with a long history, against a new job (issue 18).

A ping's finish pairs with the job's open start. That lookup must cost the same whatever
the job's history: a year of 5-minute pings is 105,000 runs. Starts ``backwatch serve``
on SQLite, gives one job ``--runs`` finished ping runs (bulk SQL, as they would be after a
year), and times start+success ping pairs over one keep-alive connection, to that job and
to a new one, interleaved in rounds so that load on the machine hits both alike.
Budget: the long-history rate ≥ 0.8× the new job's.

    .venv/bin/python bench/bench_ping.py [--quick] [--runs 100000] [--pairs 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, median, percentile, result, scratch_dir

BUDGET_RATIO = 0.8
ROUNDS = 5


def ping_path(server: Server, job: str) -> str:
    key = server.get("/api/v1/ping-key")["ping_key"]
    return f"/ping/{key}/{job}"


def seed_history(db: Path, job: str, runs: int) -> None:
    """``runs`` finished ping runs of ``job``, five minutes apart, ending an hour ago."""
    now = time.time() - 3600
    rows = (
        (f"{job}-{i}", job, "success", now - 300 * (runs - i), now - 300 * (runs - i) + 20,
         20.0, "ping", "schedule", now, "backup")
        for i in range(runs)
    )  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (id, job, status, started_at, finished_at, duration_s, source, "
            '"trigger", updated_at, kind) VALUES (?,?,?,?,?,?,?,?,?,?)',
            rows,
        )
        conn.execute("UPDATE jobs SET runs_total = runs_total + ? WHERE id = ?", (runs, job))


def pairs_per_s(
    conn: http.client.HTTPConnection, path: str, pairs: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    began = time.perf_counter()
    for _ in range(pairs):
        for suffix in ("/start", ""):
            t0 = time.perf_counter()
            conn.request("GET", path + suffix)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"ping {path + suffix}: HTTP {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)
    return pairs * 2 / (time.perf_counter() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 runs, 100 pairs")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=300, help="start+finish pairs per round")
    args = parser.parse_args()
    runs, pairs = (10_000, 100) if args.quick else (args.runs, args.pairs)

    with scratch_dir("ping") as tmp:
        data = tmp / "data"
        with Server(data) as server:  # creates the schema, the token and the ping key
            old, new = ping_path(server, "every5min"), ping_path(server, "fresh")
            for path in (old, new):  # ?create=1: the slug URL makes the job
                with urllib.request.urlopen(server.url + path + "?create=1", timeout=30):
                    pass
        seed_history(data / "backwatch.db", "every5min", runs)
        with Server(data) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            rates: dict[str, list[float]] = {"history": [], "new": []}
            latencies: dict[str, list[float]] = {"history": [], "new": []}
            pairs_per_s(conn, new, 20)  # warm up
            for _ in range(ROUNDS):
                for name, path in (("history", old), ("new", new)):
                    rate, lat = pairs_per_s(conn, path, pairs // ROUNDS)
                    rates[name].append(rate)
                    latencies[name].extend(lat)
            conn.close()
        with sqlite3.connect(data / "backwatch.db") as db:
            (total,) = db.execute("SELECT count(*) FROM runs WHERE job = 'every5min'").fetchone()
    history, fresh = median(rates["history"]), median(rates["new"])
    ratio = history / fresh
    print(json.dumps({"runs_in_job": total, "history_per_s": round(history, 1),
                      "new_per_s": round(fresh, 1), "ratio": round(ratio, 3)}))  # fmt: skip
    result(
        "ping",
        runs_in_job=total,
        history_pings_per_s=round(history, 1),
        new_job_pings_per_s=round(fresh, 1),
        ratio=round(ratio, 3),
        history_p95_ms=round(percentile(latencies["history"], 95), 2),
        new_p95_ms=round(percentile(latencies["new"], 95), 2),
        budget_ratio=BUDGET_RATIO,
        ok=ratio >= BUDGET_RATIO,
    )


if __name__ == "__main__":
    main()
