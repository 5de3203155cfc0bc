"""Cost of one shell library call (``backwatch.sh``) without a server. Budget: ≤ 10 ms.

One bash process sources the library and times a few hundred calls with $EPOCHREALTIME
(so bash's own start-up is not counted), in three settings:

- ``local``: no BACKWATCH_URL, only the status file is written (temp file + mv);
- ``spooling``: BACKWATCH_URL points at a port where nothing listens: every call also
  writes a spool entry; start and complete try the server (connection refused), the
  calls in between skip it during the retry pause;
- ``nasty names``: like ``local`` with file names full of quotes, backslashes, control
  characters, UTF-8 and invalid bytes (the escaping path).

    .venv/bin/python bench/bench_shell_lib.py [--quick] [--runs 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, result, scratch_dir

LIB = ROOT / "src" / "backwatch" / "shell" / "backwatch.sh"
BUDGET_MS = 10.0

# Each run: start, 2 status updates, 5 files, complete = 9 calls. Times in microseconds.
SCRIPT = r"""
set -euo pipefail
source "$LIB"
declare -A total=() count=()
t() { local a=${EPOCHREALTIME/[!0-9]/} b; "$@"; b=${EPOCHREALTIME/[!0-9]/};
      total[$1]=$(( ${total[$1]:-0} + b - a )); count[$1]=$(( ${count[$1]:-0} + 1 )); }
for ((r = 0; r < RUNS; r++)); do
  t metrics_backup_start "bench" "Benchmark backup" "/srv/backup/bench"
  t metrics_update_status "running" "dumping the database"
  for ((f = 0; f < 5; f++)); do
    t metrics_file_backup_complete "$PREFIX/file-$r-$f.tar" "$((r * 1000 + f))" "success"
  done
  t metrics_update_status "running" "uploading"
  t metrics_backup_complete "success" "Backup completed successfully"
done
for k in "${!total[@]}"; do printf '%s %s %s\n' "$k" "${total[$k]}" "${count[$k]}"; done
times
"""

NASTY = '/srv/"quoted" \\back\\ $(rm -rf) \t\x01 caf\u00e9 \u65e5\u672c'


def measure(runs: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        ["bash", "-c", SCRIPT],
        env={**os.environ, "LIB": str(LIB), "RUNS": str(runs), **env},
        capture_output=True,
        check=True,
    ).stdout.decode()
    per_fn: dict[str, float] = {}
    total_us = calls = 0
    cpu_s = 0.0
    for line in out.splitlines():
        if line[:1].isdigit():  # `times`: user and sys of the shell, then of its children
            parts = [v.rstrip("s").split("m") for v in line.split()]
            cpu_s += sum(int(m) * 60 + float(sec) for m, sec in parts)
            continue
        name, us, n = line.split()
        per_fn[name] = int(us) / int(n) / 1000
        total_us += int(us)
        calls += int(n)
    per_fn["all"] = total_us / calls / 1000
    per_fn["cpu"] = cpu_s / calls * 1000  # CPU ms per call, bash + mv/curl (less load-bound)
    return per_fn


def exec_baseline_ms(tmp: Path, count: int = 200) -> float:
    """What one fork + exec of ``mv`` costs on this machine right now: the floor of a call
    (every call runs one ``mv``; two when spooling)."""
    script = (
        "a=${EPOCHREALTIME/[!0-9]/}; for ((i = 0; i < $1; i++)); do "
        'command mv -f -- "$2/missing" "$2/x" 2>/dev/null; done; '
        "b=${EPOCHREALTIME/[!0-9]/}; echo $(( (b - a) / $1 ))"
    )
    out = subprocess.run(
        ["bash", "-c", script, "bench", str(count), str(tmp)],
        capture_output=True,
        check=True,
        text=True,
    )
    return int(out.stdout) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="backups per setting (9 calls)")
    parser.add_argument("--quick", action="store_true", help="10 backups per setting")
    args = parser.parse_args()
    runs = 10 if args.quick else args.runs
    with scratch_dir("shell") as tmp:
        base = {"METRICS_DIR": str(tmp / "metrics"), "BACKWATCH_SPOOL_DIR": str(tmp / "spool")}
        env_local = {**base, "PREFIX": "/srv/backup", "BACKWATCH_URL": ""}
        dead = f"http://127.0.0.1:{free_port()}"
        env_spool = {**env_local, "BACKWATCH_URL": dead, "BACKWATCH_QUIET": "1"}
        env_nasty = {**env_local, "PREFIX": NASTY + "\udcff"}  # + an invalid byte
        settings = {"local": env_local, "spooling": env_spool, "nasty names": env_nasty}
        figures = {}
        for name, env in settings.items():
            figures[name] = measure(runs, env)
            spooled = len(list((tmp / "spool").glob("*.json")))
            print(
                f"{name:12s} per call {figures[name]['all']:.2f} ms  "
                + json.dumps(
                    {k: round(v, 2) for k, v in sorted(figures[name].items()) if k != "all"}
                )
                + (f"  ({spooled} spooled)" if name == "spooling" else "")
            )
        baseline = exec_baseline_ms(tmp)
        print(f"one fork+exec of mv right now: {baseline:.2f} ms (load {os.getloadavg()[0]:.1f})")
    worst = max(figures[name]["all"] for name in ("local", "nasty names"))
    print(f"worst average per call without a server: {worst:.2f} ms (budget {BUDGET_MS} ms)")
    result(
        "shell_lib",
        calls_per_setting=runs * 9,
        local_ms=round(figures["local"]["all"], 3),
        local_cpu_ms=round(figures["local"]["cpu"], 3),
        spooling_ms=round(figures["spooling"]["all"], 3),
        nasty_ms=round(figures["nasty names"]["all"], 3),
        exec_mv_ms=round(baseline, 3),
        load=round(os.getloadavg()[0], 2),
        budget_ms=BUDGET_MS,
        ok=worst <= BUDGET_MS,
    )


if __name__ == "__main__":
    main()
