"""The built-in snapshot engine against its peers (SPEC §10).

(a) Full snapshot throughput: ``backwatch backup --source T --dest D --no-record`` (a fresh
destination each round) against ``tar -cf - T | zstd -3 -q > out`` on the same tree (half
compressible text, half random bytes, files of 1 KB to 2 MB), alternating, after one
warm-up round. MB/s is the tree's size over the median wall time. Target: ≥ 0.8 × the
throughput of tar | zstd.

(b) A no-change incremental over many small files: ``backwatch backup`` into a destination
that already has a snapshot of the tree, against ``restic backup`` into a repository that
already has one, nothing changed, alternating. Target: ≤ 0.5 × restic's median wall time.

Wall time on a shared 2-core machine is noisy: each side's CPU time (user + sys of the
process and its children) is given too, and the load average before and after.

    .venv/bin/python bench/bench_engine.py [--quick] [--rounds 3] [--mb 150] [--files 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH, median, result, scratch_dir

FULL_TARGET = 0.8  # at least this share of tar | zstd's throughput
INCREMENTAL_TARGET = 0.5  # at most this share of restic's time
#: the measured commands run from installed bytecode, as a user's would
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.pop("BACKWATCH_URL", None)


@dataclass
class Sample:
    wall_s: float
    cpu_s: float  # user + sys of the command and its children


def timed(argv: list[str], env: dict[str, str] | None = None) -> Sample:
    """Wall and CPU time of a command (its children included); exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env or ENV, capture_output=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(took, cpu)


def medians(samples: list[Sample]) -> Sample:
    return Sample(median([s.wall_s for s in samples]), median([s.cpu_s for s in samples]))


def text_pool(rng: random.Random, size: int) -> bytes:
    """Text-like bytes (words from a small vocabulary): zstd -3 compresses them ~3×."""
    words = [bytes(rng.choices(range(97, 123), k=rng.randint(2, 9))) for _ in range(4000)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=200)) + b"\n"
    return bytes(out[:size])


def make_mixed_tree(root: Path, megabytes: int) -> int:
    """Files of 1 KB–2 MB, half text, half random, in 50 folders; the bytes written."""
    rng = random.Random(7)
    pool = text_pool(rng, 4 << 20)
    total, i, goal = 0, 0, megabytes * 1_000_000
    while total < goal:
        size = min(int(rng.lognormvariate(10.5, 1.6)) + 1024, 2 << 20, goal - total + 1024)
        if i % 2:
            data = rng.randbytes(size)
        else:
            start = rng.randrange(len(pool) - size)
            data = pool[start : start + size]
        folder = root / f"d{i % 50:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:06}.dat").write_bytes(data)
        total += size
        i += 1
    return total


def make_small_tree(root: Path, files: int) -> None:
    """``files`` files of 100–3,000 bytes, 500 per folder, two levels deep."""
    rng = random.Random(5)
    pool = text_pool(rng, 1 << 20)
    for i in range(files):
        folder = root / f"a{i // 10_000:02}" / f"b{i // 500 % 20:02}"
        if i % 500 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(100, 3000)
        start = rng.randrange(len(pool) - size)
        (folder / f"f{i:06}.txt").write_bytes(pool[start : start + size])


def backup_cmd(tree: Path, dest: Path) -> list[str]:
    return [BACKWATCH, "backup", "--source", str(tree), "--dest", str(dest), "--no-record"]


def bench_full(work: Path, megabytes: int, rounds: int) -> dict[str, object]:
    tree = work / "mixed"
    size = make_mixed_tree(tree, megabytes)
    mb = size / 1e6
    sides: dict[str, list[Sample]] = {"tar_zstd": [], "backwatch": []}
    for i in range(rounds + 1):
        out = work / "out.tar.zst"
        folder, target = shlex.quote(str(work)), shlex.quote(str(out))
        pipeline = f"tar -cf - -C {folder} mixed | zstd -3 -q > {target}"
        tar = timed(["sh", "-c", pipeline])
        compressed = out.stat().st_size
        out.unlink()
        dest = work / "dest-full"
        ours = timed(backup_cmd(tree, dest))
        archives = list(dest.glob("snapshots/*/data.tar.zst"))
        our_compressed = archives[0].stat().st_size
        shutil.rmtree(dest)
        label = "warm-up" if i == 0 else f"round {i}"
        print(
            f"full {label}: tar|zstd {tar.wall_s:.2f} s (CPU {tar.cpu_s:.2f} s), "
            f"backwatch {ours.wall_s:.2f} s (CPU {ours.cpu_s:.2f} s)"
        )
        if i > 0:
            sides["tar_zstd"].append(tar)
            sides["backwatch"].append(ours)
    peer, ours = medians(sides["tar_zstd"]), medians(sides["backwatch"])
    ratio = peer.wall_s / ours.wall_s
    verdict = "ok" if ratio >= FULL_TARGET else "UNDER BUDGET"
    print(
        f"full snapshot of {mb:.0f} MB: backwatch {mb / ours.wall_s:.0f} MB/s, tar|zstd -3 "
        f"{mb / peer.wall_s:.0f} MB/s: {ratio:.2f}× (target ≥ {FULL_TARGET}) {verdict}; "
        f"CPU {ours.cpu_s:.2f} s vs {peer.cpu_s:.2f} s ({peer.cpu_s / ours.cpu_s:.2f}×); "
        f"compressed {our_compressed / 1e6:.1f} MB vs {compressed / 1e6:.1f} MB"
    )
    return {
        "megabytes": round(mb, 1),
        "backwatch_s": round(ours.wall_s, 3),
        "backwatch_cpu_s": round(ours.cpu_s, 3),
        "backwatch_mb_s": round(mb / ours.wall_s, 1),
        "tar_zstd_s": round(peer.wall_s, 3),
        "tar_zstd_cpu_s": round(peer.cpu_s, 3),
        "tar_zstd_mb_s": round(mb / peer.wall_s, 1),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(peer.cpu_s / ours.cpu_s, 3),
        "compressed_mb": round(our_compressed / 1e6, 2),
        "tar_zstd_compressed_mb": round(compressed / 1e6, 2),
    }


def bench_incremental(work: Path, files: int, rounds: int) -> dict[str, object]:
    tree = work / "small"
    make_small_tree(tree, files)
    pw = work / "pass"
    pw.write_text("bench-password\n")
    env = {**ENV, "RESTIC_CACHE_DIR": str(work / "cache"), "RESTIC_PASSWORD_FILE": str(pw)}
    repo, dest = work / "restic", work / "dest-incr"
    restic = ["restic", "--repo", str(repo), "--quiet"]
    subprocess.run([*restic, "init"], env=env, check=True, capture_output=True)
    subprocess.run([*restic, "backup", str(tree)], env=env, check=True, capture_output=True)
    subprocess.run(backup_cmd(tree, dest), env=ENV, check=True, capture_output=True)
    sides: dict[str, list[Sample]] = {"restic": [], "backwatch": []}
    for i in range(rounds + 1):
        theirs = timed([*restic, "backup", str(tree)], env=env)
        ours = timed(backup_cmd(tree, dest))
        label = "warm-up" if i == 0 else f"round {i}"
        print(
            f"no-change {label}: restic {theirs.wall_s:.2f} s (CPU {theirs.cpu_s:.2f} s), "
            f"backwatch {ours.wall_s:.2f} s (CPU {ours.cpu_s:.2f} s)"
        )
        if i > 0:
            sides["restic"].append(theirs)
            sides["backwatch"].append(ours)
    if len(list(dest.glob("snapshots/*/manifest.json"))) != 1:
        raise SystemExit("a no-change backup wrote a snapshot")
    peer, ours = medians(sides["restic"]), medians(sides["backwatch"])
    ratio = ours.wall_s / peer.wall_s
    verdict = "ok" if ratio <= INCREMENTAL_TARGET else "OVER BUDGET"
    print(
        f"no-change incremental over {files:,} files: backwatch {ours.wall_s:.2f} s, restic "
        f"{peer.wall_s:.2f} s: {ratio:.2f}× (target ≤ {INCREMENTAL_TARGET}) {verdict}; "
        f"CPU {ours.cpu_s:.2f} s vs {peer.cpu_s:.2f} s ({ours.cpu_s / peer.cpu_s:.2f}×)"
    )
    return {
        "files": files,
        "backwatch_s": round(ours.wall_s, 3),
        "backwatch_cpu_s": round(ours.cpu_s, 3),
        "restic_s": round(peer.wall_s, 3),
        "restic_cpu_s": round(peer.cpu_s, 3),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(ours.cpu_s / peer.cpu_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=150, help="size of the full-snapshot tree")
    parser.add_argument("--files", type=int, default=100_000, help="files of the no-change tree")
    parser.add_argument("--quick", action="store_true", help="50 MB, 20,000 files")
    parser.add_argument("--only", choices=("full", "incremental"), help="one half only")
    args = parser.parse_args()
    if args.quick:
        args.mb, args.files = 50, 20_000
    missing = [t for t in ("tar", "zstd", "restic") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"bench_engine needs {', '.join(missing)} on PATH")
    load_before = os.getloadavg()[0]
    figures: dict[str, object] = {}
    with scratch_dir("engine") as work:
        if args.only != "incremental":
            figures["full"] = bench_full(work, args.mb, args.rounds)
        if args.only != "full":
            figures["incremental"] = bench_incremental(work, args.files, args.rounds)
    result(
        "engine",
        rounds=args.rounds,
        full_target_ratio=FULL_TARGET,
        incremental_target_ratio=INCREMENTAL_TARGET,
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        **figures,
    )


if __name__ == "__main__":
    main()
