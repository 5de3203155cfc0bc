"""The client-side spool: reports that could not reach the server wait on disk.

Every client (``backwatch push``/``start``/``finish``, the Python client, the shell library)
writes the same format, so ``backwatch spool flush`` delivers all of them:

    <spool dir>/<19-digit epoch ns>-<pid>-<random>.json
    {"method": "POST", "path": "/api/v1/runs", "body": {...}}

Entries are delivered in name order (the order they were written). Delivery is safe to
repeat: run reports carry client-made ids, a re-sent start or report answers with the
stored run, and a re-sent finish of a finished run (409) counts as delivered. An entry the
server rejects as invalid (other 4xx) is moved to ``rejected/`` with the reason, never
retried forever and never silently dropped. A refused token (401/403) stops the flush with
a clear error ("the server refused the token: …", ``FlushResult.refused``): the entries are
fine and stay for a corrected token, but clients do not spool new reports behind them as if
the server were down — that would hide the problem for ever. Standard library only:
clients start fast.

The entry layout is exactly ``json.dumps({"method", "path", "body"})`` with the default
separators and this key order: the shell library reads entries without a JSON parser by
matching ``{"method": "M", "path": "P", "body": B}``, so keep it.

One process delivers a spool at a time: ``.flush.lock`` in the spool directory, created with
O_EXCL and holding ``<pid> <epoch seconds>``, is shared with the shell library; a lock
whose process is gone or that is older than ``STALE_LOCK_S`` is broken.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from backwatch.ids import new_run_id as new_run_id  # where clients have found it
from backwatch.private_files import FILE_MODE, make_private_dir

#: answers that mean "the server has this already" when replaying
ALREADY_DONE = {409}
#: answers worth retrying later (besides an unreachable server)
RETRY_LATER = {408, 425, 429, 500, 502, 503, 504}
#: answers that refuse the token: an error for the user, never a reason to spool
TOKEN_REFUSED = {401, 403}
LOCK_NAME = ".flush.lock"
STALE_LOCK_S = 600
_last_ns = 0


def default_dir() -> Path:
    """``BACKWATCH_SPOOL_DIR``, else ``$XDG_CACHE_HOME/backwatch/spool`` (~/.cache/…)."""
    explicit = os.environ.get("BACKWATCH_SPOOL_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "backwatch" / "spool"


def enabled() -> bool:
    """Clients spool unless ``BACKWATCH_SPOOL=0``."""
    return os.environ.get("BACKWATCH_SPOOL", "1").strip().lower() not in ("0", "no", "false")


def new_entry_name() -> str:
    """``<ns>-<pid>-<random>.json``; strictly increasing within a process even if the clock
    steps back, so name order is write order."""
    global _last_ns
    ns = max(time.time_ns(), _last_ns + 1)
    _last_ns = ns
    return f"{ns:019d}-{os.getpid()}-{secrets.token_hex(4)}.json"


def write_entry(spool_dir: Path, method: str, path: str, body: Any) -> Path:
    """Atomically add one request to the spool; returns its file."""
    make_private_dir(spool_dir)  # entries are whole reports, logs included: 0700 / 0600
    final = spool_dir / new_entry_name()
    tmp = spool_dir / ("." + final.name + ".tmp")
    data = json.dumps({"method": method, "path": path, "body": body}, ensure_ascii=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def pending(spool_dir: Path) -> list[Path]:
    """Entries waiting for delivery, in delivery order."""
    if not spool_dir.is_dir():
        return []
    return sorted(p for p in spool_dir.glob("*.json") if not p.name.startswith("."))


def read_entry(entry: Path) -> tuple[str, str, Any]:
    """``(method, path, body)`` of one entry; ValueError/OSError when unreadable."""
    item = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise ValueError("not a spool entry")
    return str(item["method"]), item["path"], item.get("body")


def rejected(spool_dir: Path) -> list[Path]:
    """Entries the server refused, kept for a human in ``rejected/``."""
    target = spool_dir / "rejected"
    return sorted(target.glob("*.json")) if target.is_dir() else []


def try_lock(spool_dir: Path) -> bool:
    """Take the spool's delivery lock (shared with the shell library) if it is free."""
    lock = spool_dir / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            if not _stale(lock):
                return False
            lock.unlink(missing_ok=True)
            continue
        except OSError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()} {int(time.time())}\n")
        return True
    return False


def unlock(spool_dir: Path) -> None:
    (spool_dir / LOCK_NAME).unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    try:
        pid_text, since_text = lock.read_text().split()[:2]
        pid, since = int(pid_text), int(since_text)
    except (OSError, ValueError):  # being written right now, or garbage
        try:
            return time.time() - lock.stat().st_mtime > 2
        except OSError:
            return True
    if time.time() - since >= STALE_LOCK_S:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


class FlushResult:
    """What one flush did. A plain class, not a dataclass: ``dataclasses`` (and the
    ``inspect`` it loads) would be a tenth of ``backwatch push``'s start-up."""

    def __init__(self, *, remaining: int = 0, busy: bool = False) -> None:
        self.delivered = 0
        self.rejected = 0
        self.remaining = remaining
        self.busy = busy
        self.errors: list[str] = []
        #: the error when the server refused the token (the entries stay in the spool)
        self.refused: str | None = None


def flush(spool_dir: Path, send: Any, *, wait_s: float = 10.0) -> FlushResult:
    """Deliver pending entries in order with ``send(method, path, body)``.

    ``send`` returns normally when the server accepted the request and raises an exception
    with an integer ``status`` attribute when it answered an error (0 or absent: the server
    could not be reached). The first entry that cannot be delivered now stops the flush, so
    order is kept. If another process is delivering the spool, wait up to ``wait_s`` for it,
    then give up with ``busy`` set.
    """
    deadline = time.monotonic() + wait_s
    while not try_lock(spool_dir):
        if not spool_dir.is_dir():
            return FlushResult()
        if time.monotonic() >= deadline:
            busy = FlushResult(remaining=len(pending(spool_dir)), busy=True)
            busy.errors.append(f"another process is delivering {spool_dir}")
            return busy
        time.sleep(0.05)
    try:
        return _flush_locked(spool_dir, send)
    finally:
        unlock(spool_dir)


def _flush_locked(spool_dir: Path, send: Any) -> FlushResult:
    result = FlushResult()
    entries = pending(spool_dir)
    for index, entry in enumerate(entries):
        try:
            method, path, body = read_entry(entry)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _reject(spool_dir, entry, f"unreadable spool entry: {exc}")
            result.rejected += 1
            continue
        try:
            send(method, path, body)
        except Exception as exc:  # classified by its status below
            status = int(getattr(exc, "status", 0) or 0)
            if status in ALREADY_DONE:
                entry.unlink(missing_ok=True)
                result.delivered += 1
                continue
            if status in TOKEN_REFUSED:
                result.remaining = len(entries) - index
                result.refused = token_refused(str(getattr(exc, "message", exc)))
                result.errors.append(result.refused)
                return result
            if status == 0 or status in RETRY_LATER or _wrong_place(status, exc):
                result.remaining = len(entries) - index
                result.errors.append(str(getattr(exc, "message", exc)))
                return result
            _reject(spool_dir, entry, str(getattr(exc, "message", exc)))
            result.rejected += 1
            result.errors.append(f"{entry.name}: {getattr(exc, 'message', exc)}")
            continue
        entry.unlink(missing_ok=True)
        result.delivered += 1
    return result


def token_refused(message: str) -> str:
    """The error for a 401/403 answer, the same from every client."""
    if message.startswith("the server refused the token"):
        return message
    # the server's message names what is missing: a scope, or the token's job/host patterns
    return f"the server refused the token: {message} (check BACKWATCH_TOKEN or --token)"


def _wrong_place(status: int, exc: Exception) -> bool:
    """A 404 that is not backwatch's "no such run": the URL is not the server's base URL.
    The entries wait for a corrected URL instead of being set aside."""
    if status != 404:
        return False
    message = str(getattr(exc, "message", exc))
    return getattr(exc, "code", "not_found") != "not_found" or "no such URL" in message


def _reject(spool_dir: Path, entry: Path, reason: str) -> None:
    target = spool_dir / "rejected"
    make_private_dir(target)
    try:
        os.replace(entry, target / entry.name)
        (target / (entry.name + ".reason")).write_text(reason + "\n", encoding="utf-8")
    except OSError:
        pass
