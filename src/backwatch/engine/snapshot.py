"""Taking a snapshot: walk the sources once, then for each destination (in parallel) write
the new and changed files into a zstd-compressed tar, the manifest beside it, and commit.

Phases, in order (each reported through ``Hooks.phase``): ``dump`` (only with dumps: each
command's stdout is spooled, hashed, into the destination), ``scan``, ``archive``,
``manifest``, ``commit``. A destination whose tree did not change since its last snapshot
writes nothing and is ``skipped``; a failing destination does not stop the others.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from blake3 import blake3

from backwatch.engine.manifest import ARCHIVE, DIR, FILE, MANIFEST, SYMLINK, Entry, Manifest
from backwatch.engine.repository import Repository, new_snapshot_id
from backwatch.engine.scan import (
    DUMPS,
    Changes,
    Source,
    Walk,
    Where,
    compare,
    dump_entries,
    walk,
)
from backwatch.engine.tarwrite import DIRTYPE, SYMTYPE, TarWriter
from backwatch.errors import BackwatchError, InvalidInput

SUCCESS, SKIPPED, FAILED = "success", "skipped", "failed"
_CHUNK = 1 << 20  # bytes per read, hash update and compressor write
_WRITEBACK = 8 << 20  # archive bytes between two starts of writeback
_FADVISE = hasattr(os, "posix_fadvise")


@dataclass(frozen=True)
class Dump:
    """A command whose stdout becomes ``_dumps/<name>`` in the snapshot."""

    name: str
    argv: list[str]


@dataclass
class Request:
    sources: list[Source]
    destinations: list[Repository]
    exclude: list[str] = field(default_factory=list)
    dumps: list[Dump] = field(default_factory=list)
    #: files written beforehand (the dump phases of `backwatch run`), kept as _dumps/<name>
    extra_files: list[Path] = field(default_factory=list)
    checksum: bool = False
    full: bool = False
    level: int = 3
    job: str | None = None
    dry_run: bool = False


@dataclass
class Outcome:
    """What happened at one destination."""

    destination: str
    status: str
    snapshot: str | None = None
    kind: str | None = None
    parent: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Hooks:
    """Who watches a backup: phases start and end, archived bytes. No-ops here."""

    def phase(self, name: str, event: str, status: str | None = None) -> None:
        pass

    def total(self, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass


@dataclass
class _Destination:
    """One destination's share of the work: the snapshot written there, against its own
    parent."""

    repo: Repository
    snapshot_id: str
    parent: Manifest | None
    changes: Changes
    kept: dict[str, Entry]
    outcome: Outcome
    started: float = 0.0
    partial: Path | None = None
    entries: list[Entry] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "incremental" if self.parent else "full"

    def to_write(self, entry: Entry) -> bool:
        return entry.type != FILE or entry.path not in self.kept


def take_snapshot(
    request: Request, hooks: Hooks | None = None, clock: Callable[[], float] = time.time
) -> list[Outcome]:
    """Back the sources up to every destination; one outcome per destination."""
    hooks = hooks or Hooks()
    with contextlib.ExitStack() as stack:
        if not request.dry_run:
            for repo in request.destinations:
                stack.enter_context(repo.locked())
        current = Walk()
        if request.dumps and not request.dry_run:
            spool = Path(stack.enter_context(_spool_dir(request)))
            with _phase(hooks, "dump"):
                current.entries += _run_dumps(request.dumps, spool)
        if request.extra_files:
            current.entries += dump_entries(request.extra_files, with_folder=not current.entries)
        with _phase(hooks, "scan"):
            found = walk(request.sources, request.exclude)
            current.entries[:0] = found.entries
            current.problems = found.problems
            dests = [_prepare(request, repo, current, clock()) for repo in request.destinations]
        if request.dry_run:
            return [_dry(p, current) for p in dests]
        writing = [p for p in dests if p.outcome.status != SKIPPED]
        hooks.total(sum(_bytes_to_write(p, current) for p in writing))
        with _phase(hooks, "archive"):
            _each(writing, lambda p: _archive(p, current, request.level, hooks))
        with _phase(hooks, "manifest"):
            _each(writing, lambda p: _write_manifest(p, request))
        with _phase(hooks, "commit"):
            _each(writing, _commit)
        return [p.outcome for p in dests]


@contextlib.contextmanager
def _phase(hooks: Hooks, name: str) -> Any:
    hooks.phase(name, "start")
    try:
        yield
    except BaseException:
        hooks.phase(name, "end", FAILED)
        raise
    hooks.phase(name, "end", SUCCESS)


def _spool_dir(request: Request) -> tempfile.TemporaryDirectory[str]:
    """Dumps are spooled next to the first destination's snapshots (a partial: a crash
    leaves it for the next backup to remove)."""

    folder = request.destinations[0].snapshots_dir
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".partial-dumps-", dir=folder)


def _run_dumps(dumps: list[Dump], spool: Path) -> list[tuple[Entry, Where]]:
    """Run each dump command, its stdout streamed (and hashed) into a spool file."""
    out = dump_entries([], with_folder=True)
    for dump in dumps:
        path = spool / dump.name
        digest = blake3()
        with open(path, "wb") as f:
            try:
                proc = subprocess.Popen(dump.argv, stdout=subprocess.PIPE)
            except OSError as exc:
                raise InvalidInput(
                    f"dump {dump.name}: cannot start {dump.argv[0]}: {exc.strerror}"
                ) from None
            assert proc.stdout is not None
            while chunk := proc.stdout.read(_CHUNK):
                digest.update(chunk)
                f.write(chunk)
            code = proc.wait()
        if code != 0:
            raise InvalidInput(f"dump {dump.name}: the command exited with code {code}")
        st = path.stat()
        entry = Entry(
            f"{DUMPS}/{dump.name}", FILE, 0o600, st.st_mtime_ns / 1e9, st.st_size,
            uid=st.st_uid, gid=st.st_gid,
        )  # fmt: skip
        entry.blake3 = digest.hexdigest()
        out.append((entry, path))
    return out


def _prepare(request: Request, repo: Repository, current: Walk, now: float) -> _Destination:
    outcome = Outcome(str(repo.path), SUCCESS, problems=list(current.problems))
    parent = None if request.full else repo.latest()
    changes, kept = compare(current, parent, checksum=request.checksum)
    dest = _Destination(repo, new_snapshot_id(now), parent, changes, kept, outcome, started=now)
    outcome.kind, outcome.parent = dest.kind, parent.id if parent else None
    if parent is not None and changes.nothing:
        outcome.status = SKIPPED
        outcome.snapshot = None
    else:
        outcome.snapshot = dest.snapshot_id
    outcome.stats = _stats(changes, current)
    return dest


def _stats(changes: Changes, current: Walk) -> dict[str, Any]:
    files = {e.path: e for e, _ in current.entries if e.type == FILE}
    unchanged = set(changes.unchanged)
    return {
        "files": len(files),
        "files_new": sum(1 for p in changes.new if p in files),
        "files_changed": sum(1 for p in changes.changed if p in files),
        "files_unchanged": sum(1 for p in unchanged if p in files),
        "files_lost": len(changes.lost),
        "size_bytes": sum(e.size for e in files.values()),
        "bytes_read": sum(e.size for p, e in files.items() if p not in unchanged),
    }


def _dry(dest: _Destination, current: Walk) -> Outcome:
    dest.outcome.snapshot = None
    dest.outcome.stats["would_write_bytes"] = _bytes_to_write(dest, current)
    return dest.outcome


def _bytes_to_write(dest: _Destination, current: Walk) -> int:
    return sum(e.size for e, _ in current.entries if e.type == FILE and dest.to_write(e))


def _each(dests: list[_Destination], work: Callable[[_Destination], None]) -> None:
    """``work`` on every destination still going, in parallel; a failure stays with its
    destination (the others go on)."""

    def guarded(dest: _Destination) -> None:
        if dest.outcome.status == FAILED:
            return
        try:
            work(dest)
        except (OSError, BackwatchError) as exc:
            dest.outcome.status = FAILED
            dest.outcome.snapshot = None
            dest.outcome.error = getattr(exc, "message", None) or f"{dest.repo.path}: {exc}"

    if len(dests) <= 1:
        for dest in dests:
            guarded(dest)
        return

    with ThreadPoolExecutor(max_workers=len(dests)) as pool:
        list(pool.map(guarded, dests))


def _archive(dest: _Destination, current: Walk, level: int, hooks: Hooks) -> None:
    dest.partial = dest.repo.partial(dest.snapshot_id)
    # zstd compresses on every core (threads=-1) while this thread reads, hashes and
    # frames the files into whole-buffer writes (tarwrite: the bytes tarfile would write).
    compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True)
    fd = os.open(dest.partial / ARCHIVE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        out = _Output(fd)
        # any object with write() will do (the stubs ask for a file)
        writer = compressor.stream_writer(out, closefd=False, write_size=_CHUNK)  # type: ignore[arg-type]
        with writer as zst:
            tar = TarWriter(zst, _CHUNK, hooks.advance)
            for entry, path in current.entries:
                dest.entries.append(_add(dest, tar, entry, path))
            tar.close()
        os.fsync(fd)
    finally:
        os.close(fd)
    dest.outcome.stats["bytes_added"] = out.size


def _add(dest: _Destination, tar: TarWriter, entry: Entry, path: Where) -> Entry:
    """Write ``entry`` into the archive if this snapshot holds it; its manifest entry."""
    if entry.type == DIR:
        tar.add(entry.path, DIRTYPE, entry.mode, entry.mtime, "", entry.owner)
        return entry
    if entry.type == SYMLINK:
        tar.add(entry.path, SYMTYPE, entry.mode, entry.mtime, entry.target or "", entry.owner)
        return entry
    kept = dest.kept.get(entry.path)
    if kept is not None:
        return entry.held(kept.blake3, kept.snapshot)
    fd = os.open(path, os.O_RDONLY)
    try:
        digest, short = tar.add_file(
            entry.path, entry.mode, entry.mtime, entry.size, fd, entry.owner
        )
    finally:
        os.close(fd)
    if short or _modified(path, entry):
        dest.outcome.problems.append(f"{path}: changed while it was being read")
    return entry.held(digest, dest.snapshot_id)


def _modified(path: Where, entry: Entry) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True
    return st.st_size != entry.size or st.st_mtime_ns / 1e9 != entry.mtime


class _Output:
    """The archive file, for zstd's compressed output: every byte written (``os.write``
    may write part of a buffer), and the disk set to work as it grows: the written part
    is handed to writeback every few megabytes, so the fsync that commits the archive
    waits for the last few only. (``POSIX_FADV_DONTNEED`` starts the writeback of dirty
    pages without waiting for it, as PostgreSQL's ``pg_flush_data`` uses it; the fsync
    still decides durability.)"""

    def __init__(self, fd: int) -> None:
        self.fd, self.size, self.started = fd, 0, 0  # writeback started up to ``started``

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)
        if self.size - self.started >= _WRITEBACK and _FADVISE:
            os.posix_fadvise(self.fd, self.started, 0, os.POSIX_FADV_DONTNEED)
            self.started = self.size
        return len(data)


def _write_manifest(dest: _Destination, request: Request) -> None:
    assert dest.partial is not None
    changed = set(dest.changes.new) | set(dest.changes.changed) | set(dest.changes.lost)
    sources = [
        {
            "name": s.name,
            "path": str(s.path),
            "status": "changed" if any(_under(p, s.name) for p in changed) else SKIPPED,
        }
        for s in request.sources
    ]
    manifest = Manifest(
        id=dest.snapshot_id,
        created_at=dest.started,
        kind=dest.kind,
        parent=dest.parent.id if dest.parent else None,
        sources=sources,
        entries=dest.entries,
        job=request.job,
        host=os.uname().nodename,  # socket.gethostname(), without importing socket
        stats=dest.outcome.stats,
    )
    with open(dest.partial / MANIFEST, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    dest.outcome.stats["sources"] = sources


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _commit(dest: _Destination) -> None:
    assert dest.partial is not None
    dest.repo.commit(dest.partial, dest.snapshot_id)
