"""The server's scheduler: runs configured jobs when they are due or triggered.

- ``schedule`` + ``run_by = "server"``: run when due (cron in the job's time zone, or a
  period). A job whose last run is older than its last due time runs once at start-up.
- ``after = ["job-a"]``: run when job-a has a new good run (success or warning), however it
  was reported. A hub listener wakes the loop at once; the check itself reads the jobs'
  ``last_success_at`` so it also sees runs stored by another server instance.
- ``when_disk_above = 0.9``: run when one of the job's local destinations (or repository)
  is fuller than that, at most once an hour (a cleanup job).
- ``trigger(job)``: ``POST /api/v1/jobs/{id}/run``.
- ``[jobs.drill] schedule`` (default ``7d`` for jobs the server runs): a restore drill
  (runners/drill.py) once the job has a good backup and its last passed drill or check is
  older than the period.

Only the leader instance schedules (services/leader.py). Runs happen in threads, each
taking the same locks as ``backwatch run`` (services/locks.py), so a cron-started run and a
scheduled one never overlap.

A runner that died mid-run (a leader killed with ``kill -9``, a crashed ``backwatch run``)
leaves its lock's note behind (in the data directory's lock file, and on PostgreSQL in the
database): the leader sweeps those notes when it takes the lead (on one server: at start)
and every ``SWEEP_EVERY_S``, so the dead run is closed as failed within seconds, not left
``running``; a run of that job waits for a command the dead runner left running on this
host (services/locks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
from sqlalchemy import select

from backwatch.domain.schedule import Schedule, parse_schedule
from backwatch.errors import ConfigError, NotFound
from backwatch.ids import new_run_id
from backwatch.job_settings import drill_schedule
from backwatch.runners import runner_for, runner_names
from backwatch.runners.base import RunContext
from backwatch.runners.drill import drill_job
from backwatch.runners.job_runner import JobRunner
from backwatch.runners.record import BackgroundRecorder, HubRecorder
from backwatch.services import runs
from backwatch.services.hub import Hub
from backwatch.services.leader import Leader
from backwatch.services.locks import Busy, Holder, Locks
from backwatch.services.stale_locks import clear_stale_lock
from backwatch.settings import JobSettings
from backwatch.store import tables as t

log = logging.getLogger("backwatch.scheduler")
TICK_S = 1.0
DISK_EVERY_S = 60.0
DISK_COOLDOWN_S = 3600.0
#: how often the leader looks for runs whose runner died (and at once on taking the lead)
SWEEP_EVERY_S = 60.0

#: path → fraction of its disk in use
DiskUsage = Callable[[str], float | None]


def disk_fraction(path: str) -> float | None:
    if not os.path.exists(path):
        return None
    usage = psutil.disk_usage(path)
    return usage.used / usage.total if usage.total else None


#: how long stop() waits for the scheduling loop to end
STOP_WAIT_S = 5.0


class Scheduler:
    def __init__(
        self,
        hub: Hub,
        leader: Leader | None = None,
        *,
        tick_s: float = TICK_S,
        disk_every_s: float = DISK_EVERY_S,
        disk_usage: DiskUsage = disk_fraction,
    ) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.leader = leader or Leader(hub.read_engine)
        self.tick_s = tick_s
        self.disk_every_s = disk_every_s
        self.disk_usage = disk_usage
        self.cancel = threading.Event()
        self.next_due: dict[str, float] = {}
        self.threads: dict[str, threading.Thread] = {}  # run id → its thread
        self._active: dict[str, str] = {}  # job → run id started by this scheduler
        self._seen_success: dict[str, float | None] | None = None
        self._last_disk_check = float("-inf")
        self._disk_fired: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: jobs that others run ``after``: only their runs wake the scheduler at once
        self._parents: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._swept_term = 0  # the leader's term whose sweep for dead runners is done
        self._last_sweep = float("-inf")
        self._sweeper: Locks | None = None

    # --- what can run ------------------------------------------------------------------

    def runnable(self) -> dict[str, JobSettings]:
        """Configured jobs backwatch can run (their tool has a runner)."""
        names = set(runner_names())
        return {job.id: job for job in self.settings.jobs if job.tool in names}

    def job(self, job_id: str) -> JobSettings:
        """The runnable job ``job_id`` (NotFound / ConfigError naming the problem)."""
        job = self.runnable().get(job_id)
        if job is not None:
            return job
        if any(j.id == job_id for j in self.settings.jobs):
            raise ConfigError(
                f"job {job_id!r} cannot be run by backwatch: give it a tool "
                "(restic, borg, rsync or command) and its options in the config file"
            )
        raise NotFound(f"job {job_id!r} is not declared in the config file")

    # --- triggers ----------------------------------------------------------------------

    def trigger(self, job_id: str, trigger: str = "api") -> str:
        """Start a run of ``job_id`` in a thread; returns its run id (queued until it may
        take its locks)."""
        job = self.job(job_id)
        run_id = new_run_id(self.hub.now())
        thread = threading.Thread(
            target=self._run, args=(job, run_id, trigger), name=f"run-{job.id}", daemon=True
        )
        with self._lock:
            self.threads[run_id] = thread
            self._active[job.id] = run_id
        thread.start()
        extra = {"job": job.id, "run": run_id, "trigger": trigger}
        log.info("started %s run %s of job %s", trigger, run_id, job.id, extra=extra)
        return run_id

    def _run(self, job: JobSettings, run_id: str, trigger: str) -> None:
        locks = Locks(
            self.settings.data_dir,
            max_concurrent=self.settings.runner.max_concurrent,
            engine=self.hub.read_engine,
        )
        recorder = BackgroundRecorder(lambda: HubRecorder(self.hub, actor="scheduler"))
        about = {"job": job.id, "run": run_id}  # the JSON log's fields (logs.py)
        try:
            runner = JobRunner(
                RunContext(self.settings, job),
                recorder,
                locks,
                trigger=trigger,
                run_id=run_id,
                cancel=self.cancel,
                clock=self.hub.now,
            )
            result = runner.run()
            status = result.status.value
            log.info("job %s run %s: %s", job.id, run_id, status, extra={**about, "status": status})
        except Busy as exc:
            why = exc.message
            log.warning("job %s not run: %s (on_busy = 'refuse')", job.id, why, extra=about)
        except Exception:
            log.exception("job %s run %s failed to run", job.id, run_id, extra=about)
        finally:
            recorder.close()
            if recorder.problem:
                problem = recorder.problem
                log.warning(
                    "job %s run %s is not recorded: %s", job.id, run_id, problem, extra=about
                )
            with self._lock:
                self.threads.pop(run_id, None)
                if self._active.get(job.id) == run_id:
                    del self._active[job.id]

    def busy(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._active

    # --- the loop ----------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[str]:
        """One round: due jobs, ``after`` chains, full disks. Returns the jobs started."""
        if not self.leader.check():
            return []
        return self._round(now)

    def _round(self, now: float | None = None) -> list[str]:
        self._sweep()
        now = self.hub.now() if now is None else now
        started = self._due(now) + self._after() + self._disk(now)
        for job_id, trigger in started:
            try:
                self.trigger(job_id, trigger)
            except Exception:
                log.exception("could not start job %s", job_id, extra={"job": job_id})
        drills = self._drills_due(now)
        for job_id in drills:
            self.trigger_drill(job_id, "schedule")
        return [job_id for job_id, _ in started] + [f"drill:{job_id}" for job_id in drills]

    def _sweep(self) -> None:
        """Close the runs of runners that died (services/locks.py ``sweep``): at once in a
        new term, then every ``SWEEP_EVERY_S``."""
        fresh = self.leader.terms != self._swept_term
        if not fresh and time.monotonic() - self._last_sweep < SWEEP_EVERY_S:
            return
        self._swept_term, self._last_sweep = self.leader.terms, time.monotonic()
        if self._sweeper is None:
            self._sweeper = Locks(
                self.settings.data_dir, engine=self.hub.read_engine, on_stale=self._runner_died
            )
        try:
            self._sweeper.sweep()
        except Exception:
            log.exception("looking for runs whose runner died failed")

    def _runner_died(self, holder: Holder) -> None:
        self.hub.write(clear_stale_lock(holder, self.hub.now(), actor="scheduler"))

    # --- restore drills ----------------------------------------------------------------

    def drill_period(self, job: JobSettings) -> Schedule | None:
        """How often the server drills ``job`` (``job_settings.drill_schedule``)."""
        wanted = drill_schedule(job)
        return parse_schedule(wanted, job.timezone) if wanted else None

    def _drills_due(self, now: float) -> list[str]:
        periods = {job.id: (job, self.drill_period(job)) for job in self.runnable().values()}
        periods = {k: v for k, v in periods.items() if v[1] is not None}
        if not periods:
            return []
        with self.hub.read_engine.connect() as conn:
            rows = conn.execute(
                select(t.jobs.c.id, t.jobs.c.last_success_at, t.jobs.c.last_verified_at).where(
                    t.jobs.c.id.in_(list(periods))
                )
            ).all()
        due = []
        for job_id, last_success, last_verified in rows:
            if last_success is None or self.busy(f"drill:{job_id}"):
                continue  # nothing to drill yet, or a drill still going
            schedule = periods[job_id][1]
            assert schedule is not None
            if last_verified is None or schedule.next_after(last_verified) <= now:
                due.append(job_id)
        return due

    def trigger_drill(self, job_id: str, trigger: str = "api") -> str:
        """Start a restore drill of ``job_id`` in a thread; answers the key it runs under."""
        job = self.job(job_id)
        key = f"drill:{job.id}"
        thread = threading.Thread(target=self._drill, args=(job, trigger), name=key, daemon=True)
        with self._lock:
            self.threads[key] = thread
            self._active[key] = key
        thread.start()
        extra = {"job": job.id, "trigger": trigger}
        log.info("started %s drill of job %s", trigger, job.id, extra=extra)
        return key

    def _drill(self, job: JobSettings, trigger: str) -> None:
        key = f"drill:{job.id}"
        try:
            locks = Locks(self.settings.data_dir, engine=self.hub.read_engine)
            report = drill_job(self.settings, job, trigger=trigger, locks=locks)
            self.hub.write(runs.record_report(report, self.hub.now(), actor="scheduler"))
            status = report.status.value
            extra = {"job": job.id, "run": report.id, "status": status}
            log.info("drill of job %s: %s", job.id, status, extra=extra)
        except Exception:
            log.exception("drill of job %s failed to run", job.id, extra={"job": job.id})
        finally:
            with self._lock:
                self.threads.pop(key, None)
                self._active.pop(key, None)

    def _schedules(self) -> dict[str, Schedule]:
        out = {}
        for job in self.runnable().values():
            if job.run_by == "server" and job.schedule and not job.paused:
                out[job.id] = parse_schedule(job.schedule, job.timezone)
        return out

    def _due(self, now: float) -> list[tuple[str, str]]:
        out = []
        schedules = self._schedules()
        first = [job_id for job_id in schedules if job_id not in self.next_due]
        if first:
            last_started = self._last_started(first)
            for job_id in first:
                sched = schedules[job_id]
                last = last_started.get(job_id)
                if last is None:
                    self.next_due[job_id] = sched.next_after(now)
                elif sched.next_after(last) <= now:
                    msg = "job %s is overdue (last run %s): running it now"
                    log.info(msg, job_id, last, extra={"job": job_id})
                    self.next_due[job_id] = now
                else:  # counted from its last start, not from this (new leader's) start
                    self.next_due[job_id] = sched.next_after(last)
        for job_id, sched in schedules.items():
            if self.next_due[job_id] <= now:
                self.next_due[job_id] = sched.next_after(now)
                if self.busy(job_id):
                    msg = "job %s is due but its last run is still going; skipped"
                    log.warning(msg, job_id, extra={"job": job_id})
                    continue
                out.append((job_id, "schedule"))
        return out

    def _last_started(self, job_ids: list[str]) -> dict[str, float | None]:
        with self.hub.read_engine.connect() as conn:
            rows = conn.execute(
                select(t.jobs.c.id, t.jobs.c.last_started_at).where(t.jobs.c.id.in_(job_ids))
            ).all()
        return {row[0]: row[1] for row in rows}

    def _after(self) -> list[tuple[str, str]]:
        children: dict[str, list[str]] = {}
        for job in self.runnable().values():
            if not job.paused:
                for parent in job.after:
                    children.setdefault(parent, []).append(job.id)
        if not children:
            return []
        with self.hub.read_engine.connect() as conn:
            rows = conn.execute(
                select(t.jobs.c.id, t.jobs.c.last_success_at).where(t.jobs.c.id.in_(list(children)))
            ).all()
        current = {row[0]: row[1] for row in rows}
        seen, self._seen_success = self._seen_success, current
        if seen is None:  # start-up: only successes from now on count
            return []
        out = []
        for parent, at in current.items():
            if at is not None and (seen.get(parent) is None or at > seen[parent]):
                for child in children[parent]:
                    msg = "job %s succeeded: running %s (after)"
                    log.info(msg, parent, child, extra={"job": child})
                    out.append((child, "event"))
        return out

    def _disk(self, now: float) -> list[tuple[str, str]]:
        if now - self._last_disk_check < self.disk_every_s:
            return []
        self._last_disk_check = now

        out = []
        for job in self.runnable().values():
            limit = job.when_disk_above
            if limit is None or job.paused or self.busy(job.id):
                continue
            if now - self._disk_fired.get(job.id, float("-inf")) < DISK_COOLDOWN_S:
                continue
            paths = [*job.destinations, *runner_for(job.tool, job.id).disk_paths(job)]
            for path in paths:
                used = self.disk_usage(path)
                if used is not None and used > limit:
                    msg = "disk of %s is %.0f%% full: running %s"
                    log.info(msg, path, used * 100, job.id, extra={"job": job.id})
                    self._disk_fired[job.id] = now
                    out.append((job.id, "event"))
                    break
        return out

    def _on_commit(self, changes: list[dict[str, Any]]) -> None:
        """Writer thread: a run of a job that others run ``after`` changed; look at the
        chains now, not at the next tick. Other runs (most of ingest) wake nothing."""
        if self._loop is None or self._wake is None:
            return
        parents = self._parents
        if any(c.get("type") == "run" and c.get("job") in parents for c in changes):
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._parents = frozenset(p for job in self.runnable().values() for p in job.after)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.hub.listeners.append(self._on_commit)
        self._task = asyncio.create_task(self._forever(), name="scheduler")

    async def _forever(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                # the leader's connection is used on the event loop only (shared with alerts)
                if self.leader.check():
                    await asyncio.to_thread(self._round)
            except Exception:
                log.exception("scheduler round failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()

    async def stop(self, wait_s: float = 15.0) -> None:
        """Stop scheduling; running commands are stopped and their runs end cancelled."""
        if self._on_commit in self.hub.listeners:
            self.hub.listeners.remove(self._on_commit)
        if self._task is not None:
            # A flag as well as cancel(): on Python 3.11, wait_for() can swallow a
            # cancellation that arrives as its wake-up event is set, and the loop would
            # go on forever (a shutdown that never ends).
            self._stopping = True
            if self._wake is not None:
                self._wake.set()
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_WAIT_S)
        self.cancel.set()
        await asyncio.to_thread(self.join, wait_s)

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the runs started so far (tests, shutdown)."""

        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self.threads.values())
            if not threads:
                return
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return
