"""Background work of ``serve``: alert evaluation, disk samples and notification delivery.

backwatch's own alerts (its data disk, writes the database refused) are evaluated on every
tick from measurements taken then (services/selfmon.py); what a full disk keeps from being
written is held and written on a later tick.

Run-based rules are evaluated shortly after each ingest (a hub listener collects the jobs
that changed), paced so that under a stream of reports they take a small share of the
CPU ingest needs (services/pacing.py); time-based rules, disk samples and re-notifications
run on a tick. Only the leader instance evaluates (services/leader.py); every instance
delivers, since the outbox claim makes double sends impossible.

Rounds of the tick, from cheapest to dearest:
- every tick, the time rules of the jobs they can say something about;
- every ``CLOCK_EVERY_S``, every rule of the jobs whose 7-day error rate moved as time
  passed, and the re-notifications that are due;
- every rule of every job, a page at a time: when this instance takes the lead (a start,
  a failover: its settings may be new, and reports may have gone unjudged while nobody
  led), when changes of other instances may have gone unheard (services/changefeed.py),
  and once every ``FULL_EVERY_S`` as a safety net. At 10 M runs such a round costs a
  minute and more of CPU, so it is not the periodic work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from backwatch.errors import StoreUnavailable
from backwatch.services import alerts, disks, notifier, pacing, selfmon
from backwatch.services.hub import Hub
from backwatch.services.leader import Leader
from backwatch.settings import Settings

log = logging.getLogger("backwatch.tasks")
INGEST_DELAY_S = 0.5
INGEST_MIN_INTERVAL_S = 2.0
CLOCK_EVERY_S = 600.0
FULL_EVERY_S = 86400.0
DELIVER_EVERY_S = 2.0
#: the share of one core a round over every job may take (pages, with pauses between)
FULL_SHARE = 0.5


class AlertTasks:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.leader = Leader(hub.read_engine, hub.settings.server.leader_lease_seconds)
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_full = float("-inf")
        self._last_clock = float("-inf")  # the ``now`` of the latest round of the clock
        self._unheard = False  # other instances' changes may have gone unheard since
        self._term = 0  # the leader's term whose catching up is done (services/leader.py)
        self._last_cpu_s = 0.0  # CPU time of the latest rule evaluation
        self.page_size = alerts.PAGE  # jobs per page of a round over every job
        self._tick_lock = asyncio.Lock()  # one round at a time, also when called directly
        # the evaluation of reported changes: by the ingest loop or a tick, one at a time
        self._changes_lock = asyncio.Lock()
        self.system = selfmon.SystemAlerts(hub)
        hub.listeners.append(self._on_commit)

    def _on_commit(self, changes: list[dict[str, Any]]) -> None:
        """Called from the writer thread after each commit: the jobs whose runs changed,
        and those whose settings did (a job resumed with a failed last run is failing)."""
        jobs = {c["job"] for c in changes if c.get("type") == "run" and c.get("job")}
        jobs |= {c["id"] for c in changes if c.get("type") == "job"}
        if not jobs:
            return
        with self._lock:
            woken = bool(self._changed)  # jobs wait already: the loop has been woken
            self._changed |= jobs
        if not woken and self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._ingest_loop(), name="alerts-ingest"),
            asyncio.create_task(self._tick_loop(), name="alerts-tick"),
            asyncio.create_task(self._deliver_loop(), name="notify-deliver"),
            asyncio.create_task(self._lease_loop(), name="leader-lease"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._on_commit in self.hub.listeners:
            self.hub.listeners.remove(self._on_commit)
        self.leader.release()

    async def _ingest_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(INGEST_DELAY_S)  # let a burst of reports settle
            await self._evaluate_changed()
            # under a steady stream of reports, evaluate at most this often
            gap = pacing.gap_after(self._last_cpu_s, INGEST_MIN_INTERVAL_S)
            await asyncio.sleep(gap - INGEST_DELAY_S)

    def changes_unheard(self) -> None:
        """Called by the change feed (services/changefeed.py) when it hears other instances
        again after a gap: what they committed meanwhile is judged by a round over every
        job on the next tick."""
        self._unheard = True

    async def _evaluate_changed(self) -> None:
        """The rules of the jobs reported since the last look (the ingest loop's and the
        tick's, one at a time: after a tick, every change reported before it is judged and
        its alerts written, also one the ingest loop was in the middle of). Jobs whose
        evaluation failed (a full disk, a dead database) wait for the next look."""
        async with self._changes_lock:
            with self._lock:
                jobs, self._changed = sorted(self._changed), set()
            if not jobs or not self.leader.check():
                return
            if await self._guard(self.evaluate(jobs, "run")) is None:
                with self._lock:
                    self._changed.update(jobs)

    async def evaluate(self, jobs: list[str], kind: str | None) -> int:
        """The rules of ``kind`` (None: all) of these jobs."""
        return await self._judge(lambda conn, s, now: alerts.find_changes(conn, s, now, jobs, kind))

    async def evaluate_due(self) -> int:
        """The time rules of the jobs they can say something about (overdue, running long,
        with an open alert of one: services/alerts ``time_rule_jobs``), not of every job."""
        return await self._judge(alerts.find_due_changes)

    async def evaluate_clock(self, since: float) -> int:
        """Every rule of the jobs whose 7-day error rate moved since ``since`` as time passed
        (services/alerts ``clock_rule_jobs``), and the re-notifications that are due."""
        return await self._judge(
            lambda conn, s, now: alerts.find_clock_changes(conn, s, since, now)
        )

    async def _judge(
        self, find: Callable[[Connection, Settings, float], alerts.AlertChanges]
    ) -> int:
        """Work out ``find`` on a read connection in a thread, then hand the writer only
        the alerts that change: ingest never waits behind rule evaluation."""
        settings, now = self.hub.settings, self.hub.now()

        def read() -> alerts.AlertChanges:
            with self.hub.read_engine.connect() as conn:
                return find(conn, settings, now)

        found, self._last_cpu_s = await asyncio.to_thread(pacing.timed, read)
        return await self._apply(found, now)

    async def evaluate_all(self) -> int:
        """Every rule of every job, ``page_size`` jobs at a time by id: never every job in
        memory at once, and reports are stored between two pages. Stops when this instance
        no longer leads; re-notifications are queued with the last page."""
        settings, now = self.hub.settings, self.hub.now()
        after: str | None = ""
        changed = 0
        while after is not None:

            def find(start: str = after) -> tuple[alerts.AlertChanges, str | None]:
                with self.hub.read_engine.connect() as conn:
                    return alerts.find_changes_page(
                        conn, settings, now, None, start, self.page_size
                    )

            (found, after), self._last_cpu_s = await asyncio.to_thread(pacing.timed, find)
            found.renotify = after is None  # the round is complete: re-notifications are due
            changed += await self._apply(found, now)
            if after is not None:
                # a big fleet's round takes at most FULL_SHARE of a core: ingest keeps pace
                await asyncio.sleep(pacing.gap_after(self._last_cpu_s, 0.0, FULL_SHARE))
                if not self.leader.check():
                    return changed
        return changed

    async def _apply(self, found: alerts.AlertChanges, now: float) -> int:
        if found.changes or found.intervals or found.medians or found.renotify:
            await self.hub.submit(alerts.apply_changes(self.hub.settings, now, found))
        return len(found.changes)

    async def tick(self) -> None:
        """One round of time-based work (also called directly by tests): never two at once,
        or one round's success could forget what another could not write."""
        async with self._tick_lock:
            await self._tick()

    async def _tick(self) -> None:
        if not self.leader.check():
            if selfmon.canary_due(self.hub):  # (PostgreSQL: any commit proves writing works)
                await self._guard(self.hub.submit(lambda conn, unit: None))
            return
        if self.leader.terms != self._term:  # a new term: every rule of every job, now
            self._term = self.leader.terms
            self._last_full = float("-inf")
        settings = self.hub.settings
        samples = await asyncio.to_thread(disks.measure, disks.watched_paths(settings))
        now = self.hub.now()
        canary = selfmon.canary_due(self.hub)  # a real write: does writing work again?
        await self._guard(self.hub.submit(disks.record_samples(samples, now, force=canary)))
        await self._guard(self.system.evaluate())
        await self._evaluate_changed()  # reports not evaluated yet: their rules first
        # (the rounds: this module's docstring)
        if self._unheard or now - self._last_full >= FULL_EVERY_S:
            self._unheard = False
            if await self._guard(self.evaluate_all()) is None:  # tried again in a while
                self._last_full = now - FULL_EVERY_S + CLOCK_EVERY_S
            else:
                self._last_full = self._last_clock = now
            return
        await self._guard(self.evaluate_due())
        if now - self._last_clock < CLOCK_EVERY_S:
            return
        if await self._guard(self.evaluate_clock(self._last_clock)) is not None:
            self._last_clock = now

    async def deliver(self) -> dict[str, int]:
        return await asyncio.to_thread(
            notifier.deliver, self.hub.read_engine, self.hub.settings, self.hub.now()
        )

    async def _tick_loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.hub.settings.alerts.tick_seconds)

    async def _lease_loop(self) -> None:
        """Renew the leader's lease (or try to take the lead) well within the lease, whatever
        the tick's interval: a live leader is never taken for a hung one. On taking the
        lead, a round at once."""
        while True:
            if self.leader.check() and self.leader.terms != self._term:
                await self.tick()
            await asyncio.sleep(self.leader.lease_s / 6)

    async def _deliver_loop(self) -> None:
        while True:
            await self._guard(self.deliver())
            await asyncio.sleep(DELIVER_EVERY_S)

    @staticmethod
    async def _guard(awaitable: Any) -> Any:
        try:
            return await awaitable
        except StoreUnavailable as exc:  # a full disk, a dead server: said once, plainly
            log.warning("background task postponed: %s", exc)
            return None
        except Exception:  # a failing round is logged and retried on the next one
            log.exception("background task failed")
            return None
