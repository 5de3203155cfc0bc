"""``forget``: which snapshots a retention policy keeps, and removing the others.

The policy is restic's: ``keep_last`` N newest; ``keep_hourly/daily/weekly/monthly/
yearly`` the newest snapshot of each of the N newest hours, days, … (local time);
``keep_within`` everything within a period of the newest snapshot. On top, every base an
incremental takes bytes from is kept while the incremental is, so a kept snapshot always
restores.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backwatch.engine.manifest import Manifest
from backwatch.engine.repository import Repository
from backwatch.errors import InvalidInput

_BUCKETS: dict[str, Callable[[time.struct_time], tuple[int, ...]]] = {
    "hourly": lambda t: (t.tm_year, t.tm_yday, t.tm_hour),
    "daily": lambda t: (t.tm_year, t.tm_yday),
    "weekly": lambda t: (int(time.strftime("%G", t)), int(time.strftime("%V", t))),  # ISO
    "monthly": lambda t: (t.tm_year, t.tm_mon),
    "yearly": lambda t: (t.tm_year,),
}
_UNITS = {"y": 365 * 86400, "m": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600}


@dataclass
class Policy:
    last: int | None = None
    hourly: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None
    within: str | None = None

    def empty(self) -> bool:
        return all(v is None for v in self.__dict__.values())

    @classmethod
    def from_keep(cls, **keep: int | str | None) -> Policy:
        """From ``keep_last`` … ``keep_within``: ``[jobs.retention]``, forget's --keep-…"""
        return cls(**{name.removeprefix("keep_"): value for name, value in keep.items()})


@dataclass
class Decision:
    keep: dict[str, list[str]] = field(default_factory=dict)  # id → reasons
    remove: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"keep": self.keep, "remove": self.remove}


def within_seconds(value: str) -> float:
    """'7d', '2w', '1y6m' (m = months, as restic) → seconds."""
    parts = re.findall(r"(\d+)([yYmwdhH])", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidInput(f"keep-within must be a period such as 7d, 2w or 1y6m, not {value!r}")
    return float(sum(int(n) * _UNITS[u.lower()] for n, u in parts))


def decide(manifests: list[Manifest], policy: Policy) -> Decision:
    """What ``policy`` keeps of ``manifests`` (any order) and why; the rest goes."""
    if policy.empty():
        raise InvalidInput("give at least one --keep-… option (forget never removes everything)")
    newest_first = sorted(manifests, key=lambda m: m.created_at, reverse=True)
    decision = Decision()

    def keep(m: Manifest, reason: str) -> None:
        decision.keep.setdefault(m.id, []).append(reason)

    for m in newest_first[: policy.last or 0]:
        keep(m, "last")
    for name, bucket in _BUCKETS.items():
        count = getattr(policy, name) or 0
        seen: set[tuple[int, ...]] = set()
        for m in newest_first:
            if len(seen) >= count:
                break
            key = bucket(time.localtime(m.created_at))
            if key not in seen:
                seen.add(key)
                keep(m, name)
    if policy.within and newest_first:
        horizon = newest_first[0].created_at - within_seconds(policy.within)
        for m in newest_first:
            if m.created_at >= horizon:
                keep(m, f"within {policy.within}")
    by_id = {m.id: m for m in manifests}
    pending = list(decision.keep)
    while pending:  # a base kept is a kept snapshot too: its own bases stay
        kept_id = pending.pop()
        for base in by_id[kept_id].bases:
            if base in by_id:
                if base not in decision.keep:
                    pending.append(base)
                keep(by_id[base], f"base of {kept_id}")
    decision.remove = [m.id for m in reversed(newest_first) if m.id not in decision.keep]
    return decision


def forget(repo: Repository, policy: Policy, *, dry_run: bool = False) -> Decision:
    """Apply ``policy`` to ``repo`` (under its lock); with ``dry_run`` only say what goes."""
    if dry_run:
        return decide(repo.manifests(), policy)
    with repo.locked():
        decision = decide(repo.manifests(), policy)
        for snapshot_id in decision.remove:
            repo.remove(snapshot_id)
    return decision
