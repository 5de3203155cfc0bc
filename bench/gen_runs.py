"""Build a large SQLite database fast: N runs across J jobs over D days, ending now.

The schema comes from ``backwatch db migrate``; rows go in with ``executemany`` in one
transaction, bypassing HTTP. What the write path keeps consistent is kept consistent here
too: each job's ``last_*`` snapshot, ``last_success_at``, ``median_duration_s`` and
``runs_total``, and the ``daily_rollups`` that the summary reads.

    .venv/bin/python bench/gen_runs.py OUT.db [--runs 1000000] [--jobs 500] [--days 90]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACKWATCH

DAY = 86400
TOOLS = ("restic", "borg", "rsync", "command")
GOOD = ("success", "warning")
RUN_COLUMNS = (
    "id", "job", "host", "status", "started_at", "finished_at", "duration_s", "exit_code",
    "size_bytes", "files", "files_new", "files_changed", "bytes_added", "message", "tool",
    "stats", "source", "trigger", "backup_id", "updated_at",
)  # fmt: skip


def _status(rng: random.Random, fail_rate: float) -> str:
    x = rng.random()
    if x < fail_rate:
        return "failed"
    if x < fail_rate + 0.04:
        return "warning"
    return "success"


def build(path: Path, *, runs: int, jobs: int, days: int, seed: int = 1) -> dict[str, float]:
    """Create ``path`` (must not exist) and fill it. Returns timings and counts."""
    if path.exists():
        raise SystemExit(f"{path} exists; give a new file")
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([BACKWATCH, "db", "migrate", "--db", str(path)], check=True, capture_output=True)
    rng = random.Random(seed)
    now = time.time()
    start = now - days * DAY
    job_ids = [f"job-{i:04d}" for i in range(jobs)]
    profile = {
        j: {
            "host": f"host-{i % 40:02d}",
            "tool": TOOLS[i % len(TOOLS)],
            "duration": rng.uniform(30, 3600),
            "size": rng.randint(10**8, 5 * 10**11),
            "fail": rng.choice((0.0, 0.01, 0.03, 0.1)),
        }
        for i, j in enumerate(job_ids)
    }
    step = (now - 3600 - start) / runs
    rows = []
    rollups: dict[tuple[str, int], list[float]] = {}
    latest: dict[str, tuple] = {}
    last_success: dict[str, float] = {}
    recent_ok: dict[str, list[float]] = {j: [] for j in job_ids}
    counts = dict.fromkeys(job_ids, 0)
    for i in range(runs):
        job = job_ids[rng.randrange(jobs)]
        p = profile[job]
        started = start + i * step
        status = _status(rng, p["fail"])
        duration = p["duration"] * rng.uniform(0.8, 1.25)
        finished = started + duration
        size = int(p["size"] * rng.uniform(0.99, 1.01)) if status in GOOD else None
        files = rng.randint(1000, 200_000)
        run_id = f"{int(started * 1000):011x}{i:011x}"
        row = (
            run_id, job, p["host"], status, started, finished, duration,
            0 if status == "success" else (3 if status == "warning" else 1),
            size, files, files // 50, files // 20, (size or 0) // 100,
            None if status != "failed" else "exit status 1", p["tool"], None, "api", "api",
            None, finished,
        )  # fmt: skip
        rows.append(row)
        counts[job] += 1
        latest[job] = row
        if status in GOOD:
            last_success[job] = finished
        if status == "success":
            recent = recent_ok[job]
            recent.append(duration)
            if len(recent) > 20:
                del recent[0]
        r = rollups.setdefault((job, int(started // DAY)), [0, 0, 0, 0, 0, 0.0, 0, 0.0, 0])
        r[0] += 1
        r[{"success": 1, "warning": 2, "failed": 3}[status]] += 1
        r[5] += duration
        r[6] += 1
        if size is not None:
            r[7] += size
            r[8] += 1
    t_gen = time.perf_counter() - t0
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    db.execute("BEGIN")
    for j in job_ids:
        last = latest.get(j)
        ok = sorted(recent_ok[j])
        db.execute(
            "INSERT INTO jobs (id, description, host, tool, schedule, timezone, grace_s, tags,"
            " paused, ping_key, origin, created_at, updated_at, last_run_id, last_started_at,"
            " last_finished_at, last_status, last_duration_s, last_size_bytes, last_success_at,"
            " median_duration_s, runs_total)"
            " VALUES (?, '', ?, ?, ?, 'UTC', 3600.0, '[]', 0, ?, 'auto', ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?)",
            (
                j, profile[j]["host"], profile[j]["tool"], "0 * * * *", f"pk-{j}", start, now,
                last[0] if last else None, last[4] if last else None,
                last[5] if last else None, last[3] if last else None,
                last[6] if last else None, last[8] if last else None,
                last_success.get(j), ok[len(ok) // 2] if ok else None, counts[j],
            ),
        )  # fmt: skip
    marks = ", ".join("?" * len(RUN_COLUMNS))
    db.executemany(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})", rows)
    db.executemany(
        "INSERT INTO daily_rollups (job, day, runs, success, warning, failed, other,"
        " duration_sum, duration_count, size_sum, size_count) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(job, day, *r) for (job, day), r in rollups.items()],
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "runs": runs,
        "jobs": jobs,
        "days": days,
        "rollup_rows": len(rollups),
        "generate_s": round(t_gen, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "bytes": path.stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    info = build(args.out, runs=args.runs, jobs=args.jobs, days=args.days)
    print(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
