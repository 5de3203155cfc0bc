"""``backwatch import --format restic|borg|rsync`` on the output of the real tools.

Each test runs Debian's restic, borg or rsync on a generated tree (300 files, ~3.5 MB),
imports what the tool printed with the real ``backwatch`` command into a SQLite file and
compares the stored run with the tool's own figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backwatch.cli.target import resolve
from tests.conftest import need_tool, run_cli

FILES = 300


def make_tree(root: Path) -> Path:
    rng = random.Random(7)
    for i in range(FILES):
        folder = root / f"d{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03}.bin").write_bytes(rng.randbytes(10_000 + i))
    return root


def change_three(tree: Path) -> None:
    for name in ("d0/f000.bin", "d1/f001.bin", "d2/f002.bin"):
        with open(tree / name, "ab") as fh:
            fh.write(b"changed")


def tool(*args: str | Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def import_(db: Path, *args: str | Path, input: str | None = None) -> subprocess.CompletedProcess:
    return run_cli("import", *(str(a) for a in args), "--db", str(db), input=input)


def runs(db: Path, job: str) -> list[dict[str, Any]]:
    """The stored runs of ``job``, newest first, as ``backwatch history --json`` shows them
    (read in-process, through the same code, to keep the file fast)."""
    tgt = resolve(url=None, token=None, db=str(db), config=None, data_dir=str(db.parent))
    try:
        return tgt.list_runs(job=job, limit=50)["items"]  # type: ignore[no-any-return]
    finally:
        tgt.close()


def summary_of(restic_output: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in restic_output.splitlines() if line.startswith("{")]
    (summary,) = [m for m in lines if m.get("message_type") == "summary"]
    return summary


# --- restic ----------------------------------------------------------------------------


@pytest.fixture
def restic_env(tmp_path: Path) -> dict[str, str]:
    need_tool("restic")
    env = {
        "RESTIC_REPOSITORY": str(tmp_path / "repo"),
        "RESTIC_PASSWORD": "correct horse",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    }
    tool("restic", "init", env=env)
    return env


def test_restic_backups_become_runs_with_restics_figures(
    tmp_path: Path, restic_env: dict[str, str]
) -> None:
    tree = make_tree(tmp_path / "photos")
    db = tmp_path / "bw.sqlite"
    first = tool("restic", "backup", "--json", tree, env=restic_env)
    out = tmp_path / "restic-1.json"
    out.write_text(first.stdout)

    done = import_(db, "--format", "restic", "--job", "photos", out)
    assert done.returncode == 0, done.stderr
    assert "recorded run" in done.stdout and "(success)" in done.stdout
    summary = summary_of(first.stdout)
    (run,) = runs(db, "photos")
    assert run["status"] == "success" and run["tool"] == "restic"
    assert run["files"] == summary["total_files_processed"] == FILES
    assert run["files_new"] == summary["files_new"] == FILES
    assert run["files_changed"] == 0
    assert run["size_bytes"] == summary["total_bytes_processed"]
    assert run["bytes_added"] == summary["data_added"]
    assert run["duration_s"] == pytest.approx(summary["total_duration"])
    assert run["stats"]["dirs_new"] == summary["dirs_new"]
    (snapshot,) = json.loads(tool("restic", "snapshots", "--json", env=restic_env).stdout)
    assert summary["snapshot_id"] in (snapshot["id"], snapshot["short_id"])
    assert run["backup_id"] == f"restic-{summary['snapshot_id']}"
    if "summary" in snapshot:  # restic ≥ 0.17 stores the summary in the snapshot
        assert run["files"] == snapshot["summary"]["total_files_processed"]

    again = import_(db, "--format", "restic", "--job", "photos", out)
    assert again.returncode == 0 and "already recorded" in again.stdout
    assert len(runs(db, "photos")) == 1

    change_three(tree)
    second = tool("restic", "backup", "--json", tree, env=restic_env)
    piped = import_(db, "-f", "restic", "-j", "photos", "--exit-code", "0", "-",
                    input=second.stdout)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    newest, _ = runs(db, "photos")
    assert newest["files_changed"] == 3
    assert newest["files_new"] == 0
    assert newest["bytes_added"] == summary_of(second.stdout)["data_added"]
    assert newest["exit_code"] == 0


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp (0700 root) that another user can enter."""
    path = Path(tempfile.mkdtemp(prefix="backwatch-restic-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_restic_partial_backup_exit_3_is_a_warning(
    tmp_path: Path, shared_dir: Path, restic_env: dict[str, str]
) -> None:
    # root reads any file, so restic runs as `nobody` on a tree and repository it owns
    tree = make_tree(shared_dir / "photos")
    unreadable = tree / "d5" / "f005.bin"
    env = {**restic_env, "RESTIC_REPOSITORY": str(shared_dir / "repo"),
           "RESTIC_CACHE_DIR": str(shared_dir / "cache"), "HOME": str(shared_dir)}  # fmt: skip
    tool("restic", "init", env=env)
    prefix: list[str] = []
    if os.geteuid() == 0:
        need_tool("setpriv")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(shared_dir)], check=True)
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    unreadable.chmod(0)
    proc = tool(*prefix, "restic", "backup", "--json", tree, env=env, check=False)
    assert proc.returncode == 3, proc.stderr
    out = tmp_path / "restic-partial.txt"
    out.write_text(proc.stdout + proc.stderr)  # as `restic backup --json … 2>&1` leaves it

    db = tmp_path / "bw.sqlite"
    done = import_(db, "-f", "restic", "-j", "photos", "--exit-code", str(proc.returncode), out)
    assert done.returncode == 0, done.stderr
    (run,) = runs(db, "photos")
    assert run["status"] == "warning" and run["exit_code"] == 3
    assert "f005.bin" in run["message"]
    assert run["files"] == FILES - 1
    assert run["stats"]["errors"] == 1


# --- borg ------------------------------------------------------------------------------


@pytest.fixture
def borg_env(tmp_path: Path) -> dict[str, str]:
    need_tool("borg")
    env = {
        "BORG_REPO": str(tmp_path / "borg-repo"),
        "BORG_BASE_DIR": str(tmp_path / "borg-home"),
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    }
    tool("borg", "init", "--encryption=none", env=env)
    return env


def test_borg_create_json_becomes_a_run_and_rc_1_a_warning(
    tmp_path: Path, borg_env: dict[str, str]
) -> None:
    tree = make_tree(tmp_path / "docs")
    db = tmp_path / "bw.sqlite"
    first = tool("borg", "create", "--json", "::first", tree, env=borg_env)
    out = tmp_path / "borg-1.json"
    out.write_text(first.stdout)
    done = import_(db, "--format", "borg", "--job", "docs", out)
    assert done.returncode == 0, done.stderr
    archive = json.loads(first.stdout)["archive"]
    (run,) = runs(db, "docs")
    assert run["status"] == "success" and run["tool"] == "borg"
    assert run["files"] == archive["stats"]["nfiles"] == FILES
    assert run["size_bytes"] == archive["stats"]["original_size"]
    assert run["bytes_added"] == archive["stats"]["deduplicated_size"]
    assert run["stats"]["compressed_size"] == archive["stats"]["compressed_size"]
    assert run["duration_s"] == pytest.approx(archive["duration"])
    assert run["backup_id"] == f"borg-{archive['id']}"

    change_three(tree)
    (tree / "d9" / "new.bin").write_bytes(b"new file")
    second = subprocess.run(
        ["borg", "create", "--list", "--json", "::second", str(tree), str(tmp_path / "gone")],
        env={**os.environ, **borg_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1, second.stdout  # a missing source path is a warning
    done = import_(db, "-f", "borg", "-j", "docs", "--exit-code", "1", "-", input=second.stdout)
    assert done.returncode == 0, done.stderr
    newest, _ = runs(db, "docs")
    assert newest["status"] == "warning" and newest["exit_code"] == 1
    listed = [line.split(" ", 1) for line in second.stdout.splitlines() if line[1:2] == " "]
    # borg says A for a file its files cache did not keep (the newest of the last run, too)
    assert newest["files_new"] == sum(1 for flag, _ in listed if flag == "A")
    assert ("A", str(tree / "d9" / "new.bin")) in [(f, p) for f, p in listed]
    assert newest["files_changed"] == 3 == sum(1 for flag, _ in listed if flag == "M")
    assert newest["files"] == FILES + 1
    assert "gone" in newest["message"]


# --- rsync -----------------------------------------------------------------------------


def test_rsync_stats_become_runs_and_a_missing_source_fails(tmp_path: Path) -> None:
    need_tool("rsync")
    tree = make_tree(tmp_path / "src")
    total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    db = tmp_path / "bw.sqlite"
    first = tool("rsync", "-a", "--stats", f"{tree}/", f"{tmp_path / 'dst'}/", env={})
    out = tmp_path / "rsync-1.txt"
    out.write_text(first.stdout)
    times = ["--started-at", "2026-01-07T02:00:00Z", "--finished-at", "2026-01-07T02:00:42Z"]
    done = import_(db, "--format", "rsync", "--job", "mirror", out, *times)
    assert done.returncode == 0, done.stderr
    (run,) = runs(db, "mirror")
    assert run["status"] == "success" and run["tool"] == "rsync"
    assert run["files"] == FILES and run["files_new"] == FILES and run["files_changed"] == 0
    assert run["size_bytes"] == total
    assert run["bytes_added"] == total  # all literal data on a first copy
    assert run["duration_s"] == 42
    assert run["stats"]["number_of_regular_files_transferred"] == FILES

    change_three(tree)
    second = tool("rsync", "-a", "--stats", f"{tree}/", f"{tmp_path / 'dst'}/", env={})
    done = import_(db, "-f", "rsync", "-j", "mirror", "--exit-code", "0", "-", input=second.stdout)
    assert done.returncode == 0, done.stderr
    newest = runs(db, "mirror")[0]
    assert newest["files_changed"] == 3 and newest["files_new"] == 0
    assert newest["size_bytes"] == total + 3 * len(b"changed")

    missing = tool("rsync", "-a", "--stats", f"{tmp_path / 'missing'}/", f"{tmp_path / 'dst2'}/",
                   env={}, check=False)  # fmt: skip
    assert missing.returncode == 23
    failed_out = tmp_path / "rsync-failed.txt"
    failed_out.write_text(missing.stdout + missing.stderr)
    done = import_(db, "-f", "rsync", "-j", "mirror", "--exit-code", "23", failed_out)
    assert done.returncode == 0, done.stderr
    newest = runs(db, "mirror")[0]
    assert newest["status"] == "failed" and newest["exit_code"] == 23
    assert "missing" in newest["message"]
    assert len(runs(db, "mirror")) == 3


# --- bad input -------------------------------------------------------------------------


def test_bad_tool_output_is_refused_with_the_line_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bw.sqlite"
    text_out = tmp_path / "restic.txt"
    text_out.write_text("Backup of /srv done\nall good\n")  # a script's words, not restic's
    done = import_(db, "-f", "restic", "-j", "photos", text_out)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {text_out}: line 1: 'Backup of /srv done' is not")
    assert "--json" in done.stderr and "Traceback" not in done.stderr

    cut_short = '{"message_type":"status"}\n{"message_type":"summary","files_new"'
    cut = import_(db, "-f", "restic", "-j", "photos", "-", input=cut_short)
    assert cut.returncode == 1
    assert "error: standard input: line 2: JSON object cut short" in cut.stderr

    empty = import_(db, "-f", "borg", "-j", "photos", "-", input="")
    assert empty.returncode == 1 and "empty input" in empty.stderr

    no_job = import_(db, "-f", "rsync", text_out)
    assert no_job.returncode == 2 and "--job is required" in no_job.stderr
    jsonl_with_tool_flag = import_(db, "--exit-code", "3", text_out)
    assert jsonl_with_tool_flag.returncode == 2 and "--exit-code" in jsonl_with_tool_flag.stderr
    missing = import_(db, "-f", "borg", "-j", "photos", tmp_path / "nope.json")
    assert missing.returncode == 1 and "cannot read" in missing.stderr

    tgt = resolve(url=None, token=None, db=str(db), config=None, data_dir=str(tmp_path))
    try:
        assert tgt.list_jobs() == []  # nothing was stored
    finally:
        tgt.close()
