"""How good is a drill's full-restore estimate? (issue 16: within ±30 %.)

A 200 MB test set (files of 1 KB–4 MB, as a photo or document folder holds) is backed up
with restic, borg and the built-in engine. For each tool, in alternating rounds: a drill of
the job (its default sample: 20 files) gives ``estimate_full_restore_s``; then a full
restore of the same snapshot into an empty directory is timed (``restic restore latest``,
``borg extract``, ``backwatch restore latest``). The verdict is the median estimate over
the median measured restore.

    .venv/bin/python bench/bench_drill.py [--rounds 3] [--mb 200] [--only restic,borg,builtin]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH, median, result, scratch_dir

PASSWORD = "bench-drill"
BUDGET_PERCENT = 30.0


def make_set(root: Path, total_mb: int) -> int:
    """Files of 1 KB to 4 MB (log-uniform sizes), half compressible, to ``total_mb``."""
    rng = random.Random(16)
    total, i = 0, 0
    while total < total_mb * 10**6:
        size = int(10 ** rng.uniform(3, 6.6))
        folder = root / f"d{i % 12}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size) if i % 2 else (b"backwatch drill " * (size // 16 + 1))[:size]
        (folder / f"f{i:04}.bin").write_bytes(data)
        total += size
        i += 1
    return total


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    began = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.monotonic() - began


def setup(tool: str, work: Path, tree: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """Back ``tree`` up with ``tool``; answers (the job's TOML, the full-restore command)."""
    if tool == "restic":
        repo, pw = work / "restic", work / "pw"
        pw.write_text(PASSWORD)
        base = ["restic", "--repo", str(repo), "--password-file", str(pw)]
        run([*base, "init"], env)
        run([*base, "backup", str(tree)], env)
        job = (f'[jobs.restic]\nrepository = "{repo}"\npassword_file = "{pw}"\n'
               f'paths = ["{tree}"]\n')  # fmt: skip
        return job, [*base, "restore", "latest", "--target", "{target}"]
    if tool == "borg":
        repo = work / "borg"
        run(["borg", "init", "-e", "repokey", str(repo)], env)
        run(["borg", "create", f"{repo}::a1", str(tree)], env)
        job = f'[jobs.borg]\nrepository = "{repo}"\npaths = ["{tree}"]\n'
        return job, ["borg", "extract", f"{repo}::a1"]
    dest = work / "dest"
    job = f'destinations = ["{dest}"]\n[jobs.builtin]\npaths = ["{tree}"]\n'
    return job, [BACKWATCH, "restore", "latest", "--job", "bench", "--target", "{target}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--only", default="restic,borg,builtin")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with scratch_dir("bw-bench-drill-") as work:
        tree = work / "set"
        size = make_set(tree, args.mb)
        print(f"test set: {size / 1e6:.0f} MB in {sum(1 for _ in tree.rglob('*.bin'))} files")
        for tool in args.only.split(","):
            if tool != "builtin" and shutil.which(tool) is None:
                print(f"{tool}: not installed, skipped")
                continue
            here = work / tool
            here.mkdir()
            env = {**os.environ, "BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(here / "b"),
                   "RESTIC_CACHE_DIR": str(here / "cache")}  # fmt: skip
            env.pop("BACKWATCH_URL", None)
            job, restore = setup(tool, here, tree, env)
            config = here / "bw.toml"
            config.write_text(
                f'data_dir = "{here / "data"}"\n[[jobs]]\nid = "bench"\ntool = "{tool}"\n'
                f'env = {{BORG_PASSPHRASE = "{PASSWORD}", BORG_BASE_DIR = "{here / "b"}", '
                f'RESTIC_CACHE_DIR = "{here / "cache"}"}}\n{job}'
            )
            env["BACKWATCH_CONFIG"] = str(config)
            if tool == "builtin":
                run([BACKWATCH, "backup", "bench"], env)
            estimates, measured = [], []
            for _ in range(args.rounds):
                out = subprocess.run(
                    [BACKWATCH, "drill", "bench", "--json"], env=env, capture_output=True,
                    text=True, check=False,
                )  # fmt: skip
                drill = json.loads(out.stdout)["stats"]["drill"]
                estimates.append(drill["estimate_full_restore_s"])
                target = here / "restored"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                argv = [a.replace("{target}", str(target)) for a in restore]
                measured.append(run(argv, env, cwd=target))
                shutil.rmtree(target, ignore_errors=True)
            est, real = median(estimates), median(measured)
            error = (est - real) / real * 100
            figures[tool] = {"estimate_s": round(est, 2), "restore_s": round(real, 2),
                             "error_percent": round(error, 1)}  # fmt: skip
            verdict = "met" if abs(error) <= BUDGET_PERCENT else "MISSED"
            print(f"{tool}: estimate {est:.2f} s, full restore {real:.2f} s "
                  f"({error:+.1f} %, budget ±{BUDGET_PERCENT:.0f} %: {verdict}); "
                  f"estimates {estimates}, restores {[round(m, 2) for m in measured]}")  # fmt: skip
    result("drill", test_set_mb=round(size / 1e6), **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
