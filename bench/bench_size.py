"""SQLite bytes per run: N native reports with 4 phases each, no logs.

The reports go through the real ingest code (``parse_record`` → ``services.runs.
record_report``) in transactions of 1,000, as the server's group commit would write them,
but without HTTP so that 100 k reports take seconds, not minutes. Then the WAL is
checkpointed and the file measured; the growth over an empty database, divided by N, is
the figure. Target: ≤ 1 KB a run. Bounded by ``--max-seconds``: a slow write path stops
early and the figure is taken over the reports written.

    .venv/bin/python bench/bench_size.py [--quick] [--reports 100000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import result, scratch_dir

TARGET_BYTES = 1024
BATCH = 1000
PHASES = ("prepare", "snapshot", "upload", "verify")


def report(i: int, now: float, n: int) -> dict[str, Any]:
    started = now - 30 * 86400 + i * (29 * 86400 / n)
    return {
        "id": f"size-{i:08d}",
        "job": f"job-{i % 100:03d}",
        "host": f"host-{i % 10}",
        "status": "failed" if i % 25 == 0 else "success",
        "started_at": started,
        "duration_s": 300 + i % 600,
        "size_bytes": 10**9 + i * 4096,
        "files": 100_000 + i % 5000,
        "files_new": i % 300,
        "files_changed": i % 900,
        "bytes_added": 10**6 + i,
        "exit_code": 1 if i % 25 == 0 else 0,
        "tool": "restic",
        "phases": [{"name": p, "duration_s": 10 + (i + k) % 90} for k, p in enumerate(PHASES)],
    }


def checkpoint(db: Path) -> int:
    """Move the WAL into the main file and return the file's size."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db.stat().st_size


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table and index, from the dbstat virtual table when SQLite has it."""
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: int(size) for name, size in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 k reports")
    parser.add_argument("--reports", type=int)
    parser.add_argument(
        "--max-seconds", type=float, default=180, help="stop early (bytes/run barely moves)"
    )
    args = parser.parse_args()
    n = args.reports or (20_000 if args.quick else 100_000)

    from backwatch.ingest import parse_record
    from backwatch.services import runs as run_service
    from backwatch.services.hub import Hub
    from backwatch.settings import load_settings

    with scratch_dir("size") as d:
        settings = load_settings(env={"BACKWATCH_DATA_DIR": str(d)})
        db = d / "backwatch.db"
        with Hub(settings) as hub:
            empty = checkpoint(db)
            now = time.time()
            t0 = time.perf_counter()
            written = 0
            for start in range(0, n, BATCH):
                if time.perf_counter() - t0 > args.max_seconds:
                    print(f"time budget reached after {written} reports", flush=True)
                    break
                ops = [
                    run_service.record_report(parse_record(report(i, now, n)), now)
                    for i in range(start, min(n, start + BATCH))
                ]

                def batch(conn: Any, unit: Any, ops: list = ops) -> None:
                    for op in ops:
                        op(conn, unit)

                hub.write(batch)
                written += len(ops)
            elapsed = time.perf_counter() - t0
            n = written
        size = checkpoint(db)
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
            phases = conn.execute("SELECT count(*) FROM phases").fetchone()[0]
        breakdown = table_bytes(db)
    per_run = (size - empty) / n
    print(f"{n} reports ({phases} phases) in {elapsed:.1f} s ({n / elapsed:.0f}/s in-process)")
    print(f"database {size / 2**20:.1f} MiB, empty {empty / 1024:.0f} KiB -> {per_run:.0f} B/run")
    for name, nbytes in list(breakdown.items())[:10]:
        print(f"  {name:<40} {nbytes / n:>7.1f} B/run")
    result(
        "size",
        reports=n,
        requested=args.reports or (20_000 if args.quick else 100_000),
        stored=stored,
        phases=phases,
        bytes_total=size,
        bytes_empty=empty,
        bytes_per_run=round(per_run, 1),
        per_table_bytes_per_run={k: round(v / n, 1) for k, v in breakdown.items()},
        write_rate_in_process=round(n / elapsed),
        target_bytes=TARGET_BYTES,
        met=per_run <= TARGET_BYTES,
    )
    return 0 if stored == n else 1


if __name__ == "__main__":
    sys.exit(main())
