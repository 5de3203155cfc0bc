"""How each tool's backup is drilled: one class per tool answering the same questions —
which snapshot is the latest, which files it holds, how to restore some of them into a
directory, and what each file's bytes should be (``runners.drill`` does the rest).

restic runs with ``--no-lock`` and borg with ``--bypass-lock``: a drill never writes to a
repository (the repository lock backwatch holds keeps its own backup and prune away).
Every tool runs at low CPU and I/O priority.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import blake3
import psutil

from backwatch.domain.drill import Candidate
from backwatch.engine.repository import Repository
from backwatch.errors import ConfigError
from backwatch.runners.base import local_path
from backwatch.runners.borg import _env as borg_env
from backwatch.settings import JobSettings

CHUNK = 1 << 20
#: when the drill in progress must give up (``[jobs.drill] timeout``), per thread
deadline = threading.local()


class DrillProblem(Exception):
    """The drill could not be done (a tool failed): the drill fails with this message."""


class ToolDrill(Protocol):
    def snapshot(self) -> tuple[str, int | None]:
        """(id of the latest snapshot, its whole size in bytes or None)."""
        ...

    def files(self, snapshot: str) -> list[tuple[Candidate, float | None]]:
        """Every regular file of the snapshot, with its mtime there."""
        ...

    def restore(self, snapshot: str, paths: list[str], target: Path) -> None:
        """Restore ``paths`` of ``snapshot`` under ``target``."""
        ...

    def restored(self, target: Path, path: str) -> Path:
        """Where ``path`` lands under ``target``."""
        ...

    def expected(self, snapshot: str, paths: list[str]) -> dict[str, str]:
        """path → the hash the snapshot says its bytes have (``hash_name``)."""
        ...

    def source(self, path: str) -> Path | None:
        """The live file a snapshot path was backed up from, if known."""
        ...

    hash_name: str
    #: the tool checks restored bytes against the backup's own record (blob ids, archive
    #: hashes, the manifest); False for a plain copy, whose only record is its source
    self_checked: bool


def lower_priority() -> None:
    """In the child before it runs: the tool yields CPU and disk to everything else."""
    os.nice(10)
    with contextlib.suppress(Exception):
        psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)


def _remaining() -> float | None:
    until = getattr(deadline, "at", None)
    if until is None:
        return None
    left = until - time.monotonic()
    if left <= 0:
        raise DrillProblem("the drill's timeout ([jobs.drill] timeout) was reached")
    return left


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=_remaining(),
            preexec_fn=lower_priority,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DrillProblem("the drill's timeout ([jobs.drill] timeout) was reached") from None
    except OSError as exc:
        raise DrillProblem(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        first = next((x for x in lines[:-1] if "error" in x.lower() or "fail" in x.lower()), None)
        why = f"{first[:200]} ({last[:100]})" if first else last[:300]
        raise DrillProblem(f"{Path(argv[0]).name} exited with {proc.returncode}: {why}")
    return proc.stdout


def hash_file(path: Path, name: str) -> str:
    digest = _new_hash(name)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())


def _new_hash(name: str) -> Any:
    if name == "blake3":
        return blake3.blake3()
    return hashlib.new(name)


class ResticDrill:
    hash_name = "sha256"
    self_checked = True

    def __init__(self, job: JobSettings, env: dict[str, str]) -> None:
        opts = job.restic
        assert opts is not None
        self.env = env
        self.base = [opts.binary, "--repo", opts.repository, "--no-lock"]
        if opts.password_file:
            self.base += ["--password-file", opts.password_file]
        if opts.password_command:
            self.base += ["--password-command", opts.password_command]
        self.base += list(opts.extra_args)
        self.roots: dict[str, Path] = {}

    def snapshot(self) -> tuple[str, int | None]:
        found = json.loads(_run([*self.base, "snapshots", "--json"], self.env) or "[]")
        if not found:
            raise DrillProblem("the repository holds no snapshot")
        latest = max(found, key=lambda s: s.get("time", ""))
        # `ls` names a file by its full path (/srv/photos/a.jpg) when the directory was
        # given as an absolute path, else from the directory's own name (/photos/a.jpg)
        self.roots = {f"/{Path(p).name}": Path(p) for p in latest.get("paths", [])}
        stats = json.loads(_run([*self.base, "stats", "--json", latest["id"]], self.env))
        return str(latest["id"]), stats.get("total_size")

    def files(self, snapshot: str) -> list[tuple[Candidate, float | None]]:
        out = []
        for line in _run([*self.base, "ls", "--json", snapshot], self.env).splitlines():
            node = json.loads(line) if line.startswith("{") else {}
            if node.get("struct_type") == "node" and node.get("type") == "file":
                size = int(node.get("size") or 0)
                out.append((Candidate(node["path"], size), _rfc3339(node.get("mtime"))))
        return out

    def restore(self, snapshot: str, paths: list[str], target: Path) -> None:
        # restic decrypts every blob with its MAC and checks it against the blob's id (the
        # SHA-256 of its bytes): a damaged pack fails the restore. No --verify: it reads
        # every file a second time, and a drill must time a restore as a user runs it.
        includes = [arg for p in paths for arg in ("--include", p)]
        _run([*self.base, "restore", snapshot, "--target", str(target), *includes], self.env)

    def restored(self, target: Path, path: str) -> Path:
        return target / path.lstrip("/")

    def expected(self, snapshot: str, paths: list[str]) -> dict[str, str]:
        return {}  # restic checked every blob against its SHA-256 id as it restored it

    def source(self, path: str) -> Path | None:
        for root in self.roots.values():  # a path given as absolute keeps its full path
            if path == str(root) or path.startswith(f"{root}/"):
                return Path(path)
        top, _, rest = path.lstrip("/").partition("/")
        root = self.roots.get(f"/{top}")  # a relative one is named from its base name
        return None if root is None else root / rest


class BorgDrill:
    hash_name = "sha256"
    self_checked = True

    def __init__(self, job: JobSettings, env: dict[str, str]) -> None:
        opts = job.borg
        assert opts is not None
        self.env = {**env, **borg_env(opts)}
        self.repo = opts.repository
        self.base = [opts.binary, "--bypass-lock", *opts.extra_args]

    def snapshot(self) -> tuple[str, int | None]:
        archives = json.loads(_run([*self.base, "list", "--json", self.repo], self.env))
        names = archives.get("archives") or []
        if not names:
            raise DrillProblem("the repository holds no archive")
        name = str(names[-1]["name"])
        info = json.loads(_run([*self.base, "info", "--json", f"{self.repo}::{name}"], self.env))
        stats = (info.get("archives") or [{}])[0].get("stats", {})
        return name, stats.get("original_size")

    def files(self, snapshot: str) -> list[tuple[Candidate, float | None]]:
        argv = [*self.base, "list", "--json-lines", f"{self.repo}::{snapshot}"]
        out = []
        for line in _run(argv, self.env).splitlines():
            item = json.loads(line) if line.startswith("{") else {}
            if item.get("type") == "-":
                when = item.get("mtime")
                mtime = datetime.fromisoformat(when).timestamp() if when else None
                out.append((Candidate(item["path"], int(item.get("size") or 0)), mtime))
        return out

    def restore(self, snapshot: str, paths: list[str], target: Path) -> None:
        _run([*self.base, "extract", f"{self.repo}::{snapshot}", *paths], self.env, cwd=target)

    def restored(self, target: Path, path: str) -> Path:
        return target / path

    def expected(self, snapshot: str, paths: list[str]) -> dict[str, str]:
        argv = [*self.base, "list", "--json-lines", "--format", "{sha256}",
                f"{self.repo}::{snapshot}", *paths]  # fmt: skip
        out = {}
        for line in _run(argv, self.env).splitlines():
            item = json.loads(line) if line.startswith("{") else {}
            if item.get("type") == "-" and item.get("sha256"):
                out[item["path"]] = item["sha256"]
        return out

    def source(self, path: str) -> Path | None:
        return Path("/" + path)


class BuiltinDrill:
    hash_name = "blake3"
    self_checked = True

    def __init__(self, job: JobSettings, dest: int = 0) -> None:
        if not job.destinations:
            raise DrillProblem(f"job {job.id!r} has no destinations")
        self.repo = Repository(job.destinations[dest])
        self.manifest: Any = None

    def snapshot(self) -> tuple[str, int | None]:
        ids = self.repo.ids()
        if not ids:
            raise DrillProblem(f"no snapshot in {self.repo.path}")
        self.manifest = self.repo.manifest(ids[-1])
        return ids[-1], sum(e.size for e in self.manifest.files())

    def files(self, snapshot: str) -> list[tuple[Candidate, float | None]]:
        return [(Candidate(e.path, e.size), e.mtime) for e in self.manifest.files()]

    def restore(self, snapshot: str, paths: list[str], target: Path) -> None:
        # as a user restores: `backwatch restore` in a process of its own (its start is
        # part of a restore's fixed cost), at the drill's low priority like every tool
        argv = [sys.executable, "-m", "backwatch", "restore", snapshot, "--dest",
                str(self.repo.path), "--target", str(target), "--json"]  # fmt: skip
        for path in paths:
            argv += ["--path", path]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKWATCH_")}
        _run(argv, env)

    def restored(self, target: Path, path: str) -> Path:
        return target / path

    def expected(self, snapshot: str, paths: list[str]) -> dict[str, str]:
        wanted = set(paths)
        return {e.path: e.blake3 for e in self.manifest.files() if e.path in wanted and e.blake3}

    def source(self, path: str) -> Path | None:
        name, _, rest = path.partition("/")
        for source in self.manifest.sources:
            if source.get("name") == name and source.get("path"):
                return Path(source["path"]) / rest
        return None


class RsyncDrill:
    """rsync keeps a plain copy: the drill reads a sample of it back and compares each
    file with its source (no restore needed, none possible)."""

    hash_name = "sha256"
    self_checked = False

    def __init__(self, job: JobSettings) -> None:
        opts = job.rsync
        assert opts is not None
        dest = local_path(opts.destination)
        if dest is None:
            raise DrillProblem(f"the destination {opts.destination} is not a local directory")
        self.dest = Path(dest)
        # rsync copies "src/" as its contents, "src" as a directory named src
        self.roots = [
            (Path(p), Path("") if p.endswith("/") else Path(Path(p).name)) for p in opts.paths
        ]

    def snapshot(self) -> tuple[str, int | None]:
        if not self.dest.is_dir():
            raise DrillProblem(f"the destination {self.dest} does not exist")
        total = sum(p.stat().st_size for p in self.dest.rglob("*") if p.is_file())
        return str(self.dest), total

    def files(self, snapshot: str) -> list[tuple[Candidate, float | None]]:
        out = []
        for path in sorted(self.dest.rglob("*")):
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                out.append((Candidate(str(path.relative_to(self.dest)), st.st_size), st.st_mtime))
        return out

    def restore(self, snapshot: str, paths: list[str], target: Path) -> None:
        for path in paths:  # restoring a plain copy is reading it: that is what is timed
            with contextlib.suppress(OSError), open(self.dest / path, "rb") as fh:
                while fh.read(CHUNK):
                    _remaining()

    def restored(self, target: Path, path: str) -> Path:
        return self.dest / path

    def expected(self, snapshot: str, paths: list[str]) -> dict[str, str]:
        return {}  # a copy holds no record of its own: its unchanged source is the record

    def source(self, path: str) -> Path | None:
        """The source a copied file came from: the first root that holds it, else (it was
        deleted since) the first root it could have come from."""
        rel = Path(path)
        candidates = [
            root / rel.relative_to(prefix)
            for root, prefix in self.roots
            if prefix == Path("") or rel.parts[: len(prefix.parts)] == prefix.parts
        ]
        return next((c for c in candidates if c.exists()), candidates[0] if candidates else None)


def drill_for(job: JobSettings, env: dict[str, str], dest: int = 0) -> ToolDrill:
    """The drill of ``job``'s tool (ConfigError naming what is missing); ``dest``: which
    of a built-in job's destinations."""
    tool = job.tool
    if tool == "restic" and job.restic is not None:
        return ResticDrill(job, env)
    if tool == "borg" and job.borg is not None:
        return BorgDrill(job, env)
    if tool == "builtin":
        return BuiltinDrill(job, dest)
    if tool == "rsync" and job.rsync is not None:
        return RsyncDrill(job)
    raise ConfigError(
        f"job {job.id!r} (tool {tool or 'none'!r}) has nothing a drill can restore: it needs "
        "tool = 'restic', 'borg', 'rsync' or 'builtin' with its options, or a "
        "[jobs.drill] command"
    )


def _rfc3339(value: Any) -> float | None:
    if not value:
        return None
    text = str(value)
    # restic prints nanoseconds: Python reads at most microseconds
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
