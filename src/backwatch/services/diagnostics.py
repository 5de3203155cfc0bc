"""Diagnostic checks (seed 003's health monitor): ``GET /api/v1/health/checks``, ``backwatch
health``. Each check answers ``{name, status: ok|warning|critical, detail, fix}``; one
registry, one function per check.

The only automatic fix is the safe one: a run lock left behind by a process that is gone
(``services.locks`` notices it). Taking such a lock over clears it, records an
``auto_resolve`` event, and closes the dead process's run as failed, exactly as the next run
of that job would (``services.stale_locks``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from backwatch.domain.health import Health
from backwatch.errors import BackwatchError, InvalidInput, NotFound, StoreUnavailable
from backwatch.services import job_list
from backwatch.services.hub import Hub
from backwatch.services.locks import Holder, Locks
from backwatch.services.stale_locks import clear_stale_lock
from backwatch.services.views import job_verdict, read_job
from backwatch.store import tables as t
from backwatch.store.migrate import HEAD_REVISION, stored_revision
from backwatch.timeutil import human_bytes

log = logging.getLogger("backwatch.diagnostics")
ORDER = {"ok": 0, "warning": 1, "critical": 2}
#: how long the writer check waits for an answer before it calls the writer stuck
WRITER_WAIT_S = 10.0
#: an empty transaction slower than this means the writer is struggling
WRITER_SLOW_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warning | critical
    detail: str
    fix: str | None = None  # what to do about it, in words
    fixable: bool = False  # `health --fix` / POST …/fix can repair it


CheckFn = Callable[[Hub, float], Check]
CHECKS: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if name in CHECKS:
            raise ValueError(f"health check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return register


def worst(checks: list[Check]) -> str:
    return max((c.status for c in checks), key=ORDER.__getitem__, default="ok")


def run_checks(hub: Hub, now: float, names: list[str] | None = None) -> dict[str, Any]:
    """Run the named checks (all by default): ``{status, checks: [...]}``. Seed 003's
    names (``disk_space``, ``process_health``) are read as ours."""
    names = _system_checks.resolve_names(names) if names else None
    unknown = [n for n in names or [] if n not in CHECKS]
    if unknown:
        raise InvalidInput.field(
            "checks", f"unknown check {unknown[0]!r}; known: {', '.join(CHECKS)}"
        )
    results = [_safely(name, hub, now) for name in (names or list(CHECKS))]
    return {"status": worst(results), "checks": [asdict(c) for c in results]}


def _safely(name: str, hub: Hub, now: float) -> Check:
    """A check that fails to run is itself a finding, never an error of the whole call."""
    try:
        return CHECKS[name](hub, now)
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return Check(name, "critical", f"the check failed: {reason[0] if reason else exc!r}")


@check("database")
def database(hub: Hub, now: float) -> Check:
    problem = hub.store_problem()
    if problem is not None:
        return Check("database", "critical", problem, "restore the database file and restart")
    with hub.read_engine.connect() as conn:
        if hub.dialect == "postgresql":
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        else:
            conn.execute(text("SELECT 1"))
            size = _sqlite_size(hub)
    return Check("database", "ok", f"{hub.dialect} reachable, {human_bytes(size)}")


def _sqlite_size(hub: Hub) -> int:
    if hub.db_file is None:
        return 0
    files = [hub.db_file, hub.db_file.with_name(hub.db_file.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists())


@check("migrations")
def migrations(hub: Hub, now: float) -> Check:
    stored = stored_revision(hub.read_engine)
    if stored == HEAD_REVISION:
        return Check("migrations", "ok", f"schema at revision {stored} (the newest)")
    return Check(
        "migrations",
        "warning",
        f"schema at revision {stored or 'none'}, the newest is {HEAD_REVISION}",
        "run `backwatch db migrate` (the server also migrates when it starts)",
    )


@check("data_disk")
def data_disk(hub: Hub, now: float) -> Check:
    """The data directory's disk as it is now, judged by the ``disk_space`` rule (thresholds,
    ``data_min_free_mb``, and the forecast from the stored samples): services/selfmon.py."""
    from backwatch.services.selfmon import disk_check  # selfmon imports this module

    return disk_check(hub, now)[0]


@check("writer")
def writer(hub: Hub, now: float) -> Check:
    """An empty transaction through the writer (is it answering, and how fast), then what
    recent writes came to: an empty transaction commits even on a full disk."""
    from backwatch.services.selfmon import writer_state  # selfmon imports this module

    started = time.monotonic()
    try:  # an empty transaction: the writer takes and commits it
        hub.write(lambda conn, unit: None, timeout=WRITER_WAIT_S)
    except StoreUnavailable as exc:
        fix = "restart backwatch serve; look in its log for the last error before this"
        return Check("writer", "critical", exc.message, fix)
    elapsed = time.monotonic() - started
    state = writer_state(hub, now)
    if state.status != "ok":
        return state
    detail = f"an empty transaction committed in {elapsed * 1000:.0f} ms; {state.detail}"
    if elapsed > WRITER_SLOW_S:
        return Check(
            "writer",
            "warning",
            detail,
            "the database is slow or locked: look for long transactions or a full disk",
        )
    return Check("writer", "ok", detail)


@check("notifications")
def notifications(hub: Hub, now: float) -> Check:
    c = t.channels
    with hub.read_engine.connect() as conn:
        rows = conn.execute(select(c.c.masked_url, c.c.last_error).where(c.c.failing)).all()
        total = conn.execute(select(c.c.id)).all()
    if not rows:
        return Check("notifications", "ok", f"{len(total)} channel(s), none failing")
    failing = "; ".join(f"{url}: {error or 'failing'}" for url, error in rows)
    return Check(
        "notifications",
        "warning",
        f"{len(rows)} of {len(total)} failing: {failing}",
        "check the Apprise URL, then `backwatch notify test`",
    )


#: how many jobs a check names; the rest are counted ("… and 4,878 more")
NAMED_JOBS = 10


@dataclass(frozen=True)
class _InHealth:
    """The jobs in one health: how many, and the first ``NAMED_JOBS`` of them by id."""

    total: int
    first: list[str]

    def __bool__(self) -> bool:
        return self.total > 0

    def named(self) -> str:
        return _named(self.first, self.total)


def _jobs_in(hub: Hub, now: float, *states: Health) -> dict[Health, _InHealth]:
    """How many jobs are in each of ``states`` and the first few by id: counted and paged in
    SQL (services/job_list.py), so a fleet of 100,000 jobs is never read into Python."""
    stuck = hub.settings.alerts.stuck_minutes
    out: dict[Health, _InHealth] = {}
    with hub.read_engine.connect() as conn:
        counts = job_list.health_counts(conn, now=now, stuck_minutes=stuck)
        for state in states:
            total = counts.get(state.value, 0)
            first: list[str] = []
            if total:
                page = job_list.read_page(
                    conn,
                    job_list.JobFilter((state.value,)),
                    now=now,
                    stuck_minutes=stuck,
                    sort="id",
                    limit=NAMED_JOBS,
                )
                first = [row["id"] for row in page.rows]
            out[state] = _InHealth(total, first)
    return out


def _named(first: list[str], total: int) -> str:
    """The first jobs by name, and how many more of ``total`` there are."""
    more = total - len(first)
    return ", ".join(first) + (f" and {more} more" if more > 0 else "")


@check("jobs_overdue")
def jobs_overdue(hub: Hub, now: float) -> Check:
    health = _jobs_in(hub, now, Health.MISSED, Health.LATE)
    missed, late = health[Health.MISSED], health[Health.LATE]
    if not missed and not late:
        return Check("jobs_overdue", "ok", "every job ran when it was due")
    parts = [f"missed: {missed.named()}" if missed else "", f"late: {late.named()}" if late else ""]
    return Check(
        "jobs_overdue",
        "critical" if missed else "warning",
        "; ".join(p for p in parts if p),
        "check the schedules and the hosts (`backwatch status JOB`); pause jobs that no longer run",
    )


@check("jobs_failing")
def jobs_failing(hub: Hub, now: float) -> Check:
    health = _jobs_in(hub, now, Health.FAILING, Health.UNKNOWN)
    failing, unknown = health[Health.FAILING], health[Health.UNKNOWN]
    if not failing and not unknown:
        return Check("jobs_failing", "ok", "no job's latest backup failed or is in doubt")
    parts = [
        f"failing (latest backup failed, or an open critical alert): {failing.named()}"
        if failing
        else "",
        f"latest backup's outcome unknown: {unknown.named()}" if unknown else "",
    ]
    return Check(
        "jobs_failing",
        "critical" if failing else "warning",
        "; ".join(p for p in parts if p),
        "read the reasons: `backwatch status JOB`, `backwatch alerts list`",
    )


@check("stuck_runs")
def stuck_runs(hub: Hub, now: float) -> Check:
    stuck = _jobs_in(hub, now, Health.STUCK)[Health.STUCK]
    if not stuck:
        return Check("stuck_runs", "ok", "no run is taking longer than it should")
    dead = [
        h.job for h in stale_locks_held(hub) if h.job and h.run_id and _is_stuck(hub, now, h.job)
    ]
    fix = "close a run that really ended with `backwatch finish RUN --status failed`"
    if dead:
        whose = _named(dead[:NAMED_JOBS], len(dead))
        fix = f"the process of {whose} is gone: `backwatch health --fix` closes it; " + fix
    return Check("stuck_runs", "warning", f"running too long: {stuck.named()}", fix, bool(dead))


def _is_stuck(hub: Hub, now: float, job: str) -> bool:
    """Whether ``job`` (a stale lock's; a few at most) is stuck: one job read, not all."""
    try:
        with hub.read_engine.connect() as conn:
            row = read_job(conn, job)
    except NotFound:
        return False
    verdict = job_verdict(row, now, stuck_minutes=hub.settings.alerts.stuck_minutes)
    return verdict.health is Health.STUCK


@check("stale_locks")
def stale_locks(hub: Hub, now: float) -> Check:
    stale = stale_locks_held(hub)
    if not stale:
        return Check("stale_locks", "ok", "no lock left by a process that is gone")
    detail = "; ".join(
        h.describe() + (f", run {h.run_id}" if h.run_id else "") + ": that process is gone"
        for h in stale
    )
    return Check(
        "stale_locks",
        "warning",
        detail,
        "`backwatch health --fix` clears them and closes their runs as failed",
        True,
    )


def _locks(hub: Hub, on_stale: Callable[[Holder], None] | None = None) -> Locks:
    return Locks(
        hub.settings.data_dir,
        max_concurrent=hub.settings.runner.max_concurrent,
        engine=hub.read_engine,
        on_stale=on_stale,
    )


def stale_locks_held(hub: Hub) -> list[Holder]:
    """Job and repository locks whose note names a process of this host that is gone.
    (Run slots are left out: their notes carry nothing a fix would act on.)"""
    locks = _locks(hub)
    names = []
    for path in sorted(Path(locks.directory).glob("*.lock")):
        try:
            name = json.loads(path.read_bytes() or b"{}").get("name")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and not name.startswith("slot:"):
            names.append(name)
    # Locks decides what "dead" means (same host, pid gone); its check is reused, not copied.
    return [h for h in locks.holders(names) if locks._dead(h)]


def apply_fixes(hub: Hub, actor: str) -> list[str]:
    """Take over each stale lock once (never waiting): ``Locks`` then reports it, and it is
    recorded as the runner records one (services/stale_locks.py): the event, the dead run
    closed. Returns what was done."""
    done: list[str] = []

    def cleared(holder: Holder) -> None:
        try:
            hub.write(clear_stale_lock(holder, hub.now(), actor=actor))
        except BackwatchError as exc:
            log.warning("could not record: %s", exc.message)
        except Exception:
            log.exception("could not record")
        run = f"; run {holder.run_id} closed as failed if it was still running"
        done.append(f"cleared {holder.describe()}" + (run if holder.run_id else ""))

    locks = _locks(hub, cleared)
    give_up = threading.Event()
    give_up.set()  # one try each: a lock someone holds now is not stale after all
    for holder in stale_locks_held(hub):
        held = locks.acquire([holder.name], note={"job": f"health fix ({actor})"}, cancel=give_up)
        if held is not None:
            held.release()
    return done


# seed 003's cpu_usage and memory_usage live in their own module, in this same registry
from backwatch.services import system_checks as _system_checks  # noqa: E402
