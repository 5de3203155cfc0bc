"""A destination directory and the snapshots in it.

::

    DEST/snapshots/<id>/manifest.json     committed snapshots (the id sorts by time)
    DEST/snapshots/<id>/data.tar.zst
    DEST/snapshots/.partial-<id>/         being written (ignored, removed by the next backup)
    DEST/.lock                            held while a backup or forget changes DEST

A snapshot is written under ``.partial-<id>``, its files fsynced, then renamed to ``<id>``
and the directory fsynced: a crash at any moment leaves either the whole snapshot or
nothing, and every earlier snapshot as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from backwatch.engine.manifest import ARCHIVE, Manifest, read_manifest
from backwatch.errors import Conflict, InvalidInput, MalformedInput, NotFound

PARTIAL = ".partial-"


def new_snapshot_id(now: float) -> str:
    """``20261122T034512.345Z-1a2b3c``: sorts by time (to the millisecond, so two snapshots
    taken in one second still sort in order: a restore by hand extracts them oldest first),
    unique across hosts and destinations."""
    ms = int(now * 1000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000))
    return f"{stamp}.{ms % 1000:03d}Z-{os.urandom(3).hex()}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Repository:
    """The snapshots of one destination directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.snapshots_dir = self.path / "snapshots"
        self._manifests: dict[str, Manifest] = {}

    def __repr__(self) -> str:
        return f"Repository({str(self.path)!r})"

    # --- reading -----------------------------------------------------------------------

    def exists(self) -> bool:
        return self.snapshots_dir.is_dir()

    def ids(self) -> list[str]:
        """Committed snapshot ids, oldest first."""
        if not self.snapshots_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.snapshots_dir.iterdir()
            if not p.name.startswith(".") and p.is_dir()
        )

    def manifest(self, snapshot_id: str) -> Manifest:
        cached = self._manifests.get(snapshot_id)
        if cached is None:
            folder = self.snapshots_dir / snapshot_id
            if not folder.is_dir():
                raise self._unknown(snapshot_id)
            cached = self._manifests[snapshot_id] = read_manifest(folder)
        return cached

    def manifests(self) -> list[Manifest]:
        """Every committed snapshot, oldest first."""
        return [self.manifest(i) for i in self.ids()]

    def latest(self) -> Manifest | None:
        ids = self.ids()
        return self.manifest(ids[-1]) if ids else None

    def resolve(self, ref: str) -> Manifest:
        """A snapshot by id, unique id prefix, or ``latest``."""
        ids = self.ids()
        if ref == "latest":
            if not ids:
                raise NotFound(f"no snapshots in {self.path}")
            return self.manifest(ids[-1])
        matches = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
        if len(matches) != 1:
            raise self._unknown(ref, ambiguous=len(matches) > 1)
        return self.manifest(matches[0])

    def as_of(self, when: float) -> Manifest:
        """The last snapshot taken at or before ``when`` (to the millisecond: a time copied
        from ``backwatch snapshots`` selects that snapshot). Ids sort by time: read newest
        first, and keep only the one chosen (a big manifest takes tens of MB)."""
        for snapshot_id in reversed(self.ids()):
            manifest = self._manifests.get(snapshot_id) or read_manifest(
                self.snapshots_dir / snapshot_id
            )
            if manifest.created_at <= when + 0.001:
                self._manifests[snapshot_id] = manifest
                return manifest
        raise NotFound(f"no snapshot in {self.path} was taken at or before that time")

    def archive(self, snapshot_id: str) -> Path:
        path = self.snapshots_dir / snapshot_id / ARCHIVE
        if not path.is_file():
            raise MalformedInput(f"snapshot {snapshot_id} has no archive ({path} is missing)")
        return path

    def _unknown(self, ref: str, *, ambiguous: bool = False) -> NotFound:
        ids = self.ids()
        what = "matches several snapshots" if ambiguous else "is not a snapshot"
        known = ", ".join(ids[-5:]) or "none"
        return NotFound(f"{ref!r} {what} in {self.path} (latest: {known})")

    # --- changing ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the layout, or say clearly why the destination cannot be written."""
        try:
            self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"cannot create destination {self.path}: {exc.strerror}") from None
        if not os.access(self.snapshots_dir, os.W_OK | os.X_OK):
            raise InvalidInput(f"destination {self.path} is not writable")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the destination (backup, forget); refuses if already taken."""
        self.prepare()
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"another backup or forget is using {self.path}") from None
            self._remove_partials()
            yield
        finally:
            os.close(fd)

    def _remove_partials(self) -> None:
        """What an interrupted backup left behind (only ever under the lock)."""
        for child in self.snapshots_dir.iterdir():
            if child.name.startswith(PARTIAL):
                shutil.rmtree(child, ignore_errors=True)

    def partial(self, snapshot_id: str) -> Path:
        folder = self.snapshots_dir / f"{PARTIAL}{snapshot_id}"
        folder.mkdir()
        return folder

    def commit(self, partial: Path, snapshot_id: str) -> None:
        """Make a fully written (and fsynced) partial snapshot visible, atomically."""
        fsync_dir(partial)
        os.rename(partial, self.snapshots_dir / snapshot_id)
        fsync_dir(self.snapshots_dir)

    def remove(self, snapshot_id: str) -> None:
        """Forget a snapshot: renamed away first, so a crash never leaves half of one."""
        doomed = self.snapshots_dir / f"{PARTIAL}forget-{snapshot_id}"
        os.rename(self.snapshots_dir / snapshot_id, doomed)
        fsync_dir(self.snapshots_dir)
        shutil.rmtree(doomed, ignore_errors=True)
        self._manifests.pop(snapshot_id, None)
