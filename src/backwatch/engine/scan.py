"""Walking the sources, and what changed since a snapshot.

The walk gives one ``Entry`` per directory, regular file and symlink (no hashes yet: the
archive step hashes what it reads). ``compare`` sorts the files into new, changed,
unchanged and lost, by size + mtime + inode, or by content with ``checksum``.
``since_latest`` (``backwatch scan``, the API's scan) is ``compare`` against the latest
snapshot, without writing anything.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from backwatch.engine.manifest import DIR, FILE, SYMLINK, Entry, Manifest
from backwatch.errors import InvalidInput

#: the top-level folder of streamed dumps in a snapshot
DUMPS = "_dumps"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A directory to back up, and the top-level name its paths get in a snapshot."""

    name: str
    path: Path


def sources_for(paths: list[str]) -> list[Source]:
    """Each path checked (an existing directory) and named by its base name, made unique."""
    if not paths:
        raise InvalidInput("nothing to back up: give --source DIR (or paths in [jobs.builtin])")
    out: list[Source] = []
    taken = {DUMPS}
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if not path.exists():
            raise InvalidInput(f"source {raw} does not exist")
        if not path.is_dir():
            raise InvalidInput(f"source {raw} is not a directory")
        base = path.name or "root"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out.append(Source(name, path))
    return out


#: where an entry's bytes are read from: a plain string for the walk (a Path per file
#: would cost more than the stat), a Path for spooled dumps
Where = str | Path


@dataclass
class Walk:
    """Entries found (with the absolute path of each) and what could not be read."""

    entries: list[tuple[Entry, Where]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def walk(sources: list[Source], exclude: list[str] | None = None) -> Walk:
    """One pass over the sources: the ``lstat`` of ``os.scandir`` is the only call per path."""
    out = Walk()
    for source in sources:
        st = os.stat(source.path)
        out.entries.append((_entry(source.name, st, DIR), source.path))
        _walk_dir(str(source.path), source.name, exclude or [], out)
    return out


def _walk_dir(folder: str, prefix: str, exclude: list[str], out: Walk) -> None:
    try:
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda d: d.name)
    except OSError as exc:
        out.problems.append(f"{folder}: {exc.strerror}")
        return
    entries = out.entries
    for child in children:
        rel = f"{prefix}/{child.name}"
        if exclude and _excluded(child.name, rel, exclude):
            continue
        try:
            st = child.stat(follow_symlinks=False)
        except OSError as exc:
            out.problems.append(f"{child.path}: {exc.strerror}")
            continue
        kind = st.st_mode & 0o170000  # stat.S_IFMT, without the call
        if kind == stat.S_IFREG:
            entries.append((_entry(rel, st, FILE), child.path))
        elif kind == stat.S_IFDIR:
            entries.append((_entry(rel, st, DIR), child.path))
            _walk_dir(child.path, rel, exclude, out)
        elif kind == stat.S_IFLNK:
            entry = _entry(rel, st, SYMLINK)
            entry.target = os.readlink(child.path)
            entries.append((entry, child.path))
        else:
            out.problems.append(f"{child.path}: skipped (not a file, directory or symlink)")


def dump_entries(paths: list[Path], *, with_folder: bool) -> list[tuple[Entry, Where]]:
    """Files kept under ``_dumps/`` by their names (and the folder itself when asked)."""
    out: list[tuple[Entry, Where]] = []
    if with_folder:
        out.append((Entry(DUMPS, DIR, 0o755, time.time()), Path(".")))
    for path in paths:
        entry = _entry(f"{DUMPS}/{path.name}", os.stat(path), FILE)
        entry.blake3 = hash_file(path)  # a dump is rewritten each time: compared by content
        out.append((entry, path))
    return out


def _entry(rel: str, st: os.stat_result, kind: str) -> Entry:
    mode, mtime = st.st_mode & 0o7777, st.st_mtime_ns / 1e9
    if kind == FILE:
        return Entry(rel, kind, mode, mtime, st.st_size, st.st_ino, uid=st.st_uid, gid=st.st_gid)
    return Entry(rel, kind, mode, mtime, uid=st.st_uid, gid=st.st_gid)


def _excluded(name: str, rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)


def hash_file(path: Where) -> str:
    digest = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Changes:
    """Files of a walk compared with a snapshot (paths, sorted)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not (self.new or self.changed or self.lost)


def compare(
    current: Walk, previous: Manifest | None, *, checksum: bool = False
) -> tuple[Changes, dict[str, Entry]]:
    """(what changed, the previous entry of every unchanged file, hash filled when known).

    Unchanged means the same size + mtime + inode, or with ``checksum`` the same content,
    and the same mode and owner. A directory or symlink that changed counts too, so a new
    empty folder is not lost.
    """
    before = previous.by_path() if previous else {}
    changes = Changes()
    kept: dict[str, Entry] = {}
    seen = set()
    for entry, path in current.entries:
        seen.add(entry.path)
        old = before.get(entry.path)
        if old is None:
            changes.new.append(entry.path)
        elif _unchanged(entry, old, path, checksum):
            changes.unchanged.append(entry.path)
            kept[entry.path] = old
        else:
            changes.changed.append(entry.path)
    changes.lost = sorted(p for p in before if p not in seen and p.split("/")[0] != DUMPS)
    return changes, kept


def since_latest(
    latest: Manifest | None,
    paths: list[str] | None = None,
    *,
    exclude: list[str] | None = None,
    checksum: bool = False,
) -> dict[str, Any]:
    """What ``backwatch scan`` reports: the files lost, changed or never backed up since
    ``latest``, in ``paths`` or else the snapshot's own sources (by the names it gave
    them). A source folder that is gone is not an error: its files are lost."""
    if paths or latest is None:
        sources, problems = sources_for(paths or []), []
    else:
        recorded = [Source(s["name"], Path(s["path"])) for s in latest.sources]
        sources = [s for s in recorded if s.path.is_dir()]
        problems = [f"{s.path}: the source folder is gone" for s in recorded if s not in sources]
    current = walk(sources, exclude)
    changes, _ = compare(current, latest, checksum=checksum)
    files = {e.path for e, _ in current.entries if e.type == FILE}
    before = latest.by_path() if latest else {}
    return {
        "snapshot": latest.id if latest else None,
        "lost": [p for p in changes.lost if before[p].type == FILE],
        "changed": [p for p in changes.changed if p in files],
        "new": [p for p in changes.new if p in files],
        "problems": problems + current.problems,
    }


def _unchanged(entry: Entry, old: Entry, path: Where, checksum: bool) -> bool:
    if entry.type != old.type or not _same_owner(entry, old):
        return False
    if entry.type == DIR:
        return entry.mode == old.mode
    if entry.type == SYMLINK:
        return entry.target == old.target
    if entry.blake3 is not None:  # dumps, hashed as they were written
        return entry.size == old.size and entry.blake3 == old.blake3
    if checksum:
        try:
            return entry.size == old.size and hash_file(path) == old.blake3
        except OSError:
            return False
    return entry.same_stat(old) and entry.mode == old.mode


def _same_owner(entry: Entry, old: Entry) -> bool:
    """The same owner, as a new mode is a change (a manifest from before owners were kept
    knows none: not a change, or the first backup after the upgrade would rewrite all)."""
    return old.uid is None or (entry.uid, entry.gid) == (old.uid, old.gid)
