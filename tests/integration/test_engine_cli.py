"""The engine's commands as a user runs them: recorded runs, listings in JSON, clear
errors, the plain-tools restore recipe, a crash mid-backup, and ``backwatch run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BACKWATCH, need_tool, run_cli
from tests.integration.runner_support import run_job, stored_runs, write_config


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "deep er").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "deep er" / "ü.bin").write_bytes(os.urandom(5000))
    (src / "empty").write_bytes(b"")
    return src


def _ok(*args: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def _json(*args: str) -> object:
    return json.loads(_ok(*args, "--json").stdout)


def test_backup_is_recorded_with_its_phases_and_figures(tree: Path, tmp_path: Path) -> None:
    data, dest = tmp_path / "data", str(tmp_path / "dest")
    first = _json("backup", "--source", str(tree), "--dest", dest, "--data-dir", str(data))
    assert first["status"] == "success" and first["files"] == 3 and first["files_new"] == 3
    (tree / "a.txt").write_text("alpha, edited")
    second = _json("backup", "-s", str(tree), "-d", dest, "--data-dir", str(data))
    assert (second["files_new"], second["files_changed"]) == (0, 1)
    third = _json("backup", "-s", str(tree), "-d", dest, "--data-dir", str(data))
    assert third["status"] == "skipped"
    runs = stored_runs(data, "builtin-src")
    assert [r["status"] for r in runs] == ["skipped", "success", "success"]
    assert runs[1]["tool"] == "builtin" and runs[1]["bytes_added"] > 0
    phases = [p["name"] for p in runs[1]["phases"]]
    assert phases == ["scan", "archive", "manifest", "commit"]


def test_listings_scan_verify_restore_and_forget(tree: Path, tmp_path: Path) -> None:
    dest = str(tmp_path / "dest")
    common = ("--dest", dest)
    _ok("backup", "-s", str(tree), *common, "--no-record", "--dump", "db=printf dumped")
    (tree / "a.txt").unlink()
    (tree / "new file").write_text("n")
    (tree / "empty").write_text("now full")
    scan = _json("scan", *common)
    assert scan["lost"] == ["src/a.txt"]
    assert scan["changed"] == ["src/empty"] and scan["new"] == ["src/new file"]
    _ok("backup", "-s", str(tree), *common, "--no-record")
    listing = _json("snapshots", *common)
    assert [s["kind"] for s in listing] == ["full", "incremental"]
    assert listing[1]["bases"] == [listing[0]["id"]]
    assert _json("verify", "--all", *common)[0]["ok"]
    assert _json("verify", "--sample", "50%", *common)["ok"]
    # the first snapshot, as of its time: a.txt and the dump are back
    restored = _json("restore", "--as-of", listing[0]["time"], "-t", str(tmp_path / "t"), *common)
    assert "src/a.txt" in restored["restored"]
    assert (tmp_path / "t" / "_dumps" / "db").read_text() == "dumped"
    dry = _json("forget", "--keep-last", "1", "--dry-run", *common)
    assert dry["remove"] == [] and listing[0]["id"] in dry["keep"]  # the base stays


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["backup", "--source", "{tmp}/nope", "--dest", "{tmp}/d"],
            "source {tmp}/nope does not exist",
        ),
        (
            ["backup", "--source", "{tmp}/src", "--dest", "{tmp}/src/a.txt"],
            "cannot create destination",
        ),
        (["restore", "nope", "-d", "{tmp}/dest", "-t", "{tmp}/t"], "'nope' is not a snapshot"),
        (["snapshots", "-d", "{tmp}/empty-dir"], "holds no snapshots"),
        (["verify", "-d", "{tmp}/dest", "--sample", "150%"], "between 0% and 100%"),
        (["forget", "-d", "{tmp}/dest"], "at least one --keep"),
        (
            ["restore", "-d", "{tmp}/dest", "-t", "{tmp}/t", "--conflict", "merge"],
            "--conflict must be",
        ),
    ],
)
def test_user_mistakes_get_one_clear_line(
    tree: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    _ok("backup", "-s", str(tree), "-d", str(tmp_path / "dest"), "--no-record")
    proc = run_cli(*[a.format(tmp=tmp_path) for a in args], "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 1, proc.stderr
    assert message.format(tmp=tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_names_the_files_of_a_damaged_archive(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _ok("backup", "-s", str(tree), "-d", str(dest), "--no-record")
    (archive,) = dest.glob("snapshots/*/data.tar.zst")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x55
    archive.write_bytes(bytes(data))
    proc = run_cli("verify", "-d", str(dest))
    assert proc.returncode == 1
    assert "error: src/" in proc.stderr and "Traceback" not in proc.stderr


def test_snapshots_restore_with_plain_tar_and_zstd(tree: Path, tmp_path: Path) -> None:
    """docs/engine.md's recipe: extract the chain oldest first, with GNU tar or zstd | tar."""
    need_tool("tar")
    need_tool("zstd")
    dest = tmp_path / "dest"
    _ok("backup", "-s", str(tree), "-d", str(dest), "--no-record")
    (tree / "a.txt").write_text("second")
    _ok("backup", "-s", str(tree), "-d", str(dest), "--no-record")
    for way, out in (("tar", tmp_path / "by-tar"), ("pipe", tmp_path / "by-pipe")):
        out.mkdir()
        for archive in sorted(dest.glob("snapshots/*/data.tar.zst")):
            if way == "tar":
                subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(out)], check=True)
            else:
                subprocess.run(
                    f"zstd -dc '{archive}' | tar -xf - -C '{out}'", shell=True, check=True
                )
        assert (out / "src" / "a.txt").read_text() == "second"
        assert (out / "src" / "deep er" / "ü.bin").read_bytes() == (
            tree / "deep er" / "ü.bin"
        ).read_bytes()


def test_a_backup_killed_midway_leaves_the_previous_state(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _ok("backup", "-s", str(tree), "-d", str(dest), "--no-record")
    before = _json("snapshots", "-d", str(dest))
    big = tree / "big"
    big.mkdir()
    for i in range(40):
        (big / f"f{i}").write_bytes(os.urandom(1 << 20))
    proc = subprocess.Popen(
        [*BACKWATCH, "backup", "-s", str(tree), "-d", str(dest), "--no-record", "--level", "19"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(dest.glob("snapshots/.partial-*/data.tar.zst")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _json("snapshots", "-d", str(dest)) == before
    assert _json("verify", "-d", str(dest))["ok"]
    after = _json("backup", "-s", str(tree), "-d", str(dest), "--no-record")
    assert after["status"] == "success"
    assert not list(dest.glob("snapshots/.partial-*"))  # the next backup cleaned up


def test_backwatch_run_takes_a_builtin_job_with_its_dump(tree: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "bw.toml",
        data,
        f"""
[[jobs]]
id = "files"
tool = "builtin"
destinations = ["{tmp_path / "d1"}", "{tmp_path / "d2"}"]
[jobs.builtin]
paths = ["{tree}"]
[[jobs.dumps]]
name = "db"
type = "command"
command = "echo a dump"
""",
    )
    proc, record = run_job(config, "files")
    assert proc.returncode == 0, proc.stderr
    assert record is not None and record["status"] == "success"
    assert record["files"] == 4 and record["files_new"] == 4  # 3 files + the dump
    assert [p["name"] for p in record["phases"]] == ["dump-db", "backup"]
    for d in ("d1", "d2"):
        listing = _json("snapshots", "-d", str(tmp_path / d))
        assert len(listing) == 1
    restored = _json(
        "restore", "--job", "files", "--config", str(config), "-t", str(tmp_path / "t")
    )
    assert "_dumps/db.dump" in restored["restored"]


def test_backwatch_run_of_an_unchanged_tree_is_skipped_then_pruned_and_verified(
    tree: Path, tmp_path: Path
) -> None:
    """A builtin job takes [jobs.retention] and [jobs.verify] like restic and borg; a run
    that finds nothing changed is recorded as skipped (and still prunes and verifies)."""
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f"""
[[jobs]]
id = "files"
tool = "builtin"
destinations = ["{tmp_path / "d1"}"]
[jobs.builtin]
paths = ["{tree}"]
[jobs.retention]
keep_last = 1
[jobs.verify]
read_data_subset = "50%"
""",
    )
    first, record = run_job(config, "files")
    assert first.returncode == 0, first.stderr
    assert record is not None and record["status"] == "success"
    again, record = run_job(config, "files")
    assert again.returncode == 0, again.stderr
    assert record is not None and record["status"] == "skipped", record
    assert [p["name"] for p in record["phases"]] == ["backup", "prune", "check"]
    assert all(p["status"] == "success" for p in record["phases"])
    assert len(_json("snapshots", "-d", str(tmp_path / "d1"))) == 1


def test_scan_of_a_job_leaves_out_what_its_backups_exclude(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.txt").write_text("k")
    config = write_config(
        tmp_path / "bw.toml",
        tmp_path / "data",
        f'[[jobs]]\nid = "docs"\ntool = "builtin"\ndestinations = ["{tmp_path / "d"}"]\n'
        f'[jobs.builtin]\npaths = ["{src}"]\nexclude = ["*.tmp"]\n',
    )
    _ok("backup", "docs", "--config", str(config))
    (src / "scratch.tmp").write_text("never backed up, on purpose")
    (src / "new.txt").write_text("n")
    scan = _json("scan", "--job", "docs", "--config", str(config))
    assert isinstance(scan, dict) and scan["new"] == ["src/new.txt"]
