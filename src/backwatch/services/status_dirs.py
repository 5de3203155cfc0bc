"""Watching directories of seed 000 status files written by other scripts
(``[ingest] status_dirs``, e.g. the shell library's ``METRICS_DIR``).

Each ``*_status.json`` file that changes (inode, mtime or size) is read. ``running`` opens
the run, a final status finishes the same run (its id comes from the service and the start
time), so running → success is one run, and reading the files again after a restart changes
nothing. ``<data>/status``, where ``serve`` writes its own status files, is never read back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import Connection, or_, select, update

from backwatch.domain.lifecycle import ACTIVE, TERMINAL, RunStatus
from backwatch.errors import BackwatchError, StoreUnavailable
from backwatch.ingest.status_file import SUFFIX, StatusFile, parse_status_text
from backwatch.services.hub import Hub
from backwatch.services.runs import finish_run, record_report, update_status
from backwatch.services.unit import WriteUnit
from backwatch.store import tables as t
from backwatch.store.writer import Op

log = logging.getLogger("backwatch.ingest")


def apply_status_file(parsed: StatusFile, now: float) -> Op[str]:
    """Make the run a status file describes true: create it, finish it, or leave it.

    Returns what happened: ``created``, ``finished``, ``updated`` or ``unchanged``.
    """
    report = parsed.report
    run_id = report.id
    assert run_id is not None

    def op(conn: Connection, unit: WriteUnit) -> str:
        runs = t.runs
        row = conn.execute(select(runs.c.status, runs.c.message).where(runs.c.id == run_id)).first()
        outcome = "unchanged"
        if row is None:
            record_report(report, now, actor="status-file")(conn, unit)
            outcome = "created"
        elif RunStatus(row.status) in ACTIVE and report.status in TERMINAL:
            fields = {
                "finished_at": report.finished_at,
                "duration_s": report.duration_s,
                "files": report.files,
                "size_bytes": report.size_bytes,
                "message": report.message,
            }
            finish_run(
                run_id, report.status, now, fields=fields, trigger="api", actor="status-file"
            )(conn, unit)
            outcome = "finished"
        elif RunStatus(row.status) in ACTIVE and report.message not in (None, row.message):
            update_status(run_id, now, message=report.message, actor="status-file")(conn, unit)
            outcome = "updated"
        _fill_job_details(conn, unit, report.job, parsed)
        return outcome

    return op


def _fill_job_details(conn: Connection, unit: WriteUnit, job: str, parsed: StatusFile) -> None:
    """A status file's description and backup path fill the job's, if it has none."""
    jobs = t.jobs
    for column, value in (("description", parsed.description), ("backup_path", parsed.backup_path)):
        if not value:
            continue
        col = jobs.c[column]
        changed = conn.execute(
            update(jobs)
            .where(jobs.c.id == job, or_(col.is_(None), col == ""))
            .values({column: value})
        ).rowcount
        if changed:
            unit.changes.append({"type": "job", "id": job})


class StatusDirWatch:
    """Polls one directory of ``*_status.json`` files written by other scripts."""

    def __init__(self, hub: Hub, directory: Path, own_dir: Path) -> None:
        self.hub = hub
        self.directory = directory
        self.own = directory.resolve() == own_dir.resolve()
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._bad_once: dict[str, tuple[int, int, int]] = {}
        self._last_problem: str | None = None
        if self.own:
            log.warning(
                "%s is where serve writes its own status files; it is not read back", directory
            )

    def poll(self) -> None:
        if self.own:
            return
        try:
            entries = [
                e
                for e in os.scandir(self.directory)
                if e.name.endswith(SUFFIX) and not e.name.startswith(".") and e.is_file()
            ]
        except OSError as exc:
            self._problem(f"status directory {self.directory}: {exc.strerror or exc}")
            return
        self._last_problem = None
        names = set()
        for entry in sorted(entries, key=lambda e: e.name):
            names.add(entry.name)
            try:
                st = entry.stat()
            except OSError:
                continue
            signature = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._seen.get(entry.name) == signature:
                continue
            if self._ingest(Path(entry.path), signature, st.st_mtime):
                self._seen[entry.name] = signature
        for gone in set(self._seen) - names:
            del self._seen[gone]

    def _ingest(self, path: Path, signature: tuple[int, int, int], mtime: float) -> bool:
        """Read one changed file; False to read it again on the next poll."""
        try:
            text = path.read_text(encoding="utf-8")
            parsed = parse_status_text(text, file_name=path.name, mtime=mtime)
        except (OSError, UnicodeDecodeError, BackwatchError) as exc:
            reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
            # A script that writes in place may be caught half-way: complain only when the
            # same version of the file is still wrong one poll later.
            if self._bad_once.get(path.name) != signature:
                self._bad_once[path.name] = signature
                return False
            log.warning("%s: skipped: %s", path, reason)
            return True
        self._bad_once.pop(path.name, None)
        days = self.hub.settings.retention_days
        horizon = self.hub.now() - days * 86400
        if parsed.report.started_at < horizon:  # it would only be pruned again
            log.info("%s: ignored: started more than %d days ago (retention)", path, days)
            return True
        try:
            outcome = self.hub.write(apply_status_file(parsed, self.hub.now()))
        except StoreUnavailable as exc:
            self._problem(f"{path}: database unavailable ({exc.message}); will retry")
            return False
        except BackwatchError as exc:
            log.warning("%s: skipped: %s", path, exc.message)
            return True
        if outcome != "unchanged":
            log.debug("%s: run %s %s", path, parsed.report.id, outcome)
        return True

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.warning("%s", text)
            self._last_problem = text
