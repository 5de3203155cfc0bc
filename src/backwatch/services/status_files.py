"""``serve`` keeps one seed 000 status file per job, ``<data>/status/<job>_status.json``.

Scripts and pages that read seed 000's files keep working against backwatch. The writer
listens to the hub (a listener runs on the writer thread after each commit, so it only
notes which jobs changed) and a small worker thread rewrites those jobs' files. Bursts are
coalesced: the worker waits ``settle_s`` after a change before writing, so 2,000 reports a
second for one job still mean a few file writes a second; when rounds are costly (many jobs
changing all the time) the pause grows so they stay a small share of the CPU that ingest
needs (services/pacing.py). Each file is written to a temp
file in the same directory and renamed over the old one: a reader sees the old file or the
new one, never half of one.

On start the worker goes through every job once, ``PAGE`` jobs at a time in the order of
their ids, and writes only the files that differ from what the job's latest run says (a
restart writes nothing). Nothing is kept per job in memory: whether a file changed is
decided by comparing it with the file on disk.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from backwatch.services import pacing
from backwatch.services.hub import Hub
from backwatch.store import tables as t

log = logging.getLogger("backwatch.status_files")
SUFFIX = "_status.json"
#: jobs read and written per batch: what the worker holds in memory at once
PAGE = 500


def local_iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO 8601 in the server's time zone, as seed 000 writes it."""
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):  # a time stored before times were bounded
        return None


def status_document(job: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """A job row and its latest run → the seed 000 status file (plus ``run_id``)."""
    duration = run.get("duration_s")
    return {
        "service": job["id"],
        "description": job.get("description") or "",
        "backup_path": job.get("backup_path") or "",
        "status": run["status"],
        "start_time": local_iso(run["started_at"]),
        "end_time": local_iso(run.get("finished_at")),
        "duration_seconds": round(duration)
        if duration is not None and math.isfinite(duration)
        else 0,
        "files_processed": run.get("files") or 0,
        "total_size_bytes": run.get("size_bytes") or 0,
        "message": run.get("message") or "",
        "hostname": run.get("host") or job.get("host") or "",
        "run_id": run["id"],
    }


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class StatusFileWriter:
    """Rewrites ``<dir>/<job>_status.json`` whenever a job's latest run changes."""

    def __init__(
        self,
        hub: Hub,
        directory: Path | None = None,
        *,
        settle_s: float = 1.0,
        cpu_share: float = pacing.SHARE,
    ):
        self.hub = hub
        self.directory = Path(directory or hub.settings.data_dir / "status")
        self.settle_s = settle_s
        self.cpu_share = cpu_share  # of one core, at most, under a stream of changes
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None
        self.files_written = 0
        self.page_size = PAGE
        self.swept = threading.Event()  # set once the start-up pass over every job is done

    def listener(self, changes: list[dict[str, Any]]) -> None:
        """Runs on the writer thread after each commit: note the jobs, wake the worker."""
        jobs = {
            c["job"] if c.get("type") == "run" else c.get("id")
            for c in changes
            if c.get("type") in ("run", "job")
        }
        jobs.discard(None)
        if not jobs:
            return
        with self._lock:
            self._dirty.update(jobs)  # type: ignore[arg-type]
            self._wake.set()

    def start(self) -> None:
        """Register with the hub and bring every job's file up to date in the background."""
        self.hub.listeners.append(self.listener)
        self._thread = threading.Thread(target=self._run, name="backwatch-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is still pending, then stop."""
        if self.listener in self.hub.listeners:
            self.hub.listeners.remove(self.listener)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        try:
            self.sweep()
        except Exception:  # the changes noted meanwhile are still written below
            log.exception("could not bring the status files up to date")
        finally:
            self.swept.set()
        self._loop()

    def sweep(self) -> int:
        """Every job with a run, ``page_size`` at a time by id: write the files that differ
        from the database (one batch in memory at a time). Answers how many were written."""
        written, after = 0, ""
        while not self._stopping.is_set():
            with self.hub.read_engine.connect() as conn:
                ids = list(
                    conn.execute(
                        select(t.jobs.c.id)
                        .where(t.jobs.c.last_run_id.is_not(None), t.jobs.c.id > after)
                        .order_by(t.jobs.c.id)
                        .limit(self.page_size)
                    ).scalars()
                )
            if not ids:
                break
            with self._lock:  # what changed meanwhile is not kept waiting for the pass
                ids_changed, self._dirty = self._dirty, set()
                self._wake.clear()
            done, cpu_s = pacing.timed(functools.partial(self.write_jobs, {*ids, *ids_changed}))
            written += done
            after = ids[-1]
            # a big fleet: its first pass stays a share of the CPU that ingest needs
            self._stopping.wait(pacing.gap_after(cpu_s, 0.0, SWEEP_SHARE))
        return written

    def _loop(self) -> None:
        pause = self.settle_s
        while True:
            self._wake.wait()
            if not self._stopping.is_set():
                self._stopping.wait(pause)  # let a burst finish: one write for it
            with self._lock:
                jobs, self._dirty = self._dirty, set()
                self._wake.clear()
            if jobs:
                try:
                    _written, cpu_s = pacing.timed(functools.partial(self.write_jobs, jobs))
                    pause = pacing.gap_after(cpu_s, self.settle_s, self.cpu_share)
                except Exception:  # a bad moment must not end the worker
                    log.exception("could not refresh status files")
            if self._stopping.is_set():
                with self._lock:
                    if not self._dirty:
                        return

    def write_jobs(self, job_ids: set[str] | list[str]) -> int:
        """Rewrite the files of these jobs from the database; returns how many changed."""
        ids = sorted(job_ids)
        written = 0
        for start in range(0, len(ids), self.page_size):
            written += self._write_batch(ids[start : start + self.page_size])
        self.files_written += written
        return written

    def _write_batch(self, ids: list[str]) -> int:
        with self.hub.read_engine.connect() as conn:
            jobs, runs = _jobs_and_latest_runs(conn, ids)
        written = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # said below, once, when the first file cannot be written
        for job_id in ids:
            job = jobs.get(job_id)
            if job is None or not job.get("last_run_id"):
                self._remove(job_id)  # the job, or every run of it, was deleted
                continue
            run = runs.get(job["last_run_id"])
            if run is None:
                continue
            text = json.dumps(status_document(job, run), indent=2, ensure_ascii=False) + "\n"
            path = self.directory / f"{job_id}{SUFFIX}"
            if _reads(path) == text:
                continue
            try:
                write_atomically(path, text)
            except OSError as exc:
                problem = f"cannot write status files in {self.directory}: {exc}"
                if problem != self._last_error:  # say it once, not on every change
                    log.warning("%s", problem)
                    self._last_error = problem
                continue
            self._last_error = None
            written += 1
        return written

    def _remove(self, job_id: str) -> None:
        try:
            (self.directory / f"{job_id}{SUFFIX}").unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the status file of %s: %s", job_id, exc)


#: the share of one core the start-up pass may take (a restart of a big fleet)
SWEEP_SHARE = 0.5
_JOB_COLUMNS = (
    t.jobs.c.id, t.jobs.c.description, t.jobs.c.backup_path, t.jobs.c.host, t.jobs.c.last_run_id,
)  # fmt: skip
_RUN_COLUMNS = (
    t.runs.c.id, t.runs.c.status, t.runs.c.started_at, t.runs.c.finished_at, t.runs.c.duration_s,
    t.runs.c.files, t.runs.c.size_bytes, t.runs.c.message, t.runs.c.host,
)  # fmt: skip


def _jobs_and_latest_runs(
    conn: Connection, ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The rows of these jobs and of their latest runs, by id (only what the file shows)."""
    jobs = {
        row["id"]: dict(row)
        for row in conn.execute(select(*_JOB_COLUMNS).where(t.jobs.c.id.in_(ids))).mappings()
    }
    run_ids = [j["last_run_id"] for j in jobs.values() if j.get("last_run_id")]
    runs = {
        row["id"]: dict(row)
        for row in conn.execute(select(*_RUN_COLUMNS).where(t.runs.c.id.in_(run_ids))).mappings()
    }
    return jobs, runs


def _reads(path: Path) -> str | None:
    """The file's text as it is now (None: missing or unreadable, so written again)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
