"""Seed 003's system resource checks: ``cpu_usage`` and ``memory_usage`` of the host that
runs backwatch (the server's host when ``backwatch health`` asks a server).

Registered in the same registry as the other diagnostic checks (``services.diagnostics``,
which imports this module). The thresholds are seed 003's: warn at 80 % CPU or memory;
memory at 95 % is critical (the next backup may be killed for lack of it).
"""

from __future__ import annotations

import os

import psutil

from backwatch.services.diagnostics import Check, check
from backwatch.services.hub import Hub
from backwatch.timeutil import human_bytes

CPU_WARNING_PERCENT = 80.0
MEMORY_WARNING_PERCENT = 80.0
MEMORY_CRITICAL_PERCENT = 95.0
#: how long the CPU is watched; psutil needs an interval to give a meaningful share
CPU_SAMPLE_S = 0.2

#: the check names seed 003 uses (``health --checks disk_space memory_usage``) → ours
ALIASES: dict[str, tuple[str, ...]] = {
    "disk_space": ("data_disk",),
    "process_health": ("cpu_usage", "memory_usage"),
}


def judge_cpu(percent: float, load: tuple[float, float, float] | None, cores: int) -> Check:
    """The ``cpu_usage`` finding for a measured share of all cores (0–100)."""
    detail = f"CPU {percent:.0f}% busy over {CPU_SAMPLE_S:.1f} s on {cores} core(s)"
    if load is not None:
        detail += f"; load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    if percent >= CPU_WARNING_PERCENT:
        return Check(
            "cpu_usage",
            "warning",
            detail,
            "backups slow down on a busy host: find what is busy (`top`), or move the "
            "schedules apart",
        )
    return Check("cpu_usage", "ok", detail)


def judge_memory(total: int, available: int, own_rss: int | None) -> Check:
    """The ``memory_usage`` finding for the host's memory and backwatch's own share."""
    used_percent = (total - available) / total * 100 if total > 0 else 0.0
    detail = (
        f"memory {used_percent:.0f}% used, {human_bytes(available)} of {human_bytes(total)} "
        "available"
    )
    if own_rss is not None:
        detail += f"; backwatch uses {human_bytes(own_rss)}"
    if used_percent < MEMORY_WARNING_PERCENT:
        return Check("memory_usage", "ok", detail)
    status = "critical" if used_percent >= MEMORY_CRITICAL_PERCENT else "warning"
    return Check(
        "memory_usage",
        status,
        detail,
        "find what uses the memory (`top -o %MEM`); a backup tool short of memory is killed "
        "mid-run",
    )


@check("cpu_usage")
def cpu_usage(hub: Hub, now: float) -> Check:
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:  # not every platform has one
        load = None
    return judge_cpu(psutil.cpu_percent(interval=CPU_SAMPLE_S), load, psutil.cpu_count() or 1)


@check("memory_usage")
def memory_usage(hub: Hub, now: float) -> Check:
    memory = psutil.virtual_memory()
    try:
        rss: int | None = psutil.Process().memory_info().rss
    except psutil.Error:
        rss = None
    return judge_memory(int(memory.total), int(memory.available), rss)


def resolve_names(names: list[str]) -> list[str]:
    """Check names as given, seed 003's spellings replaced by ours, each once."""
    out: list[str] = []
    for name in names:
        for resolved in ALIASES.get(name, (name,)):
            if resolved not in out:
                out.append(resolved)
    return out
