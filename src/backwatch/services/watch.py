"""The files ``serve`` watches, polled by one thread (no inotify dependency): every JSONL
file twice a second (``services.jsonl_tail``), every status directory once a second
(``services.status_dirs``). What they find goes through the same services as a report sent
over HTTP, with ``source`` ``jsonl`` or ``status-file``.

Relative paths in ``[ingest] jsonl_files`` and ``status_dirs`` are taken from the folder of
the config file (the working directory when there is none).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from backwatch.services.hub import Hub
from backwatch.services.jsonl_tail import JsonlTail
from backwatch.services.status_dirs import StatusDirWatch

log = logging.getLogger("backwatch.ingest")

JSONL_INTERVAL_S = 0.5
STATUS_INTERVAL_S = 1.0


def resolve_path(value: str, base: Path | None) -> Path:
    """A configured path: ``~`` expanded, relative ones taken from the config file's folder."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.absolute()


class Watcher:
    """The thread that polls every watched JSONL file and status directory."""

    def __init__(self, hub: Hub) -> None:
        settings = hub.settings
        base = settings.config_path.parent if settings.config_path else None
        data_dir = settings.data_dir.absolute()
        paths: list[Path] = [data_dir / "metrics.jsonl"]
        for value in settings.ingest.jsonl_files:
            path = resolve_path(value, base)
            if path not in paths:
                paths.append(path)
        self.hub = hub
        self.tails = [JsonlTail(hub, p) for p in paths]
        self.dirs = [
            StatusDirWatch(hub, resolve_path(d, base), data_dir / "status")
            for d in settings.ingest.status_dirs
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self, *, status_dirs: bool = True) -> bool:
        """One round; True when a file has more waiting."""
        busy = False
        for tail in self.tails:
            try:
                busy = tail.poll() or busy
            except Exception:  # one file's trouble must not stop the others
                log.exception("tailing %s failed", tail)
        if status_dirs:
            for watch in self.dirs:
                try:
                    watch.poll()
                except Exception:
                    log.exception("watching %s failed", watch.directory)
        return busy

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="backwatch-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for tail in self.tails:
            tail.close()

    def _loop(self) -> None:
        next_dirs = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            busy = self.poll_once(status_dirs=now >= next_dirs)
            if now >= next_dirs:
                next_dirs = now + STATUS_INTERVAL_S
            if not busy:
                self._stop.wait(JSONL_INTERVAL_S)
