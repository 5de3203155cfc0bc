"""Runner overhead: ``backwatch run`` of a restic job against ``restic backup`` run directly.

A 200 MB tree (2,000 files of random data) is backed up into a fresh repository by each
side, alternating, ``--rounds`` times; the figure is the median wall time of the runner
over the median of plain restic. The runner's extra work: interpreter start, the database
(migrations check, the run, its phases, its log), the locks, reading restic's status lines
for the progress bar. Target: ≤ 5 % more wall time.

    .venv/bin/python bench/bench_runner.py [--quick] [--rounds 3] [--mb 200]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH, median, result, scratch_dir

TARGET_PERCENT = 5.0
#: what `serve`'s scheduler does for a due job, in a process that is already running
IN_PROCESS = """
import sys, time
from backwatch.runners.base import RunContext
from backwatch.runners.engine import JobRunner
from backwatch.runners.record import HubRecorder
from backwatch.services.hub import Hub
from backwatch.services.locks import Locks
from backwatch.settings import load_settings

settings = load_settings(sys.argv[1])
hub = Hub(settings)
locks = Locks(settings.data_dir, max_concurrent=3, engine=hub.read_engine)
runner = JobRunner(
    RunContext(settings, settings.jobs[0]), HubRecorder(hub, actor="bench"), locks,
    trigger="schedule",
)
start = time.perf_counter()
result = runner.run()
print(f"ELAPSED {time.perf_counter() - start:.4f} {result.status.value}")
hub.close()
"""


def make_tree(root: Path, megabytes: int) -> None:
    rng = random.Random(11)
    files = 2000
    size = megabytes * 1_000_000 // files
    for i in range(files):
        folder = root / f"d{i % 40}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05}.bin").write_bytes(rng.randbytes(size))


def init_repo(repo: Path, pw: Path, env: dict[str, str]) -> None:
    subprocess.run(
        ["restic", "init", "--repo", str(repo), "--password-file", str(pw)],
        env=env,
        check=True,
        capture_output=True,
    )


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took


def write_config(config: Path, data: Path, repo: Path, pw: Path, tree: Path) -> None:
    config.write_text(
        f'data_dir = "{data}"\n[[jobs]]\nid = "bench"\ntool = "restic"\n'
        f'[jobs.restic]\nrepository = "{repo}"\npassword_file = "{pw}"\n'
        f'paths = ["{tree}"]\n'
    )


def run_in_process(config: Path, env: dict[str, str]) -> float:
    """Wall time of the run alone, measured inside a process that has started already."""
    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(config)], env=env, capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        if line.startswith("ELAPSED "):
            return float(line.split()[1])
    raise SystemExit(f"in-process run failed ({proc.returncode}): {proc.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 MB, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.mb = 2, 50
    with scratch_dir("runner") as work:
        tree = work / "tree"
        make_tree(tree, args.mb)
        pw = work / "pass"
        pw.write_text("bench-password\n")
        env = {**os.environ, "RESTIC_CACHE_DIR": str(work / "cache")}
        env.pop("BACKWATCH_URL", None)
        direct: list[float] = []
        runner: list[float] = []
        in_process: list[float] = []
        for i in range(args.rounds):
            # plain restic, as a user would run it (with --json, as the runner does)
            repo = work / f"direct-{i}"
            init_repo(repo, pw, env)
            direct.append(
                timed(
                    [
                        "restic",
                        "--repo",
                        str(repo),
                        "--password-file",
                        str(pw),
                        "backup",
                        "--json",
                        str(tree),
                    ],
                    env,
                )
            )
            # the same backup through `backwatch run`
            repo = work / f"runner-{i}"
            init_repo(repo, pw, env)
            config = work / f"bw-{i}.toml"
            write_config(config, work / "data", repo, pw, tree)
            runner.append(timed([BACKWATCH, "run", "bench", "--config", str(config)], env))
            # the same backup run by a server that is already up (the scheduler's path)
            repo = work / f"served-{i}"
            init_repo(repo, pw, env)
            write_config(config, work / "data", repo, pw, tree)
            in_process.append(run_in_process(config, env))
            print(
                f"round {i + 1}: restic {direct[-1]:.2f} s, backwatch run {runner[-1]:.2f} s, "
                f"run by serve {in_process[-1]:.2f} s"
            )
    plain, wrapped, served = median(direct), median(runner), median(in_process)
    overhead = (wrapped - plain) / plain * 100
    served_overhead = (served - plain) / plain * 100
    verdict = "ok" if overhead <= TARGET_PERCENT else "OVER BUDGET"
    print(
        f"restic backup of {args.mb} MB: {plain:.2f} s direct, {wrapped:.2f} s through "
        f"`backwatch run`: overhead {overhead:+.1f} % (target ≤ {TARGET_PERCENT} %) {verdict}"
    )
    print(f"run by an already running server: {served:.2f} s, overhead {served_overhead:+.1f} %")
    result(
        "runner_overhead",
        megabytes=args.mb,
        rounds=args.rounds,
        restic_s=round(plain, 3),
        backwatch_run_s=round(wrapped, 3),
        overhead_percent=round(overhead, 2),
        served_s=round(served, 3),
        served_overhead_percent=round(served_overhead, 2),
        target_percent=TARGET_PERCENT,
    )


if __name__ == "__main__":
    main()
