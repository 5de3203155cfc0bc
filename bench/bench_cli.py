"""CLI cold start: wall time of ``backwatch push --url …`` against a running server.

hyperfine (if installed; else 20 timed runs) measures the whole command, interpreter start
included, and its CPU time (user + system: steadier than wall time on a busy machine).
``python -X importtime`` lists the slowest imports of the same command so that a regression
points at its cause. Bytecode is written during the warm-up even under
``PYTHONDONTWRITEBYTECODE``: an installed backwatch runs from compiled modules, so compiling
them on every run is not what a user waits for. Target (SPEC §10): median ≤ 300 ms.

    .venv/bin/python bench/bench_cli.py [--quick] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH, Server, median, result, scratch_dir

TARGET_MS = 300.0
#: the environment of the measured commands (see the module docstring)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def push_cmd(url: str, token: str) -> list[str]:
    return [
        BACKWATCH, "push", "--url", url, "--token", token, "--job", "cli-bench",
        "--status", "success", "--duration", "12.5", "--size", "1048576", "--quiet",
    ]  # fmt: skip


def with_hyperfine(cmd: list[str], runs: int, workdir: Path) -> dict[str, Any]:
    out = workdir / "hyperfine.json"
    line = " ".join(cmd)
    subprocess.run(
        ["hyperfine", "--warmup", "3", "--runs", str(runs), "-N", "--export-json", str(out), line],
        check=True,
        capture_output=True,
        timeout=300,
        env=ENV,
    )
    data = json.loads(out.read_text())["results"][0]
    return {
        "tool": "hyperfine",
        "runs": runs,
        "median_ms": round(data["median"] * 1000, 1),
        "mean_ms": round(data["mean"] * 1000, 1),
        "min_ms": round(data["min"] * 1000, 1),
        "max_ms": round(data["max"] * 1000, 1),
        "cpu_ms": round((data["user"] + data["system"]) * 1000, 1),
    }


def by_hand(cmd: list[str], runs: int) -> dict[str, Any]:
    for _ in range(3):
        subprocess.run(cmd, check=True, capture_output=True, env=ENV)
    times = []
    cpu_before = _children_cpu_s()
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=ENV)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "tool": "subprocess",
        "runs": runs,
        "median_ms": round(median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "cpu_ms": round((_children_cpu_s() - cpu_before) * 1000 / runs, 1),
    }


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_offenders(cmd: list[str], top: int = 10) -> list[dict[str, Any]]:
    """The costliest packages imported by one run of ``cmd``: for each top-level package,
    its outermost import's cumulative time (so a package's children count once)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    per_package: dict[str, tuple[float, str]] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if not m:
            continue
        module, cumulative = m.group(3), int(m.group(2)) / 1000
        package = module.split(".")[0]
        if package == "backwatch":
            package = ".".join(module.split(".")[:2])
        if cumulative > per_package.get(package, (0.0, ""))[0]:
            per_package[package] = (cumulative, module)
    rows = [
        {"package": p, "via": mod, "cumulative_ms": round(ms, 1)}
        for p, (ms, mod) in per_package.items()
    ]
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return rows[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 runs")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    runs = args.runs or (10 if args.quick else 20)
    with scratch_dir("cli") as d, Server(d / "data") as server:
        cmd = push_cmd(server.url, server.token)
        timing = with_hyperfine(cmd, runs, d) if shutil.which("hyperfine") else by_hand(cmd, runs)
        offenders = import_offenders(cmd)
        before = server.get("/api/v1/jobs/cli-bench")["runs_total"]
    # the pushes must really have landed (each timed run is one report)
    expected = runs + 3 + 1
    print(
        f"backwatch push: median {timing['median_ms']} ms, CPU {timing['cpu_ms']} ms "
        f"over {runs} runs ({timing['tool']}; target ≤ {TARGET_MS:.0f} ms)"
    )
    print(f"runs stored for cli-bench: {before} (expected {expected})")
    for row in offenders:
        print(f"  import {row['package']:<28} {row['cumulative_ms']:>7.1f} ms  ({row['via']})")
    result(
        "cli",
        **timing,
        stored=before,
        expected=expected,
        import_top=offenders,
        target_ms=TARGET_MS,
        met=timing["median_ms"] <= TARGET_MS,
        python=os.path.basename(sys.executable),
    )
    return 0 if before == expected else 1


if __name__ == "__main__":
    sys.exit(main())
