"""Self-monitoring (issue 14): can backwatch itself store what it is sent, right now?

Four facts decide it, each taken when asked, never from a stored sample: the database
answers, its schema is current, the writer is alive and the database is not refusing its
writes, and the data directory's disk has room. The same facts drive

- the health checks ``database``, ``migrations``, ``data_disk`` and ``writer``
  (services/diagnostics.py: ``GET /api/v1/health/checks``, ``backwatch health``);
- ``/health`` (``ok`` | ``degraded`` | ``error``) and ``/readyz`` (web/routes/health.py);
- the ``disk_space`` and ``store_unavailable`` alerts of the ``_system`` job, evaluated on
  every tick (web/tasks.py). While the disk is full nothing can be written, alerts
  included: a finding that could not be stored is held in memory and stored once writing
  works again, and refused writes are remembered by the writer (``WriteHealth``) until an
  alert has them on record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from backwatch.domain.rules import RULES, DiskFacts, Finding, JobFacts, Thresholds, WriteFacts
from backwatch.services.alerts import (
    ACTIVE,
    SYSTEM_JOB,
    AlertChanges,
    apply_changes,
    disk_facts,
    thresholds_for,
)
from backwatch.services.diagnostics import Check, database, migrations
from backwatch.services.disks import measure
from backwatch.services.hub import Hub
from backwatch.settings import Settings
from backwatch.store import tables as t
from backwatch.store.writer import WriteTrouble
from backwatch.timeutil import human_bytes, iso

MB = 1024 * 1024
#: the alert rules about backwatch itself, evaluated on every tick for the ``_system`` job
SYSTEM_RULES = ("disk_space", "store_unavailable")


def data_path(settings: Settings) -> str:
    return str(settings.data_dir.resolve())


def system_thresholds(settings: Settings) -> Thresholds:
    floor = settings.alerts.data_min_free_mb * MB
    return replace(thresholds_for(settings, None), disk_min_free_bytes=floor)


def _trouble(hub: Hub) -> WriteTrouble | None:
    return hub.writer.health.trouble()


def _write_facts(trouble: WriteTrouble | None) -> WriteFacts | None:
    if trouble is None:
        return None
    return WriteFacts(
        refused=trouble.refused,
        first_failed_at=trouble.first_failed_at,
        last_failed_at=trouble.last_failed_at,
        last_error=trouble.last_error,
        failing=trouble.failing,
        recovered_at=trouble.recovered_at,
    )


def system_facts(hub: Hub, now: float, *, history: bool = True) -> JobFacts:
    """backwatch's own facts: its data disk as it is now (after the stored samples, which
    only serve the forecast) and the writes its database refused."""

    path = data_path(hub.settings)
    disks: tuple[DiskFacts, ...] = ()
    found = measure([path])
    if found:
        _path, used, total = found[0]
        samples: tuple[tuple[float, float, float], ...] = ()
        if history:
            with hub.read_engine.connect() as conn:
                stored = disk_facts(conn, [path], now)
            samples = tuple(s for s in (stored[0].samples if stored else ()) if s[0] < now)
        disks = (DiskFacts(path, (*samples, (now, float(used), float(total)))),)
    return JobFacts(
        SYSTEM_JOB,
        thresholds=system_thresholds(hub.settings),
        disks=disks,
        writes=_write_facts(_trouble(hub)),
    )


def system_findings(facts: JobFacts, now: float) -> dict[str, Finding | None]:
    """The ``_system`` rules on ``facts``; messages name backwatch, not ``_system``."""
    out: dict[str, Finding | None] = {}
    for name in SYSTEM_RULES:
        finding = RULES[name].fn(facts, now)
        if finding is not None:
            finding = replace(finding, message=finding.message.replace(facts.id, "backwatch", 1))
        out[name] = finding
    return out


# --- the checks --------------------------------------------------------------------------


def disk_check(hub: Hub, now: float, *, history: bool = True) -> tuple[Check, bool]:
    """The ``data_disk`` check, and whether the disk is full (below ``data_min_free_mb``:
    writes fail or are about to)."""
    facts = system_facts(hub, now, history=history)
    path = data_path(hub.settings)
    if not facts.disks:
        return Check(
            "data_disk",
            "warning",
            f"the data directory {path} does not exist (the server creates it when it starts)",
            "point --data-dir / BACKWATCH_DATA_DIR at the right one",
        ), False
    _at, used, total = facts.disks[0].samples[-1]
    free = total - used
    full = free < facts.thresholds.disk_min_free_bytes or free <= 0
    finding = RULES["disk_space"].fn(facts, now)
    share = used / total * 100 if total else 100.0
    if finding is None and not full:
        detail = f"{path}: {share:.1f}% used, {human_bytes(free)} free"
        return Check("data_disk", "ok", detail), False
    if finding is not None:
        detail = finding.message.removeprefix(f"{facts.id}: ")
    else:  # full with the shares set to 100 %
        detail = f"{path} is {share:.1f}% full ({human_bytes(free)} free of {human_bytes(total)})"
    if full:
        detail += " ([alerts] data_min_free_mb)"
    severity = "critical" if full or finding is None else finding.severity
    return Check("data_disk", severity, detail, "free space there, or lower retention_days"), full


def writer_state(hub: Hub, now: float) -> Check:
    """The writer as it stands, without waiting for it: alive, and whether the database has
    been refusing its writes."""
    fix = "look in the server's log for the first failed write; free space on the data disk"
    if not getattr(hub.writer, "alive", True):
        return Check("writer", "critical", "the writer thread has stopped", "restart backwatch")
    trouble = _trouble(hub)
    if trouble is not None and trouble.failing:
        needed = system_thresholds(hub.settings).refused_writes
        detail = (
            f"{trouble.failing} write(s) refused in the minute up to the latest, "
            f"{iso(trouble.last_failed_at)}: {trouble.last_error}"
        )
        return Check("writer", "critical" if trouble.failing >= needed else "warning", detail, fix)
    ops, batches = getattr(hub.writer, "ops", None), getattr(hub.writer, "batches", None)
    counts = f"{ops} writes in {batches} commits since start" if ops is not None else "writing"
    if trouble is not None:
        counts += (
            f"; {trouble.refused} write(s) refused from {iso(trouble.first_failed_at)} to "
            f"{iso(trouble.last_failed_at)} ({trouble.last_error}), writing again since "
            f"{iso(trouble.recovered_at)}"
        )
    return Check("writer", "ok", counts)


@dataclass(frozen=True)
class Assessment:
    """backwatch's own checks, and those of them that stop it from storing reports."""

    checks: list[Check]
    blocking: list[Check] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``error`` (not ready: writes fail), ``degraded`` (a warning) or ``ok``."""
        if self.blocking:
            return "error"
        return "degraded" if any(c.status != "ok" for c in self.checks) else "ok"

    def reasons(self) -> str:
        shown = self.blocking or [c for c in self.checks if c.status != "ok"]
        return "; ".join(f"{c.name}: {c.detail}" for c in shown)


def assess(hub: Hub, now: float) -> Assessment:
    """The self checks for ``/health`` and ``/readyz``: cheap (no writer round trip, no
    disk history), so a load balancer may ask every second."""
    checks: list[Check] = []
    blocking: list[Check] = []
    for name, fn in (("database", database), ("migrations", migrations)):
        check = _safely(name, fn, hub, now)
        checks.append(check)
        if check.status != "ok":  # a schema not at the newest: the code may not fit it
            blocking.append(check)
        if name == "database" and check.status != "ok":
            return Assessment(checks, blocking)  # nothing else can be asked of it
    disk, full = disk_check(hub, now, history=False)
    checks.append(disk)
    if full:
        blocking.append(disk)
    writer = writer_state(hub, now)
    checks.append(writer)
    if writer.status == "critical":
        blocking.append(writer)
    return Assessment(checks, blocking)


def _safely(name: str, fn: Callable[[Hub, float], Check], hub: Hub, now: float) -> Check:
    """A check that fails to run is itself a finding (the database went away meanwhile)."""
    try:
        return fn(hub, now)
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return Check(name, "critical", reason[0] if reason else type(exc).__name__)


# --- the alerts --------------------------------------------------------------------------


Change = tuple[str, str, Finding | None]  # (job, rule, finding) for ``apply_changes``


@dataclass(frozen=True)
class SystemFindings:
    changes: list[Change]  # the alerts of ``_system`` that differ from what was found
    found: dict[str, Finding | None]  # each rule's finding (a held one when it cleared)
    trouble: WriteTrouble | None  # the refused writes they were made from


class SystemAlerts:
    """Evaluates the ``_system`` rules on every tick and writes the alerts that change.
    What cannot be written (the disk is full) is held and written on a later tick."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.held: dict[str, Finding] = {}

    def find(self, now: float) -> SystemFindings:
        """What to change, worked out on a read connection (the writer only gets changes)."""
        trouble = _trouble(self.hub)
        found = system_findings(system_facts(self.hub, now), now)
        for name, finding in found.items():
            if finding is None and name in self.held:
                found[name] = self.held[name]  # seen while nothing could be written
        a = t.alerts
        fingerprints = [f"{name}:{SYSTEM_JOB}" for name in SYSTEM_RULES]
        with self.hub.read_engine.connect() as conn:
            rows = conn.execute(
                select(a.c.rule, a.c.severity, a.c.message).where(
                    a.c.fingerprint.in_(fingerprints), a.c.state.in_(ACTIVE)
                )
            ).all()
        active = {r.rule: r for r in rows}
        changes: list[Change] = []
        for name, finding in found.items():
            current = active.get(name)
            if current is None and finding is None:
                continue
            if current is not None and finding is not None:
                same = finding.severity == current.severity
                # disk figures move with every report: their message is refreshed with
                # the severity, not on every tick
                if same and (name == "disk_space" or finding.message == current.message):
                    continue
            changes.append((SYSTEM_JOB, name, finding))
        return SystemFindings(changes, found, trouble)

    async def evaluate(self) -> int:
        """One round; raises (after holding the findings) when they could not be written."""

        now = self.hub.now()
        found = await asyncio.to_thread(self.find, now)
        if found.changes:
            changes = AlertChanges(changes=found.changes)
            try:
                await self.hub.submit(apply_changes(self.hub.settings, now, changes))
            except Exception:
                self.held.update({n: f for n, f in found.found.items() if f is not None})
                raise
        self.held.clear()
        if found.trouble is not None:  # on record (or too small to report): forget it
            self.hub.writer.health.reported(found.trouble)
        return len(found.changes)


def canary_due(hub: Hub) -> bool:
    """Writes are being refused: the tick stores a disk sample each round anyway, a small
    real write that tells when writing works again (readiness then recovers by itself)."""
    trouble = _trouble(hub)
    return trouble is not None and trouble.failing > 0
