"""``backwatch run`` on real restic jobs: figures, changes, partial backups, bad passwords."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_tool
from tests.integration.runner_support import (
    FILES,
    change_three,
    make_tree,
    run_job,
    stored_runs,
    tree_size,
    write_config,
)

PASSWORD = "correct-horse-battery"


def restic(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["restic", *(str(a) for a in args)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def restic_job(
    root: Path, tree: Path, *, password_file: Path, binary: str = "restic", extra: str = ""
) -> str:
    return f"""
[[jobs]]
id = "photos"
tool = "restic"
env = {{RESTIC_CACHE_DIR = "{root / "cache"}"}}
{extra}
[jobs.restic]
repository = "{root / "repo"}"
password_file = "{password_file}"
paths = ["{tree}"]
binary = "{binary}"
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    need_tool("restic")
    tree = make_tree(tmp_path / "photos")
    pw = tmp_path / "restic.pass"
    pw.write_text(PASSWORD + "\n")
    restic(
        "init",
        "--repo",
        tmp_path / "repo",
        "--password-file",
        pw,
        env={"RESTIC_CACHE_DIR": str(tmp_path / "cache")},
    )
    return tmp_path, tree, pw


def test_a_restic_job_records_restics_figures_and_three_changed_files(setup) -> None:
    root, tree, pw = setup
    extra = (
        'timeout = "5m"\n[jobs.verify]\nread_data_subset = "50%"\n[jobs.retention]\nkeep_last = 5'
    )
    config = write_config(
        root / "bw.toml", root / "data", restic_job(root, tree, password_file=pw, extra=extra)
    )
    proc, run = run_job(config, "photos")
    assert proc.returncode == 0, proc.stderr
    assert run is not None and run["status"] == "success", run
    snapshots = json.loads(
        restic(
            "snapshots",
            "--json",
            "--repo",
            root / "repo",
            "--password-file",
            pw,
            env={"RESTIC_CACHE_DIR": str(root / "cache")},
        ).stdout
    )
    assert len(snapshots) == 1
    summary = run["stats"]
    assert summary["snapshot_id"] == snapshots[0]["short_id"]
    assert snapshots[0]["paths"] == [str(tree)]
    assert run["files"] == summary["total_files_processed"] == FILES
    assert run["files_new"] == summary["files_new"] == FILES
    assert run["files_changed"] == 0
    assert run["size_bytes"] == summary["total_bytes_processed"] == tree_size(tree)
    assert run["bytes_added"] == summary["data_added"] > 0
    assert summary["verify"] == "ok"
    assert [p["name"] for p in run["phases"]] == ["backup", "prune", "check"]
    assert all(p["status"] == "success" for p in run["phases"])
    assert run["source"] == "runner" and run["tool"] == "restic"

    change_three(tree)
    proc, second = run_job(config, "photos")
    assert proc.returncode == 0, proc.stderr
    assert second is not None
    assert second["files_changed"] == 3 and second["files_new"] == 0
    assert second["files"] == FILES
    stored = stored_runs(root / "data", "photos")
    assert [r["id"] for r in stored] == [second["id"], run["id"]]


def test_a_wrong_password_fails_with_a_clear_message(setup) -> None:
    root, tree, _pw = setup
    wrong = root / "wrong.pass"
    wrong.write_text("not-the-password\n")
    config = write_config(
        root / "bw.toml", root / "data", restic_job(root, tree, password_file=wrong)
    )
    proc, run = run_job(config, "photos")
    assert proc.returncode == 1
    assert run is not None and run["status"] == "failed"
    assert "wrong password" in run["message"]
    assert run["phases"][0]["name"] == "backup" and run["phases"][0]["status"] == "failed"


def test_dry_run_prints_masked_commands_and_records_nothing(setup) -> None:
    root, tree, pw = setup
    extra = f'[jobs.hooks]\nbefore = ["curl https://user:{PASSWORD}@example.invalid/start"]'
    body = restic_job(root, tree, password_file=pw, extra=extra).replace(
        "env = {", f'env = {{RESTIC_PASSWORD = "{PASSWORD}", '
    )
    config = write_config(root / "bw.toml", root / "data", body)
    proc, out = run_job(config, "photos", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert out is not None
    text = "\n".join(out["commands"])
    assert PASSWORD not in text and "***" in text
    assert "backup --json --host" in text and str(tree) in text
    assert not (root / "data" / "backwatch.db").exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """Outside pytest's private tmp (0700 root), so that `nobody` can enter it."""
    path = Path(tempfile.mkdtemp(prefix="backwatch-runner-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_an_unreadable_file_makes_the_run_a_warning(shared_dir: Path) -> None:
    need_tool("restic")
    need(os.geteuid() == 0, "needs root to run restic as nobody")
    need_tool("setpriv")
    tree = make_tree(shared_dir / "photos", files=40)
    pw = shared_dir / "restic.pass"
    pw.write_text(PASSWORD + "\n")
    wrapper = shared_dir / "restic-as-nobody"
    wrapper.write_text(
        '#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups restic "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {"RESTIC_CACHE_DIR": str(shared_dir / "cache"), "HOME": str(shared_dir)}
    restic("init", "--repo", shared_dir / "repo", "--password-file", pw, env=env)
    subprocess.run(["chown", "-R", "nobody:nogroup", str(shared_dir)], check=True)
    (tree / "d5" / "f005.bin").chmod(0)
    config = write_config(
        shared_dir / "bw.toml",
        shared_dir / "data",
        restic_job(
            shared_dir,
            tree,
            password_file=pw,
            binary=str(wrapper),
            extra='[jobs.hooks]\nbefore = ["true"]\n',
        ),
    )
    proc, run = run_job(config, "photos", env={"HOME": str(shared_dir)})
    assert proc.returncode == 3, proc.stderr
    assert run is not None and run["status"] == "warning"
    assert run["exit_code"] == 3
    assert "f005.bin" in run["message"]
    assert run["files"] == 39


from tests.conftest import need  # noqa: E402
