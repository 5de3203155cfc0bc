"""Start-up work of ``serve``: the first token, configured jobs, the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection

from backwatch.services import jobs as job_service
from backwatch.services import tokens
from backwatch.services.due import refresh_stale_due
from backwatch.services.hub import Hub
from backwatch.services.unit import WriteUnit
from backwatch.store.dialect import lock_for_transaction
from backwatch.timeutil import parse_duration


def ensure_first_token(hub: Hub) -> Path | None:
    """With no active token, create an admin token and write it to ``<data>/token`` (0600).

    Returns the file's path when a token was created, else None.
    """
    if tokens.active_token_count(hub.read_engine):
        return None
    path = hub.settings.token_file
    path.parent.mkdir(parents=True, exist_ok=True)
    created = hub.write(tokens.create_first_token(hub.now()))
    if created is None:  # another instance on the same database made it meanwhile
        return None
    secret, _row = created
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def sync_configured_jobs(hub: Hub, only: str | None = None) -> int:
    """Create or update the jobs declared in the config file (or just job ``only``);
    returns how many changed."""
    now = hub.now()
    changed = 0
    for job in hub.settings.jobs:
        if only is not None and job.id != only:
            continue
        values = {
            "id": job.id,
            "name": job.name,
            "description": job.description,
            "host": job.host,
            "backup_path": job.backup_path or (job.destinations[0] if job.destinations else None),
            "tool": job.tool,
            "schedule": job.schedule,
            "timezone": job.timezone,
            "grace_s": parse_duration(job.grace),
            "timeout_s": parse_duration(job.timeout) if job.timeout else None,
            "tags": list(job.tags),
            "paused": job.paused,
        }

        def op(conn: Connection, unit: WriteUnit, values: dict = values) -> bool:
            # instances starting together with one config: one creates, the others find it
            lock_for_transaction(conn, "backwatch-config-jobs")
            return job_service.upsert_configured(conn, unit, values, now, actor="config")

        if hub.write(op):
            changed += 1
    if only is None:  # and the due times an upgrade (or a write around the services) left
        hub.write(refresh_stale_due)
    return changed
