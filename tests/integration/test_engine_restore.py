"""Restoring with the built-in engine: conflicts, dry runs, the state as of a time, and
never a byte outside the target, whatever a crafted manifest, archive or target holds."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from backwatch.engine.manifest import ARCHIVE, MANIFEST
from backwatch.engine.repository import Repository
from backwatch.engine.restore import restore
from backwatch.engine.scan import sources_for
from backwatch.engine.snapshot import Request, take_snapshot
from backwatch.engine.verify import verify
from backwatch.errors import MalformedInput, NotFound


@pytest.fixture
def snap(tmp_path: Path) -> tuple[Repository, Path]:
    """A snapshot of ``src`` (a.txt, sub/b.txt, link → a.txt) in ``dest``."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    os.symlink("a.txt", src / "link")
    repo = Repository(tmp_path / "dest")
    take_snapshot(Request(sources_for([str(src)]), [repo]))
    return repo, src


def _outside(tmp_path: Path) -> list[str]:
    """Everything under tmp_path/outside (where no restore may write)."""
    base = tmp_path / "outside"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


def _rewrite_manifest(repo: Repository, change: dict[str, str]) -> None:
    folder = repo.snapshots_dir / repo.ids()[-1]
    text = (folder / MANIFEST).read_text()
    for old, new in change.items():
        text = text.replace(old, new)
    (folder / MANIFEST).write_text(text)
    repo._manifests.clear()


def _write_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))


# --- conflicts, selection, time -------------------------------------------------------


def test_selected_paths_only(snap: tuple[Repository, Path], tmp_path: Path) -> None:
    repo, _ = snap
    result = restore(repo, repo.resolve("latest"), tmp_path / "t", paths=["src/sub"])
    assert result.restored == ["src/sub/b.txt"]
    assert not (tmp_path / "t" / "src" / "a.txt").exists()
    with pytest.raises(NotFound, match="not in snapshot"):
        restore(repo, repo.resolve("latest"), tmp_path / "t", paths=["src/nope"])


@pytest.mark.parametrize(
    ("conflict", "expect_a", "renamed"),
    [("skip", "mine", False), ("overwrite", "alpha", False), ("rename", "mine", True),
     ("newer", "alpha", False)],
)  # fmt: skip
def test_conflict_strategies(
    snap: tuple[Repository, Path], tmp_path: Path, conflict: str, expect_a: str, renamed: bool
) -> None:
    repo, _ = snap
    target = tmp_path / "t"
    (target / "src").mkdir(parents=True)
    mine = target / "src" / "a.txt"
    mine.write_text("mine")
    os.utime(mine, (1, 1))  # older than the snapshot's copy
    result = restore(repo, repo.resolve("latest"), target, conflict=conflict)
    assert mine.read_text() == expect_a
    assert (target / "src" / "a.txt.restored").exists() == renamed
    if renamed:
        assert (target / "src" / "a.txt.restored").read_text() == "alpha"
    assert (target / "src" / "sub" / "b.txt").read_text() == "beta"
    assert not result.problems


def test_newer_keeps_a_copy_newer_than_the_snapshot(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    repo, _ = snap
    mine = tmp_path / "t" / "src" / "a.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("newer edit")
    os.utime(mine, (4_000_000_000, 4_000_000_000))
    result = restore(repo, repo.resolve("latest"), tmp_path / "t", conflict="newer")
    assert mine.read_text() == "newer edit"
    assert {"path": "src/a.txt", "reason": "the existing copy is newer"} in result.skipped


def test_dry_run_writes_nothing(snap: tuple[Repository, Path], tmp_path: Path) -> None:
    repo, _ = snap
    result = restore(repo, repo.resolve("latest"), tmp_path / "t", dry_run=True)
    assert set(result.restored) == {"src/a.txt", "src/sub/b.txt", "src/link"}
    assert not (tmp_path / "t").exists()


def test_the_state_as_of_a_time(snap: tuple[Repository, Path], tmp_path: Path) -> None:
    repo, src = snap
    first = repo.latest()
    assert first is not None
    (src / "a.txt").write_text("second version")
    take_snapshot(Request(sources_for([str(src)]), [repo]))
    older = repo.as_of(first.created_at + 0.0001)
    assert older.id == first.id
    restore(repo, older, tmp_path / "t")
    assert (tmp_path / "t" / "src" / "a.txt").read_text() == "alpha"
    with pytest.raises(NotFound, match="at or before"):
        repo.as_of(first.created_at - 10)


# --- never outside the target ---------------------------------------------------------


@pytest.mark.parametrize("evil", ["../outside/x", "/tmp/outside-x", "src/../../outside/x"])
def test_a_crafted_manifest_path_is_refused(
    snap: tuple[Repository, Path], tmp_path: Path, evil: str
) -> None:
    repo, _ = snap
    _rewrite_manifest(repo, {'"src/a.txt"': json.dumps(evil)})
    with pytest.raises(MalformedInput, match="unsafe path"):
        restore(repo, repo.resolve("latest"), tmp_path / "t")
    assert _outside(tmp_path) == []


def test_a_crafted_archive_cannot_name_its_way_out(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    """Members named ../x or /x, and a member that is a link where the manifest says file,
    are never written; the files the manifest wants and did not get are named."""
    repo, _ = snap
    archive = repo.snapshots_dir / repo.ids()[-1] / ARCHIVE
    up = tarfile.TarInfo("../outside/evil")
    absolute = tarfile.TarInfo(str(tmp_path / "outside" / "abs"))
    link = tarfile.TarInfo("src/a.txt")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
    _write_archive(archive, [(up, b"x"), (absolute, b"y"), (link, b"")])
    result = restore(repo, repo.resolve("latest"), tmp_path / "t")
    assert _outside(tmp_path) == []
    assert {p["path"] for p in result.problems} == {"src/a.txt", "src/sub/b.txt"}
    assert not (tmp_path / "t" / "src" / "a.txt").exists()


def test_a_symlinked_folder_in_the_target_is_not_followed(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    repo, _ = snap
    (tmp_path / "outside").mkdir()
    target = tmp_path / "t"
    (target / "src").mkdir(parents=True)
    os.symlink(tmp_path / "outside", target / "src" / "sub")
    result = restore(repo, repo.resolve("latest"), target, conflict="overwrite")
    assert _outside(tmp_path) == []
    assert any("symlink" in p["problem"] for p in result.problems)
    assert (target / "src" / "a.txt").read_text() == "alpha"


def test_a_symlink_at_a_files_place_is_replaced_not_written_through(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    repo, _ = snap
    victim = tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_text("untouched")
    target = tmp_path / "t"
    (target / "src").mkdir(parents=True)
    os.symlink(victim, target / "src" / "a.txt")
    restore(repo, repo.resolve("latest"), target, conflict="overwrite")
    assert victim.read_text() == "untouched"
    assert not (target / "src" / "a.txt").is_symlink()
    assert (target / "src" / "a.txt").read_text() == "alpha"


def test_a_snapshot_link_cannot_lead_a_later_file_outside(tmp_path: Path) -> None:
    """A manifest with a link 'src/esc' → outside and a file 'src/esc/x' after it."""
    (tmp_path / "outside").mkdir()
    src = tmp_path / "src"
    (src / "esc").mkdir(parents=True)
    (src / "esc" / "x").write_text("payload")
    repo = Repository(tmp_path / "dest")
    take_snapshot(Request(sources_for([str(src)]), [repo]))
    manifest = repo.resolve("latest")
    for entry in manifest.entries:
        if entry.path == "src/esc":
            entry.type, entry.target = "symlink", str(tmp_path / "outside")
    restore(repo, manifest, tmp_path / "t")
    assert _outside(tmp_path) == []


# --- damage ---------------------------------------------------------------------------


def test_a_damaged_archive_is_found_and_its_files_named(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    repo, _ = snap
    archive = repo.snapshots_dir / repo.ids()[-1] / ARCHIVE
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    report = verify(repo, repo.resolve("latest"))
    assert not report.ok
    assert {p["path"] for p in report.problems} <= {"src/a.txt", "src/sub/b.txt"}
    assert report.problems
    result = restore(repo, repo.resolve("latest"), tmp_path / "t")
    assert result.problems
    leftovers = [p.name for p in (tmp_path / "t").rglob(".restore-*")]
    assert leftovers == []


def test_a_file_whose_bytes_differ_from_the_manifest_is_not_restored(
    snap: tuple[Repository, Path], tmp_path: Path
) -> None:
    repo, _ = snap
    manifest = repo.resolve("latest")
    wrong = next(e for e in manifest.entries if e.path == "src/a.txt")
    wrong.blake3 = "0" * 64
    result = restore(repo, manifest, tmp_path / "t")
    assert result.problems == [
        {"path": "src/a.txt", "problem": "content differs from the manifest (damaged archive)"}
    ]
    assert not (tmp_path / "t" / "src" / "a.txt").exists()
    assert [p["path"] for p in verify(repo, manifest).problems] == ["src/a.txt"]
