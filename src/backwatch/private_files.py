"""The data directory and the files that hold secrets are their owner's alone.

The database holds every ping key in clear (the pages must show ping URLs to signed-in
users, so they cannot be hashed), the token file an admin token, spool entries whole
reports: readable by any local user, they let anyone forge pings or read every log. So the
data directory is made ``0700`` and those files ``0600`` when they are created, and
tightened, with a warning, when a process that opens them (``serve``, any command with a
local database) finds them looser.

Standard library only: the spool uses it, and clients start fast.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
#: files next to a SQLite database that hold its pages
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with the directory itself ``0700``."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode ``0600`` unless it exists (SQLite then writes into
    it, and gives its WAL and shared-memory files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def tighten(path: Path, mode: int) -> str | None:
    """Take every permission beyond ``mode`` away from ``path``; a warning when there was
    one to take (or it could not be taken), None when ``path`` was private or is missing."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not current & ~mode & 0o777:
        return None
    kind = "directory" if path.is_dir() else "file"
    try:
        os.chmod(path, current & mode)
    except OSError as exc:
        return (
            f"{kind} {path} is mode {current:04o}: other local users may read its secrets, "
            f"and it cannot be changed ({exc.strerror or exc}); make it {mode:04o}"
        )
    return f"{kind} {path} was mode {current:04o}; made it {current & mode:04o} (its owner's alone)"


def secure_data_dir(data_dir: Path, db_file: Path | None = None) -> list[str]:
    """Create the data directory private, tighten it, the database and the token file;
    log and answer a warning for each that was looser."""
    if not data_dir.exists():
        try:
            make_private_dir(data_dir)
        except OSError:
            return []  # the caller says what went wrong when it uses the directory
    paths = [(data_dir, DIR_MODE), (data_dir / "token", FILE_MODE)]
    if db_file is not None:
        paths.append((db_file, FILE_MODE))
        paths += [(Path(f"{db_file}{end}"), FILE_MODE) for end in SQLITE_COMPANIONS]
    warnings = [w for w in (tighten(p, m) for p, m in paths) if w]
    if warnings:
        for warning in warnings:
            logging.getLogger("backwatch").warning("%s", warning)
    return warnings
