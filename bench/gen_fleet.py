"""Fill a database with a fleet: N jobs on N/3 hosts, M runs each, mixed health.

Rows go straight into backwatch's tables (store/tables.py), job by job in batches of 200,000
rows (``executemany`` with SQLite's journal off during the load, ``COPY`` on PostgreSQL),
with what the write path keeps consistent kept consistent here too: each job's snapshot of
its latest backup (``last_*``, ``last_success_at``, ``runs_total``, ``median_duration_s``,
an unscheduled job's ``learned_interval_s`` as the rule round would learn it), the due
time of a scheduled job (``due_at``, computed by services/due.py as the server computes
it), and the ``daily_rollups`` and the fleet's ``daily_totals`` the summary reads. The
health mix, by the job's latest run and its schedule, as of the moment the generator
runs: about 86 % ok, 4 % failing, 3 % missed, 2 % late, 1 % running, 0.5 % stuck, 1 %
unknown, 1 % paused, 1 % new (never ran). 70 % of the jobs run every ``24h``, 20 % by
cron ``0 2 * * *``, 10 % have no schedule. A job's older runs are ``--interval`` apart
(default a day): 97 % success, 2 % warning, 1 % failed. ``--long-job N`` adds a job
``ping-history`` with N Healthchecks-style 5-minute pings.

    .venv/bin/python bench/gen_fleet.py OUT.db [--jobs 100000] [--runs-per-job 1]
    .venv/bin/python bench/gen_fleet.py OUT.db --runs-per-job 100 --long-job 100000  # 10 M
    .venv/bin/python bench/gen_fleet.py --url postgresql+psycopg://… [--jobs …]

The database must be new (a SQLite file that does not exist, or an empty PostgreSQL
schema). Prints one ``RESULT {json}`` line with the counts and timings.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import result

from backwatch.domain.rules import MEDIAN_OF_LAST
from backwatch.domain.schedule import parse_schedule
from backwatch.domain.stats import median
from backwatch.services.alerts.facts import RUN_HISTORY
from backwatch.services.due import due_for
from backwatch.store import tables as t
from backwatch.store.connect import make_engine
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


@functools.lru_cache(maxsize=4)
def _last_fire(now: float) -> float:
    """The cron schedule's latest fire at or before ``now`` (the same for every job)."""
    return CRON.previous_at_or_before(now) or now


def _last_start(aim: str, schedule: str | None, now: float, rng: random.Random) -> float:
    """When the job's latest backup started, so that its health is ``aim`` now."""
    if aim == "running":
        return now - rng.uniform(60, 600)
    if aim == "stuck":
        return now - rng.uniform(10, 20) * 3600
    if schedule == "0 2 * * *":
        last_fire = _last_fire(now)
        if aim == "missed":
            return last_fire - DAY - rng.uniform(60, 3000)  # the fire after it passed + grace
        return last_fire + rng.uniform(0, 60)
    if aim == "missed":
        return now - DAY - GRACE - rng.uniform(600, 5 * DAY)
    if aim == "late":
        return now - DAY - rng.uniform(60, GRACE - 60)
    return now - rng.uniform(600, DAY - 1200)


def build(
    url: str,
    *,
    jobs: int,
    runs_per_job: int,
    seed: int = 1,
    interval_s: float = DAY,
    long_job_runs: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Migrate ``url`` and fill it; answers counts and timings.

    Rows are made job by job and written in batches (``executemany`` on SQLite with its
    journal off for the load, ``COPY`` on PostgreSQL), each batch's jobs before its runs,
    so memory stays flat at 10 M runs. ``interval_s`` is the time between a job's runs;
    ``long_job_runs`` adds one job, ``ping-history``, with that many 5-minute pings."""
    t0 = time.perf_counter()
    engine = make_engine(url, writer=True)
    migrate(engine)
    now = time.time()
    aims: dict[str, int] = {}
    n_runs = n_rollups = 0
    sink = _Sink(engine)
    try:
        for i in range(jobs + (1 if long_job_runs else 0)):
            rng = random.Random(seed * 1_000_003 + i)  # per job: the same job in any batch
            if i < jobs:
                aim, row, runs, rollups = _job(i, runs_per_job, interval_s, now, rng)
            else:
                aim, row, runs, rollups = _long_job(long_job_runs, now, rng)
            aims[aim] = aims.get(aim, 0) + 1
            sink.add(row, runs, rollups)
            n_runs += len(runs)
            n_rollups += len(rollups)
            if progress and i and i % 10_000 == 0:
                rate = n_runs / (time.perf_counter() - t0)
                print(f"  {i:,} jobs, {n_runs:,} runs, {rate:,.0f} runs/s", file=sys.stderr)
        sink.close()
        t_load = time.perf_counter() - t0
        sink.finish()
    finally:
        engine.dispose()
    total = time.perf_counter() - t0
    return {
        "jobs": jobs + (1 if long_job_runs else 0),
        "runs": n_runs,
        "rollups": n_rollups,
        "aimed": dict(sorted(aims.items())),
        "interval_s": interval_s,
        "long_job_runs": long_job_runs,
        "load_s": round(t_load, 2),
        "total_s": round(total, 2),
        "runs_per_s": round(n_runs / total) if total else None,
    }


def _job(
    i: int, runs_per_job: int, interval_s: float, now: float, rng: random.Random
) -> tuple[str, dict[str, Any], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Job ``i``: its health aimed at, its row, its runs (oldest first) and its rollups."""
    site = SITES[i // 3 % len(SITES)]
    host = f"{site}-{i // 3:06d}"
    job_id = f"{host}-{KINDS[i % 3]}"
    x = rng.random()
    schedule = "24h" if x < 0.7 else ("0 2 * * *" if x < 0.9 else None)
    aim = _aim(rng)
    if aim == "late" or (aim == "missed" and schedule is None):
        schedule = "24h"  # late for a period: cron's due time is fixed by the clock
    row = _job_row(job_id, host, TOOLS[i % len(TOOLS)], schedule, [site, KINDS[i % 3]], now)
    row["ping_key"] = f"pk{i:08d}{rng.getrandbits(64):016x}"
    row["paused"] = aim == "paused"
    if "check_uuid" in t.jobs.c:
        row["check_uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if aim == "new":
        row["created_at"] = now - rng.uniform(60, 3600)
        return aim, _with_due(row), [], []
    row["created_at"] = min(now - 60 * DAY, now - runs_per_job * interval_s - DAY)
    last_start = _last_start(aim, schedule, now, rng)
    base_duration = rng.uniform(30, 1800)
    base_size = rng.randint(10**8, 10**11)
    latest_status = {
        "failing": "failed", "running": "running", "stuck": "running", "unknown": "unknown",
    }.get(aim)  # fmt: skip
    runs = []
    for k in range(runs_per_job):
        started = last_start - (runs_per_job - 1 - k) * interval_s
        y = rng.random()
        status = "success" if y > 0.03 else ("warning" if y > 0.01 else "failed")
        if k == runs_per_job - 1 and latest_status is not None:
            status = latest_status
        duration = None if status == "running" else base_duration * rng.uniform(0.8, 1.25)
        # a backup grows a little with every run
        size = int(base_size * (1 + k / 2000)) if status in ("success", "warning") else None
        runs.append(_run(f"r{i:06d}-{k:05d}", job_id, host, row["tool"], status, started,
                         duration, size, "api", "api"))  # fmt: skip
    return aim, _with_due(_snapshot(row, runs)), runs, _rollups(job_id, runs)


def _long_job(
    runs_total: int, now: float, rng: random.Random
) -> tuple[str, dict[str, Any], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``ping-history``: a year of 5-minute Healthchecks-style pings, the last one ok."""
    row = _job_row("ping-history", "ping-host", None, "5m", ["ping"], now)
    row["ping_key"] = f"pkhistory{rng.getrandbits(64):016x}"
    row["grace_s"] = 600.0
    if "check_uuid" in t.jobs.c:
        row["check_uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    row["created_at"] = now - runs_total * 300 - DAY
    last = now - 120
    runs = [
        _run(f"ph-{k:06d}", "ping-history", None, None, "success",
             last - (runs_total - 1 - k) * 300, rng.uniform(15, 25), None, "ping", "schedule")
        for k in range(runs_total)
    ]  # fmt: skip
    return "ok", _with_due(_snapshot(row, runs)), runs, _rollups("ping-history", runs)


def _job_row(
    job_id: str, host: str, tool: str | None, schedule: str | None, tags: list[str], now: float
) -> dict[str, Any]:
    return {
        "id": job_id, "description": "", "host": host, "backup_path": None, "tool": tool,
        "schedule": schedule, "timezone": "UTC", "grace_s": GRACE, "timeout_s": None,
        "tags": tags, "paused": False, "ping_key": None, "origin": "auto",
        "created_at": now, "updated_at": now,
        "last_run_id": None, "last_started_at": None, "last_finished_at": None,
        "last_status": None, "last_duration_s": None, "last_size_bytes": None,
        "last_success_at": None, "last_verified_at": None, "median_duration_s": None,
        "learned_interval_s": None, "runs_total": 0,
    }  # fmt: skip


#: the runs columns the generator fills, in the order of ``_run``'s tuple
RUN_COLUMNS = (
    "id", "job", "host", "status", "started_at", "finished_at", "duration_s", "exit_code",
    "size_bytes", "message", "tool", "source", "trigger", "updated_at", "kind",
)  # fmt: skip
ROLLUP_COLUMNS = (
    "job", "day", "runs", "success", "warning", "failed", "other", "duration_sum",
    "duration_count", "size_sum", "size_count",
)  # fmt: skip


def _run(
    run_id: str, job: str, host: str | None, tool: str | None, status: str, started: float,
    duration: float | None, size: int | None, source: str, trigger: str,
) -> tuple[Any, ...]:  # fmt: skip
    finished = None if duration is None else started + duration
    exit_code = None if status == "running" else (1 if status == "failed" else 0)
    message = "exit status 1" if status == "failed" else None
    return (run_id, job, host, status, started, finished, duration, exit_code, size, message,
            tool, source, trigger, finished or started, "backup")  # fmt: skip


def _snapshot(row: dict[str, Any], runs: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The job's ``last_*`` snapshot, last success, median and count, as writes keep them."""
    if not runs:
        return row
    last = runs[-1]
    row.update(
        last_run_id=last[0], last_started_at=last[4], last_finished_at=last[5],
        last_status=last[3], last_duration_s=last[6], last_size_bytes=last[8],
        runs_total=len(runs),
    )  # fmt: skip
    ok = [r for r in runs if r[3] in ("success", "warning") and r[5] is not None]
    if ok:
        row["last_success_at"] = ok[-1][5]
    recent = runs[-RUN_HISTORY:]  # what the rule round reads (services/alerts/facts.py)
    good = [r[6] for r in reversed(recent) if r[3] == "success"][:MEDIAN_OF_LAST]
    durations = sorted(d for d in good if d is not None)
    if durations:  # snapshot_median: sorted[n // 2]
        row["median_duration_s"] = durations[len(durations) // 2]
    starts = [r[4] for r in recent]
    if not row["schedule"] and len(starts) >= 5:  # domain/rules.py learned_interval
        row["learned_interval_s"] = median([b - a for a, b in pairwise(starts) if b > a])
    return row


def _rollups(job: str, runs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``daily_rollups`` of the job's finished runs, as services/ingest keeps them."""
    days: dict[int, list[Any]] = {}
    for r in runs:
        status, started, finished, duration, size = r[3], r[4], r[5], r[6], r[8]
        if finished is None:
            continue
        day = days.setdefault(int(started // DAY), [0, 0, 0, 0, 0, 0.0, 0, 0.0, 0])
        day[0] += 1
        day[{"success": 1, "warning": 2, "failed": 3}.get(status, 4)] += 1
        day[5] += duration or 0.0
        day[6] += 1
        if size is not None:
            day[7] += size
            day[8] += 1
    return [(job, d, *figures) for d, figures in days.items()]


class _Sink:
    """Batches of job, run and rollup rows into the database, jobs first in each batch."""

    BATCH = 200_000

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection
        self.jobs: list[tuple[Any, ...]] = []
        self.runs: list[tuple[Any, ...]] = []
        self.rollups: list[tuple[Any, ...]] = []
        self.job_columns: tuple[str, ...] | None = None
        # the indexes of runs and rollups are made once after the load, from their own
        # definitions (a sort instead of 10 M inserts into each)
        self.indexes = self._drop_indexes()
        if self.dialect == "sqlite":  # a bulk load: a crash leaves a file to throw away
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF",
                           "cache_size = -1048576", "temp_store = MEMORY"):  # fmt: skip
                self.conn.execute(f"PRAGMA {pragma}")

    def _drop_indexes(self) -> list[str]:
        tables = ("runs", "daily_rollups")
        if self.dialect == "sqlite":
            found = self.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN {tables}"
            ).fetchall()
        else:
            found = self.conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                f" AND tablename IN {tables}"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)"  # keys stay
            ).fetchall()
        for name, _ in found:
            self.conn.execute(f'DROP INDEX "{name}"')
        self.raw.commit()
        return [sql for _, sql in found]

    def add(self, job: dict[str, Any], runs: list[Any], rollups: list[Any]) -> None:
        if self.job_columns is None:
            self.job_columns = tuple(job)
        job = {**job, "tags": json.dumps(job["tags"])}
        self.jobs.append(tuple(job[c] for c in self.job_columns))
        self.runs.extend(runs)
        self.rollups.extend(rollups)
        if len(self.runs) + len(self.jobs) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        assert self.job_columns is not None or not self.jobs
        for table, columns, rows in (
            ("jobs", self.job_columns, self.jobs),
            ("runs", RUN_COLUMNS, self.runs),
            ("daily_rollups", ROLLUP_COLUMNS, self.rollups),
        ):
            if rows and columns:
                self._insert(table, columns, rows)
        self._commit()
        self.jobs, self.runs, self.rollups = [], [], []

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        if self.dialect == "postgresql":
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            if not self.conn.in_transaction:  # the driver connection begins none itself
                self.conn.execute("BEGIN")
            self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def _commit(self) -> None:
        if self.dialect == "sqlite":
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        else:
            self.raw.commit()

    def close(self) -> None:
        self.flush()
        for sql in self.indexes:
            self.conn.execute(sql)
        # the fleet's totals a day, as each write adds to them (services/unit.py)
        figures = ", ".join(ROLLUP_COLUMNS[2:])
        sums = ", ".join(f"SUM({name})" for name in ROLLUP_COLUMNS[2:])
        self.conn.execute(
            f"INSERT INTO daily_totals (day, {figures}) "
            f"SELECT day, {sums} FROM daily_rollups GROUP BY day"
        )
        self._commit()

    def finish(self) -> None:
        """The database as the server keeps it: WAL and statistics on SQLite, ANALYZE."""
        if self.dialect == "sqlite":
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("ANALYZE")
        else:
            self.conn.autocommit = True
            self.conn.execute("ANALYZE")
        self.raw.close()


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
    parser.add_argument("--interval", type=float, default=DAY, help="seconds between runs")
    parser.add_argument("--long-job", type=int, default=0, help="runs of job ping-history")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progress", action="store_true", help="a line every 10,000 jobs")
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
    if args.jobs < 1 or args.runs_per_job < 0 or args.long_job < 0 or args.interval <= 0:
        parser.error("--jobs must be ≥ 1, --runs-per-job and --long-job ≥ 0, --interval > 0")
    figures = build(
        url, jobs=args.jobs, runs_per_job=args.runs_per_job, seed=args.seed,
        interval_s=args.interval, long_job_runs=args.long_job, progress=args.progress,
    )  # fmt: skip
    result("gen_fleet", **figures)


if __name__ == "__main__":
    main()
