"""Restore drills, the pure part: which files to restore, what the comparison found, and
how long a full restore would take at the rate measured (docs/drills.md).

A drill restores a sample of the latest snapshot into a private temporary directory and
compares every restored file with the snapshot's own record of it (hash and size) and,
when the source file is unchanged since the snapshot, with the source. A file that
differs fails the drill; a source file changed since the snapshot is reported, not failed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backwatch.domain.lifecycle import RunStatus

#: file outcomes
OK, DIFFERS, MISSING, CHANGED_SINCE = "ok", "differs", "missing", "changed_since"
#: a restored file nothing could be compared with (a plain copy whose source is unknown)
UNVERIFIED = "unverified"
#: how many failing paths a run keeps
SHOWN = 10


@dataclass(frozen=True)
class Candidate:
    """A file of the snapshot: its path there and its size."""

    path: str
    size: int


def choose_sample(
    files: list[Candidate],
    *,
    count: int,
    max_bytes: int | None,
    always: Sequence[str] = (),
    seed: int | None = None,
) -> list[Candidate]:
    """Up to ``count`` files, at most ``max_bytes`` together: the ``always`` paths (and
    the files under them) first, then the largest and the smallest, then a random half from
    the small files and a random half from the large ones, so that both the many small
    files and the few large ones of a backup are exercised."""
    rng = random.Random(seed)
    chosen: dict[str, Candidate] = {}
    budget = max_bytes if max_bytes is not None else float("inf")

    def take(item: Candidate) -> None:
        nonlocal budget
        if len(chosen) >= count or item.path in chosen or item.size > budget:
            return
        chosen[item.path] = item
        budget -= item.size

    wanted = [p.rstrip("/") for p in always]
    for item in files:
        if any(item.path == p or item.path.startswith(p + "/") for p in wanted):
            take(item)
    by_size = sorted(files, key=lambda c: (c.size, c.path))
    if by_size:
        take(by_size[-1])
        take(by_size[0])
    half = len(by_size) // 2
    small, large = by_size[:half], by_size[half:]
    rng.shuffle(small)
    rng.shuffle(large)
    for pair in zip(small, large, strict=False):
        for item in pair:
            take(item)
    for item in small[len(large) :] + large[len(small) :]:
        take(item)
    return list(chosen.values())


@dataclass
class DrillResult:
    """What one drill found and measured."""

    tool: str
    snapshot: str | None = None
    #: the whole snapshot's size (bytes), for the full-restore estimate
    snapshot_bytes: int | None = None
    files: dict[str, str] = field(default_factory=dict)  # path → outcome
    details: dict[str, str] = field(default_factory=dict)  # path → why it failed
    bytes_restored: int = 0
    restore_seconds: float | None = None
    #: a restore's fixed cost (the tool's start, the repository's keys and index), from
    #: restoring the smallest file alone first; the rest of the sample is the bulk
    fixed_seconds: float | None = None
    bulk_bytes: int = 0
    bulk_seconds: float | None = None
    #: restores the bulk took (each pays the fixed cost again)
    bulk_calls: int = 0
    #: every restore call of the drill: (bytes, seconds), the probe first
    calls: list[tuple[int, float]] = field(default_factory=list)
    #: why the drill could not be done at all (the tool failed, nothing to restore)
    problem: str | None = None
    #: the tool checked the restored bytes against the backup's own record (a plain copy
    #: is proven only by a comparison with its unchanged source)
    self_checked: bool = True
    #: each destination's own figures, when the job writes to several
    destinations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failing(self) -> list[str]:
        return [p for p, outcome in self.files.items() if outcome in (DIFFERS, MISSING)]

    @property
    def changed_since(self) -> list[str]:
        return [p for p, outcome in self.files.items() if outcome == CHANGED_SINCE]

    @property
    def rate(self) -> float | None:
        """Bytes restored per second once a restore runs: the bulk's bytes over its time
        less the fixed cost (at least a tenth of its time, so noise cannot make it
        infinite); without a bulk, everything restored over the whole time."""
        if self.bulk_bytes > 0 and self.bulk_seconds:
            fixed = (self.fixed_seconds or 0.0) * max(self.bulk_calls, 1)
            working = max(self.bulk_seconds - fixed, self.bulk_seconds / 10)
            return self.bulk_bytes / working
        if not self.restore_seconds or self.bytes_restored <= 0:
            return None
        return self.bytes_restored / self.restore_seconds

    @property
    def estimate_s(self) -> float | None:
        """A full restore of the snapshot: the fixed cost plus its size at the rate. With
        three restore calls or more, the line that fits them all (seconds = fixed + bytes /
        rate, least squares) gives both, so that no single call's noise decides."""
        if self.snapshot_bytes is None:
            return None
        fitted = _fit(self.calls)
        if fitted is not None:
            fixed, per_byte = fitted
            return fixed + self.snapshot_bytes * per_byte
        rate = self.rate
        if rate is None:
            return None
        return (self.fixed_seconds or 0.0) + self.snapshot_bytes / rate

    @property
    def status(self) -> RunStatus:
        if self.problem is not None or self.failing:
            return RunStatus.FAILED
        if not self.proven:
            return RunStatus.UNKNOWN
        return RunStatus.SUCCESS

    @property
    def proven(self) -> list[str]:
        """Restored files whose bytes something vouched for: the backup's own record (when
        the tool checks it), or the unchanged source."""
        vouched = (OK, CHANGED_SINCE) if self.self_checked else (OK,)
        return [p for p, outcome in self.files.items() if outcome in vouched]

    def message(self) -> str:
        where = f"snapshot {self.snapshot[:12]}" if self.snapshot else "the latest snapshot"
        if self.problem is not None:
            return f"drill of {where} failed: {self.problem}"
        if not self.files:
            return f"drill of {where}: no file to restore (the snapshot holds none)"
        if not self.failing and not self.proven:
            return (
                f"drill of {where}: none of the {len(self.files)} files read back could be "
                "compared with an unchanged source file, so nothing proves the copy"
            )
        failing = self.failing
        if failing:
            first = failing[0]
            why = self.details.get(first, self.files[first])
            return (
                f"drill of {where}: {len(failing)} of {len(self.files)} restored files "
                f"differ from the backup, e.g. {first} ({why})"
            )
        text = f"drill of {where}: {len(self.files)} files restored and match"
        if self.changed_since:
            text += f" ({len(self.changed_since)} changed at the source since the snapshot)"
        if self.estimate_s is not None:
            text += f"; a full restore would take about {_human(self.estimate_s)}"
        return text

    def summary(self) -> dict[str, Any]:
        """One destination's outcome and figures (``stats.drill.destinations``)."""
        rate, estimate = self.rate, self.estimate_s
        return {
            "status": self.status.value,
            "files_checked": len(self.files),
            "rate_bytes_per_s": round(rate, 1) if rate is not None else None,
            "estimate_full_restore_s": round(estimate, 1) if estimate is not None else None,
            "differ": self.failing[:SHOWN],
            "problem": self.problem,
        }

    def stats(self) -> dict[str, Any]:
        """``stats.drill`` of the run, plus ``stats.verify`` for the verify_failed rule."""
        rate = self.rate
        return {
            "verify": "ok" if self.status is RunStatus.SUCCESS else "failed",
            "drill": {
                "tool": self.tool,
                "snapshot": self.snapshot,
                "files_checked": len(self.files),
                "bytes_restored": self.bytes_restored,
                "restore_seconds": (
                    round(self.restore_seconds, 3) if self.restore_seconds is not None else None
                ),
                "rate_bytes_per_s": round(rate, 1) if rate is not None else None,
                "fixed_seconds": (
                    round(self.fixed_seconds, 3) if self.fixed_seconds is not None else None
                ),
                "snapshot_bytes": self.snapshot_bytes,
                "estimate_full_restore_s": (
                    round(self.estimate_s, 1) if self.estimate_s is not None else None
                ),
                "differ": self.failing[:SHOWN],
                "changed_since": self.changed_since[:SHOWN],
                "problem": self.problem,
                **({"destinations": self.destinations} if self.destinations else {}),
            },
        }


def _fit(calls: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(fixed seconds, seconds per byte) of the least-squares line through ``calls``, or
    None when fewer than three calls of different sizes, or a line that makes no sense."""
    if len(calls) < 3 or len({b for b, _ in calls}) < 3:
        return None
    n = len(calls)
    mean_b = sum(b for b, _ in calls) / n
    mean_t = sum(t for _, t in calls) / n
    spread = sum((b - mean_b) ** 2 for b, _ in calls)
    per_byte = sum((b - mean_b) * (t - mean_t) for b, t in calls) / spread
    fixed = mean_t - per_byte * mean_b
    if per_byte <= 0 or fixed < 0:
        return None
    return fixed, per_byte


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
