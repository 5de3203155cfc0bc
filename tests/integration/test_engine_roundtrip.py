"""The built-in engine keeps what it promises: any tree comes back as it was, through
several incremental generations, and after forget.

Property-style (hypothesis): random trees with spaces and unicode in names, empty files,
symlinks inside the tree and varied permissions.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backwatch.engine.forget import Policy, forget
from backwatch.engine.repository import Repository
from backwatch.engine.restore import restore
from backwatch.engine.scan import sources_for
from backwatch.engine.snapshot import Request, take_snapshot
from backwatch.engine.verify import verify
from backwatch.errors import InvalidInput

NAMES = st.text(alphabet=st.sampled_from("abcxyz ü€ñ-_.é漢"), min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..") and not n.startswith(".restore")
)
FILES = st.dictionaries(
    st.lists(NAMES, min_size=1, max_size=3).map(tuple),
    st.tuples(st.binary(max_size=3000), st.sampled_from([0o644, 0o600, 0o755, 0o444])),
    max_size=12,
)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write_tree(root: Path, files: dict[tuple[str, ...], tuple[bytes, int]]) -> None:
    """Files (a path that is also a folder of another path stays a folder), and a symlink
    to the first file, relative, inside the tree."""
    root.mkdir(parents=True, exist_ok=True)
    folders = {parts[:i] for parts in files for i in range(1, len(parts))}
    for parts, (data, mode) in sorted(files.items()):
        if parts in folders:
            continue
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
        path.write_bytes(data)
        os.chmod(path, mode)
    first = next((p for p in sorted(files) if p not in folders), None)
    if first is not None and not root.joinpath("link to first").exists():
        os.symlink("/".join(first), root / "link to first")


def _state(root: Path) -> dict[str, tuple[str, object, int]]:
    """Every path under ``root``: kind, content or link target, permission bits."""
    out: dict[str, tuple[str, object, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st_ = os.lstat(path)
            rel = str(path.relative_to(root))
            mode = stat.S_IMODE(st_.st_mode)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(path), 0)
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir", None, mode)
            else:
                out[rel] = ("file", path.read_bytes(), mode)
    return out


def _backup(src: Path, repo: Repository, **kw: object) -> str:
    (outcome,) = take_snapshot(Request(sources_for([str(src)]), [repo], **kw))  # type: ignore[arg-type]
    assert outcome.status in ("success", "skipped"), outcome
    return outcome.snapshot or outcome.parent or ""


def _restored(repo: Repository, snapshot: str, target: Path) -> dict[str, tuple[str, object, int]]:
    result = restore(repo, repo.resolve(snapshot), target)
    assert not result.problems, result.problems
    return _state(target / "src")


@FAST
@given(files=FILES)
def test_any_tree_comes_back_as_it_was(files: dict[tuple[str, ...], tuple[bytes, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, repo = Path(tmp, "src"), Repository(Path(tmp, "dest"))
        _write_tree(src, files)
        snapshot = _backup(src, repo)
        assert verify(repo, repo.resolve(snapshot)).ok
        assert _restored(repo, snapshot, Path(tmp, "out")) == _state(src)


@FAST
@given(generations=st.lists(FILES, min_size=2, max_size=4), checksum=st.booleans())
def test_every_generation_of_incrementals_restores_its_own_state(
    generations: list[dict[tuple[str, ...], tuple[bytes, int]]], checksum: bool
) -> None:
    """Each generation rewrites some files, adds others and deletes the rest; restoring
    any snapshot gives the tree of its own generation."""
    with tempfile.TemporaryDirectory() as tmp:
        src, repo = Path(tmp, "src"), Repository(Path(tmp, "dest"))
        states = {}
        for files in generations:
            if src.exists():
                _clear(src)
            _write_tree(src, files)
            snapshot = _backup(src, repo, checksum=checksum)
            states[snapshot] = _state(src)
        for i, (snapshot, state) in enumerate(states.items()):
            assert _restored(repo, snapshot, Path(tmp, f"out{i}")) == state


def _clear(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.unlink(Path(dirpath, name))
        for name in dirnames:
            path = Path(dirpath, name)
            if path.is_symlink():
                path.unlink()
            else:
                path.rmdir()


@FAST
@given(
    edits=st.lists(st.sets(st.integers(0, 7), max_size=4), min_size=3, max_size=7),
    keep_last=st.integers(1, 3),
)
def test_forget_keeps_every_kept_snapshot_restorable(edits: list[set[int]], keep_last: int) -> None:
    """Incrementals share bytes with their bases: after forget, each kept snapshot still
    verifies and restores exactly."""
    with tempfile.TemporaryDirectory() as tmp:
        src, repo = Path(tmp, "src"), Repository(Path(tmp, "dest"))
        src.mkdir()
        states = {}
        for gen, changed in enumerate(edits):
            for n in range(8):
                if gen == 0 or n in changed:
                    (src / f"f{n}").write_bytes(f"{gen}-{n}".encode() * (n + 1))
            snapshot = _backup(src, repo)
            states[snapshot] = _state(src)
        decision = forget(repo, Policy(last=keep_last))
        assert repo.ids() == sorted(decision.keep)
        for i, snapshot in enumerate(repo.ids()):
            assert verify(repo, repo.resolve(snapshot)).ok
            assert _restored(repo, snapshot, Path(tmp, f"out{i}")) == states[snapshot]


def test_a_no_change_backup_is_skipped_and_writes_nothing(tmp_path: Path) -> None:
    src, repo = tmp_path / "src", Repository(tmp_path / "dest")
    _write_tree(src, {("a",): (b"x", 0o644)})
    _backup(src, repo)
    (outcome,) = take_snapshot(Request(sources_for([str(src)]), [repo]))
    assert outcome.status == "skipped" and len(repo.ids()) == 1


def test_several_destinations_get_the_same_tree_and_an_unwritable_one_is_named_first(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    _write_tree(src, {("a",): (b"x" * 100, 0o644), ("b", "c"): (b"", 0o600)})
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    repos = [Repository(tmp_path / "d1"), Repository(tmp_path / "d2"), Repository(blocked)]
    outcomes = take_snapshot(Request(sources_for([str(src)]), repos[:2]))
    assert [o.status for o in outcomes] == ["success", "success"]
    for repo in repos[:2]:
        assert _restored(repo, "latest", tmp_path / f"out-{repo.path.name}") == _state(src)
    with pytest.raises(InvalidInput, match="cannot create destination"):
        take_snapshot(Request(sources_for([str(src)]), repos[1:]))


def test_a_name_that_is_not_utf8_comes_back_byte_for_byte(tmp_path: Path) -> None:
    """Linux names are bytes: one that is not UTF-8 (a Latin-1 name from an old disk) is
    backed up, read back from the manifest by the next backup, restored and verified."""
    src = tmp_path / "src"
    src.mkdir()
    odd = b"caf\xe9 \xff.txt"
    with open(os.path.join(os.fsencode(src), odd), "wb") as f:
        f.write(b"a latin-1 name")
    (src / "plain.txt").write_text("x")
    repo = Repository(tmp_path / "dest")
    first = _backup(src, repo)
    assert verify(repo, repo.resolve(first)).ok
    assert _backup(src, repo) == first  # nothing changed: the name read back is the same
    assert _restored(repo, first, tmp_path / "out") == _state(src)
    restored = os.path.join(os.fsencode(tmp_path / "out" / "src"), odd)
    with open(restored, "rb") as f:
        assert f.read() == b"a latin-1 name"


def test_owners_are_kept_and_restored_by_root_with_backwatch_and_with_plain_tar(
    tmp_path: Path,
) -> None:
    """Files of several users (a /srv with service accounts) come back with their owners
    when root restores them, through backwatch and through plain tar."""
    import shutil
    import subprocess

    from tests.conftest import need, need_tool

    need(os.geteuid() == 0, "giving files to other users needs root")
    tar = need_tool("tar")
    need_tool("zstd")
    src = tmp_path / "src"
    (src / "app").mkdir(parents=True)
    (src / "app" / "data.db").write_bytes(b"rows")
    (src / "app" / "link").symlink_to("data.db")
    (src / "mine.txt").write_text("root's")
    os.chown(src / "app", 1234, 2345)
    os.chown(src / "app" / "data.db", 1234, 2345)
    os.lchown(src / "app" / "link", 1234, 2345)
    repo = Repository(tmp_path / "dest")
    first = _backup(src, repo)
    manifest = repo.resolve(first)
    owners = {e.path: (e.uid, e.gid) for e in manifest.entries}
    assert owners["src/app/data.db"] == (1234, 2345) and owners["src/mine.txt"] == (0, 0)

    restore(repo, manifest, tmp_path / "out")
    for name in ("app", "app/data.db", "app/link"):
        st_ = os.lstat(tmp_path / "out" / "src" / name)
        assert (st_.st_uid, st_.st_gid) == (1234, 2345), name
    assert os.stat(tmp_path / "out" / "src" / "mine.txt").st_uid == 0

    by_tar = tmp_path / "by-tar"
    by_tar.mkdir()
    archive = tmp_path / "dest" / "snapshots" / first / "data.tar.zst"
    subprocess.run([tar, "--zstd", "-xf", str(archive), "-C", str(by_tar)], check=True)
    st_ = os.stat(by_tar / "src" / "app" / "data.db")
    assert (st_.st_uid, st_.st_gid) == (1234, 2345)

    # a new owner alone (content untouched) is recorded by the next backup
    os.chown(src / "mine.txt", 4321, 4321)
    second = _backup(src, repo)
    assert second != first
    again = {e.path: (e.uid, e.gid) for e in repo.resolve(second).entries}
    assert again["src/mine.txt"] == (4321, 4321)
    shutil.rmtree(tmp_path / "out")


def test_a_manifest_from_before_owners_were_kept_does_not_make_everything_changed(
    tmp_path: Path,
) -> None:
    import json

    src = tmp_path / "src"
    _write_tree(src, {("a",): (b"1", 0o644), ("d", "b"): (b"2", 0o600)})
    repo = Repository(tmp_path / "dest")
    first = _backup(src, repo)
    path = tmp_path / "dest" / "snapshots" / first / "manifest.json"
    data = json.loads(path.read_text())
    for entry in data["entries"]:
        entry.pop("uid", None), entry.pop("gid", None)
    path.write_text(json.dumps(data))
    assert _backup(src, repo) == first  # skipped: nothing to rewrite
