"""Fill a database with a fleet: N jobs on N/3 hosts, M runs each, mixed health.

Rows go straight into backwatch's tables (store/tables.py) in one transaction, with what
the write path keeps consistent kept consistent here too: each job's snapshot of its latest
backup (``last_*``, ``last_success_at``, ``runs_total``, ``median_duration_s``), the due
time of a scheduled job (``due_at``, computed by services/due.py as the server computes it)
and the ``daily_rollups`` the summary reads. The health mix, by the job's latest run and
its schedule, as of the moment the generator runs: about 86 % ok, 4 % failing, 3 % missed,
2 % late, 1 % running, 0.5 % stuck, 1 % unknown, 1 % paused, 1 % new (never ran). 70 %
of the jobs run every ``24h``, 20 % by cron ``0 2 * * *``, 10 % have no schedule.

    .venv/bin/python bench/gen_fleet.py OUT.db [--jobs 100000] [--runs-per-job 1]
    .venv/bin/python bench/gen_fleet.py --url postgresql+psycopg://… [--jobs …]

The database must be new (a SQLite file that does not exist, or an empty PostgreSQL
schema). Prints one ``RESULT {json}`` line with the counts and timings.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import result

from backwatch.domain.schedule import parse_schedule
from backwatch.services.due import due_for
from backwatch.store import tables as t
from backwatch.store.connect import make_engine
from backwatch.store.dialect import execute_many
from backwatch.store.migrate import migrate

DAY = 86400
SITES = ("ams", "fra", "lon", "nyc", "sfo", "sin", "syd", "tok")
KINDS = ("db", "files", "mail")
TOOLS = ("restic", "borg", "rsync", "command")
#: (health aimed at, share), drawn per job; "ok" takes the rest
MIX = (
    ("failing", 0.04), ("missed", 0.03), ("late", 0.02), ("running", 0.01),
    ("stuck", 0.005), ("unknown", 0.01), ("paused", 0.01), ("new", 0.01),
)  # fmt: skip
GRACE = 3600.0
CRON = parse_schedule("0 2 * * *", "UTC")


def _aim(rng: random.Random) -> str:
    x = rng.random()
    for health, share in MIX:
        if x < share:
            return health
        x -= share
    return "ok"


def _last_start(aim: str, schedule: str | None, now: float, rng: random.Random) -> float:
    """When the job's latest backup started, so that its health is ``aim`` now."""
    if aim == "running":
        return now - rng.uniform(60, 600)
    if aim == "stuck":
        return now - rng.uniform(10, 20) * 3600
    if schedule == "0 2 * * *":
        last_fire = CRON.previous_at_or_before(now) or now
        if aim == "missed":
            return last_fire - DAY - rng.uniform(60, 3000)  # the fire after it passed + grace
        return last_fire + rng.uniform(0, 60)
    if aim == "missed":
        return now - DAY - GRACE - rng.uniform(600, 5 * DAY)
    if aim == "late":
        return now - DAY - rng.uniform(60, GRACE - 60)
    return now - rng.uniform(600, DAY - 1200)


def build(url: str, *, jobs: int, runs_per_job: int, seed: int = 1) -> dict[str, Any]:
    """Migrate ``url`` and fill it; answers counts and timings."""
    t0 = time.perf_counter()
    engine = make_engine(url, writer=True)
    migrate(engine)
    rng = random.Random(seed)
    now = time.time()
    job_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    rollups: dict[tuple[str, int], dict[str, Any]] = {}
    aims: dict[str, int] = {}
    has_uuid = "check_uuid" in t.jobs.c
    for i in range(jobs):
        host = f"{SITES[i // 3 % len(SITES)]}-{i // 3:06d}"
        job_id = f"{host}-{KINDS[i % 3]}"
        x = rng.random()
        schedule = "24h" if x < 0.7 else ("0 2 * * *" if x < 0.9 else None)
        aim = _aim(rng)
        if aim == "late" or (aim == "missed" and schedule is None):
            schedule = "24h"  # late for a period: cron's due time is fixed by the clock
        aims[aim] = aims.get(aim, 0) + 1
        created = now - 60 * DAY
        row: dict[str, Any] = {
            "id": job_id, "description": "", "host": host, "backup_path": None,
            "tool": TOOLS[i % len(TOOLS)], "schedule": schedule, "timezone": "UTC",
            "grace_s": GRACE, "timeout_s": None,
            "tags": [SITES[i // 3 % len(SITES)], KINDS[i % 3]],
            "paused": aim == "paused", "ping_key": f"pk{i:08d}{rng.getrandbits(64):016x}",
            "origin": "auto", "created_at": created, "updated_at": now,
            "last_run_id": None, "last_started_at": None, "last_finished_at": None,
            "last_status": None, "last_duration_s": None, "last_size_bytes": None,
            "last_success_at": None, "last_verified_at": None, "median_duration_s": None,
            "learned_interval_s": None, "runs_total": 0,
        }  # fmt: skip
        if has_uuid:
            row["check_uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if aim == "new":
            created = row["created_at"] = now - rng.uniform(60, 3600)
            job_rows.append(_with_due(row))
            continue
        last_start = _last_start(aim, schedule, now, rng)
        base_duration = rng.uniform(30, 1800)
        durations = []
        for k in range(runs_per_job):
            started = last_start - (runs_per_job - 1 - k) * DAY
            latest = k == runs_per_job - 1
            status = "success" if rng.random() > 0.02 else "warning"
            if latest:
                status = {
                    "failing": "failed", "running": "running", "stuck": "running",
                    "unknown": "unknown",
                }.get(aim, status)  # fmt: skip
            open_run = status == "running"
            duration = None if open_run else base_duration * rng.uniform(0.8, 1.25)
            finished = None if open_run else started + (duration or 0)
            size = rng.randint(10**8, 10**11) if status in ("success", "warning") else None
            run = {
                "id": f"r{i:07d}{k:05d}", "job": job_id, "host": host, "status": status,
                "started_at": started, "finished_at": finished, "duration_s": duration,
                "exit_code": None if open_run else (1 if status == "failed" else 0),
                "size_bytes": size, "files": None, "files_new": None, "files_changed": None,
                "bytes_added": None, "message": "exit status 1" if status == "failed" else None,
                "tool": row["tool"], "stats": None, "source": "api", "trigger": "api",
                "backup_id": None, "updated_at": finished or started, "kind": "backup",
            }  # fmt: skip
            run_rows.append(run)
            if duration is not None and status == "success":
                durations.append(duration)
            if status in ("success", "warning") and finished is not None:
                row["last_success_at"] = finished
            if finished is not None:
                day = rollups.setdefault(
                    (job_id, int(started // DAY)),
                    {"job": job_id, "day": int(started // DAY), "runs": 0, "success": 0,
                     "warning": 0, "failed": 0, "other": 0, "duration_sum": 0.0,
                     "duration_count": 0, "size_sum": 0.0, "size_count": 0},
                )  # fmt: skip
                day["runs"] += 1
                bucket = status if status in ("success", "warning", "failed") else "other"
                day[bucket] += 1
                day["duration_sum"] += duration or 0.0
                day["duration_count"] += 1
                if size is not None:
                    day["size_sum"] += size
                    day["size_count"] += 1
            if latest:
                row.update(
                    last_run_id=run["id"], last_started_at=started, last_finished_at=finished,
                    last_status=status, last_duration_s=duration, last_size_bytes=size,
                    runs_total=runs_per_job,
                )  # fmt: skip
        if durations:
            row["median_duration_s"] = statistics.median(durations)
        job_rows.append(_with_due(row))
    t_gen = time.perf_counter() - t0
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size = -262144")
        for start in range(0, len(job_rows), 20_000):
            conn.execute(t.jobs.insert(), job_rows[start : start + 20_000])
        for start in range(0, len(run_rows), 50_000):
            execute_many(conn, t.runs.insert(), run_rows[start : start + 50_000])
        execute_many(conn, t.daily_rollups.insert(), list(rollups.values()))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    engine.dispose()
    return {
        "jobs": jobs,
        "runs": len(run_rows),
        "aimed": dict(sorted(aims.items())),
        "generate_s": round(t_gen, 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }


def _with_due(row: dict[str, Any]) -> dict[str, Any]:
    """The due time the server would keep for this row (services/due.py)."""
    base = row["last_started_at"] if row["last_started_at"] is not None else row["created_at"]
    if row["schedule"]:
        row.update(
            due_at=due_for(row["schedule"], row["timezone"], base),
            due_from=base,
            due_key=f"{row['schedule']}|{row['timezone']}",
        )
    else:
        row.update(due_at=None, due_from=None, due_key=None)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="a new SQLite file")
    parser.add_argument("--url", help="a database URL instead (an empty PostgreSQL schema)")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs-per-job", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if (args.path is None) == (args.url is None):
        parser.error("give a new SQLite file or --url, not both")
    if args.path is not None:
        if args.path.exists():
            parser.error(f"{args.path} exists; give a new file")
        args.path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{args.path.resolve()}"
    else:
        url = args.url
    if args.jobs < 1 or args.runs_per_job < 0:
        parser.error("--jobs must be ≥ 1 and --runs-per-job ≥ 0")
    figures = build(url, jobs=args.jobs, runs_per_job=args.runs_per_job, seed=args.seed)
    result("gen_fleet", **figures)


if __name__ == "__main__":
    main()
