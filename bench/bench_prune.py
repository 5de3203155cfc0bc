"""Ingest while retention prunes millions of old runs (issue 18): p99 ≤ 2× without.

A database from gen_fleet.py whose runs go back further than the retention period (1,000
jobs × 3,000 runs two hours apart: 250 days, of which 1.9 M runs are older than 90 days).
The same file is served three times, each time reports are posted for the same windows:

1. ``retention_days = 3650``: nothing to prune (the baseline);
2. ``retention_days = 90``: the server prunes at start-up, about 20 ms of runs per
   transaction with a pause as long after each (services/retention.py), while the
   reports are posted;
3. ``retention_days = 3650`` again (the prune stopped with the server): the baseline after,
   so that drift of the machine's load shows.

Each window is a paced client (``--rate`` single reports/s over keep-alive connections,
each request's latency from send to answer) and then wrk at 16 connections (ingest.lua,
as bench_ingest.py: as many as the server takes). The old runs left are counted before
and after phase 2's windows, so the figure says how much was pruned while it was measured.

    .venv/bin/python bench/bench_prune.py [--quick] [--db EXISTING.db] [--seconds 15]

``--chunk N`` and ``--pause`` try a change to the prune without editing it: ``serve`` is
started through a small wrapper that sets the runs deleted per transaction, and with
``--pause`` waits after each chunk as long as the chunk took (the writer free half the time).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from bench_ingest import run_wrk
from common import BENCH, Server, median, percentile, result, scratch_dir
from gen_fleet import DAY, build

BUDGET_RATIO = 2.0
RETENTION_DAYS = 90
START_WAIT_S = 5.0  # after /health answers, before the first window: the same in each phase


def _paced(port: int, token: str, rate: float, seconds: float, tag: str) -> list[float]:
    """Single reports at ``rate``/s over 2 keep-alive connections; latencies in ms."""
    latencies: list[float] = []
    errors: list[str] = []
    threads = 2
    gap = threads / rate

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start = time.perf_counter()
        k = 0
        while (now := time.perf_counter()) - start < seconds:
            due = start + k * gap + n * gap / threads
            if due > now:
                time.sleep(due - now)
            body = json.dumps({
                "id": f"{tag}-{n}-{k}", "job": f"paced-{k % 50:02d}", "host": "paced",
                "status": "success", "started_at": time.time() - 60, "duration_s": 30,
                "size_bytes": 10**9 + k,
            })  # fmt: skip
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/runs", body, headers)
            resp = conn.getresponse()
            resp.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            if resp.status >= 300:
                errors.append(f"HTTP {resp.status}")
            k += 1
        conn.close()

    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    if errors:
        raise RuntimeError(f"{len(errors)} reports refused: {errors[:3]}")
    return latencies


def _old_runs(db: Path, cutoff: float) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM runs WHERE started_at < ?", (cutoff,))
                   .fetchone()[0])  # fmt: skip


def _phase(data: Path, retention_days: int, rate: float, seconds: int, tag: str) -> dict:
    config = data.parent / f"retention-{retention_days}.toml"
    config.write_text(f"retention_days = {retention_days}\n")
    db = data / "backwatch.db"
    cutoff = time.time() - RETENTION_DAYS * DAY
    with Server(data, extra=["--config", str(config)]) as server:
        time.sleep(START_WAIT_S)
        old_before = _old_runs(db, cutoff)
        t0 = time.perf_counter()
        lat = _paced(server.port, server.token, rate, seconds, f"{tag}-{int(time.time())}")
        env = {"BW_TOKEN": server.token, "BW_PREFIX": f"{tag}-{int(time.time())}",
               "BW_BASE": str(int(time.time()) - 7 * 86400)}  # fmt: skip
        wrk = run_wrk(server.url, BENCH / "ingest.lua", 16, max(5, seconds * 2 // 3), env)
        window_s = time.perf_counter() - t0
        old_after = _old_runs(db, cutoff)
        log = server.log.read_text()
    figures = {
        "retention_days": retention_days,
        "paced": {
            "rate": rate, "n": len(lat), "p50_ms": round(percentile(lat, 50), 2),
            "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat), 1),
        },
        "wrk_c16": {k: wrk[k] for k in ("rps", "p50_ms", "p99_ms", "non2xx")},
        "old_runs_before": old_before,
        "old_runs_after": old_after,
        "pruned_in_window_per_s": round((old_before - old_after) / window_s),
        "prune_finished": "retention: removed" in log,
    }  # fmt: skip
    print(f"retention {retention_days:>4} d: paced p50 {figures['paced']['p50_ms']} ms "
          f"p99 {figures['paced']['p99_ms']} ms; wrk {wrk['rps']}/s p50 {wrk['p50_ms']} ms "
          f"p99 {wrk['p99_ms']} ms; old runs {old_before:,} -> {old_after:,}",
          flush=True)  # fmt: skip
    return figures


WRAPPER = """\
import sys, time
from backwatch.cli import script
from backwatch.services import retention

CHUNK, PAUSE = {chunk!r}, {pause!r}
_prune = retention.prune

def prune(write, now, days, **kw):
    def paced(op):
        t0 = time.perf_counter()
        out = write(op)
        if PAUSE:
            time.sleep(time.perf_counter() - t0)
        return out
    if CHUNK:
        kw["chunk"] = CHUNK
    return _prune(paced, now, days, **kw)

retention.prune = prune
sys.exit(script(prog_name="backwatch"))
"""


def _use_wrapper(tmp: Path, chunk: int | None, pause: bool) -> None:
    """``serve`` started with the prune changed: ``chunk`` runs a transaction, ``pause``."""
    path = tmp / "backwatch-prune-variant"
    path.write_text(f"#!{sys.executable}\n" + WRAPPER.format(chunk=chunk, pause=pause))
    path.chmod(0o755)
    common.BACKWATCH = str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 jobs: 0.6 M old runs")
    parser.add_argument("--db", type=Path, help="a database gen_fleet.py made (copied)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15, help="paced window per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="paced reports/s")
    parser.add_argument("--chunk", type=int, help="runs per prune transaction (a variant)")
    parser.add_argument("--pause", action="store_true", help="pause after each chunk")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    jobs = 300 if args.quick else args.jobs
    load = [os.getloadavg()[0]]
    with scratch_dir("prune") as tmp:
        data = tmp / "data"
        data.mkdir()
        db = data / "backwatch.db"
        if args.chunk or args.pause:
            _use_wrapper(tmp, args.chunk, args.pause)
        t0 = time.perf_counter()
        if args.db:
            shutil.copy(args.db, db)
            made: dict[str, Any] = {"copied_from": str(args.db)}
        else:
            made = build(f"sqlite:///{db}", jobs=jobs, runs_per_job=3000, interval_s=7200)
        print(f"database ready in {time.perf_counter() - t0:.0f} s: {made}", flush=True)
        with sqlite3.connect(db) as conn:
            total = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        phases = [
            _phase(data, 3650, args.rate, args.seconds, "before"),
            _phase(data, RETENTION_DAYS, args.rate, args.seconds, "pruning"),
            _phase(data, 3650, args.rate, args.seconds, "after"),
        ]
    load.append(os.getloadavg()[0])
    before, pruning, after = phases
    base_paced = median([before["paced"]["p99_ms"], after["paced"]["p99_ms"]])
    base_wrk = median([before["wrk_c16"]["p99_ms"], after["wrk_c16"]["p99_ms"]])
    ratio_paced = pruning["paced"]["p99_ms"] / base_paced
    ratio_wrk = pruning["wrk_c16"]["p99_ms"] / base_wrk
    pruned_throughout = pruning["old_runs_after"] > 0 and not pruning["prune_finished"]
    print(f"p99 while pruning / without: paced {ratio_paced:.2f}x, wrk c=16 {ratio_wrk:.2f}x "
          f"(budget <= {BUDGET_RATIO}x); pruned all along: {pruned_throughout}; "
          f"load {load[0]:.2f} -> {load[1]:.2f}")  # fmt: skip
    result(
        "prune",
        variant={"chunk": args.chunk, "pause": args.pause} if args.chunk or args.pause else None,
        runs=total,
        phases=phases,
        p99_ratio_paced=round(ratio_paced, 2),
        p99_ratio_wrk=round(ratio_wrk, 2),
        pruned_throughout=pruned_throughout,
        budget_ratio=BUDGET_RATIO,
        ok=pruned_throughout and max(ratio_paced, ratio_wrk) <= BUDGET_RATIO,
        load=[round(x, 2) for x in load],
    )


if __name__ == "__main__":
    main()
