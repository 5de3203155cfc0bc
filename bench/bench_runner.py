"""Runner overhead: ``backwatch run`` of a restic job against ``restic backup`` run directly.

A 200 MB tree (2,000 files of random data) is backed up into a fresh repository by each
side in turn, ``--rounds`` times after one warm-up round (in an order that gives no side
the first place or the same predecessor more often, and the previous backup's writes are
flushed before each). The figure is the median, over the rounds, of the runner's wall time
less that round's plain restic (the median of each side is given too). The runner's
extra work: interpreter start, Typer, settings, the locks, the database (opened while restic
already runs), reading restic's status lines for the progress bar, the run's last writes,
the exit. Target (SPEC §10): ≤ 0.6 s fixed over restic alone.

The runner runs one config every round, as cron runs a job's every day (each round backs
up into a new, empty repository at the same place). Its warm-up round is the job's first
run, which also writes backwatch's bytecode; its figure is printed too.

Besides wall time (noisy on a shared machine), each side's CPU time (user + sys, restic
included) and the runner's *own* time (its wall time less the backup phase it recorded,
which is restic's life) are given: they move far less with the load. Plain restic also
runs a second time every round ("restic against itself"): how far it lands from the first,
paired and by medians, is the noise the wall figures carry on this machine at this time.

    .venv/bin/python bench/bench_runner.py [--quick] [--rounds 16] [--mb 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH, median, result, scratch_dir

from backwatch.runners.restic import STATUS_ENV as RESTIC_ENV

#: SPEC §10: what `backwatch run` may add to the tool alone, in seconds of wall time
TARGET_FIXED_S = 0.6
SIDES = ("restic", "cli", "served", "control")
#: the order of the four sides, round after round (a Williams square): each side takes each
#: place, and follows each other side, once every four rounds, so that neither going first
#: nor what ran just before favours one side
WILLIAMS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))
#: what `serve`'s scheduler does for a due job, in a process that is already running
IN_PROCESS = """
import sys, time
from backwatch.runners.base import RunContext
from backwatch.runners.job_runner import JobRunner
from backwatch.runners.record import BackgroundRecorder, HubRecorder
from backwatch.services.hub import Hub
from backwatch.services.locks import Locks
from backwatch.settings import load_settings

settings = load_settings(sys.argv[1])
hub = Hub(settings)
locks = Locks(settings.data_dir, max_concurrent=3, engine=hub.read_engine)
recorder = BackgroundRecorder(lambda: HubRecorder(hub, actor="bench"))
runner = JobRunner(RunContext(settings, settings.jobs[0]), recorder, locks, trigger="schedule")
start = time.perf_counter()
result = runner.run()
recorder.close()
took = time.perf_counter() - start
print(f"ELAPSED {took:.4f} {result.record['phases'][0]['duration_s']:.4f} {result.status.value}")
hub.close()
"""


@dataclass
class Sample:
    wall_s: float
    cpu_s: float  # user + sys of the process and its children (restic)
    own_s: float | None = None  # wall time less the backup phase (restic's own life)


def make_tree(root: Path, megabytes: int) -> None:
    rng = random.Random(11)
    files = 2000
    size = megabytes * 1_000_000 // files
    for i in range(files):
        folder = root / f"d{i % 40}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05}.bin").write_bytes(rng.randbytes(size))


def fresh_repo(repo: Path, template: Path, cache: Path) -> Path:
    """An empty restic repository at ``repo`` (whatever was there removed): a copy of one
    made once, so that every side opens a repository with the same key (restic tunes its
    key's cost to the machine's speed when it makes one), and no side finds another's
    files in restic's cache (the copies share the template's id)."""
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(template, repo)
    shutil.rmtree(cache, ignore_errors=True)
    return repo


def init_repo(repo: Path, pw: Path, env: dict[str, str]) -> None:
    subprocess.run(
        ["restic", "init", "--repo", str(repo), "--password-file", str(pw)],
        env=env,
        check=True,
        capture_output=True,
    )


def timed(argv: list[str], env: dict[str, str]) -> tuple[Sample, str]:
    """Wall and CPU time of a command (and its children), and what it printed. The
    previous backup's writes are flushed first: no side pays for another's writeback."""
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(took, cpu), proc.stdout


def write_config(config: Path, data: Path, repo: Path, pw: Path, tree: Path) -> None:
    config.write_text(
        f'data_dir = "{data}"\n[[jobs]]\nid = "bench"\ntool = "restic"\n'
        f'[jobs.restic]\nrepository = "{repo}"\npassword_file = "{pw}"\n'
        f'paths = ["{tree}"]\n'
    )


def run_cli(config: Path, data: Path, env: dict[str, str]) -> Sample:
    sample, _ = timed([BACKWATCH, "run", "bench", "--config", str(config)], env)
    with contextlib.closing(sqlite3.connect(data / "backwatch.db")) as db:
        (phase,) = db.execute(
            "SELECT p.duration_s FROM phases p JOIN runs r ON r.id = p.run_id "
            "ORDER BY r.started_at DESC LIMIT 1"
        ).fetchone()
    sample.own_s = sample.wall_s - phase
    return sample


def run_in_process(config: Path, env: dict[str, str]) -> Sample:
    """Wall time of the run alone, measured inside a process that has started already."""
    sample, out = timed([sys.executable, "-c", IN_PROCESS, str(config)], env)
    for line in out.splitlines():
        if line.startswith("ELAPSED "):
            took, phase = (float(x) for x in line.split()[1:3])
            return Sample(took, sample.cpu_s, took - phase)
    raise SystemExit(f"in-process run printed no ELAPSED line: {out[-2000:]}")


def percent_over(side: float, base: float) -> float:
    """How much longer ``side`` took than ``base``, in per cent of ``base``."""
    return (side - base) / base * 100


def seconds_over(side: float, base: float) -> float:
    """How much longer ``side`` took than ``base``, in seconds."""
    return side - base


def medians(samples: list[Sample]) -> Sample:
    owns = [s.own_s for s in samples if s.own_s is not None]
    return Sample(
        median([s.wall_s for s in samples]),
        median([s.cpu_s for s in samples]),
        median(owns) if owns else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 MB, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.mb = 2, 50
    load_before = os.getloadavg()[0]
    sides: dict[str, list[Sample]] = {name: [] for name in SIDES}
    with scratch_dir("runner") as work:
        tree = work / "tree"
        make_tree(tree, args.mb)
        pw = work / "pass"
        pw.write_text("bench-password\n")
        cache = work / "cache"
        env = {**os.environ, "RESTIC_CACHE_DIR": str(cache)}
        env.pop("BACKWATCH_URL", None)
        # an installed backwatch has its bytecode compiled: let the warm-up round write it
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        config, served_config = work / "bw.toml", work / "bw-served.toml"
        template = work / "template"
        init_repo(template, pw, env)

        def direct(place: str = "direct") -> Sample:
            """plain restic with the command line and environment the runner gives it
            (``--json``, ``--host``, two status lines a second): the same work, so that
            the difference is backwatch's alone"""
            repo = fresh_repo(work / place, template, cache)
            argv = ["restic", "--repo", str(repo), "--password-file", str(pw), "backup"]
            argv += ["--json", "--host", socket.gethostname(), "--", str(tree)]
            return timed(argv, {**env, **RESTIC_ENV})[0]

        def control() -> Sample:
            """plain restic once more: how far two runs of the very same thing differ on
            this machine now (the noise the other figures carry)"""
            return direct("control")

        def cli() -> Sample:
            """the same backup through `backwatch run`: one config, as cron runs it every
            day (each round into a new, empty repository at the same place)"""
            repo = fresh_repo(work / "runner", template, cache)
            write_config(config, work / "data", repo, pw, tree)
            return run_cli(config, work / "data", env)

        def served() -> Sample:
            """the same backup run by a server that is already up (the scheduler's path)"""
            repo = fresh_repo(work / "served", template, cache)
            write_config(served_config, work / "data-served", repo, pw, tree)
            return run_in_process(served_config, env)

        run_side = dict(zip(SIDES, (direct, cli, served, control), strict=True))
        for i in range(args.rounds + 1):
            samples = {}
            for place in WILLIAMS[i % len(WILLIAMS)]:
                samples[SIDES[place]] = run_side[SIDES[place]]()
            direct_s, cli_s, served_s = samples["restic"], samples["cli"], samples["served"]
            label = "warm-up" if i == 0 else f"round {i}"
            print(
                f"{label}: restic {direct_s.wall_s:.2f} s (again {samples['control'].wall_s:.2f} "
                f"s), backwatch run {cli_s.wall_s:.2f} s (own {cli_s.own_s:.2f} s), run by serve "
                f"{served_s.wall_s:.2f} s (own {served_s.own_s:.3f} s)"
            )
            if i == 0:
                first = cli_s
            else:
                for name in SIDES:
                    sides[name].append(samples[name])
    plain, wrapped, by_serve, again = (medians(sides[name]) for name in SIDES)

    # the overhead paired by round (each round's runner less that round's restic, run
    # within seconds of each other), the median of those: the verdict's figure. The machine
    # drifts from one round to the next, and the two medians of independent sides carry that
    # drift (restic against itself lands within a few per cent either way of restic)
    def paired(name: str, over: Callable[[float, float], float]) -> float:
        pairs = zip(sides["restic"], sides[name], strict=True)
        return median([over(w.wall_s, p.wall_s) for p, w in pairs])

    paired_s, paired_served_s, paired_noise_s = (
        paired(n, seconds_over) for n in ("cli", "served", "control")
    )
    paired_pct, paired_served, paired_noise = (
        paired(n, percent_over) for n in ("cli", "served", "control")
    )
    overhead = percent_over(wrapped.wall_s, plain.wall_s)
    served_overhead = percent_over(by_serve.wall_s, plain.wall_s)
    noise = percent_over(again.wall_s, plain.wall_s)
    # the runners' own time over restic's: the same overhead, far less moved by the load
    own = (wrapped.own_s or 0.0) / plain.wall_s * 100
    served_own = (by_serve.own_s or 0.0) / plain.wall_s * 100
    verdict = "ok" if paired_s <= TARGET_FIXED_S else "OVER BUDGET"
    print(
        f"restic backup of {args.mb} MB: {plain.wall_s:.2f} s direct, {wrapped.wall_s:.2f} s "
        f"through `backwatch run`: overhead paired by round {paired_s:+.3f} s (target ≤ "
        f"{TARGET_FIXED_S} s fixed) {verdict}, {paired_pct:+.1f} %; of the medians "
        f"{wrapped.wall_s - plain.wall_s:+.3f} s, {overhead:+.1f} %; its own time "
        f"{wrapped.own_s:.3f} s ({own:.1f} %); CPU {wrapped.cpu_s:.2f} s vs {plain.cpu_s:.2f} s"
    )
    print(
        f"restic against itself (the same command again, each round): {again.wall_s:.2f} s, "
        f"{noise:+.1f} %, paired by round {paired_noise_s:+.3f} s ({paired_noise:+.1f} %): the "
        "noise in these figures"
    )
    first_own = (first.own_s or 0.0) / plain.wall_s * 100
    print(
        f"the job's first run (its warm-up, bytecode written): its own time "
        f"{first.own_s or 0.0:.3f} s ({first_own:.1f} %)"
    )
    print(
        f"run by an already running server: {by_serve.wall_s:.2f} s, overhead "
        f"{served_overhead:+.1f} %, paired by round {paired_served_s:+.3f} s "
        f"({paired_served:+.1f} %); its own time {by_serve.own_s:.3f} s ({served_own:.1f} %)"
    )
    result(
        "runner_overhead",
        megabytes=args.mb,
        rounds=args.rounds,
        restic_s=round(plain.wall_s, 3),
        restic_cpu_s=round(plain.cpu_s, 3),
        backwatch_run_s=round(wrapped.wall_s, 3),
        backwatch_run_cpu_s=round(wrapped.cpu_s, 3),
        backwatch_run_own_s=round(wrapped.own_s or 0.0, 3),
        overhead_s=round(wrapped.wall_s - plain.wall_s, 3),
        paired_overhead_s=round(paired_s, 3),
        overhead_percent=round(overhead, 2),
        paired_overhead_percent=round(paired_pct, 2),
        own_percent=round(own, 2),
        first_run_own_s=round(first.own_s or 0.0, 3),
        first_run_own_percent=round(first_own, 2),
        served_s=round(by_serve.wall_s, 3),
        served_own_s=round(by_serve.own_s or 0.0, 3),
        served_overhead_percent=round(served_overhead, 2),
        control_s=round(again.wall_s, 3),
        noise_percent=round(noise, 2),
        paired_noise_s=round(paired_noise_s, 3),
        paired_noise_percent=round(paired_noise, 2),
        paired_served_overhead_s=round(paired_served_s, 3),
        paired_served_overhead_percent=round(paired_served, 2),
        served_own_percent=round(served_own, 2),
        target_fixed_s=TARGET_FIXED_S,
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )


if __name__ == "__main__":
    main()
