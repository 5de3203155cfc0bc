"""Disk usage samples of the data directory and every configured destination."""

from __future__ import annotations

import os
from typing import Any

import psutil
from sqlalchemy import Connection, delete, select

from backwatch.services.unit import WriteUnit
from backwatch.settings import Settings
from backwatch.store import tables as t

KEEP_S = 30 * 86400
#: at most one stored sample per path per this many seconds (the tick may be faster)
MIN_GAP_S = 300.0


def watched_paths(settings: Settings) -> list[str]:
    paths = [str(settings.data_dir.resolve())]
    for job in settings.jobs:
        for dest in job.destinations:
            if dest not in paths:
                paths.append(dest)
    return paths


def measure(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, used, total) for each path that exists; missing ones are skipped."""

    out = []
    for path in paths:
        if not os.path.exists(path):
            continue
        usage = psutil.disk_usage(path)
        out.append((path, int(usage.used), int(usage.total)))
    return out


def record_samples(samples: list[tuple[str, int, int]], now: float, *, force: bool = False) -> Any:
    """Op: store samples (thinned to one per MIN_GAP_S per path) and drop old ones."""

    def op(conn: Connection, unit: WriteUnit) -> int:
        stored = 0
        ds = t.disk_samples
        for path, used, total in samples:
            last = conn.execute(
                select(ds.c.at).where(ds.c.path == path).order_by(ds.c.at.desc()).limit(1)
            ).scalar()
            if not force and last is not None and now - last < MIN_GAP_S:
                continue
            conn.execute(ds.insert().values(path=path, at=now, used_bytes=used, total_bytes=total))
            stored += 1
        conn.execute(delete(ds).where(ds.c.at < now - KEEP_S))
        return stored

    return op
