"""HTTP ingest: native run reports/s into ``backwatch serve`` vs Prometheus Pushgateway.

wrk (2 threads) POSTs reports with unique ids across 100 jobs at 16 and 64 connections.
Afterwards the server is killed with SIGKILL and the runs in the SQLite file are counted:
every acknowledged (2xx) report must be there. The peer, Pushgateway, takes a small metric
push per request at the same concurrency (it keeps pushes in memory; no durability).

    .venv/bin/python bench/bench_ingest.py [--quick] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, Server, free_port, result, scratch_dir, stop, wait_http

CONNECTIONS = (16, 64)
TARGET = 2000


def run_wrk(url: str, script: Path, conns: int, duration: int, env: dict[str, str]) -> dict:
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", str(script)]
    out = subprocess.run(
        [*cmd, url],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=duration + 60,
        check=True,
    ).stdout
    match = re.search(r"^BENCH (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    figures = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    errors = sum(figures[k] for k in figures if k.startswith("errors_"))
    ok = figures["requests"] - figures["non2xx"]
    return {
        "connections": conns,
        "requests": figures["requests"],
        "ok": ok,
        "non2xx": figures["non2xx"],
        "socket_errors": errors,
        "rps": round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
    }


def bench_backwatch(duration: int, serve_args: list[str]) -> dict[str, Any]:
    levels = []
    with scratch_dir("ingest") as d:
        data = d / "data"
        with Server(data, extra=serve_args) as server:
            token = server.token
            for conns in CONNECTIONS:
                env = {"BW_TOKEN": token, "BW_PREFIX": f"c{conns}-{int(time.time())}"}
                env["BW_BASE"] = str(int(time.time()) - 7 * 86400)
                levels.append(run_wrk(server.url, BENCH / "ingest.lua", conns, duration, env))
            # Durability: kill without any chance to flush, then count what is on disk.
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
        with sqlite3.connect(data / "backwatch.db") as db:
            stored = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    acked = sum(level["ok"] for level in levels)
    return {
        "levels": levels,
        "acknowledged": acked,
        "stored_after_sigkill": stored,
        "durable": stored >= acked and all(lv["non2xx"] == 0 for lv in levels),
    }


def bench_pushgateway(duration: int) -> dict[str, Any] | None:
    exe = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if exe is None:
        return None
    port = free_port()
    with scratch_dir("pushgateway") as d:
        proc = subprocess.Popen(
            [exe, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=d,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/-/ready", proc=proc)
            levels = [
                run_wrk(url, BENCH / "pushgateway.lua", conns, duration, {})
                for conns in CONNECTIONS
            ]
        finally:
            stop(proc)
    return {"levels": levels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per level instead of 10")
    parser.add_argument("--duration", type=int, default=None, help="seconds per level")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve option")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    duration = args.duration or (5 if args.quick else 10)
    load_before = os.getloadavg()[0]
    ours = bench_backwatch(duration, args.serve_arg)
    peer = bench_pushgateway(duration)
    load_after = os.getloadavg()[0]
    if peer:  # the fairer figure on a shared machine: both measured in the same minutes
        for lv, plv in zip(ours["levels"], peer["levels"], strict=True):
            lv["vs_pushgateway"] = round(lv["rps"] / plv["rps"], 2) if plv["rps"] else None
    for lv in ours["levels"]:
        ratio = f"  ({lv['vs_pushgateway']}x Pushgateway)" if "vs_pushgateway" in lv else ""
        print(
            f"backwatch   c={lv['connections']:>3}: {lv['rps']:>8.1f} reports/s  "
            f"p50 {lv['p50_ms']} ms  p99 {lv['p99_ms']} ms  non-2xx {lv['non2xx']}{ratio}"
        )
    print(
        f"durability: {ours['acknowledged']} acknowledged, {ours['stored_after_sigkill']} "
        f"stored after SIGKILL -> {'OK' if ours['durable'] else 'LOST REPORTS'}"
    )
    if peer:
        for lv in peer["levels"]:
            print(
                f"pushgateway c={lv['connections']:>3}: {lv['rps']:>8.1f} pushes/s   "
                f"p50 {lv['p50_ms']} ms  p99 {lv['p99_ms']} ms  non-2xx {lv['non2xx']}"
            )
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    result(
        "ingest",
        duration_s=duration,
        backwatch=ours,
        pushgateway=peer,
        target_rps=TARGET,
        load=[round(load_before, 2), round(load_after, 2)],
    )
    return 0 if ours["durable"] else 1


if __name__ == "__main__":
    sys.exit(main())
