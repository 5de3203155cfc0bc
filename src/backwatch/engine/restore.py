"""``restore``: all or selected paths of a snapshot into a target directory.

Nothing is ever written outside the target: manifest paths are checked safe when read
(no absolute paths, no ``..``), every parent directory on the way is checked not to be a
symlink (a restored or pre-existing link cannot lead a later file elsewhere), and a file
is written to a temporary name in its directory and renamed over the final name, which
replaces a symlink there instead of writing through it. A file whose bytes do not match
its hash is not restored (the problem names it).

Conflicts (the path exists already and differs): ``skip`` keeps it, ``overwrite``
replaces it, ``rename`` restores beside it as ``<name>.restored[-N]``, ``newer`` replaces
it only when the snapshot's copy is newer.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from backwatch.engine.archive import ArchiveDamaged, copy_hashed, read_held
from backwatch.engine.manifest import DIR, FILE, SYMLINK, Entry, Manifest
from backwatch.engine.repository import Repository
from backwatch.errors import InvalidInput, NotFound

CONFLICTS = ("skip", "overwrite", "rename", "newer")


@dataclass
class Result:
    snapshot: str
    target: str
    dry_run: bool
    restored: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class _Unsafe(Exception):
    """A path that would lead outside the target (through a symlink, over a file)."""


def select(manifest: Manifest, paths: list[str]) -> list[Entry]:
    """The entries under any of ``paths`` (all when empty), with their parent folders."""
    if not paths:
        return list(manifest.entries)
    wanted = [p.strip("/") for p in paths]
    by_path = manifest.by_path()
    for p in wanted:
        if p not in by_path:
            raise NotFound(f"{p!r} is not in snapshot {manifest.id}")
    keep = set()
    for entry in manifest.entries:
        if any(entry.path == p or entry.path.startswith(p + "/") for p in wanted):
            keep.add(entry.path)
            parts = entry.path.split("/")
            keep.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return [e for e in manifest.entries if e.path in keep]


def restore(
    repo: Repository,
    manifest: Manifest,
    target: Path,
    *,
    paths: list[str] | None = None,
    conflict: str = "skip",
    dry_run: bool = False,
) -> Result:
    if conflict not in CONFLICTS:
        raise InvalidInput(f"--conflict must be one of {', '.join(CONFLICTS)}, not {conflict!r}")
    entries = select(manifest, paths or [])
    if not dry_run:
        target.mkdir(parents=True, exist_ok=True)
    restorer = _Restorer(target.resolve(), conflict, Result(manifest.id, str(target), dry_run))
    for entry in entries:
        if entry.type == DIR:
            restorer.directory(entry)
    files = [e for e in entries if e.type == FILE]
    by_holder: dict[str, dict[str, Entry]] = {}
    for entry in files:
        by_holder.setdefault(entry.snapshot or manifest.id, {})[entry.path] = entry
    for holder, wanted in sorted(by_holder.items()):
        restorer.files(repo, holder, wanted)
    for entry in entries:
        if entry.type == SYMLINK:
            restorer.symlink(entry)
    restorer.finish_directories([e for e in entries if e.type == DIR])
    return restorer.result


class _Restorer:
    def __init__(self, root: Path, conflict: str, result: Result) -> None:
        self.root = root
        self.conflict = conflict
        self.result = result
        self.dry_run = result.dry_run

    # --- where a path goes -------------------------------------------------------------

    def _parent(self, rel: str) -> Path:
        """The real parent directory of ``rel`` under the root, created as needed; refuses
        a symlink or a non-directory on the way."""
        folder = self.root
        for part in rel.split("/")[:-1]:
            folder = folder / part
            try:
                st = os.lstat(folder)
            except FileNotFoundError:
                if not self.dry_run:
                    folder.mkdir()
                continue
            if stat.S_ISLNK(st.st_mode):
                raise _Unsafe(f"{folder} is a symlink: not restoring through it")
            if not stat.S_ISDIR(st.st_mode):
                raise _Unsafe(f"{folder} is not a directory")
        return folder

    def _destination(self, entry: Entry) -> Path | None:
        """Where ``entry`` is written after the conflict rule, or None: skipped, or refused
        as unsafe (said in the problems)."""
        try:
            final = self._parent(entry.path) / entry.path.rsplit("/", 1)[-1]
        except _Unsafe as exc:
            self._problem(entry, str(exc))
            return None
        try:
            st = os.lstat(final)
        except FileNotFoundError:
            return final
        if _same(entry, st, final):
            self.result.skipped.append({"path": entry.path, "reason": "identical"})
            return None
        if self.conflict == "overwrite":
            return final
        if self.conflict == "newer" and entry.mtime > st.st_mtime_ns / 1e9:
            return final
        if self.conflict == "rename":
            renamed = _free_name(final)
            self.result.renamed.append({"path": entry.path, "to": str(renamed)})
            return renamed
        reason = "exists" if self.conflict == "skip" else "the existing copy is newer"
        self.result.skipped.append({"path": entry.path, "reason": reason})
        return None

    def _problem(self, entry: Entry, problem: str) -> None:
        self.result.problems.append({"path": entry.path, "problem": problem})

    # --- what is written ---------------------------------------------------------------

    def directory(self, entry: Entry) -> None:
        try:
            folder = self._parent(entry.path) / entry.path.rsplit("/", 1)[-1]
            st = os.lstat(folder) if os.path.lexists(folder) else None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                raise _Unsafe(f"{folder} exists and is not a directory")
            if st is None and not self.dry_run:
                folder.mkdir()
        except (_Unsafe, OSError) as exc:
            self._problem(entry, str(exc))

    def files(self, repo: Repository, holder: str, wanted: dict[str, Entry]) -> None:
        try:
            found = read_held(repo, holder, wanted, self._file)
            missing = f"missing from the archive of {holder}"
        except ArchiveDamaged as exc:
            found, missing = exc.found, exc.message
        for path in sorted(set(wanted) - found):
            self._problem(wanted[path], missing)

    def _file(self, entry: Entry, data: IO[bytes]) -> None:
        where = self._destination(entry)
        if where is None:
            return
        if self.dry_run:
            self.result.restored.append(entry.path)
            return
        fd, tmp = tempfile.mkstemp(prefix=".restore-", dir=where.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = copy_hashed(data, out)
            if size != entry.size or digest != entry.blake3:
                self._problem(entry, "content differs from the manifest (damaged archive)")
                return
            _own(tmp, entry)
            os.chmod(tmp, entry.mode)
            os.utime(tmp, ns=(_ns(entry.mtime), _ns(entry.mtime)))
            os.replace(tmp, where)
        except OSError as exc:
            self._problem(entry, f"cannot write {where}: {exc.strerror}")
            return
        finally:  # a damaged archive ends the copy with an exception: no half file stays
            if os.path.lexists(tmp):
                os.unlink(tmp)
        self.result.restored.append(entry.path)

    def symlink(self, entry: Entry) -> None:
        where = self._destination(entry)
        if where is None:
            return
        if not self.dry_run:
            tmp = where.with_name(f".restore-link-{os.getpid()}-{where.name}")
            try:
                os.symlink(entry.target or "", tmp)
                _own(tmp, entry)
                os.replace(tmp, where)
            except OSError as exc:
                self._problem(entry, f"cannot create the link {where}: {exc.strerror}")
                return
        self.result.restored.append(entry.path)

    def finish_directories(self, dirs: list[Entry]) -> None:
        """Modes and times last (writing into a folder changes its mtime), deepest first."""
        if self.dry_run:
            return
        for entry in sorted(dirs, key=lambda e: e.path.count("/"), reverse=True):
            try:
                folder = self._parent(entry.path) / entry.path.rsplit("/", 1)[-1]
                if os.path.islink(folder) or not folder.is_dir():
                    continue
                _own(folder, entry)
                os.chmod(folder, entry.mode)
                os.utime(folder, ns=(_ns(entry.mtime), _ns(entry.mtime)))
            except (_Unsafe, OSError):
                continue  # reported when the folder was created


def _same(entry: Entry, st: os.stat_result, path: Path) -> bool:
    """Already there as in the snapshot (same kind, size and time, or link): nothing to do."""
    if entry.type == SYMLINK:
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry.target
    if entry.type == FILE:
        return (
            stat.S_ISREG(st.st_mode)
            and st.st_size == entry.size
            and _ns(st.st_mtime_ns / 1e9) == _ns(entry.mtime)
        )
    return False


def _free_name(path: Path) -> Path:
    candidate = path.with_name(path.name + ".restored")
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}.restored-{n}")
    return candidate


def _own(path: Path | str, entry: Entry) -> None:
    """The entry's owner, by number, when restoring as root (as tar and restic do); anyone
    else cannot give files away, and restores as themselves. Before ``chmod``: a change of
    owner clears the set-user-ID and set-group-ID bits."""
    if entry.uid is not None and entry.gid is not None and os.geteuid() == 0:
        os.lchown(path, entry.uid, entry.gid)


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
