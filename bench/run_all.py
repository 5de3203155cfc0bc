"""Run every benchmark and write bench/RESULTS.md (``make bench``).

Each benchmark runs in its own process and prints a ``RESULT {json}`` line; this script
collects them, adds the machine (cores, CPU, RAM, kernel, Python, SQLite, load average) and
writes RESULTS.md: the latest run in full, the ratio against the peer measured in the same
run, and one summary line per earlier run. The hand-written section between
``<!-- notes -->`` and ``<!-- /notes -->`` is kept as it is. A subset (``--only``) is
written as a partial run above the latest full one, which it does not replace.

    .venv/bin/python bench/run_all.py [--quick] [--only ingest,read,...] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, ROOT, scratch_dir
from gen_runs import build

RESULTS = BENCH / "RESULTS.md"
ORDER = (
    "cli",
    "shell_lib",
    "size",
    "ingest",
    "read",
    "ping",
    "memory",
    "runner",
    "engine",
    "drill",
)
SCRIPTS = {name: BENCH / f"bench_{name}.py" for name in ORDER}
NOTES_START, NOTES_END = "<!-- notes -->", "<!-- /notes -->"
PARTIAL_START, PARTIAL_END = "<!-- partial:", "<!-- /partial -->"
HISTORY_MARK = "<!-- history: one JSON summary per line -->"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for pkg in ("fastapi", "uvicorn", "starlette", "sqlalchemy", "pydantic"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
    }


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        # the results file itself, which every run rewrites, is not the code measured
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!bench/RESULTS.md",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except OSError:
        return "?"


def cpu_check_s() -> float:
    """CPU seconds for a fixed pure-Python loop, run just before a benchmark. The machine is
    a shared VM whose speed moves by 2x within an hour while the load average stays low
    (another tenant, not this one); this shows when a slow figure was a slow machine."""
    start = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i * i
    return round(time.process_time() - start, 3)


def run_one(name: str, args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(SCRIPTS[name]), *args]
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    cpu_check = cpu_check_s()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    elapsed = time.perf_counter() - t0
    sys.stdout.write(
        "".join(line + "\n" for line in proc.stdout.splitlines() if not line.startswith("RESULT"))
    )
    if proc.returncode not in (0, 1):
        sys.stdout.write(proc.stderr[-3000:])
    match = re.search(r"^RESULT (.*)$", proc.stdout, re.M)
    if match is None:  # the command as a string, like a result's (main() tidies both)
        failed = (proc.stderr or proc.stdout)[-1500:]
        return {"bench": name, "error": failed, "cmd": " ".join(cmd[1:])}
    data = json.loads(match.group(1))
    data["exit_code"] = proc.returncode
    data["elapsed_s"] = round(elapsed, 1)
    data["load_before"] = round(load_before, 2)
    data["load_after"] = round(os.getloadavg()[0], 2)
    data["cpu_check_s"] = cpu_check
    data["cmd"] = " ".join([".venv/bin/python", f"bench/{SCRIPTS[name].name}", *args])
    return data


def status(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


def render(run: dict[str, Any], notes: str, history: list[str]) -> str:
    res = {r["bench"]: r for r in run["results"]}
    out = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`bench/run_all.py`); numbers are measured, never edited by",
        "hand. See bench/README.md for what each benchmark does. The load average is recorded",
        "because this machine may be shared: a high load inflates every time below. So is a",
        "CPU check before each benchmark (seconds for a fixed Python loop: 0.1 s on the host",
        "of the latest runs, 0.4 s on earlier ones, twice that when a host is busy with other",
        "tenants).",
        "",
        f"## Latest run: {run['date']}{' (quick)' if run['quick'] else ''}",
        "",
        *run_section(run, res),
    ]
    out += ["", NOTES_START, notes.strip("\n"), NOTES_END, ""]
    out += ["## Earlier runs", "", HISTORY_MARK, *history, ""]
    return "\n".join(out)


def run_section(run: dict[str, Any], res: dict[str, Any]) -> list[str]:
    """The machine, the code, the budget table and the details of one run."""
    m = run["machine"]
    out = [
        f"- Machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gb']} GB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, SQLite {m['sqlite']}",
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- Code: {run['git']}; total time {run['elapsed_s']} s",
        "",
        "| Budget (SPEC §10) | Target | Measured | Verdict |",
        "|---|---|---|---|",
    ]
    out += summary_rows(res)
    out += ["", "### Details", ""]
    return out + detail_sections(res)


def write_partial(run: dict[str, Any]) -> None:
    """A run of some benchmarks (``--only``): its section goes above the latest full run,
    replacing an earlier partial run of the same benchmarks (or fewer), and its summary
    line joins the earlier runs. The next full run supersedes them all (their lines stay
    in the history)."""
    res = {r["bench"]: r for r in run["results"]}
    only = list(run.get("only") or res)
    names = ", ".join(only)
    section = [
        f"{PARTIAL_START} {','.join(only)} -->",
        f"## Partial run: {run['date']}{' (quick)' if run['quick'] else ''} (only {names})",
        "",
        "Re-measured after the latest full run below: these rows supersede its rows for the",
        "same benchmarks.",
        "",
        *run_section(run, res),
        PARTIAL_END,
        "",
    ]
    text = RESULTS.read_text() if RESULTS.exists() else f"# Benchmark results\n\n{HISTORY_MARK}\n"
    for match in re.finditer(r"<!-- partial: ([\w,]+) -->.*?<!-- /partial -->\n*", text, re.S):
        if set(match.group(1).split(",")) <= set(only):
            text = text.replace(match.group(0), "", 1)
    at = text.find("<!-- partial:")
    at = at if at >= 0 else text.find("## Latest run")
    at = at if at >= 0 else len(text)
    text = text[:at] + "\n".join(section) + "\n" + text[at:]
    text = text.replace(HISTORY_MARK, f"{HISTORY_MARK}\n{history_line(run)}", 1)
    RESULTS.write_text(text)


def summary_rows(res: dict[str, Any]) -> list[str]:
    rows = []
    ing = res.get("ingest")
    if ing and "backwatch" in ing:
        peer = {lv["connections"]: lv for lv in (ing.get("pushgateway") or {}).get("levels", [])}
        for lv in ing["backwatch"]["levels"]:
            c = lv["connections"]
            ratio = f", {lv['rps'] / peer[c]['rps']:.2f}× Pushgateway" if c in peer else ""
            rows.append(
                f"| Ingest, {c} connections | ≥ {ing['target_rps']} reports/s | "
                f"{lv['rps']:.0f}/s (p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms{ratio}) | "
                f"{status(lv['rps'] >= ing['target_rps'] and lv['non2xx'] == 0)} |"
            )
        b = ing["backwatch"]
        rows.append(
            f"| Ingest durability (SIGKILL) | stored ≥ acknowledged | {b['stored_after_sigkill']}"
            f" ≥ {b['acknowledged']} | {status(b['durable'])} |"
        )
    rd = res.get("read")
    if rd and "endpoints" in rd:
        for name in ("summary", "jobs", "runs_of_job"):
            e = rd["endpoints"][name]
            target = rd["target_p95_ms"]
            rows.append(
                f"| `{name}` p95, {rd['runs']:,} runs | ≤ {target:.0f} ms | {e['p95_ms']} ms "
                f"(p50 {e['p50_ms']}, p99 {e['p99_ms']}) | {status(e['p95_ms'] <= target)} |"
            )
        page = rd["endpoints"].get("overview_page")
        if page:
            kb = page["body_bytes"] / 1024
            rows.append(
                f"| Overview page `/` p95, {rd['runs']:,} runs, 500 jobs | ≤ 150 ms, ≤ 300 KB | "
                f"{page['p95_ms']} ms (p50 {page['p50_ms']}), {kb:.0f} KB of HTML | "
                f"{status(page['p95_ms'] <= 150 and kb <= 300)} |"
            )
    mem = res.get("memory")
    if mem and "idle_mb" in mem:
        t = mem["targets_mb"]
        rows.append(
            f"| RSS idle | ≤ {t['idle']} MB | {mem['idle_mb']} MB | "
            f"{status(mem['idle_mb'] <= t['idle'])} |"
        )
        rows.append(
            f"| RSS under load, {mem['runs']:,} runs | ≤ {t['load']} MB | "
            f"{mem['load']['peak_mb']} MB peak | {status(mem['load']['peak_mb'] <= t['load'])} |"
        )
    cli = res.get("cli")
    if cli and "median_ms" in cli:
        rows.append(
            f"| `backwatch push` cold start | ≤ {cli['target_ms']:.0f} ms | "
            f"{cli['median_ms']} ms median | {status(cli['met'])} |"
        )
    shell = res.get("shell_lib")
    if shell and "local_ms" in shell:
        worst = max(shell["local_ms"], shell["spooling_ms"], shell["nasty_ms"])
        rows.append(
            f"| Shell library call, no server | ≤ {shell['budget_ms']:.0f} ms | "
            f"{shell['local_ms']} ms (spooling {shell['spooling_ms']}, odd names "
            f"{shell['nasty_ms']}) | {status(worst <= shell['budget_ms'])} |"
        )
    runner = res.get("runner_overhead")
    if runner and "paired_overhead_s" in runner:
        target = runner["target_fixed_s"]
        rows.append(
            f"| `backwatch run` vs restic alone, {runner['megabytes']} MB | "
            f"≤ {target} s fixed | {runner['paired_overhead_s']:+.3f} s paired by round "
            f"({runner['paired_overhead_percent']:+.1f} %; medians {runner['backwatch_run_s']} s "
            f"vs {runner['restic_s']} s; restic against itself {runner['paired_noise_s']:+.3f} s "
            f"paired; own time {runner['backwatch_run_own_s']} s, the job's first run "
            f"{runner['first_run_own_s']} s) | {status(runner['paired_overhead_s'] <= target)} |"
        )
        rows.append(
            f"| the same job run by a running `serve` | ≤ {target} s fixed | "
            f"{runner['paired_served_overhead_s']:+.3f} s paired by round "
            f"({runner['paired_served_overhead_percent']:+.1f} %; {runner['served_s']} s median; "
            f"own time {runner['served_own_s']} s) | "
            f"{status(runner['paired_served_overhead_s'] <= target)} |"
        )
    engine = res.get("engine")
    if engine and "full" in engine:
        full, target = engine["full"], engine["full_target_ratio"]
        rows.append(
            f"| Built-in engine, full snapshot of {full['megabytes']:.0f} MB | ≥ {target} × "
            f"`tar \\| zstd -3` | {full['ratio']:.2f}× ({full['backwatch_mb_s']} vs "
            f"{full['tar_zstd_mb_s']} MB/s; CPU {full['backwatch_cpu_s']} s vs "
            f"{full['tar_zstd_cpu_s']} s) | {status(full['ratio'] >= target)} |"
        )
    if engine and "incremental" in engine:
        incr, target = engine["incremental"], engine["incremental_target_ratio"]
        rows.append(
            f"| Built-in engine, no-change incremental, {incr['files']:,} files | ≤ {target} × "
            f"restic | {incr['ratio']:.2f}× ({incr['backwatch_s']} s vs {incr['restic_s']} s; "
            f"CPU {incr['backwatch_cpu_s']} s vs {incr['restic_cpu_s']} s) | "
            f"{status(incr['ratio'] <= target)} |"
        )
    size = res.get("size")
    if size and "bytes_per_run" in size:
        rows.append(
            f"| SQLite size, {size['reports']:,} reports × 4 phases | ≤ {size['target_bytes']} B"
            f"/run | {size['bytes_per_run']:.0f} B/run | {status(size['met'])} |"
        )
    ping = res.get("ping")
    if ping and "ratio" in ping:
        rows.append(
            f"| Ping to a job with {ping['runs_in_job']:,} runs | ≥ {ping['budget_ratio']} × a "
            f"new job's rate | {ping['ratio']:.2f}× ({ping['history_pings_per_s']}/s vs "
            f"{ping['new_job_pings_per_s']}/s; p95 {ping['history_p95_ms']} vs "
            f"{ping['new_p95_ms']} ms) | {status(ping['ok'])} |"
        )
    drill = res.get("drill")
    for tool in ("restic", "borg", "builtin"):
        d = (drill or {}).get(tool)
        if d:
            rows.append(
                f"| Drill estimate of a full {tool} restore, {drill['test_set_mb']} MB | "
                f"within ±30 % | {d['error_percent']:+.1f} % ({d['estimate_s']} s estimated, "
                f"{d['restore_s']} s measured) | {status(abs(d['error_percent']) <= 30)} |"
            )
    for name, r in res.items():
        if "error" in r:
            rows.append(f"| {name} | — | failed: see details | **error** |")
    return rows


def detail_sections(res: dict[str, Any]) -> list[str]:
    out = []
    for name, r in res.items():  # in the order they ran
        out.append(f"#### {name}")
        out.append("")
        out.append(f"Reproduce: `{r.get('cmd', '')}`  ")
        if "elapsed_s" in r:
            check = f"; CPU check {r['cpu_check_s']} s" if "cpu_check_s" in r else ""
            out.append(
                f"Took {r['elapsed_s']} s; load average {r['load_before']} before, "
                f"{r['load_after']} after{check}."
            )
        out.append("")
        shown = {
            k: v
            for k, v in r.items()
            if k not in ("cmd", "bench", "elapsed_s", "load_before", "load_after", "cpu_check_s")
        }
        if name == "size":
            shown["per_table_bytes_per_run"] = {
                k: v for k, v in shown.get("per_table_bytes_per_run", {}).items() if v >= 2
            }
        out.append("```json")
        out.append(json.dumps(shown, indent=1, sort_keys=True))
        out.append("```")
        out.append("")
    return out


def history_line(run: dict[str, Any]) -> str:
    res = {r["bench"]: r for r in run["results"]}
    s: dict[str, Any] = {"date": run["date"], "git": run["git"], "quick": run["quick"]}
    if run.get("only"):
        s["only"] = run["only"]
    if "backwatch" in res.get("ingest", {}):
        s["ingest_rps"] = [lv["rps"] for lv in res["ingest"]["backwatch"]["levels"]]
        peer = res["ingest"].get("pushgateway")
        if peer:
            s["pushgateway_rps"] = [lv["rps"] for lv in peer["levels"]]
    if "endpoints" in res.get("read", {}):
        s["read_p95_ms"] = {k: v["p95_ms"] for k, v in res["read"]["endpoints"].items()}
    if "idle_mb" in res.get("memory", {}):
        s["rss_mb"] = [res["memory"]["idle_mb"], res["memory"]["load"]["peak_mb"]]
    if "median_ms" in res.get("cli", {}):
        s["cli_ms"] = res["cli"]["median_ms"]
    if "local_ms" in res.get("shell_lib", {}):
        s["shell_lib_ms"] = res["shell_lib"]["local_ms"]
    if "bytes_per_run" in res.get("size", {}):
        s["bytes_per_run"] = res["size"]["bytes_per_run"]
    runner = res.get("runner_overhead", {})
    if "paired_overhead_s" in runner:  # [paired overhead, own time] in seconds
        s["runner_fixed_s"] = [runner["paired_overhead_s"], runner["backwatch_run_own_s"]]
    return "- `" + json.dumps(s, sort_keys=True) + "`"


def previous() -> tuple[str, list[str]]:
    """The kept notes and history lines of the current RESULTS.md (plus its latest run)."""
    if not RESULTS.exists():
        return "", []
    text = RESULTS.read_text()
    notes = ""
    if NOTES_START in text and NOTES_END in text:
        notes = text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0]
    history = []
    if HISTORY_MARK in text:
        history = [ln for ln in text.split(HISTORY_MARK, 1)[1].splitlines() if ln.startswith("- `")]
    latest = re.search(r"<!-- latest: (.*) -->", text)
    if latest:
        history.insert(0, latest.group(1))
    return notes, history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument(
        "--only",
        help="comma-separated subset, written as a partial run above the latest full one: "
        + ", ".join(ORDER),
    )
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md")
    args = parser.parse_args()
    chosen = [n for n in ORDER if not args.only or n in args.only.split(",")]
    quick = ["--quick"] if args.quick else []
    started = time.perf_counter()
    run: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "git": git_rev(),
        "only": chosen if args.only else None,
        "machine": machine(),
        "results": [],
    }
    with scratch_dir("all") as scratch:
        big = scratch / "big"
        if {"read", "memory"} & set(chosen):
            runs = 100_000 if args.quick else 1_000_000
            print(f"=== building the {runs:,}-run database (gen_runs.py)", flush=True)
            info = build(big / "backwatch.db", runs=runs, jobs=500, days=90)
            print(f"built in {info['total_s']} s", flush=True)
        for name in chosen:
            extra = ["--data-dir", str(big)] if name in ("read", "memory") else []
            run["results"].append(run_one(name, [*quick, *extra]))
    run["elapsed_s"] = round(time.perf_counter() - started)
    for r in run["results"]:  # the shared scratch dir is gone: say how to rebuild it
        r["cmd"] = r.get("cmd", "").replace(f" --data-dir {big}", "")
    if args.no_write:
        print(json.dumps(run, indent=1))
        return 0
    if args.only:  # a subset never replaces the full latest run
        write_partial(run)
        print(f"\nwrote a partial run into {RESULTS.relative_to(ROOT)}")
        return 0
    notes, history = previous()
    text = render(run, notes or "\n## Notes\n\n(none yet)\n", history[:50])
    text += f"\n<!-- latest: {history_line(run)} -->\n"
    RESULTS.write_text(text)
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {run['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
