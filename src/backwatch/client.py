"""Report backups to backwatch from Python (standard library only; importing it is cheap).

    from backwatch.client import track

    with track("plex") as run:              # url/token: BACKWATCH_URL / BACKWATCH_TOKEN
        with run.phase("archive"):
            ...
            run.file("/srv/plex/db.tar", 1_073_741_824)
        run.update("uploading")
    # the run is finished as success; an exception finishes it as failed with the error
    # message, then propagates unchanged

Seed 003's shape works too::

    monitor = get_monitor()
    monitor.start_monitoring()                       # compatibility no-op
    monitor.start_operation_tracking("op-1", "backup")
    monitor.end_operation_tracking("op-1", success=True, files_processed=150,
                                   bytes_processed=100 * 1024 * 1024)

Reporting never breaks the backup: when the server cannot be reached each request is
written to the spool (``backwatch.spool``, shared with the CLI and the shell library) and
delivered, in order, before the next request or by ``backwatch spool flush`` /
``backwatch.client.flush()``. Run ids and times are made here, on the client, so a replayed
report lands with its real times and never twice. Phases travel with the finish request,
which the server accepts once, for the same reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backwatch import spool
from backwatch.ids import JOB_ID_PROBLEM, JOB_ID_RE
from backwatch.masking import display_url

__all__ = ["Client", "DeliveryError", "Monitor", "Run", "flush", "get_monitor", "track"]

log = logging.getLogger("backwatch.client")

DEFAULT_URL = "http://127.0.0.1:5001"
TIMEOUT_S = 10.0
FILES_PER_REQUEST = 500
_FIGURES = (
    "status", "size_bytes", "files", "files_new", "files_changed", "bytes_added", "exit_code",
    "message", "stats", "log",
)  # fmt: skip


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _check_job(job: str) -> str:
    if not isinstance(job, str) or not JOB_ID_RE.match(job):
        raise ValueError(f"job {job!r} {JOB_ID_PROBLEM}")
    return job


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", str(text).strip().lower()).strip("-._")[:64]
    return slug or "backup"


_warned_spools: set[Path] = set()


class DeliveryError(Exception):
    """A request the server did not accept. ``status`` 0: it could not be reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Client:
    """Sends requests to one server, spooling them while it cannot be reached."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        spool_dir: str | Path | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = (url or os.environ.get("BACKWATCH_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("BACKWATCH_TOKEN") or _token_from_data_dir()
        self.spool_dir = Path(spool_dir) if spool_dir else spool.default_dir()
        self.timeout = timeout
        self._lock = threading.Lock()

    def send(self, method: str, path: str, body: Any = None) -> Any:
        """One request now; raises DeliveryError (``status`` 0 when unreachable)."""
        # urllib.request loads http.client, email and ssl: a script that imports the client
        # pays for them at its first report, not at its start (test_client.py holds this)
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError, OSError):
                message = f"server answered {exc.code}"
            if exc.code in spool.TOKEN_REFUSED:
                message = spool.token_refused(message)
            raise DeliveryError(exc.code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = display_url(str(getattr(exc, "reason", exc)))
            raise DeliveryError(0, f"cannot reach {display_url(self.url)}: {reason}") from None
        return json.loads(raw) if raw else None

    def deliver(self, method: str, path: str, body: Any = None) -> Any:
        """Send after whatever waits in the spool; spool it if that is not possible now.

        Returns the server's answer, or None when the request was spooled or the server
        already had it. Never raises for a server problem: the backup must go on.
        """
        with self._lock:
            if spool.enabled() and spool.pending(self.spool_dir):
                waiting = spool.flush(self.spool_dir, self.send)
                if waiting.refused:
                    return self._refused(method, path, waiting.refused)
                if waiting.remaining:  # keep the order: queue behind what still waits
                    return self._spool(method, path, body, "; ".join(waiting.errors))
            try:
                return self.send(method, path, body)
            except DeliveryError as exc:
                if exc.status in spool.TOKEN_REFUSED:
                    return self._refused(method, path, exc.message)
                if exc.status == 0 or exc.status in spool.RETRY_LATER:
                    return self._spool(method, path, body, exc.message)
                if exc.status not in spool.ALREADY_DONE:
                    log.warning("backwatch refused %s %s: %s", method, path, exc.message)
                return None

    def flush(self) -> spool.FlushResult:
        """Deliver everything waiting in the spool, in order (one process at a time)."""
        with self._lock:
            return spool.flush(self.spool_dir, self.send)

    def _refused(self, method: str, path: str, message: str) -> None:
        """A refused token: the user's to fix, so an error in the log, not a spooled report
        that would wait for ever as if the server were down."""
        log.error("backwatch: %s; %s %s was not delivered", message, method, path)
        return None

    def _spool(self, method: str, path: str, body: Any, reason: str) -> None:
        if not spool.enabled():
            log.warning("backwatch: %s; report dropped (BACKWATCH_SPOOL=0)", reason)
            return None
        try:
            spool.write_entry(self.spool_dir, method, path, body)
        except OSError as exc:
            log.warning("backwatch: %s, and cannot spool to %s: %s", reason, self.spool_dir, exc)
            return None
        if self.spool_dir not in _warned_spools:  # once per process, not per request
            _warned_spools.add(self.spool_dir)
            log.warning("backwatch: %s; reports wait in %s", reason, self.spool_dir)
        return None


def _token_from_data_dir() -> str | None:
    base = Path(os.environ.get("BACKWATCH_DATA_DIR") or "./data")
    try:
        return (base / "token").read_text().strip() or None
    except OSError:
        return None


def _hostname() -> str:
    return socket.gethostname()


class Run:
    """One run being reported. Made by ``track`` (or ``Monitor``); finish it once."""

    def __init__(
        self,
        client: Client,
        job: str,
        *,
        host: str | None = None,
        tool: str | None = None,
        message: str | None = None,
        run_id: str | None = None,
        clock: Any = time.time,
    ) -> None:
        self.client = client
        self.job = _check_job(job)
        self.clock = clock
        self.started_at: float = clock()
        self.id = run_id or spool.new_run_id(self.started_at)
        self.host = host or _hostname()
        self.tool = tool
        self.status: str | None = None  # the final status, once finished
        self.finished_at: float | None = None
        self.figures: dict[str, Any] = {}
        self.phases: list[dict[str, Any]] = []
        self.files_count = 0
        self.files_bytes = 0
        self._files: list[dict[str, Any]] = []
        body = {"job": job, "id": self.id, "host": self.host, "started_at": _iso(self.started_at)}
        if tool:
            body["tool"] = tool
        if message:
            body["message"] = message
        client.deliver("POST", "/api/v1/runs/start", body)

    def _path(self, what: str) -> str:
        return f"/api/v1/runs/{self.id}/{what}"

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a named step (``with run.phase("archive"): …``); failed if it raises."""
        start = self.clock()
        status = "success"
        try:
            yield
        except BaseException:
            status = "failed"
            raise
        finally:
            end = self.clock()
            self.phases.append(
                {
                    "name": str(name)[:64],
                    "started_at": _iso(start),
                    "finished_at": _iso(end),
                    "duration_s": max(0.0, end - start),
                    "status": status,
                }
            )

    def file(
        self, path: str | os.PathLike[str], size: int | None = None, status: str = "success"
    ) -> None:
        """Record one backed-up file (seed 000's ``metrics_file_backup_complete``)."""
        record: dict[str, Any] = {"path": os.fspath(path), "status": status}
        if size is not None:
            record["size"] = int(size)
            self.files_bytes += int(size)
        self.files_count += 1
        self._files.append(record)
        if len(self._files) >= FILES_PER_REQUEST:
            self._send_files()

    def _send_files(self) -> None:
        if self._files:
            batch, self._files = self._files, []
            self.client.deliver("POST", self._path("files"), {"files": batch})

    def update(self, message: str) -> None:
        """A progress message, shown while the run is going."""
        self.client.deliver("POST", self._path("status"), {"message": str(message)})

    def set(self, **figures: Any) -> None:
        """Figures for the finish: status (for a good end: success, warning, skipped),
        size_bytes, files, files_new, files_changed, bytes_added, exit_code, message, stats,
        log. A figure that cannot be sent as JSON raises TypeError here, not later."""
        unknown = sorted(set(figures) - set(_FIGURES))
        if unknown:
            raise TypeError(f"unknown figure {unknown[0]!r}; known: {', '.join(_FIGURES)}")
        json.dumps(figures)
        self.figures.update(figures)

    def finish(self, status: str | None = None, message: str | None = None) -> None:
        """Finish the run (``track`` does this for you): ``status`` or the one given to
        ``set``, else success. A second call does nothing."""
        if self.status is not None:
            return
        self.status = status or self.figures.get("status") or "success"
        self.finished_at = self.clock()
        self._send_files()
        body: dict[str, Any] = {"status": self.status, "finished_at": _iso(self.finished_at)}
        if self.files_count:
            body["files"] = self.files_count
            body["size_bytes"] = self.files_bytes
        body.update({k: v for k, v in self.figures.items() if v is not None and k != "status"})
        if message is not None:
            body["message"] = message
        if self.phases:
            body["phases"] = self.phases
        self.client.deliver("POST", self._path("finish"), body)


@contextlib.contextmanager
def track(
    job: str,
    *,
    url: str | None = None,
    token: str | None = None,
    host: str | None = None,
    tool: str | None = None,
    message: str | None = None,
    spool_dir: str | Path | None = None,
    client: Client | None = None,
) -> Iterator[Run]:
    """Report the block as one run of ``job``: success, or failed with the exception's
    message (the exception propagates). Ctrl-C finishes it as cancelled."""
    client = client or Client(url, token, spool_dir=spool_dir)
    run = Run(client, job, host=host, tool=tool, message=message)
    try:
        yield run
    except KeyboardInterrupt:
        _finish_quietly(run, "cancelled", "interrupted")
        raise
    except SystemExit as exc:  # sys.exit(0) inside the block is a normal end
        if exc.code in (0, None):
            _finish_quietly(run, None, None)
        else:
            _finish_quietly(run, "failed", f"exit status {exc.code}")
        raise
    except BaseException as exc:
        _finish_quietly(run, "failed", _describe(exc))
        raise
    run.finish()


def _finish_quietly(run: Run, status: str | None, message: str | None) -> None:
    """Finish a run while an exception propagates: nothing here may replace that error."""
    try:
        run.finish(status, message)
    except Exception:  # pragma: no cover - deliver() already swallows server trouble
        log.exception("could not report the end of run %s", run.id)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Monitor:
    """Seed 003's ``BackupStateMonitor`` shape, reporting to backwatch."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        job: str | None = None,
        host: str | None = None,
        spool_dir: str | Path | None = None,
    ) -> None:
        self.client = Client(url, token, spool_dir=spool_dir)
        self.job = _check_job(job) if job else None
        self.host = host
        self.operations: dict[str, Run] = {}

    def start_monitoring(self) -> None:
        """Compatibility: backwatch's server does the monitoring."""

    def stop_monitoring(self) -> None:
        """Compatibility no-op."""

    def start_operation_tracking(
        self, operation_id: str, operation_type: str = "backup", *, job: str | None = None
    ) -> str:
        """Open a run for this operation; returns its run id. The job is ``job``, the
        monitor's job, or the operation type made a slug ("backup")."""
        name = job or self.job or _slug(operation_type)
        run = Run(self.client, name, host=self.host, tool=None)
        self.operations[str(operation_id)] = run
        return run.id

    def end_operation_tracking(
        self,
        operation_id: str,
        success: bool = True,
        files_processed: int | None = None,
        bytes_processed: int | None = None,
        error: str | None = None,
        **figures: Any,
    ) -> dict[str, Any]:
        """Finish the operation's run: success, or failed with ``error`` as its message."""
        run = self.operations.pop(str(operation_id), None)
        if run is None:
            log.warning(
                "end_operation_tracking(%r) without start_operation_tracking; "
                "recording it as a run that starts now",
                operation_id,
            )
            run = Run(self.client, self.job or "backup", host=self.host)
        run.set(files=files_processed, size_bytes=bytes_processed, **figures)
        run.finish("success" if success else "failed", error)
        return {
            "operation_id": operation_id,
            "run_id": run.id,
            "job": run.job,
            "success": success,
            "duration_seconds": run.clock() - run.started_at,
        }


_monitor: Monitor | None = None
_monitor_lock = threading.Lock()


def get_monitor(**options: Any) -> Monitor:
    """The process-wide Monitor (seed 003). Options (url, token, job, host, spool_dir)
    make a new one, which later calls without options return."""
    global _monitor
    with _monitor_lock:
        if _monitor is None or options:
            _monitor = Monitor(**options)
        return _monitor


def flush(
    url: str | None = None, token: str | None = None, *, spool_dir: str | Path | None = None
) -> spool.FlushResult:
    """Deliver every spooled request now (the same as ``backwatch spool flush``)."""
    return Client(url, token, spool_dir=spool_dir).flush()
