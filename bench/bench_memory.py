"""Server memory: RSS of ``backwatch serve`` idle, and under load with 1 M runs.

Idle: a fresh data directory, start, a few requests, settle 2 s, read RSS (psutil).
Under load: the 1 M-run database (built by gen_runs.py unless ``--data-dir`` holds one),
four reader threads looping over summary/jobs/runs while wrk posts reports at 16
connections; RSS is sampled every 100 ms and the peak is reported.
Targets: ≤ 80 MB idle, ≤ 128 MB under load.

    .venv/bin/python bench/bench_memory.py [--quick] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_read import endpoints, prepare
from common import BENCH, Server, result, rss_mb, scratch_dir

IDLE_TARGET_MB = 80
LOAD_TARGET_MB = 128


def idle() -> float:
    with scratch_dir("idle") as d, Server(d / "data") as server:
        for path in ("/health", "/api/v1/jobs", "/api/v1/summary", "/api/v1/runs", "/api/metrics"):
            server.get(path)
        time.sleep(2)
        return round(rss_mb(server.pid), 1)


def _reader(port: int, token: str, jobs: int, stop: threading.Event, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    paths = list(endpoints(jobs).values())
    i = 0
    while not stop.is_set():
        conn.request("GET", paths[i % len(paths)](), headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            errors.append(resp.status)
        i += 1
    conn.close()


def under_load(data_dir: Path, seconds: int, jobs: int) -> dict[str, Any]:
    with Server(data_dir) as server:
        start_rss = rss_mb(server.pid)
        stop = threading.Event()
        errors: list = []
        readers = [
            threading.Thread(target=_reader, args=(server.port, server.token, jobs, stop, errors))
            for _ in range(4)
        ]
        wrk = None
        if shutil.which("wrk"):
            env = {**os.environ, "BW_TOKEN": server.token, "BW_PREFIX": f"mem{int(time.time())}"}
            env["BW_BASE"] = str(int(time.time()) - 86400)
            wrk = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    "-c16",
                    f"-d{seconds}s",
                    "-s",
                    str(BENCH / "ingest.lua"),
                    server.url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        for t in readers:
            t.start()
        peak = start_rss
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(server.pid))
            time.sleep(0.1)
        stop.set()
        for t in readers:
            t.join(timeout=120)
        if wrk is not None:
            wrk.wait(timeout=60)
        end_rss = rss_mb(server.pid)
        return {
            "seconds": seconds,
            "start_mb": round(start_rss, 1),
            "peak_mb": round(max(peak, end_rss), 1),
            "end_mb": round(end_rss, 1),
            "read_errors": len(errors),
            "with_ingest": wrk is not None,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 k runs, 10 s of load")
    parser.add_argument("--data-dir", type=Path, help="reuse (or build once into) this dir")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--seconds", type=int)
    args = parser.parse_args()
    runs = args.runs or (100_000 if args.quick else 1_000_000)
    seconds = args.seconds or (10 if args.quick else 20)
    idle_mb = idle()
    print(f"idle RSS: {idle_mb} MB", flush=True)
    if args.data_dir:
        prepare(args.data_dir, runs, args.jobs)
        load = under_load(args.data_dir, seconds, args.jobs)
    else:
        with scratch_dir("memory") as d:
            prepare(d, runs, args.jobs)
            load = under_load(d, seconds, args.jobs)
    print(f"under load ({runs} runs): {load}", flush=True)
    result(
        "memory",
        idle_mb=idle_mb,
        load=load,
        runs=runs,
        targets_mb={"idle": IDLE_TARGET_MB, "load": LOAD_TARGET_MB},
        met=idle_mb <= IDLE_TARGET_MB and load["peak_mb"] <= LOAD_TARGET_MB,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
