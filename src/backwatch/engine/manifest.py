"""The manifest of one snapshot: every path with its metadata, hash and holding snapshot.

A manifest is plain JSON (``manifest.json`` next to ``data.tar.zst``) so a user can read
it without backwatch. Paths are relative, '/'-separated and start with the name of the
source they come from (``photos/2024/a.jpg``). A path that could leave a restore target
(absolute, ``..``, empty parts, NUL) is refused when a manifest is read, so nothing built
from a crafted manifest can point outside the target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from backwatch.errors import MalformedInput
from backwatch.timeutil import iso

FORMAT = "backwatch-snapshot/1"
MANIFEST = "manifest.json"
ARCHIVE = "data.tar.zst"

FILE, DIR, SYMLINK = "file", "dir", "symlink"


@dataclass
class Entry:
    """One path of a snapshot. ``snapshot`` names the snapshot whose archive holds the
    file's bytes (itself, or a base it was unchanged since)."""

    path: str
    type: str
    mode: int
    mtime: float
    size: int = 0
    inode: int = 0
    blake3: str | None = None
    snapshot: str | None = None
    target: str | None = None  # symlinks
    #: the owner by number (None in manifests written before owners were kept)
    uid: int | None = None
    gid: int | None = None

    def held(self, blake3: str | None, snapshot: str | None) -> Entry:
        """This entry with its hash and the snapshot holding its bytes (a copy: a walk's
        entries are shared by the destinations; ``dataclasses.replace`` is ten times
        slower, felt at 100 k files)."""
        return Entry(
            self.path, self.type, self.mode, self.mtime, self.size, self.inode,
            blake3, snapshot, self.target, self.uid, self.gid,
        )  # fmt: skip

    @property
    def owner(self) -> tuple[int, int]:
        """(uid, gid) for the archive's headers (0, 0 when not known)."""
        return (self.uid or 0, self.gid or 0)

    def same_stat(self, other: Entry) -> bool:
        """Unchanged by size, mtime and inode (the fast test of an incremental)."""
        return (
            self.type == other.type
            and self.size == other.size
            and self.mtime == other.mtime
            and self.inode == other.inode
        )


@dataclass
class Manifest:
    id: str
    created_at: float
    kind: str  # full | incremental
    parent: str | None
    sources: list[dict[str, str]]
    entries: list[Entry]
    job: str | None = None
    host: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    @property
    def bases(self) -> list[str]:
        """Snapshots (other than this one) whose archives hold bytes this one needs."""
        held = {e.snapshot for e in self.entries if e.snapshot and e.snapshot != self.id}
        return sorted(held)

    def files(self) -> list[Entry]:
        return [e for e in self.entries if e.type == FILE]

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}

    def summary(self) -> dict[str, Any]:
        """One snapshot as ``backwatch snapshots --json`` and the HTTP API list it."""
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "kind": self.kind,
            "parent": self.parent,
            "bases": self.bases,
            "job": self.job,
            "host": self.host,
            "files": self.stats.get("files"),
            "size_bytes": self.stats.get("size_bytes"),
            "bytes_added": self.stats.get("bytes_added"),
            "sources": self.sources,
        }

    def to_json(self) -> str:
        # fields read directly: dataclasses.asdict deep-copies, ten times slower on 100 k
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["entries"] = [_compact(e) for e in self.entries]
        data["bases"] = self.bases
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # a name that is not UTF-8 (Python holds its bytes as surrogates): written as
            # \udcXX escapes, valid JSON that reads back to the very same name and bytes
            return json.dumps(data, separators=(",", ":"))
        return text


def _compact(entry: Entry) -> dict[str, Any]:
    """An entry without its empty fields (a manifest of 100 k files stays small)."""
    return {k: v for k, v in vars(entry).items() if v is not None}


def check_path(path: object) -> str:
    """``path`` if it is a safe relative snapshot path, else MalformedInput saying why."""
    if not isinstance(path, str) or not path:
        raise MalformedInput(f"unsafe path in manifest: {path!r} (empty)")
    if "\0" in path or path.startswith("/") or "\\" in path:
        raise MalformedInput(f"unsafe path in manifest: {path!r} (absolute or odd characters)")
    padded = f"/{path}/"  # one search per kind of bad part, not a split per path
    if "//" in padded or "/./" in padded or "/../" in padded:
        raise MalformedInput(f"unsafe path in manifest: {path!r} (empty, '.' or '..' part)")
    return path


def parse_manifest(text: str, where: str) -> Manifest:
    """A manifest from its JSON; MalformedInput naming ``where`` when it is not one."""
    try:
        data = json.loads(text)
        entries = [_entry(raw) for raw in data["entries"]]
        manifest = Manifest(
            id=str(data["id"]),
            created_at=float(data["created_at"]),
            kind=str(data["kind"]),
            parent=data.get("parent"),
            sources=list(data.get("sources", [])),
            entries=entries,
            job=data.get("job"),
            host=data.get("host"),
            stats=dict(data.get("stats", {})),
            format=str(data.get("format", "")),
        )
    except MalformedInput as exc:
        raise MalformedInput(f"{where}: {exc.message}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedInput(f"{where}: not a backwatch manifest ({exc})") from None
    if manifest.format != FORMAT:
        raise MalformedInput(f"{where}: unknown format {manifest.format!r} (expected {FORMAT})")
    return manifest


def _entry(raw: dict[str, Any]) -> Entry:
    entry = Entry(**raw)
    check_path(entry.path)
    if entry.type not in (FILE, DIR, SYMLINK):
        raise MalformedInput(f"unknown entry type {entry.type!r} for {entry.path!r}")
    return entry


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MalformedInput(f"cannot read {path}: {exc.strerror}") from None
    return parse_manifest(text, str(path))
